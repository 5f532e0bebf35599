//! A worker process dies, and the pool goes on: crashes, timeouts and kills fail only the
//! task they hit.
//!
//! 1. Eight pages are rendered in worker processes; page 5 is corrupt and the renderer
//!    aborts on it, as a native library crashing would. Page 5 fails with
//!    `WorkerCrashed`, naming the signal and quoting the end of the worker's stderr; the
//!    seven other pages render, and a new worker replaces the dead one.
//! 2. A page that loops for ever hits the pool's `task_timeout`: its worker is killed and
//!    replaced, the task fails with `TimedOut`, and the next page renders.
//! 3. A worker is killed from outside (`kill -9`, as the out-of-memory killer would) in
//!    the middle of a page: that page fails, the next one renders.
//! 4. The same eight pages under `CrashPolicy::BreakPool`, which is what Python's
//!    `ProcessPoolExecutor` does: one crash and every page fails with `BrokenProcessPool`,
//!    and the pool is unusable.
//!
//! Run it with `cargo run --example crash_resilience`.
//!
//! It mirrors:
//!
//! ```python
//! with ProcessPoolExecutor() as pool:
//!     futures = [pool.submit(render, page) for page in range(1, 9)]
//!     for f in futures:
//!         f.result()      # page 5 crashes: BrokenProcessPool here, and for every page
//! ```

use std::time::Duration;

use aio::ProcessPool;
use aio::process::{CrashPolicy, Function, ProcessError, Registry, remote_fn};

/// The corrupt page.
const CORRUPT: u32 = 5;

/// Renders a page: a little work, and an abort on the corrupt one.
fn render(page: u32) -> String {
    if page == CORRUPT {
        eprintln!("render: page {page} is corrupt, aborting");
        std::process::abort();
    }
    std::thread::sleep(Duration::from_millis(20));
    format!("page {page}: {} bytes", 1000 + page * 17)
}

/// Never finishes.
fn render_forever(_page: u32) -> String {
    loop {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Works for a minute: long enough to be killed in the middle.
fn render_slowly(page: u32) -> String {
    std::thread::sleep(Duration::from_secs(60));
    format!("page {page}")
}

const RENDER: Function<u32, String> = remote_fn!(render);
const RENDER_FOREVER: Function<u32, String> = remote_fn!(render_forever);
const RENDER_SLOWLY: Function<u32, String> = remote_fn!(render_slowly);

/// The functions of this example that workers may run.
pub(crate) fn registry() -> Registry {
    Registry::new()
        .register(&RENDER)
        .register(&RENDER_FOREVER)
        .register(&RENDER_SLOWLY)
}

pub(crate) fn main() {
    // First thing: in a worker, this serves the pool and never returns.
    aio::process::init(registry());
    aio::run(async {
        let pool = ProcessPool::builder()
            .max_workers(2)
            .task_timeout(Duration::from_secs(1))
            .build()
            .unwrap();

        println!("== 1. page {CORRUPT} crashes its worker; the other pages render");
        let handles: Vec<_> = (1..=8)
            .map(|page| pool.submit(&RENDER, page).unwrap())
            .collect();
        let mut rendered = 0;
        for (page, h) in (1..=8).zip(handles) {
            match h.await {
                Ok(out) => {
                    rendered += 1;
                    println!("  {out}");
                }
                Err(ProcessError::WorkerCrashed(crash)) => {
                    assert_eq!(page, CORRUPT);
                    assert_eq!(crash.exit.signal, Some(6));
                    assert!(crash.stderr_tail.contains("corrupt"));
                    println!("  page {page}: {}", crash.to_string().replace('\n', " / "));
                }
                Err(e) => panic!("page {page}: {e}"),
            }
        }
        assert_eq!(rendered, 7);

        println!("== 2. a page that never ends is timed out; its worker is replaced");
        let err = pool.submit(&RENDER_FOREVER, 9).unwrap().await.unwrap_err();
        assert!(matches!(err, ProcessError::TimedOut { .. }));
        println!("  page 9: {err}");
        println!("  {}", pool.submit(&RENDER, 10).unwrap().await.unwrap());

        println!("== 3. a worker killed from outside fails only its page");
        let pool = ProcessPool::builder().max_workers(1).build().unwrap();
        let slow = pool.submit(&RENDER_SLOWLY, 11).unwrap();
        let victim = loop {
            if let Some(&pid) = pool.worker_pids().first() {
                break pid;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        std::process::Command::new("kill")
            .args(["-9", &victim.to_string()])
            .status()
            .unwrap();
        let err = slow.await.unwrap_err();
        assert!(matches!(&err, ProcessError::WorkerCrashed(c) if c.exit.signal == Some(9)));
        println!("  page 11: {err}");
        println!("  {}", pool.submit(&RENDER, 12).unwrap().await.unwrap());
        pool.shutdown(false).await;

        println!("== 4. the same pages under CrashPolicy::BreakPool (Python's behaviour)");
        let pool = ProcessPool::builder()
            .max_workers(2)
            .crash_policy(CrashPolicy::BreakPool)
            .build()
            .unwrap();
        // The corrupt page first, so that it breaks the pool before the others finish.
        let first = pool.submit(&RENDER, CORRUPT).unwrap();
        let others: Vec<_> = (1..=8)
            .filter(|&p| p != CORRUPT)
            .map(|page| pool.submit(&RENDER_SLOWLY, page).unwrap())
            .collect();
        assert!(matches!(first.await, Err(ProcessError::WorkerCrashed(_))));
        let mut broken = 0;
        for h in others {
            if let Err(ProcessError::Broken(b)) = h.await {
                broken += 1;
                if broken == 1 {
                    println!("  {}", b.to_string().replace('\n', " / "));
                }
            }
        }
        assert_eq!(broken, 7);
        println!("  {broken} more pages failed with it, and the pool is unusable:");
        // A broken pool refuses new work at once, in `submit`.
        let err = pool.submit(&RENDER, 1).unwrap_err();
        assert!(matches!(err, ProcessError::Broken(_)));
        println!("  page 1 again: {}", err.to_string().replace('\n', " / "));
        pool.shutdown(false).await;
    });
}
