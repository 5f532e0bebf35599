//! Workloads of the synchronisation primitives: `Lock`, `Semaphore`, `Event` and
//! `Condition` (the queues are in `queues.rs`).
//!
//! Shapes mirror `asyncio_baseline.py` where it has them; the Python twins are in
//! `python/asyncio_workloads.py`. Each shape is written once, generic over the primitive
//! ([`BenchLock`], [`BenchSemaphore`], [`Signal`]), and run with aio's, Tokio's and the
//! peers' (async-lock, futures-intrusive, event-listener): every side spawns its tasks the
//! same way, so what differs between them is the primitive alone.
//!
//! The contended rows (`lock_contended`, `semaphore_limit10`) also measure fairness. Their
//! [`TASKS`] tasks share a fixed number of acquisitions: each takes a ticket, then
//! acquires, until no ticket is left. The driver holds the primitive until every task has
//! started, so they all queue before any gets a turn. The fairness is min/max of the
//! per-task counts: 1.0 when every task got as many turns, 0.0 when one starved.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::time::Instant;

use aio::{Condition, Event, Lock, Semaphore};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::{JoinSet, yield_now};

use super::{Sample, time_in_task};

/// Tasks in the contended rows.
const TASKS: usize = 100;
/// The permits of `semaphore_limit10`.
const LIMIT: usize = 10;
/// Tasks in `lock_4tasks_noawait`.
const FEW_TASKS: usize = 4;

/// What the tasks of one contended run share: how many have started, the tickets left, and
/// how many tasks hold the primitive now and at most. The aio version and the baseline pay
/// for it alike.
struct Contention {
    arrived: AtomicUsize,
    tickets: AtomicIsize,
    holders: AtomicUsize,
    peak: AtomicUsize,
}

