//! Timeouts (§3) and `wait_for` (§4).
//!
//! Not applicable: entering a timeout twice or outside a task (§3a.6-7), the `__cause__` and
//! `__context__` chains (§3b.9, 17), the cancel counter (§3c.19; its observable rules are
//! tested in level-triggered form), call-graph edges (§4.15). Deliberate difference:
//! rescheduling before the timeout starts is allowed (§3d.29).
//!
//! Which scope reports a cancellation: a timeout turns only a cancellation into `Elapsed`,
//! only for its own deadline, and only when no scope around it is cancelled too; otherwise
//! the cancellation passes through it and the code after it never runs.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{
    BoxError, CancelReason, Cancelled, RescheduleError, TaskGroup, Timeout, on_cancel, shield,
    shield_detached, timeout, timeout_at, timeout_scope, wait_for,
};
use tokio::time::{Instant, sleep, sleep_until};

use crate::support::*;

spec! {
    /// §3b.8: when the deadline passes during an await, the future is cancelled there and
    /// the timeout reports `Elapsed`.
    async fn a_deadline_passing_during_an_await_reports_elapsed() {
        let start = Instant::now();
        let log = Log::new();
        let l = log.clone();
        let r = timeout(ms(10), async move {
            sleep(FOREVER).await;
            l.push("after the await");
        })
        .await;
        assert_eq!(r.unwrap_err().to_string(), "deadline has elapsed");
        assert!(log.events().is_empty());
        assert_elapsed(start, ms(10));
    }
}

spec! {
    /// §3a.1-3: `timeout` sets the deadline relative to now, `timeout_at` absolutely; the
    /// handle reports it.
    async fn deadlines_are_relative_or_absolute() {
        let before = Instant::now();
        let fut = timeout(Duration::from_secs(5), async { 1 });
        let after = Instant::now();
        let deadline = fut.handle().deadline().unwrap();
        assert!(deadline >= before + Duration::from_secs(5));
        assert!(deadline <= after + Duration::from_secs(5));
        assert_eq!(fut.await, Ok(1));

        let at = Instant::now() + ms(30);
        let fut = timeout_at(at, async { 2 });
        assert_eq!(fut.handle().deadline(), Some(at));
        assert_eq!(fut.await, Ok(2));
    }
}

spec! {
    /// §3a.2, §4.1: no deadline never fires; `wait_for(None, ..)` is a plain await.
    async fn no_deadline_never_fires() {
        let fut = timeout_scope(None, |t: Timeout| async move {
            assert_eq!(t.deadline(), None);
            sleep(ms(50)).await;
            "done"
        });
        assert_eq!(fut.await, Ok("done"));
        assert_eq!(wait_for(None, async {
            sleep(ms(20)).await;
            3
        }).await, Ok(3));
    }
}

spec! {
    /// §3a.4-5: a timeout goes created, active, expiring, expired (or finished);
    /// `expired()` is true while expiring and once expired.
    async fn a_timeout_moves_through_its_states() {
        let seen = Log::new();
        let s = seen.clone();
        let fut = timeout_scope(Instant::now() + ms(10), |t: Timeout| async move {
            s.push(format!("{t:?}"));
            on_cancel(sleep_forever::<()>(), move |_| async move {
                s.push(format!("{t:?} expired={}", t.expired()));
                assert_eq!(t.reschedule(None), Err(RescheduleError::Expiring));
                Ok(())
            })
            .await
        });
        let handle = fut.handle();
        assert!(format!("{handle:?}").contains("created"));
        assert!(fut.await.is_err());
        let events = seen.events();
        assert!(events[0].contains("active"), "{events:?}");
        assert!(events[1].contains("expiring") && events[1].ends_with("expired=true"));
        assert!(handle.expired());
        assert!(format!("{handle:?}").contains("expired"));

        let fut = timeout(FOREVER, async {});
        let handle = fut.handle();
        fut.await.unwrap();
        assert!(!handle.expired());
        assert!(format!("{handle:?}").contains("finished"));
    }
}

spec! {
    /// §3b.10, §3e.36: a zero timeout fires at the first suspension, even one that only
    /// yields, and around a task group too.
    async fn a_zero_timeout_fires_at_the_first_suspension() {
        let r = timeout(Duration::ZERO, tokio::task::yield_now()).await;
        assert!(r.is_err());
        let r = timeout(
            Duration::ZERO,
            TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(async { Ok(()) })?;
                sleep(ms(1)).await;
                Ok(())
            }),
        )
        .await;
        assert!(r.is_err());
    }
}

