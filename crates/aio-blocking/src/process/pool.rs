//! [`ProcessPool`]: the pool's API. The queue and the pool's state are the dispatcher's
//! ([`dispatch`](super::dispatch)); the workers are run by the slots ([`slot`](super::slot)).

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::runtime::Handle;

use super::Function;
use super::config::Config;
use super::dispatch::Dispatcher;
use super::error::{BrokenCause, BrokenPool, ProcessError};
use super::handle::ProcessHandle;
use super::map::ProcessMap;
use super::registry::describe;
use super::slot;

/// The most chunks a [`ProcessMap`] keeps in flight by default, however many workers the
/// pool may run: twice `max_workers` up to this.
const MAP_BUFFERED_CAP: usize = 1024;

/// A pool of worker processes for CPU-bound work: asyncio's
/// `loop.run_in_executor(ProcessPoolExecutor(), f, x)`, with typed calls and failures that
/// stay with the task that had them.
///
/// Workers are this program started again (see [`init`](crate::process::init)), running
/// functions listed in a [`Registry`](crate::process::Registry) and called through typed
/// [`Function`] handles. Arguments and results cross the process boundary encoded with
/// serde (postcard), over one Unix socket pair per worker.
///
/// * [`submit`](Self::submit) queues a call and returns a [`ProcessHandle`] to await.
///   Dropping the handle cancels the task: a queued task leaves the queue, a running one has
///   its worker killed and replaced.
/// * [`map`](Self::map) is a lazy, ordered stream of results, with `chunksize` and a bound
///   on the chunks in flight.
/// * [`shutdown`](Self::shutdown) finishes the queued work (or cancels it) and stops the
///   workers; [`close`](Self::close) does the same without waiting.
///
/// # Failures
///
/// A worker that dies in a task (a signal, an abort, an exit) fails that task with
/// [`ProcessError::WorkerCrashed`], with its exit status and the end of its stderr, and is
/// replaced; CPython's whole-pool break is [`CrashPolicy::BreakPool`](super::CrashPolicy::BreakPool). A panic is
/// [`ProcessError::RemotePanic`]; data that fails to encode or decode fails that task only;
/// a [`task_timeout`](super::ProcessPoolBuilder::task_timeout) kills and replaces the worker.
/// Workers that fail to start are retried, and
/// [`max_start_failures`](super::ProcessPoolBuilder::max_start_failures) failures in a row break
/// the pool with the last [`WorkerStartError`](super::WorkerStartError). Every worker is reaped: no zombies.
///
/// Dropping the pool kills its workers and cancels what is queued; call
/// [`shutdown`](Self::shutdown) first to let work finish.
///
/// # Fairness
///
/// Tasks start in the order they were submitted (FIFO), each on the first free worker.
///
/// # Examples
///
/// ```standalone_crate
/// use aio_blocking::ProcessPool;
/// use aio_blocking::process::{self, Function, Registry};
///
/// fn count_primes(below: u64) -> u64 {
///     (2..below).filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0)).count() as u64
/// }
/// const COUNT_PRIMES: Function<u64, u64> = aio_blocking::remote_fn!(count_primes);
///
/// fn main() {
///     process::init(Registry::new().register(&COUNT_PRIMES));
///     let rt = tokio::runtime::Runtime::new().unwrap();
///     rt.block_on(async {
///         let pool = ProcessPool::new().unwrap();
///         let count = pool.submit(&COUNT_PRIMES, 100_000).unwrap().await.unwrap();
///         assert_eq!(count, 9592);
///         pool.shutdown(false).await;
///     });
/// }
/// ```
pub struct ProcessPool {
    shared: Arc<Dispatcher>,
}

impl ProcessPool {
    pub(crate) fn from_config(cfg: Config, runtime: Handle) -> ProcessPool {
        ProcessPool {
            shared: Arc::new(Dispatcher::new(cfg, runtime)),
        }
    }

