//! Starting workers: the handshake, the initializer, start failures (§15.19), and workers
//! outliving their pool's process.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use aio::process::{BrokenCause, BrokenPool, ExitInfo, ProcessError, WorkerStartError};
use aio_tests::process_fns::*;

use crate::process_support::*;

/// The start error a broken pool reports, and how many starts failed.
fn start_failure<T: std::fmt::Debug>(result: Result<T, ProcessError>) -> (u32, WorkerStartError) {
    match result {
        Err(ProcessError::Broken(BrokenPool {
            cause: BrokenCause::StartFailed { attempts, last },
        })) => (attempts, last),
        other => panic!("expected a pool broken by start failures, got {other:?}"),
    }
}

/// A pool whose workers misbehave before `init` (see `process_worker.rs`), and that breaks
/// at the first failed start.
fn misbehaving(mode: &str) -> aio::process::ProcessPoolBuilder {
    pool()
        .env("AIO_TEST_WORKER_MODE", mode)
        .max_start_failures(1)
}

#[test]
fn a_pool_of_this_executable_needs_init() {
    // This test binary's `main` is the test harness, which never calls `init`: each worker
    // would run the harness, so the pool refuses to be built rather than start them.
    run(async {
        let err = aio::ProcessPool::builder()
            .registry(registry())
            .build()
            .unwrap_err();
        assert!(matches!(err, aio::process::BuildError::NoInit), "{err}");
        assert!(err.to_string().contains("init(registry)"), "{err}");
    });
}

/// Runs the worker binary with the worker marker set to `pool` and no argument: a program
/// that gets past `init` prints its usage.
fn worker_binary_with_marker(pool: u32) -> std::process::Output {
    Command::new(worker_exe())
        .env("AIO_PROCESS_WORKER", pool.to_string())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_worker_whose_pool_died_before_init_exits_without_running_main() {
    // A process that has exited, standing for a pool that died while its worker started.
    let mut gone = Command::new("true").spawn().unwrap();
    let pool = gone.id();
    gone.wait().unwrap();
    let out = worker_binary_with_marker(pool);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("usage"),
        "main ran: {out:?}"
    );
    // A marker naming a live process that is not our parent was inherited from a worker:
    // that program runs as itself.
    let out = worker_binary_with_marker(1);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("usage"),
        "main did not run: {out:?}"
    );
}

#[test]
fn a_worker_that_exits_before_its_handshake_is_a_start_error() {
    run(async {
        // A program whose main does not begin with init: it exits first.
        let pool = misbehaving("exit-before-init").build().unwrap();
        let (_, last) = start_failure(pool.submit(&SQUARE, 2).unwrap().await);
        assert_eq!(
            last,
            WorkerStartError::Exited {
                exit: ExitInfo {
                    code: Some(7),
                    signal: None
                },
                stderr_tail: String::new()
            }
        );
        assert!(last.to_string().contains("init"), "{last}");
    });
}

#[test]
fn a_worker_that_never_shakes_hands_times_out_and_is_killed() {
    run(async {
        let pool = misbehaving("hang-before-init")
            .handshake_timeout(Duration::from_millis(500))
            .build()
            .unwrap();
        let (_, last) = start_failure(pool.submit(&SQUARE, 2).unwrap().await);
        assert_eq!(
            last,
            WorkerStartError::HandshakeTimeout {
                after: Duration::from_millis(500)
            }
        );
        pool.shutdown(false).await;
    });
}

#[test]
fn a_worker_with_another_registry_is_refused_at_the_handshake() {
    run(async {
        let pool = misbehaving("other-registry").build().unwrap();
        let (_, last) = start_failure(pool.submit(&SQUARE, 2).unwrap().await);
        let WorkerStartError::RegistryMismatch {
            missing,
            extra,
            changed,
        } = last
        else {
            panic!("expected a registry mismatch, got {last:?}");
        };
        assert!(missing.iter().any(|n| n.ends_with("::pid")), "{missing:?}");
        assert_eq!(extra, ["tests::not_registered"]);
        assert!(changed.is_empty());
    });
}

