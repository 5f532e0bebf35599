//! Workloads of in-task fan-out (`aio::in_task`): a race and a join of four futures in the
//! calling task, against `tokio::select!`, `tokio::try_join!` and futures-concurrency.
//!
//! Each op is one combinator over four branches that are pending at first, as in a request
//! handler waiting on four calls: branch `i` yields `i + 1` times, then returns `i`. A race
//! is won by branch 0 after one yield and drops the other three; a join waits for all four.

use aio::{BoxError, in_task};
use futures_concurrency::future::{Race as _, TryJoin as _};
use tokio::runtime::Runtime;
use tokio::task::yield_now;

use super::{Sample, time_in_task};

/// Branch `i`: pending `i + 1` times, then `i`.
async fn branch(i: u64) -> u64 {
    for _ in 0..=i {
        yield_now().await;
    }
    i
}

/// Branch `i` as a fallible call.
async fn call(i: u64) -> Result<u64, BoxError> {
    Ok(branch(i).await)
}

/// Runs `op` n times in one task and checks that every op returned `expected`.
fn run_ops<F, Fut>(rt: &Runtime, n: usize, expected: u64, what: &'static str, op: F) -> Sample
where
    F: Fn() -> Fut + Send + 'static,
    Fut: Future<Output = u64> + Send,
{
    let (elapsed, sum) = time_in_task(rt, async move {
        let mut sum = 0;
        for _ in 0..n {
            sum += op().await;
        }
        sum
    });
    assert_eq!(sum, expected * n as u64, "{what}: wrong results");
    elapsed.into()
}

// --- race4_in_task: the first of four to finish, the rest dropped ---------------------

pub(super) fn race4_aio(rt: &Runtime, n: usize) -> Sample {
    run_ops(rt, n, 0, "race4_in_task", || {
        in_task::race((branch(0), branch(1), branch(2), branch(3)))
    })
}

pub(super) fn race4_select(rt: &Runtime, n: usize) -> Sample {
    run_ops(rt, n, 0, "race4_in_task select!", || async {
        tokio::select! {
            v = branch(0) => v,
            v = branch(1) => v,
            v = branch(2) => v,
            v = branch(3) => v,
        }
    })
}

pub(super) fn race4_futures_concurrency(rt: &Runtime, n: usize) -> Sample {
    run_ops(rt, n, 0, "race4_in_task futures-concurrency", || {
        (branch(0), branch(1), branch(2), branch(3)).race()
    })
}

// --- join4_in_task: all four values, failing fast -------------------------------------

pub(super) fn join4_aio(rt: &Runtime, n: usize) -> Sample {
    run_ops(rt, n, 6, "join4_in_task", || async {
        let (a, b, c, d) = in_task::gather((call(0), call(1), call(2), call(3)))
            .await
            .expect("no call fails");
        a + b + c + d
    })
}

pub(super) fn join4_try_join(rt: &Runtime, n: usize) -> Sample {
    run_ops(rt, n, 6, "join4_in_task try_join!", || async {
        let (a, b, c, d) =
            tokio::try_join!(call(0), call(1), call(2), call(3)).expect("no call fails");
        a + b + c + d
    })
}

pub(super) fn join4_futures_concurrency(rt: &Runtime, n: usize) -> Sample {
    run_ops(rt, n, 6, "join4_in_task futures-concurrency", || async {
        let (a, b, c, d) = (call(0), call(1), call(2), call(3))
            .try_join()
            .await
            .expect("no call fails");
        a + b + c + d
    })
}
