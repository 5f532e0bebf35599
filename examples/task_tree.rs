//! The live task tree: `aio::task_tree()` shows every task group of the process and
//! everything running in it, drawn like `python -m asyncio pstree`.
//!
//! A small service: the group `service` runs a task `api`, which opens a group `requests`
//! limited to two requests at a time (so two of its four requests wait in the queue), and a
//! task `monitor`, which takes the snapshots. The service's body opens a supervisor group,
//! `jobs`, where `flaky` fails at 100 ms and `steady` runs until it is cancelled.
//!
//! 1. Mid-flight, as soon as both groups are up: every group with its name, state, policy
//!    and limit; `req-3` and `req-4` are queued; the `monitor` taking the snapshot is the
//!    one task running; `jobs` hangs under the service's body.
//! 2. Once `req-1` (100 ms) has finished and `flaky` has failed: both have left the tree,
//!    `req-3` took `req-1`'s slot, and the supervisor group is still running. Then the
//!    monitor calls `cancel()` on the service.
//! 3. During the cancellation, from inside `steady`'s cleanup: every group is marked
//!    cancelled with the reason, the inner ones naming the origin; `req-4` never started.
//!
//! Run it with `cargo run --example task_tree`.
//!
//! It mirrors asyncio's call-graph introspection (Python 3.14):
//!
//! ```python
//! async with asyncio.TaskGroup() as tg:              # the service
//!     tg.create_task(api(), name="api")
//!     tg.create_task(monitor(), name="monitor")
//!
//! async def monitor():
//!     await asyncio.sleep(0.005)
//!     asyncio.print_call_graph()                     # or capture_call_graph()
//!
//! # and from another shell:
//! # $ python -m asyncio pstree <pid>
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{
    BoxError, CancelReason, GroupSnapshot, GroupState, JoinPolicy, TaskGroup, TaskGroupError,
    TaskSnapshot, TaskState, TaskTree, on_cancel,
};
use tokio::sync::Semaphore;
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Long enough to count as "for ever" here: whatever sleeps this long gets cancelled.
const FOREVER: Duration = Duration::from_secs(3600);

/// The snapshots taken so far, each with a label; printed as they are taken.
#[derive(Clone)]
struct Album {
    start: Instant,
    shots: Arc<Mutex<Vec<(&'static str, TaskTree)>>>,
}

impl Album {
    fn take(&self, label: &'static str) {
        self.keep(label, aio::task_tree());
    }

    /// Takes a snapshot as soon as the tree shows what `ready` looks for, looking every
    /// millisecond.
    async fn take_when(&self, label: &'static str, ready: impl Fn(&TaskTree) -> bool) {
        loop {
            let tree = aio::task_tree();
            if ready(&tree) {
                return self.keep(label, tree);
            }
            sleep(ms(1)).await;
        }
    }

    fn keep(&self, label: &'static str, tree: TaskTree) {
        println!("   -- {label}, at {} ms:", self.start.elapsed().as_millis());
        for line in tree.to_string().lines() {
            println!("   {line}");
        }
        self.shots.lock().unwrap().push((label, tree));
    }

