//! [`Barrier`]: asyncio's `Barrier`, cancel safe.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::PoisonError;
use std::task::{Context, Poll, Waker};

use crate::model::{Mutex, MutexGuard};
use crate::wait_list::{Key, Wait, WaitList};

/// The error of [`Barrier::wait`] when the barrier is broken by [`Barrier::abort`], or reset
/// by [`Barrier::reset`] while the task waited: asyncio's `BrokenBarrierError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the barrier is broken: it was aborted, or reset while this task waited")]
pub struct BrokenBarrierError;

/// A cyclic barrier for a fixed number of tasks: each [`wait`](Barrier::wait) blocks until
/// `parties` tasks are waiting, then all of them go on, and the barrier fills again.
///
/// As asyncio's `Barrier`: a barrier that has tripped is *draining* until every task it
/// released has left `wait`, and tasks arriving meanwhile wait for the next cycle.
/// [`abort`](Barrier::abort) breaks it for everyone until [`reset`](Barrier::reset).
///
/// Unlike `tokio::sync::Barrier`, waiting is cancel safe: a task whose `wait` is dropped
/// while the barrier fills is no longer counted, and does not break the barrier. Each
/// `wait` that passes returns a distinct index in `0..parties`, in order of arrival among
/// the tasks that made it through (asyncio counts a cancelled arrival, so an index may
/// repeat there).
///
/// Waiters are released in FIFO order.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use aio_sync::Barrier;
///
/// let barrier = Arc::new(Barrier::new(3));
/// let mut tasks = Vec::new();
/// for _ in 0..3 {
///     let barrier = Arc::clone(&barrier);
///     tasks.push(tokio::spawn(async move { barrier.wait().await.unwrap() }));
/// }
/// let mut indices = Vec::new();
/// for task in tasks {
///     indices.push(task.await.unwrap());
/// }
/// indices.sort();
/// assert_eq!(indices, [0, 1, 2]);
/// # }
/// ```
pub struct Barrier {
    parties: usize,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for `parties` arrivals.
    Filling,
    /// Tripped: the released tasks are leaving.
    Draining,
    /// Reset while tasks were inside: they are leaving with an error.
    Resetting,
    /// Aborted.
    Broken,
}

struct State {
    parties: usize,
    phase: Phase,
    /// Tasks inside the barrier: waiting while it fills, or released and not yet gone.
    count: usize,
    /// Tasks waiting for it to fill; each is handed its index, or the error.
    filling: WaitList<Result<usize, BrokenBarrierError>>,
    /// Tasks that arrived while it drained or reset, waiting for it to fill again.
    gate: WaitList<Admission>,
}

/// What a task waiting at the gate is told when the gate opens.
#[derive(Debug)]
enum Admission {
    /// Counted in, and waiting in `filling` under this key.
    Counted(Key),
    /// Its arrival tripped the barrier: it passes with the last index.
    Tripped,
    /// Look at the barrier again (it was aborted).
    Retry,
}

impl State {
    /// A task inside the barrier leaves. The last one out lets the next cycle in.
    fn leave(&mut self, wakers: &mut Vec<Waker>) {
        self.count -= 1;
        if self.count == 0 && matches!(self.phase, Phase::Draining | Phase::Resetting) {
            self.phase = Phase::Filling;
            self.open_gate(wakers);
        }
    }

    /// A task arrives while the barrier fills: it either waits in `filling` (`Some` key),
    /// or trips the barrier (`None`).
    fn arrive(&mut self, waker: &Waker, wakers: &mut Vec<Waker>) -> Option<Key> {
        if self.count + 1 < self.parties {
            self.count += 1;
            return Some(self.filling.push(waker));
        }
        self.trip(wakers);
        None
    }

    /// The last party has arrived: release the others, in the order they came, with
    /// their indices. They drain out; the tripping task never counted in.
    fn trip(&mut self, wakers: &mut Vec<Waker>) {
        let mut index = 0..;
        self.filling
            .notify(usize::MAX, || Ok(index.next().expect("unbounded")), wakers);
        if self.parties > 1 {
            self.phase = Phase::Draining;
        }
    }

