//! Eager spawn (§1g, §16): `TaskGroup::spawn_eager` and `LocalGroup::spawn_eager`, Python
//! 3.12's `eager_task_factory`. The task's first poll runs inside the call, in the task's own
//! scope; a task that finishes there never becomes a Tokio task (or, in a local group, a task
//! of the scope), one that suspends goes on as an ordinary task. Every other rule of a group
//! holds as for `spawn` (§1g.39).
//!
//! Not applicable: running the step in a copy of the creator's context (§16.3: aio has no
//! contextvars; a Tokio task-local of the caller is visible in the first step only, as the
//! docs say), and `eager_start=False` per call (§16.6: `spawn` is that call).

use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use aio::{
    BoxError, CancelReason, JoinPolicy, LocalGroup, SpawnError, TaskError, TaskGroup, TaskState,
    current_deadline, current_task, is_cancelled, timeout,
};
use futures::FutureExt;
use tokio::sync::oneshot;
use tokio::time::sleep;

use crate::support::*;

/// How many Tokio tasks are alive on the runtime the caller runs in.
fn tokio_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Set by a future when it is first polled: tells whether a first step ran, and when.
#[derive(Clone, Default)]
struct Polled(Arc<AtomicBool>);

impl Polled {
    fn new() -> Self {
        Self::default()
    }

