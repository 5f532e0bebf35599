//! Process offload: [`ProcessPool`], the pool of worker processes for
//! CPU-bound work, and what it needs: the [`Registry`] of functions workers can run, typed
//! [`Function`] handles, [`init`], and the errors.
//!
//! # Setting up
//!
//! A pool's workers are the program itself, started again: [`init`] at the top of `main`
//! turns such a process into a worker and returns at once in the program proper. The
//! functions workers may run are listed once, in a [`Registry`] that both sides build:
//!
//! ```standalone_crate
//! use aio_blocking::ProcessPool;
//! use aio_blocking::process::{self, Function, Registry};
//!
//! fn checksum(data: Vec<u8>) -> u32 {
//!     data.iter().fold(0u32, |h, &b| h.rotate_left(5) ^ u32::from(b))
//! }
//! const CHECKSUM: Function<Vec<u8>, u32> = aio_blocking::remote_fn!(checksum);
//!
//! fn registry() -> Registry {
//!     Registry::new().register(&CHECKSUM)
//! }
//!
//! fn main() {
//!     process::init(registry()); // first: a worker never gets past this line
//!     tokio::runtime::Runtime::new().unwrap().block_on(async {
//!         let pool = ProcessPool::new().unwrap();
//!         let sum = pool.submit(&CHECKSUM, vec![1, 2, 3]).unwrap().await.unwrap();
//!         assert_eq!(sum, checksum(vec![1, 2, 3]));
//!         pool.shutdown(false).await;
//!     });
//! }
//! ```
//!
//! Only the function's name and its serde-encoded argument cross to the worker, and only
//! the encoded result comes back: no closures, no references, no shared state.

mod builder;
mod child;
mod config;
mod conn;
mod dispatch;
mod error;
mod function;
mod handle;
mod init;
mod map;
mod pool;
mod registry;
mod slot;
mod task_panic;
mod wire;
mod worker;

pub use builder::ProcessPoolBuilder;
pub use config::CrashPolicy;
pub use error::{
    BrokenCause, BrokenPool, ExitInfo, ProcessError, RemotePanic, WorkerCrashed, WorkerStartError,
};
pub use function::Function;
pub use handle::ProcessHandle;
pub use init::{init, is_worker, worker_main};
pub use map::ProcessMap;
pub use pool::ProcessPool;
pub use registry::Registry;

pub use crate::BuildError;
#[doc(inline)]
pub use crate::remote_fn;
