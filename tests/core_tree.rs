//! The live task tree: every group and task, with its id, name, state and age, and a
//! drawing like `python -m asyncio pstree`.

use std::fmt::Write as _;
use std::future::Future;
use std::hash::{DefaultHasher, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use aio::{
    BoxError, CancelReason, GroupSnapshot, GroupState, ScopeId, TaskGroup, TaskState, TaskTree,
};
use tokio::sync::Notify;
use tokio::time::sleep;

use crate::support::*;

spec! {
    /// A snapshot lists a group's tasks with their names, states and ages, and the groups
    /// opened inside its tasks and its body.
    async fn a_snapshot_shows_tasks_and_nested_groups() {
        // The tree is process-wide: a name of its own keeps other tests' groups out of the
        // checks on it.
        let outer = unique("outer");
        let quoted = format!("'{outer}'");
        let (name, q) = (outer.clone(), quoted.clone());
        let id = TaskGroup::<BoxError>::builder()
            .name(outer)
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
                // Each task has started and waits, however long a loaded machine took.
                let settled = || {
                    let snapshot = tg.snapshot();
                    let suspended = |t: &aio::TaskSnapshot| t.state == TaskState::Suspended;
                    snapshot.tasks.len() == 2
                        && snapshot.tasks.iter().all(suspended)
                        && snapshot.tasks[0].groups.first().is_some_and(|g| g.tasks.iter().any(suspended))
                };
                eventually(Duration::from_secs(10), settled).await;

                let snapshot = tg.snapshot();
                assert_eq!(snapshot.name.as_deref(), Some(name.as_str()));
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
                assert!(lines[0].starts_with("task_group scope#") && lines[0].contains(&format!("{q} (running, ")), "{drawing}");
                assert!(lines[1].starts_with("├── task#") && lines[1].contains("'crawler' (suspended"), "{drawing}");
                assert!(lines[2].starts_with("│   └── task_group") && lines[2].contains("'pages'"), "{drawing}");
                assert!(lines[3].starts_with("│       └── task#") && lines[3].contains("'page-1'"), "{drawing}");
                assert!(lines[4].starts_with("└── task#") && lines[4].contains("'idle'"), "{drawing}");

                // The process-wide tree contains this group.
                assert!(aio::task_tree().to_string().contains(&q));
                tg.cancel();
                Ok(tg.id())
            })
            .await
            .unwrap();
        // Gone once the scope returned.
        assert!(!aio::task_tree().to_string().contains(&quoted));
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
            let names = || -> Vec<_> { tg.snapshot().tasks.iter().filter_map(|t| t.name.clone()).collect() };
            // However late the quick task runs, it leaves once it has finished.
            eventually(Duration::from_secs(10), || names() == ["stubborn"]).await;
            tg.cancel();
            Ok(())
        })
        .await
        .unwrap();
        // Seen from inside the cancelled group, while its task cleans up.
        let (started, checked) = (Counter::new(), Counter::new());
        let c = checked.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(aio::on_cancel(running_forever::<()>(started.clone()), move |_| async move {
                let snapshot = group.snapshot();
                assert_eq!(
                    snapshot.state,
                    GroupState::Cancelled(aio::Cancelled::new(CancelReason::Explicit))
                );
                assert!(snapshot.to_string().contains("(cancelled: cancelled explicitly"));
                c.incr();
                Ok(())
            }))?;
            started.until(1).await;
            sleep(ms(1)).await;
            tg.cancel();
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(checked.get(), 1, "the cleanup ran its checks");
    }
}

/// How many groups the chains of the tests below nest: far more than a recursive walk of the
/// tree survives on the small stack the tests read the tree on.
const DEEP: usize = 3000;

/// The stack the deep trees are read on: a quarter of a MiB, an eighth of a worker's.
const SMALL_STACK: usize = 256 * 1024;

/// The two ends of a deep chain: the innermost task says it is up, then waits to be let go.
#[derive(Clone, Default)]
struct Ends {
    ready: Arc<Notify>,
    release: Arc<Notify>,
}

type Level = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;