    fn set(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// A future that wakes itself during its first poll and suspends: a yield whose wake-up
/// comes before the task it belongs to exists.
struct WakeThenSuspend(bool);

impl std::future::Future for WakeThenSuspend {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            return Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

spec! {
    /// §16.1: a future that is ready at its first poll is done before `spawn_eager`
    /// returns, without a Tokio task: its handle holds its result, and it no longer counts
    /// in the group.
    async fn spawn_eager_ready_future_never_becomes_a_tokio_task_and_its_handle_is_ready_at_once() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let before = tokio_tasks();
            let polled = Polled::new();
            let p = polled.clone();
            let handle = tg.spawn_eager(async move {
                p.set();
                Ok(42)
            })?;
            assert!(polled.get(), "the first poll runs inside the call");
            assert_eq!(tokio_tasks(), before, "no Tokio task was spawned");
            assert!(handle.is_finished());
            assert_eq!(tg.len(), 0);
            assert!(tg.snapshot().tasks.is_empty());
            assert_eq!(handle.result(), Ok(42));
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// §16.1: a future that suspends at its first poll has taken its first step when
    /// `spawn_eager` returns, and goes on as an ordinary task: a Tokio task of the group,
    /// counted, named, shown in the snapshot and awaited through its handle.
    async fn spawn_eager_pending_future_continues_as_an_ordinary_task() {
        let log = Log::new();
        let l = log.clone();
        let release = Latch::new();
        let r = release.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let before = tokio_tasks();
            let handle = tg.spawn_eager_named("fetch", async move {
                l.push("first step");
                r.wait().await;
                l.push("second step");
                Ok("page")
            })?;
            assert_eq!(log.events(), ["first step"]);
            assert!(!handle.is_finished());
            assert_eq!(handle.name(), Some("fetch"));
            assert_eq!(tg.len(), 1);
            assert_eq!(tokio_tasks(), before + 1, "it went on as a Tokio task");
            let snapshot = tg.snapshot();
            assert_eq!(snapshot.tasks.len(), 1);
            assert_eq!(snapshot.tasks[0].id, handle.id());
            assert_eq!(snapshot.tasks[0].name.as_deref(), Some("fetch"));
            release.set();
            assert_eq!(handle.await?, "page");
            assert_eq!(log.events(), ["first step", "second step"]);
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// §1g.40 (gh-128550, gh-128588): a task failing at its first poll fails the group at
    /// once, as a spawned task's failure does: the other tasks and the body are cancelled,
    /// the group refuses new tasks (§1g.41), its error names the task, and the cancellation
    /// does not leak to the group's caller.
    async fn spawn_eager_failure_cancels_siblings_like_spawn() {
        let sibling_dropped = DropFlag::new();
        let started = Counter::new();
        let (s, guard) = (started.clone(), sibling_dropped.guard());
        let log = Log::new();
        let l = log.clone();
        let failed_id = Arc::new(Mutex::new(None));
        let id = failed_id.clone();
        let err = TaskGroup::<BoxError>::scope(|outer| async move {
            let err = TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(async move {
                    let _guard = guard;
                    running_forever::<()>(s).await
                })?;
                started.until(1).await;
                let failed = tg.spawn_eager_named("eager", async { Err::<(), _>("boom".into()) })?;
                l.push(format!("failed at once: {}", failed.has_failed()));
                l.push(format!("group cancelled at once: {}", tg.is_cancelled()));
                let refused = tg.spawn_eager(async { Ok(()) }).unwrap_err();
                l.push(format!("refused: {}", matches!(refused, SpawnError::ShuttingDown(_))));
                *id.lock().unwrap() = Some(failed.id());
                sleep_forever::<()>().await
            })
            .await
            .unwrap_err();
            assert!(!is_cancelled() && !outer.is_cancelled(), "nothing leaks out of the group");
            Ok(err)
        })
        .await
        .unwrap();
        assert_eq!(
            log.events(),
            ["failed at once: true", "group cancelled at once: true", "refused: true"]
        );
        assert!(sibling_dropped.dropped());
        assert!(!err.is_cancelled());
        assert_eq!(err.len(), 1);
        let failure = err.first().unwrap();
        assert_eq!(failure.error().to_string(), "boom");
        assert_eq!(failure.task_id(), *failed_id.lock().unwrap());
        assert_eq!(failure.name(), Some("eager"));
    }
}

spec! {
    /// §1f.34 under eager start: a panic in the first poll does not escape `spawn_eager`;
    /// it is the task's panic, which cancels the group and is re-raised by the scope once
    /// the other tasks have finished their cleanup.
    async fn spawn_eager_panic_is_reraised_by_the_group() {
        let log = Log::new();
        let l = log.clone();
        let started = Counter::new();
        let outcome = AssertUnwindSafe(TaskGroup::<BoxError>::scope(|tg| async move {
            let l2 = l.clone();
            let s = started.clone();
            tg.spawn(aio::on_cancel(running_forever::<()>(s), move |_| async move {
                sleep(ms(10)).await;
                l2.push("sibling cleaned up");
                Ok(())
            }))?;
            started.until(1).await;
            let handle = tg.spawn_eager(async {
                if true {
                    panic!("eager task panicked");
                }
                Ok(())
            })?;
            l.push("spawn_eager returned");
            assert!(handle.has_failed() && tg.is_cancelled());
            assert!(matches!(handle.result(), Err(TaskError::Panicked(_))));
            sleep_forever::<()>().await
        }))
        .catch_unwind()
        .await;
        let payload = outcome.expect_err("the panic is re-raised");
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"eager task panicked"));
        assert_eq!(log.events(), ["spawn_eager returned", "sibling cleaned up"]);
    }
}

