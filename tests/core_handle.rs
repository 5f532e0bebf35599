//! Task handles: cancelling one task (`t.cancel()`, §0), asking how it ended (`t.cancelled()`,
//! `t.exception()`), and taking its failure (what a supervisor needs).
//!
//! Not applicable: cancel counters and `uncancel` (§0.3-5: cancellation is level-triggered),
//! a task cancelling itself (§0.8-9: a task has no handle to itself; it returns
//! `Err(Cancelled)` instead).

use std::time::Duration;

use aio::{
    BoxError, CancelReason, Cancelled, JoinPolicy, LocalGroup, TaskError, TaskGroup, on_cancel,
    shield,
};
use tokio::time::{Instant, sleep};

use crate::support::*;

spec! {
    /// §0.1: cancelling a finished task returns `false` and changes nothing.
    async fn cancelling_a_finished_task_returns_false() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let h = tg.spawn(async { Ok::<_, BoxError>(7) })?;
            while !h.is_finished() {
                tokio::task::yield_now().await;
            }
            assert!(!h.cancel());
            assert!(!h.is_cancelled());
            assert_eq!(h.await?, 7);
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// §0.2: cancelling a running task returns `true`, even when it was cancelled already.
    async fn cancelling_twice_returns_true_both_times() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            // Started, and kept running after the first cancel by its cleanup until told to
            // finish: on two workers it could otherwise end in between, and then `false`
            // is right.
            let (start, started) = tokio::sync::oneshot::channel::<()>();
            let (finish, finished) = tokio::sync::oneshot::channel::<()>();
            let work = async move {
                start.send(()).unwrap();
                sleep_forever::<()>().await
            };
            let h = tg.spawn(on_cancel(work, move |_| async move {
                let _ = finished.await;
                Ok(())
            }))?;
            started.await.unwrap();
            assert!(h.cancel());
            assert!(h.cancel());
            finish.send(()).unwrap();
            assert!(matches!(h.await, Err(TaskError::Cancelled(_))));
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// §0.6 and §1b.14: a task cancelled alone is cancelled at the `.await` it is blocked
    /// on and runs its cleanup; it ends cancelled, which is no failure: the group and the
    /// siblings go on, and the group ends without an error.
    async fn cancelling_one_task_leaves_the_group_and_siblings_running() {
        let log = Log::new();
        let (l1, l2) = (log.clone(), log.clone());
        let start = Instant::now();
        let (started, victim_ended) = (Counter::new(), Latch::new());
        let value = TaskGroup::<BoxError>::scope(|tg| async move {
            let victim = tg.spawn(on_cancel(running_forever::<()>(started.clone()), move |c| async move {
                sleep(ms(5)).await;
                l1.push(format!("victim cleaned up: {}", c.reason()));
                Ok(())
            }))?;
            let ended_first = victim_ended.clone();
            let sibling = tg.spawn(async move {
                sleep(ms(30)).await;
                // Logs after the victim's cleanup by cause, not by 15 ms of sleep.
                ended_first.wait().await;
                l2.push("sibling done");
                Ok::<_, BoxError>("sibling")
            })?;
            started.until(1).await;
            sleep(ms(10)).await;
            assert!(victim.cancel());
            let ended = victim.await;
            victim_ended.set();
            assert!(matches!(&ended, Err(TaskError::Cancelled(c)) if *c.reason() == CancelReason::Explicit));
            assert!(!tg.is_cancelled(), "the group is not cancelled");
            Ok(sibling.await?)
        })
        .await
        .unwrap();
        assert_eq!(value, "sibling");
        assert_eq!(log.events(), ["victim cleaned up: cancelled explicitly", "sibling done"]);
        assert_elapsed(start, ms(30));
    }
}

/// §0.12: a task cancelled before its first poll never runs.
///
/// On one thread only: with two workers, the idle one may pick the task up between `spawn`
/// and `cancel`, and then it has started, which is not the case this rule is about.
#[test]
fn a_task_cancelled_before_it_starts_never_runs() {
    crate::support::run_current_thread(async {
        let ran = Counter::new();
        let r = ran.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let h = tg.spawn(async move {
                r.incr();
                Ok::<_, BoxError>(())
            })?;
            assert!(h.cancel());
            let ended = h.await;
            assert!(matches!(ended, Err(TaskError::Cancelled(_))));
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(ran.get(), 0);
    });
}

