//! TaskGroup (§1): lifecycle, failures, the body, outer cancellation, nesting, panics and
//! `cancel()`. Eager task start (§1g.39-42) is in `core_eager.rs`.
//!
//! Not applicable to aio's scope form: entering a group twice or before use (§1a.6, 9, 10),
//! cancel counters (§1d.26-29 are shown through level-triggered behaviour instead),
//! `BaseException` kinds other than panics (§1f.36, 38) and call-graph edges (§1h.45).

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{
    BoxError, CancelReason, ReturnWhen, SpawnError, TaskError, TaskGroup, TaskGroupError,
    TaskHandle, on_cancel,
};
use futures::FutureExt;
use tokio::time::{Instant, sleep};

use crate::support::*;

/// A task that counts itself in `started`, sleeps an hour and, when cancelled, cleans up
/// for `cleanup` then logs `event`. Only a started task cleans up: wait for `started`
/// before cancelling it.
fn cleans_up(
    log: &Log,
    cleanup: Duration,
    event: &str,
    started: &Counter,
) -> impl std::future::Future<Output = Result<(), BoxError>> + Send + 'static {
    let log = log.clone();
    let event = event.to_string();
    on_cancel(
        running_forever::<()>(started.clone()),
        move |_| async move {
            sleep(cleanup).await;
            log.push(event);
            Ok(())
        },
    )
}

spec! {
    /// §1a.1: every task's result can be read after the scope returns, without waiting.
    async fn results_are_available_after_the_scope() {
        let (a, b) = TaskGroup::<BoxError>::scope(|tg| async move {
            let a = tg.spawn(async {
                sleep(ms(10)).await;
                Ok(1)
            })?;
            let b = tg.spawn(async { Ok("two") })?;
            Ok((a, b))
        })
        .await
        .unwrap();
        assert!(a.is_finished() && b.is_finished());
        assert_eq!(a.result(), Ok(1));
        assert_eq!(b.result(), Ok("two"));
    }
}

spec! {
    /// §1a.1: inside the scope, awaiting a handle gives the task's value.
    async fn awaiting_a_handle_inside_the_scope_gives_the_value() {
        let sum = TaskGroup::<BoxError>::scope(|tg| async move {
            let a = tg.spawn(async { Ok(20) })?;
            let b = tg.spawn(async {
                sleep(ms(5)).await;
                Ok(22)
            })?;
            Ok(a.await? + b.await?)
        })
        .await
        .unwrap();
        assert_eq!(sum, 42);
    }
}

