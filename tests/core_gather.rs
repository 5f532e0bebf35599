//! The gather family (§5 gather, §6 as_completed, §7 wait) and races. Every one runs its
//! futures as tasks of a group, so nothing it starts can leak, and every loser is cancelled
//! and awaited.
//!
//! Deliberate differences: `gather` cancels the other tasks on the first failure and reports
//! every failure (§5.5; `gather_settled` is `return_exceptions=True`); `wait` over no handles
//! returns at once (§7.4). Not applicable: duplicate awaitables (§5.4, §6.5, §7.9), invalid
//! arguments (§5.17, §6.9, §7.5-7), `gather.cancel()` (§5.12-16), call-graph edges.

use std::sync::{Arc, Mutex};

use aio::{
    BoxError, CancelReason, Cancelled, RaceError, ReturnWhen, TaskGroup, TaskState, on_cancel,
    timeout,
};
use futures::StreamExt;
use futures::future::BoxFuture;
use tokio::time::{Instant, sleep};

use crate::support::*;

/// A task that sleeps `ms` and then returns `value`.
fn after<T: Send + 'static>(ms_: u64, value: T) -> BoxFuture<'static, Result<T, BoxError>> {
    Box::pin(async move {
        sleep(ms(ms_)).await;
        Ok(value)
    })
}

/// A task that waits for `go` and then returns `value`.
fn once<T: Send + 'static>(go: &Latch, value: T) -> BoxFuture<'static, Result<T, BoxError>> {
    let go = go.clone();
    Box::pin(async move {
        go.wait().await;
        Ok(value)
    })
}

/// A task that sleeps `ms` and then fails with `msg`.
fn failing<T: Send + 'static>(
    ms_: u64,
    msg: &'static str,
) -> BoxFuture<'static, Result<T, BoxError>> {
    Box::pin(async move {
        sleep(ms(ms_)).await;
        Err(msg.into())
    })
}

spec! {
    /// §5.1: results come back in the order the futures were given, not completion order.
    async fn gather_returns_results_in_argument_order() {
        let out = aio::gather([after(30, "a"), after(10, "b"), after(20, "c")]).await.unwrap();
        assert_eq!(out, ["a", "b", "c"]);
    }
}

spec! {
    /// §5.2: gathering nothing gives an empty list.
    async fn gather_of_nothing_is_empty() {
        let out = aio::gather(Vec::<BoxFuture<'static, Result<(), BoxError>>>::new()).await.unwrap();
        assert!(out.is_empty());
        let settled = aio::gather_settled(Vec::<BoxFuture<'static, Result<(), BoxError>>>::new())
            .await
            .unwrap();
        assert!(settled.is_empty());
    }
}

spec! {
    /// §5.5, deliberately different: the first failure cancels the others, which are awaited
    /// (their cleanup runs), and every failure is reported.
    async fn gather_cancels_the_rest_on_the_first_failure() {
        let log = Log::new();
        let l = log.clone();
        let slow: BoxFuture<'static, Result<&str, BoxError>> = Box::pin(on_cancel(
            async {
                sleep(FOREVER).await;
                Ok("never")
            },
            move |_| async move {
                l.push("slow task cleaned up");
                Ok(())
            },
        ));
        let err = aio::gather([after(5, "fast"), failing(10, "broken"), slow])
            .await
            .unwrap_err();
        assert_eq!(messages(&err), ["broken"]);
        assert_eq!(log.events(), ["slow task cleaned up"]);
    }
}

spec! {
    /// Each failure of a gather says which of the futures failed: its position among them.
    async fn gather_failures_name_the_position_of_their_future() {
        let err = aio::gather([after(1, ()), after(20, ()), failing(5, "third"), after(20, ())])
            .await
            .unwrap_err();
        let positions: Vec<_> = err.iter().map(|f| (f.index(), f.error().to_string())).collect();
        assert_eq!(positions, [(Some(2), "third".to_owned())]);
        let shown = err.first().unwrap().to_string();
        assert!(shown.ends_with(" (future 2): third"), "{shown}");
    }
}