impl Contention {
    fn new(n: usize) -> Arc<Self> {
        Arc::new(Contention {
            arrived: AtomicUsize::new(0),
            tickets: AtomicIsize::new(isize::try_from(n).expect("too many ops")),
            holders: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    /// The tasks a run of `n` acquisitions spreads over: [`TASKS`], or fewer when `n` is
    /// smaller, so that every task can have a turn.
    fn tasks(n: usize) -> usize {
        TASKS.min(n)
    }

    /// A task has started. It goes on to queue for the primitive in the same poll.
    fn arrive(&self) {
        self.arrived.fetch_add(1, Ordering::AcqRel);
    }

    /// Takes a ticket for one more acquisition; false once they are all taken.
    fn claim(&self) -> bool {
        self.tickets.fetch_sub(1, Ordering::Relaxed) > 0
    }

    /// A task has the primitive: count it in and note the concurrency.
    fn enter(&self) {
        let now = self.holders.fetch_add(1, Ordering::AcqRel) + 1;
        self.peak.fetch_max(now, Ordering::AcqRel);
    }

    /// A task is about to give the primitive back.
    fn leave(&self) {
        self.holders.fetch_sub(1, Ordering::AcqRel);
    }

    /// Checks a run of `n` acquisitions by tasks that made `counts` each, at most `limit` at a
    /// time, and returns its fairness.
    fn check(&self, counts: &[usize], n: usize, limit: usize, what: &str) -> f64 {
        assert_eq!(counts.len(), Self::tasks(n), "{what}: a task is missing");
        assert_eq!(
            counts.iter().sum::<usize>(),
            n,
            "{what}: wrong number of acquisitions"
        );
        assert_eq!(
            self.holders.load(Ordering::SeqCst),
            0,
            "{what}: a task still holds it"
        );
        let peak = self.peak.load(Ordering::SeqCst);
        assert!(
            (1..=limit).contains(&peak),
            "{what}: {peak} tasks held it at once, limit {limit}"
        );
        fairness(counts)
    }
}

/// min/max of `counts`.
fn fairness(counts: &[usize]) -> f64 {
    let min = counts.iter().copied().min().unwrap_or(0);
    let max = counts.iter().copied().max().unwrap_or(0);
    if max == 0 {
        0.0
    } else {
        min as f64 / max as f64
    }
}

/// Yields until `n` tasks have arrived. A task counts itself in and starts waiting in the
/// same poll, so once all have arrived they all wait (or are about to, on the other worker).
async fn all_arrived(arrived: &AtomicUsize, n: usize) {
    while arrived.load(Ordering::Acquire) < n {
        yield_now().await;
    }
}

/// Joins every task of `set`, returning their outputs in the order they finished.
pub(super) async fn join_all<T: 'static>(mut set: JoinSet<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(set.len());
    while let Some(r) = set.join_next().await {
        out.push(r.expect("a task panicked"));
    }
    out
}

/// The part `k` of `0..n` split into `parts` runs of nearly equal length.
pub(super) fn share(n: usize, k: usize, parts: usize) -> Range<usize> {
    n * k / parts..n * (k + 1) / parts
}

// --- The primitives, behind one interface per kind ------------------------------------

/// A mutual-exclusion lock, as each side spells it.
pub(super) trait BenchLock: Send + Sync + 'static {
    type Guard<'a>: Send
    where
        Self: 'a;
    fn new() -> Self;
    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> + Send;
    /// Whether a `try_lock` fails now (it does while the lock is held).
    fn is_held(&self) -> bool;
}

impl BenchLock for Lock {
    type Guard<'a> = aio::LockGuard<'a>;
    fn new() -> Self {
        Lock::new()
    }
    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> + Send {
        Lock::lock(self)
    }
    fn is_held(&self) -> bool {
        self.try_lock().is_err()
    }
}

impl BenchLock for tokio::sync::Mutex<()> {
    type Guard<'a> = tokio::sync::MutexGuard<'a, ()>;
    fn new() -> Self {
        tokio::sync::Mutex::new(())
    }
    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> + Send {
        tokio::sync::Mutex::lock(self)
    }
    fn is_held(&self) -> bool {
        self.try_lock().is_err()
    }
}

impl BenchLock for async_lock::Mutex<()> {
    type Guard<'a> = async_lock::MutexGuard<'a, ()>;
    fn new() -> Self {
        async_lock::Mutex::new(())
    }
    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> + Send {
        async_lock::Mutex::lock(self)
    }
    fn is_held(&self) -> bool {
        self.try_lock().is_none()
    }
}

/// futures-intrusive's mutex in its fair mode: FIFO hand-off, as aio's.
impl BenchLock for futures_intrusive::sync::Mutex<()> {
    type Guard<'a> = futures_intrusive::sync::MutexGuard<'a, ()>;
    fn new() -> Self {
        futures_intrusive::sync::Mutex::new((), true)
    }
    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> + Send {
        futures_intrusive::sync::Mutex::lock(self)
    }
    fn is_held(&self) -> bool {
        self.try_lock().is_none()
    }
}

/// A counting semaphore, as each side spells it.
pub(super) trait BenchSemaphore: Send + Sync + 'static {
    type Permit<'a>: Send
    where
        Self: 'a;
    fn new(permits: usize) -> Self;
    fn acquire(&self) -> impl Future<Output = Self::Permit<'_>> + Send;
}

impl BenchSemaphore for Semaphore {
    type Permit<'a> = aio::SemaphorePermit<'a>;
    fn new(permits: usize) -> Self {
        Semaphore::new(permits)
    }
    fn acquire(&self) -> impl Future<Output = Self::Permit<'_>> + Send {
        Semaphore::acquire(self)
    }
}

impl BenchSemaphore for tokio::sync::Semaphore {
    type Permit<'a> = tokio::sync::SemaphorePermit<'a>;
    fn new(permits: usize) -> Self {
        tokio::sync::Semaphore::new(permits)
    }
    async fn acquire(&self) -> Self::Permit<'_> {
        tokio::sync::Semaphore::acquire(self)
            .await
            .expect("semaphore closed")
    }
}

impl BenchSemaphore for async_lock::Semaphore {
    type Permit<'a> = async_lock::SemaphoreGuard<'a>;
    fn new(permits: usize) -> Self {
        async_lock::Semaphore::new(permits)
    }
    fn acquire(&self) -> impl Future<Output = Self::Permit<'_>> + Send {
        async_lock::Semaphore::acquire(self)
    }
}