/// The body of group number `depth` of a chain of `DEEP`: an even group's body spawns a task
/// that opens the next group, an odd group's body opens it itself, so the chain alternates
/// groups opened in tasks with groups opened in bodies, and no task polls more than two
/// groups deep. The last group's task is the innermost one.
fn level(tg: TaskGroup<BoxError>, depth: usize, ends: Ends) -> Level {
    Box::pin(async move {
        if depth + 1 == DEEP {
            tg.spawn(async move {
                ends.ready.notify_one();
                ends.release.notified().await;
                Ok(())
            })?;
        } else if depth % 2 == 0 {
            tg.spawn(open(depth + 1, ends))?;
        } else {
            open(depth + 1, ends).await?;
        }
        Ok(())
    })
}

/// Opens group number `depth` of the chain.
fn open(depth: usize, ends: Ends) -> Level {
    Box::pin(async move {
        TaskGroup::scope(move |tg| level(tg, depth, ends)).await?;
        Ok(())
    })
}

/// Opens a chain of `DEEP` groups and, once it is up, runs `read` on a thread with a small
/// stack with the chain's outermost group, then lets the chain end.
async fn with_deep_chain(read: impl FnOnce(TaskGroup<BoxError>) + Send + 'static) {
    let ends = Ends::default();
    TaskGroup::<BoxError>::scope(|tg| async move {
        // This is group 0, an even one.
        tg.spawn(open(1, ends.clone()))?;
        ends.ready.notified().await;
        // Every task of the chain is suspended: blocking this one for a moment is harmless.
        let outermost = tg.clone();
        std::thread::Builder::new()
            .name("small-stack".into())
            .stack_size(SMALL_STACK)
            .spawn(move || read(outermost))
            .unwrap()
            .join()
            .unwrap();
        ends.release.notify_one();
        Ok(())
    })
    .await
    .unwrap();
}

/// The chain's outermost group in the process-wide tree.
fn deep_chain(tree: &TaskTree, root: ScopeId) -> &GroupSnapshot {
    tree.groups
        .iter()
        .find(|g| g.id == root)
        .expect("the chain is in the task tree")
}

/// Walks down a snapshot of the chain: every group is running and holds one task or one
/// group, every task is suspended and holds one group but the innermost, none is older than
/// the one around it. Returns how many groups and tasks it passed.
fn walk_deep_chain(chain: &GroupSnapshot) -> (usize, usize) {
    let (mut groups, mut tasks) = (0, 0);
    let mut group = chain;
    loop {
        groups += 1;
        assert_eq!(group.state, GroupState::Running);
        let next = match (&group.tasks[..], &group.groups[..]) {
            ([task], []) => {
                tasks += 1;
                assert_eq!(task.state, TaskState::Suspended);
                assert!(task.age <= group.age);
                match &task.groups[..] {
                    [] => return (groups, tasks),
                    [next] => next,
                    more => panic!("{} groups in one task", more.len()),
                }
            }
            ([], [next]) => next,
            other => panic!("a link of the chain holds {other:?}"),
        };
        assert!(next.age <= group.age);
        group = next;
    }
}

/// A sink for text too long to keep: counts the lines and hands each to `check`.
struct Lines<F: FnMut(usize, &str)> {
    count: usize,
    line: String,
    check: F,
}

impl<F: FnMut(usize, &str)> Lines<F> {
    fn new(check: F) -> Self {
        Lines {
            count: 0,
            line: String::new(),
            check,
        }
    }
}

impl<F: FnMut(usize, &str)> std::fmt::Write for Lines<F> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for piece in s.split_inclusive('\n') {
            match piece.strip_suffix('\n') {
                Some(end) => {
                    self.line.push_str(end);
                    (self.check)(self.count, &self.line);
                    self.count += 1;
                    self.line.clear();
                }
                None => self.line.push_str(piece),
            }
        }
        Ok(())
    }
}

/// A sink that only counts what it is given.
struct Bytes(usize);

impl std::fmt::Write for Bytes {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0 += s.len();
        Ok(())
    }
}

