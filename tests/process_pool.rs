//! Running work: `submit`, `map` and the worker life cycle (§15.4-8), typed calls, and
//! large payloads. Not applicable: `max_workers > 61` on Windows (§15.3); the fork start
//! method (§15.7): workers are always started afresh.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aio::process::{ProcessError, RemotePanic};
use aio_tests::process_fns::*;
use futures::{StreamExt, TryStreamExt};

use crate::process_support::*;

#[test]
fn submit_runs_a_registered_function_in_a_worker() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        assert_eq!(pool.submit(&SQUARE, 12).unwrap().await, Ok(144));
        let worker = pool.submit(&PID, ()).unwrap().await.unwrap();
        assert_ne!(worker, std::process::id());
        assert!(pool.worker_pids().contains(&worker));
        pool.shutdown(false).await;
    });
}

#[test]
fn map_results_come_back_in_input_order_for_any_chunksize_15_4() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        let expected: Vec<u64> = (0..500u64).map(|x| x * x).collect();
        for chunksize in [1, 7, 256, 1000] {
            let got: Vec<u64> = pool
                .map(&SQUARE, 0..500u64)
                .chunksize(chunksize)
                .try_collect()
                .await
                .unwrap();
            assert_eq!(got, expected, "chunksize {chunksize}");
        }
        pool.shutdown(false).await;
    });
}

#[test]
#[should_panic(expected = "chunksize must be at least 1")]
fn map_chunksize_below_one_is_refused_15_4() {
    run(async {
        let pool = pool().build().unwrap();
        let _ = pool.map(&SQUARE, 0..10u64).chunksize(0);
    });
}

#[test]
fn a_failed_item_of_map_does_not_end_the_stream() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        let got: Vec<Result<u64, ProcessError>> =
            pool.map(&HALF, 0..10u64).chunksize(4).collect().await;
        assert_eq!(got.len(), 10);
        for (x, r) in got.into_iter().enumerate() {
            if x % 2 == 0 {
                assert_eq!(r, Ok(x as u64 / 2));
            } else {
                assert!(
                    matches!(&r, Err(ProcessError::RemotePanic(p)) if p.message == format!("{x} is odd")),
                    "{r:?}"
                );
            }
        }
        pool.shutdown(false).await;
    });
}

#[test]
fn map_is_lazy_over_an_endless_iterator() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        let pulled = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pulled);
        let items = (0u64..).inspect(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        let stream = pool.map(&SQUARE, items).chunksize(8).buffered(3);
        assert_eq!(
            pulled.load(Ordering::SeqCst),
            0,
            "nothing is read before a poll"
        );
        let first: Vec<u64> = stream.take(100).try_collect().await.unwrap();
        assert_eq!(first, (0..100u64).map(|x| x * x).collect::<Vec<_>>());
        // At most the 100 taken, rounded up to a chunk, plus the chunks in flight.
        let read = pulled.load(Ordering::SeqCst);
        assert!((100..=104 + 3 * 8).contains(&read), "{read} items read");
        pool.shutdown(false).await;
    });
}

#[test]
fn there_are_never_more_than_max_workers_processes_15_5() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        let handles: Vec<_> = (0..20)
            .map(|_| pool.submit(&SLEEP_MS, 10).unwrap())
            .collect();
        let mut seen = HashSet::new();
        for h in handles {
            assert!(pool.worker_pids().len() <= 2);
            seen.insert(h.await.unwrap());
        }
        assert!(seen.len() <= 2, "{} distinct workers", seen.len());
        pool.shutdown(false).await;
    });
}

#[test]
fn an_idle_worker_is_reused_before_a_new_one_starts_15_6() {
    run(async {
        let pool = pool().max_workers(4).build().unwrap();
        assert!(pool.worker_pids().is_empty(), "workers start on demand");
        let mut seen = HashSet::new();
        for _ in 0..10 {
            seen.insert(pool.submit(&PID, ()).unwrap().await.unwrap());
        }
        assert_eq!(seen.len(), 1);
        assert_eq!(pool.worker_pids().len(), 1);
        pool.shutdown(false).await;
    });
}

#[test]
fn max_tasks_per_child_replaces_a_worker_after_n_tasks_15_7() {
    run(async {
        let pool = pool()
            .max_workers(1)
            .max_tasks_per_child(1)
            .build()
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(pool.submit(&PID, ()).unwrap().await.unwrap());
        }
        let distinct: HashSet<_> = seen.iter().collect();
        assert_eq!(distinct.len(), 4, "{seen:?}");
        pool.shutdown(false).await;
        assert_reaped(&seen);

        let pool = crate::process_support::pool()
            .max_workers(1)
            .max_tasks_per_child(3)
            .build()
            .unwrap();
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(pool.submit(&PID, ()).unwrap().await.unwrap());
        }
        assert_eq!(seen[0..3], [seen[0]; 3]);
        assert_eq!(seen[3..6], [seen[3]; 3]);
        assert_ne!(seen[0], seen[3]);
        pool.shutdown(false).await;
    });
}

#[test]
fn a_64_mib_argument_and_a_64_mib_result_cross_at_once() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        let big = "ab".repeat(32 << 20);
        let (a, b) = tokio::join!(
            pool.submit(&UPPER, big.clone()).unwrap(),
            pool.submit(&UPPER, big.clone()).unwrap()
        );
        let expected = "AB".repeat(32 << 20);
        assert!(a.unwrap() == expected);
        assert!(b.unwrap() == expected);
        pool.shutdown(false).await;
    });
}