spec! {
    /// §1a.2: tasks may be spawned anywhere in the body, including after awaits.
    async fn tasks_can_be_spawned_after_awaits_in_the_body() {
        let count = Counter::new();
        let c = count.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            for _ in 0..3 {
                sleep(ms(5)).await;
                let c = c.clone();
                tg.spawn(async move {
                    c.incr();
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(count.get(), 3);
    }
}

spec! {
    /// §1a.3: a task can spawn siblings into its group while the scope waits for it.
    async fn tasks_can_spawn_siblings_while_the_scope_waits() {
        let count = Counter::new();
        let c = count.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(async move {
                sleep(ms(10)).await; // the body has returned by now
                group.spawn(async move {
                    sleep(ms(10)).await;
                    c.incr();
                    Ok(())
                })?;
                Ok(())
            })?;
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(count.get(), 1);
    }
}

spec! {
    /// §1a.4: finished tasks leave the group as they finish, not only at exit.
    async fn finished_tasks_leave_the_group_as_they_finish() {
        let (first, second) = (Latch::new(), Latch::new());
        TaskGroup::<BoxError>::scope(|tg| async move {
            for latch in [&first, &second] {
                let released = latch.clone();
                tg.spawn(async move {
                    released.wait().await;
                    Ok(())
                })?;
            }
            assert_eq!(tg.len(), 2);
            first.set();
            eventually(Duration::from_secs(10), || tg.len() == 1).await;
            second.set();
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// §1a.5, §1b.15: a task's name reaches its handle, its failure, and the cancel reason
    /// its siblings see; the reason names the first failure.
    async fn task_names_reach_handles_failures_and_cancel_reasons() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = Counter::new();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let s = started.clone();
            let watcher = tg.spawn_named("watcher", async move {
                s.incr();
                let _ = tx.send(aio::cancelled().await);
                Ok(())
            })?;
            assert_eq!(watcher.name(), Some("watcher"));
            tg.spawn_named("fetch-7", fail_after_started(started, 1, ms(5), "refused"))?;
            tg.spawn_named("fetch-8", fail_after(FOREVER, "too late"))?;
            Ok(())
        })
        .await
        .unwrap_err();
        let failure = err.first().unwrap();
        assert_eq!(failure.name(), Some("fetch-7"));
        assert_eq!(messages(&err), ["refused"]);
        let seen = rx.await.unwrap();
        match seen.reason() {
            CancelReason::SiblingFailed { task, name, .. } => {
                assert_eq!(*task, failure.task_id());
                assert_eq!(name.as_deref(), Some("fetch-7"));
            }
            other => panic!("unexpected reason {other:?}"),
        }
        assert!(seen.to_string().contains("'fetch-7' failed"), "{seen}");
    }
}

spec! {
    /// §1a.7: spawning into a finished group is an error, and the future is dropped unpolled.
    async fn spawning_into_a_finished_group_is_refused_and_drops_the_future() {
        let tg = TaskGroup::<BoxError>::scope(|tg| async move { Ok(tg) })
            .await
            .unwrap();
        let dropped = DropFlag::new();
        let guard = dropped.guard();
        let ran = Counter::new();
        let r = ran.clone();
        let err = tg
            .spawn(async move {
                let _guard = guard;
                r.incr();
                Ok(())
            })
            .unwrap_err();
        assert_eq!(err, SpawnError::Finished);
        assert_eq!(err.to_string(), "cannot spawn into a task group that has finished");
        assert!(dropped.dropped());
        assert_eq!(ran.get(), 0);
    }
}

spec! {
    /// §1a.8, §1i.50: after `cancel()` the group refuses new tasks.
    async fn spawning_after_cancel_is_refused() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            let err = tg.spawn(async { Ok(()) }).unwrap_err();
            match &err {
                SpawnError::ShuttingDown(c) => assert_eq!(c.reason(), &CancelReason::Explicit),
                other => panic!("unexpected {other:?}"),
            }
            assert!(err.to_string().starts_with("cannot spawn into a task group that is shutting down"));
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// §1a.8 (gh-94398): after a task failed, a sibling unwinding cannot spawn new tasks.
    async fn spawning_after_a_failure_is_refused() {
        let refused = Arc::new(Mutex::new(None));
        let slot = refused.clone();
        let started = Counter::new();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(on_cancel(running_forever::<()>(started.clone()), move |_| async move {
                *slot.lock().unwrap() = Some(group.spawn(async { Ok(()) }).unwrap_err());
                Ok(())
            }))?;
            tg.spawn(fail_after_started(started, 1, ms(5), "boom"))?;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["boom"]);
        let refused = refused.lock().unwrap().take().unwrap();
        assert!(matches!(
            refused,
            SpawnError::ShuttingDown(c) if matches!(c.reason(), CancelReason::SiblingFailed { .. })
        ));
    }
}

spec! {
    /// Required: a task's error promptly cancels a sibling blocked in
    /// `std::future::pending()` and one blocked in a Tokio sleep (§1b.12).
    async fn a_failure_promptly_cancels_siblings_in_pending_and_in_sleep() {
        let start = Instant::now();
        let in_pending = DropFlag::new();
        let in_sleep = DropFlag::new();
        let (g1, g2) = (in_pending.guard(), in_sleep.guard());
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(async move {
                let _guard = g1;
                pending_forever::<()>().await
            })?;
            tg.spawn(async move {
                let _guard = g2;
                sleep_forever::<()>().await
            })?;
            tg.spawn(fail_after(ms(10), "boom"))?;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["boom"]);
        assert!(in_pending.dropped() && in_sleep.dropped());
        assert_elapsed(start, ms(10));
    }
}

spec! {
    /// §1b.12: a task's failure cancels the body at the await it is suspended on; code
    /// after it never runs.
    async fn a_failure_cancels_the_body_at_its_await() {
        let log = Log::new();
        let l = log.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(fail_after(ms(10), "boom"))?;
            sleep(FOREVER).await;
            l.push("after the await");
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["boom"]);
        assert!(!log.contains("after the await"));
    }
}

spec! {
    /// Required, §1b.13: two tasks failing in the same tick are both collected. Both are
    /// woken by the same event; the second has already started, so the first failure's
    /// cancellation reaches it only at its next await and its error is not lost.
    async fn two_tasks_failing_in_the_same_tick_are_both_collected() {
        let gate = Gate::new();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            for msg in ["first", "second"] {
                let gate = gate.clone();
                tg.spawn(async move {
                    gate.wait().await;
                    Err::<(), BoxError>(msg.into())
                })?;
            }
            gate.until_waiting(2).await;
            gate.open();
            Ok(())
        })
        .await
        .unwrap_err();
        let mut failures = messages(&err);
        failures.sort();
        assert_eq!(failures, ["first", "second"]);
    }
}

spec! {
    /// Required, §1b.17 (gh-95704): a task that fails while cleaning up after the group's
    /// cancellation adds its error.
    async fn a_task_failing_during_its_cleanup_is_collected() {
        let started = Counter::new();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(on_cancel(running_forever::<()>(started.clone()), |_| async {
                sleep(ms(5)).await;
                Err("cleanup failed".into())
            }))?;
            tg.spawn(fail_after_started(started, 1, ms(10), "boom"))?;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["boom", "cleanup failed"]);
    }
}

