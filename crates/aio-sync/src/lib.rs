//! asyncio's synchronisation primitives for aio: `Lock`, `Event`, `Condition`, `Semaphore`,
//! `BoundedSemaphore`, `Barrier` and the `Queue` family, strictly FIFO-fair and cancel safe.
//!
//! Most users reach them through the facade, the package `aio-rs` (library `aio`), as
//! `aio::sync` and, flat, `aio::Lock` and friends.

mod barrier;
mod blocking;
mod bounded_semaphore;
mod condition;
mod error;
mod event;
mod handoff;
mod lock;
mod model;
mod permits;
mod queue;
mod semaphore;
mod wait_list;

pub use barrier::{Barrier, BarrierWait, BrokenBarrierError};
pub use bounded_semaphore::BoundedSemaphore;
pub use condition::{Condition, ConditionGuard};
pub use error::{ReleaseError, TryAcquireError, TryLockError};
pub use event::Event;
pub use lock::{Lock, LockGuard, OwnedLockGuard};
pub use queue::{
    GetError, LifoQueue, PriorityQueue, PutError, Queue, QueueGet, QueueJoin, QueuePut,
    QueueStream, TaskDoneError,
};
pub use semaphore::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};

/// The named futures the primitives' waiting methods return, for when one must be stored,
/// or polled by reference (`&mut fut` in a `select!`). Each is `#[must_use]` and does
/// nothing until polled.
pub mod futures {
    pub use crate::barrier::BarrierWait;
    pub use crate::condition::{ConditionLock, ConditionWait, ConditionWaitFor};
    pub use crate::event::EventWait;
    pub use crate::lock::{LockAcquire, LockFuture, OwnedLockFuture};
    pub use crate::queue::{QueueGet, QueueJoin, QueuePut};
    pub use crate::semaphore::{OwnedSemaphoreAcquire, SemaphoreAcquire};
}
