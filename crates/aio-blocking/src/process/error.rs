//! The errors of the process pool: what a task ends with ([`ProcessError`]), why a worker
//! did not start ([`WorkerStartError`]).

use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use super::wire::Failure;

/// Why a task submitted to a [`ProcessPool`](crate::ProcessPool) has no result.
///
/// Every variant concerns that one task, except [`Broken`](Self::Broken): with the default
/// [`CrashPolicy::FailTask`](super::CrashPolicy::FailTask) a pool survives crashes, panics,
/// timeouts and bad data, and only repeated start failures (or the opt-in
/// [`CrashPolicy::BreakPool`](super::CrashPolicy::BreakPool)) break it.
///
/// # Examples
///
/// A function missing from the registry is refused by `submit`, before anything is sent to
/// a worker:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # // What the first line of a real `main` does: see `process::init`.
/// # aio_blocking::process::init(aio_blocking::process::Registry::new());
/// use aio_blocking::ProcessPool;
/// use aio_blocking::process::{Function, ProcessError, Registry};
///
/// const DOUBLE: Function<u32, u32> = Function::new("double", |x| 2 * x);
/// const TRIPLE: Function<u32, u32> = Function::new("triple", |x| 3 * x);
///
/// let pool = ProcessPool::builder().registry(Registry::new().register(&DOUBLE)).build().unwrap();
/// match pool.submit(&TRIPLE, 1) {
///     Err(ProcessError::NotRegistered { name }) => assert_eq!(name, "triple"),
///     other => panic!("{other:?}"),
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProcessError {
    /// The function panicked in the worker. The worker lives on.
    #[error(transparent)]
    RemotePanic(RemotePanic),
    /// The worker process died while running the task: killed by a signal, crashed, or
    /// exited. The worker is replaced.
    #[error(transparent)]
    WorkerCrashed(WorkerCrashed),
    /// The task ran longer than the pool's
    /// [`task_timeout`](super::ProcessPoolBuilder::task_timeout); its worker was killed and
    /// replaced.
    #[error("the task timed out after {after:?}; its worker was killed and replaced")]
    TimedOut {
        /// The timeout.
        after: Duration,
    },
    /// The argument could not be encoded in this process; the task never left it.
    #[error("cannot serialize the argument: {0}")]
    SerializeArgs(String),
    /// The worker could not decode the argument as the function's argument type.
    #[error("the worker cannot deserialize the argument: {0}")]
    DeserializeArgs(String),
    /// The worker could not encode the function's result.
    #[error("the worker cannot serialize the result: {0}")]
    SerializeResult(String),
    /// The result from the worker did not decode as the function's result type.
    #[error("cannot deserialize the result: {0}")]
    DeserializeResult(String),
    /// The function is not in the pool's [`Registry`](super::Registry).
    #[error(
        "no function named `{name}` is registered: add it to the registry given to \
         aio::process::init (or to the pool's builder)"
    )]
    NotRegistered {
        /// The function's name.
        name: String,
    },
    /// The pool ended the task: it was queued when the pool was shut down with
    /// `cancel_pending`, or the pool (or the runtime it runs on) went away while the task
    /// was queued or running.
    #[error("the task was cancelled: its pool was shut down or went away")]
    Cancelled,
    /// The task was submitted after the pool was shut down (asyncio's "cannot schedule new
    /// futures after shutdown").
    #[error("cannot schedule new tasks after shutdown")]
    ShutDown,
    /// The pool is broken and runs nothing more.
    #[error(transparent)]
    Broken(BrokenPool),
}

impl ProcessError {
    pub(crate) fn from_failure(failure: Failure) -> Self {
        match failure {
            Failure::Panic { message, location } => {
                ProcessError::RemotePanic(RemotePanic { message, location })
            }
            Failure::DeserializeArgs(e) => ProcessError::DeserializeArgs(e),
            Failure::SerializeResult(e) => ProcessError::SerializeResult(e),
            Failure::NotRegistered(name) => ProcessError::NotRegistered { name },
        }
    }
}

/// A panic in a worker, the process-pool form of a remote traceback.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the function panicked in the worker{}: {message}", .location.as_ref().map(|l| format!(" at {l}")).unwrap_or_default())]
pub struct RemotePanic {
    /// The panic message.
    pub message: String,
    /// `file:line:column` of the panic, when known.
    pub location: Option<String>,
}

/// How a worker process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitInfo {
    /// The exit code, if it exited.
    pub code: Option<i32>,
    /// The signal that killed it, if one did (9 is SIGKILL).
    pub signal: Option<i32>,
}