spec! {
    /// `task_tree()` and `snapshot()` walk a chain of 3,000 nested groups, tasks and bodies
    /// with an explicit stack, and the drawing of it is made the same way: a diagnostic never
    /// overflows the stack of the thread that asks for it, however deep the program nests.
    async fn a_task_tree_of_3000_nested_groups_is_built_and_drawn_without_recursion() {
        with_deep_chain(|outermost| {
            let tree = aio::task_tree();
            let chain = deep_chain(&tree, outermost.id());
            assert_eq!(walk_deep_chain(chain), (DEEP, DEEP / 2 + 1));
            assert_eq!(walk_deep_chain(&outermost.snapshot()), (DEEP, DEEP / 2 + 1));

            // Drawn, each line one step further in than the one above.
            let mut lines = Lines::new(|n, line: &str| {
                if n == 0 {
                    assert!(line.starts_with("task_group "), "{line}");
                } else {
                    let (indent, rest) = line.split_at(4 * (n - 1));
                    assert!(indent.bytes().all(|b| b == b' '), "line {n}");
                    let rest = rest.strip_prefix("└── ").expect("one child per node");
                    assert!(
                        rest.starts_with("task#") || rest.starts_with("task_group ")
                            || rest.starts_with("(body) task_group "),
                        "line {n}: {rest}"
                    );
                }
            });
            write!(lines, "{chain}").unwrap();
            assert_eq!(lines.count, DEEP + DEEP / 2 + 1);
            let (mut group_alone, mut everything) = (Bytes(0), Bytes(0));
            write!(group_alone, "{chain}").unwrap();
            write!(everything, "{tree}").unwrap();
            assert!(everything.0 >= group_alone.0);
        })
        .await;
    }
}

spec! {
    /// A deep snapshot formats with `{:?}` and `{:#?}` as the derived `Debug` would, without
    /// recursion.
    async fn a_deep_task_tree_is_debug_formatted_without_recursion() {
        with_deep_chain(|outermost| {
            let tree = aio::task_tree();
            let chain = deep_chain(&tree, outermost.id());
            let flat = format!("{chain:?}");
            assert!(flat.starts_with("GroupSnapshot { id: "), "{}", &flat[..100]);
            assert_eq!(flat.matches("GroupSnapshot { ").count(), DEEP);
            assert_eq!(flat.matches("TaskSnapshot { ").count(), DEEP / 2 + 1);
            assert!(format!("{tree:?}").contains(&flat));
            let mut pretty = Bytes(0);
            write!(pretty, "{chain:#?}").unwrap();
            assert!(pretty.0 > flat.len());
        })
        .await;
    }
}

spec! {
    /// A deep snapshot clones and drops without recursion.
    async fn a_deep_task_tree_is_cloned_and_dropped_without_recursion() {
        with_deep_chain(|outermost| {
            let root = outermost.id();
            let tree = aio::task_tree();
            let copy = tree.clone();
            let drawing = drawing_digest(deep_chain(&tree, root));
            assert_eq!(drawing_digest(deep_chain(&copy, root)), drawing);
            drop(tree);
            let chain = deep_chain(&copy, root).clone();
            drop(copy);
            assert_eq!(walk_deep_chain(&chain), (DEEP, DEEP / 2 + 1));
            assert_eq!(drawing_digest(&chain), drawing);
            drop(chain);
        })
        .await;
    }
}

/// A digest of a group's drawing, which shows every field but the policy and the limit.
fn drawing_digest(group: &GroupSnapshot) -> u64 {
    struct Digest(DefaultHasher);
    impl std::fmt::Write for Digest {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.write(s.as_bytes());
            Ok(())
        }
    }
    let mut digest = Digest(DefaultHasher::new());
    write!(digest, "{group}").unwrap();
    digest.0.finish()
}

spec! {
    /// The groups aio opens on its caller's behalf (`gather`, `gather_settled`, `race`,
    /// `race_ok`, `as_completed`) have no name of their own: the task tree and the logs
    /// name them after the function and the line that called it.
    async fn groups_opened_by_gather_and_race_are_named_by_their_call_site() {
        let line = line!() + 1;
        let trees = aio::gather([async { Ok::<_, BoxError>(aio::task_tree()) }]).await.unwrap();
        let drawn = trees[0].to_string();
        assert!(drawn.contains(&format!("gather at {}:{line}:", file!())), "{drawn}");

        let line = line!() + 1;
        let tree = aio::race([async { aio::task_tree() }]).await.unwrap();
        let drawn = tree.to_string();
        assert!(drawn.contains(&format!("race at {}:{line}:", file!())), "{drawn}");
    }
}