spec! {
    /// A task waiting for a slot of a limited group that is cancelled never starts, and
    /// gives up its place in the queue: the next one starts instead.
    async fn a_queued_task_cancelled_never_starts_and_the_queue_moves_on() {
        let log = Log::new();
        let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
        TaskGroup::<BoxError>::builder()
            .limit(1)
            .scope(|tg| async move {
                // Holds the only slot until the queued task is cancelled, however slow the
                // machine.
                let cancelled = Latch::new();
                let c = cancelled.clone();
                tg.spawn(async move {
                    c.wait().await;
                    l1.push("first");
                    Ok::<_, BoxError>(())
                })?;
                let queued = tg.spawn(async move {
                    l2.push("cancelled one ran");
                    Ok::<_, BoxError>(())
                })?;
                tg.spawn(async move {
                    l3.push("third");
                    Ok::<_, BoxError>(())
                })?;
                assert!(queued.cancel());
                assert!(matches!(queued.await, Err(TaskError::Cancelled(_))));
                cancelled.set();
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(log.events(), ["first", "third"]);
    }
}

spec! {
    /// Cancelling a task reaches the scopes nested inside it, whether they were opened
    /// before or after the cancellation: a timeout inside reports the cancellation, not
    /// `Elapsed`, and a task group inside cancels its own tasks.
    async fn cancelling_a_task_reaches_scopes_nested_inside_it() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let s = started.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let h = tg.spawn(async move {
                let inner = TaskGroup::<BoxError>::scope(|inner| async move {
                    inner.spawn(on_cancel(running_forever::<()>(s), move |c| async move {
                        l.push(format!("grandchild: {}", c.reason()));
                        Ok(())
                    }))?;
                    Ok(())
                });
                aio::timeout(ms(10_000), inner).await??;
                Ok::<_, BoxError>(())
            })?;
            started.until(1).await;
            sleep(ms(5)).await;
            h.cancel();
            let ended = h.await;
            assert!(ended.is_err());
            Ok(())
        })
        .await
        .unwrap();
        let events = log.events();
        assert_eq!(events.len(), 1);
        assert!(events[0].starts_with("grandchild: "), "{events:?}");
    }
}

spec! {
    /// A shield inside a task cancelled alone runs to completion, as under any cancellation.
    async fn a_shield_inside_a_cancelled_task_completes() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let s = started.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let h = tg.spawn(async move {
                shield(async {
                    s.incr();
                    sleep(ms(20)).await;
                    l.push("shielded work done");
                })
                .await;
                sleep_forever::<()>().await
            })?;
            started.until(1).await;
            sleep(ms(5)).await;
            h.cancel();
            assert!(h.await.is_err());
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(log.events(), ["shielded work done"]);
    }
}

spec! {
    /// `is_cancelled` and `has_failed` tell how a task ended without consuming its handle:
    /// asyncio's `t.cancelled()` and `t.exception() is not None`.
    async fn a_handle_tells_how_its_task_ended() {
        TaskGroup::<BoxError>::builder()
            .policy(JoinPolicy::Supervisor)
            .scope(|tg| async move {
                let ok = tg.spawn(async { Ok::<_, BoxError>(()) })?;
                let failed = tg.spawn(fail_after(ms(1), "bad"))?;
                let cancelled = tg.spawn(sleep_forever::<()>())?;
                cancelled.cancel();
                let all = || ok.is_finished() && failed.is_finished() && cancelled.is_finished();
                eventually(Duration::from_secs(10), all).await;
                assert!(!ok.is_cancelled() && !ok.has_failed());
                assert!(failed.has_failed() && !failed.is_cancelled());
                assert!(cancelled.is_cancelled());
                assert!(!cancelled.has_failed());
                let id = failed.id();
                assert_eq!(tg.take_failure(id).unwrap().to_string(), "bad");
                Ok(())
            })
            .await
            .unwrap();
    }
}

