//! Failures during tasks: crashes, kills, bad data, timeouts and cancellation (§15.1-2,
//! §15.9-14, §15.22). Each fails only its own task, and a dead worker is replaced, unless
//! the pool opted into CPython's whole-pool break.

use std::time::Duration;

use aio::process::{BrokenCause, CrashPolicy, ExitInfo, ProcessError};
use aio_tests::process_fns::*;

use crate::process_support::*;

fn crash(err: &ProcessError) -> &aio::process::WorkerCrashed {
    match err {
        ProcessError::WorkerCrashed(c) => c,
        other => panic!("expected WorkerCrashed, got {other:?}"),
    }
}

#[test]
fn a_worker_killed_mid_task_fails_only_that_task_and_is_replaced_15_1() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        let others: Vec<_> = (0..6)
            .map(|_| pool.submit(&SLEEP_MS, 20).unwrap())
            .collect();
        let killed = pool.submit(&KILL_SELF, ()).unwrap();
        let queued: Vec<_> = (0..20u64)
            .map(|x| pool.submit(&SQUARE, x).unwrap())
            .collect();

        let err = killed.await.unwrap_err();
        let c = crash(&err);
        assert_eq!(
            c.exit,
            ExitInfo {
                code: None,
                signal: Some(9)
            }
        );
        assert!(err.to_string().contains("signal 9 (SIGKILL)"), "{err}");
        for h in others {
            h.await.unwrap();
        }
        for (x, h) in queued.into_iter().enumerate() {
            assert_eq!(h.await, Ok(x as u64 * x as u64));
        }
        assert!(pool.broken().is_none());
        wait_reaped(&[c.pid]).await;
        let after = pool.submit(&PID, ()).unwrap().await.unwrap();
        assert_ne!(after, c.pid);
        pool.shutdown(false).await;
    });
}

#[test]
fn break_pool_policy_fails_every_task_like_broken_process_pool_15_1() {
    run(async {
        let pool = pool()
            .max_workers(2)
            .crash_policy(CrashPolicy::BreakPool)
            .build()
            .unwrap();
        wait_workers_ready(&pool).await;
        let running = pool.submit(&SLEEP_MS, 60_000).unwrap();
        let killed = pool.submit(&KILL_SELF, ()).unwrap();
        let queued: Vec<_> = (0..10u64)
            .map(|x| pool.submit(&SQUARE, x).unwrap())
            .collect();

        crash(&killed.await.unwrap_err());
        let broken = |r: Result<_, ProcessError>| match r {
            Err(ProcessError::Broken(b)) => {
                assert!(matches!(b.cause, BrokenCause::WorkerCrashed(_)), "{b:?}");
            }
            other => panic!("expected Broken, got {other:?}"),
        };
        broken(running.await.map(u64::from));
        for h in queued {
            broken(h.await);
        }
        broken(pool.submit(&SQUARE, 1).map(|_| 0));
        assert!(pool.broken().is_some());
        pool.shutdown(false).await;
        assert!(pool.worker_pids().is_empty());
    });
}

/// Two workers up, so the kill lands on a running pool.
async fn wait_workers_ready(pool: &aio::ProcessPool) {
    let (a, b) = tokio::join!(
        pool.submit(&SLEEP_MS, 10).unwrap(),
        pool.submit(&SLEEP_MS, 10).unwrap()
    );
    a.unwrap();
    b.unwrap();
    wait_workers(pool, 2).await;
}

#[test]
fn an_argument_that_fails_to_serialize_fails_that_task_only_15_9() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let err = pool.submit(&PICKY_INTO, Picky(13)).unwrap_err();
        assert!(
            matches!(&err, ProcessError::SerializeArgs(m) if m.contains("Picky")),
            "{err:?}"
        );
        assert!(
            pool.worker_pids().is_empty(),
            "the task never left this process"
        );
        assert_eq!(pool.submit(&PICKY_INTO, Picky(12)).unwrap().await, Ok(12));
        pool.shutdown(false).await;
    });
}

#[test]
fn an_argument_that_fails_to_deserialize_in_the_worker_fails_that_task_only_15_10() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let before = pool.submit(&PID, ()).unwrap().await.unwrap();
        let err = pool
            .submit(&PICKY_INTO, Picky(14))
            .unwrap()
            .await
            .unwrap_err();
        assert!(
            matches!(&err, ProcessError::DeserializeArgs(m) if m.contains("Picky")),
            "{err:?}"
        );
        // Deliberately unlike CPython, which breaks the pool: the worker goes on.
        assert_eq!(pool.submit(&PID, ()).unwrap().await, Ok(before));
        pool.shutdown(false).await;
    });
}

