//! [`ProcessPool`]: the queue, the workers' slots, and their failure handling.
//!
//! Each slot is a Tokio task that owns at most one worker process. Slots start on demand,
//! up to `max_workers`, and an idle slot takes the oldest queued task, so a task stays in
//! the queue, and cancellable, until a worker is free to run it (prefetch depth 0). A slot
//! ends only when the pool is closing and the queue is empty, or when the pool is killed
//! or broken; it then stops or kills its worker and reaps it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::runtime::Handle;
use tokio::sync::{Notify, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::Function;
use super::builder::{Config, CrashPolicy, ProcessPoolBuilder};
use super::error::{BrokenCause, BrokenPool, ProcessError, WorkerStartError};
use super::handle::{ProcessHandle, RawHandle};
use super::map::ProcessMap;
use super::registry::describe;
use super::worker::{Outcome, Worker};
use crate::BuildError;

/// The most chunks a [`ProcessMap`] keeps in flight by default, however many workers the
/// pool may run: twice `max_workers` up to this.
const MAP_BUFFERED_CAP: usize = 1024;

/// What a slot sends back for one call: an outcome per argument, or why there is none.
pub(crate) type Reply = Result<Vec<Outcome>, ProcessError>;

/// A queued call.
struct Job {
    name: &'static str,
    parts: Vec<Vec<u8>>,
    reply: oneshot::Sender<Reply>,
}

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
/// replaced; CPython's whole-pool break is [`CrashPolicy::BreakPool`]. A panic is
/// [`ProcessError::RemotePanic`]; data that fails to encode or decode fails that task only;
/// a [`task_timeout`](ProcessPoolBuilder::task_timeout) kills and replaces the worker.
/// Workers that fail to start are retried, and
/// [`max_start_failures`](ProcessPoolBuilder::max_start_failures) failures in a row break
/// the pool with the last [`WorkerStartError`]. Every worker is reaped: no zombies.
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
    shared: Arc<Shared>,
}

pub(crate) struct Shared {
    cfg: Config,
    runtime: Handle,
    state: Mutex<State>,
    /// A task was queued, or the pool is closing.
    work: Notify,
    /// Kill every worker now: the pool was dropped, terminated or broken.
    kill: CancellationToken,
    /// Slots alive: `shutdown` waits for 0.
    live_slots: watch::Sender<usize>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct State {
    /// Queued tasks by id: FIFO, and removable by id.
    queue: BTreeMap<u64, Job>,
    /// Slots alive, and how many of them run a task.
    slots: usize,
    busy: usize,
    next_slot: u64,
    closing: bool,
    broken: Option<BrokenPool>,
    /// Failed worker starts in a row.
    start_failures: u32,
    /// The pid of each slot's worker.
    pids: BTreeMap<u64, u32>,
}

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

