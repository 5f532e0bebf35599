//! Shared helpers of the process pool tests: the runtime, pools pointed at the worker
//! binary, and checks on the processes themselves.

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aio::ProcessPool;
use aio::process::ProcessPoolBuilder;
use aio_tests::process_fns;

/// How long a test may take before it is declared hung.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Runs `body` on a two-worker multi-thread runtime, failing the test if it hangs.
pub(crate) fn run<F: Future<Output = ()>>(body: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if tokio::time::timeout(HANG_GUARD, body).await.is_err() {
            panic!("the test did not finish within {HANG_GUARD:?}: something hangs");
        }
    });
}

/// Runs `body` on a current-thread runtime whose clock stands still: it moves only when
/// the test calls `tokio::time::advance`. Paused time would jump to the next timer
/// whenever the runtime waits for a worker; a blocking task held for the whole test stops
/// that. So a `task_timeout` fires exactly when the test moves the clock past it, and never
/// for a call that must succeed, however slow the machine. Nothing here may wait for a
/// timer (no sleeps: they would never end); the hang guard is on the real clock, and
/// aborts the test binary.
pub(crate) fn run_frozen<F: Future<Output = ()>>(body: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(HANG_GUARD) {
            eprintln!("{test} did not finish within {HANG_GUARD:?}: something hangs; aborting");
            std::process::abort();
        }
    });
    runtime.block_on(async {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let holder = tokio::task::spawn_blocking(move || {
            let _ = held.recv();
        });
        body.await;
        drop(release);
        holder.await.unwrap();
    });
    drop(done);
}

/// On a [`run_frozen`] runtime: waits until `n` of the pool's workers run a task, which has
/// then started its clock, and moves the clock past `timeout`.
pub(crate) async fn expire_running(pool: &ProcessPool, n: usize, timeout: Duration) {
    while !format!("{pool:?}").contains(&format!("busy: {n},")) {
        tokio::task::yield_now().await;
    }
    tokio::time::advance(timeout + Duration::from_millis(1)).await;
}

/// A pool builder running the test worker binary with the test registry.
pub(crate) fn pool() -> ProcessPoolBuilder {
    ProcessPool::builder()
        .worker_exe(env!("CARGO_BIN_EXE_process-worker"))
        .registry(process_fns::registry())
}

/// The worker binary.
pub(crate) fn worker_exe() -> &'static str {
    env!("CARGO_BIN_EXE_process-worker")
}

/// A path for a marker file that no other test uses, removed if it exists.
pub(crate) fn marker(name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!(
        "aio-process-test-{}-{n}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// Waits until `path` exists: proof that a task is running.
pub(crate) async fn wait_for_file(path: &std::path::Path) {
    while !path.exists() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The state letter and parent pid of process `pid`, if it exists.
pub(crate) fn proc_state(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether `pid` is still a child of this process, alive or a zombie.
pub(crate) fn is_our_child(pid: u32) -> bool {
    proc_state(pid).is_some_and(|(_, ppid)| ppid == std::process::id())
}

/// Asserts that none of `pids` is a child of ours any more: each exited and was reaped.
#[track_caller]
pub(crate) fn assert_reaped(pids: &[u32]) {
    for &pid in pids {
        if let Some((state, ppid)) = proc_state(pid) {
            assert!(
                ppid != std::process::id(),
                "worker {pid} is still our child, in state {state}"
            );
        }
    }
}

/// Waits until none of `pids` is our child (a kill and reap happen in the background).
pub(crate) async fn wait_reaped(pids: &[u32]) {
    while pids.iter().any(|&pid| is_our_child(pid)) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the pool has `n` live workers.
pub(crate) async fn wait_workers(pool: &ProcessPool, n: usize) {
    while pool.worker_pids().len() < n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until the pool has `n` tasks queued, none of them taken by a worker yet.
pub(crate) async fn wait_queued(pool: &ProcessPool, n: usize) {
    while !format!("{pool:?}").contains(&format!("queued: {n},")) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until `pid` is gone or a zombie (dead, not yet reaped by whoever adopted it),
/// at most `limit`; returns whether it was.
pub(crate) fn wait_dead(pid: u32, limit: Duration) -> bool {
    let start = Instant::now();
    loop {
        match proc_state(pid) {
            None | Some(('Z' | 'X', _)) => return true,
            Some(_) if start.elapsed() >= limit => return false,
            Some(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// On a [`run_frozen`] runtime: waits, without a timer, until `path` exists.
pub(crate) async fn spin_for_file(path: &std::path::Path) {
    while !path.exists() {
        tokio::task::yield_now().await;
    }
}

/// Waits, without a timer, until no call waits in the pool's queue: every call submitted
/// has been sent to a worker (or has ended).
pub(crate) async fn spin_until_all_sent(pool: &ProcessPool) {
    while !format!("{pool:?}").contains("queued: 0,") {
        tokio::task::yield_now().await;
    }
}

/// Removes marker files a test made.
pub(crate) fn remove_markers(paths: &[&std::path::Path]) {
    for path in paths {
        let _ = std::fs::remove_file(path);
    }
}