#[test]
fn a_crash_reports_what_its_own_task_wrote_to_stderr_not_what_earlier_tasks_did() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let worker = pool.submit(&PID, ()).unwrap().await.unwrap();
        assert_eq!(
            pool.submit(&SAY, "an earlier warning".into())
                .unwrap()
                .await,
            Ok(0)
        );
        let err = pool
            .submit(&ABORT_WITH, "out of pixels".into())
            .unwrap()
            .await
            .unwrap_err();
        let tail = &crash(&err).stderr_tail;
        assert_eq!(crash(&err).pid, worker);
        assert!(tail.contains("out of pixels"), "{tail:?}");
        assert!(!tail.contains("an earlier warning"), "{tail:?}");
        assert!(
            !tail.contains("aio-process-task"),
            "the task marks are not output"
        );
        pool.shutdown(false).await;
    });
}

#[test]
fn a_panic_in_a_task_is_reported_by_its_error_alone_unless_printing_is_asked_for() {
    run(async {
        for print in [false, true] {
            let pool = pool()
                .max_workers(1)
                .print_worker_panics(print)
                .build()
                .unwrap();
            let err = pool
                .submit(&PANIC_CAUGHT_THEN_ABORT, "the inner panic".into())
                .unwrap()
                .await
                .unwrap_err();
            let tail = &crash(&err).stderr_tail;
            assert!(tail.contains("aborting"), "{tail:?}");
            assert_eq!(tail.contains("the inner panic"), print, "{tail:?}");
            pool.shutdown(false).await;
        }
    });
}

#[test]
fn a_crash_or_exit_during_the_function_fails_that_task_only_15_11() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let err = pool
            .submit(&ABORT_WITH, "out of pixels".into())
            .unwrap()
            .await
            .unwrap_err();
        let c = crash(&err);
        assert_eq!(c.exit.signal, Some(6));
        assert!(
            c.stderr_tail.contains("out of pixels"),
            "{:?}",
            c.stderr_tail
        );
        assert!(err.to_string().contains("out of pixels"));

        let err = pool.submit(&EXIT_WITH, 3).unwrap().await.unwrap_err();
        assert_eq!(
            crash(&err).exit,
            ExitInfo {
                code: Some(3),
                signal: None
            }
        );
        assert_eq!(pool.submit(&SQUARE, 5).unwrap().await, Ok(25));
        pool.shutdown(false).await;
    });
}

#[test]
fn a_result_that_fails_to_serialize_or_deserialize_fails_that_task_only_15_12() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let before = pool.submit(&PID, ()).unwrap().await.unwrap();
        let err = pool.submit(&PICKY_FROM, 13).unwrap().await.unwrap_err();
        assert!(
            matches!(&err, ProcessError::SerializeResult(m) if m.contains("Picky")),
            "{err:?}"
        );
        let err = pool.submit(&PICKY_FROM, 14).unwrap().await.unwrap_err();
        assert!(
            matches!(&err, ProcessError::DeserializeResult(m) if m.contains("Picky")),
            "{err:?}"
        );
        assert_eq!(pool.submit(&PICKY_FROM, 15).unwrap().await, Ok(Picky(15)));
        assert_eq!(pool.submit(&PID, ()).unwrap().await, Ok(before));
        pool.shutdown(false).await;
    });
}

#[test]
fn a_panic_while_encoding_a_result_is_a_remote_panic_and_the_worker_lives_on() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let before = pool.submit(&PID, ()).unwrap().await.unwrap();
        let err = pool.submit(&PICKY_FROM, 16).unwrap().await.unwrap_err();
        assert!(
            matches!(&err, ProcessError::RemotePanic(p) if p.to_string().contains("16 panics")),
            "{err:?}"
        );
        assert_eq!(pool.submit(&PID, ()).unwrap().await, Ok(before));
        pool.shutdown(false).await;
    });
}

#[test]
fn a_crash_after_shutdown_began_does_not_deadlock_15_13() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let killed = pool.submit(&KILL_SELF, ()).unwrap();
        let queued = pool.submit(&SQUARE, 4).unwrap();
        pool.close(false);
        crash(&killed.await.unwrap_err());
        assert_eq!(
            queued.await,
            Ok(16),
            "queued work still runs on a new worker"
        );
        pool.shutdown(false).await;
        assert!(pool.worker_pids().is_empty());
    });
}

