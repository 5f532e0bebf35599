//! The live task tree: every group and task, with its id, name, state and age, and a
//! drawing like `python -m asyncio pstree`.

use aio::{BoxError, CancelReason, GroupState, TaskGroup, TaskState};
use tokio::time::sleep;

use crate::support::*;

spec! {
    /// A snapshot lists a group's tasks with their names, states and ages, and the groups
    /// opened inside its tasks and its body.
    async fn a_snapshot_shows_tasks_and_nested_groups() {
        let id = TaskGroup::<BoxError>::builder()
            .name("outer")
            .scope(|tg| async move {
                tg.spawn_named("crawler", async {
                    TaskGroup::<BoxError>::builder()
                        .name("pages")
                        .scope(|pages| async move {
                            pages.spawn_named("page-1", sleep_forever::<()>())?;
                            sleep_forever::<()>().await
                        })
                        .await?;
                    Ok(())
                })?;
                tg.spawn_named("idle", sleep_forever::<()>())?;
                sleep(ms(10)).await;

                let snapshot = tg.snapshot();
                assert_eq!(snapshot.name.as_deref(), Some("outer"));
                assert_eq!(snapshot.state, GroupState::Running);
                assert_eq!(snapshot.tasks.len(), 2);
                let crawler = &snapshot.tasks[0];
                assert_eq!(crawler.name.as_deref(), Some("crawler"));
                assert_eq!(crawler.state, TaskState::Suspended);
                assert!(crawler.age >= ms(10));
                let pages = &crawler.groups[0];
                assert_eq!(pages.name.as_deref(), Some("pages"));
                assert_eq!(pages.tasks[0].name.as_deref(), Some("page-1"));

                let drawing = snapshot.to_string();
                let lines: Vec<&str> = drawing.lines().collect();
                assert!(lines[0].starts_with("task_group scope#") && lines[0].contains("'outer' (running, "), "{drawing}");
                assert!(lines[1].starts_with("├── task#") && lines[1].contains("'crawler' (suspended"), "{drawing}");
                assert!(lines[2].starts_with("│   └── task_group") && lines[2].contains("'pages'"), "{drawing}");
                assert!(lines[3].starts_with("│       └── task#") && lines[3].contains("'page-1'"), "{drawing}");
                assert!(lines[4].starts_with("└── task#") && lines[4].contains("'idle'"), "{drawing}");

                // The process-wide tree contains this group.
                assert!(aio::task_tree().to_string().contains("'outer'"));
                tg.cancel();
                Ok(tg.id())
            })
            .await
            .unwrap();
        // Gone once the scope returned. (By id: other tests name their groups "outer" too.)
        assert!(aio::task_tree().groups.iter().all(|group| group.id != id));
    }
}

spec! {
    /// Groups opened in a group's body appear under it, marked as the body's.
    async fn groups_opened_in_the_body_appear_under_the_group() {
        TaskGroup::<BoxError>::builder()
            .name("outer")
            .scope(|outer| async move {
                let watcher = outer.clone();
                TaskGroup::<BoxError>::builder()
                    .name("inner")
                    .scope(|_inner| async move {
                        let drawing = watcher.snapshot().to_string();
                        assert!(drawing.contains("(body) task_group"), "{drawing}");
                        assert!(drawing.contains("'inner'"), "{drawing}");
                        Ok(())
                    })
                    .await?;
                Ok(())
            })
            .await
            .unwrap();
    }
}

spec! {
    /// A cancelled group says why in the tree; finished tasks leave it.
    async fn the_tree_shows_cancellation_and_drops_finished_tasks() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn_named("quick", async { Ok(()) })?;
            tg.spawn_named("stubborn", sleep_forever::<()>())?;
            sleep(ms(5)).await;
            let names: Vec<_> = tg.snapshot().tasks.iter().filter_map(|t| t.name.clone()).collect();
            assert_eq!(names, ["stubborn"]);
            tg.cancel();
            Ok(())
        })
        .await
        .unwrap();
        // Seen from inside the cancelled group, while its task cleans up.
        TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(aio::on_cancel(sleep_forever::<()>(), move |_| async move {
                let snapshot = group.snapshot();
                assert_eq!(
                    snapshot.state,
                    GroupState::Cancelled(aio::Cancelled::new(CancelReason::Explicit))
                );
                assert!(snapshot.to_string().contains("(cancelled: cancelled explicitly"));
                Ok(())
            }))?;
            sleep(ms(1)).await;
            tg.cancel();
            Ok(())
        })
        .await
        .unwrap();
    }
}
