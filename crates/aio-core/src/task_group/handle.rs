//! [`TaskHandle`]: the result of one task in a group.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::ChildCell;
use crate::{Cancelled, TaskId};

/// Why a task's handle has no value.
///
/// A task that failed or panicked cancelled its group, and whoever awaits its handle inside
/// that group is cancelled with it, as in asyncio. So [`Failed`](Self::Failed) and
/// [`Panicked`](Self::Panicked) carry that cancellation: an awaiter that passes the error
/// up with `?` passes a cancellation up, and the failure is reported once, by the group.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task returned an error. The error itself belongs to the group: it is in the
    /// [`TaskGroupError`](crate::TaskGroupError) the group's scope returns.
    #[error("the task failed; its error is reported by its task group")]
    Failed(Cancelled),
    /// The task was cancelled, or passed a cancellation up.
    #[error("the task was {0}")]
    Cancelled(Cancelled),
    /// The task panicked. The panic is re-raised by the group's scope once every other
    /// task has finished.
    #[error("the task panicked; the panic is re-raised by its task group")]
    Panicked(Cancelled),
    /// The task was dropped before it finished: its group was dropped without being
    /// awaited and the task did not finish within the grace period, or the runtime shut
    /// down, or (for a [`LocalGroup`](crate::LocalGroup)'s task) the scope's future was
    /// dropped, taking its tasks with it.
    #[error("the task was aborted after its task group was dropped")]
    Aborted,
    /// [`TaskHandle::result`] was called before the task finished.
    #[error("the task has not finished yet")]
    NotFinished,
    /// The task's result was taken already, by an earlier `.await` of the handle (through
    /// `&mut handle`) or by [`TaskHandle::result`].
    #[error("the task's result was already taken")]
    Taken,
}

impl TaskError {
    /// The cancellation this error stands for: the task's own, or the one its failure
    /// caused in its group. `None` for [`Aborted`](Self::Aborted),
    /// [`NotFinished`](Self::NotFinished) and [`Taken`](Self::Taken).
    pub fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            TaskError::Failed(c) | TaskError::Cancelled(c) | TaskError::Panicked(c) => Some(c),
            TaskError::Aborted | TaskError::NotFinished | TaskError::Taken => None,
        }
    }
}

/// How a finished task ended, remembered after its result has been taken, so that
/// `has_failed()` and `is_cancelled()` keep answering.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Ending {
    Value,
    Failed,
    Cancelled,
}

impl Ending {
    pub(crate) fn of<T, E: std::borrow::Borrow<TaskError>>(result: &Result<T, E>) -> Self {
        match result.as_ref().map_err(|e| e.borrow()) {
            Err(TaskError::Failed(_) | TaskError::Panicked(_)) => Ending::Failed,
            Err(TaskError::Cancelled(_) | TaskError::Aborted) => Ending::Cancelled,
            _ => Ending::Value,
        }
    }
}

/// An owned handle to a task spawned into a [`TaskGroup`](crate::TaskGroup) or a
/// [`LocalGroup`](crate::LocalGroup).
///
/// `.await` it inside the group's scope to wait for the task's value, or call
/// [`result`](Self::result) after the scope has returned, when every task is finished and
/// no waiting is needed (asyncio's `task.result()`). Dropping a handle does not cancel or
/// detach the task: the group still owns it.
///
/// A handle is a future, like Tokio's `JoinHandle`, and `Unpin`: await `&mut handle` to
/// wait without giving the handle up, in `tokio::select!` or under a
/// [`wait_for`](crate::wait_for) that may time out. Once the result has been taken, the
/// handle returns [`TaskError::Taken`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_core::{BoxError, TaskGroup};
///
/// let (a, b) = TaskGroup::<BoxError>::scope(|tg| async move {
///     let a = tg.spawn(async { Ok(1) })?;
///     let b = tg.spawn(async { Ok(2) })?;
///     Ok((a, b))
/// })
/// .await
/// .unwrap();
/// // The scope has returned, so both tasks are done.
/// assert_eq!(a.result(), Ok(1));
/// assert_eq!(b.result(), Ok(2));
/// # }
/// ```
pub struct TaskHandle<T> {
    cell: Arc<ChildCell<T>>,
}

