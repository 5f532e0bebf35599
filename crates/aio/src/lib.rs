//! # aio
//!
//! Python asyncio's structured-concurrency model, built on Tokio: task groups that cannot
//! leak, cancellation that composes, and primitives that never lose a wake-up.
//!
//! ```
//! use std::time::Duration;
//! use aio::{BoxError, TaskGroup, timeout};
//!
//! let out = aio::run(async {
//!     timeout(Duration::from_secs(1), TaskGroup::<BoxError>::scope(|tg| async move {
//!         let a = tg.spawn(async { Ok(1) })?;
//!         let b = tg.spawn(async { Ok(2) })?;
//!         Ok(a.await? + b.await?)
//!     }))
//!     .await
//! });
//! assert_eq!(out.unwrap().unwrap(), 3);
//! ```
//!
//! * The core (everything at the top level): cancel scopes, [`TaskGroup`], [`shield`],
//!   [`on_cancel`], [`timeout`] and friends, [`run`]. See the `aio-core` crate.
//! * [`sync`]: asyncio's synchronisation primitives. [`Lock`], [`Event`], [`Condition`],
//!   [`Semaphore`], [`BoundedSemaphore`], [`Barrier`], [`Queue`], [`PriorityQueue`] and
//!   [`LifoQueue`], with their guards and errors, are also at the top level, as
//!   `asyncio.Lock` and friends are; their named futures are in [`sync`].
//! * [`blocking`]: thread and process offload. [`to_thread`], [`CapacityLimiter`] and
//!   [`ThreadPool`], with their handles and errors, are also at the top level, as
//!   `asyncio.to_thread` is; so is [`ProcessPool`], and [`process`] holds the rest of
//!   process offload: `init`, the registry, handles, errors.
//!
//! The guide lives in the repository's `docs/` folder; `docs/asyncio-to-aio.md` maps each
//! asyncio idiom to its aio twin.

pub use aio_core::*;

/// `#[aio::main]`: runs `async fn main` under [`run`]'s rules; see [`run`]. Options:
/// `flavor`, `worker_threads`, and `process = <registry>` to call [`process::init`] before
/// any runtime exists.
pub use aio_macros::main;
/// `#[aio::test]`: `#[tokio::test]` under [`run`]'s rules: `current_thread` by default,
/// `start_paused = true` for paused time (Tokio's `test-util` feature).
pub use aio_macros::test;

/// What `#[aio::main]` and `#[aio::test]` expand to. Not public API.
#[doc(hidden)]
pub mod __private {
    pub use tokio;

    /// Runs `main` on the runtime `builder` builds, as [`run_with`](crate::run_with) does.
    pub fn run<F: std::future::Future>(
        builder: &mut tokio::runtime::Builder,
        main: F,
    ) -> F::Output {
        crate::run_with(builder, main).unwrap_or_else(|e| panic!("aio: {e}"))
    }
}

#[doc(inline)]
pub use aio_sync as sync;

pub use aio_sync::{
    Barrier, BoundedSemaphore, BrokenBarrierError, Condition, ConditionGuard, Event, GetError,
    LifoQueue, Lock, LockGuard, OwnedLockGuard, OwnedSemaphorePermit, PriorityQueue, PutError,
    Queue, ReleaseError, Semaphore, SemaphorePermit, TaskDoneError, TryAcquireError, TryLockError,
};

#[doc(inline)]
pub use aio_blocking as blocking;

pub use aio_blocking::{
    BuildError, CancelToken, CapacityLimiter, FromThreadError, JobError, JobHandle, SubmitError,
    ThreadPool, ThreadPoolBuilder, ThreadPoolMap, ToThreadError, from_thread, to_thread,
    to_thread_cancellable,
};

#[cfg(unix)]
#[doc(inline)]
pub use aio_blocking::{ProcessPool, process};

/// The guides in `docs/`, compiled and run as doctests so their code cannot rot.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../../../README.md")]
    struct Readme;

    #[doc = include_str!("../../../docs/cancellation.md")]
    struct Cancellation;

    #[doc = include_str!("../../../docs/task-groups.md")]
    struct TaskGroups;

    #[doc = include_str!("../../../docs/asyncio-to-aio.md")]
    struct AsyncioToAio;

    #[doc = include_str!("../../../docs/design.md")]
    struct Design;

    #[doc = include_str!("../../../docs/sync.md")]
    struct Sync;

    #[doc = include_str!("../../../docs/threads-and-processes.md")]
    struct ThreadsAndProcesses;

    #[doc = include_str!("../../../docs/services.md")]
    struct Services;
}
