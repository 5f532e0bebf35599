//! CPU-bound work on every core, in worker processes: counting the primes below 3,000,000
//! in 16 slices (below 300,000 in a debug build, so that the tour stays quick).
//!
//! 1. The slices go to a `ProcessPool` with one worker, then to one with a worker per core,
//!    and the example prints both times and the speed-up (close to the number of cores on
//!    an idle machine; the work is pure computation, each slice in a process of its own).
//! 2. The same count with `pool.map(...)`: a lazy, ordered stream of results, here in
//!    chunks of four slices per call.
//!
//! A process pool needs two things a thread pool does not: the functions it may run are
//! listed in a `Registry`, and `aio::process::init(registry())` is the first line of
//! `main`, because the workers are this very program started again.
//!
//! Run it with `cargo run --release --example cpu_bound`.
//!
//! It mirrors:
//!
//! ```python
//! def count_primes(lo, hi): ...                    # module level, so it can be pickled
//!
//! async def main():
//!     loop = asyncio.get_running_loop()
//!     with ProcessPoolExecutor() as pool:
//!         counts = await asyncio.gather(
//!             *(loop.run_in_executor(pool, count_primes, lo, hi) for lo, hi in slices))
//!     print(sum(counts))
//!
//! if __name__ == "__main__":                     # what init() is for
//!     asyncio.run(main())
//! ```

use std::time::{Duration, Instant};

use aio::ProcessPool;
use aio::process::{Function, Registry, remote_fn};
use futures::TryStreamExt;

/// Count the primes below this.
const LIMIT: u64 = if cfg!(debug_assertions) {
    300_000
} else {
    3_000_000
};
/// In this many slices.
const SLICES: u64 = 16;
/// The count, known in advance.
const PRIMES_BELOW_LIMIT: u64 = if cfg!(debug_assertions) {
    25_997
} else {
    216_816
};

/// The primes in `lo..hi`, by trial division: deliberately plain CPU work.
fn count_primes((lo, hi): (u64, u64)) -> u64 {
    (lo.max(2)..hi)
        .filter(|&n| (2..).take_while(|d| d * d <= n).all(|d| n % d != 0))
        .count() as u64
}

const COUNT_PRIMES: Function<(u64, u64), u64> = remote_fn!(count_primes);

/// The functions of this example that workers may run.
pub(crate) fn registry() -> Registry {
    Registry::new().register(&COUNT_PRIMES)
}

fn slices() -> impl Iterator<Item = (u64, u64)> {
    (0..SLICES).map(|i| (i * LIMIT / SLICES, (i + 1) * LIMIT / SLICES))
}

pub(crate) fn main() {
    // First thing: in a worker, this serves the pool and never returns.
    aio::process::init(registry());
    aio::run(async {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        println!("== 1. {SLICES} slices of prime counting, on 1 worker and on {cores}");
        let one = timed_count(1).await;
        let all = timed_count(cores).await;
        println!(
            "  1 worker: {} ms; {cores} workers: {} ms; speed-up {:.2}x",
            one.as_millis(),
            all.as_millis(),
            one.as_secs_f64() / all.as_secs_f64()
        );

        println!("== 2. the same with pool.map, four slices per call");
        let pool = ProcessPool::builder().max_workers(cores).build().unwrap();
        let counts: Vec<u64> = pool
            .map(&COUNT_PRIMES, slices())
            .chunksize(4)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(counts.len(), SLICES as usize);
        assert_eq!(counts.iter().sum::<u64>(), PRIMES_BELOW_LIMIT);
        println!("  {PRIMES_BELOW_LIMIT} primes below {LIMIT}, in input order: {counts:?}");
        pool.shutdown(false).await;
    });
}

/// Counts with a pool of `workers`, and returns the time the count took once the workers
/// were up.
async fn timed_count(workers: usize) -> Duration {
    let pool = ProcessPool::builder().max_workers(workers).build().unwrap();
    // Start the workers first: the point is the computation, not process start-up.
    let warm: Vec<_> = (0..workers)
        .map(|_| pool.submit(&COUNT_PRIMES, (0, 1)).unwrap())
        .collect();
    for h in warm {
        h.await.unwrap();
    }
    let start = Instant::now();
    let handles: Vec<_> = slices()
        .map(|s| pool.submit(&COUNT_PRIMES, s).unwrap())
        .collect();
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    let took = start.elapsed();
    assert_eq!(total, PRIMES_BELOW_LIMIT);
    pool.shutdown(false).await;
    took
}
