//! The errors of the queues: [`PutError`], [`GetError`] and [`TaskDoneError`].

use std::fmt;

/// The error of a put that the queue refused, with the item handed back.
///
/// [`put_nowait`](crate::Queue::put_nowait) fails with [`Full`](PutError::Full) (asyncio's
/// `QueueFull`) or [`ShutDown`](PutError::ShutDown) (asyncio's `QueueShutDown`);
/// [`put`](crate::Queue::put) waits for room, so it fails only with `ShutDown`.
///
/// # Examples
///
/// ```
/// use aio_sync::{PutError, Queue};
///
/// let queue = Queue::new(1);
/// queue.put_nowait("first").unwrap();
/// let err = queue.put_nowait("second").unwrap_err();
/// assert!(matches!(err, PutError::Full(_)));
/// assert_eq!(err.to_string(), "the queue is full");
/// assert_eq!(err.into_inner(), "second");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PutError<T> {
    /// The queue has no room, or other puts wait for room before this one.
    #[error("the queue is full")]
    Full(T),
    /// The queue is shut down: it takes no more items.
    #[error("the queue is shut down")]
    ShutDown(T),
}

impl<T> PutError<T> {
    /// The item that was not put.
    pub fn into_inner(self) -> T {
        match self {
            PutError::Full(item) | PutError::ShutDown(item) => item,
        }
    }

    /// Whether the queue refused the item for lack of room.
    pub fn is_full(&self) -> bool {
        matches!(self, PutError::Full(_))
    }

    /// Whether the queue refused the item because it is shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, PutError::ShutDown(_))
    }
}

impl<T> fmt::Debug for PutError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Like tokio's `SendError`: the item need not be `Debug`.
        match self {
            PutError::Full(_) => f.write_str("Full(..)"),
            PutError::ShutDown(_) => f.write_str("ShutDown(..)"),
        }
    }
}

/// The error of a get that found no item.
///
/// [`get_nowait`](crate::Queue::get_nowait) fails with [`Empty`](GetError::Empty)
/// (asyncio's `QueueEmpty`) or [`ShutDown`](GetError::ShutDown) (asyncio's
/// `QueueShutDown`); [`get`](crate::Queue::get) waits for an item, so it fails only with
/// `ShutDown`.
///
/// # Examples
///
/// ```
/// use aio_sync::{GetError, Queue};
///
/// let queue = Queue::<u32>::new(0);
/// assert_eq!(queue.get_nowait(), Err(GetError::Empty));
/// queue.shutdown(false);
/// assert_eq!(queue.get_nowait(), Err(GetError::ShutDown));
/// assert_eq!(GetError::ShutDown.to_string(), "the queue is shut down and empty");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GetError {
    /// The queue holds no item for this get.
    #[error("the queue is empty")]
    Empty,
    /// The queue is shut down, and holds no more items.
    #[error("the queue is shut down and empty")]
    ShutDown,
}

/// The error of [`task_done`](crate::Queue::task_done) called more times than items were
/// put: asyncio's `ValueError('task_done() called too many times')`.
///
/// Nothing changed: the count of unfinished tasks stays 0.
///
/// # Examples
///
/// ```
/// use aio_sync::{Queue, TaskDoneError};
///
/// let queue = Queue::<u32>::new(0);
/// assert_eq!(queue.task_done(), Err(TaskDoneError));
/// assert_eq!(
///     TaskDoneError.to_string(),
///     "task_done() called more times than items were put"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("task_done() called more times than items were put")]
pub struct TaskDoneError;