spec! {
    /// §16.2: the first poll runs in the new task's own scope: `current_task()` is the new
    /// task with its name and group, the group's deadline and cancellation apply, timeouts
    /// opened in it nest under it; and the caller's scope is back once `spawn_eager`
    /// returns.
    async fn spawn_eager_runs_in_the_task_scope() {
        let seen = Log::new();
        let s = seen.clone();
        let group = TaskGroup::<BoxError>::builder().name("eager-group");
        timeout(FOREVER, group.scope(|tg| async move {
            let group_id = tg.id();
            let deadline = current_deadline().expect("the timeout's deadline");
            let handle = tg.spawn_eager_named("first-step", async move {
                let task = current_task().expect("a task of the group");
                s.push(format!("{}@{}", task.name().unwrap(), task.group_name().unwrap()));
                s.push(format!("same group: {}", task.group_id() == Some(group_id)));
                s.push(format!("deadline: {}", current_deadline() == Some(deadline)));
                s.push(format!("cancelled: {}", is_cancelled()));
                timeout(ms(5), async {
                    let inner = current_deadline().unwrap();
                    s.push(format!("inner deadline: {}", inner < deadline));
                })
                .await?;
                Ok(task.id())
            })?;
            assert!(current_task().is_none(), "the body is back in its own scope");
            let id = handle.id();
            assert_eq!(handle.result()?, id);
            Ok(())
        }))
        .await
        .unwrap()
        .unwrap();
        assert_eq!(
            seen.events(),
            [
                "first-step@eager-group",
                "same group: true",
                "deadline: true",
                "cancelled: false",
                "inner deadline: true"
            ]
        );
    }
}

spec! {
    /// A group opened in the first step belongs to the task: it shows under the task in the
    /// snapshot, and when it waits for its own tasks the eager task goes on as a Tokio task
    /// that waits for it.
    async fn spawn_eager_groups_opened_in_the_first_step_belong_to_the_task() {
        let release = Latch::new();
        let r = release.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let handle = tg.spawn_eager(async move {
                TaskGroup::<BoxError>::builder()
                    .name("inner")
                    .scope(|inner| async move {
                        inner.spawn(async move {
                            r.wait().await;
                            Ok(())
                        })?;
                        Ok(7)
                    })
                    .await
                    .map_err(BoxError::from)
            })?;
            assert!(!handle.is_finished());
            let snapshot = tg.snapshot();
            let task = &snapshot.tasks[0];
            assert_eq!(task.id, handle.id());
            assert_eq!(task.groups.len(), 1);
            assert_eq!(task.groups[0].name.as_deref(), Some("inner"));
            assert_eq!(task.groups[0].tasks.len(), 1);
            release.set();
            assert_eq!(handle.await?, 7);
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// §16.2: a task shows in its group's snapshot while its first step runs, and not once
    /// it has finished there.
    async fn spawn_eager_task_shows_in_the_snapshot_only_while_it_lives() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            let handle = tg.spawn_eager_named("short", async move {
                let snapshot = group.snapshot();
                let me = current_task().unwrap().id();
                let running = snapshot
                    .tasks
                    .iter()
                    .any(|t| t.id == me && t.state == TaskState::Running);
                Ok((running, group.len()))
            })?;
            assert_eq!(handle.result()?, (true, 1));
            assert!(tg.snapshot().tasks.is_empty());
            assert_eq!(tg.len(), 0);
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// §16.4: cancelling a task that finished in its first step does nothing, and its result
    /// is kept. §16.5: one that suspended is cancelled as any task is, with the message.
    async fn spawn_eager_cancel_is_a_noop_once_finished_and_delivered_while_suspended() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let done = tg.spawn_eager(async { Ok(1) })?;
            assert!(!done.cancel());
            assert_eq!(done.result(), Ok(1));
            let waiting = tg.spawn_eager(pending_forever::<()>())?;
            assert!(waiting.cancel_with("no longer needed"));
            let cancelled = waiting.await.unwrap_err();
            let cancelled = cancelled.as_cancelled().unwrap();
            assert_eq!(cancelled.reason(), &CancelReason::Explicit);
            assert_eq!(cancelled.message(), Some("no longer needed"));
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// §1g.42 (gh-155418): a task that cancels its group in its first step, before its
    /// first await, is cancelled itself at that await, and the group ends without hanging.
    async fn spawn_eager_task_cancelling_its_group_in_its_first_step_does_not_hang() {
        let handle = TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            let handle = tg.spawn_eager(async move {
                group.cancel();
                pending_forever::<()>().await
            })?;
            // It ended at its first await, inside the call.
            assert!(handle.is_finished() && handle.is_cancelled());
            Ok(handle)
        })
        .await
        .unwrap();
        assert!(matches!(handle.result(), Err(TaskError::Cancelled(_))));
    }
}