spec! {
    /// §3b.11: a future that never suspends cannot be interrupted.
    async fn a_future_that_never_suspends_is_not_interrupted() {
        assert_eq!(timeout(Duration::ZERO, async { 5 }).await, Ok(5));
    }
}

spec! {
    /// §3b.13: after a timeout reports `Elapsed`, its caller is not cancelled.
    async fn the_caller_of_an_elapsed_timeout_carries_on() {
        let out = TaskGroup::<BoxError>::scope(|_tg| async move {
            assert!(timeout(ms(1), sleep(FOREVER)).await.is_err());
            assert!(!aio::is_cancelled());
            sleep(ms(5)).await;
            Ok("carried on")
        })
        .await
        .unwrap();
        assert_eq!(out, "carried on");
    }
}

spec! {
    /// §3b.14: an error passes through untouched and the timeout is not expired.
    async fn an_error_passes_through_untouched() {
        let fut = timeout(ms(100), async { Err::<(), &str>("bad") });
        let handle = fut.handle();
        assert_eq!(fut.await, Ok(Err("bad")));
        assert!(!handle.expired());
    }
}

spec! {
    /// §3b.15: an outer cancellation passes through a timeout that has not expired.
    async fn an_outer_cancel_is_not_converted_to_elapsed() {
        let handle = Arc::new(Mutex::new(None));
        let slot = handle.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(async move {
                sleep(ms(5)).await;
                group.cancel();
                Ok(())
            })?;
            let fut = timeout(FOREVER, sleep(FOREVER));
            *slot.lock().unwrap() = Some(fut.handle());
            fut.await?;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(err.as_cancelled().unwrap().reason(), &CancelReason::Explicit);
        let handle = handle.lock().unwrap().take().unwrap();
        assert!(!handle.expired());
        assert!(format!("{handle:?}").contains("finished"));
    }
}

spec! {
    /// §3b.16 (gh-96037), §4.7 (bpo-40607): an error raised while the expired future cleans
    /// up is returned instead of `Elapsed`.
    async fn an_error_during_cleanup_after_expiry_is_returned() {
        let r = timeout(
            ms(10),
            on_cancel(sleep_forever::<()>(), |_| async { Err("cleanup failed".into()) }),
        )
        .await;
        assert_eq!(r.unwrap().unwrap_err().to_string(), "cleanup failed");
        let r = wait_for(
            ms(10),
            on_cancel(sleep_forever::<()>(), |_| async { Err("cleanup failed".into()) }),
        )
        .await;
        assert_eq!(r.unwrap().unwrap_err().to_string(), "cleanup failed");
    }
}

spec! {
    /// §3b.18 (gh-111379), §4.6, §4.8 (gh-86296): a future that finishes without the
    /// cancellation reaching it (its await was shielded) keeps its value; the timeout still
    /// says it expired.
    async fn a_future_that_finishes_despite_expiry_keeps_its_value() {
        let fut = timeout(ms(10), async {
            shield(sleep(ms(20))).await;
            "kept"
        });
        let handle = fut.handle();
        assert_eq!(fut.await, Ok("kept"));
        assert!(handle.expired());
    }
}

spec! {
    /// Required, §3c.21: nested timeouts, the outer firing first: the outer reports
    /// `Elapsed` and the inner did not expire.
    async fn nested_timeouts_the_outer_firing_first() {
        let inner_handle = Arc::new(Mutex::new(None));
        let slot = inner_handle.clone();
        let r = timeout(ms(10), async move {
            let inner = timeout(ms(50), sleep(FOREVER));
            *slot.lock().unwrap() = Some(inner.handle());
            inner.await
        })
        .await;
        assert!(r.is_err(), "the outer timeout reports: {r:?}");
        assert!(!inner_handle.lock().unwrap().take().unwrap().expired());
    }
}

spec! {
    /// Required: nested timeouts, the inner firing first: the inner reports `Elapsed` and
    /// the outer carries on.
    async fn nested_timeouts_the_inner_firing_first() {
        let start = Instant::now();
        // The outer deadline only has to be later than everything inside: seconds later,
        // so that a loaded machine cannot make it the first to fire.
        let r = timeout(ms(10_000), async {
            let inner = timeout(ms(10), sleep(FOREVER)).await;
            assert!(inner.is_err());
            sleep(ms(5)).await;
            "outer finished"
        })
        .await;
        assert_eq!(r, Ok("outer finished"));
        assert_elapsed(start, ms(15));
    }
}

