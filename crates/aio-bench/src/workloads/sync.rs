//! Workloads of the synchronisation primitives: `Lock`, `Semaphore`, `Event`, `Queue` and
//! `Condition`.
//!
//! Shapes mirror `asyncio_baseline.py` where it has them; the Python twins are in
//! `python/asyncio_workloads.py`. Both sides spawn their tasks the same way (a `JoinSet` or
//! `tokio::spawn`), so what differs between them is the primitive alone.
//!
//! The contended rows (`lock_contended`, `semaphore_limit10`) also measure fairness. Their
//! [`TASKS`] tasks share a fixed number of acquisitions: each takes a ticket, then
//! acquires, until no ticket is left. The driver holds the primitive until every task has
//! started, so they all queue before any gets a turn. The fairness is min/max of the
//! per-task counts: 1.0 when every task got as many turns, 0.0 when one starved.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::time::Instant;

use aio::{Condition, Event, Lock, Queue, Semaphore};
use tokio::runtime::Runtime;
use tokio::sync::{Mutex, mpsc, watch};
use tokio::task::{JoinSet, yield_now};

use super::{Sample, time_in_task};

/// Tasks in the contended rows.
const TASKS: usize = 100;
/// The permits of `semaphore_limit10`.
const LIMIT: usize = 10;
/// The bound of `queue_spsc_bounded1024`.
const SPSC_CAPACITY: usize = 1024;
/// The producers of `queue_mpmc_4x4_bounded128`.
const PRODUCERS: usize = 4;
/// The consumers of `queue_mpmc_4x4_bounded128`.
const CONSUMERS: usize = 4;
/// The bound of `queue_mpmc_4x4_bounded128`.
const MPMC_CAPACITY: usize = 128;

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
async fn join_all<T: 'static>(mut set: JoinSet<T>) -> Vec<T> {
    let mut out = Vec::with_capacity(set.len());
    while let Some(r) = set.join_next().await {
        out.push(r.expect("a task panicked"));
    }
    out
}

/// The part `k` of `0..n` split into `parts` runs of nearly equal length.
fn share(n: usize, k: usize, parts: usize) -> Range<usize> {
    n * k / parts..n * (k + 1) / parts
}

// --- lock_contended: TASKS tasks share n acquisitions, yielding inside ----------------

pub(super) fn lock_contended_aio(rt: &Runtime, n: usize) -> Sample {
    let state = Contention::new(n);
    let (elapsed, counts) = time_in_task(rt, {
        let state = Arc::clone(&state);
        async move {
            let lock = Arc::new(Lock::new());
            let gate = lock.lock().await;
            let mut set = JoinSet::new();
            for _ in 0..Contention::tasks(n) {
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
            all_arrived(&state.arrived, Contention::tasks(n)).await;
            drop(gate);
            join_all(set).await
        }
    });
    Sample {
        elapsed,
        fairness: Some(state.check(&counts, n, 1, "lock_contended")),
    }
}

pub(super) fn lock_contended_tokio(rt: &Runtime, n: usize) -> Sample {
    let state = Contention::new(n);
    let (elapsed, counts) = time_in_task(rt, {
        let state = Arc::clone(&state);
        async move {
            let lock = Arc::new(Mutex::new(()));
            let gate = lock.lock().await;
            let mut set = JoinSet::new();
            for _ in 0..Contention::tasks(n) {
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
            all_arrived(&state.arrived, Contention::tasks(n)).await;
            drop(gate);
            join_all(set).await
        }
    });
    Sample {
        elapsed,
        fairness: Some(state.check(&counts, n, 1, "lock_contended baseline")),
    }
}

// --- lock_uncontended: one task locks and unlocks n times -----------------------------
//
// A failing `try_lock` inside proves the lock is held; it costs both sides the same load.

pub(super) fn lock_uncontended_aio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, held) = time_in_task(rt, async move {
        let lock = Lock::new();
        let mut held = 0_usize;
        for _ in 0..n {
            let _guard = lock.lock().await;
            held += usize::from(lock.try_lock().is_err());
        }
        held
    });
    assert_eq!(held, n, "lock_uncontended: the lock was not held");
    elapsed.into()
}

pub(super) fn lock_uncontended_tokio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, held) = time_in_task(rt, async move {
        let lock = Mutex::new(());
        let mut held = 0_usize;
        for _ in 0..n {
            let _guard = lock.lock().await;
            held += usize::from(lock.try_lock().is_err());
        }
        held
    });
    assert_eq!(held, n, "lock_uncontended baseline: the lock was not held");
    elapsed.into()
}

// --- semaphore_limit10: TASKS tasks share n acquisitions of LIMIT permits -------------