    pub(crate) fn from_config(cfg: Config, runtime: Handle) -> ProcessPool {
        ProcessPool {
            shared: Arc::new(Shared {
                cfg,
                runtime,
                state: Mutex::new(State::default()),
                work: Notify::new(),
                kill: CancellationToken::new(),
                live_slots: watch::Sender::new(0),
                next_id: AtomicU64::new(1),
            }),
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
        let mut raw = self.shared.submit(f.name(), vec![bytes]);
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

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The runtime the pool's slots run on.
    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Queues a call of `name` with one argument per part; starts a slot if no free one can
    /// take it.
    pub(crate) fn submit(self: &Arc<Self>, name: &'static str, parts: Vec<Vec<u8>>) -> RawHandle {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let mut st = self.lock();
        if let Some(broken) = &st.broken {
            return RawHandle::failed(ProcessError::Broken(broken.clone()));
        }
        if st.closing {
            return RawHandle::failed(ProcessError::ShutDown);
        }
        st.queue.insert(id, Job { name, parts, reply });
        let free = st.slots.saturating_sub(st.busy);
        let start = st.queue.len() > free && st.slots < self.cfg.max_workers;
        let guard = start.then(|| {
            st.slots += 1;
            let slot = st.next_slot;
            st.next_slot += 1;
            self.live_slots.send_modify(|n| *n += 1);
            SlotGuard {
                shared: Arc::clone(self),
                slot,
                finished: false,
            }
        });
        drop(st);
        let handle = RawHandle::new(id, rx, Arc::downgrade(self));
        if let Some(guard) = guard {
            // Outside the lock: a runtime that has shut down drops the slot at once, and
            // its guard then fails what is queued.
            self.runtime.spawn(run_slot(guard));
        }
        self.work.notify_one();
        handle
    }

    /// Takes a queued task out, if it is still queued: its handle was dropped.
    pub(crate) fn cancel_queued(&self, id: u64) {
        let job = self.lock().queue.remove(&id);
        drop(job);
    }

    fn close(&self, cancel_pending: bool) {
        let cancelled = {
            let mut st = self.lock();
            st.closing = true;
            if cancel_pending {
                std::mem::take(&mut st.queue)
            } else {
                BTreeMap::new()
            }
        };
        for job in cancelled.into_values() {
            let _ = job.reply.send(Err(ProcessError::Cancelled));
        }
        self.work.notify_waiters();
    }

    fn break_pool(&self, cause: BrokenCause) {
        let (broken, queued) = {
            let mut st = self.lock();
            let broken = st.broken.get_or_insert(BrokenPool { cause }).clone();
            (broken, std::mem::take(&mut st.queue))
        };
        if broken.cause == BrokenCause::Terminated {
            tracing::debug!("process pool terminated");
        } else {
            tracing::error!(%broken, "process pool broken");
        }
        self.kill.cancel();
        for job in queued.into_values() {
            let _ = job.reply.send(Err(ProcessError::Broken(broken.clone())));
        }
    }

    /// What a task still running gets when its worker is killed with the pool's.
    fn killed_error(&self) -> ProcessError {
        match &self.lock().broken {
            Some(broken) => ProcessError::Broken(broken.clone()),
            None => ProcessError::Cancelled,
        }
    }

    /// Waits until there is a task to take (`true`) or the slot should end (`false`).
    ///
    /// Meanwhile watches the slot's idle worker: one that dies idle (killed from outside,
    /// say) is reaped and replaced with the next task, which it would otherwise fail.
    async fn wait_for_work(&self, slot: u64, worker: &mut Option<Worker>) -> bool {
        loop {
            let notified = self.work.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.lock();
                if self.kill.is_cancelled() || st.broken.is_some() {
                    return false;
                }
                if !st.queue.is_empty() {
                    return true;
                }
                if st.closing {
                    return false;
                }
            }
            let died = async {
                match worker.as_mut() {
                    Some(w) => w.exited().await,
                    None => std::future::pending().await,
                }
            };
            let woken = tokio::select! {
                biased;
                () = self.kill.cancelled() => return false,
                () = died => false,
                () = notified => true,
            };
            if !woken {
                if let Some(w) = worker.take() {
                    let crashed = w.crashed().await;
                    self.worker_gone(slot);
                    tracing::warn!(error = %crashed, "an idle process pool worker died");
                }
            }
        }
    }

    /// The oldest queued task whose handle is still alive; the slot is busy until the
    /// returned guard drops.
    fn take_job(&self) -> Option<(u64, Job, Busy<'_>)> {
        let mut st = self.lock();
        while let Some((id, job)) = st.queue.pop_first() {
            if !job.reply.is_closed() {
                st.busy += 1;
                return Some((id, job, Busy { shared: self }));
            }
        }
        None
    }

    fn worker_started(&self, slot: u64, pid: u32) {
        let mut st = self.lock();
        st.start_failures = 0;
        st.pids.insert(slot, pid);
    }

    fn worker_gone(&self, slot: u64) {
        self.lock().pids.remove(&slot);
    }

    /// Counts a failed start; `true` if it broke the pool.
    fn start_failed(&self, error: WorkerStartError) -> bool {
        let attempts = {
            let mut st = self.lock();
            st.start_failures += 1;
            st.start_failures
        };
        tracing::warn!(%error, attempts, "a process pool worker failed to start");
        if attempts >= self.cfg.max_start_failures {
            self.break_pool(BrokenCause::StartFailed {
                attempts,
                last: error,
            });
            return true;
        }
        false
    }
}

/// How a task on a worker ended.
enum End {
    Done(Vec<Outcome>),
    Crashed,
    TimedOut,
    /// Its handle was dropped while it ran.
    Abandoned,
    /// The pool killed every worker.
    Killed,
}

/// Marks a slot gone however its task ends, even when the runtime drops it, before its
/// first poll or in the middle of a task.
///
/// A slot ends on its own only once nothing is queued (or the pool is broken). One that
/// ends otherwise was dropped by its runtime, which has shut down: if it was the last
/// slot, no slot can take what is still queued, so those tasks fail now rather than wait
/// for ever.
struct SlotGuard {
    shared: Arc<Shared>,
    slot: u64,
    /// The slot ran to its end.
    finished: bool,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let stranded = {
            let mut st = self.shared.lock();
            st.slots = st.slots.saturating_sub(1);
            st.pids.remove(&self.slot);
            if !self.finished && st.slots == 0 {
                std::mem::take(&mut st.queue)
            } else {
                BTreeMap::new()
            }
        };
        self.shared
            .live_slots
            .send_modify(|n| *n = n.saturating_sub(1));
        if !stranded.is_empty() {
            tracing::warn!(
                tasks = stranded.len(),
                "a process pool's runtime shut down with tasks queued"
            );
        }
        for job in stranded.into_values() {
            let _ = job.reply.send(Err(ProcessError::Cancelled));
        }
    }
}