/// futures-intrusive's semaphore in its fair mode.
impl BenchSemaphore for futures_intrusive::sync::Semaphore {
    type Permit<'a> = futures_intrusive::sync::SemaphoreReleaser<'a>;
    fn new(permits: usize) -> Self {
        futures_intrusive::sync::Semaphore::new(true, permits)
    }
    fn acquire(&self) -> impl Future<Output = Self::Permit<'_>> + Send {
        futures_intrusive::sync::Semaphore::acquire(self, 1)
    }
}

/// A one-shot wake-up that one task sends and another waits for, then re-arms: the
/// ping-pong shape.
pub(super) trait Signal: Send + Sync + 'static {
    fn new() -> Self;
    fn send(&self);
    /// Waits for a `send` (one made before the wait counts) and re-arms.
    fn receive(&self) -> impl Future<Output = ()> + Send;
}

/// asyncio's idiom: `set()`; `await wait(); clear()`.
impl Signal for Event {
    fn new() -> Self {
        Event::new()
    }
    fn send(&self) {
        self.set();
    }
    async fn receive(&self) {
        self.wait().await;
        self.clear();
    }
}

/// Tokio's: `notify_one` stores a permit when nobody waits.
impl Signal for tokio::sync::Notify {
    fn new() -> Self {
        tokio::sync::Notify::new()
    }
    fn send(&self) {
        self.notify_one();
    }
    fn receive(&self) -> impl Future<Output = ()> + Send {
        self.notified()
    }
}

/// event-listener's documented idiom: a flag, and a listener created only while it is not
/// set.
pub(super) struct FlagListener {
    flag: AtomicBool,
    event: event_listener::Event,
}

impl Signal for FlagListener {
    fn new() -> Self {
        FlagListener {
            flag: AtomicBool::new(false),
            event: event_listener::Event::new(),
        }
    }
    fn send(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.event.notify(usize::MAX);
    }
    async fn receive(&self) {
        loop {
            if self.flag.swap(false, Ordering::SeqCst) {
                return;
            }
            let listener = self.event.listen();
            if self.flag.swap(false, Ordering::SeqCst) {
                return;
            }
            listener.await;
        }
    }
}

// --- lock_contended: TASKS tasks share n acquisitions, yielding inside ----------------

pub(super) fn lock_contended<L: BenchLock>(rt: &Runtime, n: usize) -> Sample {
    let state = Contention::new(n);
    let tasks = Contention::tasks(n);
    let (elapsed, counts) = time_in_task(rt, {
        let state = Arc::clone(&state);
        async move {
            let lock = Arc::new(L::new());
            let gate = lock.lock().await;
            let mut set = JoinSet::new();
            for _ in 0..tasks {
                let (lock, state) = (Arc::clone(&lock), Arc::clone(&state));
                set.spawn(async move {
                    state.arrive();
                    let mut mine = 0_usize;
                    while state.claim() {
                        let _guard = lock.lock().await;
                        state.enter();
                        yield_now().await;
                        state.leave();
                        mine += 1;
                    }
                    mine
                });
            }
            all_arrived(&state.arrived, tasks).await;
            drop(gate);
            join_all(set).await
        }
    });
    Sample {
        elapsed,
        fairness: Some(state.check(&counts, n, 1, "lock_contended")),
    }
}

// --- lock_4tasks_noawait: FEW_TASKS tasks share n acquisitions, nothing awaited inside --
//
// The price of FIFO hand-off: each unlock waits for the next waiter to be scheduled. A
// barging lock lets the running task take it back at once.

pub(super) fn lock_4tasks_noawait<L: BenchLock>(rt: &Runtime, n: usize) -> Sample {
    let state = Contention::new(n);
    let tasks = FEW_TASKS.min(n);
    let (elapsed, counts) = time_in_task(rt, {
        let state = Arc::clone(&state);
        async move {
            let lock = Arc::new(L::new());
            let mut set = JoinSet::new();
            for _ in 0..tasks {
                let (lock, state) = (Arc::clone(&lock), Arc::clone(&state));
                set.spawn(async move {
                    state.arrive();
                    let mut mine = 0_usize;
                    while state.claim() {
                        let _guard = lock.lock().await;
                        state.enter();
                        state.leave();
                        mine += 1;
                    }
                    mine
                });
            }
            join_all(set).await
        }
    });
    assert_eq!(
        counts.iter().sum::<usize>(),
        n,
        "lock_4tasks_noawait: lost turns"
    );
    assert_eq!(
        state.peak.load(Ordering::SeqCst),
        1,
        "lock_4tasks_noawait: two tasks held the lock at once"
    );
    Sample {
        elapsed,
        fairness: Some(fairness(&counts)),
    }
}