pub(super) fn semaphore_limit10_aio(rt: &Runtime, n: usize) -> Sample {
    let state = Contention::new(n);
    let (elapsed, counts) = time_in_task(rt, {
        let state = Arc::clone(&state);
        async move {
            let sem = Arc::new(Semaphore::new(LIMIT));
            let mut gate = Vec::with_capacity(LIMIT);
            for _ in 0..LIMIT {
                gate.push(sem.acquire().await);
            }
            let mut set = JoinSet::new();
            for _ in 0..Contention::tasks(n) {
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
            all_arrived(&state.arrived, Contention::tasks(n)).await;
            drop(gate);
            join_all(set).await
        }
    });
    Sample {
        elapsed,
        fairness: Some(state.check(&counts, n, LIMIT, "semaphore_limit10")),
    }
}

pub(super) fn semaphore_limit10_tokio(rt: &Runtime, n: usize) -> Sample {
    let state = Contention::new(n);
    let (elapsed, counts) = time_in_task(rt, {
        let state = Arc::clone(&state);
        async move {
            let sem = Arc::new(tokio::sync::Semaphore::new(LIMIT));
            let permits = u32::try_from(LIMIT).expect("LIMIT fits in u32");
            let gate = sem.acquire_many(permits).await.expect("semaphore closed");
            let mut set = JoinSet::new();
            for _ in 0..Contention::tasks(n) {
                let (sem, state) = (Arc::clone(&sem), Arc::clone(&state));
                set.spawn(async move {
                    state.arrive();
                    let mut mine = 0_usize;
                    while state.claim() {
                        let _permit = sem.acquire().await.expect("semaphore closed");
                        state.enter();
                        yield_now().await;
                        state.leave();
                        mine += 1;
                    }
                    mine
                });
            }
            all_arrived(&state.arrived, Contention::tasks(n)).await;
            drop(gate);
            join_all(set).await
        }
    });
    Sample {
        elapsed,
        fairness: Some(state.check(&counts, n, LIMIT, "semaphore_limit10 baseline")),
    }
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

// --- queue_spsc_bounded1024: one producer, one consumer, n items ----------------------

pub(super) fn queue_spsc_aio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, in_order) = time_in_task(rt, async move {
        let queue = Queue::new(SPSC_CAPACITY);
        let producer = tokio::spawn({
            let queue = queue.clone();
            async move {
                for i in 0..n {
                    queue.put(i).await.expect("queue shut down");
                }
            }
        });
        let consumer = tokio::spawn(async move {
            let mut in_order = 0_usize;
            for i in 0..n {
                in_order += usize::from(queue.get().await.expect("queue shut down") == i);
            }
            in_order
        });
        producer.await.expect("producer panicked");
        consumer.await.expect("consumer panicked")
    });
    assert_eq!(
        in_order, n,
        "queue_spsc_bounded1024: items lost, repeated or out of order"
    );
    elapsed.into()
}

pub(super) fn queue_spsc_tokio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, in_order) = time_in_task(rt, async move {
        let (tx, mut rx) = mpsc::channel(SPSC_CAPACITY);
        let producer = tokio::spawn(async move {
            for i in 0..n {
                tx.send(i).await.expect("receiver dropped");
            }
        });
        let consumer = tokio::spawn(async move {
            let mut in_order = 0_usize;
            for i in 0..n {
                in_order += usize::from(rx.recv().await.expect("sender dropped") == i);
            }
            in_order
        });
        producer.await.expect("producer panicked");
        consumer.await.expect("consumer panicked")
    });
    assert_eq!(
        in_order, n,
        "queue_spsc_bounded1024 baseline: items lost, repeated or out of order"
    );
    elapsed.into()
}

// --- queue_mpmc_4x4_bounded128: PRODUCERS put n items, CONSUMERS get them -------------

/// Checks that the consumers got every item below `n` exactly once, in any order.
fn check_each_once(got: &[Vec<usize>], n: usize, what: &str) {
    let mut seen = vec![false; n];
    for &i in got.iter().flatten() {
        assert!(i < n, "{what}: item {i} out of range");
        assert!(!seen[i], "{what}: item {i} arrived twice");
        seen[i] = true;
    }
    assert!(seen.iter().all(|&s| s), "{what}: an item was lost");
}

pub(super) fn queue_mpmc_aio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, got) = time_in_task(rt, async move {
        let queue = Queue::new(MPMC_CAPACITY);
        let mut producers = JoinSet::new();
        for k in 0..PRODUCERS {
            let queue = queue.clone();
            producers.spawn(async move {
                for i in share(n, k, PRODUCERS) {
                    queue.put(i).await.expect("queue shut down");
                }
            });
        }
        let mut consumers = JoinSet::new();
        for k in 0..CONSUMERS {
            let queue = queue.clone();
            let count = share(n, k, CONSUMERS).len();
            consumers.spawn(async move {
                let mut got = Vec::with_capacity(count);
                for _ in 0..count {
                    got.push(queue.get().await.expect("queue shut down"));
                }
                got
            });
        }
        join_all(producers).await;
        join_all(consumers).await
    });
    check_each_once(&got, n, "queue_mpmc_4x4_bounded128");
    elapsed.into()
}

pub(super) fn queue_mpmc_async_channel(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, got) = time_in_task(rt, async move {
        let (tx, rx) = async_channel::bounded(MPMC_CAPACITY);
        let mut producers = JoinSet::new();
        for k in 0..PRODUCERS {
            let tx = tx.clone();
            producers.spawn(async move {
                for i in share(n, k, PRODUCERS) {
                    tx.send(i).await.expect("channel closed");
                }
            });
        }
        let mut consumers = JoinSet::new();
        for k in 0..CONSUMERS {
            let rx = rx.clone();
            let count = share(n, k, CONSUMERS).len();
            consumers.spawn(async move {
                let mut got = Vec::with_capacity(count);
                for _ in 0..count {
                    got.push(rx.recv().await.expect("channel closed"));
                }
                got
            });
        }
        join_all(producers).await;
        let got = join_all(consumers).await;
        drop((tx, rx));
        got
    });
    check_each_once(&got, n, "queue_mpmc_4x4_bounded128 baseline");
    elapsed.into()
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