spec! {
    /// §1b.14: a task that ends cancelled (here: it passes its own inner group's
    /// cancellation up with `?`) adds nothing and cancels nobody.
    async fn a_task_that_ends_cancelled_adds_nothing_and_cancels_nobody() {
        let (cancelled, sibling) = TaskGroup::<BoxError>::scope(|tg| async move {
            let cancelled = tg.spawn(async {
                TaskGroup::<BoxError>::scope(|inner| async move {
                    inner.cancel();
                    sleep_forever::<()>().await
                })
                .await?;
                Ok(())
            })?;
            let sibling = tg.spawn(async {
                sleep(ms(20)).await;
                Ok("sibling done")
            })?;
            Ok((cancelled, sibling))
        })
        .await
        .unwrap();
        assert!(matches!(cancelled.result(), Err(TaskError::Cancelled(_))));
        assert_eq!(sibling.result(), Ok("sibling done"));
    }
}

spec! {
    /// §1b.16 (gh-128588): a group that failed does not leave its caller cancelled.
    async fn a_failed_group_does_not_cancel_its_caller() {
        let out = TaskGroup::<BoxError>::scope(|_outer| async move {
            let inner = TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(fail_after(ms(1), "boom"))?;
                Ok(())
            })
            .await;
            assert!(inner.is_err());
            assert!(!aio::is_cancelled());
            sleep(ms(5)).await;
            Ok("continued")
        })
        .await
        .unwrap();
        assert_eq!(out, "continued");
    }
}

spec! {
    /// §1b.18: failures come in completion order, the body's own error last.
    async fn failures_are_in_completion_order_with_the_body_last() {
        let log = Log::new();
        let started = Counter::new();
        let (fast_tx, fast_rx) = tokio::sync::oneshot::channel::<TaskHandle<()>>();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            // Spawned first, fails last: its cleanup ends only once the fast one's failure
            // is in, an order of cause that its 10 ms more of sleep cannot promise.
            tg.spawn(on_cancel(running_forever::<()>(started.clone()), |_| async {
                sleep(ms(20)).await;
                let mut fast = vec![fast_rx.await.unwrap()];
                aio::wait(&mut fast, ReturnWhen::AllCompleted).await;
                Err("slow cleanup".into())
            }))?;
            let fast = tg.spawn(on_cancel(running_forever::<()>(started.clone()), |_| async {
                sleep(ms(10)).await;
                Err("fast cleanup".into())
            }))?;
            fast_tx.send(fast).unwrap();
            tg.spawn(cleans_up(&log, ms(1), "clean", &started))?;
            started.until(3).await;
            sleep(ms(5)).await;
            Err::<(), _>("body".into())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["fast cleanup", "slow cleanup", "body"]);
        assert!(err.iter().last().unwrap().is_body());
        assert!(err.iter().take(2).all(|f| !f.is_body() && f.task_id().is_some()));
    }
}

spec! {
    /// Required, §1c.19: a body error cancels the tasks, waits for their cleanup, and is
    /// included in the error.
    async fn a_body_error_cancels_the_tasks_and_is_included() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(cleans_up(&l, ms(5), "task cleaned up", &started))?;
            started.until(1).await;
            sleep(ms(1)).await;
            Err::<(), _>("body failed".into())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["body failed"]);
        assert!(err.first().unwrap().is_body());
        assert!(log.contains("task cleaned up"));
    }
}

spec! {
    /// §1c.20: a body that fails before its first await stops its tasks before they start
    /// (on a multi-thread runtime another worker may already have started some).
    async fn a_body_failing_before_its_first_await_stops_tasks_before_they_start() {
        let ran = Counter::new();
        let r = ran.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            for _ in 0..3 {
                let r = r.clone();
                tg.spawn(async move {
                    r.incr();
                    sleep_forever::<()>().await
                })?;
            }
            Err::<(), _>("early".into())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["early"]);
        if paused() {
            assert_eq!(ran.get(), 0);
        }
    }
}

spec! {
    /// §1c.22: a body that turns its cancellation into another error (here: its cleanup
    /// fails) reports that error.
    async fn a_body_whose_cleanup_fails_reports_that_error() {
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(fail_after(ms(5), "task failed"))?;
            on_cancel(sleep_forever::<()>(), |_| async { Err("body cleanup failed".into()) }).await
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["task failed", "body cleanup failed"]);
    }
}

spec! {
    /// §1d.23, §1e.30: an outer cancellation while the body awaits cancels the tasks, and
    /// the group reports it as a cancellation, not a failure.
    async fn an_outer_cancel_unwinds_the_group_as_cancelled() {
        let inner_result = Arc::new(Mutex::new(None));
        let slot = inner_result.clone();
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        TaskGroup::<BoxError>::scope(|outer| async move {
            let canceller = outer.clone();
            let s = started.clone();
            outer.spawn(async move {
                s.until(1).await;
                sleep(ms(10)).await;
                canceller.cancel();
                Ok(())
            })?;
            let inner = TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(cleans_up(&l, ms(5), "inner task cleaned up", &started))?;
                sleep_forever::<()>().await
            })
            .await;
            *slot.lock().unwrap() = Some(inner);
            Ok(())
        })
        .await
        .unwrap();
        let inner = inner_result.lock().unwrap().take().unwrap().unwrap_err();
        assert!(inner.is_cancelled() && inner.is_empty());
        let cancelled = inner.as_cancelled().unwrap();
        assert_eq!(cancelled.reason(), &CancelReason::ParentCancelled);
        assert_eq!(cancelled.origin(), &CancelReason::Explicit);
        assert!(log.contains("inner task cleaned up"));
    }
}

