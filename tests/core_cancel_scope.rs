//! `CancelScope` (Trio's and AnyIO's cancel scope, Trio's `move_on_after`): a block that
//! can be cancelled from anywhere and lets its caller carry on.
//!
//! Trio's rules, in aio's form: `run` returns `None` when the scope's own cancellation
//! stopped its future and `Some(output)` otherwise; `cancelled_caught` says which; a
//! cancellation from outside passes through; when the scope and one around it are both
//! cancelled, the outer one reports; a shielded scope is reached only by its own
//! cancellation.

use aio::{BoxError, CancelReason, CancelScope, TaskGroup, move_on_after, on_cancel, shield};
use tokio::time::{Instant, sleep};

use crate::support::*;

spec! {
    /// Trio `test_cancel_scope_basic`: a scope cancelled from another task stops its future
    /// at its next await; `run` returns `None`, and the scope says it caught its own
    /// cancellation.
    async fn a_scope_cancelled_from_another_task_stops_its_future_and_carries_on() {
        let start = Instant::now();
        let scope = CancelScope::new();
        let handle = scope.handle();
        let canceller = scope.handle();
        let log = Log::new();
        let l = log.clone();
        let out = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(async move {
                sleep(ms(10)).await;
                canceller.cancel();
                Ok(())
            })?;
            let out = scope
                .run(async move {
                    sleep(FOREVER).await;
                    l.push("not reached");
                })
                .await;
            Ok(out)
        })
        .await
        .unwrap();
        assert_eq!(out, None);
        assert!(handle.cancel_called());
        assert!(handle.cancelled_caught());
        assert!(log.events().is_empty());
        assert_elapsed(start, ms(10));
        assert!(format!("{handle:?}").contains("cancelled"));
    }
}

spec! {
    /// A scope whose future finishes returns its output and caught nothing, even if it
    /// was cancelled after the future's last await.
    async fn a_scope_whose_future_finishes_returns_its_output() {
        let scope = CancelScope::new();
        let handle = scope.handle();
        assert_eq!(scope.run(async { 5 }).await, Some(5));
        assert!(!handle.cancel_called());
        assert!(!handle.cancelled_caught());
        handle.cancel();
        assert!(!handle.cancel_called(), "cancel after the end does nothing");

        let scope = CancelScope::new();
        let handle = scope.handle();
        let h = scope.handle();
        let out = scope
            .run(async move {
                sleep(ms(1)).await;
                h.cancel();
                "finished before its next await"
            })
            .await;
        assert_eq!(out, Some("finished before its next await"));
        assert!(handle.cancel_called());
        assert!(!handle.cancelled_caught());
    }
}

spec! {
    /// Trio `test_cancel_scope_cancel_before_enter`: a scope cancelled before it runs
    /// never starts its future.
    async fn a_scope_cancelled_before_it_runs_never_starts_its_future() {
        let scope = CancelScope::new();
        let handle = scope.handle();
        handle.cancel();
        let ran = Counter::new();
        let r = ran.clone();
        assert_eq!(scope.run(async move { r.incr() }).await, None);
        assert_eq!(ran.get(), 0);
        assert!(handle.cancelled_caught());
    }
}

spec! {
    /// Trio `test_cancel_scope_deadline`: a scope's deadline cancels it; the deadline can
    /// be moved later, earlier or away while the scope runs, from any task, and
    /// `current_deadline` sees it.
    async fn a_scope_deadline_cancels_it_and_can_be_moved() {
        let start = Instant::now();
        let scope = CancelScope::new().with_timeout(ms(10));
        let handle = scope.handle();
        let h = scope.handle();
        let first = handle.deadline().unwrap();
        assert!(first >= start + ms(10));
        let out = scope
            .run(async move {
                assert_eq!(aio::current_deadline(), Some(first));
                h.set_deadline(first + ms(20));
                sleep(FOREVER).await;
            })
            .await;
        assert_eq!(out, None);
        assert!(handle.cancelled_caught());
        assert_elapsed(start, ms(30));

        let scope = CancelScope::new().with_deadline(Instant::now() + ms(10));
        let h = scope.handle();
        let out = scope
            .run(async move {
                h.set_deadline(None);
                sleep(ms(50)).await;
                "no deadline any more"
            })
            .await;
        assert_eq!(out, Some("no deadline any more"));

        let start = Instant::now();
        let out = move_on_after(ms(10), sleep(FOREVER)).await;
        assert_eq!(out, None);
        assert_elapsed(start, ms(10));
    }
}

spec! {
    /// Trio `test_cancel_scope_nesting`: a cancellation from outside is not caught by the
    /// scope; it passes through `run` to the scope that owns it.
    async fn a_scope_does_not_catch_a_cancellation_from_outside() {
        let log = Log::new();
        let l = log.clone();
        let scope = CancelScope::new();
        let handle = scope.handle();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(async move {
                sleep(ms(5)).await;
                group.cancel();
                Ok(())
            })?;
            let out = scope.run(sleep(FOREVER)).await;
            l.push(format!("after the scope: {out:?}"));
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(err.as_cancelled().unwrap().reason(), &CancelReason::Explicit);
        assert!(log.events().is_empty(), "{:?}", log.events());
        assert!(!handle.cancel_called());
        assert!(!handle.cancelled_caught());
    }
}