// --- lock_uncontended: one task locks and unlocks n times -----------------------------
//
// A failing `try_lock` inside proves the lock is held; it costs every side the same load.

pub(super) fn lock_uncontended<L: BenchLock>(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, held) = time_in_task(rt, async move {
        let lock = L::new();
        let mut held = 0_usize;
        for _ in 0..n {
            let _guard = lock.lock().await;
            held += usize::from(lock.is_held());
        }
        held
    });
    assert_eq!(held, n, "lock_uncontended: the lock was not held");
    elapsed.into()
}

// --- semaphore_limit10: TASKS tasks share n acquisitions of LIMIT permits -------------

pub(super) fn semaphore_limit10<S: BenchSemaphore>(rt: &Runtime, n: usize) -> Sample {
    let state = Contention::new(n);
    let tasks = Contention::tasks(n);
    let (elapsed, counts) = time_in_task(rt, {
        let state = Arc::clone(&state);
        async move {
            let sem = Arc::new(S::new(LIMIT));
            let mut gate = Vec::with_capacity(LIMIT);
            for _ in 0..LIMIT {
                gate.push(sem.acquire().await);
            }
            let mut set = JoinSet::new();
            for _ in 0..tasks {
                let (sem, state) = (Arc::clone(&sem), Arc::clone(&state));
                set.spawn(async move {
                    state.arrive();
                    let mut mine = 0_usize;
                    while state.claim() {
                        let _permit = sem.acquire().await;
                        state.enter();
                        yield_now().await;
                        state.leave();
                        mine += 1;
                    }
                    mine
                });
            }
            all_arrived(&state.arrived, tasks).await;
            drop(gate);
            join_all(set).await
        }
    });
    Sample {
        elapsed,
        fairness: Some(state.check(&counts, n, LIMIT, "semaphore_limit10")),
    }
}

// --- semaphore_uncontended: one task acquires and releases n times --------------------

pub(super) fn semaphore_uncontended<S: BenchSemaphore>(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, acquired) = time_in_task(rt, async move {
        let sem = S::new(1);
        let mut acquired = 0_usize;
        for _ in 0..n {
            let permit = sem.acquire().await;
            acquired += 1;
            drop(permit);
        }
        acquired
    });
    assert_eq!(acquired, n, "semaphore_uncontended: acquisitions missing");
    elapsed.into()
}

// --- event_pingpong: two tasks wake each other n times --------------------------------

pub(super) fn event_pingpong<S: Signal>(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, rounds) = time_in_task(rt, async move {
        let (ping, pong) = (Arc::new(S::new()), Arc::new(S::new()));
        let ponger = tokio::spawn({
            let (ping, pong) = (Arc::clone(&ping), Arc::clone(&pong));
            async move {
                for _ in 0..n {
                    ping.receive().await;
                    pong.send();
                }
            }
        });
        let mut rounds = 0_usize;
        for _ in 0..n {
            ping.send();
            pong.receive().await;
            rounds += 1;
        }
        ponger.await.expect("ponger panicked");
        rounds
    });
    assert_eq!(rounds, n, "event_pingpong: rounds missing");
    elapsed.into()
}

// --- event_wake_all: n waiters, one set; timed from the set until all have returned ----

pub(super) fn event_wake_all_aio(rt: &Runtime, n: usize) -> Sample {
    let (_, (elapsed, woke)) = time_in_task(rt, async move {
        let event = Arc::new(Event::new());
        let arrived = Arc::new(AtomicUsize::new(0));
        let mut set = JoinSet::new();
        for _ in 0..n {
            let (event, arrived) = (Arc::clone(&event), Arc::clone(&arrived));
            set.spawn(async move {
                arrived.fetch_add(1, Ordering::AcqRel);
                event.wait().await;
                event.is_set()
            });
        }
        all_arrived(&arrived, n).await;
        let start = Instant::now();
        event.set();
        let woke = join_all(set).await.into_iter().filter(|&set| set).count();
        (start.elapsed(), woke)
    });
    assert_eq!(
        woke, n,
        "event_wake_all: a waiter returned before the event was set"
    );
    elapsed.into()
}

