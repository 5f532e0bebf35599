//! [`ProcessPoolBuilder`]: the knobs of a [`ProcessPool`](crate::ProcessPool).

use std::ffi::OsString;
use std::fmt::{self, Display};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::config::{Config, CrashPolicy, Initializer, check_init};
use super::pool::ProcessPool;
use super::{Function, Registry, child, init};
use crate::BuildError;

/// Builds a [`ProcessPool`]: `ProcessPool::builder().max_workers(4).build()?`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # // What the first line of a real `main` does: see `process::init`.
/// # aio_blocking::process::init(aio_blocking::process::Registry::new());
/// use std::time::Duration;
/// use aio_blocking::ProcessPool;
/// use aio_blocking::process::{CrashPolicy, Registry};
///
/// let pool = ProcessPool::builder()
///     .registry(Registry::new())
///     .max_workers(2)
///     .max_tasks_per_child(100)
///     .task_timeout(Duration::from_secs(30))
///     .crash_policy(CrashPolicy::FailTask)
///     .build()
///     .unwrap();
/// assert_eq!(pool.max_workers(), 2);
/// # }
/// ```
#[must_use]
pub struct ProcessPoolBuilder {
    exe: Option<PathBuf>,
    env: Vec<(OsString, OsString)>,
    registry: Option<Arc<Registry>>,
    max_workers: Option<usize>,
    max_tasks_per_child: Option<usize>,
    initializer: Option<Result<Initializer, BuildError>>,
    task_timeout: Option<Duration>,
    crash_policy: CrashPolicy,
    handshake_timeout: Duration,
    max_start_failures: u32,
    print_worker_panics: bool,
}

impl Default for ProcessPoolBuilder {
    fn default() -> Self {
        ProcessPoolBuilder {
            exe: None,
            env: Vec::new(),
            registry: None,
            max_workers: None,
            max_tasks_per_child: None,
            initializer: None,
            task_timeout: None,
            crash_policy: CrashPolicy::default(),
            handshake_timeout: Duration::from_secs(30),
            max_start_failures: 3,
            print_worker_panics: false,
        }
    }
}

impl ProcessPoolBuilder {
    /// A builder with the defaults: see each method.
    pub fn new() -> Self {
        ProcessPoolBuilder::default()
    }