impl<T> TaskHandle<T> {
    pub(crate) fn new(cell: Arc<ChildCell<T>>) -> Self {
        TaskHandle { cell }
    }

    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.cell.id()
    }

    /// The task's name, if it was spawned with one.
    pub fn name(&self) -> Option<&str> {
        self.cell.name().map(|name| &**name)
    }

    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        self.cell.is_finished()
    }

    /// Whether the task has finished with a failure or a panic: asyncio's
    /// `t.exception() is not None`. The failure itself belongs to the group (see
    /// [`TaskGroup::take_failure`](crate::TaskGroup::take_failure)).
    pub fn has_failed(&self) -> bool {
        self.cell.has_failed()
    }

    /// Whether the task has finished cancelled: asyncio's `t.cancelled()`.
    pub fn is_cancelled(&self) -> bool {
        self.cell.was_cancelled()
    }

    /// Cancels this task alone, as asyncio's `t.cancel()` does: the task is cancelled at
    /// its next `.await`, runs its cleanup, and ends with [`TaskError::Cancelled`]. Its
    /// group and siblings go on; a task ending cancelled is not a failure. A task that has
    /// not started never starts, not even one waiting for a slot of a limited group.
    ///
    /// Returns `false` if the task has already finished, `true` otherwise, even if it was
    /// cancelled before. Cancellation is level-triggered: there is no `uncancel`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// use std::time::Duration;
    /// use aio_core::{BoxError, TaskError, TaskGroup};
    ///
    /// TaskGroup::<BoxError>::scope(|tg| async move {
    ///     let slow = tg.spawn(async {
    ///         tokio::time::sleep(Duration::from_secs(60)).await;
    ///         Ok::<_, BoxError>("slow")
    ///     })?;
    ///     let fast = tg.spawn(async { Ok::<_, BoxError>("fast") })?;
    ///     assert_eq!(fast.await?, "fast");
    ///     assert!(slow.cancel());
    ///     assert!(matches!(slow.await, Err(TaskError::Cancelled(_))));
    ///     Ok(())
    /// })
    /// .await
    /// .unwrap(); // the group did not fail
    /// # }
    /// ```
    pub fn cancel(&self) -> bool {
        self.cell.cancel(None)
    }

    /// Like [`cancel`](Self::cancel), with a message: asyncio's `t.cancel(msg)`. The
    /// [`Cancelled`] the task sees, and the one its handle returns, carry it
    /// ([`Cancelled::message`]). A task that was already cancelled keeps its first reason
    /// and message.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_core::{BoxError, TaskError, TaskGroup};
    ///
    /// TaskGroup::<BoxError>::scope(|tg| async move {
    ///     let worker = tg.spawn(std::future::pending::<Result<(), BoxError>>())?;
    ///     worker.cancel_with("no longer needed");
    ///     match worker.await {
    ///         Err(TaskError::Cancelled(c)) => assert_eq!(c.message(), Some("no longer needed")),
    ///         other => panic!("{other:?}"),
    ///     }
    ///     Ok(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn cancel_with(&self, message: impl Into<Arc<str>>) -> bool {
        self.cell.cancel(Some(message.into()))
    }

    /// Polls for the task to finish, without taking its result.
    pub(crate) fn poll_finished(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.cell.poll_finished(cx)
    }

    /// The task's result, without waiting.
    ///
    /// # Errors
    ///
    /// [`TaskError::NotFinished`] while the task runs, [`TaskError::Taken`] if an `.await`
    /// took the result already; otherwise how the task ended.
    pub fn result(self) -> Result<T, TaskError> {
        self.cell.take().unwrap_or(Err(TaskError::NotFinished))
    }
}

impl<T> fmt::Debug for TaskHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskHandle")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Waits for the task's result.
///
/// # Cancel safety
///
/// Cancel safe: the task keeps running and the group still collects it. Dropping a poll of
/// `&mut handle` loses nothing: the result stays in the handle until a poll returns it.
impl<T> Future for TaskHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.cell.poll_take(cx)
    }
}
