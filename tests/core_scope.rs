//! Cancel scopes: the tree, level-triggered cancellation, delivery at the next await, and
//! what a task can ask about its scope (DESIGN §2, and §0 of the catalogue where it applies).

use std::error::Error;

use aio::{BoxError, CancelReason, Cancelled, TaskGroup, shield, timeout, timeout_at};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};
use tokio_test::{assert_pending, assert_ready, task};

use crate::support::*;

spec! {
    /// Required: a scope opened inside an already-cancelled scope starts cancelled: its
    /// body never runs.
    async fn a_scope_opened_inside_a_cancelled_scope_starts_cancelled() {
        let log = Log::new();
        let l = log.clone();
        TaskGroup::<BoxError>::scope(|outer| async move {
            outer.cancel();
            let inner = TaskGroup::<BoxError>::scope(|_tg| async move {
                l.push("inner body ran");
                Ok(())
            })
            .await;
            let inner = inner.unwrap_err();
            assert!(inner.is_cancelled());
            assert_eq!(inner.as_cancelled().unwrap().reason(), &CancelReason::ParentCancelled);
            assert_eq!(inner.as_cancelled().unwrap().origin(), &CancelReason::Explicit);
            assert!(timeout(FOREVER, async { aio::is_cancelled() }).await.unwrap());
            Ok(())
        })
        .await
        .unwrap();
        assert!(log.events().is_empty());
    }
}

spec! {
    /// Level-triggered: once cancelled, a scope stays cancelled, and every later await in
    /// it is a cancellation point.
    async fn cancellation_is_level_triggered() {
        let log = Log::new();
        let l = log.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            for i in 0..3 {
                assert!(aio::is_cancelled());
                assert!(aio::checkpoint().await.is_err());
                l.push(format!("check {i}"));
            }
            sleep(ms(1)).await;
            l.push("not reached");
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(log.events(), ["check 0", "check 1", "check 2"]);
    }
}

spec! {
    /// Foreign futures stop promptly, with no cooperation: a task blocked on a Tokio
    /// channel is dropped at that await when its group is cancelled.
    async fn foreign_futures_are_dropped_at_their_await() {
        let (_tx, mut rx) = mpsc::channel::<u32>(1);
        let dropped = DropFlag::new();
        let guard = dropped.guard();
        let start = Instant::now();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(async move {
                let _guard = guard;
                let _ = rx.recv().await;
                Ok(())
            })?;
            tg.spawn(fail_after(ms(5), "boom"))?;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["boom"]);
        assert!(dropped.dropped());
        assert_elapsed(start, ms(5));
    }
}

spec! {
    /// §0.12: a task cancelled before its first poll never runs; §0.8: one that cancels its
    /// group and then awaits is cancelled at that await.
    async fn cancellation_before_the_first_poll_means_the_task_never_runs() {
        let log = Log::new();
        let l = log.clone();
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let l2 = l.clone();
            tg.spawn(async move {
                l2.push("ran");
                Ok(())
            })?;
            tg.cancel();
            l.push("body continues until its next await");
            sleep(ms(1)).await;
            l.push("not reached");
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(err.is_cancelled());
        if paused() {
            assert_eq!(log.events(), ["body continues until its next await"]);
        }
        assert!(!log.contains("not reached"));
    }
}

spec! {
    /// A task can wait for the moment its scope is cancelled and learn why.
    async fn cancelled_resolves_with_the_reason() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let started = Counter::new();
        let s = started.clone();
        let r = timeout_once_started(
            &started,
            1,
            ms(10),
            TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(async move {
                    s.incr();
                    let _ = tx.send(aio::cancelled().await);
                    Ok(())
                })?;
                Ok(())
            }),
        )
        .await;
        assert!(r.is_err());
        let seen = rx.await.unwrap();
        assert_eq!(seen.reason(), &CancelReason::ParentCancelled);
        assert_eq!(seen.origin(), &CancelReason::Deadline);
        assert_eq!(
            seen.to_string(),
            "cancelled: an enclosing scope was cancelled (deadline elapsed)"
        );
    }
}

spec! {
    /// Outside every aio scope nothing is cancelled: `is_cancelled` is false, `checkpoint`
    /// succeeds and `cancelled()` never resolves.
    async fn outside_every_scope_nothing_is_cancelled() {
        assert!(!aio::is_cancelled());
        assert_eq!(aio::checkpoint().await, Ok(()));
        assert_eq!(aio::current_deadline(), None);
        assert!(tokio::time::timeout(ms(10), aio::cancelled()).await.is_err());
    }
}

spec! {
    /// The effective deadline is the earliest one up to the nearest shield.
    async fn the_effective_deadline_is_the_earliest() {
        // Deadlines seconds away: none may pass before the checks are done.
        let start = Instant::now();
        let outer = start + ms(10_000);
        let r = timeout_at(outer, async move {
            assert_eq!(aio::current_deadline(), Some(outer));
            let inner = timeout_at(start + ms(5_000), async { aio::current_deadline() }).await;
            assert_eq!(inner.unwrap(), Some(start + ms(5_000)));
            let looser = timeout_at(start + ms(50_000), async { aio::current_deadline() }).await;
            assert_eq!(looser.unwrap(), Some(outer));
            assert_eq!(shield(async { aio::current_deadline() }).await, None);
        })
        .await;
        assert!(r.is_ok());
    }
}

/// `Cancelled` is an ordinary error value.
#[test]
fn cancelled_is_a_std_error() {
    let c = Cancelled::new(CancelReason::Shutdown);
    let e: Box<dyn Error + Send + Sync> = Box::new(c.clone());
    assert_eq!(e.to_string(), "cancelled: shutting down");
    let boxed: BoxError = c.into();
    assert!(aio::CancelError::as_cancelled(&boxed).is_some());
}

/// Poll by poll: `cancelled()` stays pending until the scope is cancelled, then resolves.
#[tokio::test(start_paused = true)]
async fn cancelled_is_pending_until_the_scope_is_cancelled() {
    TaskGroup::<BoxError>::scope(|tg| async move {
        let mut waiting = task::spawn(aio::cancelled());
        assert_pending!(waiting.poll());
        assert_pending!(waiting.poll());
        tg.cancel();
        assert!(waiting.is_woken());
        let c = assert_ready!(waiting.poll());
        assert_eq!(c.reason(), &CancelReason::Explicit);
        Ok(())
    })
    .await
    .unwrap();
}

/// Poll by poll: `checkpoint()` yields exactly once when not cancelled.
#[tokio::test(start_paused = true)]
async fn checkpoint_yields_once() {
    let mut check = task::spawn(aio::checkpoint());
    assert_pending!(check.poll());
    assert!(check.is_woken());
    assert_eq!(assert_ready!(check.poll()), Ok(()));
}