#[test]
fn a_worker_killed_with_a_large_payload_in_flight_is_a_clean_error_15_14() {
    run_frozen(async {
        let budget = Duration::from_millis(1);
        let pool = pool().max_workers(1).task_timeout(budget).build().unwrap();
        let big = pool.submit(&UPPER, "x".repeat(64 << 20)).unwrap();
        // The call has started, and its 64 MiB each way cannot have crossed: only now does
        // the clock pass the budget.
        expire_running(&pool, 1, budget).await;
        assert_eq!(big.await, Err(ProcessError::TimedOut { after: budget }));
        // The same pool goes on, on a new worker, under the same 1 ms budget: the clock does
        // not move by itself, so no slow machine can spend it.
        assert_eq!(
            pool.submit(&UPPER, "ok".into()).unwrap().await,
            Ok("OK".into())
        );
        pool.shutdown(false).await;
    });
}

#[test]
fn a_timed_out_task_kills_and_replaces_its_worker() {
    run_frozen(async {
        let budget = Duration::from_millis(300);
        let pool = pool().max_workers(1).task_timeout(budget).build().unwrap();
        let before = pool.submit(&PID, ()).unwrap().await.unwrap();
        let sleeping = pool.submit(&SLEEP_MS, 3_600_000).unwrap();
        expire_running(&pool, 1, budget).await;
        assert_eq!(
            sleeping.await,
            Err(ProcessError::TimedOut { after: budget })
        );
        assert!(!is_our_child(before), "killed and reaped before the error");
        let after = pool.submit(&PID, ()).unwrap().await.unwrap();
        assert_ne!(after, before);
        pool.shutdown(false).await;
    });
}

#[test]
fn cancelling_a_running_task_kills_and_replaces_its_worker_15_22() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let started = marker("running");
        let running = pool
            .submit(
                &TOUCH_THEN_SLEEP,
                (started.display().to_string(), 3_600_000),
            )
            .unwrap();
        let running = tokio::spawn(running);
        wait_for_file(&started).await;
        let pid: u32 = std::fs::read_to_string(&started).unwrap().parse().unwrap();
        running.abort();
        wait_reaped(&[pid]).await;
        let after = pool.submit(&PID, ()).unwrap().await.unwrap();
        assert_ne!(after, pid);
        pool.shutdown(false).await;
        let _ = std::fs::remove_file(started);
    });
}

#[test]
fn cancelling_a_queued_task_removes_it_from_the_queue() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let first = marker("first");
        let second = marker("second");
        // The only worker is busy until the end, so the queued task cannot start meanwhile,
        // however long the checks below take.
        let running = pool
            .submit(&TOUCH_THEN_SLEEP, (first.display().to_string(), 3_600_000))
            .unwrap();
        wait_for_file(&first).await;
        let pid: u32 = std::fs::read_to_string(&first).unwrap().parse().unwrap();
        let queued = pool
            .submit(&TOUCH_THEN_SLEEP, (second.display().to_string(), 0))
            .unwrap();
        assert!(format!("{pool:?}").contains("queued: 1"), "{pool:?}");
        drop(queued);
        assert!(format!("{pool:?}").contains("queued: 0"), "{pool:?}");
        // Frees the worker (killed with its task): a task still queued would run now, and
        // shutdown would wait for it.
        drop(running);
        pool.shutdown(false).await;
        assert!(!second.exists(), "the cancelled task ran");
        assert_reaped(&[pid]);
        let _ = std::fs::remove_file(first);
    });
}

#[test]
fn no_zombies_after_crashes_timeouts_and_shutdown() {
    run_frozen(async {
        let budget = Duration::from_millis(500);
        let pool = pool().max_workers(2).task_timeout(budget).build().unwrap();
        let mut pids = vec![pool.submit(&PID, ()).unwrap().await.unwrap()];
        pids.extend(pool.worker_pids());
        if let Err(ProcessError::WorkerCrashed(c)) = pool.submit(&KILL_SELF, ()).unwrap().await {
            pids.push(c.pid);
        }
        pids.extend(pool.worker_pids());
        let sleeping = pool.submit(&SLEEP_MS, 3_600_000).unwrap();
        expire_running(&pool, 1, budget).await;
        let _ = sleeping.await;
        pids.extend(pool.worker_pids());
        let _ = pool.submit(&ABORT_WITH, String::new()).unwrap().await;
        pids.push(pool.submit(&PID, ()).unwrap().await.unwrap());
        pids.extend(pool.worker_pids());
        pool.shutdown(false).await;
        assert!(pids.len() >= 4);
        assert_reaped(&pids);
    });
}

