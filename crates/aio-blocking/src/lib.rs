//! Thread and process offload for aio: [`to_thread`] and a [`ThreadPool`] for blocking
//! code, with a [`CapacityLimiter`] that bounds how many threads it occupies, and a
//! [`ProcessPool`] of worker processes for CPU-bound work.
//!
//! * [`to_thread`] is `asyncio.to_thread`: it runs a blocking closure on Tokio's blocking
//!   pool, at most `min(32, cpus + 4)` at once by default, carries the caller's `tracing`
//!   span into the thread, returns a panic as an error, and respects aio's cancel scopes:
//!   a cancelled scope starts no new thread work. [`to_thread_cancellable`] hands the
//!   closure a [`CancelToken`] that is cancelled with the caller's scope.
//! * [`CapacityLimiter`] is Trio's: a shareable, resizable cap on threads in use.
//! * [`ThreadPool`] is `ThreadPoolExecutor`: `submit`, an ordered lazy `map`, `shutdown`,
//!   and a per-thread initializer.
//! * [`ProcessPool`] is `ProcessPoolExecutor`: registered functions run in worker
//!   processes, and a crash, a timeout or a cancelled handle fails only its task. The rest
//!   of process offload (the registry, [`process::init`], handles and errors) is in
//!   [`process`]. Unix only, behind the `process` feature.
//!
//! # Features
//!
//! * `process` (off by default): the process pool, on Unix. It adds serde and postcard (what crosses to a worker is encoded with
//!   them), and Tokio's `process`, `net`, `io-util` and `time`. Without it the crate is
//!   thread offload alone, and depends on nothing the core does not.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let sum = aio_blocking::to_thread(|| (1..=100u64).sum::<u64>()).await.unwrap();
//! assert_eq!(sum, 5050);
//! # }
//! ```

#![cfg_attr(docsrs, feature(doc_cfg))]

mod cancel_token;
mod capacity_limiter;
mod context;
mod error;
mod from_thread;
mod runner;
mod thread_pool;
mod to_thread;

#[cfg(all(unix, feature = "process"))]
#[cfg_attr(docsrs, doc(cfg(all(unix, feature = "process"))))]
pub mod process;

pub use cancel_token::CancelToken;
pub use capacity_limiter::CapacityLimiter;
pub use error::{BuildError, FromThreadError, JobError, SubmitError, ToThreadError};
pub use from_thread::from_thread;
pub use thread_pool::{JobHandle, ThreadPool, ThreadPoolBuilder, ThreadPoolMap};
pub use to_thread::{to_thread, to_thread_cancellable};

#[cfg(all(unix, feature = "process"))]
#[cfg_attr(docsrs, doc(cfg(all(unix, feature = "process"))))]
pub use process::ProcessPool;

/// The named futures returned by this crate's functions, for when you need to store one.
pub mod futures {
    pub use crate::thread_pool::Shutdown;
    pub use crate::to_thread::ToThread;
}