spec! {
    /// §1d.24: an outer cancellation that arrives while the scope waits for its tasks
    /// (the body has returned) cancels them and is reported after they finish.
    async fn an_outer_cancel_while_waiting_for_tasks_is_reported() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let s = started.clone();
        let r = timeout_once_started(
            &started,
            1,
            ms(10),
            TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(cleans_up(&l, ms(5), "cleaned up", &s))?;
                Ok("body returned")
            }),
        )
        .await;
        assert!(r.is_err(), "the timeout reports its deadline: {r:?}");
        assert!(log.contains("cleaned up"));
    }
}

spec! {
    /// §1d.25, §3e.35 (gh-95704): cleanup failures under an outer cancellation are
    /// reported as failures; they take priority over the cancellation.
    async fn cleanup_failures_under_an_outer_cancel_take_priority() {
        let started = Counter::new();
        let s = started.clone();
        let r = timeout_once_started(
            &started,
            1,
            ms(10),
            TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(on_cancel(running_forever::<()>(s), |_| async {
                    Err("cleanup crashed".into())
                }))?;
                Ok(())
            }),
        )
        .await;
        let err = r.expect("failures are not converted to Elapsed").unwrap_err();
        assert!(!err.is_cancelled());
        assert_eq!(messages(&err), ["cleanup crashed"]);
    }
}

spec! {
    /// §1d.26-27 (gh-116720), level-triggered: after a group reports failures under an
    /// outer cancellation, that cancellation still applies at the caller's next await.
    async fn an_outer_cancel_survives_an_inner_failure() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let s = started.clone();
        let r = timeout_once_started(&started, 1, ms(10), async move {
            let inner = TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(on_cancel(running_forever::<()>(s), |_| async {
                    Err("cleanup crashed".into())
                }))?;
                Ok(())
            })
            .await;
            assert!(!inner.unwrap_err().is_cancelled());
            l.push("handled");
            sleep(FOREVER).await;
            l.push("not reached");
        })
        .await;
        assert!(r.is_err());
        assert_eq!(log.events(), ["handled"]);
    }
}

spec! {
    /// §1e.30: an outer cancellation with no failures unwinds nested groups, deepest
    /// cleanup first, and ends as a cancellation.
    async fn an_outer_cancel_unwinds_nested_groups() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let s = started.clone();
        let r = timeout_once_started(
            &started,
            2,
            ms(10),
            TaskGroup::<BoxError>::scope(|outer| async move {
                let (l2, s2) = (l.clone(), s.clone());
                outer.spawn(async move {
                    TaskGroup::<BoxError>::scope(|inner| async move {
                        inner.spawn(cleans_up(&l2, ms(5), "inner task cleaned up", &s2))?;
                        Ok(())
                    })
                    .await?;
                    Ok(())
                })?;
                outer.spawn(cleans_up(&l, ms(1), "outer task cleaned up", &s))?;
                Ok(())
            }),
        )
        .await;
        assert!(r.is_err());
        let mut events = log.events();
        events.sort();
        assert_eq!(events, ["inner task cleaned up", "outer task cleaned up"]);
    }
}

spec! {
    /// §1e.31: an inner group's error becomes one failure of the outer group.
    async fn an_inner_group_error_is_one_failure_of_the_outer_group() {
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn_named("inner", async {
                TaskGroup::<BoxError>::scope(|inner| async move {
                    inner.spawn(fail_after(ms(1), "deep"))?;
                    Ok(())
                })
                .await?;
                Ok(())
            })?;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err.first().unwrap().name(), Some("inner"));
        let (groups, rest) = err.split_by::<TaskGroupError<BoxError>>();
        assert!(rest.is_none());
        let inner = groups.unwrap().into_errors().remove(0);
        assert_eq!(messages(&inner), ["deep"]);
    }
}

spec! {
    /// Required, §1e.32: when an outer task fails, the cleanup of the tasks of a group
    /// nested in a sibling runs before the outer group returns, and the outer error holds
    /// only the outer failure.
    async fn an_outer_failure_runs_nested_task_cleanup_before_returning() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let s = started.clone();
            tg.spawn(async move {
                TaskGroup::<BoxError>::scope(|inner| async move {
                    for i in 0..3 {
                        inner.spawn(cleans_up(&l, ms(5 * (i + 1)), &format!("cleanup {i}"), &s))?;
                    }
                    Ok(())
                })
                .await?;
                Ok(())
            })?;
            tg.spawn(fail_after_started(started, 3, ms(10), "outer failed"))?;
            Ok(())
        })
        .await
        .unwrap_err();
        // All three, in any order: their 5 ms steps do not order them in real time.
        let mut events = log.events();
        events.sort();
        assert_eq!(events, ["cleanup 0", "cleanup 1", "cleanup 2"]);
        assert_eq!(messages(&err), ["outer failed"]);
    }
}

