//! Calls sent ahead: a worker whose calls come back quickly is sent more before it answers
//! the first, and runs them in order. The rules of a single call hold for every call of the
//! window: the first is the one running (its timeout runs from when it starts, cancelling
//! it kills the worker), the others can still be cancelled and are then skipped, and a
//! crash fails only the call that caused it, while those behind it run elsewhere.
//!
//! These tests run on a clock that stands still, where every call seems to take no time,
//! so a worker's window is full from its second call on; each first runs one call to
//! open it.

use std::time::Duration;

use aio::process::{ProcessError, ProcessPool};
use aio_tests::process_fns::*;

use crate::process_support::*;

/// A call that runs until the test creates `release`; its worker creates `started` first.
fn hold(
    pool: &ProcessPool,
    started: &std::path::Path,
    release: &std::path::Path,
) -> aio::process::ProcessHandle<u32> {
    let args = (started.display().to_string(), release.display().to_string());
    pool.submit(&TOUCH_THEN_WAIT_FOR, args).unwrap()
}

/// A call that creates `path` (proof that it ran) and returns its worker's pid.
fn touch(pool: &ProcessPool, path: &std::path::Path) -> aio::process::ProcessHandle<u32> {
    pool.submit(&TOUCH_THEN_SLEEP, (path.display().to_string(), 0))
        .unwrap()
}

/// Waits until the held call runs and every call submitted is on the worker.
async fn running_with_all_sent(pool: &ProcessPool, started: &std::path::Path) {
    spin_for_file(started).await;
    spin_until_all_sent(pool).await;
}

/// One call on a one-worker pool, to learn that its calls are quick.
async fn warmed_up_pool(builder: aio::process::ProcessPoolBuilder) -> (ProcessPool, u32) {
    let pool = builder.max_workers(1).build().unwrap();
    let pid = pool.submit(&PID, ()).unwrap().await.unwrap();
    (pool, pid)
}

#[test]
fn calls_sent_ahead_come_back_in_order_and_none_is_lost() {
    run(async {
        for workers in [1, 2] {
            let pool = pool().max_workers(workers).build().unwrap();
            let handles: Vec<_> = (0..2_000u64)
                .map(|i| pool.submit(&SQUARE, i).unwrap())
                .collect();
            for (i, handle) in (0u64..).zip(handles) {
                assert_eq!(handle.await, Ok(i * i));
            }
            pool.shutdown(false).await;
        }
    });
}

#[test]
fn a_call_sent_ahead_and_cancelled_before_it_starts_is_skipped_on_the_same_worker() {
    run_frozen(async {
        let (pool, pid) = warmed_up_pool(pool()).await;
        let (started, release) = (marker("first"), marker("release"));
        let first = hold(&pool, &started, &release);
        let skipped = marker("skipped");
        let behind = touch(&pool, &skipped);
        running_with_all_sent(&pool, &started).await;
        assert!(
            behind.cancel(),
            "a call that has not started can be cancelled"
        );
        // Let the pool send the cancel before the first call ends.
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        std::fs::write(&release, "").unwrap();
        assert_eq!(first.await, Ok(pid));
        assert_eq!(behind.await, Err(ProcessError::Cancelled));
        assert_eq!(
            pool.submit(&PID, ()).unwrap().await,
            Ok(pid),
            "the worker was not replaced"
        );
        assert!(!skipped.exists(), "the cancelled call ran");
        pool.shutdown(false).await;
        remove_markers(&[&started, &release, &skipped]);
    });
}

#[test]
fn a_crash_fails_its_own_call_and_the_calls_behind_it_run_on_a_new_worker() {
    run_frozen(async {
        let (pool, pid) = warmed_up_pool(pool()).await;
        let (started, release) = (marker("first"), marker("release"));
        let first = hold(&pool, &started, &release);
        let crash = pool.submit(&ABORT_WITH, "boom".into()).unwrap();
        let behind: Vec<_> = (0..10).map(|_| pool.submit(&PID, ()).unwrap()).collect();
        running_with_all_sent(&pool, &started).await;
        std::fs::write(&release, "").unwrap();
        assert_eq!(
            first.await,
            Ok(pid),
            "the call before the crash is answered"
        );
        match crash.await {
            Err(ProcessError::WorkerCrashed(c)) => {
                assert_eq!(c.pid, pid);
                assert!(c.stderr_tail.contains("boom"), "{c}");
            }
            other => panic!("expected the crash, got {other:?}"),
        }
        for handle in behind {
            let ran_on = handle.await.unwrap();
            assert_ne!(ran_on, pid, "a call behind the crash ran again, elsewhere");
        }
        pool.shutdown(false).await;
        remove_markers(&[&started, &release]);
    });
}

