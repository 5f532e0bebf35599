//! Join policies and concurrency limits: what a failure does to a group, and how many of its
//! tasks run at once.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, CancelReason, JoinPolicy, TaskError, TaskGroup, TaskState, shield_detached};
use futures::FutureExt;
use tokio::time::{Instant, sleep};

use crate::support::*;

fn supervisor() -> aio::TaskGroupBuilder<BoxError> {
    TaskGroup::builder().policy(JoinPolicy::Supervisor)
}

spec! {
    /// Supervisor (Kotlin's `supervisorScope`, CPython gh-101581): a task's failure does not
    /// cancel its siblings, and every failure is reported when the group ends.
    async fn a_supervisor_reports_failures_without_cancelling_siblings() {
        let (ok, err) = {
            let handles = Arc::new(Mutex::new(Vec::new()));
            let h = handles.clone();
            let err = supervisor()
                .scope(|tg| async move {
                    let first = tg.spawn_named("first", fail_after(ms(5), "first failed"))?;
                    let survivor = tg.spawn_named("survivor", async {
                        sleep(ms(20)).await;
                        Ok("survived")
                    })?;
                    // Fails after the first by cause, not only by 5 ms more of sleep.
                    tg.spawn_named("second", async move {
                        aio::wait(&mut vec![first], aio::ReturnWhen::AllCompleted).await;
                        fail_after(ms(5), "second failed").await
                    })?;
                    h.lock().unwrap().push(survivor);
                    sleep(ms(30)).await; // the body is not cancelled either
                    Ok(())
                })
                .await
                .unwrap_err();
            let survivor = handles.lock().unwrap().pop().unwrap();
            (survivor.result(), err)
        };
        assert_eq!(ok, Ok("survived"));
        assert_eq!(messages(&err), ["first failed", "second failed"]);
    }
}

spec! {
    /// Supervisor: a panicking task does not cancel its siblings either; the panic is
    /// re-raised once they have all finished.
    async fn a_supervisor_reraises_a_panic_after_the_others_finish() {
        let log = Log::new();
        let l = log.clone();
        let outcome = AssertUnwindSafe(supervisor().scope(|tg| async move {
            tg.spawn(async {
                sleep(ms(5)).await;
                if true {
                    panic!("task panicked");
                }
                Ok(())
            })?;
            tg.spawn(async move {
                sleep(ms(20)).await;
                l.push("sibling finished normally");
                Ok(())
            })?;
            Ok(())
        }))
        .catch_unwind()
        .await;
        assert_eq!(
            outcome.unwrap_err().downcast_ref::<&str>(),
            Some(&"task panicked")
        );
        assert_eq!(log.events(), ["sibling finished normally"]);
    }
}

spec! {
    /// Supervisor: the body's own failure, an outer cancellation and `cancel()` still cancel
    /// every task.
    async fn a_supervisor_is_still_cancelled_by_its_body_and_from_outside() {
        let err = supervisor()
            .scope(|tg| async move {
                tg.spawn(sleep_forever::<()>())?;
                sleep(ms(1)).await;
                Err::<(), _>("body failed".into())
            })
            .await
            .unwrap_err();
        assert_eq!(messages(&err), ["body failed"]);

        let r = aio::timeout(ms(5), supervisor().scope(|tg| async move {
            tg.spawn(sleep_forever::<()>())?;
            Ok(())
        }))
        .await;
        assert!(r.is_err());

        let err = supervisor()
            .scope(|tg| async move {
                tg.spawn(sleep_forever::<()>())?;
                tg.cancel();
                sleep_forever::<()>().await
            })
            .await
            .unwrap_err();
        assert_eq!(err.as_cancelled().unwrap().reason(), &CancelReason::Explicit);
    }
}

/// Records how many tasks run at once, and the most it ever saw.
#[derive(Clone, Default)]
struct Concurrency {
    now: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
}

impl Concurrency {
    async fn run(&self, work: std::time::Duration) -> Result<(), BoxError> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        sleep(work).await;
        self.now.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }

    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
}