spec! {
    /// §1e.33 (gh-116720): an inner and an outer task failing at once are both reported,
    /// the inner one inside its group's error.
    async fn inner_and_outer_failures_at_once_are_both_reported() {
        let gate = Gate::new();
        let outer_gate = gate.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let inner_gate = gate.clone();
            tg.spawn(async move {
                TaskGroup::<BoxError>::scope(|inner| async move {
                    inner.spawn(async move {
                        inner_gate.wait().await;
                        Err::<(), BoxError>("inner".into())
                    })?;
                    Ok(())
                })
                .await?;
                Ok(())
            })?;
            tg.spawn(async move {
                outer_gate.wait().await;
                Err::<(), BoxError>("outer".into())
            })?;
            gate.until_waiting(2).await;
            gate.open();
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(err.len(), 2);
        let (groups, rest) = err.split_by::<TaskGroupError<BoxError>>();
        assert_eq!(messages(&rest.unwrap()), ["outer"]);
        let inner = groups.unwrap().into_errors().remove(0);
        assert_eq!(messages(&inner), ["inner"]);
    }
}

spec! {
    /// Required, §1f.37 (gh-102572): a panicking task cancels its siblings, and the panic
    /// reaches the caller only after they have finished their cleanup.
    async fn a_panicking_task_cancels_siblings_and_is_reraised_after_them() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let outcome = AssertUnwindSafe(TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(cleans_up(&l, ms(20), "sibling cleaned up", &started))?;
            tg.spawn(async move {
                started.until(1).await;
                sleep(ms(10)).await;
                if true {
                    panic!("task panicked");
                }
                Ok(())
            })?;
            Ok(())
        }))
        .catch_unwind()
        .await;
        let payload = outcome.expect_err("the panic is re-raised");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"task panicked"));
        assert!(log.contains("sibling cleaned up"));
    }
}

spec! {
    /// §1f.34: a panicking body cancels the tasks, waits for them, then re-raises.
    async fn a_panicking_body_is_reraised_after_the_tasks_finish() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let outcome = AssertUnwindSafe(TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(cleans_up(&l, ms(5), "task cleaned up", &started))?;
            started.until(1).await;
            sleep(ms(1)).await;
            if true {
                panic!("body panicked");
            }
            Ok(())
        }))
        .catch_unwind()
        .await;
        let payload = outcome.expect_err("the panic is re-raised");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"body panicked"));
        assert!(log.contains("task cleaned up"));
    }
}

spec! {
    /// A panic takes priority over failures, and a panicking task's handle says so.
    async fn a_panic_takes_priority_over_failures() {
        let started = Counter::new();
        let outcome = AssertUnwindSafe(TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(fail_after_started(started.clone(), 1, ms(1), "boom"))?;
            tg.spawn(on_cancel(running_forever::<()>(started), |_| async {
                panic!("cleanup panicked");
            }))?;
            Ok(())
        }))
        .catch_unwind()
        .await;
        let payload = outcome.expect_err("the panic is re-raised");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"cleanup panicked"));
    }
}

/// A hand-written future that is ready at once and holds its value until it is dropped.
/// (An `async` block drops what it holds as it returns, inside its last poll.)
struct ReadyHolding<V>(V);

impl<V: Unpin> std::future::Future for ReadyHolding<V> {
    type Output = Result<(), BoxError>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::task::Poll::Ready(Ok(()))
    }
}

/// Sleeps in its destructor, then sets its flag: a late drop shows up as an unset flag.
struct SlowDrop(DropGuard);

impl Drop for SlowDrop {
    fn drop(&mut self) {
        std::thread::sleep(ms(20));
        let _ = &self.0;
    }
}

/// Polls `fut` to completion on the calling thread, which parks between polls: a waiter
/// that no Tokio scheduler delays.
fn block_on_thread<F: std::future::Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);

    impl std::task::Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut fut = std::pin::pin!(fut);
    loop {
        if let std::task::Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

spec! {
    /// A task's future, with everything it holds, is dropped before its handle or its
    /// group sees it finish. The handle is awaited from a thread of its own, so it would
    /// see a report made before the drop at once.
    async fn a_task_is_dropped_before_its_end_is_reported() {
        let (by_handle, by_scope) = (DropFlag::new(), DropFlag::new());
        let (g1, g2) = (SlowDrop(by_handle.guard()), SlowDrop(by_scope.guard()));
        TaskGroup::<BoxError>::scope(|tg| async move {
            let handle = tg.spawn(ReadyHolding(g1))?;
            tg.spawn(ReadyHolding(g2))?;
            let watcher = std::thread::spawn(move || {
                block_on_thread(handle.into_future()).unwrap();
                by_handle.dropped()
            });
            let dropped = tokio::task::spawn_blocking(move || watcher.join().unwrap()).await?;
            assert!(dropped, "the handle saw the task end before its future was dropped");
            Ok(())
        })
        .await
        .unwrap();
        assert!(by_scope.dropped(), "the scope returned before a task was dropped");
    }
}

/// Panics in its destructor.
struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("destructor panicked");
    }
}

