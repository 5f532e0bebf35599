//! The errors of thread offload: [`ToThreadError`], [`JobError`], [`SubmitError`] and
//! [`FromThreadError`]; and [`BuildError`], why a pool of either kind cannot be built.

use std::any::Any;
use std::fmt;

use aio_core::{CancelError, Cancelled};

/// Why [`to_thread`](crate::to_thread) returned no value.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_blocking::{ToThreadError, to_thread};
///
/// let err = to_thread(|| -> u32 { panic!("disk on fire") }).await.unwrap_err();
/// assert_eq!(err.panic_message(), Some("disk on fire"));
/// assert_eq!(err.to_string(), "the function panicked: disk on fire");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToThreadError {
    /// The function panicked; the panic is caught in the thread and its message kept. Call
    /// `std::panic::panic_any(message)` on it to re-raise, if that is what you want.
    #[error("the function panicked: {message}")]
    Panicked {
        /// The panic's message (its payload if that was a string, else a placeholder).
        message: String,
    },
    /// The function never ran: the runtime was shutting down. (A cancelled scope drops the
    /// call instead, as it drops any future.)
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

impl ToThreadError {
    /// The panic's message, if the function panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            ToThreadError::Panicked { message } => Some(message),
            ToThreadError::Cancelled(_) => None,
        }
    }
}

impl CancelError for ToThreadError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            ToThreadError::Cancelled(c) => Some(c),
            ToThreadError::Panicked { .. } => None,
        }
    }
}

/// Why [`from_thread`](crate::from_thread) did not run its future to the end.
///
/// # Examples
///
/// ```
/// use aio_blocking::{FromThreadError, from_thread};
///
/// // A plain thread: no task waits for it to call back into.
/// let err = std::thread::spawn(|| from_thread(async { 1 })).join().unwrap().unwrap_err();
/// assert_eq!(err, FromThreadError::NotOffloaded);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FromThreadError {
    /// The calling thread runs no `to_thread` call and no `ThreadPool` job: there is no
    /// task waiting for it to run the future in.
    #[error(
        "from_thread was called on a thread that runs no to_thread call or ThreadPool job: \
         no task waits for it"
    )]
    NotOffloaded,
    /// The task waiting for this thread stopped waiting: a scope around it was cancelled
    /// (the reason says why), or its `to_thread` future or job handle was dropped
    /// ([`CancelReason::ParentCancelled`](aio_core::CancelReason::ParentCancelled)). The
    /// future was dropped, or never started.
    #[error("the task waiting for this thread was {0}")]
    Cancelled(#[from] Cancelled),
    /// The job's handle was detached: no task will ever wait for this thread to run the
    /// future in.
    #[error("nothing waits for this thread: its job was detached")]
    Abandoned,
}

impl CancelError for FromThreadError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            FromThreadError::Cancelled(c) => Some(c),
            _ => None,
        }
    }
}

/// Why a job of a [`ThreadPool`](crate::ThreadPool) has no value: what awaiting a
/// [`JobHandle`](crate::JobHandle) and each item of a [`ThreadPoolMap`](crate::ThreadPoolMap)
/// can fail with.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_blocking::{JobError, ThreadPool};
///
/// let pool = ThreadPool::new(1).unwrap();
/// let job = pool.submit(|| -> u32 { panic!("bad input") }).unwrap();
/// assert_eq!(job.await, Err(JobError::Panicked { message: "bad input".into() }));
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The job panicked; the panic was caught in the worker and its message kept.
    #[error("the job panicked: {message}")]
    Panicked {
        /// The panic's message (its payload if that was a string, else a placeholder).
        message: String,
    },
    /// The job was cancelled before it started, by
    /// [`JobHandle::cancel`](crate::JobHandle::cancel) or by a shutdown that cancelled the
    /// pending work. It never ran. (concurrent.futures' `CancelledError`, not a cancelled
    /// aio scope.)
    #[error("the job was cancelled before it started")]
    Cancelled,
    /// The pool broke before the job started: a worker could not start (its initializer
    /// panicked), as CPython's `BrokenThreadPool`. The job never ran.
    #[error("the thread pool is broken: {message}")]
    Broken {
        /// What broke it, with the initializer's panic message.
        message: String,
    },
    /// [`ThreadPool::map`](crate::ThreadPool::map) could not submit the job: the pool had
    /// been shut down. The item was never run, and the map ends after this error.
    #[error("cannot submit new jobs after the thread pool is shut down")]
    Shutdown,
}

