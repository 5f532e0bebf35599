//! Workloads of thread offload: `to_thread`, one call at a time and many at once.
//!
//! Shapes mirror `asyncio_baseline.py`'s `to_thread`; the Python twins are in
//! `python/asyncio_workloads.py`. The baseline is `tokio::task::spawn_blocking`, which
//! `to_thread` runs on: the difference is the price of the capacity limiter, the caller's
//! `tracing` context, the panic guard and the cancellation checks.

use std::hint::black_box;

use aio::{BoxError, TaskGroup};
use tokio::runtime::Runtime;
use tokio::task::{JoinSet, spawn_blocking};

use super::{Sample, time_in_task};

/// The blocking function: returns its argument, as the Python twin's `noop`.
fn noop(i: usize) -> usize {
    black_box(i)
}

/// The sum of `0..n`, what every run must add up to.
fn expected(n: usize) -> usize {
    n * n.saturating_sub(1) / 2
}

/// `await asyncio.to_thread(noop, i)`, `n` times in a row.
pub(crate) fn sequential_aio(rt: &Runtime, n: usize) -> Sample {
    sequential_with(rt, n, |i| async move {
        aio::to_thread(move || noop(i)).await.unwrap()
    })
}

pub(crate) fn sequential_tokio(rt: &Runtime, n: usize) -> Sample {
    sequential_with(rt, n, |i| async move {
        spawn_blocking(move || noop(i)).await.unwrap()
    })
}

/// `n` tasks of a group, each awaiting one `to_thread(noop, i)`.
pub(crate) fn concurrent_aio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, sum) = time_in_task(rt, async move {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let mut calls = Vec::with_capacity(n);
            for i in 0..n {
                calls.push(tg.spawn(async move { Ok(aio::to_thread(move || noop(i)).await?) })?);
            }
            let mut sum = 0;
            for call in calls {
                sum += call.await?;
            }
            Ok(sum)
        })
        .await
        .expect("to_thread_concurrent: the group failed")
    });
    assert_eq!(sum, expected(n), "to_thread_concurrent: a result is wrong");
    elapsed.into()
}

pub(crate) fn concurrent_tokio(rt: &Runtime, n: usize) -> Sample {
    concurrent_with(rt, n, |i| async move {
        spawn_blocking(move || noop(i)).await.unwrap()
    })
}

/// rayon's way to await a blocking call: `rayon::spawn` on its global pool, the result
/// sent back through a oneshot.
fn on_rayon(i: usize) -> tokio::sync::oneshot::Receiver<usize> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(noop(i));
    });
    rx
}

pub(crate) fn sequential_rayon(rt: &Runtime, n: usize) -> Sample {
    sequential_with(rt, n, |i| async move { on_rayon(i).await.unwrap() })
}

pub(crate) fn sequential_blocking(rt: &Runtime, n: usize) -> Sample {
    sequential_with(rt, n, |i| blocking::unblock(move || noop(i)))
}

/// `n` tasks of a JoinSet, each awaiting its call on rayon's pool: rayon's workers take
/// the next job without a hand-off, the floor `to_thread`'s runners aim at.
pub(crate) fn concurrent_rayon(rt: &Runtime, n: usize) -> Sample {
    concurrent_with(rt, n, |i| async move { on_rayon(i).await.unwrap() })
}

/// `n` tasks of a JoinSet, each awaiting `blocking::unblock`.
pub(crate) fn concurrent_blocking(rt: &Runtime, n: usize) -> Sample {
    concurrent_with(rt, n, |i| blocking::unblock(move || noop(i)))
}

/// `n` calls, each awaited before the next.
fn sequential_with<C, F>(rt: &Runtime, n: usize, call: C) -> Sample
where
    C: Fn(usize) -> F + Send + 'static,
    F: Future<Output = usize> + Send + 'static,
{
    let (elapsed, sum) = time_in_task(rt, async move {
        let mut sum = 0;
        for i in 0..n {
            sum += call(i).await;
        }
        sum
    });
    assert_eq!(sum, expected(n), "to_thread_sequential: a result is wrong");
    elapsed.into()
}

fn concurrent_with<C, F>(rt: &Runtime, n: usize, call: C) -> Sample
where
    C: Fn(usize) -> F + Send + 'static,
    F: Future<Output = usize> + Send + 'static,
{
    let (elapsed, sum) = time_in_task(rt, async move {
        let mut set = JoinSet::new();
        for i in 0..n {
            set.spawn(call(i));
        }
        let mut sum = 0;
        while let Some(r) = set.join_next().await {
            sum += r.expect("a task panicked");
        }
        sum
    });
    assert_eq!(sum, expected(n), "to_thread_concurrent: a result is wrong");
    elapsed.into()
}
