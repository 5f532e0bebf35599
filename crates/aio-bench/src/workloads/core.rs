//! Workloads of the structured-concurrency core: task groups, cancellation and timeouts.
//!
//! Shapes mirror `asyncio_baseline.py`; the Python twins are in
//! `python/asyncio_workloads.py`.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aio::{BoxError, TaskGroup};
use tokio::runtime::Runtime;
use tokio::task::{JoinSet, yield_now};

use super::{Sample, time_in_task};

/// Counts children that ran (spawn workloads) or were dropped (cancel workload), so each
/// run can check that the work happened. The aio version and the baseline pay for it alike.
/// Workloads run one at a time, so one counter is enough; each run resets it.
static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn reset_counter() {
    COUNTER.store(0, Ordering::SeqCst);
}

fn counter() -> usize {
    COUNTER.load(Ordering::SeqCst)
}

fn bump() {
    COUNTER.fetch_add(1, Ordering::Relaxed);
}

/// Bumps the counter when dropped: proves a cancelled child's future was really dropped.
struct DropCounter;

impl Drop for DropCounter {
    fn drop(&mut self) {
        bump();
    }
}

const SLEEP_FOREVER: Duration = Duration::from_secs(3600);
const TEN_SECONDS: Duration = Duration::from_secs(10);

// --- taskgroup_spawn_join: n trivial children, join all -------------------------------

pub(super) fn spawn_join_aio(rt: &Runtime, n: usize) -> Sample {
    reset_counter();
    let (elapsed, result) = time_in_task(rt, async move {
        TaskGroup::<BoxError>::scope(|tg| async move {
            for _ in 0..n {
                tg.spawn(async {
                    bump();
                    Ok(1_u64)
                })?;
            }
            Ok(())
        })
        .await
    });
    result.expect("taskgroup_spawn_join: the group failed");
    assert_eq!(counter(), n, "taskgroup_spawn_join: not every child ran");
    elapsed.into()
}

pub(super) fn spawn_join_tokio(rt: &Runtime, n: usize) -> Sample {
    reset_counter();
    let (elapsed, sum) = time_in_task(rt, async move {
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn(async {
                bump();
                1_u64
            });
        }
        let mut sum = 0_u64;
        while let Some(r) = set.join_next().await {
            sum += r.expect("child panicked");
        }
        sum
    });
    assert_eq!(
        sum, n as u64,
        "taskgroup_spawn_join baseline: missing results"
    );
    assert_eq!(
        counter(),
        n,
        "taskgroup_spawn_join baseline: not every child ran"
    );
    elapsed.into()
}

// --- taskgroup_spawn_yield: n children that yield once, join all ----------------------

pub(super) fn spawn_yield_aio(rt: &Runtime, n: usize) -> Sample {
    reset_counter();
    let (elapsed, result) = time_in_task(rt, async move {
        TaskGroup::<BoxError>::scope(|tg| async move {
            for _ in 0..n {
                tg.spawn(async {
                    yield_now().await;
                    bump();
                    Ok(1_u64)
                })?;
            }
            Ok(())
        })
        .await
    });
    result.expect("taskgroup_spawn_yield: the group failed");
    assert_eq!(counter(), n, "taskgroup_spawn_yield: not every child ran");
    elapsed.into()
}

pub(super) fn spawn_yield_tokio(rt: &Runtime, n: usize) -> Sample {
    reset_counter();
    let (elapsed, sum) = time_in_task(rt, async move {
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn(async {
                yield_now().await;
                bump();
                1_u64
            });
        }
        let mut sum = 0_u64;
        while let Some(r) = set.join_next().await {
            sum += r.expect("child panicked");
        }
        sum
    });
    assert_eq!(
        sum, n as u64,
        "taskgroup_spawn_yield baseline: missing results"
    );
    assert_eq!(
        counter(),
        n,
        "taskgroup_spawn_yield baseline: not every child ran"
    );
    elapsed.into()
}

// --- taskgroup_spawn_eager: n children, nine in ten done at their first poll ----------

/// Child `i` of `taskgroup_spawn_eager`: done at its first poll unless `i` is a multiple of
/// ten, when it yields once first.
async fn mostly_ready(i: usize) -> Result<u64, BoxError> {
    if i % 10 == 0 {
        yield_now().await;
    }
    bump();
    Ok(1)
}

pub(super) fn spawn_eager_aio(rt: &Runtime, n: usize) -> Sample {
    spawn_mostly_ready(rt, n, |tg, i| tg.spawn_eager(mostly_ready(i)).map(drop))
}

/// The baseline of `taskgroup_spawn_eager`: the same children, spawned as Tokio tasks.
pub(super) fn spawn_mostly_ready_aio(rt: &Runtime, n: usize) -> Sample {
    spawn_mostly_ready(rt, n, |tg, i| tg.spawn(mostly_ready(i)).map(drop))
}

