//! `current_task()` (§0 `asyncio.current_task()`, `Task.get_name()`): which task the caller
//! runs in.

use aio::{BoxError, LocalGroup, TaskGroup, timeout};

use crate::support::*;

/// The current task as `name@group`, or `-` outside a task.
fn who() -> String {
    match aio::current_task() {
        Some(task) => format!(
            "{}@{}",
            task.name().unwrap_or("?"),
            task.group_name().unwrap_or("?")
        ),
        None => "-".into(),
    }
}

spec! {
    /// A task spawned into a group knows its id, its name and its group, in nested scopes
    /// too; a group's body runs in the task that opened the group; outside any task, and
    /// in a task started with `tokio::spawn`, there is none.
    async fn current_task_names_the_running_task_and_its_group() {
        assert_eq!(who(), "-");
        let log = Log::new();
        let l = log.clone();
        TaskGroup::<BoxError>::builder()
            .name("outer")
            .scope(|tg| async move {
                l.push(format!("outer body: {}", who()));
                let l2 = l.clone();
                let worker = tg.spawn_named("worker", async move {
                    l2.push(format!("worker: {}", who()));
                    timeout(FOREVER, async {
                        l2.push(format!("worker, in a timeout: {}", who()));
                    })
                    .await?;
                    let l5 = l2.clone();
                    TaskGroup::<BoxError>::builder()
                        .name("inner")
                        .scope(|inner| async move {
                            l5.push(format!("inner body: {}", who()));
                            let l3 = l5.clone();
                            inner.spawn_named("leaf", async move {
                                l3.push(format!("leaf: {}", who()));
                                Ok(())
                            })?;
                            Ok(())
                        })
                        .await?;
                    let l4 = l2.clone();
                    tokio::spawn(async move { l4.push(format!("tokio::spawn: {}", who())) })
                        .await
                        .unwrap();
                    Ok(aio::current_task().unwrap().id())
                })?;
                let id = worker.id();
                assert_eq!((&mut { worker }).await?, id);
                LocalGroup::<BoxError>::scope_named("local", Default::default(), |lg| async move {
                    lg.spawn_named("local-task", async move {
                        l.push(format!("local task: {}", who()));
                        Ok(())
                    })?;
                    Ok(())
                })
                .await?;
                Ok(())
            })
            .await
            .unwrap();
        let mut events = log.events();
        events.sort();
        assert_eq!(
            events,
            [
                "inner body: worker@outer",
                "leaf: leaf@inner",
                "local task: local-task@local",
                "outer body: -",
                "tokio::spawn: -",
                "worker, in a timeout: worker@outer",
                "worker: worker@outer",
            ]
        );
    }
}
