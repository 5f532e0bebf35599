//! Workloads of the process pool: round trips to worker processes, alone, all at once, and
//! through `map` with chunks, against Python's `ProcessPoolExecutor` on the same shapes
//! (two workers, a no-op function). Tokio has no process pool, so there is no baseline.
//!
//! Each run starts its own pool and waits until both workers are up before the clock
//! starts, as the Python twin does; the bench binary calls [`aio::process::init`] with
//! [`registry`] first thing, so it can be its own worker.

use aio::ProcessPool;
use aio::process::{Function, Registry, remote_fn};
use futures::TryStreamExt;
use tokio::runtime::Runtime;

use super::{Sample, time_in_task};

/// Workers of every pool here, as in the Python twin.
const WORKERS: usize = 2;
/// Items per call of `procpool_map_chunk256`.
const CHUNK: usize = 256;

/// The function every workload calls: it returns its argument.
fn noop(x: u64) -> u64 {
    x
}

const NOOP: Function<u64, u64> = remote_fn!(noop);

/// The functions the bench binary's workers run.
pub(crate) fn registry() -> Registry {
    Registry::new().register(&NOOP)
}

/// A pool whose workers are all up.
fn ready_pool(rt: &Runtime) -> ProcessPool {
    rt.block_on(async {
        let pool = ProcessPool::builder()
            .max_workers(WORKERS)
            .build()
            .expect("cannot build the process pool");
        let warm: Vec<_> = (0..WORKERS as u64).map(|i| pool.submit(&NOOP, i)).collect();
        for (i, h) in warm.into_iter().enumerate() {
            assert_eq!(h.await, Ok(i as u64), "the warm-up call failed");
        }
        // Workers start on demand: the second may still be starting if the first took both.
        let started = std::time::Instant::now();
        while pool.worker_pids().len() < WORKERS {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "a worker did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        pool
    })
}

fn finish(rt: &Runtime, pool: ProcessPool) {
    rt.block_on(pool.shutdown(false));
}

/// `ops` calls, each awaited before the next.
pub(crate) fn roundtrip_seq_aio(rt: &Runtime, ops: usize) -> Sample {
    let pool = ready_pool(rt);
    let (elapsed, pool) = time_in_task(rt, async move {
        for i in 0..ops as u64 {
            assert_eq!(pool.submit(&NOOP, i).await, Ok(i));
        }
        pool
    });
    finish(rt, pool);
    elapsed.into()
}

/// `ops` calls submitted at once, then awaited.
pub(crate) fn submit_concurrent_aio(rt: &Runtime, ops: usize) -> Sample {
    let pool = ready_pool(rt);
    let (elapsed, pool) = time_in_task(rt, async move {
        let handles: Vec<_> = (0..ops as u64).map(|i| pool.submit(&NOOP, i)).collect();
        for (i, h) in handles.into_iter().enumerate() {
            assert_eq!(h.await, Ok(i as u64));
        }
        pool
    });
    finish(rt, pool);
    elapsed.into()
}

/// `map` over `ops` items in chunks of 256.
pub(crate) fn map_chunk256_aio(rt: &Runtime, ops: usize) -> Sample {
    let pool = ready_pool(rt);
    let (elapsed, (pool, out)) = time_in_task(rt, async move {
        let out: Vec<u64> = pool
            .map(&NOOP, 0..ops as u64)
            .chunksize(CHUNK)
            .try_collect()
            .await
            .expect("a map item failed");
        (pool, out)
    });
    assert!(
        out.iter().copied().eq(0..ops as u64),
        "map lost or reordered items"
    );
    finish(rt, pool);
    elapsed.into()
}