#[test]
fn a_worker_that_dies_while_its_own_child_lives_on_fails_its_task() {
    dies_while_its_child_lives_on(false);
}

#[test]
fn a_worker_that_dies_while_a_process_holds_its_socket_fails_its_task() {
    dies_while_its_child_lives_on(true);
}

/// A worker starts a child that outlives it, holding its stdout and stderr, and, if
/// `socket`, its socket to the pool, then aborts: its task fails with the abort, at once.
fn dies_while_its_child_lives_on(socket: bool) {
    run(async {
        let pool = pool()
            .max_workers(1)
            .env("AIO_TEST_WORKER_MODE", "keep-socket")
            .build()
            .unwrap();
        let pid_file = marker("sleeper-pid");
        let call = pool
            .submit(&SPAWN_THEN_ABORT, (pid_file.display().to_string(), socket))
            .unwrap();
        let result = tokio::time::timeout(Duration::from_secs(10), call).await;
        // The sleeper outlives the worker: end it before anything can fail.
        let sleeper = std::fs::read_to_string(&pid_file).ok();
        if let Some(pid) = &sleeper {
            let _ = std::process::Command::new("kill")
                .args(["-9", pid.trim()])
                .status();
        }
        let _ = std::fs::remove_file(&pid_file);
        assert!(sleeper.is_some(), "the worker did not start its child");

        let err = result
            .expect("a task whose worker died is still waiting")
            .unwrap_err();
        let c = crash(&err);
        assert_eq!(c.exit.signal, Some(6), "{err}");
        wait_reaped(&[c.pid]).await;
        assert_eq!(pool.submit(&SQUARE, 3).unwrap().await, Ok(9));
        pool.shutdown(false).await;
    });
}

#[test]
fn a_task_that_reads_its_stdin_or_starts_a_program_that_does_takes_nothing_from_the_pool() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let pid = pool.submit(&PID, ()).unwrap().await.unwrap();
        // Calls sent behind it: their frames are what a read of the socket would take.
        let read = pool.submit(&READ_STDIN, ()).unwrap();
        let behind: Vec<_> = (0..20u64)
            .map(|x| pool.submit(&SQUARE, x).unwrap())
            .collect();
        let read = tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("reading stdin waited on the pool's socket");
        assert_eq!(read, Ok((0, 0, true)), "stdin is /dev/null");
        for (x, call) in (0..20u64).zip(behind) {
            assert_eq!(call.await, Ok(x * x));
        }
        assert_eq!(pool.worker_pids(), vec![pid], "the worker was replaced");
        pool.shutdown(false).await;
    });
}

#[test]
fn a_pool_whose_runtime_shut_down_fails_its_tasks_instead_of_hanging() {
    let first = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let running_marker = marker("running");
    let (pool, running) = first.block_on(async {
        let pool = pool().max_workers(2).build().unwrap();
        assert_eq!(pool.submit(&SQUARE, 3).unwrap().await, Ok(9));
        let running = pool
            .submit(
                &TOUCH_THEN_SLEEP,
                (running_marker.display().to_string(), 60_000),
            )
            .unwrap();
        wait_for_file(&running_marker).await;
        (pool, running)
    });
    // Drops both slots, one of them in the middle of a task.
    drop(first);
    let _ = std::fs::remove_file(&running_marker);

    run(async {
        let guard = Duration::from_secs(10);
        let ran = tokio::time::timeout(guard, running)
            .await
            .expect("a task running when its runtime shut down hangs");
        assert!(ran.is_err(), "{ran:?}");
        for x in 0..4u64 {
            let r = tokio::time::timeout(guard, pool.submit(&SQUARE, x).unwrap())
                .await
                .expect("a task submitted after the runtime shut down hangs");
            assert!(r.is_err(), "{r:?}");
        }
        assert!(pool.worker_pids().is_empty());
        tokio::time::timeout(guard, pool.shutdown(false))
            .await
            .expect("shutdown after the runtime shut down hangs");
    });
}

#[test]
fn map_bounds_its_chunks_in_flight_even_with_the_most_workers_possible() {
    use futures::TryStreamExt;

    run(async {
        let pool = pool().max_workers(usize::MAX).build().unwrap();
        assert_eq!(pool.max_workers(), usize::MAX);
        let squares: Vec<u64> = pool.map(&SQUARE, 0..5u64).try_collect().await.unwrap();
        assert_eq!(squares, [0, 1, 4, 9, 16]);
        pool.shutdown(false).await;
    });
}