#[test]
fn the_timeout_of_a_call_sent_ahead_runs_from_when_it_starts() {
    run_frozen(async {
        let budget = Duration::from_secs(1);
        let (pool, pid) = warmed_up_pool(pool().task_timeout(budget)).await;
        let (started, release) = (marker("first"), marker("release"));
        let (second_started, second_release) = (marker("second"), marker("release-second"));
        let first = hold(&pool, &started, &release);
        let second = hold(&pool, &second_started, &second_release);
        running_with_all_sent(&pool, &started).await;
        // Most of the budget passes while the second call waits behind the first...
        tokio::time::advance(budget * 9 / 10).await;
        std::fs::write(&release, "").unwrap();
        assert_eq!(first.await, Ok(pid));
        spin_for_file(&second_started).await;
        // ... and most of it again once it runs: it has its whole budget.
        tokio::time::advance(budget * 9 / 10).await;
        std::fs::write(&second_release, "").unwrap();
        assert_eq!(second.await, Ok(pid));
        pool.shutdown(false).await;
        remove_markers(&[&started, &release, &second_started, &second_release]);
    });
}

#[test]
fn closing_with_pending_calls_cancelled_cancels_the_calls_sent_ahead_too() {
    run_frozen(async {
        let (pool, pid) = warmed_up_pool(pool()).await;
        let (started, release) = (marker("first"), marker("release"));
        let first = hold(&pool, &started, &release);
        let skipped = marker("skipped");
        let behind = touch(&pool, &skipped);
        running_with_all_sent(&pool, &started).await;
        pool.close(true);
        assert_eq!(behind.await, Err(ProcessError::Cancelled));
        std::fs::write(&release, "").unwrap();
        assert_eq!(first.await, Ok(pid), "the running call finishes");
        pool.shutdown(false).await;
        assert!(!skipped.exists(), "the cancelled call ran");
        remove_markers(&[&started, &release, &skipped]);
    });
}

#[test]
fn calls_cancelled_at_random_among_calls_sent_ahead_lose_no_other_result() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        let mut kept = Vec::new();
        for round in 0..20u64 {
            let mut handles: Vec<_> = (0..200u64)
                .map(|i| {
                    (
                        round * 200 + i,
                        pool.submit(&SQUARE, round * 200 + i).unwrap(),
                    )
                })
                .collect();
            // Cancel a third of them at different points: some still queued, some sent.
            for step in 0..3 {
                tokio::task::yield_now().await;
                handles.retain(|(i, _)| (i + round) % 9 != step * 3);
            }
            kept.extend(handles);
        }
        for (i, handle) in kept {
            assert_eq!(handle.await, Ok(i * i));
        }
        assert_eq!(pool.submit(&SQUARE, 3).unwrap().await, Ok(9));
        assert!(pool.worker_pids().len() <= 2);
        pool.shutdown(false).await;
    });
}

#[test]
fn a_call_answered_before_its_worker_is_killed_for_the_call_before_it_is_not_run_again() {
    run_frozen(async {
        let (pool, pid) = warmed_up_pool(pool()).await;
        let (started, release) = (marker("first"), marker("release"));
        let first = hold(&pool, &started, &release);
        let ran = marker("behind-ran");
        let behind = touch(&pool, &ran);
        running_with_all_sent(&pool, &started).await;
        // Both calls end while the runtime is blocked, so the pool reads neither answer...
        std::fs::write(&release, "").unwrap();
        while !ran.exists() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let ran_on = || {
            std::fs::read_to_string(&ran)
                .unwrap()
                .parse::<u32>()
                .unwrap()
        };
        assert_eq!(ran_on(), pid);
        // ... before the first call's handle is dropped: too late to cancel it, and the
        // call behind it has run; it must not run again.
        drop(first);
        assert_eq!(behind.await, Ok(pid));
        assert_eq!(ran_on(), pid, "the call behind ran again, elsewhere");
        assert_eq!(pool.submit(&SQUARE, 4).unwrap().await, Ok(16));
        pool.shutdown(false).await;
        remove_markers(&[&started, &release, &ran]);
    });
}