#[test]
fn an_unregistered_function_is_a_typed_error_and_starts_no_worker() {
    run(async {
        let pool = pool().build().unwrap();
        assert_eq!(
            pool.submit(&NOT_REGISTERED, 1).map(drop),
            Err(ProcessError::NotRegistered {
                name: "tests::not_registered".into()
            })
        );
        // The first chunk is refused, and the stream ends there, even over an endless
        // input.
        let mapped: Vec<_> = pool.map(&NOT_REGISTERED, 0..).collect().await;
        assert!(
            matches!(&mapped[..], [Err(ProcessError::NotRegistered { .. })]),
            "{mapped:?}"
        );
        assert!(pool.worker_pids().is_empty());
        pool.shutdown(false).await;
    });
}

#[test]
fn a_panic_is_a_remote_panic_with_its_message_and_the_worker_lives_on_15_2() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let before = pool.submit(&PID, ()).unwrap().await.unwrap();
        let err = pool
            .submit(&PANICS, "no such pixel".into())
            .unwrap()
            .await
            .unwrap_err();
        let ProcessError::RemotePanic(RemotePanic { message, location }) = &err else {
            panic!("expected a remote panic, got {err:?}");
        };
        assert_eq!(message, "no such pixel");
        assert!(
            location
                .as_deref()
                .is_some_and(|l| l.contains("process_fns.rs")),
            "{location:?}"
        );
        assert!(err.to_string().contains("no such pixel"));
        assert_eq!(
            pool.submit(&PID, ()).unwrap().await,
            Ok(before),
            "the same worker goes on"
        );
        pool.shutdown(false).await;
    });
}

#[test]
fn the_initializer_runs_in_each_worker_before_its_tasks() {
    run(async {
        let pool = pool()
            .max_workers(2)
            .initializer(&INIT_RECORD, 41)
            .build()
            .unwrap();
        let (a, b) = tokio::join!(
            pool.submit(&INITIALIZED, ()).unwrap(),
            pool.submit(&INITIALIZED, ()).unwrap()
        );
        assert_eq!((a, b), (Ok(41), Ok(41)));
        pool.shutdown(false).await;
    });
}

// ---- the pools' common dialect ---------------------------------------------------------

#[test]
fn cancel_takes_a_queued_task_out_kills_a_running_one_and_leaves_a_finished_one() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let done = pool.submit(&SQUARE, 3).unwrap();
        let started = marker("cancel-running");
        let running = pool
            .submit(
                &TOUCH_THEN_SLEEP,
                (started.display().to_string(), 3_600_000),
            )
            .unwrap();
        let never = marker("cancel-queued");
        let queued = pool
            .submit(&TOUCH_THEN_SLEEP, (never.display().to_string(), 0))
            .unwrap();
        wait_for_file(&started).await;
        let pid: u32 = std::fs::read_to_string(&started).unwrap().parse().unwrap();

        // A queued task: out of the queue, never run.
        assert!(queued.cancel());
        assert!(queued.is_cancelled());
        assert_eq!(queued.await, Err(ProcessError::Cancelled));
        // A running task: its worker is killed and replaced.
        assert!(running.cancel());
        assert_eq!(running.await, Err(ProcessError::Cancelled));
        assert!(wait_dead(pid, std::time::Duration::from_secs(10)));
        assert_eq!(pool.submit(&SQUARE, 4).unwrap().await, Ok(16));
        assert!(!never.exists(), "the cancelled queued task ran");
        // A finished task: not cancelled, and its result is kept.
        let mut finished = aio::wait(&mut vec![done], aio::ReturnWhen::AllCompleted).await;
        let done = finished.pop().unwrap();
        assert!(!done.cancel());
        assert!(!done.is_cancelled());
        assert_eq!(done.await, Ok(9));
        pool.shutdown(false).await;
        let _ = std::fs::remove_file(started);
    });
}

#[test]
fn a_detached_task_runs_with_nobody_waiting() {
    run(async {
        let pool = pool().max_workers(1).build().unwrap();
        let ran = marker("detached");
        pool.submit(&TOUCH_THEN_SLEEP, (ran.display().to_string(), 0))
            .unwrap()
            .detach();
        wait_for_file(&ran).await;
        pool.shutdown(false).await;
        let _ = std::fs::remove_file(ran);
    });
}

#[test]
fn wait_takes_process_handles_and_returns_the_finished_ones() {
    run(async {
        let pool = pool().max_workers(2).build().unwrap();
        let mut pending = vec![
            pool.submit(&SLEEP_MS, 3_600_000).unwrap(),
            pool.submit(&PANICS, "bad page".into()).unwrap(),
        ];
        let done = aio::wait(&mut pending, aio::ReturnWhen::FirstError).await;
        assert_eq!(done.len(), 1);
        assert_eq!(pending.len(), 1, "the sleeper still runs");
        let err = done.into_iter().next().unwrap().await.unwrap_err();
        assert!(matches!(err, ProcessError::RemotePanic(_)), "{err:?}");
        drop(pending); // cancels the sleeper: its worker is killed
        pool.shutdown(false).await;
    });
}

#[test]
fn a_bad_pool_configuration_is_a_build_error_not_a_panic() {
    run(async {
        let refused = |b: aio::process::ProcessPoolBuilder| b.build().unwrap_err();
        assert_eq!(refused(pool().max_workers(0)), aio::BuildError::NoWorkers);
        assert_eq!(
            refused(pool().max_tasks_per_child(0)),
            aio::BuildError::NoTasksPerChild
        );
        assert_eq!(
            refused(pool().max_start_failures(0)),
            aio::BuildError::NoStartFailures
        );
    });
}
