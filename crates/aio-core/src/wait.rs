//! [`wait`]: `asyncio.wait` over handles: a group's tasks, and the pools' jobs.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::TaskHandle;

/// When [`wait`] returns: asyncio's `return_when`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReturnWhen {
    /// As soon as any task has finished.
    FirstCompleted,
    /// As soon as a task has failed or panicked (a cancelled task does not count), or when
    /// every task has finished.
    FirstError,
    /// When every task has finished.
    AllCompleted,
}

/// A handle [`wait`] can watch: work that ends on its own and keeps its result until it is
/// taken, as asyncio's futures do (`done()`, `exception()`).
///
/// [`TaskHandle`] is one; so are the pools' handles of aio's blocking crate (a thread pool's
/// `JobHandle`, a process pool's `ProcessHandle`), so one `wait` covers tasks, threads and
/// processes alike.
pub trait Waitable {
    /// Ready once the work has finished. Does not take the result: the handle still has
    /// it.
    fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<()>;

    /// Whether the work has finished, as the last [`poll_finished`](Self::poll_finished)
    /// saw it.
    fn is_finished(&self) -> bool;

    /// Whether the work has finished with a failure or a panic, not a cancellation: what
    /// [`ReturnWhen::FirstError`] waits for.
    fn has_failed(&self) -> bool;
}

impl<T> Waitable for TaskHandle<T> {
    fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        TaskHandle::poll_finished(self, cx)
    }

    fn is_finished(&self) -> bool {
        TaskHandle::is_finished(self)
    }

    fn has_failed(&self) -> bool {
        TaskHandle::has_failed(self)
    }
}

/// Waits until tasks finish, as [`ReturnWhen`] says, and moves the finished ones out of
/// `handles`: `done, pending = await asyncio.wait(tasks, return_when=...)`.
///
/// `handles` may be a group's [`TaskHandle`]s or any other [`Waitable`] handles (a thread
/// pool's jobs, a process pool's tasks). The returned `Vec` holds the finished handles;
/// `handles` keeps the ones still running, in their order. Nothing is cancelled: tasks stay
/// owned by their group, which waits for them, and jobs go on in their pool.
/// Several handles may have finished by the time `wait` returns, even for
/// [`ReturnWhen::FirstCompleted`]. With no handles, it returns at once.
///
/// # Cancel safety
///
/// Cancel safe: until it returns, every handle stays in `handles`. Bound it with a
/// [`timeout`](crate::timeout) (asyncio's `timeout=`): on `Elapsed` nothing is lost.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use aio_core::{BoxError, ReturnWhen, TaskGroup};
/// use tokio::time::sleep;
///
/// TaskGroup::<BoxError>::scope(|tg| async move {
///     let mut pending = vec![
///         tg.spawn(async { sleep(Duration::from_millis(20)).await; Ok("slow") })?,
///         tg.spawn(async { sleep(Duration::from_millis(10)).await; Ok("fast") })?,
///     ];
///     let done = aio_core::wait(&mut pending, ReturnWhen::FirstCompleted).await;
///     assert_eq!(done.len(), 1);
///     assert_eq!(done.into_iter().next().unwrap().result()?, "fast");
///     assert_eq!(pending.len(), 1); // still running, still in the group
///     Ok(())
/// })
/// .await
/// .unwrap();
/// # }
/// ```
pub fn wait<H: Waitable>(handles: &mut Vec<H>, when: ReturnWhen) -> Wait<'_, H> {
    Wait { handles, when }
}

/// Future returned by [`wait`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Wait<'a, H> {
    handles: &'a mut Vec<H>,
    when: ReturnWhen,
}

impl<H> fmt::Debug for Wait<'_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("handles", &self.handles.len())
            .field("when", &self.when)
            .finish()
    }
}

impl<H: Waitable> Future for Wait<'_, H> {
    type Output = Vec<H>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut finished = 0;
        let mut failed = false;
        for handle in self.handles.iter_mut() {
            if handle.poll_finished(cx).is_ready() {
                finished += 1;
                failed |= handle.has_failed();
            }
        }
        let all = finished == self.handles.len();
        let ready = all
            || match self.when {
                ReturnWhen::FirstCompleted => finished > 0,
                ReturnWhen::FirstError => failed,
                ReturnWhen::AllCompleted => false,
            };
        if !ready {
            return Poll::Pending;
        }
        let (done, pending) = std::mem::take(self.handles)
            .into_iter()
            .partition(Waitable::is_finished);
        *self.handles = pending;
        Poll::Ready(done)
    }
}