spec! {
    /// §3c.20: nested timeouts with the same deadline: only the outer reports `Elapsed`;
    /// both have expired.
    async fn nested_timeouts_with_one_deadline_report_the_outer() {
        let deadline = Instant::now() + ms(10);
        let inner_handle = Arc::new(Mutex::new(None));
        let slot = inner_handle.clone();
        let outer = timeout_at(deadline, async move {
            let inner = timeout_at(deadline, sleep(FOREVER));
            *slot.lock().unwrap() = Some(inner.handle());
            inner.await
        });
        let outer_handle = outer.handle();
        assert!(outer.await.is_err(), "the outer timeout reports it");
        assert!(outer_handle.expired());
        assert!(inner_handle.lock().unwrap().take().unwrap().expired());
    }
}

spec! {
    /// §3c.20: when nested timeouts fire at the same instant, the inner one lets the
    /// cancellation through: the code after it never runs, and the outer reports `Elapsed`.
    async fn nested_timeouts_with_one_deadline_run_no_code_after_the_inner() {
        let deadline = Instant::now() + ms(10);
        let log = Log::new();
        let l = log.clone();
        let r = timeout_at(deadline, async move {
            let inner = timeout_at(deadline, sleep(FOREVER)).await;
            l.push(format!("after the inner timeout: {inner:?}"));
            sleep(FOREVER).await;
        })
        .await;
        assert!(r.is_err());
        assert!(log.events().is_empty(), "{:?}", log.events());
    }
}

spec! {
    /// §3c.20, across tasks: a timeout around a group and one inside a task of the group
    /// with the same deadline: the outer reports `Elapsed`, whichever task runs first, and
    /// the task's code after its own timeout never runs.
    async fn nested_timeouts_with_one_deadline_in_two_tasks_report_the_outer() {
        for _ in 0..20 {
            let deadline = Instant::now() + ms(10);
            let log = Log::new();
            let l = log.clone();
            let inner_handle = Arc::new(Mutex::new(None));
            let slot = inner_handle.clone();
            let r = timeout_at(
                deadline,
                TaskGroup::<BoxError>::scope(|tg| async move {
                    tg.spawn(async move {
                        let inner = timeout_at(deadline, sleep(FOREVER));
                        *slot.lock().unwrap() = Some(inner.handle());
                        let r = inner.await;
                        l.push(format!("after the inner timeout: {r:?}"));
                        Ok(())
                    })?;
                    Ok(())
                }),
            )
            .await;
            assert!(r.is_err(), "the outer timeout reports: {r:?}");
            assert!(log.events().is_empty(), "{:?}", log.events());
            match inner_handle.lock().unwrap().take() {
                Some(inner) => assert!(inner.expired()),
                // Real time on a loaded machine: the task had not got that far.
                None => assert!(!paused(), "the task ran before the deadline"),
            }
        }
    }
}

spec! {
    /// §3c.20: a timeout whose future is still unwinding from its deadline when the
    /// enclosing group is cancelled (a sibling failed) lets that cancellation through instead
    /// of reporting `Elapsed`; the group reports its failure.
    async fn a_timeout_lets_through_a_cancellation_of_its_scope_that_came_while_it_expired() {
        let log = Log::new();
        let l = log.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let (fired, has_fired) = tokio::sync::oneshot::channel::<()>();
            tg.spawn(async move {
                has_fired.await.ok();
                Err::<(), BoxError>("sibling failed".into())
            })?;
            let group = tg.clone();
            // The timeout fires; while its future cleans up, the sibling fails.
            let r = timeout(
                ms(10),
                on_cancel(sleep_forever::<()>(), move |_| async move {
                    fired.send(()).ok();
                    while !group.is_cancelled() {
                        sleep(ms(1)).await;
                    }
                    Ok(())
                }),
            )
            .await;
            l.push(format!("after the timeout: {r:?}"));
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["sibling failed"]);
        assert!(log.events().is_empty(), "{:?}", log.events());
    }
}