spec! {
    /// §5.7: `gather_settled` (`return_exceptions=True`) keeps every outcome in its place, and
    /// a failure cancels nothing.
    async fn gather_settled_keeps_every_outcome_in_place() {
        let out = aio::gather_settled([after(20, 1), failing(5, "bad"), after(10, 3)])
            .await
            .unwrap();
        let shown: Vec<String> = out
            .iter()
            .map(|r| match r {
                Ok(v) => v.to_string(),
                Err(e) => e.to_string(),
            })
            .collect();
        assert_eq!(shown, ["1", "bad", "3"]);
    }
}

spec! {
    /// §5.8: a task that ends cancelled makes `gather` report the cancellation.
    async fn gather_reports_a_task_that_ended_cancelled() {
        let cancelled: BoxFuture<'static, Result<(), BoxError>> = Box::pin(async {
            TaskGroup::<BoxError>::scope(|tg| async move {
                tg.cancel();
                sleep_forever::<()>().await
            })
            .await?;
            Ok(())
        });
        let err = aio::gather([after(5, ()), cancelled]).await.unwrap_err();
        assert!(err.is_cancelled());
    }
}

spec! {
    /// §5.8: a task that ends cancelled ends `gather` at once: the other tasks are
    /// cancelled (their cleanup runs) instead of being waited for, and `gather` returns that
    /// task's cancellation, message included.
    async fn gather_ends_at_once_when_a_task_ends_cancelled() {
        let start = Instant::now();
        let cleaned = Counter::new();
        let c = cleaned.clone();
        let stopped: BoxFuture<'static, Result<(), BoxError>> = Box::pin(async {
            sleep(ms(5)).await;
            TaskGroup::<BoxError>::scope(|tg| async move {
                tg.cancel_with("stopped by its owner");
                sleep_forever::<()>().await
            })
            .await?;
            Ok(())
        });
        let forever: BoxFuture<'static, Result<(), BoxError>> = Box::pin(on_cancel(
            sleep_forever::<()>(),
            move |cancelled| async move {
                assert!(matches!(
                    cancelled.reason(),
                    CancelReason::SiblingCancelled { .. }
                ));
                c.incr();
                Ok(())
            },
        ));
        let err = aio::gather([forever, stopped]).await.unwrap_err();
        let cancelled = err.as_cancelled().expect("a cancellation, not a failure");
        assert_eq!(cancelled.message(), Some("stopped by its owner"));
        assert_eq!(cleaned.get(), 1, "the other task was cancelled and cleaned up");
        assert_elapsed(start, ms(5));
    }
}

spec! {
    /// §5.9-11: cancelling the caller cancels every unfinished task, `gather_settled`
    /// included, and the reason reaches the caller.
    async fn cancelling_the_caller_cancels_the_gathered_tasks() {
        let dropped = DropFlag::new();
        let guard = dropped.guard();
        let slow: BoxFuture<'static, Result<(), BoxError>> = Box::pin(async move {
            let _guard = guard;
            sleep(FOREVER).await;
            Ok(())
        });
        let r = timeout(ms(10), aio::gather([after(1, ()), slow])).await;
        assert!(r.is_err(), "the timeout reports its deadline: {r:?}");
        assert!(dropped.dropped());

        let seen = Arc::new(Mutex::new(None));
        let s = seen.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(async move {
                sleep(ms(5)).await;
                group.cancel();
                Ok(())
            })?;
            let outcome = aio::gather_settled([after(3_600_000, ())]).await;
            *s.lock().unwrap() = Some(outcome);
            Ok(())
        })
        .await
        .ok();
        let outcome = seen.lock().unwrap().take().unwrap();
        let cancelled: Cancelled = outcome.unwrap_err();
        assert_eq!(cancelled.origin(), &CancelReason::Explicit);
    }
}