spec! {
    /// A supervisor takes a failed worker's error as soon as the handle reports the
    /// failure, and restarts it; handled failures are not reported again.
    async fn a_supervisor_takes_failures_and_restarts_workers() {
        let restarts = TaskGroup::<BoxError>::builder()
            .policy(JoinPolicy::Supervisor)
            .scope(|tg| async move {
                let mut restarts = Vec::new();
                for attempt in 0..4 {
                    let worker = tg.spawn(async move {
                        sleep(ms(1)).await;
                        if attempt < 3 {
                            return Err(format!("crash {attempt}").into());
                        }
                        Ok::<_, BoxError>(())
                    })?;
                    let id = worker.id();
                    if worker.await.is_ok() {
                        break;
                    }
                    let error = tg.take_failure(id).expect("the failure is there to take");
                    restarts.push(error.to_string());
                }
                Ok(restarts)
            })
            .await
            .unwrap();
        assert_eq!(restarts, ["crash 0", "crash 1", "crash 2"]);
    }
}

spec! {
    /// Only failures can be taken, and only once; failures left in place are reported.
    async fn take_failure_takes_a_failure_once_and_leaves_the_rest() {
        let err = TaskGroup::<BoxError>::builder()
            .policy(JoinPolicy::Supervisor)
            .scope(|tg| async move {
                let checked = Latch::new();
                let c = checked.clone();
                let a = tg.spawn(async move {
                    c.wait().await;
                    fail_after(ms(1), "a").await
                })?;
                let b = tg.spawn(fail_after(ms(2), "b"))?;
                let ok = tg.spawn(async { Ok::<_, BoxError>(()) })?;
                let (a_id, ok_id) = (a.id(), ok.id());
                assert!(tg.take_failure(a_id).is_none(), "not finished yet");
                checked.set();
                let _ = a.await;
                let _ = b.await;
                let _ = ok.await;
                assert_eq!(tg.take_failure(a_id).unwrap().to_string(), "a");
                assert!(tg.take_failure(a_id).is_none(), "taken already");
                assert!(tg.take_failure(ok_id).is_none(), "did not fail");
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(messages(&err), ["b"]);
    }
}

spec! {
    /// A local task can be cancelled alone too.
    async fn cancelling_one_local_task() {
        let log = Log::new();
        let l = log.clone();
        LocalGroup::<BoxError>::scope(|lg| async move {
            let victim = lg.spawn(on_cancel(sleep_forever::<()>(), move |_| async move {
                l.push("victim cleaned up");
                Ok(())
            }))?;
            let other = lg.spawn(async {
                sleep(ms(10)).await;
                Ok::<_, BoxError>(1)
            })?;
            sleep(ms(1)).await;
            assert!(victim.cancel());
            assert!(matches!(victim.await, Err(TaskError::Cancelled(_))));
            assert!(!lg.is_cancelled());
            assert_eq!(other.await?, 1);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(log.events(), ["victim cleaned up"]);
    }
}

spec! {
    /// §0.13-14: `cancel_with(msg)` gives the task's cancellation a message: the task sees
    /// it, its cleanup sees it, its handle returns it, and its `Display` shows it. A second
    /// cancel keeps the first message.
    async fn cancel_with_gives_the_task_a_message() {
        let log = Log::new();
        let l = log.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let (release, released) = tokio::sync::oneshot::channel::<()>();
            let (started, has_started) = tokio::sync::oneshot::channel::<()>();
            let work = async move {
                started.send(()).ok();
                sleep_forever::<()>().await
            };
            let victim = tg.spawn(on_cancel(work, move |c: Cancelled| async move {
                l.push(format!("cleanup saw {:?}", c.message()));
                released.await.ok();
                Ok(())
            }))?;
            has_started.await?;
            assert!(victim.cancel_with("no longer needed"));
            // Still cleaning up: not finished, so this cancel counts, but changes nothing.
            assert!(victim.cancel_with("a second reason"));
            release.send(()).ok();
            match victim.await {
                Err(TaskError::Cancelled(c)) => {
                    assert_eq!(c.reason(), &CancelReason::Explicit);
                    assert_eq!(c.message(), Some("no longer needed"));
                    assert_eq!(c.to_string(), "cancelled: no longer needed");
                }
                other => panic!("{other:?}"),
            }
            // Before the task started, too.
            let unstarted = tg.spawn(async { Ok::<_, BoxError>(()) })?;
            unstarted.cancel_with("never mind");
            match unstarted.await {
                Err(TaskError::Cancelled(c)) => assert_eq!(c.message(), Some("never mind")),
                Ok(()) => assert!(!paused(), "on one thread the task cannot start first"),
                other => panic!("{other:?}"),
            }
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(log.events(), ["cleanup saw Some(\"no longer needed\")"]);

        LocalGroup::<BoxError>::scope(|lg| async move {
            let victim = lg.spawn(sleep_forever::<()>())?;
            sleep(ms(1)).await;
            assert!(victim.cancel_with("local too"));
            match victim.await {
                Err(TaskError::Cancelled(c)) => assert_eq!(c.message(), Some("local too")),
                other => panic!("{other:?}"),
            }
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// A handle is an `Unpin` future, like Tokio's `JoinHandle`: `&mut handle` can be
    /// awaited (in `select!`, under a timeout) without giving the handle up, and once its
    /// result has been taken it says so.
    async fn a_handle_awaited_by_reference_is_kept_until_its_result_is_taken() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let (finish, finished) = tokio::sync::oneshot::channel::<()>();
            let mut slow = tg.spawn(async {
                finished.await.ok();
                Ok("slow")
            })?;
            tokio::select! {
                r = &mut slow => panic!("the slow task won: {r:?}"),
                () = sleep(ms(5)) => {}
            }
            assert!(aio::timeout(ms(5), &mut slow).await.is_err());
            finish.send(()).ok();
            assert_eq!((&mut slow).await?, "slow");
            assert!(slow.is_finished());
            assert_eq!((&mut slow).await, Err(TaskError::Taken));
            assert_eq!(slow.result(), Err(TaskError::Taken));

            let lg_out = LocalGroup::<BoxError>::scope(|lg| async move {
                let mut local = lg.spawn(async { Ok(3) })?;
                let first = (&mut local).await?;
                Ok((first, local.await))
            })
            .await
            .unwrap();
            assert_eq!(lg_out, (3, Err(TaskError::Taken)));
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// A handle whose result an `.await` took still tells how its task ended: asyncio's
    /// `t.cancelled()` and `t.exception()` keep answering after `await t`.
    async fn a_handle_tells_how_its_task_ended_after_its_result_was_taken() {
        TaskGroup::<BoxError>::builder()
            .policy(JoinPolicy::Supervisor)
            .scope(|tg| async move {
                let mut ok = tg.spawn(async { Ok::<_, BoxError>(()) })?;
                let mut failed = tg.spawn(fail_after(ms(1), "bad"))?;
                let mut cancelled = tg.spawn(sleep_forever::<()>())?;
                cancelled.cancel();
                assert!((&mut ok).await.is_ok());
                assert!(matches!((&mut failed).await, Err(TaskError::Failed(_))));
                assert!(matches!((&mut cancelled).await, Err(TaskError::Cancelled(_))));
                assert!(!ok.is_cancelled() && !ok.has_failed());
                assert!(failed.has_failed() && !failed.is_cancelled());
                assert!(cancelled.is_cancelled() && !cancelled.has_failed());
                tg.take_failure(failed.id());
                Ok(())
            })
            .await
            .unwrap();

        let local = LocalGroup::<BoxError>::scope(|lg| async move {
            let mut ok = lg.spawn(async { Ok(()) })?;
            let mut cancelled = lg.spawn(sleep_forever::<()>())?;
            cancelled.cancel();
            assert!((&mut ok).await.is_ok());
            assert!(matches!((&mut cancelled).await, Err(TaskError::Cancelled(_))));
            assert!(!ok.is_cancelled() && !ok.has_failed());
            assert!(cancelled.is_cancelled() && !cancelled.has_failed());
            let mut failed = lg.spawn(fail_after(ms(1), "bad"))?;
            assert!(matches!((&mut failed).await, Err(TaskError::Failed(_))));
            assert!(failed.has_failed() && !failed.is_cancelled());
            Ok(())
        })
        .await;
        assert!(local.unwrap_err().to_string().ends_with(": bad"));
    }
}