spec! {
    /// A task whose future panics while it is dropped, after it returned, has panicked:
    /// its group is cancelled and re-raises a panic once the others are done.
    async fn a_panic_while_dropping_a_finished_task_is_reraised() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let outcome = AssertUnwindSafe(TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(cleans_up(&l, ms(5), "sibling cleaned up", &started))?;
            started.until(1).await;
            tg.spawn(ReadyHolding(PanicOnDrop))?;
            Ok(())
        }))
        .catch_unwind()
        .await;
        let payload = outcome.expect_err("the panic is re-raised");
        assert_eq!(
            payload.downcast_ref::<&str>(),
            Some(&"a task's future panicked while it was dropped")
        );
        assert!(log.contains("sibling cleaned up"));
    }
}

/// A group run while the thread unwinds for another reason (a test's teardown, after a
/// failed assertion) still reports each task as it ended: a task's end is not taken for a
/// panic of its own.
#[test]
fn a_group_run_while_the_thread_unwinds_reports_tasks_as_they_ended() {
    struct Teardown(Arc<Mutex<Option<Result<u32, String>>>>);

    impl Drop for Teardown {
        fn drop(&mut self) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let scoped = rt.block_on(TaskGroup::<BoxError>::scope(|tg| async move {
                Ok(tg.spawn(async { Ok(7) })?)
            }));
            let seen = scoped
                .map(|handle| handle.result().unwrap())
                .map_err(|e| e.to_string());
            *self.0.lock().unwrap() = Some(seen);
        }
    }

    let seen = Arc::new(Mutex::new(None));
    let teardown = Teardown(seen.clone());
    let unwound = std::panic::catch_unwind(move || {
        let _teardown = teardown;
        panic!("the test failed");
    });
    assert!(unwound.is_err());
    assert_eq!(*seen.lock().unwrap(), Some(Ok(7)));
}

spec! {
    /// §1g.42 (gh-155418): a task that cancels its group before its first await does not
    /// hang the group.
    async fn a_task_cancelling_its_group_before_its_first_await_does_not_hang() {
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(async move {
                group.cancel();
                Ok(())
            })?;
            tg.spawn(sleep_forever::<()>())?;
            sleep_forever::<()>().await
        })
        .await
        .unwrap_err();
        assert_eq!(err.as_cancelled().unwrap().reason(), &CancelReason::Explicit);
    }
}

spec! {
    /// §1h.44 (gh-128552): a finished group holds on to nothing its tasks owned, even if a
    /// handle to the group outlives it.
    async fn a_finished_group_holds_no_references() {
        let payload = Arc::new(());
        let p = payload.clone();
        let leaked = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(async move {
                let _p = p;
                Err::<(), BoxError>("fails".into())
            })?;
            sleep_forever::<()>().await?;
            Ok(tg)
        })
        .await;
        assert!(leaked.is_err());
        assert_eq!(Arc::strong_count(&payload), 1);
    }
}

spec! {
    /// §1i.46: `cancel()` ends the group with no error; if the body had returned, its value
    /// is kept.
    async fn cancel_ends_the_group_without_an_error() {
        let out = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(sleep_forever::<()>())?;
            let group = tg.clone();
            tg.spawn(async move {
                sleep(ms(5)).await;
                group.cancel();
                Ok(())
            })?;
            Ok("body done")
        })
        .await
        .unwrap();
        assert_eq!(out, "body done");
    }
}

spec! {
    /// §1i.46: a body cut off by `cancel()` has no value to give: the scope reports the
    /// explicit cancellation, with no failure.
    async fn cancel_cutting_off_the_body_reports_the_cancellation() {
        let start = Instant::now();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(async move {
                sleep(ms(5)).await;
                group.cancel();
                Ok(())
            })?;
            sleep_forever::<()>().await
        })
        .await
        .unwrap_err();
        assert!(err.is_cancelled() && err.is_empty());
        assert_eq!(err.as_cancelled().unwrap().reason(), &CancelReason::Explicit);
        assert_eq!(err.to_string(), "task group cancelled: cancelled explicitly");
        assert_elapsed(start, ms(5));
    }
}

spec! {
    /// §1i.48: `cancel()` is idempotent, and a no-op after the group has finished.
    async fn cancel_is_idempotent_and_a_noop_after_exit() {
        let tg = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            tg.cancel();
            Ok(tg)
        })
        .await
        .unwrap();
        tg.cancel();
        assert!(!aio::is_cancelled());
    }
}

