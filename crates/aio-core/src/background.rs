//! Background work: what aio runs on its own after the code that caused it has moved on
//! (the reapers of dropped task groups, detached shields). Inside a [`run`](crate::run)
//! scope it is tracked by the scope, which waits for it before shutting down; elsewhere it
//! is tracked per runtime, and [`join_background`] waits for it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::runtime::{self, Handle};
use tokio_util::task::TaskTracker;

/// The background work started outside every [`run`](crate::run) scope (under `#[tokio::main]`, or in
/// a runtime a library built), per runtime.
static OUTSIDE_RUN: LazyLock<Mutex<HashMap<runtime::Id, TaskTracker>>> =
    LazyLock::new(Default::default);

/// Spawns aio's background work on `runtime`: tracked by `tracker`, its [`run`](crate::run) scope's, if
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

/// The tracker of the background work started outside [`run`](crate::run) scopes on `runtime`.
pub(crate) fn outside_run(runtime: &Handle) -> TaskTracker {
    trackers().entry(runtime.id()).or_default().clone()
}

/// Forgets `runtime`'s tracker if it holds no work: nothing leaks per runtime.
pub(crate) fn forget_outside_run(runtime: &Handle) {
    let mut trackers = trackers();
    if trackers
        .get(&runtime.id())
        .is_some_and(TaskTracker::is_empty)
    {
        trackers.remove(&runtime.id());
    }
}

/// Waits for the background work aio started outside [`run`](crate::run) scopes on the current runtime,
/// at most `grace`: the reapers of task groups dropped before they finished (their tasks'
/// `on_cancel` cleanup) and detached shields. Returns `true` if all of it finished.
///
/// [`run`](crate::run) and `#[aio::main]` do this themselves before they shut their runtime down. Under
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