spec! {
    /// §3b.16 (rule 1): a timeout turns only a cancellation into `Elapsed`. A group that
    /// fails on its own while the deadline passes (during a cleanup in its body) returns its
    /// failures through the timeout.
    async fn a_timeout_returns_a_groups_own_failures_even_after_its_deadline() {
        let cleaned = Counter::new();
        let c = cleaned.clone();
        let fut = timeout_scope(None, |t: Timeout| {
            TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(async { Err::<(), BoxError>("boom".into()) })?;
                on_cancel(sleep_forever::<()>(), move |_| async move {
                    // The group has failed; its deadline passes while it cleans up.
                    t.reschedule(Instant::now()).unwrap();
                    sleep(ms(50)).await;
                    c.incr();
                    Ok(())
                })
                .await
            })
        });
        let handle = fut.handle();
        let err = fut.await.expect("not Elapsed: the group failed").unwrap_err();
        assert_eq!(messages(&err), ["boom"]);
        assert_eq!(cleaned.get(), 1);
        assert!(handle.expired(), "the deadline did pass");
    }
}

spec! {
    /// §3c.22: after an inner timeout expired and was handled, the outer one still
    /// interrupts later awaits.
    async fn an_outer_timeout_still_fires_after_an_inner_one_was_handled() {
        let log = Log::new();
        let l = log.clone();
        let r = timeout(ms(30), async move {
            assert!(timeout(ms(10), sleep(FOREVER)).await.is_err());
            l.push("inner handled");
            sleep(FOREVER).await;
            l.push("not reached");
        })
        .await;
        assert!(r.is_err());
        assert_eq!(log.events(), ["inner handled"]);
    }
}

spec! {
    /// §3c.23: a timeout inside cleanup that runs while an outer timeout unwinds works on
    /// its own.
    async fn a_timeout_inside_cleanup_works_while_the_outer_one_unwinds() {
        let log = Log::new();
        let l = log.clone();
        let r = timeout(
            ms(10),
            on_cancel(sleep_forever::<()>(), move |_| async move {
                let inner = timeout(ms(5), sleep(FOREVER)).await;
                l.push(format!("cleanup timeout elapsed: {}", inner.is_err()));
                Ok(())
            }),
        )
        .await;
        assert!(r.is_err());
        assert_eq!(log.events(), ["cleanup timeout elapsed: true"]);
    }
}

spec! {
    /// §3c.24 (gh-102780): a timeout still fires inside a shield in an already-cancelled
    /// scope.
    async fn a_timeout_fires_inside_a_shield_in_a_cancelled_scope() {
        let out = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            Ok(shield(timeout(ms(5), sleep(FOREVER))).await.is_err())
        })
        .await
        .unwrap();
        assert!(out);
    }
}

spec! {
    /// §3c.25: an explicit cancellation inside a timeout is a cancellation, not `Elapsed`.
    async fn an_explicit_cancel_inside_a_timeout_is_not_elapsed() {
        let r = timeout(
            FOREVER,
            TaskGroup::<BoxError>::scope(|tg| async move {
                tg.cancel();
                sleep_forever::<()>().await
            }),
        )
        .await;
        let err = r.expect("not elapsed").unwrap_err();
        assert_eq!(err.as_cancelled().unwrap().reason(), &CancelReason::Explicit);
    }
}

spec! {
    /// §3c.26 (gh-134471, open in CPython): a zero timeout entered while the scope is
    /// already cancelled does not swallow that cancellation: it never reports `Elapsed`,
    /// and the code after it does not run.
    async fn a_zero_timeout_in_a_cancelled_scope_keeps_the_cancellation() {
        let log = Log::new();
        let l = log.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            let r = timeout(Duration::ZERO, sleep(ms(1))).await;
            l.push(format!("timeout: {}", r.is_err()));
            sleep(FOREVER).await;
            l.push("not reached");
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(err.as_cancelled().unwrap().reason(), &CancelReason::Explicit);
        assert!(
            log.events().is_empty(),
            "the timeout let the cancellation through instead of returning: {:?}",
            log.events()
        );
    }
}

spec! {
    /// §3d.27-28: `reschedule` moves the deadline (the handle reflects it), `None`
    /// disables it, and a deadline in the past fires at once.
    async fn reschedule_moves_disables_and_fires() {
        let start = Instant::now();
        // The new deadline is a second after the old one, so that the step past the old one
        // cannot reach it on a loaded machine before it is disabled.
        let r = timeout_scope(start + ms(10), |t: Timeout| async move {
            t.reschedule(start + ms(1_010)).unwrap();
            assert_eq!(t.deadline(), Some(start + ms(1_010)));
            sleep(ms(20)).await; // past the old deadline
            t.reschedule(None).unwrap();
            sleep(ms(1_000)).await; // past the new one
            t.reschedule(Instant::now() - ms(1)).unwrap();
            sleep(FOREVER).await;
        })
        .await;
        assert!(r.is_err());
        assert_elapsed(start, ms(1_020));
    }
}

