//! The slots of a [`ProcessPool`](crate::ProcessPool): Tokio tasks that each own at most
//! one worker process and run the queued calls on it.
//!
//! Slots start on demand, up to `max_workers`, and an idle slot takes the oldest queued
//! task, so a task stays in the queue, and cancellable, until a worker is free to run it. A
//! slot ends only when the pool is closing and the queue is empty, or when the pool is
//! killed or broken; it then stops or kills its worker and reaps it.
//!
//! A slot whose calls come back quickly sends more ahead: the calls in flight on a worker
//! are its *window*. The worker runs them in order, so the first is the one running (its
//! timeout runs, and cancelling it kills the worker), and the others are waiting: a cancel
//! message makes the worker skip one it has not started. The window grows while the calls
//! are short and shrinks to one call when they are long, so that little work waits on a
//! busy worker while another is free. If the worker dies, the call running is the one that
//! killed it, and those behind it go back to the queue, at their place.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::config::CrashPolicy;
use super::dispatch::{Busy, Dispatcher, Job, Reply, SlotGuard};
use super::error::{BrokenCause, ProcessError};
use super::handle::RawHandle;
use super::wire::{Frame, Header, is_small};
use super::worker::{Outcome, Worker};

/// The most calls in flight on one worker.
const MAX_WINDOW: usize = 64;
/// About how much work may wait behind a worker's running call: calls are sent ahead while
/// the window's calls, at their recent average length, add up to less.
const WINDOW_BUDGET: Duration = Duration::from_millis(1);
/// How long a cancelled call may take to be answered (skipped, or run to its end) once it
/// is its worker's first and cancelled, before it is taken for running and its worker
/// killed. A short call cancelled as it ends is answered within it, so its worker, and the
/// call it has started next, live on.
const CANCEL_GRACE: Duration = Duration::from_millis(20);
/// How long to wait, once a worker has exited, for the answers it sent before it died.
const DONE_GRACE: Duration = Duration::from_millis(100);

/// Queues a call of `name` with one argument per part, and starts a slot if no free one
/// can take it.
pub(crate) fn submit(pool: &Arc<Dispatcher>, name: &'static str, parts: Vec<Vec<u8>>) -> RawHandle {
    let (id, reply, guard) = match pool.enqueue(name, parts) {
        Ok(queued) => queued,
        Err(refused) => return RawHandle::failed(refused),
    };
    let handle = RawHandle::new(id, reply, Arc::downgrade(pool));
    if let Some(guard) = guard {
        // Outside the lock: a runtime that has shut down drops the slot at once, and its
        // guard then fails what is queued.
        pool.runtime().spawn(run_slot(guard));
    }
    pool.notify_work();
    handle
}

/// A call sent to a worker, until the worker answers it.
struct Sent {
    id: u64,
    name: &'static str,
    /// The arguments of a small call, kept to run it elsewhere if its worker dies before
    /// it starts. A large call is always alone on its worker, and its arguments went to
    /// the wire.
    parts: Vec<Vec<u8>>,
    args: usize,
    large: bool,
    /// `None` once the call is cancelled: whatever the worker says of it is dropped.
    reply: Option<oneshot::Sender<Reply>>,
    /// When it was cancelled, if it was while it was first.
    cancelled_at: Option<Instant>,
}

impl Sent {
    /// The call as a queued job again, unless it was cancelled.
    fn into_job(self) -> Option<(u64, Job)> {
        let reply = self.reply?;
        Some((
            self.id,
            Job {
                name: self.name,
                parts: self.parts,
                reply,
            },
        ))
    }
}

/// How many calls a slot sends ahead: as many as fit in [`WINDOW_BUDGET`] at the average
/// length of its recent calls, and one until it has seen a call end.
#[derive(Default)]
struct Pace {
    average: Option<Duration>,
}

impl Pace {
    fn window(&self) -> usize {
        self.average.map_or(1, |average| {
            let fit = WINDOW_BUDGET.as_nanos() / average.as_nanos().max(1);
            usize::try_from(fit)
                .unwrap_or(MAX_WINDOW)
                .clamp(1, MAX_WINDOW)
        })
    }

    fn observe(&mut self, took: Duration) {
        self.average = Some(match self.average {
            None => took,
            Some(average) => (average * 7 + took) / 8,
        });
    }
}

/// What ended a wait of a slot with calls in flight.
enum Event {
    Frame(Frame),
    /// The stream ended or failed.
    Lost,
    /// What the worker wrote is not frames.
    Garbled,
    Exited,
    Expired,
    Cancels,
    Killed,
}

/// How a worker with calls in flight is lost.
enum Loss {
    /// Killed: its first call ran out of time.
    TimedOut,
    /// Killed: its first call was cancelled.
    Abandoned,
    /// Killed with every worker of the pool.
    PoolKilled,
    /// It exited, or its stream ended.
    Died,
    /// It broke the protocol: killed, and nothing more it sent is read.
    Garbled,
}