    /// Queues `f(args)` to run in a worker, and returns a handle that resolves to its
    /// result: `loop.run_in_executor(pool, f, args)`.
    ///
    /// # Errors
    ///
    /// The call is refused, with nothing queued: [`NotRegistered`](ProcessError::NotRegistered)
    /// for a function missing from the registry, [`SerializeArgs`](ProcessError::SerializeArgs)
    /// for an argument that does not encode, and [`ShutDown`](ProcessError::ShutDown) or
    /// [`Broken`](ProcessError::Broken) once the pool takes no more work. What goes wrong
    /// once the call is queued comes out of the handle.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// # use aio_blocking::ProcessPool;
    /// # use aio_blocking::process::{self, Function, Registry};
    /// # fn square(x: u64) -> u64 { x * x }
    /// # const SQUARE: Function<u64, u64> = aio_blocking::remote_fn!(square);
    /// # fn main() {
    /// # process::init(Registry::new().register(&SQUARE));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    /// let handle = pool.submit(&SQUARE, 7).unwrap();
    /// assert_eq!(handle.await, Ok(49));
    /// # pool.shutdown(false).await;
    /// # });
    /// # }
    /// ```
    pub fn submit<A, R>(
        &self,
        f: &Function<A, R>,
        args: A,
    ) -> Result<ProcessHandle<R>, ProcessError>
    where
        A: Serialize,
        R: DeserializeOwned,
    {
        if !self.shared.cfg.registry.contains(f.name()) {
            return Err(ProcessError::NotRegistered {
                name: f.name().to_owned(),
            });
        }
        let bytes = postcard::to_allocvec(&args)
            .map_err(|e| ProcessError::SerializeArgs(describe::<A>(&e)))?;
        let mut raw = slot::submit(&self.shared, f.name(), vec![bytes]);
        match raw.refusal() {
            Some(error) => Err(error),
            None => Ok(ProcessHandle::new(raw)),
        }
    }

    /// `f` over `items`, as a lazy stream of results in input order: `pool.map(f, items)`.
    ///
    /// Nothing is read from `items` until the stream is polled, and then only enough to
    /// keep [`buffered`](ProcessMap::buffered) chunks of
    /// [`chunksize`](ProcessMap::chunksize) items in flight, so `items` may be endless.
    /// `buffered` is by default twice [`max_workers`](Self::max_workers), but at most
    /// 1024.
    /// Each item's result comes out on its own; a failure in one item (a panic, bad data)
    /// does not end the stream, and a worker's death fails every item of its chunk.
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// # use aio_blocking::ProcessPool;
    /// # use aio_blocking::process::{self, Function, Registry};
    /// # fn square(x: u64) -> u64 { x * x }
    /// # const SQUARE: Function<u64, u64> = aio_blocking::remote_fn!(square);
    /// # fn main() {
    /// # process::init(Registry::new().register(&SQUARE));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let pool = ProcessPool::builder().max_workers(2).build().unwrap();
    /// use futures::TryStreamExt;
    ///
    /// let squares: Vec<u64> = pool.map(&SQUARE, 0..1000).chunksize(64).try_collect().await.unwrap();
    /// assert_eq!(squares[999], 999 * 999);
    /// # pool.shutdown(false).await;
    /// # });
    /// # }
    /// ```
    pub fn map<I, A, R>(&self, f: &Function<A, R>, items: I) -> ProcessMap<I::IntoIter, A, R>
    where
        I: IntoIterator<Item = A>,
        A: Serialize,
        R: DeserializeOwned,
    {
        let registered = self.shared.cfg.registry.contains(f.name());
        ProcessMap::new(
            Arc::clone(&self.shared),
            f.name(),
            registered,
            items.into_iter(),
            self.shared
                .cfg
                .max_workers
                .saturating_mul(2)
                .min(MAP_BUFFERED_CAP),
        )
    }