    fn shot(&self, i: usize) -> TaskTree {
        self.shots.lock().unwrap()[i].1.clone()
    }
}

/// The `api` task: four requests in a group that runs two at a time. Adds a permit to `up`
/// once they are all spawned.
async fn api(req_4_ran: Arc<AtomicBool>, up: Arc<Semaphore>) -> Result<(), BoxError> {
    TaskGroup::<BoxError>::builder()
        .name("requests")
        .limit(2)
        .scope(|requests| async move {
            for (i, takes) in [(1, 100), (2, 1000), (3, 1000), (4, 20)] {
                let ran = Arc::clone(&req_4_ran);
                requests.spawn_named(format!("req-{i}"), async move {
                    if i == 4 {
                        ran.store(true, Ordering::SeqCst);
                    }
                    sleep(ms(takes)).await;
                    Ok(())
                })?;
            }
            up.add_permits(1);
            Ok(())
        })
        .await?;
    Ok(())
}

/// The `monitor` task: a snapshot once the service is up (both groups have spawned their
/// tasks), another once `req-1` and `flaky` are done, then it shuts the service down.
async fn monitor(
    album: Album,
    service: TaskGroup<BoxError>,
    up: Arc<Semaphore>,
) -> Result<(), BoxError> {
    up.acquire_many(2).await?.forget();
    album.take("1. mid-flight");
    album
        .take_when("2. after req-1 finished and flaky failed", |tree| {
            !has_task(tree, "req-1")
                && !has_task(tree, "flaky")
                && find_group(tree, "requests").is_none_or(|g| g.queued <= 1)
        })
        .await;
    println!("   -- the monitor calls service.cancel()");
    service.cancel();
    Ok(())
}

/// The supervisor group `jobs`, opened in the service's body. Adds a permit to `up` once
/// its tasks are spawned.
async fn jobs(album: Album, up: Arc<Semaphore>) -> Result<(), TaskGroupError<BoxError>> {
    TaskGroup::<BoxError>::builder()
        .name("jobs")
        .policy(JoinPolicy::Supervisor)
        .scope(|jobs| async move {
            jobs.spawn_named("flaky", async {
                sleep(ms(100)).await;
                Err::<(), _>("lost its database connection".into())
            })?;
            let steady = on_cancel(
                async {
                    sleep(FOREVER).await;
                    Ok(())
                },
                |_| async move {
                    // Flushing its buffers; the tree shows the cancellation meanwhile.
                    sleep(ms(20)).await;
                    album.take("3. during the cancellation, from steady's cleanup");
                    sleep(ms(10)).await;
                    Ok(())
                },
            );
            jobs.spawn_named("steady", steady)?;
            up.add_permits(1);
            Ok(())
        })
        .await
}

pub(crate) fn main() {
    let req_4_ran = Arc::new(AtomicBool::new(false));
    let r = Arc::clone(&req_4_ran);
    let (album, err) = aio::run(async move {
        let album = Album {
            start: Instant::now(),
            shots: Arc::default(),
        };
        let a = album.clone();
        let up = Arc::new(Semaphore::new(0));
        let err = TaskGroup::<BoxError>::builder()
            .name("service")
            .scope(|tg| async move {
                tg.spawn_named("api", api(r, Arc::clone(&up)))?;
                tg.spawn_named("monitor", monitor(a.clone(), tg.clone(), Arc::clone(&up)))?;
                jobs(a, up).await?;
                Ok(())
            })
            .await
            .unwrap_err();
        (album, err)
    });
    // The supervisor's failure surfaces when it ends: as the failure of the body that
    // opened it.
    println!("   the service ended: {err}");
    assert_eq!(err.len(), 1);
    let failure = err.into_failures().remove(0);
    assert!(failure.is_body());
    let jobs = failure
        .into_error()
        .downcast::<TaskGroupError<BoxError>>()
        .expect("the jobs group's error");
    assert_eq!(jobs.first().unwrap().name(), Some("flaky"));
    assert!(
        !req_4_ran.load(Ordering::SeqCst),
        "a queued task of a cancelled group never starts"
    );

    check_mid_flight(&album.shot(0));
    check_after_some_finished(&album.shot(1));
    check_cancelled(&album.shot(2));
}

/// Every group in `groups` and below, depth first.
fn all_groups<'a>(groups: &'a [GroupSnapshot], out: &mut Vec<&'a GroupSnapshot>) {
    for group in groups {
        out.push(group);
        all_groups(&group.groups, out);
        for task in &group.tasks {
            all_groups(&task.groups, out);
        }
    }
}

/// The group called `name`, wherever it is in the tree.
fn find_group<'a>(tree: &'a TaskTree, name: &str) -> Option<&'a GroupSnapshot> {
    let mut groups = Vec::new();
    all_groups(&tree.groups, &mut groups);
    groups.into_iter().find(|g| g.name.as_deref() == Some(name))
}