pub(super) fn event_wake_all_tokio(rt: &Runtime, n: usize) -> Sample {
    let (_, (elapsed, woke)) = time_in_task(rt, async move {
        let (tx, rx) = watch::channel(false);
        let arrived = Arc::new(AtomicUsize::new(0));
        let mut set = JoinSet::new();
        for _ in 0..n {
            let (mut rx, arrived) = (rx.clone(), Arc::clone(&arrived));
            set.spawn(async move {
                arrived.fetch_add(1, Ordering::AcqRel);
                *rx.wait_for(|&set| set).await.expect("sender dropped")
            });
        }
        all_arrived(&arrived, n).await;
        let start = Instant::now();
        tx.send(true).expect("no receivers");
        let woke = join_all(set).await.into_iter().filter(|&set| set).count();
        drop(rx);
        (start.elapsed(), woke)
    });
    assert_eq!(
        woke, n,
        "event_wake_all baseline: a waiter returned before the value was set"
    );
    elapsed.into()
}

// --- memory: the size of each primitive ------------------------------------------------

/// The size in bytes of each side's lock, semaphore and event, for the memory table.
pub(super) fn sizes() -> Vec<(&'static str, Vec<(&'static str, usize)>)> {
    vec![
        (
            "lock",
            vec![
                ("aio Lock", size_of::<Lock>()),
                ("tokio Mutex<()>", size_of::<tokio::sync::Mutex<()>>()),
                ("async-lock Mutex<()>", size_of::<async_lock::Mutex<()>>()),
                (
                    "futures-intrusive Mutex<()>",
                    size_of::<futures_intrusive::sync::Mutex<()>>(),
                ),
            ],
        ),
        (
            "semaphore",
            vec![
                ("aio Semaphore", size_of::<Semaphore>()),
                ("tokio Semaphore", size_of::<tokio::sync::Semaphore>()),
                ("async-lock Semaphore", size_of::<async_lock::Semaphore>()),
                (
                    "futures-intrusive Semaphore",
                    size_of::<futures_intrusive::sync::Semaphore>(),
                ),
            ],
        ),
        (
            "event",
            vec![
                ("aio Event", size_of::<Event>()),
                ("tokio Notify", size_of::<tokio::sync::Notify>()),
                ("event-listener Event + flag", size_of::<FlagListener>()),
            ],
        ),
    ]
}

// --- condition_notify: two tasks take n turns through a Condition ---------------------

/// Two tasks take turns: task `me` plays the turns whose number is `me` modulo 2. Each
/// waits for its turn under the condition's lock, takes it and notifies the other. One op
/// is one turn. No Rust baseline: Tokio has no condition variable.
pub(super) fn condition_notify_aio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, (mut played, turns)) = time_in_task(rt, async move {
        let cond = Arc::new(Condition::new());
        let turn = Arc::new(AtomicUsize::new(0));
        let mut set = JoinSet::new();
        for me in 0..2 {
            let (cond, turn) = (Arc::clone(&cond), Arc::clone(&turn));
            set.spawn(async move {
                let mut mine = 0_usize;
                loop {
                    let guard = cond.lock().await;
                    let _guard = cond
                        .wait_for(guard, || {
                            let t = turn.load(Ordering::Relaxed);
                            t >= n || t % 2 == me
                        })
                        .await;
                    let t = turn.load(Ordering::Relaxed);
                    if t >= n {
                        break;
                    }
                    turn.store(t + 1, Ordering::Relaxed);
                    mine += 1;
                    cond.notify(1);
                }
                (me, mine)
            });
        }
        (join_all(set).await, turn.load(Ordering::SeqCst))
    });
    assert_eq!(turns, n, "condition_notify: turns missing");
    played.sort_unstable();
    assert_eq!(
        played,
        [(0, n - n / 2), (1, n / 2)],
        "condition_notify: turns out of alternation"
    );
    elapsed.into()
}