    /// The barrier fills again: the tasks at the gate arrive, in the order they came, so
    /// that none is overtaken by a task that came later. Those beyond the barrier's parties
    /// stay at the gate for the cycle after.
    fn open_gate(&mut self, wakers: &mut Vec<Waker>) {
        while self.phase == Phase::Filling {
            let trips = self.count + 1 >= self.parties;
            let State {
                gate,
                filling,
                count,
                ..
            } = self;
            let admitted = gate.notify_one_with(|waker| {
                if trips {
                    Admission::Tripped
                } else {
                    *count += 1;
                    Admission::Counted(filling.push(waker))
                }
            });
            let Some(waker) = admitted else {
                break;
            };
            wakers.push(waker);
            if trips {
                self.trip(wakers);
            }
        }
    }
}

impl Barrier {
    /// A barrier for `parties` tasks.
    ///
    /// # Panics
    ///
    /// If `parties` is 0 (asyncio raises `ValueError`).
    #[track_caller]
    pub fn new(parties: usize) -> Barrier {
        assert!(parties > 0, "a barrier needs at least one party");
        Barrier {
            parties,
            state: Mutex::new(State {
                parties,
                phase: Phase::Filling,
                count: 0,
                filling: WaitList::new(),
                gate: WaitList::new(),
            }),
        }
    }

    /// Waits until `parties` tasks are waiting, and returns this task's index among them:
    /// 0 for the first to arrive, `parties - 1` for the one that trips the barrier.
    ///
    /// A task that arrives while the barrier drains (some of the tasks of the last cycle
    /// have not left yet) or resets waits for the next cycle.
    ///
    /// # Errors
    ///
    /// [`BrokenBarrierError`] if the barrier is aborted, or reset while this task waits.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. Dropped while the barrier fills, the task's arrival is undone: the
    /// barrier waits for another party, and is not broken. Dropped after the barrier
    /// tripped, the task counts as having passed and left.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::Barrier;
    ///
    /// let barrier = Barrier::new(1);
    /// // A barrier for one party trips at every wait.
    /// assert_eq!(barrier.wait().await, Ok(0));
    /// assert_eq!(barrier.wait().await, Ok(0));
    /// # }
    /// ```
    pub fn wait(&self) -> BarrierWait<'_> {
        BarrierWait {
            barrier: self,
            stage: Stage::Arriving,
        }
    }

    /// Breaks the barrier: the tasks waiting now and every later `wait` get
    /// [`BrokenBarrierError`], until [`reset`](Self::reset). Tasks the barrier had already
    /// released still pass.
    pub fn abort(&self) {
        let mut wakers = Vec::new();
        {
            let mut state = self.lock();
            state.phase = Phase::Broken;
            let state = &mut *state;
            state
                .filling
                .notify(usize::MAX, || Err(BrokenBarrierError), &mut wakers);
            state
                .gate
                .notify(usize::MAX, || Admission::Retry, &mut wakers);
        }
        wakers.into_iter().for_each(Waker::wake);
    }

    /// Resets the barrier to its initial, filling state, as asyncio's `reset()`: the tasks
    /// waiting for it to fill get [`BrokenBarrierError`]; tasks it had already released
    /// still pass. Once those have left, the barrier fills again. A broken barrier is
    /// repaired. On an idle barrier, this does nothing.
    pub fn reset(&self) {
        let mut wakers = Vec::new();
        {
            let mut state = self.lock();
            let state = &mut *state;
            if state.count > 0 {
                state.phase = Phase::Resetting;
                state
                    .filling
                    .notify(usize::MAX, || Err(BrokenBarrierError), &mut wakers);
            } else {
                state.phase = Phase::Filling;
                state.open_gate(&mut wakers);
            }
        }
        wakers.into_iter().for_each(Waker::wake);
    }

    /// How many tasks the barrier needs to trip.
    pub fn parties(&self) -> usize {
        self.parties
    }

    /// How many tasks are waiting for the barrier to fill; 0 while it drains, resets or is
    /// broken.
    pub fn n_waiting(&self) -> usize {
        let state = self.lock();
        if state.phase == Phase::Filling {
            state.filling.len()
        } else {
            0
        }
    }

    /// Whether the barrier is broken by [`abort`](Self::abort).
    pub fn is_broken(&self) -> bool {
        self.lock().phase == Phase::Broken
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements: a panic cannot leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Barrier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        let phase = match state.phase {
            Phase::Filling => "filling",
            Phase::Draining => "draining",
            Phase::Resetting => "resetting",
            Phase::Broken => "broken",
        };
        f.debug_struct("Barrier")
            .field("phase", &format_args!("{phase}"))
            .field(
                "waiters",
                &format_args!("{}/{}", state.filling.len(), self.parties),
            )
            .finish()
    }
}