/// [`ThreadPool::submit`](crate::ThreadPool::submit) refused a job: the pool is shut down or
/// broken. [`into_inner`](Self::into_inner) gives the closure back.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_blocking::ThreadPool;
///
/// let pool = ThreadPool::new(2).unwrap();
/// pool.shutdown(false).await;
/// let err = pool.submit(|| 42).unwrap_err();
/// assert!(err.is_shutdown());
/// assert_eq!(err.into_inner()(), 42);
/// # }
/// ```
pub struct SubmitError<F> {
    job: F,
    broken: Option<String>,
}

impl<F> SubmitError<F> {
    pub(crate) fn new(job: F, broken: Option<String>) -> Self {
        SubmitError { job, broken }
    }

    /// Whether the pool refused because it was shut down (rather than broken).
    pub fn is_shutdown(&self) -> bool {
        self.broken.is_none()
    }

    /// What broke the pool (with the panic message of the initializer), if it is broken.
    pub fn broken_message(&self) -> Option<&str> {
        self.broken.as_deref()
    }

    /// The closure that was refused.
    pub fn into_inner(self) -> F {
        self.job
    }
}

impl<F> fmt::Debug for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubmitError")
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl<F> fmt::Display for SubmitError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.broken {
            None => f.write_str("cannot submit new jobs after the thread pool is shut down"),
            Some(message) => write!(
                f,
                "cannot submit new jobs: the thread pool is broken: {message}"
            ),
        }
    }
}

impl<F> std::error::Error for SubmitError<F> {}

/// The message of a caught panic: its payload when that is a string.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}

/// Why a pool could not be built: [`ThreadPoolBuilder::build`](crate::ThreadPoolBuilder::build)
/// and [`ThreadPool::new`](crate::ThreadPool::new), and (on Unix) the process pool's
/// `ProcessPoolBuilder::build` and `ProcessPool::new`.
///
/// # Examples
///
/// ```
/// use aio_blocking::{BuildError, ThreadPool};
///
/// assert_eq!(ThreadPool::new(0).unwrap_err(), BuildError::NoWorkers);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// `max_workers` is zero.
    #[error("max_workers must be at least 1")]
    NoWorkers,
    /// A process pool's `max_tasks_per_child` is zero.
    #[error("max_tasks_per_child must be at least 1")]
    NoTasksPerChild,
    /// A process pool's `max_start_failures` is zero.
    #[error("max_start_failures must be at least 1")]
    NoStartFailures,
    /// No registry: neither `process::init` was called nor one given to the builder.
    #[error(
        "no function registry: call aio::process::init(registry) at the top of main, or \
         give the builder one with .registry(...)"
    )]
    NoRegistry,
    /// Not called from inside a Tokio runtime.
    #[error("a process pool must be built inside a Tokio runtime")]
    NoRuntime,
    /// The executable to run as workers cannot be found.
    #[error("cannot find the worker executable: {0}")]
    NoExecutable(String),
    /// The initializer is not in the registry.
    #[error("the initializer `{0}` is not in the registry")]
    InitializerNotRegistered(String),
    /// The initializer's argument cannot be encoded.
    #[error("cannot serialize the initializer's argument: {0}")]
    SerializeInitializer(String),
    /// The pool would run this executable as its workers, but `process::init` was not
    /// called: each worker would run the whole program, and start pools of its own.
    #[error(
        "this program does not call aio::process::init(registry) at the top of main, so \
         it cannot be its own worker: call it, or point the pool at a worker binary with \
         .worker_exe(...)"
    )]
    NoInit,
}