impl ExitInfo {
    pub(crate) fn from_status(status: ExitStatus) -> Self {
        use std::os::unix::process::ExitStatusExt;
        ExitInfo {
            code: status.code(),
            signal: status.signal(),
        }
    }
}

impl fmt::Display for ExitInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (_, Some(sig)) => write!(f, "killed by signal {sig}{}", signal_name(sig)),
            (Some(code), None) => write!(f, "exited with status {code}"),
            (None, None) => f.write_str("ended in an unknown way"),
        }
    }
}

fn signal_name(sig: i32) -> &'static str {
    match sig {
        1 => " (SIGHUP)",
        2 => " (SIGINT)",
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        8 => " (SIGFPE)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        13 => " (SIGPIPE)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

/// Renders the stderr tail after a message, if there is one.
struct Tail<'a>(&'a str);

impl fmt::Display for Tail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = self.0.trim_end();
        if tail.is_empty() {
            Ok(())
        } else {
            write!(f, "; the end of its stderr:\n{tail}")
        }
    }
}

/// A worker process died while running a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("worker process {pid} died while running the task: {exit}{}", Tail(.stderr_tail))]
pub struct WorkerCrashed {
    /// The worker's process id.
    pub pid: u32,
    /// How it ended.
    pub exit: ExitInfo,
    /// The last lines the worker wrote to stderr (at most a few KiB).
    pub stderr_tail: String,
}

/// Why a pool is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the process pool is broken: {cause}")]
pub struct BrokenPool {
    /// What broke it.
    pub cause: BrokenCause,
}

/// What broke a pool.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BrokenCause {
    /// A worker died under [`CrashPolicy::BreakPool`](super::CrashPolicy::BreakPool).
    #[error(transparent)]
    WorkerCrashed(WorkerCrashed),
    /// Workers failed to start this many times in a row (the pool's
    /// [`max_start_failures`](super::ProcessPoolBuilder::max_start_failures)); `last` is
    /// the last failure.
    #[error("{attempts} worker starts failed in a row; the last: {last}")]
    StartFailed {
        /// Failed starts in a row.
        attempts: u32,
        /// The last failure.
        last: WorkerStartError,
    },
    /// [`ProcessPool::terminate`](crate::ProcessPool::terminate) killed the workers.
    #[error("its workers were terminated")]
    Terminated,
}

/// Why a worker process did not get ready.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerStartError {
    /// The executable could not be started.
    #[error("cannot start the worker executable {}: {message}", .exe.display())]
    Spawn {
        /// The executable.
        exe: PathBuf,
        /// The operating system's error.
        message: String,
    },
    /// The process ended before it was ready: it crashed, or it is not a worker (its
    /// `main` does not call `init` first).
    #[error(
        "the worker ended before it was ready ({exit}): does its main call \
         aio::process::init first?{}", Tail(.stderr_tail)
    )]
    Exited {
        /// How it ended.
        exit: ExitInfo,
        /// The end of its stderr.
        stderr_tail: String,
    },
    /// No handshake within the pool's
    /// [`handshake_timeout`](super::ProcessPoolBuilder::handshake_timeout); the process
    /// was killed.
    #[error(
        "the worker did not get ready within {after:?} (its main must call \
         aio::process::init first, and its initializer must finish in time)"
    )]
    HandshakeTimeout {
        /// The timeout.
        after: Duration,
    },
    /// The worker speaks another version of the wire protocol: it is another build of
    /// aio.
    #[error("the worker speaks protocol version {worker}, the pool version {pool}")]
    ProtocolMismatch {
        /// The worker's version.
        worker: u32,
        /// The pool's version.
        pool: u32,
    },
    /// The worker's registry differs from the pool's: another build of the program, or
    /// another registry given to `init`.
    #[error(
        "the worker's registry differs from the pool's (missing in the worker: {missing:?}; \
         only in the worker: {extra:?}; other types: {changed:?}): build the pool and its \
         workers from the same registry"
    )]
    RegistryMismatch {
        /// Functions the pool has and the worker lacks.
        missing: Vec<String>,
        /// Functions only the worker has.
        extra: Vec<String>,
        /// Functions whose argument or result types differ.
        changed: Vec<String>,
    },
    /// The initializer failed (returned an error or panicked).
    #[error("the worker's initializer failed: {message}")]
    Initializer {
        /// What it said.
        message: String,
    },
    /// The worker broke the protocol or the socket failed during the handshake.
    #[error("the worker's handshake failed: {message}")]
    Handshake {
        /// What went wrong.
        message: String,
    },
}