spec! {
    /// §3d.29 (deliberate difference): a deadline can be moved before the timeout starts.
    async fn reschedule_before_the_start_is_allowed() {
        let start = Instant::now();
        let fut = timeout(FOREVER, sleep(FOREVER));
        fut.handle().reschedule(start + ms(10)).unwrap();
        assert!(fut.await.is_err());
        assert_elapsed(start, ms(10));
    }
}

spec! {
    /// §3d.30-31: `reschedule` after the timeout finished or expired is refused.
    async fn reschedule_after_the_end_is_refused() {
        let fut = timeout(ms(100), async {});
        let handle = fut.handle();
        fut.await.unwrap();
        assert_eq!(handle.reschedule(None), Err(RescheduleError::Finished));
        let fut = timeout(ms(1), sleep(FOREVER));
        let handle = fut.handle();
        assert!(fut.await.is_err());
        assert_eq!(handle.reschedule(None), Err(RescheduleError::Expired));
        assert_eq!(
            RescheduleError::Expired.to_string(),
            "cannot reschedule a timeout that has expired"
        );
    }
}

spec! {
    /// §3d.33-34: another task can move the deadline; a timeout cancelled from outside
    /// after that is not expired.
    async fn reschedule_from_another_task() {
        let start = Instant::now();
        let r = TaskGroup::<BoxError>::scope(|tg| async move {
            let fut = timeout(FOREVER, sleep(FOREVER));
            let handle = fut.handle();
            tg.spawn(async move {
                sleep(ms(5)).await;
                handle.reschedule(Instant::now() + ms(10))?;
                Ok(())
            })?;
            Ok(fut.await.is_err())
        })
        .await
        .unwrap();
        assert!(r);
        assert_elapsed(start, ms(15));

        let handle = Arc::new(Mutex::new(None));
        let slot = handle.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let fut = timeout(FOREVER, sleep(FOREVER));
            let h = fut.handle();
            *slot.lock().unwrap() = Some(h.clone());
            let group = tg.clone();
            tg.spawn(async move {
                // Far enough that the cancellation 5 ms later always comes first.
                h.reschedule(Instant::now() + ms(10_000))?;
                sleep(ms(5)).await;
                group.cancel();
                Ok(())
            })?;
            fut.await?;
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(err.is_cancelled());
        assert!(!handle.lock().unwrap().take().unwrap().expired());
    }
}

spec! {
    /// Required, §3e.35: a timeout around a group cancels its tasks, waits for their
    /// cleanup, and reports `Elapsed`.
    async fn a_timeout_around_a_group_cancels_its_tasks_with_cleanup() {
        let start = Instant::now();
        let cleaned = Counter::new();
        let c = cleaned.clone();
        let started = Counter::new();
        let s = started.clone();
        let r = timeout_once_started(
            &started,
            3,
            ms(10),
            TaskGroup::<BoxError>::scope(|tg| async move {
                for _ in 0..3 {
                    let c = c.clone();
                    tg.spawn(on_cancel(running_forever::<()>(s.clone()), move |_| async move {
                        sleep(ms(5)).await;
                        c.incr();
                        Ok(())
                    }))?;
                }
                sleep_forever::<()>().await
            }),
        )
        .await;
        assert!(r.is_err(), "{r:?}");
        assert_eq!(cleaned.get(), 3);
        assert_elapsed(start, ms(15));
    }
}

spec! {
    /// Tasks of a group inside a timeout inherit its deadline.
    async fn group_tasks_inherit_the_deadline() {
        // Seconds away: the task only reads it, however late it starts.
        let deadline = Instant::now() + ms(10_000);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let r = timeout_at(
            deadline,
            TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(async move {
                    let _ = tx.send(aio::current_deadline());
                    Ok(())
                })?;
                Ok(())
            }),
        )
        .await;
        assert!(r.unwrap().is_ok());
        assert_eq!(rx.await.unwrap(), Some(deadline));
    }
}

spec! {
    /// §4.2-3 (3.12+): `wait_for` with a zero duration polls the future once: one that is
    /// ready at once gives its value.
    async fn wait_for_zero_returns_a_result_that_is_ready_at_once() {
        assert_eq!(wait_for(Duration::ZERO, async { 7 }).await, Ok(7));
        let past = Instant::now() - ms(5);
        assert_eq!(timeout_at(past, async { 8 }).await, Ok(8));
    }
}

