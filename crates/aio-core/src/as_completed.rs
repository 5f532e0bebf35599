//! [`as_completed`]: outcomes in the order they happen, as a `Stream`.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::Stream;
use futures::task::AtomicWaker;

use crate::scope;
use crate::task_group::{GroupConfig, GroupCore, Site, reap};
use crate::util::lock;
use crate::{Cancelled, TaskGroupError};

/// Runs every future as a task of a new group and yields their outputs as they finish:
/// `asyncio.as_completed(aws)`, as a [`Stream`].
///
/// Each future's output is yielded as it is, so a fallible future yields its `Err` in turn
/// and the others keep running. The stream ends when every task has finished. The tasks
/// run inside the caller's scope: if it is cancelled, they are, and the stream ends early.
/// Dropping the stream before the end cancels the tasks that are still running and reaps
/// them in the background, like a dropped [`TaskGroup`](crate::TaskGroup). To wait for the
/// next outcome for a limited time, use [`timeout`](crate::timeout) around `next()`: the
/// tasks are not cancelled.
///
/// # Panics
///
/// Must be called inside a Tokio runtime. A task's panic cancels the other tasks and is
/// re-raised by the stream once they have finished.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use futures::StreamExt;
/// use tokio::time::sleep;
///
/// let jobs = [30, 10, 20].map(|ms| async move {
///     sleep(Duration::from_millis(ms)).await;
///     ms
/// });
/// let order: Vec<u64> = aio_core::as_completed(jobs).collect().await;
/// assert_eq!(order, [10, 20, 30]);
/// # }
/// ```
#[track_caller]
pub fn as_completed<I, F>(futures: I) -> AsCompleted<F::Output>
where
    I: IntoIterator<Item = F>,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let outer = scope::current();
    let config = GroupConfig {
        site: Some(Site {
            what: "as_completed",
            at: Location::caller(),
        }),
        ..GroupConfig::default()
    };
    let core = GroupCore::new(config, outer.clone(), false);
    let completed = Arc::new(Completed {
        outputs: Mutex::new(VecDeque::new()),
        waker: AtomicWaker::new(),
    });
    for fut in futures {
        let completed = Arc::clone(&completed);
        let task = async move {
            let output = fut.await;
            lock(&completed.outputs).push_back(output);
            completed.waker.wake();
            Ok::<(), Cancelled>(())
        };
        // Refused only if the caller's scope is cancelled: then there is nothing to run.
        if core.spawn(None, task, false).is_err() {
            break;
        }
    }
    AsCompleted {
        core: Some(core),
        completed,
        outer,
    }
}

struct Completed<T> {
    outputs: Mutex<VecDeque<T>>,
    waker: AtomicWaker,
}

/// Stream returned by [`as_completed`].
#[must_use = "streams do nothing unless polled"]
pub struct AsCompleted<T> {
    /// `None` once the stream has ended.
    core: Option<Arc<GroupCore>>,
    completed: Arc<Completed<T>>,
    outer: Option<Arc<scope::Node>>,
}

impl<T> fmt::Debug for AsCompleted<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsCompleted")
            .field("ended", &self.core.is_none())
            .finish_non_exhaustive()
    }
}

impl<T> Stream for AsCompleted<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let Some(core) = self.core.clone() else {
            return Poll::Ready(None);
        };
        self.completed.waker.register(cx.waker());
        if let Some(output) = lock(&self.completed.outputs).pop_front() {
            return Poll::Ready(Some(output));
        }
        if core.poll_finish(cx).is_pending() {
            return Poll::Pending;
        }
        // Every task is done; an output may have arrived just before the last one ended.
        if let Some(output) = lock(&self.completed.outputs).pop_front() {
            return Poll::Ready(Some(output));
        }
        self.core = None;
        core.finalize();
        // Re-raises a task's panic; a cancellation from outside just ends the stream.
        let _: Result<(), TaskGroupError<Cancelled>> =
            core.conclude(Some(()), None, false, self.outer.as_deref());
        Poll::Ready(None)
    }
}

impl<T> Drop for AsCompleted<T> {
    fn drop(&mut self) {
        if let Some(core) = self.core.take() {
            reap(core);
        }
    }
}