/// Runs the children of `taskgroup_spawn_eager` in one group, each started by `start`.
fn spawn_mostly_ready<S>(rt: &Runtime, n: usize, start: S) -> Sample
where
    S: Fn(&TaskGroup<BoxError>, usize) -> Result<(), aio::SpawnError> + Send + 'static,
{
    reset_counter();
    let (elapsed, result) = time_in_task(rt, async move {
        TaskGroup::<BoxError>::scope(|tg| async move {
            for i in 0..n {
                start(&tg, i)?;
            }
            Ok(())
        })
        .await
    });
    result.expect("taskgroup_spawn_eager: the group failed");
    assert_eq!(counter(), n, "taskgroup_spawn_eager: not every child ran");
    elapsed.into()
}

pub(super) fn spawn_mostly_ready_tokio(rt: &Runtime, n: usize) -> Sample {
    reset_counter();
    let (elapsed, sum) = time_in_task(rt, async move {
        let mut set = JoinSet::new();
        for i in 0..n {
            set.spawn(mostly_ready(i));
        }
        let mut sum = 0_u64;
        while let Some(r) = set.join_next().await {
            sum += r.expect("child panicked").expect("child failed");
        }
        sum
    });
    assert_eq!(
        sum, n as u64,
        "taskgroup_spawn_eager JoinSet: missing results"
    );
    assert_eq!(
        counter(),
        n,
        "taskgroup_spawn_eager JoinSet: not every child ran"
    );
    elapsed.into()
}

// --- taskgroup_cancel_siblings: n sleepers + one child that fails ---------------------

pub(super) fn cancel_siblings_aio(rt: &Runtime, n: usize) -> Sample {
    reset_counter();
    let (elapsed, result) = time_in_task(rt, async move {
        TaskGroup::<BoxError>::scope(|tg| async move {
            for _ in 0..n {
                let guard = DropCounter;
                tg.spawn(async move {
                    let _guard = guard;
                    tokio::time::sleep(SLEEP_FOREVER).await;
                    Ok(())
                })?;
            }
            tg.spawn(async {
                yield_now().await;
                Err::<(), BoxError>("boom".into())
            })?;
            Ok(())
        })
        .await
    });
    let err = result.expect_err("taskgroup_cancel_siblings: the group did not fail");
    assert_eq!(
        err.len(),
        1,
        "taskgroup_cancel_siblings: expected one failure"
    );
    let first = err.first().expect("one failure");
    assert_eq!(first.error().to_string(), "boom");
    assert_eq!(
        counter(),
        n,
        "taskgroup_cancel_siblings: not every sibling was dropped"
    );
    elapsed.into()
}

pub(super) fn cancel_siblings_tokio(rt: &Runtime, n: usize) -> Sample {
    reset_counter();
    let (elapsed, (failed, aborted)) = time_in_task(rt, async move {
        let mut set = JoinSet::new();
        for _ in 0..n {
            let guard = DropCounter;
            set.spawn(async move {
                let _guard = guard;
                tokio::time::sleep(SLEEP_FOREVER).await;
                Ok::<(), BoxError>(())
            });
        }
        set.spawn(async {
            yield_now().await;
            Err::<(), BoxError>("boom".into())
        });
        let (mut failed, mut aborted) = (0_usize, 0_usize);
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(())) => panic!("a sleeper finished"),
                Ok(Err(e)) => {
                    assert_eq!(e.to_string(), "boom");
                    failed += 1;
                    set.abort_all();
                }
                Err(e) => {
                    assert!(e.is_cancelled(), "a child panicked");
                    aborted += 1;
                }
            }
        }
        (failed, aborted)
    });
    assert_eq!(
        failed, 1,
        "taskgroup_cancel_siblings baseline: expected one failure"
    );
    assert_eq!(
        aborted, n,
        "taskgroup_cancel_siblings baseline: not every sibling aborted"
    );
    assert_eq!(
        counter(),
        n,
        "taskgroup_cancel_siblings baseline: not every sibling dropped"
    );
    elapsed.into()
}

// --- timeout_no_fire: n sequential timeouts around a ready future ---------------------

pub(super) fn timeout_no_fire_aio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, sum) = time_in_task(rt, async move {
        let mut sum = 0_u64;
        for _ in 0..n {
            sum += aio::timeout(TEN_SECONDS, async { 1_u64 })
                .await
                .expect("timeout fired");
        }
        sum
    });
    assert_eq!(sum, n as u64, "timeout_no_fire: missing results");
    elapsed.into()
}

pub(super) fn timeout_no_fire_tokio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, sum) = time_in_task(rt, async move {
        let mut sum = 0_u64;
        for _ in 0..n {
            sum += tokio::time::timeout(TEN_SECONDS, async { 1_u64 })
                .await
                .expect("timeout fired");
        }
        sum
    });
    assert_eq!(sum, n as u64, "timeout_no_fire baseline: missing results");
    elapsed.into()
}

// --- nested_scopes: n iterations of 10 nested timeouts around a ready future ----------

