//! [`run`]: `asyncio.run` for aio.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::runtime::{self, Builder, Handle};
use tokio_util::task::TaskTracker;

use crate::CancelReason;
use crate::scope::{self, Node, NodeKind};
use crate::task_group::DEFAULT_GRACE;

/// Runs `main` to completion on a new multi-thread Tokio runtime and shuts it down:
/// `asyncio.run(main())`.
///
/// `main` runs in a root scope. When it returns, the scope is cancelled with
/// [`CancelReason::Shutdown`], background work that aio owns (the reapers of dropped task
/// groups, detached shields started outside any group) gets up to [`DEFAULT_GRACE`] to
/// finish, and the runtime is shut down, waiting at most as long for blocking threads.
/// A panic in `main` propagates.
///
/// # Panics
///
/// Panics if the runtime cannot be built, or if called from inside a Tokio runtime (await
/// `main` there instead). [`run_with`] returns these as errors.
///
/// # Examples
///
/// ```
/// use aio_core::{BoxError, TaskGroup};
///
/// let total = aio_core::run(async {
///     TaskGroup::<BoxError>::scope(|tg| async move {
///         let a = tg.spawn(async { Ok(20) })?;
///         let b = tg.spawn(async { Ok(22) })?;
///         Ok(a.await? + b.await?)
///     })
///     .await
/// });
/// assert_eq!(total.unwrap(), 42);
/// ```
pub fn run<F: Future>(main: F) -> F::Output {
    let mut builder = Builder::new_multi_thread();
    builder.enable_all();
    run_with(&mut builder, main).unwrap_or_else(|e| panic!("aio::run: {e}"))
}

/// Like [`run`], on a runtime you configure: `run_with(Builder::new_current_thread()
/// .enable_all(), main)`. Enable the time driver: aio's timeouts and the reaper need it.
///
/// # Errors
///
/// The runtime could not be built, or this was called from inside a Tokio runtime.
///
/// # Examples
///
/// ```
/// let mut builder = tokio::runtime::Builder::new_current_thread();
/// builder.enable_time();
/// let out = aio_core::run_with(&mut builder, async { 1 + 1 }).unwrap();
/// assert_eq!(out, 2);
/// ```
pub fn run_with<F: Future>(builder: &mut Builder, main: F) -> io::Result<F::Output> {
    if Handle::try_current().is_ok() {
        return Err(io::Error::other(
            "cannot start a runtime from inside a Tokio runtime; await the future instead",
        ));
    }
    let runtime = builder.build()?;
    let tracker = TaskTracker::new();
    let root = Node::new(
        NodeKind::Root {
            tracker: tracker.clone(),
        },
        None,
        false,
    );
    let output = runtime.block_on(scope::in_node(root.clone(), main));
    root.cancel(CancelReason::Shutdown);
    // Background work of the root scope, and of code outside it on this runtime (a group
    // dropped in a task that `tokio::spawn` started, such as a server's connection task).
    let outside = outside_run(runtime.handle());
    tracker.close();
    outside.close();
    if !(tracker.is_empty() && outside.is_empty()) {
        runtime.block_on(async {
            let both = async {
                tracker.wait().await;
                outside.wait().await;
            };
            if tokio::time::timeout(DEFAULT_GRACE, both).await.is_err() {
                tracing::warn!(
                    tasks = tracker.len() + outside.len(),
                    "background tasks still running at shutdown after the grace period"
                );
            }
        });
    }
    let handle = runtime.handle().clone();
    runtime.shutdown_timeout(DEFAULT_GRACE);
    forget_outside_run(&handle);
    Ok(output)
}

/// The background work started outside every [`run`] scope (under `#[tokio::main]`, or in
/// a runtime a library built), per runtime.
static OUTSIDE_RUN: LazyLock<Mutex<HashMap<runtime::Id, TaskTracker>>> =
    LazyLock::new(Default::default);

/// Spawns aio's background work on `runtime`: tracked by `tracker`, its [`run`] scope's, if
/// it has one, else among what [`join_background`] waits for.
pub(crate) fn spawn_background(
    runtime: &Handle,
    tracker: Option<&TaskTracker>,
    work: impl Future<Output = ()> + Send + 'static,
) {
    let work = match tracker {
        Some(tracker) => tracker.track_future(work),
        // Tracked under the lock, so that `join_background` never forgets a tracker that
        // is about to hold work.
        None => trackers()
            .entry(runtime.id())
            .or_default()
            .track_future(work),
    };
    drop(runtime.spawn(work));
}

fn trackers() -> MutexGuard<'static, HashMap<runtime::Id, TaskTracker>> {
    OUTSIDE_RUN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The tracker of the background work started outside [`run`] scopes on `runtime`.
fn outside_run(runtime: &Handle) -> TaskTracker {
    trackers().entry(runtime.id()).or_default().clone()
}

/// Forgets `runtime`'s tracker if it holds no work: nothing leaks per runtime.
fn forget_outside_run(runtime: &Handle) {
    let mut trackers = trackers();
    if trackers
        .get(&runtime.id())
        .is_some_and(TaskTracker::is_empty)
    {
        trackers.remove(&runtime.id());
    }
}

/// Waits for the background work aio started outside [`run`] scopes on the current runtime,
/// at most `grace`: the reapers of task groups dropped before they finished (their tasks'
/// `on_cancel` cleanup) and detached shields. Returns `true` if all of it finished.
///
/// [`run`] and `#[aio::main]` do this themselves before they shut their runtime down. Under
/// `#[tokio::main]` nothing does: when `main` returns, the runtime drops whatever is still
/// running, cleanup included. End `main` with this one line to keep that cleanup:
///
/// ```
/// #[tokio::main]
/// async fn main() {
///     // ... the application, which may drop unfinished task groups ...
///     aio_core::join_background(aio_core::DEFAULT_GRACE).await;
/// }
/// ```
///
/// Work that is still running after `grace` is left to the runtime, and a warning says so.
///
/// # Panics
///
/// Outside a Tokio runtime.
///
/// # Cancel safety
///
/// Cancel safe: it only waits.
pub async fn join_background(grace: Duration) -> bool {
    let runtime = Handle::current();
    let tracker = outside_run(&runtime);
    // Closed, the tracker still tracks new work; `wait` returns once it holds none.
    tracker.close();
    let finished = tokio::time::timeout(grace, tracker.wait()).await.is_ok();
    if finished {
        forget_outside_run(&runtime);
    } else {
        tracing::warn!(
            tasks = tracker.len(),
            ?grace,
            "aio background work still running after the grace period"
        );
    }
    finished
}
