//! The dispatcher of a [`ProcessPool`](crate::ProcessPool): the queue of calls, the count
//! of the slots that run them and of their workers, and the pool's state (closing, broken,
//! killed). Slots ([`slot`](super::slot)) take calls from here; handles cancel them here.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::runtime::Handle;
use tokio::sync::{Notify, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::config::Config;
use super::error::{BrokenCause, BrokenPool, ProcessError, WorkerStartError};
use super::wire::is_small;
use super::worker::{Outcome, Worker};

/// What a slot sends back for one call: an outcome per argument, or why there is none.
pub(crate) type Reply = Result<Vec<Outcome>, ProcessError>;

/// A queued call.
pub(crate) struct Job {
    pub(crate) name: &'static str,
    pub(crate) parts: Vec<Vec<u8>>,
    pub(crate) reply: oneshot::Sender<Reply>,
}

pub(crate) struct Dispatcher {
    pub(crate) cfg: Config,
    pub(crate) runtime: Handle,
    state: Mutex<State>,
    /// A task was queued, or the pool is closing.
    work: Notify,
    /// Kill every worker now: the pool was dropped, terminated or broken.
    pub(crate) kill: CancellationToken,
    /// Slots alive: `shutdown` waits for 0.
    pub(crate) live_slots: watch::Sender<usize>,
    next_id: AtomicU64,
    /// Counts the cancels of calls that had left the queue, which slots may hold in their
    /// workers' windows; [`cancels`](Self::cancels) wakes them to look.
    cancel_epoch: AtomicU64,
    cancels: Notify,
    /// `close(true)`: the calls sent ahead to a worker and not started are cancelled too.
    cancel_pending: AtomicBool,
}

#[derive(Default)]
pub(crate) struct State {
    /// Queued tasks by id: FIFO, and removable by id.
    pub(crate) queue: BTreeMap<u64, Job>,
    /// Slots alive, and how many of them run a task.
    pub(crate) slots: usize,
    pub(crate) busy: usize,
    pub(crate) next_slot: u64,
    pub(crate) closing: bool,
    pub(crate) broken: Option<BrokenPool>,
    /// Failed worker starts in a row.
    pub(crate) start_failures: u32,
    /// The pid of each slot's worker.
    pub(crate) pids: BTreeMap<u64, u32>,
}

impl Dispatcher {
    /// The dispatcher of a pool built with `cfg`, whose slots run on `runtime`.
    pub(crate) fn new(cfg: Config, runtime: Handle) -> Dispatcher {
        Dispatcher {
            cfg,
            runtime,
            state: Mutex::new(State::default()),
            work: Notify::new(),
            kill: CancellationToken::new(),
            live_slots: watch::Sender::new(0),
            next_id: AtomicU64::new(1),
            cancel_epoch: AtomicU64::new(0),
            cancels: Notify::new(),
            cancel_pending: AtomicBool::new(false),
        }
    }
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The runtime the pool's slots run on.
    pub(crate) fn runtime(&self) -> &Handle {
        &self.runtime
    }

    /// Queues a call of `name` with one argument per part. Returns its id and where its
    /// reply will come, and a new slot to start if no free one can take the call; or why the
    /// pool refuses it.
    pub(crate) fn enqueue(
        self: &Arc<Self>,
        name: &'static str,
        parts: Vec<Vec<u8>>,
    ) -> Result<(u64, oneshot::Receiver<Reply>, Option<SlotGuard>), ProcessError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, rx) = oneshot::channel();
        let mut st = self.lock();
        if let Some(broken) = &st.broken {
            return Err(ProcessError::Broken(broken.clone()));
        }
        if st.closing {
            return Err(ProcessError::ShutDown);
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
        Ok((id, rx, guard))
    }

    /// Wakes an idle slot: a call was queued.
    pub(crate) fn notify_work(&self) {
        self.work.notify_one();
    }

    /// Takes a queued task out, if it is still queued: its handle was dropped. If it has
    /// left the queue, tells the slots to look for it: it may be waiting on a worker.
    pub(crate) fn cancel_queued(&self, id: u64) {
        let job = self.lock().queue.remove(&id);
        if job.is_none() {
            self.wake_slots_for_cancels();
        }
    }

    fn wake_slots_for_cancels(&self) {
        self.cancel_epoch.fetch_add(1, Ordering::AcqRel);
        self.cancels.notify_waiters();
    }

    /// How many cancels slots have been told to look for: a slot that saw this number
    /// change looks through its window.
    pub(crate) fn cancel_epoch(&self) -> u64 {
        self.cancel_epoch.load(Ordering::Acquire)
    }

    /// Resolves at the next cancel a slot should look for. Enable it before reading
    /// [`cancel_epoch`](Self::cancel_epoch).
    pub(crate) fn cancels(&self) -> tokio::sync::futures::Notified<'_> {
        self.cancels.notified()
    }

    /// Whether the calls not started are to be cancelled: `close(true)`.
    pub(crate) fn cancelling_pending(&self) -> bool {
        self.cancel_pending.load(Ordering::Acquire)
    }

    pub(crate) fn close(&self, cancel_pending: bool) {
        let cancelled = {
            let mut st = self.lock();
            st.closing = true;
            if cancel_pending {
                self.cancel_pending.store(true, Ordering::Release);
                std::mem::take(&mut st.queue)
            } else {
                BTreeMap::new()
            }
        };
        for job in cancelled.into_values() {
            let _ = job.reply.send(Err(ProcessError::Cancelled));
        }
        if cancel_pending {
            self.wake_slots_for_cancels();
        }
        self.work.notify_waiters();
    }

    pub(crate) fn break_pool(&self, cause: BrokenCause) {
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
    pub(crate) fn killed_error(&self) -> ProcessError {
        match &self.lock().broken {
            Some(broken) => ProcessError::Broken(broken.clone()),
            None => ProcessError::Cancelled,
        }
    }

    /// Waits until there is a task to take (`true`) or the slot should end (`false`).
    ///
    /// Meanwhile watches the slot's idle worker: one that dies idle (killed from outside,
    /// say) is reaped and replaced with the next task, which it would otherwise fail.
    pub(crate) async fn wait_for_work(&self, slot: u64, worker: &mut Option<Worker>) -> bool {
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
    pub(crate) fn take_job(&self) -> Option<(u64, Job, Busy<'_>)> {
        let mut st = self.lock();
        while let Some((id, job)) = st.queue.pop_first() {
            if !job.reply.is_closed() {
                st.busy += 1;
                return Some((id, job, Busy { shared: self }));
            }
        }
        None
    }

    /// Moves up to `room` more queued tasks into `out`, for a slot whose worker has `held`
    /// in flight already: only small ones, only those the idle slots will not take, and no
    /// more than the slot's share of what is queued, so that calls that turn out long are
    /// spread over the workers. Stops at a large one, which goes to a worker with nothing
    /// else to do.
    pub(crate) fn take_more(&self, room: usize, held: usize, out: &mut Vec<(u64, Job)>) {
        let mut st = self.lock();
        let idle = st.slots.saturating_sub(st.busy);
        let share = (st.queue.len() + held)
            .div_ceil(st.slots.max(1))
            .saturating_sub(held);
        let room = room.min(share);
        let mut taken = 0;
        while taken < room && st.queue.len() > idle {
            let Some(first) = st.queue.first_entry() else {
                break;
            };
            if !is_small(&first.get().parts) {
                break;
            }
            let (id, job) = first.remove_entry();
            if !job.reply.is_closed() {
                out.push((id, job));
                taken += 1;
            }
        }
    }

    /// Puts back tasks that were sent to a worker that died before it started them, at
    /// their place in the queue: they are run again, elsewhere. If the pool is broken,
    /// they fail as the queued ones did; if it was closed with its pending tasks
    /// cancelled, they are cancelled.
    pub(crate) fn requeue(&self, jobs: impl IntoIterator<Item = (u64, Job)>) {
        let refused = {
            let mut st = self.lock();
            let refusal = match &st.broken {
                Some(broken) => Some(ProcessError::Broken(broken.clone())),
                None => self.cancelling_pending().then_some(ProcessError::Cancelled),
            };
            let mut refused = Vec::new();
            for (id, job) in jobs {
                match &refusal {
                    Some(error) => refused.push((job, error.clone())),
                    None => {
                        st.queue.insert(id, job);
                    }
                }
            }
            refused
        };
        for (job, error) in refused {
            let _ = job.reply.send(Err(error));
        }
        // Every idle slot may take one.
        self.work.notify_waiters();
        self.work.notify_one();
    }

    pub(crate) fn worker_started(&self, slot: u64, pid: u32) {
        let mut st = self.lock();
        st.start_failures = 0;
        st.pids.insert(slot, pid);
    }

    pub(crate) fn worker_gone(&self, slot: u64) {
        self.lock().pids.remove(&slot);
    }

    /// Counts a failed start; `true` if it broke the pool.
    pub(crate) fn start_failed(&self, error: WorkerStartError) -> bool {
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

/// Marks a slot gone however its task ends, even when the runtime drops it, before its
/// first poll or in the middle of a task.
///
/// A slot ends on its own only once nothing is queued (or the pool is broken). One that
/// ends otherwise was dropped by its runtime, which has shut down: if it was the last
/// slot, no slot can take what is still queued, so those tasks fail now rather than wait
/// for ever.
pub(crate) struct SlotGuard {
    pub(crate) shared: Arc<Dispatcher>,
    pub(crate) slot: u64,
    /// The slot ran to its end.
    pub(crate) finished: bool,
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
pub(crate) struct Busy<'a> {
    shared: &'a Dispatcher,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.busy = st.busy.saturating_sub(1);
    }
}