spec! {
    /// A group with a limit and a free slot runs the first step at once, in that slot, and
    /// a task that finished there gives the slot back.
    async fn spawn_eager_into_limited_group_runs_in_a_free_slot_and_gives_it_back() {
        TaskGroup::<BoxError>::builder()
            .limit(1)
            .scope(|tg| async move {
                for i in 0..3 {
                    let handle = tg.spawn_eager(async move { Ok(i) })?;
                    assert_eq!(handle.result()?, i, "task {i} found the slot free");
                }
                Ok(())
            })
            .await
            .unwrap();
    }
}

spec! {
    /// A group with a limit and no free slot cannot start the task now: it is accepted as
    /// `spawn` accepts it, waits for its turn in spawn order, and starts as a Tokio task.
    async fn spawn_eager_into_limited_group_without_a_free_slot_waits_its_turn_like_spawn() {
        let log = Log::new();
        let l = log.clone();
        let release = Latch::new();
        let r = release.clone();
        TaskGroup::<BoxError>::builder()
            .limit(1)
            .scope(|tg| async move {
                let l1 = l.clone();
                tg.spawn(async move {
                    r.wait().await;
                    l1.push("first done");
                    Ok(())
                })?;
                let l2 = l.clone();
                let queued = tg.spawn_eager(async move {
                    l2.push("eager started");
                    Ok(())
                })?;
                assert!(l.events().is_empty(), "not polled while the group is full");
                assert!(!queued.is_finished());
                assert_eq!(tg.snapshot().queued, 1);
                release.set();
                queued.await?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(log.events(), ["first done", "eager started"]);
    }
}

spec! {
    /// §1a.6: a group whose scope has returned refuses an eager task with
    /// `SpawnError::Finished`, and one that is cancelled with `SpawnError::ShuttingDown`;
    /// the future is dropped without being polled.
    async fn spawn_eager_into_finished_group_is_a_spawn_error() {
        let polled = Polled::new();
        let tg = TaskGroup::<BoxError>::scope(|tg| async move { Ok(tg) })
            .await
            .unwrap();
        let (p, dropped) = (polled.clone(), DropFlag::new());
        let guard = dropped.guard();
        let refused = tg
            .spawn_eager(async move {
                let _guard = guard;
                p.set();
                Ok(())
            })
            .unwrap_err();
        assert!(matches!(refused, SpawnError::Finished));
        assert!(dropped.dropped() && !polled.get());

        let p = polled.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            let refused = tg
                .spawn_eager(async move {
                    p.set();
                    Ok(())
                })
                .unwrap_err();
            assert!(matches!(refused, SpawnError::ShuttingDown(_)));
            Ok(())
        })
        .await
        .unwrap();
        assert!(!polled.get());
    }
}

