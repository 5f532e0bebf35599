//! The worker binary of the process pool tests: the test harness owns the test binary's
//! `main`, so the tests point their pools here with
//! `.worker_exe(env!("CARGO_BIN_EXE_process-worker"))`.
//!
//! `AIO_TEST_WORKER_MODE` (set in the workers by a test's pool) makes it misbehave before
//! `init`, as a program whose `main` does not call `init` first would: `exit-before-init`,
//! `hang-before-init`, or `other-registry` (a worker built from other code). Mode
//! `keep-socket` keeps a copy of its socket to the pool for `garble`, which then writes to
//! it as a bug in the worker would.
//!
//! Run by hand as `process-worker parent`, it is a pool's process that the
//! parent-death test kills: it starts two workers, one busy and one idle, prints
//! `pids <busy> <idle>`, and sleeps.

use std::io::Write as _;
use std::time::Duration;

use aio::ProcessPool;
use aio::process;
use aio_tests::process_fns::{self, SLEEP_MS, SQUARE};

fn main() {
    match std::env::var("AIO_TEST_WORKER_MODE").as_deref() {
        Ok("exit-before-init") => std::process::exit(7),
        Ok("hang-before-init") => std::thread::sleep(Duration::from_secs(3600)),
        Ok("other-registry") => process::init(process_fns::other_registry()),
        Ok("keep-socket") => process_fns::keep_pool_socket(),
        _ => {}
    }
    process::init(process_fns::registry());

    match std::env::args().nth(1).as_deref() {
        Some("parent") => parent(),
        _ => {
            eprintln!("usage: process-worker parent (workers are started by a pool)");
            std::process::exit(2);
        }
    }
}

/// A pool process with one busy and one idle worker, waiting to be killed.
fn parent() {
    let rt = tokio::runtime::Runtime::new().expect("a runtime");
    rt.block_on(async {
        let pool = ProcessPool::builder()
            .max_workers(2)
            .build()
            .expect("a pool");
        let busy = pool.submit(&SLEEP_MS, 3_600_000).unwrap();
        assert_eq!(pool.submit(&SQUARE, 3).unwrap().await, Ok(9));
        while pool.worker_pids().len() < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let pids: Vec<String> = pool.worker_pids().iter().map(u32::to_string).collect();
        let mut out = std::io::stdout().lock();
        writeln!(out, "pids {}", pids.join(" ")).expect("stdout");
        out.flush().expect("stdout");
        drop(out);
        let _ = busy.await;
    });
}
