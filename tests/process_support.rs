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

/// The `task_timeout` of the tests that need one to fire. It also bounds every call that
/// must succeed on those pools, so it is seconds, not milliseconds: a loaded machine can
/// hold up a trivial call for a while. The tasks meant to time out never end on their own.
pub(crate) const TASK_TIMEOUT: Duration = Duration::from_secs(5);

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

/// Stops process `pid` with SIGSTOP and waits until it is stopped: it then reads nothing
/// from its socket, however fast or slow the machine is, until it is killed.
pub(crate) async fn stop(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-STOP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "cannot stop {pid}");
    while !matches!(proc_state(pid), Some(('T', _))) {
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