spec! {
    /// §4.3: `wait_for` with a zero duration cancels the future at its first suspension,
    /// after running it up to there once.
    async fn wait_for_zero_cancels_a_future_at_its_first_suspension() {
        let ran = Counter::new();
        let r = ran.clone();
        let out = wait_for(Duration::ZERO, async move {
            r.incr();
            sleep(ms(1)).await;
            r.incr();
        })
        .await;
        assert!(out.is_err());
        assert_eq!(ran.get(), 1);
    }
}

spec! {
    /// §4.2 (3.12+): `wait_for(0, handle)` on a task that has finished returns its value,
    /// and waiting on `&mut handle` keeps the handle when the wait times out.
    async fn wait_for_zero_on_a_finished_task_returns_its_value() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let mut done = tg.spawn(async { Ok(5) })?;
            while !done.is_finished() {
                tokio::task::yield_now().await;
            }
            assert_eq!(wait_for(Duration::ZERO, &mut done).await, Ok(Ok(5)));

            let mut slow = tg.spawn(async {
                sleep(ms(20)).await;
                Ok("slow")
            })?;
            assert!(wait_for(Duration::ZERO, &mut slow).await.is_err());
            assert!(wait_for(ms(5), &mut slow).await.is_err());
            assert_eq!(slow.await?, "slow", "the timed-out waits lost nothing");
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// §4.5 (bpo-32751): on timeout, the future is cancelled and its cleanup awaited before
    /// `Elapsed` is returned.
    async fn wait_for_waits_for_cleanup_before_reporting() {
        let start = Instant::now();
        let log = Log::new();
        let l = log.clone();
        let r = wait_for(
            ms(10),
            on_cancel(sleep_forever::<()>(), move |_| async move {
                sleep(ms(50)).await;
                l.push("cleaned up");
                Ok(())
            }),
        )
        .await;
        assert!(r.is_err());
        assert_eq!(log.events(), ["cleaned up"]);
        assert_elapsed(start, ms(60));
    }
}

spec! {
    /// §4.9: a result that is ready when the deadline is noticed is returned.
    async fn a_result_ready_at_the_deadline_wins() {
        let deadline = Instant::now() + ms(10);
        let r = timeout_at(deadline, async move {
            sleep_until(deadline).await;
            "in time"
        })
        .await;
        assert_eq!(r, Ok("in time"));
    }
}

spec! {
    /// §4.10-11 (bpo-23219, gh-86296): cancelling the caller cancels the future inside
    /// `wait_for`, and the caller stays cancelled.
    async fn cancelling_the_caller_cancels_the_waited_future() {
        let dropped = DropFlag::new();
        let guard = dropped.guard();
        let log = Log::new();
        let l = log.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(async move {
                sleep(ms(10)).await;
                group.cancel();
                Ok(())
            })?;
            let _ = wait_for(None, async move {
                let _guard = guard;
                sleep(FOREVER).await;
            })
            .await;
            l.push("not reached");
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(err.is_cancelled());
        assert!(dropped.dropped());
        assert!(log.events().is_empty());
    }
}

spec! {
    /// §4.12, §2.14-15: `wait_for` around a detached shield reports `Elapsed` on time (at
    /// once for a zero duration), and the shielded work still runs to the end.
    async fn wait_for_a_detached_shield_times_out_while_the_work_finishes() {
        let start = Instant::now();
        let log = Log::new();
        let l = log.clone();
        let timed_out = Latch::new();
        TaskGroup::<Cancelled>::scope(|_tg| async move {
            let l2 = l.clone();
            let t = timed_out.clone();
            let work = shield_detached(async move {
                sleep(ms(50)).await;
                // Cannot end before `wait_for` gave up on it, however late its deadline is
                // noticed.
                t.wait().await;
                l2.push("slow work saved");
            });
            assert!(wait_for(ms(10), work).await.is_err());
            timed_out.set();
            assert_elapsed(start, ms(10));
            let l3 = l.clone();
            let (go, wait) = tokio::sync::oneshot::channel::<()>();
            let work = shield_detached(async move {
                wait.await.ok();
                l3.push("quick work saved");
            });
            assert!(wait_for(Duration::ZERO, work).await.is_err());
            go.send(()).ok();
            Ok(())
        })
        .await
        .unwrap();
        let mut events = log.events();
        events.sort();
        assert_eq!(events, ["quick work saved", "slow work saved"]);
        assert_elapsed(start, ms(50));
    }
}

