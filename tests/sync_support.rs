//! Helpers shared by the `sync_lock`, `sync_semaphore` and `sync_event` specs.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use crate::support::ms;

/// The waiter count a primitive's `Debug` output reports (`waiters: N`), as asyncio's repr.
pub(crate) fn waiters(primitive: &impl Debug) -> usize {
    let repr = format!("{primitive:?}");
    let (_, rest) = repr
        .split_once("waiters: ")
        .unwrap_or_else(|| panic!("no waiter count in {repr}"));
    rest.chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// Yields until `cond` holds: for conditions that other tasks make true just by running,
/// such as "three tasks are queued". Does not move paused time.
pub(crate) async fn until(cond: impl Fn() -> bool) {
    while !cond() {
        tokio::task::yield_now().await;
    }
}

/// A small deterministic pseudo-random sequence (xorshift), so stress runs need no crate.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A.8: runs `step` in a loop that never waits (each step completes at once) in a task of
/// its own, on a current-thread runtime and on a one-worker multi-thread runtime, with real
/// time. Once the loop runs, another task sleeps 10 ms, then stops it. Without the coop
/// budget the loop never yields, the timer never fires and the runtime hangs; the test
/// fails after 20 s.
pub(crate) fn hot_loop_lets_a_timer_fire<S, F>(step: S)
where
    S: Fn() -> F + Clone + Send + 'static,
    F: Future<Output = ()> + Send,
{
    let runtimes: [fn() -> tokio::runtime::Runtime; 2] = [
        || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
        },
        || {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap()
        },
    ];
    for (flavour, build) in ["current_thread", "one worker"].into_iter().zip(runtimes) {
        let (done, finished) = std::sync::mpsc::channel();
        let step = step.clone();
        std::thread::spawn(move || {
            let runtime = build();
            runtime.block_on(async move {
                let stop = Arc::new(AtomicBool::new(false));
                let count = Arc::new(AtomicUsize::new(0));
                let hot = tokio::spawn({
                    let stop = Arc::clone(&stop);
                    let count = Arc::clone(&count);
                    async move {
                        while !stop.load(Ordering::Relaxed) {
                            step().await;
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
                // The hot task runs before the timer starts, however late a loaded machine
                // starts it: the timer must then fire while the loop owns the worker.
                while count.load(Ordering::Relaxed) == 0 {
                    tokio::task::yield_now().await;
                }
                tokio::time::sleep(ms(10)).await;
                stop.store(true, Ordering::Relaxed);
                hot.await.unwrap();
            });
            let _ = done.send(());
        });
        if finished.recv_timeout(Duration::from_secs(20)).is_err() {
            panic!("{flavour}: a never-yielding loop starved the timer");
        }
    }
}
