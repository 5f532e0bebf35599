//! The futures of the queues, and [`QueueStream`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::stream::{FusedStream, Stream};

use super::error::{GetError, PutError};
use super::shared::{GetStage, JoinStage, PutStage, Shared};

/// Future returned by the queues' `get`, such as [`Queue::get`](crate::Queue::get).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct QueueGet<'a, T> {
    pub(super) shared: &'a Shared<T>,
    pub(super) stage: GetStage,
}

impl<T> Future for QueueGet<'_, T> {
    type Output = Result<T, GetError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.shared.poll_get(&mut this.stage, cx)
    }
}

impl<T> Drop for QueueGet<'_, T> {
    fn drop(&mut self) {
        self.shared.cancel_get(&mut self.stage);
    }
}

impl<T> fmt::Debug for QueueGet<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueGet")
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

/// Future returned by the queues' `put`, such as [`Queue::put`](crate::Queue::put).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct QueuePut<'a, T> {
    pub(super) shared: &'a Shared<T>,
    pub(super) stage: PutStage<T>,
}

// The item is moved, never pinned.
impl<T> Unpin for QueuePut<'_, T> {}

impl<T> Future for QueuePut<'_, T> {
    type Output = Result<(), PutError<T>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.shared.poll_put(&mut this.stage, cx)
    }
}

impl<T> Drop for QueuePut<'_, T> {
    fn drop(&mut self) {
        // An item the queue had not accepted is dropped here, outside the lock.
        drop(self.shared.cancel_put(&mut self.stage));
    }
}

impl<T> fmt::Debug for QueuePut<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            PutStage::Start(_) => "start",
            PutStage::Waiting { .. } => "waiting",
            PutStage::Done => "done",
        };
        f.debug_struct("QueuePut")
            .field("stage", &format_args!("{stage}"))
            .finish_non_exhaustive()
    }
}

/// Future returned by the queues' `join`, such as [`Queue::join`](crate::Queue::join).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct QueueJoin<'a, T> {
    pub(super) shared: &'a Shared<T>,
    pub(super) stage: JoinStage,
}

impl<T> Future for QueueJoin<'_, T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.shared.poll_join(&mut this.stage, cx)
    }
}

impl<T> Drop for QueueJoin<'_, T> {
    fn drop(&mut self) {
        self.shared.cancel_join(&mut self.stage);
    }
}

impl<T> fmt::Debug for QueueJoin<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueJoin")
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

/// The items of a queue as a [`Stream`], from the queues' `stream`, such as
/// [`Queue::stream`](crate::Queue::stream).
///
/// Each item is a [`get`](crate::Queue::get); the stream ends once the queue is shut down
/// and holds no more items (after an immediate shutdown, at once). It does not call
/// [`task_done`](crate::Queue::task_done).
///
/// # Cancel safety
///
/// As `get`: dropping the stream while it waits for an item loses no item. An item
/// reserved for it is passed to the next waiting getter, or left in the queue.
#[must_use = "streams do nothing unless polled"]
pub struct QueueStream<T> {
    pub(super) shared: Arc<Shared<T>>,
    pub(super) stage: GetStage,
    pub(super) ended: bool,
}

impl<T> Stream for QueueStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match std::task::ready!(this.shared.poll_get(&mut this.stage, cx)) {
            Ok(item) => {
                this.stage = GetStage::Start;
                Poll::Ready(Some(item))
            }
            Err(_) => {
                this.ended = true;
                Poll::Ready(None)
            }
        }
    }
}

impl<T> FusedStream for QueueStream<T> {
    fn is_terminated(&self) -> bool {
        self.ended
    }
}

impl<T> Drop for QueueStream<T> {
    fn drop(&mut self) {
        self.shared.cancel_get(&mut self.stage);
    }
}

impl<T> fmt::Debug for QueueStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueStream")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
