//! [`wait`]: `asyncio.wait` over task handles.

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

/// Waits until tasks finish, as [`ReturnWhen`] says, and moves the finished ones out of
/// `handles`: `done, pending = await asyncio.wait(tasks, return_when=...)`.
///
/// The returned `Vec` holds the finished handles; `handles` keeps the ones still running, in
/// their order. Those stay owned by their group, which waits for them: nothing is cancelled.
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
pub fn wait<T>(handles: &mut Vec<TaskHandle<T>>, when: ReturnWhen) -> Wait<'_, T> {
    Wait { handles, when }
}

/// Future returned by [`wait`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Wait<'a, T> {
    handles: &'a mut Vec<TaskHandle<T>>,
    when: ReturnWhen,
}

impl<T> fmt::Debug for Wait<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wait")
            .field("handles", &self.handles.len())
            .field("when", &self.when)
            .finish()
    }
}

impl<T> Future for Wait<'_, T> {
    type Output = Vec<TaskHandle<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut finished = 0;
        let mut failed = false;
        for handle in self.handles.iter() {
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
            .partition(TaskHandle::is_finished);
        *self.handles = pending;
        Poll::Ready(done)
    }
}