spec! {
    /// A loop that stops at `checkpoint()` when its timeout fires reports `Elapsed`: the
    /// cancellation reached it, whichever poll noticed the deadline first. (The loop
    /// sleeps a little per round so that paused time can move.)
    async fn a_checkpoint_loop_under_a_timeout_reports_elapsed() {
        for _ in 0..50 {
            let r = timeout(ms(1), async {
                loop {
                    sleep(Duration::from_micros(100)).await;
                    aio::checkpoint().await?;
                }
                #[allow(unreachable_code)]
                Ok::<(), aio::Cancelled>(())
            })
            .await;
            assert!(r.is_err(), "{r:?}");
        }
    }
}

/// Poll by poll: a timeout stays pending until its deadline, is woken by it, polls its
/// future once more (a result that raced the deadline would be kept), and reports `Elapsed`.
#[tokio::test(start_paused = true)]
async fn a_timeout_is_pending_until_its_deadline_wakes_it() {
    use tokio_test::{assert_pending, assert_ready, task};

    let polls = Counter::new();
    let p = polls.clone();
    let mut fut = task::spawn(timeout(
        ms(10),
        std::future::poll_fn(move |_| {
            p.incr();
            std::task::Poll::<()>::Pending
        }),
    ));
    assert_pending!(fut.poll());
    assert_eq!(polls.get(), 1);
    tokio::time::advance(ms(9)).await;
    assert!(!fut.is_woken());
    tokio::time::advance(ms(1)).await;
    assert!(fut.is_woken());
    assert!(assert_ready!(fut.poll()).is_err());
    assert_eq!(polls.get(), 2, "one last poll, then dropped");
}

/// §3c.20: nested timeouts whose deadlines had both passed before their first poll (a
/// loaded machine held the task): the outer reports `Elapsed`, whichever deadline is
/// earlier, and the inner lets the cancellation through.
#[tokio::test(start_paused = true)]
async fn nested_timeouts_due_before_their_first_poll_report_the_outer() {
    for inner_at in [ms(10), ms(5), ms(15)] {
        let now = Instant::now();
        let log = Log::new();
        let l = log.clone();
        let outer = timeout_at(now + ms(10), async move {
            let r = timeout_at(now + inner_at, sleep(FOREVER)).await;
            l.push(format!("after the inner timeout: {r:?}"));
        });
        let handle = outer.handle();
        tokio::time::advance(ms(20)).await;
        assert!(outer.await.is_err());
        assert!(handle.expired());
        assert!(log.events().is_empty(), "{:?}", log.events());
    }
}

spec! {
    /// A timeout lets a cancellation through only to the scope it was first polled in, the
    /// one that drops it. Moved to another task after its first poll, it reports its own
    /// deadline there, although the scope it left is cancelled: nothing else would drop it.
    async fn a_timeout_moved_to_another_task_reports_its_own_deadline_there() {
        let scope = aio::CancelScope::new();
        let handle = scope.handle();
        let (send, receive) = tokio::sync::oneshot::channel();
        let mover = tokio::spawn(async move {
            let moved = receive.await.unwrap();
            moved.await
        });
        let out = scope
            .run(async move {
                let mut moved = Box::pin(timeout(ms(10), sleep(FOREVER)));
                let first = std::future::poll_fn(|cx| {
                    std::task::Poll::Ready(std::future::Future::poll(moved.as_mut(), cx))
                });
                assert!(first.await.is_pending());
                send.send(moved).ok();
                handle.cancel();
                sleep(FOREVER).await;
            })
            .await;
        assert!(out.is_none());
        assert!(mover.await.unwrap().is_err(), "the moved timeout reports Elapsed");
    }
}

spec! {
    /// A timeout that returned its value stays unexpired for good, even when a timeout
    /// first polled inside it is moved elsewhere and fires after the outer deadline has
    /// passed: the outer timeout's outcome was settled when it returned.
    async fn a_returned_timeout_is_not_fired_by_one_moved_out_of_it() {
        let (send, receive) = tokio::sync::oneshot::channel();
        let outer = timeout(ms(5), async move {
            let mut moved = Box::pin(timeout(ms(10), sleep(FOREVER)));
            let first = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(std::future::Future::poll(moved.as_mut(), cx))
            });
            assert!(first.await.is_pending());
            send.send(moved).ok();
            "done"
        });
        let handle = outer.handle();
        assert_eq!(outer.await, Ok("done"));
        let moved = receive.await.unwrap();
        assert!(moved.await.is_err(), "the moved timeout reports Elapsed");
        assert!(!handle.expired());
    }
}