spec! {
    /// When a scope and one around it are both cancelled, the outer one catches it and the
    /// inner one lets it through.
    async fn of_two_cancelled_scopes_the_outer_catches_it() {
        let outer = CancelScope::new();
        let inner = CancelScope::new();
        let (outer_handle, inner_handle) = (outer.handle(), inner.handle());
        let (o, i) = (outer.handle(), inner.handle());
        let log = Log::new();
        let l = log.clone();
        let out = outer
            .run(async move {
                let out = inner
                    .run(async move {
                        i.cancel();
                        o.cancel();
                        sleep(FOREVER).await;
                    })
                    .await;
                l.push(format!("after the inner scope: {out:?}"));
            })
            .await;
        assert_eq!(out, None);
        assert!(outer_handle.cancelled_caught());
        assert!(!inner_handle.cancelled_caught());
        assert!(inner_handle.cancel_called());
        assert!(log.events().is_empty(), "{:?}", log.events());
    }
}

spec! {
    /// Trio `test_cancel_scope_shield`: a shielded scope is not reached by cancellation
    /// from outside: its work completes, and its caller is cancelled at its next await. Its
    /// own cancellation still works.
    async fn a_shielded_scope_is_reached_only_by_its_own_cancellation() {
        let log = Log::new();
        let l = log.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            let out = CancelScope::shielded()
                .run(async {
                    sleep(ms(10)).await;
                    "saved"
                })
                .await;
            l.push(format!("shielded: {out:?}"));
            let scope = CancelScope::shielded();
            let h = scope.handle();
            let out = scope
                .run(async move {
                    h.cancel();
                    sleep(FOREVER).await;
                })
                .await;
            l.push(format!("own cancel: {out:?}"));
            sleep(FOREVER).await;
            l.push("not reached");
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(log.events(), ["shielded: Some(\"saved\")", "own cancel: None"]);
    }
}

spec! {
    /// A cancelled scope unwinds the groups inside it, cleanup included, before `run`
    /// returns; failures raised inside are returned, not swallowed.
    async fn a_scope_unwinds_groups_inside_it_and_keeps_their_failures() {
        let log = Log::new();
        let l = log.clone();
        let scope = CancelScope::new();
        let h = scope.handle();
        let out = scope
            .run(TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(on_cancel(sleep_forever::<()>(), move |_| async move {
                    sleep(ms(5)).await;
                    l.push("task cleaned up");
                    Ok(())
                }))?;
                sleep(ms(1)).await;
                h.cancel_with("enough");
                sleep_forever::<()>().await
            }))
            .await;
        assert!(out.is_none());
        assert_eq!(log.events(), ["task cleaned up"]);

        let scope = CancelScope::new();
        let h = scope.handle();
        let out = scope
            .run(TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(on_cancel(sleep_forever::<()>(), |_| async {
                    Err("cleanup failed".into())
                }))?;
                sleep(ms(1)).await;
                h.cancel();
                sleep_forever::<()>().await
            }))
            .await;
        let err = out.expect("a failure is returned").unwrap_err();
        assert_eq!(messages(&err), ["cleanup failed"]);
    }
}

spec! {
    /// A scope's cancellation reaches scopes nested in it; `cancel_with` gives it a message;
    /// a shield inside completes first.
    async fn a_scopes_cancellation_reaches_inside_with_its_message() {
        let scope = CancelScope::new();
        let h = scope.handle();
        let log = Log::new();
        let l = log.clone();
        let out = scope
            .run(async move {
                let l2 = l.clone();
                on_cancel(
                    async move {
                        h.cancel_with("enough");
                        shield(async {
                            sleep(ms(5)).await;
                            l2.push("shielded part done");
                        })
                        .await;
                        sleep_forever::<()>().await
                    },
                    move |c| async move {
                        l.push(format!("cleanup: {c}"));
                        Ok(())
                    },
                )
                .await
            })
            .await;
        assert!(out.is_none());
        assert_eq!(
            log.events(),
            ["shielded part done", "cleanup: cancelled: enough"]
        );
    }
}

spec! {
    /// What a scope cannot see: a future that is handed its scope's cancellation (by
    /// `cancelled()`, `checkpoint()` or a group) and turns it into a value at its last step
    /// counts as stopped by it, since a cancellation was the last thing that came out. The
    /// value is not returned; one computed in a shield is.
    async fn a_cancellation_turned_into_a_value_at_the_last_step_counts_as_caught() {
        for shielded in [false, true] {
            let scope = CancelScope::new();
            let handle = scope.handle();
            let canceller = scope.handle();
            let out = TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(async move {
                    sleep(ms(10)).await;
                    canceller.cancel();
                    Ok(())
                })?;
                Ok(scope
                    .run(async move {
                        let why = aio::cancelled().await;
                        if shielded {
                            shield(async move { format!("stopped: {why}") }).await
                        } else {
                            format!("stopped: {why}")
                        }
                    })
                    .await)
            })
            .await
            .unwrap();
            if shielded {
                assert_eq!(out.as_deref(), Some("stopped: cancelled: cancelled explicitly"));
                assert!(!handle.cancelled_caught());
            } else {
                assert_eq!(out, None);
                assert!(handle.cancelled_caught());
            }
        }
    }
}