spec! {
    /// A wake-up that comes before the Tokio task exists is not lost: one sent during the
    /// first poll itself (a yield), and one sent right after `spawn_eager` returns, before
    /// the task first runs.
    async fn spawn_eager_wake_up_before_the_task_first_runs_is_not_lost() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let yielded = tg.spawn_eager(async {
                WakeThenSuspend(false).await;
                Ok("woke itself")
            })?;
            let (tx, rx) = oneshot::channel::<&'static str>();
            let waiting = tg.spawn_eager(async move { Ok(rx.await?) })?;
            assert!(!waiting.is_finished());
            tx.send("sent right after").unwrap();
            assert_eq!(yielded.await?, "woke itself");
            assert_eq!(waiting.await?, "sent right after");
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// `spawn_eager` from a plain thread, as `spawn` may be called: the first step runs on
    /// that thread inside the group's runtime, so a timer it creates belongs to that runtime,
    /// and the task goes on there.
    async fn spawn_eager_from_a_plain_thread_runs_the_first_step_there_in_the_groups_runtime() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            let (handle, spawner) = std::thread::spawn(move || {
                let handle = group.spawn_eager(async {
                    let first = std::thread::current().id();
                    sleep(ms(1)).await;
                    Ok(first)
                });
                (handle, std::thread::current().id())
            })
            .join()
            .unwrap();
            assert_eq!(handle?.await?, spawner);
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// In a supervisor group a failure in the first step cancels nobody, and is there to
    /// take as soon as `spawn_eager` returns.
    async fn spawn_eager_failure_in_a_supervisor_is_there_to_take_at_once() {
        TaskGroup::<BoxError>::builder()
            .policy(JoinPolicy::Supervisor)
            .scope(|tg| async move {
                let failed = tg.spawn_eager(async { Err::<(), _>("crash".into()) })?;
                assert!(!tg.is_cancelled());
                let error = tg.take_failure(failed.id()).expect("the failure is recorded");
                assert_eq!(error.to_string(), "crash");
                Ok(())
            })
            .await
            .unwrap();
    }
}

spec! {
    /// A local group's eager task borrows and need not be `Send`, as its other tasks: ready
    /// at its first poll, it has finished when `spawn_eager` returns, in its own scope.
    async fn local_spawn_eager_ready_future_borrows_and_is_done_at_once() {
        let counter = std::cell::Cell::new(0);
        let counter = &counter;
        LocalGroup::<BoxError>::scope(|lg| async move {
            let handle = lg.spawn_eager_named("borrower", async move {
                counter.set(counter.get() + 1);
                Ok(current_task().unwrap().name().map(String::from))
            })?;
            assert_eq!(counter.get(), 1, "the first poll runs inside the call");
            assert!(handle.is_finished());
            assert_eq!(lg.len(), 0);
            assert_eq!(handle.result()?.as_deref(), Some("borrower"));
            assert!(current_task().is_none(), "the body is back in its own scope");
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// A local group's eager task that suspends goes on as a task the scope polls, and a
    /// failure at the first poll fails the group as any task's does.
    async fn local_spawn_eager_pending_future_continues_and_a_failure_fails_the_group() {
        let log = Log::new();
        let l = &log;
        let release = Latch::new();
        let r = &release;
        LocalGroup::<BoxError>::scope(|lg| async move {
            let handle = lg.spawn_eager(async move {
                l.push("first step");
                r.wait().await;
                l.push("second step");
                Ok(1)
            })?;
            assert_eq!(l.events(), ["first step"]);
            assert_eq!(lg.len(), 1);
            r.set();
            assert_eq!(handle.await?, 1);
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(log.events(), ["first step", "second step"]);

        let err = LocalGroup::<BoxError>::scope(|lg| async move {
            let failed = lg.spawn_eager(async { Err::<(), _>("boom".into()) })?;
            assert!(failed.has_failed() && lg.is_cancelled());
            sleep_forever::<()>().await
        })
        .await
        .unwrap_err();
        assert_eq!(err.first().unwrap().error().to_string(), "boom");
    }
}

spec! {
    /// A local group with a limit and no free slot: the eager task waits for its turn, as
    /// `spawn`'s would.
    async fn local_spawn_eager_into_limited_group_waits_its_turn_like_spawn() {
        let log = Log::new();
        let l = &log;
        let release = Latch::new();
        let r = &release;
        TaskGroup::<BoxError>::builder()
            .limit(1)
            .local_scope(|lg| async move {
                lg.spawn(async move {
                    r.wait().await;
                    l.push("first done");
                    Ok(())
                })?;
                let queued = lg.spawn_eager(async move {
                    l.push("eager started");
                    Ok(())
                })?;
                assert!(l.events().is_empty(), "not polled while the group is full");
                assert!(!queued.is_finished());
                r.set();
                queued.await?;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(log.events(), ["first done", "eager started"]);
    }
}