    /// Stops taking tasks, and returns at once: `shutdown(wait=False)`.
    ///
    /// Queued tasks still run, unless `cancel_pending`, which fails them with
    /// [`ProcessError::Cancelled`]; running tasks finish either way. Workers stop once the
    /// queue is empty. [`submit`](Self::submit) fails with [`ProcessError::ShutDown`] from
    /// now on.
    ///
    /// # Examples
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
    ///
    /// let pool = ProcessPool::builder().registry(Registry::new().register(&DOUBLE)).build().unwrap();
    /// pool.close(false);
    /// assert_eq!(pool.submit(&DOUBLE, 1).unwrap_err(), ProcessError::ShutDown);
    /// # }
    /// ```
    pub fn close(&self, cancel_pending: bool) {
        self.shared.close(cancel_pending);
    }

    /// [`close`](Self::close), then waits until every task has ended and every worker has
    /// exited and been reaped: `shutdown(wait=True, cancel_futures=cancel_pending)`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the future stops only the waiting. The pool is closed from the
    /// first poll on, and goes on winding down.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # // What the first line of a real `main` does: see `process::init`.
    /// # aio_blocking::process::init(aio_blocking::process::Registry::new());
    /// use aio_blocking::ProcessPool;
    /// use aio_blocking::process::Registry;
    ///
    /// let pool = ProcessPool::builder().registry(Registry::new()).build().unwrap();
    /// pool.shutdown(true).await;
    /// assert!(pool.worker_pids().is_empty());
    /// # }
    /// ```
    pub async fn shutdown(&self, cancel_pending: bool) {
        self.shared.close(cancel_pending);
        let mut live = self.shared.live_slots.subscribe();
        let _ = live.wait_for(|n| *n == 0).await;
    }

    /// Kills every worker now and breaks the pool (CPython 3.14's `kill_workers`): queued
    /// and running tasks fail with [`ProcessError::Broken`].
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # // What the first line of a real `main` does: see `process::init`.
    /// # aio_blocking::process::init(aio_blocking::process::Registry::new());
    /// use aio_blocking::ProcessPool;
    /// use aio_blocking::process::{BrokenCause, Function, ProcessError, Registry};
    ///
    /// const DOUBLE: Function<u32, u32> = Function::new("double", |x| 2 * x);
    ///
    /// let pool = ProcessPool::builder().registry(Registry::new().register(&DOUBLE)).build().unwrap();
    /// assert!(pool.broken().is_none());
    /// pool.terminate();
    /// assert_eq!(pool.broken().unwrap().cause, BrokenCause::Terminated);
    /// assert!(matches!(pool.submit(&DOUBLE, 1), Err(ProcessError::Broken(_))));
    /// # }
    /// ```
    pub fn terminate(&self) {
        self.shared.break_pool(BrokenCause::Terminated);
    }

    /// The most workers the pool runs at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # // What the first line of a real `main` does: see `process::init`.
    /// # aio_blocking::process::init(aio_blocking::process::Registry::new());
    /// use aio_blocking::ProcessPool;
    /// use aio_blocking::process::Registry;
    ///
    /// let pool = ProcessPool::builder().registry(Registry::new()).max_workers(3).build().unwrap();
    /// assert_eq!(pool.max_workers(), 3);
    /// assert!(pool.worker_pids().is_empty(), "workers start with the first task");
    /// # }
    /// ```
    pub fn max_workers(&self) -> usize {
        self.shared.cfg.max_workers
    }

    /// The process ids of the live workers, for diagnostics and tests.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.shared.lock().pids.values().copied().collect()
    }

    /// Why the pool is broken, if it is.
    pub fn broken(&self) -> Option<BrokenPool> {
        self.shared.lock().broken.clone()
    }
}

impl Drop for ProcessPool {
    fn drop(&mut self) {
        self.shared.close(true);
        self.shared.kill.cancel();
    }
}

impl fmt::Debug for ProcessPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("ProcessPool")
            .field("max_workers", &self.shared.cfg.max_workers)
            .field("workers", &st.pids.len())
            .field("queued", &st.queue.len())
            .field("busy", &st.busy)
            .field("closing", &st.closing)
            .field("broken", &st.broken)
            .finish()
    }
}