#[test]
fn a_worker_that_crashes_before_ready_is_reported_as_such() {
    run(async {
        let pool = pool()
            .initializer(&INIT_ABORT, ())
            .max_start_failures(1)
            .build()
            .unwrap();
        let (_, last) = start_failure(pool.submit(&SQUARE, 2).unwrap().await);
        assert!(
            matches!(&last, WorkerStartError::Exited { exit, .. } if exit.signal == Some(6)),
            "{last:?}"
        );
    });
}

#[test]
fn an_initializer_error_is_reported_as_such_and_breaks_the_pool_15_19() {
    run(async {
        let pool = pool()
            .initializer(&INIT_FAIL, "no licence file".into())
            .build()
            .unwrap();
        let pending: Vec<_> = (0..5u64)
            .map(|x| pool.submit(&SQUARE, x).unwrap())
            .collect();
        for h in pending {
            let (_, last) = start_failure(h.await);
            assert_eq!(
                last,
                WorkerStartError::Initializer {
                    message: "no licence file".into()
                }
            );
        }
    });
}

#[test]
fn repeated_start_failures_break_the_pool_with_the_last_error() {
    run(async {
        let pool = pool()
            .env("AIO_TEST_WORKER_MODE", "exit-before-init")
            .max_workers(2)
            .max_start_failures(3)
            .build()
            .unwrap();
        let (attempts, last) = start_failure(pool.submit(&SQUARE, 2).unwrap().await);
        assert!(attempts >= 3, "{attempts}");
        assert!(matches!(last, WorkerStartError::Exited { .. }));
        // Broken for good: no more starts, and new work is refused at once.
        start_failure(pool.submit(&SQUARE, 3).map(drop));
        assert!(pool.broken().is_some());
        pool.shutdown(false).await;
        assert!(pool.worker_pids().is_empty());
    });
}

#[test]
fn workers_exit_within_a_second_of_their_pool_process_being_killed() {
    let mut parent = Command::new(worker_exe())
        .arg("parent")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(parent.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let pids: Vec<u32> = line
        .strip_prefix("pids ")
        .unwrap_or_else(|| panic!("unexpected output {line:?}"))
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "one busy worker and one idle");
    parent.kill().unwrap();
    parent.wait().unwrap();
    // The one clock assertion of these tests, and the rule itself: a busy worker's
    // watchdog checks its parent every tenth of a second, so a second is ten periods of
    // slack, counted for each worker from when the one before it was seen dead.
    for pid in pids {
        assert!(
            wait_dead(pid, Duration::from_secs(1)),
            "worker {pid} outlived its pool's process by a second"
        );
    }
}

#[test]
fn a_missing_worker_executable_is_a_start_error() {
    run(async {
        let pool = pool()
            .worker_exe("/nonexistent/aio-worker")
            .max_start_failures(2)
            .build()
            .unwrap();
        let (attempts, last) = start_failure(pool.submit(&SQUARE, 2).unwrap().await);
        assert_eq!(attempts, 2);
        assert!(
            matches!(&last, WorkerStartError::Spawn { exe, .. } if exe.ends_with("aio-worker")),
            "{last:?}"
        );
    });
}

#[test]
fn building_a_pool_says_what_is_missing() {
    // This test binary never called init, so there is no registry to default to.
    run(async {
        assert_eq!(
            aio::ProcessPool::new().unwrap_err(),
            aio::process::BuildError::NoRegistry
        );
        assert_eq!(
            pool().max_workers(0).build().unwrap_err(),
            aio::process::BuildError::NoWorkers
        );
        let unregistered = pool()
            .registry(aio::process::Registry::new().register(&SQUARE))
            .initializer(&INIT_RECORD, 1)
            .build()
            .unwrap_err();
        assert!(matches!(
            unregistered,
            aio::process::BuildError::InitializerNotRegistered(_)
        ));
    });
    assert_eq!(
        pool().build().unwrap_err(),
        aio::process::BuildError::NoRuntime
    );
}

#[test]
fn pools_handles_and_streams_move_between_tasks() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<aio::ProcessPool>();
    send_sync::<aio::process::ProcessHandle<String>>();
    send::<aio::process::ProcessMap<std::ops::Range<u64>, u64, u64>>();
}