spec! {
    /// §6.1-2, §6.11: `as_completed` yields outputs in completion order, errors included,
    /// and nothing for no futures.
    async fn as_completed_yields_in_completion_order() {
        // Completion order c-a-b would come from sleeps only under paused time: here each
        // finishes once the one before it has come out, which only completion order allows.
        let (b_go, c_go) = (Latch::new(), Latch::new());
        let mut outputs = aio::as_completed([once(&c_go, "c"), failing(10, "a failed"), once(&b_go, "b")])
            .map(|r| r.unwrap_or_else(|e| e.to_string().leak()).to_string());
        let mut order = Vec::new();
        while let Some(output) = outputs.next().await {
            match output.as_str() {
                "a failed" => b_go.set(),
                "b" => c_go.set(),
                _ => {}
            }
            order.push(output);
        }
        assert_eq!(order, ["a failed", "b", "c"]);
        let none: Vec<()> = aio::as_completed(Vec::<BoxFuture<'static, ()>>::new()).collect().await;
        assert!(none.is_empty());
    }
}

spec! {
    /// §6.6-8: the stream can be left and resumed, and a timeout on one step cancels nothing.
    async fn as_completed_resumes_and_times_out_without_cancelling() {
        // Each of the later two finishes only when let: 10 ms against 20 ms of sleep would
        // not order them on a loaded machine.
        let (second, last) = (Latch::new(), Latch::new());
        let mut outputs = aio::as_completed([after(10, 1), once(&second, 2), once(&last, 3)]);
        assert_eq!(outputs.next().await.unwrap().unwrap(), 1);
        // Stop listening for a while...
        second.set();
        assert!(timeout(ms(10_000), outputs.next()).await.is_ok());
        assert!(timeout(ms(5), outputs.next()).await.is_err());
        // ...the remaining task was not cancelled.
        last.set();
        assert_eq!(outputs.next().await.unwrap().unwrap(), 3);
        assert!(outputs.next().await.is_none());
    }
}

spec! {
    /// Dropping `as_completed` before the end cancels the tasks still running, and they
    /// clean up.
    async fn dropping_as_completed_cancels_what_is_left() {
        let log = Log::new();
        let l = log.clone();
        let slow: BoxFuture<'static, Result<(), BoxError>> = Box::pin(on_cancel(
            async {
                sleep(FOREVER).await;
                Ok(())
            },
            move |_| async move {
                l.push("cleaned up");
                Ok(())
            },
        ));
        let mut outputs = aio::as_completed([after(1, ()), slow]);
        outputs.next().await.unwrap().unwrap();
        drop(outputs);
        let start = Instant::now();
        while !log.contains("cleaned up") {
            assert!(start.elapsed() < ms(5000));
            sleep(ms(1)).await;
        }
    }
}

