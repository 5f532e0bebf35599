//! Thread and process offload for aio: `to_thread`, a `ThreadPool`, and a `ProcessPool` of
//! worker processes for CPU-bound work.
//!
//! * [`ProcessPool`] runs registered functions in worker processes; the rest of process
//!   offload (the registry, [`process::init`], handles and errors) is in [`process`].

#[cfg(unix)]
pub mod process;

#[cfg(unix)]
pub use process::ProcessPool;