    /// How many worker processes may run at once. Default: the available parallelism.
    /// Workers start on demand, and an idle worker is reused before a new one starts.
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n);
        self
    }

    /// Replace a worker after it has run `n` tasks (a [`map`](crate::ProcessPool::map)
    /// chunk counts as one), to bound what leaks in it. Default: never. 0 is refused by
    /// [`build`](Self::build) ([`BuildError::NoTasksPerChild`]).
    pub fn max_tasks_per_child(mut self, n: usize) -> Self {
        self.max_tasks_per_child = Some(n);
        self
    }

    /// Run `f(args)` in each worker before it takes tasks. An `Err` or a panic is reported
    /// as [`WorkerStartError::Initializer`](super::WorkerStartError::Initializer) and counts
    /// as a failed start.
    pub fn initializer<A, E>(mut self, f: &Function<A, Result<(), E>>, args: A) -> Self
    where
        A: Serialize,
        E: DeserializeOwned + Display,
    {
        self.initializer = Some(
            postcard::to_allocvec(&args)
                .map_err(|e| BuildError::SerializeInitializer(e.to_string()))
                .map(|args| Initializer {
                    name: f.name(),
                    args,
                    check: check_init::<E>,
                }),
        );
        self
    }

    /// Fail a task that runs longer than `timeout` with
    /// [`ProcessError::TimedOut`](super::ProcessError::TimedOut), killing and replacing
    /// its worker. The clock starts when a worker takes the task. Default: none.
    ///
    /// (To bound how long you wait, including time in the queue, wrap the handle in
    /// `aio::timeout` instead: a handle dropped while its task runs kills the worker too.)
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Whether a panic in a task is also printed, with the standard panic message (and a
    /// backtrace under `RUST_BACKTRACE`), on the worker's stderr, which the pool forwards to
    /// its own. Default: `false`: the panic is [`ProcessError::RemotePanic`], with its
    /// message and location, and that error is the one report of it. A panic outside a task
    /// (in a thread the function started, say) is always printed.
    ///
    /// [`ProcessError::RemotePanic`]: super::ProcessError::RemotePanic
    pub fn print_worker_panics(mut self, print: bool) -> Self {
        self.print_worker_panics = print;
        self
    }

    /// What a worker's death does to the pool. Default: [`CrashPolicy::FailTask`].
    pub fn crash_policy(mut self, policy: CrashPolicy) -> Self {
        self.crash_policy = policy;
        self
    }

    /// The executable to start as workers; its `main` must call
    /// [`init`](super::init) or [`worker_main`](super::worker_main) with the same registry
    /// as the pool's. Default: the current executable. For tests, whose `main` belongs to
    /// the test harness: `.worker_exe(env!("CARGO_BIN_EXE_<name>"))` of a `[[bin]]`.
    pub fn worker_exe(mut self, path: impl Into<PathBuf>) -> Self {
        self.exe = Some(path.into());
        self
    }

    /// The registry of the pool. Default: the one given to [`init`](super::init).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = Some(Arc::new(registry));
        self
    }

    /// Set an environment variable in every worker.
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// How long a worker may take from its start to ready, initializer included; it is
    /// killed after that. Default: 30 s.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Break the pool after this many failed worker starts in a row, rather than start
    /// workers for ever. Default: 3. 0 is refused by [`build`](Self::build)
    /// ([`BuildError::NoStartFailures`]).
    pub fn max_start_failures(mut self, n: u32) -> Self {
        self.max_start_failures = n;
        self
    }

    /// Builds the pool. It starts no process: workers start when tasks arrive.
    ///
    /// # Errors
    ///
    /// No registry (see [`init`](super::init)), not inside a Tokio runtime, no executable,
    /// or a bad initializer: see [`BuildError`].
    pub fn build(self) -> Result<ProcessPool, BuildError> {
        let registry = self
            .registry
            .or_else(init::registry)
            .ok_or(BuildError::NoRegistry)?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| BuildError::NoRuntime)?;
        let exe = match self.exe {
            Some(exe) => exe,
            // Without `init`, a worker started from this executable would run `main`.
            None if init::registry().is_none() && !child::is_serving() => {
                return Err(BuildError::NoInit);
            }
            None => current_exe()?,
        };
        let initializer = self.initializer.transpose()?;
        if let Some(init) = &initializer {
            if !registry.contains(init.name) {
                return Err(BuildError::InitializerNotRegistered(init.name.to_owned()));
            }
        }
        let max_workers = self
            .max_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get));
        if max_workers == 0 {
            return Err(BuildError::NoWorkers);
        }
        let max_tasks_per_child = match self.max_tasks_per_child {
            None => None,
            Some(n) => Some(NonZeroUsize::new(n).ok_or(BuildError::NoTasksPerChild)?),
        };
        if self.max_start_failures == 0 {
            return Err(BuildError::NoStartFailures);
        }
        let config = Config {
            exe,
            env: self.env,
            registry,
            max_workers,
            max_tasks_per_child,
            initializer,
            task_timeout: self.task_timeout,
            crash_policy: self.crash_policy,
            handshake_timeout: self.handshake_timeout,
            max_start_failures: self.max_start_failures,
            print_worker_panics: self.print_worker_panics,
        };
        Ok(ProcessPool::from_config(config, runtime))
    }
}

/// This executable: `/proc/self/exe` where there is one (it still works after the file
/// was replaced on disk), else what the standard library finds.
fn current_exe() -> Result<PathBuf, BuildError> {
    let proc_self = PathBuf::from("/proc/self/exe");
    if proc_self.exists() {
        return Ok(proc_self);
    }
    std::env::current_exe().map_err(|e| BuildError::NoExecutable(e.to_string()))
}

impl fmt::Debug for ProcessPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolBuilder")
            .field("worker_exe", &self.exe)
            .field("max_workers", &self.max_workers)
            .field("max_tasks_per_child", &self.max_tasks_per_child)
            .field("task_timeout", &self.task_timeout)
            .field("crash_policy", &self.crash_policy)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("max_start_failures", &self.max_start_failures)
            .field("print_worker_panics", &self.print_worker_panics)
            .finish_non_exhaustive()
    }
}

/// The constructors that go through a builder.
impl ProcessPool {
    /// A builder, to set the pool's knobs.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder::new()
    }

    /// A pool with the defaults: one worker per available core, running this executable
    /// with the registry given to [`init`](crate::process::init).
    ///
    /// # Errors
    ///
    /// See [`ProcessPoolBuilder::build`].
    pub fn new() -> Result<ProcessPool, BuildError> {
        ProcessPoolBuilder::new().build()
    }
}