spec! {
    /// §1i.49: `cancel()` does not hide failures raised while the tasks unwind.
    async fn cancel_does_not_hide_failures_during_unwinding() {
        let started = Counter::new();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(on_cancel(running_forever::<()>(started.clone()), |_| async {
                Err("cleanup failed".into())
            }))?;
            started.until(1).await;
            sleep(ms(1)).await;
            tg.cancel();
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["cleanup failed"]);
    }
}

spec! {
    /// §1i.51: a group ended by `cancel()` does not cancel its caller.
    async fn cancel_does_not_leak_into_the_caller() {
        let out = TaskGroup::<BoxError>::scope(|_outer| async move {
            let inner = TaskGroup::<BoxError>::scope(|tg| async move {
                tg.cancel();
                sleep_forever::<()>().await
            })
            .await;
            assert!(inner.unwrap_err().is_cancelled());
            sleep(ms(1)).await;
            Ok("caller continued")
        })
        .await
        .unwrap();
        assert_eq!(out, "caller continued");
    }
}

spec! {
    /// `split` partitions failures by a predicate, keeping order: `except*`.
    async fn split_partitions_failures_like_except_star() {
        let gate = Gate::new();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            for msg in ["io: a", "parse: b", "io: c"] {
                let gate = gate.clone();
                tg.spawn(async move {
                    gate.wait().await;
                    Err::<(), BoxError>(msg.into())
                })?;
            }
            gate.until_waiting(3).await;
            gate.open();
            Ok(())
        })
        .await
        .unwrap_err();
        let (io, rest) = err.split(|e| e.to_string().starts_with("io"));
        let mut io = messages(&io.unwrap());
        io.sort();
        assert_eq!(io, ["io: a", "io: c"]);
        assert_eq!(messages(&rest.unwrap()), ["parse: b"]);
    }
}

/// Delivery at the next suspension: a started task that is cancelled is polled once more, so
/// an await that had already completed when the cancellation arrived (here a yield that was
/// rescheduled) is kept, and the task is dropped at the first await that suspends. (asyncio
/// would raise at the yield; aio never throws away a completed await.)
#[tokio::test(start_paused = true)]
async fn a_completed_await_is_kept_and_the_next_one_is_cancelled() {
    let log = Log::new();
    let l = log.clone();
    let err = TaskGroup::<BoxError>::scope(|tg| async move {
        let group = tg.clone();
        tg.spawn(async move {
            group.cancel();
            Ok(())
        })?;
        tokio::task::yield_now().await; // the sibling cancels the group meanwhile
        l.push("after the yield");
        sleep(ms(1)).await;
        l.push("after the sleep");
        Ok(())
    })
    .await
    .unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(log.events(), ["after the yield"]);
}

spec! {
    /// Awaiting the handle of a task that failed passes a cancellation up (the group is
    /// being cancelled by that failure, as in asyncio), so the failure is reported once.
    async fn awaiting_a_failed_task_reports_the_failure_once() {
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let failing = tg.spawn_named("failing", fail_after(ms(5), "boom"))?;
            failing.await?;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["boom"]);
        assert_eq!(err.first().unwrap().name(), Some("failing"));
    }
}