/// A slot running a task: counted in `busy` until dropped, however the task ends.
struct Busy<'a> {
    shared: &'a Shared,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.busy = st.busy.saturating_sub(1);
    }
}

async fn run_slot(mut guard: SlotGuard) {
    let shared = Arc::clone(&guard.shared);
    let slot = guard.slot;
    let mut worker: Option<Worker> = None;
    while shared.wait_for_work(slot, &mut worker).await {
        let mut w = match worker.take() {
            Some(w) => w,
            None => match Worker::start(&shared.cfg).await {
                Ok(w) => {
                    shared.worker_started(slot, w.pid());
                    w
                }
                Err(e) => {
                    if shared.start_failed(e) {
                        break;
                    }
                    continue;
                }
            },
        };
        let Some((id, mut job, busy)) = shared.take_job() else {
            worker = Some(w);
            continue;
        };
        let end = run_job(&shared, &mut w, id, &mut job).await;
        // The worker to keep, and one to retire once the reply is out.
        let mut retiring = None;
        let reply = match end {
            End::Done(outcomes) => {
                let spent = shared
                    .cfg
                    .max_tasks_per_child
                    .is_some_and(|max| w.calls >= max.get());
                if spent {
                    shared.worker_gone(slot);
                    retiring = Some(w);
                } else {
                    worker = Some(w);
                }
                Ok(outcomes)
            }
            End::Crashed => {
                let crashed = w.crashed().await;
                shared.worker_gone(slot);
                // Reported by the task's error; logged at WARN only if nobody takes it.
                tracing::debug!(error = %crashed, "a process pool worker died in a task");
                if shared.cfg.crash_policy == CrashPolicy::BreakPool {
                    shared.break_pool(BrokenCause::WorkerCrashed(crashed.clone()));
                }
                Err(ProcessError::WorkerCrashed(crashed))
            }
            End::TimedOut | End::Abandoned | End::Killed => {
                w.kill().await;
                shared.worker_gone(slot);
                Err(match end {
                    End::TimedOut => ProcessError::TimedOut {
                        after: shared.cfg.task_timeout.unwrap_or_default(),
                    },
                    End::Killed => shared.killed_error(),
                    _ => ProcessError::Cancelled,
                })
            }
        };
        drop(busy);
        if let Err(Err(error @ ProcessError::WorkerCrashed(_))) = job.reply.send(reply) {
            tracing::warn!(%error, "a process pool worker died in a task nobody waits for");
        }
        if let Some(w) = retiring {
            w.retire().await;
        }
    }
    if let Some(mut w) = worker.take() {
        if shared.kill.is_cancelled() {
            w.kill().await;
        } else {
            w.retire().await;
        }
    }
    guard.finished = true;
}

async fn run_job(shared: &Shared, w: &mut Worker, id: u64, job: &mut Job) -> End {
    let args: Vec<&[u8]> = job.parts.iter().map(Vec::as_slice).collect();
    let timeout = shared.cfg.task_timeout;
    let expiry = async move {
        match timeout {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = w.call(id, job.name, &args) => match r {
            Ok(outcomes) => End::Done(outcomes),
            Err(()) => End::Crashed,
        },
        () = job.reply.closed() => End::Abandoned,
        () = expiry => End::TimedOut,
        () = shared.kill.cancelled() => End::Killed,
    }
}
