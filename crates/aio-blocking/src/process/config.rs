//! What a pool runs with, fixed when it is built: [`Config`], and the [`CrashPolicy`] it
//! follows when a worker dies.

use std::ffi::OsString;
use std::fmt::Display;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::Registry;

/// What a pool does when a worker dies in the middle of a task.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # // What the first line of a real `main` does: see `process::init`.
/// # aio_blocking::process::init(aio_blocking::process::Registry::new());
/// use aio_blocking::ProcessPool;
/// use aio_blocking::process::{CrashPolicy, Registry};
///
/// // CPython's behaviour: one crash breaks the pool.
/// let pool = ProcessPool::builder()
///     .registry(Registry::new())
///     .crash_policy(CrashPolicy::BreakPool)
///     .build()
///     .unwrap();
/// assert!(pool.broken().is_none());
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrashPolicy {
    /// That task fails with [`ProcessError::WorkerCrashed`](super::ProcessError::WorkerCrashed),
    /// the worker is replaced, and the pool goes on. The default.
    #[default]
    FailTask,
    /// CPython's `BrokenProcessPool`: that task fails with `WorkerCrashed`, every other
    /// task, queued or running, fails with [`ProcessError::Broken`](super::ProcessError::Broken),
    /// the other workers are killed, and the pool accepts nothing more.
    BreakPool,
}

/// The initializer a worker runs before it reports ready.
#[derive(Clone)]
pub(crate) struct Initializer {
    pub(crate) name: &'static str,
    pub(crate) args: Vec<u8>,
    /// Decodes the initializer's `Result<(), E>` and renders an error.
    pub(crate) check: fn(&[u8]) -> Result<(), String>,
}

pub(crate) fn check_init<E: DeserializeOwned + Display>(bytes: &[u8]) -> Result<(), String> {
    match postcard::from_bytes::<Result<(), E>>(bytes) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("cannot deserialize its result: {e}")),
    }
}

/// Everything a pool runs with, fixed at build time.
pub(crate) struct Config {
    pub(crate) exe: PathBuf,
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) registry: Arc<Registry>,
    pub(crate) max_workers: usize,
    pub(crate) max_tasks_per_child: Option<NonZeroUsize>,
    pub(crate) initializer: Option<Initializer>,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) crash_policy: CrashPolicy,
    pub(crate) handshake_timeout: Duration,
    pub(crate) max_start_failures: u32,
    pub(crate) print_worker_panics: bool,
}