async fn run_slot(mut guard: SlotGuard) {
    let shared = Arc::clone(&guard.shared);
    let slot = guard.slot;
    let mut worker: Option<Worker> = None;
    let mut pace = Pace::default();
    while shared.wait_for_work(slot, &mut worker).await {
        let w = match worker.take() {
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
        // Read before the call leaves the queue: a cancel from then on changes it.
        let epoch = shared.cancel_epoch();
        let Some((id, job, busy)) = shared.take_job() else {
            worker = Some(w);
            continue;
        };
        let mut window = Window {
            shared: &shared,
            calls: VecDeque::new(),
            busy: Some(busy),
            head_since: Instant::now(),
            pace: &mut pace,
            exited: false,
            more: Vec::new(),
        };
        match window.run(w, epoch, id, job).await {
            Some(w) => {
                let spent = shared
                    .cfg
                    .max_tasks_per_child
                    .is_some_and(|max| w.calls >= max.get());
                if spent {
                    shared.worker_gone(slot);
                    w.retire().await;
                } else {
                    worker = Some(w);
                }
            }
            None => shared.worker_gone(slot),
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

/// The calls in flight on one worker, first the one running.
struct Window<'a> {
    shared: &'a Dispatcher,
    calls: VecDeque<Sent>,
    /// Held while calls are in flight: the slot is busy.
    busy: Option<Busy<'a>>,
    /// When the first call became the first: its timeout runs from then.
    head_since: Instant,
    pace: &'a mut Pace,
    /// The worker has exited: read what it sent, send it nothing more.
    exited: bool,
    /// Where [`top_up`](Self::top_up) takes calls from the queue, kept between answers.
    more: Vec<(u64, Job)>,
}

impl Window<'_> {
    /// Runs `job` on `w`, and more calls behind it while they are short, until none is in
    /// flight: returns the worker then. If the worker is lost (it died, or was killed for
    /// a timeout or a cancel), answers or requeues every call in flight and returns `None`.
    /// `epoch` is the dispatcher's cancel epoch from before `job` left the queue.
    async fn run(&mut self, mut w: Worker, mut epoch: u64, id: u64, job: Job) -> Option<Worker> {
        self.send(&mut w, id, job);
        self.top_up(&mut w);
        let mut expiry = pin!(tokio::time::sleep_until(self.head_since));
        let mut deadline = self.deadline();
        if let Some(at) = deadline {
            expiry.as_mut().reset(at);
        }
        loop {
            if self.calls.is_empty() {
                // The cancels of calls that were answered anyway may still be going out.
                let conn = w.conn();
                if conn.is_flushed() || conn.flush().await.is_ok() {
                    return Some(w);
                }
                // It answered every call, then went away: replaced before the next.
                w.kill().await;
                return None;
            }
            let event = {
                let (conn, exited) = w.io();
                let mut exited = pin!(exited);
                let mut cancels = pin!(self.shared.cancels());
                cancels.as_mut().enable();
                let mut killed = pin!(self.shared.kill.cancelled());
                poll_fn(|cx| {
                    // Answers first: a call answered is not cancelled, timed out or killed.
                    match conn.poll_frame(cx) {
                        Poll::Ready(Ok(Some(frame))) => return Poll::Ready(Event::Frame(frame)),
                        Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                            return Poll::Ready(Event::Garbled);
                        }
                        Poll::Ready(_) => return Poll::Ready(Event::Lost),
                        Poll::Pending => {}
                    }
                    if killed.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Event::Killed);
                    }
                    if self.shared.cancel_epoch() != epoch || cancels.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Event::Cancels);
                    }
                    if exited.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Event::Exited);
                    }
                    if deadline.is_some() && expiry.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Event::Expired);
                    }
                    Poll::Pending
                })
                .await
            };
            let loss = match event {
                Event::Frame(frame) => self.answer(&mut w, frame).err(),
                Event::Cancels => {
                    epoch = self.shared.cancel_epoch();
                    self.cancel_waiting(&mut w);
                    None
                }
                Event::Expired => Some(match self.calls.front() {
                    Some(first) if first.reply.is_some() => Loss::TimedOut,
                    _ => Loss::Abandoned,
                }),
                Event::Killed => Some(Loss::PoolKilled),
                Event::Lost | Event::Exited => Some(Loss::Died),
                Event::Garbled => Some(Loss::Garbled),
            };
            if let Some(loss) = loss {
                self.lose(w, loss).await;
                return None;
            }
            let next = self.deadline();
            if next != deadline {
                deadline = next;
                if let Some(at) = deadline {
                    expiry.as_mut().reset(at);
                }
            }
        }
    }

    /// When the first call in flight runs out of time: its task timeout, or, if it was
    /// cancelled before it started, the grace it has to be skipped.
    fn deadline(&self) -> Option<Instant> {
        let first = self.calls.front()?;
        if first.reply.is_none() {
            let since = first.cancelled_at.unwrap_or(self.head_since);
            return Some(since.max(self.head_since) + CANCEL_GRACE);
        }
        self.shared.cfg.task_timeout.map(|t| self.head_since + t)
    }

    /// Sends a call to the worker. A call that cannot be framed (more parts than a frame
    /// holds) fails alone.
    fn send(&mut self, w: &mut Worker, id: u64, job: Job) {
        let Job { name, parts, reply } = job;
        let header = Header::Call {
            id,
            name: name.to_owned(),
        };
        let args = parts.len();
        let large = !is_small(&parts);
        let (queued, parts) = if large {
            (w.conn().queue_large(&header, parts), Vec::new())
        } else {
            let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
            (w.conn().queue(&header, &refs), parts)
        };
        if let Err(e) = queued {
            let why = format!("the call cannot be sent: {e}");
            let _ = reply.send(Err(ProcessError::SerializeArgs(why)));
            return;
        }
        w.calls += 1;
        self.calls.push_back(Sent {
            id,
            name,
            parts,
            args,
            large,
            reply: Some(reply),
            cancelled_at: None,
        });
    }

    /// Sends more calls ahead, if the calls are short and the worker has room.
    fn top_up(&mut self, w: &mut Worker) {
        if self.exited || self.calls.iter().any(|c| c.large) {
            return;
        }
        let left = self
            .shared
            .cfg
            .max_tasks_per_child
            .map_or(usize::MAX, |max| max.get().saturating_sub(w.calls));
        let room = self
            .pace
            .window()
            .saturating_sub(self.calls.len())
            .min(left);
        if room == 0 {
            return;
        }
        let mut more = std::mem::take(&mut self.more);
        self.shared.take_more(room, self.calls.len(), &mut more);
        for (id, job) in more.drain(..) {
            self.send(w, id, job);
        }
        self.more = more;
    }

    /// Takes the worker's answer to its first call, sends more calls ahead, and replies.
    /// `Err` if the worker broke the protocol.
    fn answer(&mut self, w: &mut Worker, frame: Frame) -> Result<(), Loss> {
        let first = self.calls.front().ok_or(Loss::Garbled)?;
        let outcomes = match frame.header {
            Header::Done { id, outcomes } if id == first.id && outcomes.len() == first.args => {
                let mut parts = frame.parts.into_iter();
                let outcomes: Option<Vec<Outcome>> = outcomes
                    .into_iter()
                    .map(|failure| match failure {
                        None => parts.next().map(Ok),
                        Some(f) => Some(Err(f)),
                    })
                    .collect();
                Some(outcomes.ok_or(Loss::Garbled)?)
            }
            Header::Skipped { id } if id == first.id && first.reply.is_none() => None,
            _ => return Err(Loss::Garbled),
        };
        let now = Instant::now();
        if outcomes.is_some() {
            self.pace.observe(now - self.head_since);
        }
        self.head_since = now;
        let done = self.calls.pop_front();
        self.top_up(w);
        if self.calls.is_empty() {
            // Not busy before the reply is out: a caller that submits again as soon as it
            // has its answer finds this slot free, and no new worker is started for it.
            self.busy = None;
        }
        if let (Some(reply), Some(outcomes)) = (done.and_then(|d| d.reply), outcomes) {
            let _ = reply.send(Ok(outcomes));
        }
        Ok(())
    }

    /// Cancels the calls in flight whose handles were dropped or cancelled, or all those
    /// not started if the pool was closed with its pending tasks cancelled: tells the
    /// worker to skip them. The call running, if its handle is gone, has [`CANCEL_GRACE`]
    /// to end before its worker is killed.
    fn cancel_waiting(&mut self, w: &mut Worker) {
        let pending = self.shared.cancelling_pending();
        for (i, call) in self.calls.iter_mut().enumerate() {
            let Some(reply) = &call.reply else {
                continue;
            };
            let abandoned = reply.is_closed();
            if i == 0 {
                if abandoned {
                    call.reply = None;
                    call.cancelled_at = Some(Instant::now());
                }
                continue;
            }
            if abandoned || pending {
                if let Some(reply) = call.reply.take() {
                    let _ = reply.send(Err(ProcessError::Cancelled));
                }
                // A header this small always encodes.
                let _ = w.conn().queue(&Header::Cancel { id: call.id }, &[]);
            }
        }
    }

    /// The worker is lost with calls in flight. Kills it first, whatever happened: a
    /// worker still running could start a call that is then requeued. Then reads what it
    /// wrote before it ended: a call it answered is answered, however it ended. Then the
    /// first call left is the one it was running. That call gets why the worker was lost,
    /// and the calls behind it, which never started, go back to the queue (or fail with
    /// the pool, if it is killed or broken). If what it wrote cannot be read, which of its
    /// calls ran is unknown: they all fail, and none runs again.
    async fn lose(&mut self, mut w: Worker, loss: Loss) {
        let killed_for = self.calls.front().map(|c| c.id);
        w.kill().await;
        self.exited = true;
        w.conn().discard_outbox();
        let mut garbled = matches!(loss, Loss::Garbled);
        if !garbled {
            let drained = tokio::time::timeout(DONE_GRACE, async {
                while !self.calls.is_empty() {
                    match w.conn().next_frame().await {
                        Ok(Some(frame)) => self.answer(&mut w, frame)?,
                        Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                            return Err(Loss::Garbled);
                        }
                        _ => break,
                    }
                }
                Ok(())
            })
            .await;
            garbled = matches!(drained, Ok(Err(Loss::Garbled)));
        }
        if garbled {
            self.busy = None;
            let crashed = w.crashed().await;
            tracing::debug!(error = %crashed, "a process pool worker broke the protocol");
            if self.shared.cfg.crash_policy == CrashPolicy::BreakPool {
                self.shared
                    .break_pool(BrokenCause::WorkerCrashed(crashed.clone()));
            }
            let error = ProcessError::WorkerCrashed(crashed);
            for call in self.calls.drain(..) {
                if let Some(reply) = call.reply {
                    let _ = reply.send(Err(error.clone()));
                }
            }
            return;
        }
        self.busy = None;
        let Some(first) = self.calls.pop_front() else {
            // It answered every call before it ended.
            return;
        };
        let error = match loss {
            // The call it was killed for ended in time; the one after it had just
            // started, and died with the worker.
            Loss::TimedOut | Loss::Abandoned if killed_for != Some(first.id) => None,
            Loss::TimedOut => Some(ProcessError::TimedOut {
                after: self.shared.cfg.task_timeout.unwrap_or_default(),
            }),
            Loss::Abandoned => Some(ProcessError::Cancelled),
            Loss::PoolKilled => {
                let error = self.shared.killed_error();
                for call in std::iter::once(first).chain(self.calls.drain(..)) {
                    if let Some(reply) = call.reply {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
                return;
            }
            Loss::Died | Loss::Garbled => None,
        };
        if let Some(error) = error {
            if let Some(reply) = first.reply {
                let _ = reply.send(Err(error));
            }
            self.requeue();
            return;
        }
        // It died in `first`: the calls behind it need not wait for the report. A worker
        // the pool killed for the call before `first` did not crash of itself, and breaks
        // no pool.
        let breaks = self.shared.cfg.crash_policy == CrashPolicy::BreakPool;
        let killed_for_another = matches!(loss, Loss::TimedOut | Loss::Abandoned);
        if !breaks || killed_for_another {
            self.requeue();
        }
        let crashed = w.crashed().await;
        // Reported by the task's error; logged at WARN only if nobody takes it.
        tracing::debug!(error = %crashed, "a process pool worker died in a task");
        if breaks && !killed_for_another {
            self.shared
                .break_pool(BrokenCause::WorkerCrashed(crashed.clone()));
            self.requeue();
        }
        let error = ProcessError::WorkerCrashed(crashed);
        let delivered = match first.reply {
            Some(reply) => reply.send(Err(error.clone())).is_ok(),
            None => false,
        };
        if !delivered {
            tracing::warn!(%error, "a process pool worker died in a task nobody waits for");
        }
    }

    /// Puts the calls still in flight back in the queue.
    fn requeue(&mut self) {
        let calls = self.calls.drain(..).filter_map(Sent::into_job);
        self.shared.requeue(calls);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_one_call_until_a_call_ends_then_about_a_millisecond_of_calls() {
        let window = |average_us: u64| {
            let mut pace = Pace::default();
            pace.observe(Duration::from_micros(average_us));
            pace.window()
        };
        assert_eq!(Pace::default().window(), 1);
        assert_eq!(window(0), MAX_WINDOW);
        assert_eq!(window(10), MAX_WINDOW);
        assert_eq!(window(100), 10);
        assert_eq!(window(400), 2);
        assert_eq!(window(10_000), 1);
    }

    #[test]
    fn one_long_call_among_short_ones_shrinks_the_window_at_once() {
        let mut pace = Pace::default();
        for _ in 0..100 {
            pace.observe(Duration::from_micros(5));
        }
        assert_eq!(pace.window(), MAX_WINDOW);
        pace.observe(Duration::from_millis(100));
        assert_eq!(pace.window(), 1);
    }
}