fn group<'a>(tree: &'a TaskTree, name: &str) -> &'a GroupSnapshot {
    find_group(tree, name).unwrap_or_else(|| panic!("no group '{name}' in\n{tree}"))
}

/// Whether a task called `name` is anywhere in the tree.
fn has_task(tree: &TaskTree, name: &str) -> bool {
    let mut groups = Vec::new();
    all_groups(&tree.groups, &mut groups);
    groups
        .iter()
        .any(|g| g.tasks.iter().any(|t| t.name.as_deref() == Some(name)))
}

/// The names and states of a group's tasks, oldest first.
fn tasks(group: &GroupSnapshot) -> Vec<(&str, TaskState)> {
    group
        .tasks
        .iter()
        .map(|t: &TaskSnapshot| (t.name.as_deref().unwrap_or("?"), t.state))
        .collect()
}

fn names(group: &GroupSnapshot) -> Vec<&str> {
    tasks(group).into_iter().map(|(name, _)| name).collect()
}

fn check_mid_flight(tree: &TaskTree) {
    let drawing = tree.to_string();
    let service = group(tree, "service");
    assert_eq!(service.state, GroupState::Running);
    assert_eq!(names(service), ["api", "monitor"]);
    // The monitor is the one task being polled: it is taking the snapshot.
    assert_eq!(tasks(service)[1].1, TaskState::Running);
    // `requests` hangs under the task that opened it; two run, two wait.
    assert_eq!(service.tasks[0].groups[0].name.as_deref(), Some("requests"));
    let requests = group(tree, "requests");
    assert_eq!((requests.limit, requests.queued), (Some(2), 2));
    let states = tasks(requests);
    assert_eq!(names(requests), ["req-1", "req-2", "req-3", "req-4"]);
    assert!(states[..2].iter().all(|(_, s)| *s != TaskState::Queued));
    assert!(states[2..].iter().all(|(_, s)| *s == TaskState::Queued));
    // `jobs` hangs under the service's body.
    assert_eq!(service.groups[0].name.as_deref(), Some("jobs"));
    let jobs = group(tree, "jobs");
    assert_eq!(jobs.policy, JoinPolicy::Supervisor);
    assert_eq!(names(jobs), ["flaky", "steady"]);
    assert!(drawing.contains("(body) task_group"), "{drawing}");
    assert!(
        drawing.contains("'requests' (running, ") && drawing.contains(", limit 2, 2 queued)"),
        "{drawing}"
    );
    assert!(drawing.contains("'req-4' (queued, "), "{drawing}");
    assert!(drawing.contains(", supervisor)"), "{drawing}");
}

fn check_after_some_finished(tree: &TaskTree) {
    let requests = group(tree, "requests");
    assert_eq!(names(requests), ["req-2", "req-3", "req-4"]);
    assert_eq!(requests.queued, 1);
    // The supervisor outlived its failed task.
    let jobs = group(tree, "jobs");
    assert_eq!(jobs.state, GroupState::Running);
    assert_eq!(names(jobs), ["steady"]);
}

fn check_cancelled(tree: &TaskTree) {
    let drawing = tree.to_string();
    let service = group(tree, "service");
    let GroupState::Cancelled(why) = &service.state else {
        panic!("the service is not cancelled:\n{drawing}");
    };
    assert_eq!(why.reason(), &CancelReason::Explicit);
    // The inner group was cancelled because the service was, and says so.
    let jobs = group(tree, "jobs");
    let GroupState::Cancelled(why) = &jobs.state else {
        panic!("jobs is not cancelled:\n{drawing}");
    };
    assert_eq!(why.reason(), &CancelReason::ParentCancelled);
    assert_eq!(why.origin(), &CancelReason::Explicit);
    assert_eq!(tasks(jobs), [("steady", TaskState::Running)]);
    assert!(
        drawing.contains("'service' (cancelled: cancelled explicitly, "),
        "{drawing}"
    );
}
