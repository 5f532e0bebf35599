//! Shields (§2) and `on_cancel`.
//!
//! aio has two shields. `shield` is Trio's shielded scope: the work completes, then the
//! caller is cancelled at its next await. `shield_detached` is `asyncio.shield` with an
//! owner: the caller is cancelled at once, the work runs on as a task of the nearest group.
//! Not applicable: identity shortcuts and loop-exception-handler logging (§2.1, 7-10), gather
//! (§2.12, issue of the gather family), and strong references (§2.16: the group owns the
//! task).

use aio::{
    BoxError, CancelReason, Cancelled, TaskGroup, on_cancel, shield, shield_detached, timeout,
    timeout_at,
};
use tokio::time::{Instant, sleep};

use crate::support::*;

spec! {
    /// §2.2-3: a shield's result and error pass through.
    async fn results_and_errors_pass_through_a_shield() {
        assert_eq!(shield(async { 7 }).await, 7);
        assert_eq!(shield(async { Err::<(), _>("bad") }).await, Err("bad"));
    }
}

spec! {
    /// Required, §2.6: a shield inside a cancelled task runs to completion, and the task is
    /// cancelled at its next await after it.
    async fn a_shield_in_a_cancelled_task_completes_then_the_task_stops() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let s = started.clone();
            tg.spawn(async move {
                l.push("start");
                shield(async {
                    s.incr();
                    sleep(ms(20)).await;
                    l.push("shielded step 1");
                    sleep(ms(20)).await;
                    l.push("shielded step 2");
                })
                .await;
                l.push("after the shield");
                sleep(ms(1)).await;
                l.push("after the next await");
                Ok(())
            })?;
            tg.spawn(fail_after_started(started, 1, ms(10), "boom"))?;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["boom"]);
        assert_eq!(
            log.events(),
            ["start", "shielded step 1", "shielded step 2", "after the shield"]
        );
    }
}

spec! {
    /// §2.5-6: a detached shield's caller is cancelled at once; the work runs on and its
    /// group waits for it.
    async fn a_detached_shield_outlives_its_cancelled_caller() {
        let start = Instant::now();
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let s = started.clone();
            tg.spawn(async move {
                let l2 = l.clone();
                let saved = shield_detached(async move {
                    sleep(ms(50)).await;
                    l2.push("work saved");
                });
                s.incr();
                let _ = saved.await;
                l.push("caller resumed");
                Ok(())
            })?;
            tg.spawn(fail_after_started(started, 1, ms(10), "boom"))?;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["boom"]);
        assert_eq!(log.events(), ["work saved"]);
        assert_elapsed(start, ms(50));
    }
}

spec! {
    /// A detached shield finishes even when whoever awaits it is dropped by something
    /// outside aio.
    async fn a_detached_shield_survives_a_hard_drop_of_its_caller() {
        let log = Log::new();
        let l = log.clone();
        TaskGroup::<Cancelled>::scope(|_tg| async move {
            tokio::select! {
                _ = shield_detached(async move {
                    sleep(ms(30)).await;
                    l.push("finished");
                }) => unreachable!(),
                _ = sleep(ms(5)) => {}
            }
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(log.events(), ["finished"]);
    }
}

spec! {
    /// §2.11: a shielded task group keeps running when the scope around it is cancelled and
    /// returns its results.
    async fn a_shielded_group_completes_inside_a_cancelled_scope() {
        let r = timeout(ms(5), async {
            shield(TaskGroup::<BoxError>::scope(|tg| async move {
                let a = tg.spawn(async {
                    sleep(ms(20)).await;
                    Ok(1)
                })?;
                let b = tg.spawn(async { Ok(2) })?;
                Ok(vec![a.await?, b.await?])
            }))
            .await
        })
        .await;
        // The shield completed, and the timeout had nothing left to cancel.
        assert_eq!(r.unwrap().unwrap(), [1, 2]);
    }
}

spec! {
    /// A shield can carry its own deadline, which fires even while the scope around it is
    /// cancelled; outer deadlines do not reach inside.
    async fn a_shield_has_its_own_deadline_and_hides_outer_ones() {
        let start = Instant::now();
        let own = start + ms(20);
        let r = timeout_at(start + ms(5), async move {
            assert_eq!(shield(async { aio::current_deadline() }).await, None);
            shield(async move {
                assert_eq!(aio::current_deadline(), Some(own));
                sleep(FOREVER).await;
            })
            .deadline(own)
            .await
        })
        .await;
        assert!(r.unwrap().is_err(), "the shield's own deadline fired");
        assert_elapsed(start, ms(20));
    }
}

spec! {
    /// Inside a shield, the scope is not cancelled; outside it, it is.
    async fn a_shield_hides_the_cancellation_of_the_scope_around_it() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            assert!(aio::is_cancelled());
            let inside = shield(async { aio::is_cancelled() }).await;
            assert!(!inside);
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// Outside every group, a detached shield is a task of its own.
    async fn a_detached_shield_outside_any_group_still_runs() {
        let handle = shield_detached(async {
            sleep(ms(5)).await;
            "standalone"
        });
        assert_eq!(handle.await, Ok("standalone"));
    }
}

spec! {
    /// `on_cancel`: work that completes returns its value and the cleanup never runs.
    async fn on_cancel_without_a_cancellation_returns_the_value() {
        let log = Log::new();
        let l = log.clone();
        let r = on_cancel(
            async {
                sleep(ms(5)).await;
                Ok::<_, Cancelled>("done")
            },
            move |_| async move {
                l.push("cleanup");
                Ok(())
            },
        )
        .await;
        assert_eq!(r, Ok("done"));
        assert!(log.events().is_empty());
    }
}

spec! {
    /// Required: a sibling's `on_cancel` cleanup that itself awaits completes before the
    /// group returns, and sees the reason.
    async fn on_cancel_cleanup_that_awaits_completes_before_the_group_returns() {
        let start = Instant::now();
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(on_cancel(running_forever::<()>(started.clone()), move |_| async move {
                l.push("cleanup started");
                sleep(ms(30)).await;
                tokio::task::yield_now().await;
                l.push("cleanup finished");
                Ok(())
            }))?;
            tg.spawn(fail_after_started(started, 1, ms(10), "boom"))?;
            Ok(())
        })
        .await
        .unwrap_err();
        log.push("group returned");
        assert_eq!(messages(&err), ["boom"]);
        let events = log.events();
        assert_eq!(events, ["cleanup started", "cleanup finished", "group returned"]);
        assert_elapsed(start, ms(40));
    }
}