#[test]
fn a_cancel_reaches_a_worker_whose_calls_sent_ahead_fill_its_buffer() {
    run_frozen(async {
        let (pool, pid) = warmed_up_pool(pool()).await;
        let (started, release) = (marker("first"), marker("release"));
        let first = hold(&pool, &started, &release);
        let skipped = marker("skipped");
        let behind = touch(&pool, &skipped);
        // More than the worker reads at once: one of them is cut in two in its buffer.
        let fillers: Vec<_> = (0..40)
            .map(|_| pool.submit(&UPPER, "x".repeat(2000)).unwrap())
            .collect();
        running_with_all_sent(&pool, &started).await;
        assert!(behind.cancel());
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        std::fs::write(&release, "").unwrap();
        assert_eq!(first.await, Ok(pid));
        assert_eq!(behind.await, Err(ProcessError::Cancelled));
        for filler in fillers {
            assert_eq!(filler.await, Ok("X".repeat(2000)));
        }
        assert!(!skipped.exists(), "the cancelled call ran");
        pool.shutdown(false).await;
        remove_markers(&[&started, &release, &skipped]);
    });
}

#[test]
fn long_calls_after_short_ones_are_shared_between_the_workers() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        // Short calls: each worker's window grows.
        let warm: Vec<_> = (0..2_000u64)
            .map(|i| pool.submit(&SQUARE, i).unwrap())
            .collect();
        for handle in warm {
            handle.await.unwrap();
        }
        let long: Vec<_> = (0..10)
            .map(|_| pool.submit(&SLEEP_MS, 100).unwrap())
            .collect();
        let mut per_worker = std::collections::BTreeMap::<u32, usize>::new();
        for handle in long {
            *per_worker.entry(handle.await.unwrap()).or_default() += 1;
        }
        // Not all sent ahead to the first worker to ask: each takes its share of what is
        // queued, and the other one the rest.
        assert!(
            per_worker.values().all(|&n| n <= 7),
            "the long calls ran {per_worker:?}"
        );
        pool.shutdown(false).await;
    });
}

#[test]
fn a_worker_that_breaks_the_protocol_fails_its_calls_and_runs_none_twice() {
    run(async {
        let pool = pool()
            .max_workers(1)
            .env("AIO_TEST_WORKER_MODE", "keep-socket")
            .build()
            .unwrap();
        // Real time: short calls open the window.
        let warm: Vec<_> = (0..500u64)
            .map(|i| pool.submit(&SQUARE, i).unwrap())
            .collect();
        for handle in warm {
            handle.await.unwrap();
        }
        let pid = pool.submit(&PID, ()).unwrap().await.unwrap();
        let (started, release, record) = (marker("first"), marker("release"), marker("record"));
        std::fs::create_dir(&record).unwrap();
        let first = hold(&pool, &started, &release);
        let garble = pool.submit(&GARBLE, ()).unwrap();
        let behind = pool
            .submit(&RECORD, (record.display().to_string(), 7))
            .unwrap();
        wait_for_file(&started).await;
        std::fs::write(&release, "").unwrap();
        assert_eq!(first.await, Ok(pid));
        // What the worker wrote after the garbage cannot be read: whether the call behind
        // ran is unknown, so it fails rather than run again elsewhere.
        assert!(matches!(garble.await, Err(ProcessError::WorkerCrashed(_))));
        let behind = behind.await;
        let runs = std::fs::read_dir(&record).unwrap().count();
        assert!(runs <= 1, "the call behind ran {runs} times");
        if runs == 0 || behind.is_err() {
            assert!(
                matches!(behind, Err(ProcessError::WorkerCrashed(_))),
                "{behind:?}"
            );
        }
        assert_eq!(pool.submit(&SQUARE, 5).unwrap().await, Ok(25));
        pool.shutdown(false).await;
        remove_markers(&[&started, &release]);
        std::fs::remove_dir_all(&record).unwrap();
    });
}

#[test]
fn a_running_call_cancelled_as_it_ends_takes_neither_its_worker_nor_the_next_call_down() {
    run_frozen(async {
        let (pool, pid) = warmed_up_pool(pool()).await;
        let (started, release) = (marker("first"), marker("release"));
        let first = hold(&pool, &started, &release);
        let behind = pool.submit(&PID, ()).unwrap();
        running_with_all_sent(&pool, &started).await;
        // Cancelled while it runs, and it ends before its grace is out (the clock stands
        // still): its worker is not killed, and the call after it is answered.
        drop(first);
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        std::fs::write(&release, "").unwrap();
        assert_eq!(behind.await, Ok(pid));
        assert_eq!(pool.submit(&PID, ()).unwrap().await, Ok(pid));
        pool.shutdown(false).await;
        remove_markers(&[&started, &release]);
    });
}