spec! {
    /// Required: a group built with a limit never runs more than that many tasks at once,
    /// and does run that many.
    async fn a_limited_group_never_runs_more_than_its_limit() {
        let seen = Concurrency::default();
        let s = seen.clone();
        TaskGroup::<BoxError>::builder()
            .limit(3)
            .scope(|tg| async move {
                for i in 0..30u64 {
                    let s = s.clone();
                    tg.spawn(async move { s.run(ms(1 + i % 4)).await })?;
                }
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(seen.most(), 3);
    }
}

spec! {
    /// Spawning beyond the limit does not wait, and the waiting tasks start in the order
    /// they were spawned (with a limit of one, so that no two start at the same time).
    async fn tasks_beyond_the_limit_start_in_spawn_order_without_blocking_the_spawner() {
        let started = Log::new();
        let s = started.clone();
        let start = Instant::now();
        TaskGroup::<BoxError>::builder()
            .limit(1)
            .scope(|tg| async move {
                for i in 0..10 {
                    let s = s.clone();
                    tg.spawn(async move {
                        s.push(format!("{i}"));
                        sleep(ms(5)).await;
                        Ok(())
                    })?;
                }
                // Ten spawns, no waiting.
                assert_elapsed(start, ms(0));
                assert_eq!(tg.len(), 10);
                Ok(())
            })
            .await
            .unwrap();
        let order: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        assert_eq!(started.events(), order);
    }
}

spec! {
    /// A cancelled group drops the tasks that were still waiting for a slot: they never
    /// start, and their handles say they were cancelled.
    async fn a_cancelled_group_never_starts_its_queued_tasks() {
        let ran = Counter::new();
        let r = ran.clone();
        let queued = Arc::new(Mutex::new(Vec::new()));
        let q = queued.clone();
        let err = TaskGroup::<BoxError>::builder()
            .limit(1)
            .scope(|tg| async move {
                // Holds the only slot until every task is spawned, however slow the machine.
                let spawned = Latch::new();
                let s = spawned.clone();
                tg.spawn(async move {
                    s.wait().await;
                    fail_after(ms(10), "boom").await
                })?;
                for _ in 0..5 {
                    let r = r.clone();
                    q.lock().unwrap().push(tg.spawn(async move {
                        r.incr();
                        Ok(())
                    })?);
                }
                spawned.set();
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(messages(&err), ["boom"]);
        assert_eq!(ran.get(), 0);
        for handle in queued.lock().unwrap().drain(..) {
            assert!(matches!(handle.result(), Err(TaskError::Cancelled(_))));
        }
    }
}

spec! {
    /// A detached shield does not wait for a slot: it is not one of the limited tasks.
    async fn a_detached_shield_ignores_the_limit() {
        let saved = TaskGroup::<BoxError>::builder()
            .limit(1)
            .scope(|tg| async move {
                tg.spawn(async {
                    sleep(ms(20)).await;
                    Ok(())
                })?;
                let save = shield_detached(async { "saved" });
                Ok(save.await?)
            })
            .await
            .unwrap();
        assert_eq!(saved, "saved");
    }
}

spec! {
    /// Queued tasks show as queued in a snapshot.
    async fn queued_tasks_show_as_queued() {
        TaskGroup::<BoxError>::builder()
            .limit(1)
            .scope(|tg| async move {
                // Runs until the snapshot is taken, however slow the machine.
                let taken = Latch::new();
                let t = taken.clone();
                tg.spawn_named("running", async move {
                    t.wait().await;
                    Ok(())
                })?;
                tg.spawn_named("waiting", async { Ok(()) })?;
                let suspended = || tg.snapshot().tasks.first().is_some_and(|t| t.state == TaskState::Suspended);
                eventually(Duration::from_secs(10), suspended).await;
                let snapshot = tg.snapshot();
                assert_eq!(snapshot.limit, Some(1));
                assert_eq!(snapshot.queued, 1);
                let states: Vec<_> = snapshot.tasks.iter().map(|t| (t.name.clone(), t.state)).collect();
                assert_eq!(
                    states,
                    [
                        (Some("running".to_string()), TaskState::Suspended),
                        (Some("waiting".to_string()), TaskState::Queued),
                    ]
                );
                taken.set();
                Ok(())
            })
            .await
            .unwrap();
    }
}

#[test]
#[should_panic(expected = "a task group's limit must be at least 1")]
fn a_limit_of_zero_is_refused() {
    let _ = TaskGroup::<BoxError>::builder().limit(0);
}