spec! {
    /// `on_cancel` returns the cancellation after its cleanup, converted into the work's
    /// error type.
    async fn on_cancel_returns_the_cancellation_after_cleanup() {
        let out = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            let r = on_cancel(sleep_forever::<()>(), |_| async { Ok(()) }).await;
            let err = r.unwrap_err();
            assert_eq!(
                aio::CancelError::as_cancelled(&err).unwrap().reason(),
                &CancelReason::Explicit
            );
            Ok("checked")
        })
        .await
        .unwrap();
        assert_eq!(out, "checked");
    }
}

spec! {
    /// Outside every scope, `on_cancel` is just its work.
    async fn on_cancel_outside_scopes_is_just_the_work() {
        let r = on_cancel(async { Ok::<_, Cancelled>(1) }, |_| async { Ok(()) }).await;
        assert_eq!(r, Ok(1));
    }
}

spec! {
    /// `on_cancel` hands its cleanup the cancellation, so the cleanup knows why.
    async fn on_cancel_cleanup_receives_the_reason() {
        let log = Log::new();
        let l = log.clone();
        let r = timeout(
            ms(5),
            on_cancel(sleep_forever::<()>(), move |cancelled| async move {
                l.push(cancelled.reason().to_string());
                Ok(())
            }),
        )
        .await;
        assert!(r.is_err());
        assert_eq!(log.events(), ["deadline elapsed"]);
    }
}

spec! {
    /// `except CancelledError` also catches the cancellation a task group inside the `try`
    /// raises: `on_cancel` runs its cleanup when its work returns a cancellation error, and
    /// returns that error unchanged.
    async fn on_cancel_runs_cleanup_when_a_group_inside_it_is_cancelled() {
        let log = Log::new();
        let l = log.clone();
        let r = timeout(
            ms(10),
            on_cancel(
                async {
                    TaskGroup::<BoxError>::scope(|tg| async move {
                        tg.spawn(sleep_forever::<()>())?;
                        Ok(())
                    })
                    .await?;
                    Ok::<_, BoxError>(())
                },
                move |cancelled| async move {
                    sleep(ms(5)).await;
                    l.push(format!("cleanup: {}", cancelled.reason()));
                    Ok(())
                },
            ),
        )
        .await;
        assert!(r.is_err(), "the deadline is reported as Elapsed");
        assert_eq!(log.events(), ["cleanup: deadline elapsed"]);
    }
}

spec! {
    /// A `Cancelled` passed on with `?` from inside the work is a cancellation too: the
    /// cleanup runs, and the error comes back as it was.
    async fn on_cancel_runs_cleanup_when_the_work_passes_on_a_cancellation() {
        let log = Log::new();
        let l = log.clone();
        let r = on_cancel(
            async { Err::<(), _>(Cancelled::new(CancelReason::Shutdown)) },
            move |cancelled| async move {
                l.push(cancelled.reason().to_string());
                Ok(())
            },
        )
        .await;
        assert_eq!(r.unwrap_err().reason(), &CancelReason::Shutdown);
        assert_eq!(log.events(), [CancelReason::Shutdown.to_string()]);
    }
}

/// Poll by poll: a shield inside a cancelled scope stays pending while its work runs, and
/// the scope drops nothing until the shield is done.
#[tokio::test(start_paused = true)]
async fn a_shield_holds_its_cancelled_scope_open_until_it_is_done() {
    use tokio_test::{assert_pending, assert_ready, task};

    let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
    let mut scope = task::spawn(timeout(ms(5), shield(async move { rx.await.unwrap() })));
    assert_pending!(scope.poll());
    tokio::time::advance(ms(10)).await;
    assert!(scope.is_woken());
    // The deadline passed, but the shield's work is not finished: still pending.
    assert_pending!(scope.poll());
    tx.send(7).unwrap();
    assert!(scope.is_woken());
    // The work finished without the cancellation reaching it: its value comes through.
    assert_eq!(assert_ready!(scope.poll()), Ok(7));
}