spec! {
    /// §7.1, §7.11: `wait(FirstCompleted)` moves the finished handles out and leaves the
    /// others running in their group.
    async fn wait_first_completed_splits_done_and_pending() {
        let slow = Latch::new();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let mut pending = vec![tg.spawn(once(&slow, "slow"))?, tg.spawn(after(10, "fast"))?];
            let done = aio::wait(&mut pending, ReturnWhen::FirstCompleted).await;
            assert_eq!(done.len(), 1);
            assert_eq!(done.into_iter().next().unwrap().result()?, "fast");
            assert_eq!(pending.len(), 1);
            assert!(!pending[0].is_finished());
            slow.set();
            let rest = aio::wait(&mut pending, ReturnWhen::AllCompleted).await;
            assert_eq!(rest.into_iter().next().unwrap().result()?, "slow");
            assert!(pending.is_empty());
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// §7.10, §7.12-13: `AllCompleted` keeps failed tasks in `done`; `FirstError` returns on
    /// a failure, and behaves like `AllCompleted` when nothing fails.
    async fn wait_first_error_returns_on_a_failure() {
        let err = TaskGroup::<BoxError>::builder()
            .policy(aio::JoinPolicy::Supervisor)
            .scope(|tg| async move {
                // The first has finished, the second fails, and the third cannot finish
                // before `wait` returns: what `done` holds is then up to `wait` alone.
                let mut first = vec![tg.spawn(after(5, 1))?];
                let mut pending = aio::wait(&mut first, ReturnWhen::AllCompleted).await;
                let third = Latch::new();
                pending.push(tg.spawn(failing::<i32>(10, "bad"))?);
                pending.push(tg.spawn(once(&third, 3))?);
                let done = aio::wait(&mut pending, ReturnWhen::FirstError).await;
                assert_eq!(done.len(), 2);
                assert_eq!(pending.len(), 1);
                third.set();
                let mut ok = vec![tg.spawn(after(5, 4))?, tg.spawn(after(10, 5))?];
                let done = aio::wait(&mut ok, ReturnWhen::FirstError).await;
                assert_eq!(done.len(), 2);
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(messages(&err), ["bad"]);
    }
}

spec! {
    /// §7.2, §7.15: a timeout around `wait` loses no handle and cancels no task. (§7.3, a
    /// task finishing at the very deadline, depends on which Tokio task runs first.)
    async fn a_timeout_around_wait_cancels_nothing() {
        let slow = Latch::new();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let mut pending = vec![tg.spawn(once(&slow, "slow"))?];
            assert!(timeout(ms(10), aio::wait(&mut pending, ReturnWhen::AllCompleted)).await.is_err());
            assert_eq!(pending.len(), 1);
            slow.set();
            let done = aio::wait(&mut pending, ReturnWhen::AllCompleted).await;
            assert_eq!(done.into_iter().next().unwrap().result()?, "slow");
            assert!(aio::wait(&mut Vec::<aio::TaskHandle<()>>::new(), ReturnWhen::AllCompleted).await.is_empty());
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// `race`: the first to finish wins, success or not; the losers are cancelled and their
    /// cleanup runs before `race` returns.
    async fn race_returns_the_first_and_cleans_up_the_losers() {
        let log = Log::new();
        let l = log.clone();
        let loser: BoxFuture<'static, Result<&str, BoxError>> = Box::pin(on_cancel(
            async {
                sleep(FOREVER).await;
                Ok("never")
            },
            move |_| async move {
                sleep(ms(5)).await;
                l.push("loser cleaned up");
                Ok(())
            },
        ));
        // The other two would finish much later: cancelled, they cost no time.
        let winner = aio::race([after(3_600_000, "second"), failing(10, "first, failed"), loser])
            .await
            .unwrap();
        assert_eq!(winner.unwrap_err().to_string(), "first, failed");
        assert_eq!(log.events(), ["loser cleaned up"]);
        assert!(matches!(
            aio::race(Vec::<BoxFuture<'static, ()>>::new()).await,
            Err(RaceError::Empty)
        ));
    }
}

spec! {
    /// `race_ok`: failures do not stop the race; the first success wins; if all fail, every
    /// failure is reported in the order they happened.
    async fn race_ok_returns_the_first_success_or_every_failure() {
        let winner = aio::race_ok([failing(5, "refused"), after(10, "connected"), after(3_600_000, "late")])
            .await
            .unwrap();
        assert_eq!(winner, "connected");
        // The second failure follows the first by cause, not only by 10 ms more of sleep.
        let first_failed = Latch::new();
        let (f, s) = (first_failed.clone(), first_failed.clone());
        let second: BoxFuture<'static, Result<(), BoxError>> = Box::pin(async move {
            s.wait().await;
            sleep(ms(10)).await;
            Err("second".into())
        });
        let first: BoxFuture<'static, Result<(), BoxError>> = Box::pin(async move {
            sleep(ms(10)).await;
            f.set();
            Err("first".into())
        });
        let err = aio::race_ok([second, first]).await.unwrap_err();
        let failures = err.failures().expect("every future failed");
        assert_eq!(messages(failures), ["first", "second"]);
        assert!(failures.iter().all(|f| f.task_id().is_some()));
        let positions: Vec<_> = failures.iter().map(|f| f.index()).collect();
        assert_eq!(positions, [Some(1), Some(0)]);
        let shown = err.to_string();
        assert!(shown.starts_with("every future of the race failed (2 failures); first: task#"), "{shown}");
        assert!(shown.ends_with(" (future 1): first"), "{shown}");
    }
}

spec! {
    /// A race inside a cancelled scope has no winner and says so.
    async fn a_cancelled_race_reports_the_cancellation() {
        let out = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            Ok(aio::race([after(1, ())]).await)
        })
        .await
        .unwrap();
        assert!(matches!(out, Err(RaceError::Cancelled(_))));
    }
}

spec! {
    /// The tasks of the gather family show in the task tree while they run.
    async fn gathered_tasks_show_in_the_tree() {
        let tree = Arc::new(Mutex::new(String::new()));
        let t = tree.clone();
        // The other task waits until the probe has drawn the tree.
        let drawn = Latch::new();
        let d = drawn.clone();
        let probe: BoxFuture<'static, Result<(), BoxError>> = Box::pin(async move {
            sleep(ms(5)).await;
            *t.lock().unwrap() = aio::task_tree().to_string();
            d.set();
            Ok(())
        });
        aio::gather([once(&drawn, ()), probe]).await.unwrap();
        let tree = tree.lock().unwrap().clone();
        assert!(tree.contains(&format!("({}", TaskState::Suspended)), "{tree}");
    }
}
