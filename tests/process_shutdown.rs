//! Shutting down: `close`, `shutdown`, `terminate` and dropping the pool (§15.8,
//! §15.15-18, §15.20-21). Every task ends, one way or another: none is stranded.

use aio::process::{BrokenCause, ProcessError};
use aio_tests::process_fns::*;

use crate::process_support::*;

#[test]
fn submit_after_shutdown_is_refused_15_15() {
    run(async {
        let pool = pool().build().unwrap();
        pool.shutdown(false).await;
        assert_eq!(pool.submit(&SQUARE, 1).unwrap_err(), ProcessError::ShutDown);
        assert!(
            ProcessError::ShutDown
                .to_string()
                .contains("cannot schedule new tasks after shutdown")
        );
    });
}

#[test]
fn a_map_over_an_endless_input_ends_once_the_pool_is_closed() {
    run(async {
        use futures::StreamExt;
        let pool = pool().max_workers(1).build().unwrap();
        let mut squares = pool.map(&SQUARE, 0u64..).chunksize(4);
        assert_eq!(squares.next().await, Some(Ok(0)));
        pool.close(true);
        // What was in flight ends one way or another; then one refused chunk, and the end.
        let rest: Vec<_> = squares.collect().await;
        assert!(rest.len() < 100, "{} items after close", rest.len());
        assert!(
            matches!(rest.last(), Some(Err(ProcessError::ShutDown))),
            "{rest:?}"
        );
        pool.shutdown(false).await;
    });
}

#[test]
fn shutdown_cancel_pending_cancels_a_deep_queue_and_finishes_running_tasks_15_16() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        let release = marker("release");
        let started = [marker("deep-0"), marker("deep-1")];
        // Both workers run tasks that end only once the queue is cancelled: nothing queued
        // behind them can start before the shutdown, however slow the machine.
        let running: Vec<_> = started
            .iter()
            .map(|s| {
                let paths = (s.display().to_string(), release.display().to_string());
                pool.submit(&TOUCH_THEN_WAIT_FOR, paths).unwrap()
            })
            .collect();
        for s in &started {
            wait_for_file(s).await;
        }
        let queued: Vec<_> = (0..10_000u64)
            .map(|x| pool.submit(&SLEEP_MS, x % 2).unwrap())
            .collect();
        let release_once_cancelled = async {
            wait_queued(&pool, 0).await;
            std::fs::write(&release, "").unwrap();
        };
        tokio::join!(pool.shutdown(true), release_once_cancelled);
        let mut pids = Vec::new();
        for h in running {
            pids.push(h.await.expect("a running task finishes"));
        }
        for h in queued {
            assert_eq!(h.await, Err(ProcessError::Cancelled));
        }
        assert!(pool.worker_pids().is_empty());
        assert_reaped(&pids);
        for path in started.iter().chain([&release]) {
            let _ = std::fs::remove_file(path);
        }
    });
}

#[test]
fn a_task_cancelled_right_before_shutdown_does_not_hang_it_15_17() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let running = pool.submit(&SLEEP_MS, 50).unwrap();
        let queued = pool.submit(&SLEEP_MS, 3_600_000).unwrap();
        drop(queued);
        pool.shutdown(false).await;
        running.await.unwrap();
    });
}

#[test]
fn shutdown_completes_queued_work_under_max_tasks_per_child_one_15_8() {
    run(async {
        let pool = pool()
            .max_workers(2)
            .max_tasks_per_child(1)
            .build()
            .unwrap();
        let handles: Vec<_> = (0..10).map(|_| pool.submit(&PID, ()).unwrap()).collect();
        pool.shutdown(false).await;
        let mut pids = Vec::new();
        for h in handles {
            pids.push(h.await.unwrap());
        }
        pids.sort_unstable();
        pids.dedup();
        assert_eq!(pids.len(), 10, "one worker per task");
        assert_reaped(&pids);
    });
}

#[test]
fn close_without_waiting_with_a_failed_task_does_not_hang_15_18() {
    run(async {
        let pool = pool()
            .max_workers(1)
            .max_tasks_per_child(1)
            .build()
            .unwrap();
        let failing = pool.submit(&PANICS, "bad".into()).unwrap();
        let after = pool.submit(&SQUARE, 3).unwrap();
        pool.close(false);
        assert!(matches!(failing.await, Err(ProcessError::RemotePanic(_))));
        assert_eq!(after.await, Ok(9));
        pool.shutdown(false).await;
    });
}

#[test]
fn terminate_kills_the_workers_and_breaks_the_pool_15_20() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let started = marker("terminate");
        let running = pool
            .submit(
                &TOUCH_THEN_SLEEP,
                (started.display().to_string(), 3_600_000),
            )
            .unwrap();
        let queued = pool.submit(&SQUARE, 2).unwrap();
        wait_for_file(&started).await;
        let pid: u32 = std::fs::read_to_string(&started).unwrap().parse().unwrap();
        pool.terminate();
        for r in [running.await.map(u64::from), queued.await] {
            assert!(
                matches!(&r, Err(ProcessError::Broken(b)) if b.cause == BrokenCause::Terminated),
                "{r:?}"
            );
        }
        assert!(matches!(
            pool.submit(&SQUARE, 1),
            Err(ProcessError::Broken(_))
        ));
        pool.shutdown(false).await;
        assert_reaped(&[pid]);
        let _ = std::fs::remove_file(started);
    });
}

#[test]
fn dropping_the_pool_kills_its_workers_and_strands_no_task_15_21() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        let running = pool.submit(&SLEEP_MS, 3_600_000).unwrap();
        let queued = pool.submit(&SQUARE, 2).unwrap();
        let waiting = pool.submit(&SQUARE, 3).unwrap();
        assert_eq!(queued.await, Ok(4));
        wait_workers(&pool, 2).await;
        let pids = pool.worker_pids();
        drop(pool);
        assert_eq!(running.await, Err(ProcessError::Cancelled));
        let _ = waiting.await;
        wait_reaped(&pids).await;
    });
}