/// `nest!(f; inner; a b c)` is `f(TEN_SECONDS, f(TEN_SECONDS, f(TEN_SECONDS, inner)))`: one
/// level per token, not boxed, so aio and Tokio are nested the same way.
macro_rules! nest {
    ($f:path; $inner:expr;) => { $inner };
    ($f:path; $inner:expr; $_level:tt $($rest:tt)*) => {
        $f(TEN_SECONDS, nest!($f; $inner; $($rest)*))
    };
}

/// `unnest!(x; a b c)` is `x.expect(..).expect(..).expect(..)`: one unwrap per level.
macro_rules! unnest {
    ($e:expr;) => { $e };
    ($e:expr; $_level:tt $($rest:tt)*) => {
        unnest!($e.expect("timeout fired"); $($rest)*)
    };
}

pub(super) fn nested_scopes_aio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, sum) = time_in_task(rt, async move {
        let mut sum = 0_u64;
        for _ in 0..n {
            let out = nest!(aio::timeout; async { 1_u64 }; 0 1 2 3 4 5 6 7 8 9).await;
            sum += unnest!(out; 0 1 2 3 4 5 6 7 8 9);
        }
        sum
    });
    assert_eq!(sum, n as u64, "nested_scopes: missing results");
    elapsed.into()
}

pub(super) fn nested_scopes_tokio(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, sum) = time_in_task(rt, async move {
        let mut sum = 0_u64;
        for _ in 0..n {
            let out = nest!(tokio::time::timeout; async { 1_u64 }; 0 1 2 3 4 5 6 7 8 9).await;
            sum += unnest!(out; 0 1 2 3 4 5 6 7 8 9);
        }
        sum
    });
    assert_eq!(sum, n as u64, "nested_scopes baseline: missing results");
    elapsed.into()
}

// --- timeout_fire_10k: n concurrent tasks, each a 1 ms timeout that fires -------------

const ONE_MS: Duration = Duration::from_millis(1);

pub(super) fn timeout_fire_aio(rt: &Runtime, n: usize) -> Sample {
    reset_counter();
    let (elapsed, result) = time_in_task(rt, async move {
        TaskGroup::<BoxError>::scope(|tg| async move {
            for _ in 0..n {
                tg.spawn(async {
                    if aio::timeout(ONE_MS, tokio::time::sleep(SLEEP_FOREVER))
                        .await
                        .is_err()
                    {
                        bump();
                    }
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await
    });
    result.expect("timeout_fire_10k: the group failed");
    assert_eq!(counter(), n, "timeout_fire_10k: not every timeout fired");
    elapsed.into()
}

pub(super) fn timeout_fire_tokio(rt: &Runtime, n: usize) -> Sample {
    reset_counter();
    let (elapsed, ()) = time_in_task(rt, async move {
        let mut set = JoinSet::new();
        for _ in 0..n {
            set.spawn(async {
                if tokio::time::timeout(ONE_MS, tokio::time::sleep(SLEEP_FOREVER))
                    .await
                    .is_err()
                {
                    bump();
                }
            });
        }
        while let Some(r) = set.join_next().await {
            r.expect("child panicked");
        }
    });
    assert_eq!(
        counter(),
        n,
        "timeout_fire_10k baseline: not every timeout fired"
    );
    elapsed.into()
}

// --- group_chain_depth_*: n nested groups, one task per level -------------------------

/// A level of the chain, as a task to spawn: it needs a name, being recursive.
type Level<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The task at `level`: below `depth` it opens a group and spawns the next level in it; the
/// deepest returns at once. Each level is a Tokio task of its own, so the stack does not
/// grow with the depth.
fn chain_aio(level: usize, depth: usize) -> Level<Result<(), BoxError>> {
    Box::pin(async move {
        bump();
        if level == depth {
            return Ok(());
        }
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(chain_aio(level + 1, depth))?;
            Ok(())
        })
        .await
        .map_err(|e| format!("level {level}: {e}").into())
    })
}

fn chain_tokio(level: usize, depth: usize) -> Level<()> {
    Box::pin(async move {
        bump();
        if level == depth {
            return;
        }
        let mut set = JoinSet::new();
        set.spawn(chain_tokio(level + 1, depth));
        set.join_next()
            .await
            .expect("one child")
            .expect("child panicked");
    })
}

/// The timing task opens the first group; `n` levels of tasks follow.
pub(super) fn group_chain_aio(rt: &Runtime, n: usize) -> Sample {
    reset_counter();
    let (elapsed, result) = time_in_task(rt, async move {
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(chain_aio(1, n))?;
            Ok(())
        })
        .await
    });
    result.expect("group_chain_depth: the chain failed");
    assert_eq!(counter(), n, "group_chain_depth: not every level ran");
    elapsed.into()
}

pub(super) fn group_chain_tokio(rt: &Runtime, n: usize) -> Sample {
    reset_counter();
    let (elapsed, ()) = time_in_task(rt, async move {
        let mut set = JoinSet::new();
        set.spawn(chain_tokio(1, n));
        set.join_next()
            .await
            .expect("one child")
            .expect("child panicked");
    });
    assert_eq!(
        counter(),
        n,
        "group_chain_depth baseline: not every level ran"
    );
    elapsed.into()
}