enum Stage {
    /// Not yet counted in.
    Arriving,
    /// Waiting for a draining or resetting barrier to fill again.
    AtTheGate(Key),
    /// Counted in, waiting for the barrier to fill.
    Filling(Key),
    Done,
}

/// Future returned by [`Barrier::wait`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct BarrierWait<'a> {
    barrier: &'a Barrier,
    stage: Stage,
}

impl fmt::Debug for BarrierWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BarrierWait").finish_non_exhaustive()
    }
}

impl Future for BarrierWait<'_> {
    type Output = Result<usize, BrokenBarrierError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let this = &mut *self;
        let (mut wakers, mut stale) = (Vec::new(), Vec::new());
        let poll = {
            let mut guard = this.barrier.lock();
            let state = &mut *guard;
            loop {
                match this.stage {
                    Stage::Arriving => match state.phase {
                        Phase::Broken => break Poll::Ready(Err(BrokenBarrierError)),
                        Phase::Draining | Phase::Resetting => {
                            this.stage = Stage::AtTheGate(state.gate.push(cx.waker()));
                            break Poll::Pending;
                        }
                        Phase::Filling => match state.arrive(cx.waker(), &mut wakers) {
                            Some(key) => {
                                this.stage = Stage::Filling(key);
                                break Poll::Pending;
                            }
                            None => break Poll::Ready(Ok(this.barrier.parties - 1)),
                        },
                    },
                    Stage::AtTheGate(key) => match state.gate.poll(key, cx.waker(), &mut stale) {
                        Wait::Waiting => break Poll::Pending,
                        Wait::Notified(Admission::Counted(key)) => this.stage = Stage::Filling(key),
                        Wait::Notified(Admission::Tripped) => {
                            break Poll::Ready(Ok(this.barrier.parties - 1));
                        }
                        Wait::Notified(Admission::Retry) => this.stage = Stage::Arriving,
                    },
                    Stage::Filling(key) => match state.filling.poll(key, cx.waker(), &mut stale) {
                        Wait::Waiting => break Poll::Pending,
                        Wait::Notified(outcome) => {
                            state.leave(&mut wakers);
                            break Poll::Ready(outcome);
                        }
                    },
                    Stage::Done => panic!("`BarrierWait` polled after it completed"),
                }
            }
        };
        wakers.into_iter().for_each(Waker::wake);
        if poll.is_ready() {
            this.stage = Stage::Done;
            coop.made_progress();
        }
        poll
    }
}

impl Drop for BarrierWait<'_> {
    fn drop(&mut self) {
        let (mut wakers, mut stale) = (Vec::new(), Vec::new());
        match self.stage {
            Stage::Arriving | Stage::Done => return,
            Stage::AtTheGate(key) => {
                let mut state = self.barrier.lock();
                // Counted in when the gate opened, but never ran: as below. Tripped it, or
                // told to look again: there is nothing to undo.
                if let Some(Admission::Counted(key)) = state.gate.remove(key, &mut stale) {
                    state.filling.remove(key, &mut stale);
                    state.leave(&mut wakers);
                }
            }
            Stage::Filling(key) => {
                let mut state = self.barrier.lock();
                // Still waiting: the arrival is undone. Released (or broken) but not yet
                // gone: the task leaves now.
                state.filling.remove(key, &mut stale);
                state.leave(&mut wakers);
            }
        }
        wakers.into_iter().for_each(Waker::wake);
    }
}
