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
//!
//! # Features
//!
//! The core and the attributes are always there; the rest is behind additive features:
//!
//! | feature | default | what it adds | dependencies it brings |
//! |---|---|---|---|
//! | `sync` | yes | [`sync`] and its primitives at the top level | none the core lacks (`aio-sync`) |
//! | `blocking` | yes | [`blocking`]: [`to_thread`], [`ThreadPool`], [`CapacityLimiter`], [`from_thread`] | none the core lacks (`aio-blocking`) |
//! | `process` | no | [`ProcessPool`] and [`process`], on Unix, and `#[aio::main(process = ..)]`; implies `blocking` | serde, postcard, Tokio's `process`, `net` and `io-util` |
//!
//! `default-features = false` leaves the core alone: task groups, cancel scopes, shields,
//! timeouts, the gather family, [`run`] and the attributes.

#![cfg_attr(docsrs, feature(doc_cfg))]

pub use aio_core::*;

/// `#[aio::main]`: runs `async fn main` under [`run`]'s rules; see [`run`]. Options:
/// `flavor`, `worker_threads`, and `process = <registry>` to call `process::init` before
/// any runtime exists (with the `process` feature).
///
/// ```
/// #[aio::main(worker_threads = 2)]
/// async fn main() {
///     let doubled = aio::gather((1..=3).map(|i| async move { Ok::<_, aio::BoxError>(i * 2) }));
///     assert_eq!(doubled.await.unwrap(), [2, 4, 6]);
/// }
/// ```
pub use aio_macros::main;
/// `#[aio::test]`: `#[tokio::test]` under [`run`]'s rules: `current_thread` by default,
/// `start_paused = true` for paused time (Tokio's `test-util` feature).
///
/// ```
/// #[aio::test(start_paused = true)]
/// async fn a_deadline_passes() {
///     let r = aio::timeout(std::time::Duration::from_secs(5), std::future::pending::<()>()).await;
///     assert!(r.is_err());
/// }
/// ```
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

#[cfg(feature = "sync")]
#[cfg_attr(docsrs, doc(cfg(feature = "sync")))]
#[doc(inline)]
pub use aio_sync as sync;

#[cfg(feature = "sync")]
#[cfg_attr(docsrs, doc(cfg(feature = "sync")))]
pub use aio_sync::{
    Barrier, BoundedSemaphore, BrokenBarrierError, Condition, ConditionGuard, Event, GetError,
    LifoQueue, Lock, LockGuard, OwnedLockGuard, OwnedSemaphorePermit, PriorityQueue, PutError,
    Queue, ReleaseError, Semaphore, SemaphorePermit, TaskDoneError, TryAcquireError, TryLockError,
};

#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
#[doc(inline)]
pub use aio_blocking as blocking;

#[cfg(feature = "blocking")]
#[cfg_attr(docsrs, doc(cfg(feature = "blocking")))]
pub use aio_blocking::{
    BuildError, CancelToken, CapacityLimiter, FromThreadError, JobError, JobHandle, SubmitError,
    ThreadPool, ThreadPoolBuilder, ThreadPoolMap, ToThreadError, from_thread, to_thread,
    to_thread_cancellable,
};

#[cfg(all(unix, feature = "process"))]
#[cfg_attr(docsrs, doc(cfg(all(unix, feature = "process"))))]
#[doc(inline)]
pub use aio_blocking::{ProcessPool, process};

/// The READMEs and the guides in `docs/`, compiled and run as doctests so their code cannot
/// rot. A page whose code needs a feature is tested when that feature is on: the READMEs and
/// the pages on the core with none, every page with all of them.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../../../README.md")]
    struct Readme;

    #[doc = include_str!("../README.md")]
    struct CrateReadme;

    #[doc = include_str!("../../../docs/cancellation.md")]
    struct Cancellation;

    #[cfg(feature = "sync")]
    #[doc = include_str!("../../../docs/task-groups.md")]
    struct TaskGroups;

    #[cfg(feature = "sync")]
    #[doc = include_str!("../../../docs/asyncio-to-aio.md")]
    struct AsyncioToAio;

    #[doc = include_str!("../../../docs/design.md")]
    struct Design;

    #[cfg(feature = "sync")]
    #[doc = include_str!("../../../docs/sync.md")]
    struct Sync;

    #[cfg(all(unix, feature = "process"))]
    #[doc = include_str!("../../../docs/threads-and-processes.md")]
    struct ThreadsAndProcesses;

    #[cfg(feature = "sync")]
    #[doc = include_str!("../../../docs/services.md")]
    struct Services;

    #[cfg(all(feature = "sync", feature = "blocking"))]
    #[doc = include_str!("../../../docs/coming-from-tokio.md")]
    struct ComingFromTokio;
}