spec! {
    /// A timeout's handle can be taken between two polls of it, when its scope may have no
    /// node yet: the deadline the handle moves is the one that fires, and the code inside
    /// sees it.
    async fn a_handle_taken_between_polls_moves_the_deadline_that_fires() {
        let start = Instant::now();
        let seen = Arc::new(Mutex::new(None));
        let seen_inside = Arc::clone(&seen);
        let mut run = Box::pin(timeout(FOREVER, async move {
            sleep(ms(10)).await;
            *seen_inside.lock().unwrap() = Some(aio::current_deadline());
            sleep(FOREVER).await;
        }));
        let first = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(run.as_mut(), cx))
        });
        assert!(first.await.is_pending());
        let handle = run.handle();
        handle.reschedule(start + ms(50)).unwrap();
        assert!(run.await.is_err(), "the moved deadline fires");
        assert_elapsed(start, ms(50));
        assert_eq!(*seen.lock().unwrap(), Some(Some(start + ms(50))));
        assert_eq!(handle.reschedule(None), Err(RescheduleError::Expired));
    }
}

spec! {
    /// §3d.27: the deadline in force when the timeout is next polled is the one that counts.
    /// Moved later after the old deadline's timer went off but before the timeout ran again,
    /// it does not fire: the future goes on to finish.
    async fn a_deadline_moved_later_after_its_timer_went_off_does_not_fire() {
        let start = Instant::now();
        let mut run = Box::pin(timeout(ms(10), sleep(ms(100))));
        let first = std::future::poll_fn(|cx| {
            std::task::Poll::Ready(std::future::Future::poll(run.as_mut(), cx))
        });
        assert!(first.await.is_pending());
        let handle = run.handle();
        // The timer goes off at 10 ms; the timeout is not polled meanwhile.
        sleep(ms(20)).await;
        assert!(!handle.expired());
        handle.reschedule(start + ms(1000)).unwrap();
        assert!(run.await.is_ok(), "the future finished before the moved deadline");
        assert_elapsed(start, ms(100));
        assert!(!handle.expired());
    }
}

spec! {
    /// A timeout whose scope is first needed after an await (here by a group opened in it)
    /// is still the scope around that group: the group's tasks see the earliest deadline
    /// around them, the outer deadline cancels them, cleanup included, and the outer
    /// timeout reports it.
    async fn a_group_opened_after_the_first_await_of_nested_timeouts_is_bounded_by_them() {
        let start = Instant::now();
        let log = Log::new();
        let inner_log = log.clone();
        let out = timeout_at(start + ms(50), async move {
            let inner = timeout(FOREVER, async move {
                sleep(ms(10)).await;
                TaskGroup::<Cancelled>::scope(|tg| async move {
                    let log = inner_log.clone();
                    tg.spawn(on_cancel(
                        async move {
                            log.push(format!("deadline {:?}", aio::current_deadline()));
                            sleep(FOREVER).await;
                            Ok::<(), Cancelled>(())
                        },
                        move |_| async move {
                            inner_log.push("cleanup");
                            Ok(())
                        },
                    ))
                    .unwrap();
                    Ok(())
                })
                .await
            })
            .await;
            // The group's cancellation, passed on: the inner timeout's own deadline did
            // not fire.
            inner.expect("not the inner timeout's deadline")
        })
        .await;
        assert!(out.is_err(), "the outer timeout reports Elapsed");
        assert_elapsed(start, ms(50));
        assert_eq!(
            log.events(),
            [format!("deadline {:?}", Some(start + ms(50))), "cleanup".into()]
        );
    }
}

spec! {
    /// A cancellation seen inside a timeout that did not cause it is inherited (its reason
    /// is `ParentCancelled`), whether or not anything inside needed the timeout's scope.
    async fn a_cancellation_from_outside_seen_inside_a_timeout_is_inherited() {
        let seen = TaskGroup::<Cancelled>::scope(|tg| async move {
            tg.cancel();
            let direct = aio::checkpoint().await.unwrap_err();
            let lazy = timeout(FOREVER, aio::checkpoint()).await;
            let with_node = timeout_scope(None, |_| aio::checkpoint()).await;
            Ok((direct, lazy, with_node))
        })
        .await;
        let (direct, lazy, with_node) = seen.unwrap();
        assert_eq!(direct.reason(), &CancelReason::Explicit);
        for inside in [lazy, with_node] {
            let cancelled = inside.expect("not the timeout's own").unwrap_err();
            assert_eq!(cancelled.reason(), &CancelReason::ParentCancelled);
            assert_eq!(cancelled.origin(), &CancelReason::Explicit);
        }
    }
}