spec! {
    /// A handle says how its task ended, and the cancellation it stands for.
    async fn handles_say_how_their_task_ended() {
        let mut handles = Vec::new();
        let started = Counter::new();
        let err = TaskGroup::<BoxError>::scope(|tg| {
            let handles = &mut handles;
            async move {
                // Started means done: it finishes in its first poll, before the failure.
                let s = started.clone();
                handles.push(tg.spawn(async move {
                    s.incr();
                    Ok("done")
                })?);
                let broken = fail_after_started(started, 1, ms(5), "boom");
                handles.push(tg.spawn_named("broken", broken.map(|r| r.map(|()| "")))?);
                handles.push(tg.spawn(sleep_forever::<&str>())?);
                Ok(())
            }
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["boom"]);
        let results: Vec<_> = handles.into_iter().map(|h| h.result()).collect();
        assert_eq!(results[0], Ok("done"));
        let Err(TaskError::Failed(failed)) = &results[1] else {
            panic!("{:?}", results[1])
        };
        assert!(matches!(
            failed.reason(),
            CancelReason::SiblingFailed { name: Some(name), .. } if &**name == "broken"
        ));
        let Err(cancelled @ TaskError::Cancelled(_)) = &results[2] else {
            panic!("{:?}", results[2])
        };
        assert!(cancelled.as_cancelled().is_some());
        assert_eq!(TaskError::NotFinished.as_cancelled(), None);
    }
}

spec! {
    /// §1a.4: a long-lived group does not keep what its finished tasks owned, even when it
    /// stops spawning.
    async fn a_long_lived_group_does_not_hoard_finished_tasks() {
        let payload = Arc::new(());
        let p = payload.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            for _ in 0..3000 {
                let p = p.clone();
                tg.spawn(async move {
                    let _p = p;
                    Ok(())
                })?;
            }
            // Idle while the tasks finish: whatever they owned is released as they go,
            // apart from a bounded batch waiting to be freed by the spawning side.
            while !tg.is_empty() {
                sleep(ms(1)).await;
            }
            assert!(Arc::strong_count(&p) <= 1100, "{}", Arc::strong_count(&p));
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(Arc::strong_count(&payload), 1);
    }
}

spec! {
    /// §1d (3.15), §0.13: `tg.cancel_with(msg)` ends the group like `cancel()`, and every
    /// cancellation it delivers carries the message: the group's own error, what its tasks
    /// see, and what a group nested inside sees as inherited.
    async fn cancel_with_carries_its_message_to_every_cancellation_of_the_group() {
        let seen = Log::new();
        let s = seen.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let s2 = s.clone();
            tg.spawn(async move {
                let c = aio::cancelled().await;
                s2.push(format!("task: {c}"));
                Ok(())
            })?;
            tg.spawn(async move {
                TaskGroup::<BoxError>::scope(|_inner| async move {
                    let c = aio::cancelled().await;
                    s.push(format!("nested: {c}"));
                    Err(c.into())
                })
                .await?;
                Ok(())
            })?;
            sleep(ms(1)).await;
            tg.cancel_with("shutting down for maintenance");
            tg.cancel_with("a later message is ignored");
            sleep_forever::<()>().await
        })
        .await
        .unwrap_err();
        let cancelled = err.as_cancelled().unwrap();
        assert_eq!(cancelled.reason(), &CancelReason::Explicit);
        assert_eq!(cancelled.message(), Some("shutting down for maintenance"));
        assert_eq!(
            err.to_string(),
            "task group cancelled: shutting down for maintenance"
        );
        let mut events = seen.events();
        events.sort();
        assert_eq!(
            events,
            [
                "nested: cancelled: an enclosing scope was cancelled (shutting down for maintenance)",
                "task: cancelled: shutting down for maintenance",
            ]
        );
    }
}

spec! {
    /// A group's error carrying a cancellation is a cancellation whatever its error type:
    /// boxed into the `BoxError` of an outer group (with `?`), a `TaskGroupError<io::Error>`
    /// that was cancelled adds nothing to the outer group's report.
    async fn a_boxed_cancelled_group_error_is_a_cancellation_for_every_error_type() {
        let out = TaskGroup::<BoxError>::scope(|tg| async move {
            let task = tg.spawn(async {
                TaskGroup::<std::io::Error>::scope(|inner| async move {
                    inner.cancel();
                    sleep_forever::<()>().await.map_err(std::io::Error::other)
                })
                .await?;
                Ok(())
            })?;
            Ok(task.await)
        })
        .await
        .expect("the outer group did not fail");
        assert!(matches!(out, Err(TaskError::Cancelled(_))), "{out:?}");
    }
}

/// Counts itself in `dropped` when dropped: proves a level's future was dropped.
struct Dropped(Counter);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.incr();
    }
}

/// Level `k` of a chain of groups: a group whose one task is level `k - 1`; level 0 counts
/// itself in `ready`, sleeps an hour and, when cancelled, logs its reason.
fn chain_level(
    k: usize,
    ready: Counter,
    dropped: Counter,
    log: Log,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), BoxError>> + Send>> {
    Box::pin(async move {
        let _guard = Dropped(dropped.clone());
        if k == 0 {
            ready.incr();
            return on_cancel(
                async {
                    sleep(FOREVER).await;
                    Ok::<(), aio::Cancelled>(())
                },
                move |cancelled| async move {
                    log.push(format!("bottom: {:?}", cancelled.reason()));
                    Ok(())
                },
            )
            .await
            .map_err(BoxError::from);
        }
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(chain_level(k - 1, ready, dropped, log))?;
            Ok(())
        })
        .await
        .map_err(BoxError::from)
    })
}

spec! {
    /// Cancelling the top of a chain of groups thousands of levels deep, one task per level,
    /// reaches the bottom and unwinds every level: delivery walks no chain of ancestors and
    /// wakes the levels without recursion, so depth costs neither time per level nor stack.
    async fn cancelling_the_top_of_a_deep_chain_of_groups_unwinds_every_level() {
        const DEPTH: usize = 3_000;
        let (ready, dropped, log) = (Counter::new(), Counter::new(), Log::new());
        let (top_ready, top_dropped, top_log) = (ready.clone(), dropped.clone(), log.clone());
        let out = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(chain_level(DEPTH, top_ready.clone(), top_dropped, top_log))?;
            top_ready.until(1).await;
            assert!(!aio::is_cancelled());
            tg.cancel();
            Ok(())
        })
        .await;
        assert!(out.is_ok(), "{out:?}");
        assert_eq!(dropped.get(), DEPTH + 1, "every level was dropped");
        assert_eq!(log.events(), ["bottom: ParentCancelled"]);
    }
}
