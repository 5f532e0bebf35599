//! [`run`]: `asyncio.run` for aio.

use std::future::Future;
use std::io;

use tokio::runtime::{Builder, Handle};
use tokio_util::task::TaskTracker;

use crate::CancelReason;
use crate::background::{forget_outside_run, outside_run};
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
