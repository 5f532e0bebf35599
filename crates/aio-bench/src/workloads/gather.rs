//! Workloads of fan-out: `gather`, `as_completed` and groups with a concurrency limit.
//!
//! Shapes mirror `asyncio_baseline.py`; the Python twins are in
//! `python/asyncio_workloads.py`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aio::{BoxError, TaskGroup};
use futures::StreamExt;
use futures::future::join_all;
use tokio::runtime::Runtime;
use tokio::sync::Semaphore;
use tokio::task::coop::unconstrained;
use tokio::task::{JoinSet, yield_now};

use super::{Sample, time_in_task};

/// The concurrency limit of `limited_group`.
const LIMIT: usize = 10;

/// Children of `limited_group` that finished, and how many hold a slot now and at most, so
/// each run can check that the work happened within the limit. The aio version and the
/// baseline pay for them alike. Workloads run one at a time, so one set is enough; each run
/// resets it.
static DONE: AtomicUsize = AtomicUsize::new(0);
static ACTIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn reset_counters() {
    DONE.store(0, Ordering::SeqCst);
    ACTIVE.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
}

/// A child has its slot: count it in and note the concurrency.
fn enter() {
    let now = ACTIVE.fetch_add(1, Ordering::AcqRel) + 1;
    PEAK.fetch_max(now, Ordering::AcqRel);
}

/// A child is about to give its slot back: count it out and as done.
fn leave() {
    ACTIVE.fetch_sub(1, Ordering::AcqRel);
    DONE.fetch_add(1, Ordering::Relaxed);
}

/// Checks the counters after a `limited_group` run of `n` children.
fn check_limited(n: usize, what: &str) {
    assert_eq!(
        DONE.load(Ordering::SeqCst),
        n,
        "{what}: not every child ran"
    );
    assert_eq!(
        ACTIVE.load(Ordering::SeqCst),
        0,
        "{what}: a child is still in"
    );
    let peak = PEAK.load(Ordering::SeqCst);
    assert!(
        (1..=LIMIT).contains(&peak),
        "{what}: {peak} children ran at once, limit {LIMIT}"
    );
}

/// Checks that `got` holds every index below `n` exactly once, in any order.
fn check_each_once(got: &[usize], n: usize, what: &str) {
    assert_eq!(got.len(), n, "{what}: wrong number of results");
    let mut seen = vec![false; n];
    for &i in got {
        assert!(i < n, "{what}: index {i} out of range");
        assert!(!seen[i], "{what}: index {i} arrived twice");
        seen[i] = true;
    }
}

// --- gather: n trivial futures, results in order -------------------------------------

pub(super) fn gather_aio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, result) = time_in_task(rt, async move {
        aio::gather((0..n).map(|i| async move { Ok::<usize, BoxError>(i) })).await
    });
    let values = result.expect("gather: the group failed");
    assert!(
        values.iter().copied().eq(0..n),
        "gather: results missing or out of order"
    );
    elapsed.into()
}

/// `join_all` runs outside Tokio's coop budget. Inside it, once the budget is spent every
/// finished `JoinHandle` returns `Pending` and defers its wake-up until the task yields, and
/// `FuturesUnordered` (under `join_all` past 30 futures) does not see that as a yield: it
/// goes on to poll every remaining handle, so each budget's worth of results costs a pass
/// over all n handles (Tokio 1.54, futures-util 0.3.34). That makes a plain `join_all`
/// quadratic, about 50 µs/op at n = 100 000, which is not what Tokio costs.
pub(super) fn gather_tokio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, values) = time_in_task(rt, async move {
        let handles = (0..n).map(|i| tokio::spawn(async move { i }));
        unconstrained(join_all(handles))
            .await
            .into_iter()
            .map(|r| r.expect("child panicked"))
            .collect::<Vec<usize>>()
    });
    assert!(
        values.iter().copied().eq(0..n),
        "gather baseline: results missing or out of order"
    );
    elapsed.into()
}

// --- as_completed: n futures that yield once, outputs as they finish -----------------

pub(super) fn as_completed_aio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, got) = time_in_task(rt, async move {
        let mut stream = aio::as_completed((0..n).map(|i| async move {
            yield_now().await;
            i
        }));
        let mut got = Vec::with_capacity(n);
        while let Some(i) = stream.next().await {
            got.push(i);
        }
        got
    });
    check_each_once(&got, n, "as_completed");
    elapsed.into()
}

pub(super) fn as_completed_tokio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, got) = time_in_task(rt, async move {
        let mut set = JoinSet::new();
        for i in 0..n {
            set.spawn(async move {
                yield_now().await;
                i
            });
        }
        let mut got = Vec::with_capacity(n);
        while let Some(r) = set.join_next().await {
            got.push(r.expect("child panicked"));
        }
        got
    });
    check_each_once(&got, n, "as_completed baseline");
    elapsed.into()
}

// --- limited_group: n children that yield once, at most LIMIT at a time --------------

pub(super) fn limited_group_aio(rt: &Runtime, n: usize) -> Sample {
    reset_counters();
    let (elapsed, result) = time_in_task(rt, async move {
        TaskGroup::<BoxError>::builder()
            .limit(LIMIT)
            .scope(|tg| async move {
                for _ in 0..n {
                    tg.spawn(async {
                        enter();
                        yield_now().await;
                        leave();
                        Ok(())
                    })?;
                }
                Ok(())
            })
            .await
    });
    result.expect("limited_group: the group failed");
    check_limited(n, "limited_group");
    elapsed.into()
}

pub(super) fn limited_group_tokio(rt: &Runtime, n: usize) -> Sample {
    reset_counters();
    let (elapsed, ()) = time_in_task(rt, async move {
        let sem = Arc::new(Semaphore::new(LIMIT));
        let mut set = JoinSet::new();
        for _ in 0..n {
            let sem = Arc::clone(&sem);
            set.spawn(async move {
                let permit = sem.acquire_owned().await.expect("semaphore closed");
                enter();
                yield_now().await;
                leave();
                drop(permit);
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("child panicked");
        }
    });
    check_limited(n, "limited_group baseline");
    elapsed.into()
}
