//! Local groups: tasks that run inside the calling task, borrow freely and need not be
//! `Send`, under the same cancellation and error rules as a `TaskGroup`.

use std::cell::{Cell, RefCell};
use std::panic::AssertUnwindSafe;
use std::rc::Rc;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aio::{
    BoxError, CancelReason, JoinPolicy, LocalGroup, ReturnWhen, SendLocalGroup, SpawnError,
    TaskError, TaskGroup, TaskHandle, on_cancel, timeout,
};
use futures::FutureExt;
use tokio::time::{Instant, sleep};

use crate::support::*;

spec! {
    /// Tasks borrow the caller's data, `Rc` and `RefCell` included, and run concurrently:
    /// two 20 ms tasks take 20 ms.
    async fn local_tasks_borrow_and_run_concurrently() {
        let shared = Rc::new(RefCell::new(Vec::new()));
        let counter = Cell::new(0);
        let start = Instant::now();
        let (shared_ref, counter_ref) = (&shared, &counter);
        LocalGroup::<BoxError>::scope(|lg| async move {
            for name in ["a", "b"] {
                lg.spawn(async move {
                    sleep(ms(20)).await;
                    shared_ref.borrow_mut().push(name);
                    counter_ref.set(counter_ref.get() + 1);
                    Ok(())
                })?;
            }
            Ok(())
        })
        .await
        .unwrap();
        assert_elapsed(start, ms(20));
        let mut names = shared.borrow().clone();
        names.sort();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(counter.get(), 2);
    }
}

spec! {
    /// Handles give each task's value: awaited inside the scope, read after it.
    async fn local_handles_give_values() {
        let base = 40;
        let base_ref = &base;
        let (sum, later) = LocalGroup::<BoxError>::scope(|lg| async move {
            let a = lg.spawn(async move { Ok(*base_ref + 1) })?;
            let b = lg.spawn_named("b", async move {
                sleep(ms(5)).await;
                Ok(*base_ref + 2)
            })?;
            assert_eq!(b.name(), Some("b"));
            let later = lg.spawn(async { Ok("later") })?;
            Ok((a.await? + b.await?, later))
        })
        .await
        .unwrap();
        assert_eq!(sum, 83);
        assert_eq!(later.result(), Ok("later"));
    }
}

spec! {
    /// A failure cancels the body and the other tasks; their cleanup runs before the scope
    /// returns every failure.
    async fn a_local_failure_cancels_the_rest() {
        let log = RefCell::new(Vec::new());
        let log_ref = &log;
        let err = LocalGroup::<BoxError>::scope(|lg| async move {
            lg.spawn(on_cancel(sleep_forever::<()>(), move |_| async move {
                sleep(ms(5)).await;
                log_ref.borrow_mut().push("sibling cleaned up");
                Ok(())
            }))?;
            lg.spawn(on_cancel(sleep_forever::<()>(), |_| async {
                Err("cleanup failed".into())
            }))?;
            lg.spawn(fail_after(ms(10), "boom"))?;
            sleep(FOREVER).await;
            log_ref.borrow_mut().push("body went on");
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["boom", "cleanup failed"]);
        assert_eq!(*log.borrow(), ["sibling cleaned up"]);
    }
}

spec! {
    /// A panicking local task cancels the others, and the panic is re-raised after they
    /// finish.
    async fn a_local_panic_is_reraised_after_the_others() {
        let cleaned = Cell::new(false);
        let cleaned_ref = &cleaned;
        let outcome = AssertUnwindSafe(LocalGroup::<BoxError>::scope(|lg| async move {
            lg.spawn(on_cancel(sleep_forever::<()>(), move |_| async move {
                sleep(ms(5)).await;
                cleaned_ref.set(true);
                Ok(())
            }))?;
            lg.spawn(async {
                sleep(ms(1)).await;
                if true {
                    panic!("local task panicked");
                }
                Ok(())
            })?;
            Ok(())
        }))
        .catch_unwind()
        .await;
        assert_eq!(
            outcome.unwrap_err().downcast_ref::<&str>(),
            Some(&"local task panicked")
        );
        assert!(cleaned.get());
    }
}

spec! {
    /// A timeout around a local group cancels its tasks, cleanup included.
    async fn a_timeout_around_a_local_group_cancels_its_tasks() {
        let cleaned = Cell::new(0);
        let cleaned_ref = &cleaned;
        let r = timeout(
            ms(10),
            LocalGroup::<BoxError>::scope(|lg| async move {
                for _ in 0..3 {
                    lg.spawn(on_cancel(sleep_forever::<()>(), move |_| async move {
                        sleep(ms(1)).await;
                        cleaned_ref.set(cleaned_ref.get() + 1);
                        Ok(())
                    }))?;
                }
                Ok(())
            }),
        )
        .await;
        assert!(r.is_err(), "{r:?}");
        assert_eq!(cleaned.get(), 3);
    }
}

spec! {
    /// `cancel()` ends the group without an error; afterwards spawning is refused.
    async fn a_local_group_can_be_cancelled() {
        let escaped = LocalGroup::<BoxError>::scope(|lg| async move {
            let task = lg.spawn(sleep_forever::<()>())?;
            lg.cancel();
            assert!(matches!(lg.spawn(async { Ok(()) }), Err(SpawnError::ShuttingDown(_))));
            Ok((lg.clone(), task))
        })
        .await
        .unwrap();
        let (lg, task) = escaped;
        assert!(matches!(task.result(), Err(TaskError::Cancelled(c)) if c.reason() == &CancelReason::Explicit));
        assert!(matches!(lg.spawn(async { Ok(()) }), Err(SpawnError::Finished)));
    }
}

spec! {
    /// Local and spawned groups nest both ways, and local tasks show in the task tree.
    async fn local_and_spawned_groups_nest() {
        let drawing = RefCell::new(String::new());
        let drawing_ref = &drawing;
        TaskGroup::<BoxError>::builder()
            .name("outer")
            .scope(|tg| async move {
                // Inside a spawned (`Send`) task, the `Send` form of a local group.
                tg.spawn(async {
                    let total = AtomicUsize::new(0);
                    let total_ref = &total;
                    SendLocalGroup::<BoxError>::scope(|lg| async move {
                        lg.spawn(async move {
                            total_ref.fetch_add(1, Ordering::SeqCst);
                            Ok(())
                        })?;
                        Ok(())
                    })
                    .await?;
                    assert_eq!(total.load(Ordering::SeqCst), 1);
                    Ok(())
                })?;
                LocalGroup::<BoxError>::scope_named("local", aio::JoinPolicy::FailFast, |lg| async move {
                    // Waits until the tree is drawn, not for a sleep that a loaded machine
                    // could outlast.
                    let drawn = Latch::new();
                    let waiting = drawn.clone();
                    lg.spawn_named("borrowing", async move {
                        waiting.wait().await;
                        Ok(())
                    })?;
                    sleep(ms(1)).await;
                    *drawing_ref.borrow_mut() = aio::task_tree().to_string();
                    drawn.set();
                    Ok(())
                })
                .await?;
                Ok(())
            })
            .await
            .unwrap();
        let drawing = drawing.into_inner();
        assert!(drawing.contains("(body) task_group") && drawing.contains("'local'"), "{drawing}");
        assert!(drawing.contains("'borrowing' (suspended"), "{drawing}");
    }
}

spec! {
    /// A local task's handle is a `TaskHandle`, the handle of a `TaskGroup`'s task: the same
    /// methods, and what takes handles (`wait`) takes it. Cancelling one task leaves the
    /// group and the other tasks going.
    async fn a_local_task_has_the_handle_of_a_task_group_task() {
        let words = ["one", "three", "forever"];
        let words = &words;
        LocalGroup::<BoxError>::scope(|lg| async move {
            let mut pending: Vec<TaskHandle<usize>> = words
                .iter()
                .map(|word| {
                    lg.spawn_named(*word, async move {
                        if *word == "forever" {
                            return sleep_forever().await;
                        }
                        // 150 ms against 250: a margin no loaded machine closes.
                        sleep(ms(word.len() as u64 * 50)).await;
                        Ok(word.len())
                    })
                })
                .collect::<Result<_, _>>()?;
            let done = aio::wait(&mut pending, ReturnWhen::FirstCompleted).await;
            assert_eq!(done.len(), 1);
            assert_eq!(done[0].name(), Some("one"));
            assert!(done[0].is_finished() && !done[0].has_failed());
            let forever = pending.pop().unwrap();
            assert!(forever.cancel_with("enough"));
            match (&mut { forever }).await {
                Err(TaskError::Cancelled(c)) => assert_eq!(c.message(), Some("enough")),
                other => panic!("{other:?}"),
            }
            assert_eq!(pending.pop().unwrap().await?, 5);
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// A local task whose future panics while it is dropped, after it returned, has
    /// panicked, and its group re-raises that very panic once the others are done: the
    /// scope drops the future itself, so the payload is not lost.
    async fn a_panic_while_dropping_a_finished_local_task_is_reraised_with_its_payload() {
        struct PanicOnDrop;
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                panic!("dropped after it returned");
            }
        }
        let log = Log::new();
        let l = log.clone();
        let scope = LocalGroup::<BoxError>::scope(|lg| async move {
            let sibling = lg.spawn(on_cancel(sleep_forever::<()>(), move |_| async move {
                l.push("sibling cleaned up");
                Ok(())
            }))?;
            let bomb = PanicOnDrop;
            let task = lg.spawn(async move {
                let _bomb = &bomb;
                sleep(ms(1)).await;
                Ok(())
            })?;
            assert!(matches!(task.await, Err(TaskError::Panicked(_))));
            assert!(aio::is_cancelled());
            drop(sibling);
            Ok(())
        });
        let panic = AssertUnwindSafe(scope).catch_unwind().await.unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"dropped after it returned"));
        assert_eq!(log.events(), ["sibling cleaned up"]);
    }
}

spec! {
    /// A local task dropped with its scope's future ends aborted, as a task of a dropped
    /// group that ran out of its grace period does: its handle says so.
    async fn a_local_task_dropped_with_its_scope_ends_aborted() {
        let handle = std::sync::Mutex::new(None);
        let slot = &handle;
        let scope = LocalGroup::<BoxError>::scope(|lg| async move {
            *slot.lock().unwrap() = Some(lg.spawn(sleep_forever::<()>())?);
            sleep_forever::<()>().await
        });
        assert!(tokio::time::timeout(ms(5), scope).await.is_err());
        let handle = handle.lock().unwrap().take().unwrap();
        assert!(handle.is_finished() && handle.is_cancelled());
        assert_eq!(handle.result(), Err(TaskError::Aborted));
    }
}

/// Dropping a local group's scope drops its tasks at once: they live in the scope's future.
#[tokio::test(start_paused = true)]
async fn dropping_a_local_group_drops_its_tasks_at_once() {
    let dropped = DropFlag::new();
    let guard = dropped.guard();
    tokio::select! {
        _ = LocalGroup::<BoxError>::scope(|lg| async move {
            lg.spawn(async move {
                let _guard = guard;
                sleep_forever::<()>().await
            })?;
            sleep_forever::<()>().await
        }) => unreachable!(),
        _ = sleep(ms(5)) => {}
    }
    assert!(dropped.dropped());
}

/// A future that counts its polls in `polls`.
struct Counted<F> {
    polls: Rc<Cell<usize>>,
    fut: std::pin::Pin<Box<F>>,
}

impl<F: std::future::Future> std::future::Future for Counted<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        self.fut.as_mut().poll(cx)
    }
}

/// A cancelled local group polls only the tasks that were woken: its cancellation reaches
/// each task once, and `n` tasks that unwind one after the other (each cleanup ending 1 ms
/// after the one before) cost a few polls each, not `n` each.
#[tokio::test(start_paused = true)]
async fn a_cancelled_local_group_polls_only_the_tasks_that_were_woken() {
    const N: u64 = 200;
    let polls = Rc::new(Cell::new(0));
    let cleaned = Rc::new(Cell::new(0));
    let (p, c) = (Rc::clone(&polls), Rc::clone(&cleaned));
    LocalGroup::<BoxError>::scope(|lg| async move {
        for i in 0..N {
            let c = Rc::clone(&c);
            lg.spawn(Counted {
                polls: Rc::clone(&p),
                fut: Box::pin(on_cancel(sleep_forever::<()>(), move |_| async move {
                    sleep(ms(i + 1)).await;
                    c.set(c.get() + 1);
                    Ok(())
                })),
            })?;
        }
        sleep(ms(1)).await;
        lg.cancel();
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(cleaned.get(), N as usize);
    assert!(
        polls.get() <= 4 * N as usize,
        "{} polls for {N} tasks",
        polls.get()
    );
}

spec! {
    /// A local group built with a limit runs at most that many tasks at once; the others
    /// wait in the order they were spawned, as in a `TaskGroup`.
    async fn a_local_group_with_a_limit_runs_that_many_at_once_in_spawn_order() {
        let running = Cell::new(0);
        let peak = Cell::new(0);
        let started = RefCell::new(Vec::new());
        let (r, p, s) = (&running, &peak, &started);
        TaskGroup::<BoxError>::builder()
            .limit(2)
            .local_scope(|lg| async move {
                for i in 0..6 {
                    lg.spawn(async move {
                        s.borrow_mut().push(i);
                        r.set(r.get() + 1);
                        p.set(p.get().max(r.get()));
                        sleep(ms(5)).await;
                        r.set(r.get() - 1);
                        Ok(())
                    })?;
                }
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(peak.get(), 2);
        assert_eq!(*started.borrow(), [0, 1, 2, 3, 4, 5]);
    }
}

spec! {
    /// A queued task of a cancelled local group never starts: its handle says it was
    /// cancelled, and the running tasks unwind, cleanup included.
    async fn a_queued_local_task_of_a_cancelled_group_never_starts() {
        let log = Log::new();
        let l = log.clone();
        let queued = TaskGroup::<BoxError>::builder()
            .limit(1)
            .local_scope(|lg| async move {
                let l2 = l.clone();
                lg.spawn(on_cancel(sleep_forever::<()>(), move |_| async move {
                    l2.push("running task cleaned up");
                    Ok(())
                }))?;
                let l3 = l.clone();
                let queued = lg.spawn(async move {
                    l3.push("queued task started");
                    Ok(())
                })?;
                sleep(ms(5)).await;
                lg.cancel();
                Ok(queued)
            })
            .await
            .unwrap();
        assert!(matches!(queued.result(), Err(TaskError::Cancelled(_))));
        assert_eq!(log.events(), ["running task cleaned up"]);
    }
}

spec! {
    /// Cancelling one queued local task through its handle takes it out of the queue: it
    /// never starts, and the next one gets the slot.
    async fn a_cancelled_queued_local_task_never_starts_and_the_queue_moves_on() {
        let log = Log::new();
        let l = log.clone();
        TaskGroup::<BoxError>::builder()
            .limit(1)
            .local_scope(|lg| async move {
                let (la, lb, lc) = (l.clone(), l.clone(), l.clone());
                lg.spawn(async move {
                    sleep(ms(5)).await;
                    la.push("a");
                    Ok(())
                })?;
                let b = lg.spawn(async move {
                    lb.push("b");
                    Ok(())
                })?;
                lg.spawn(async move {
                    lc.push("c");
                    Ok(())
                })?;
                assert!(b.cancel());
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(log.events(), ["a", "c"]);
    }
}

spec! {
    /// The builder's policy applies to a local group too: under `Supervisor`, a failure
    /// cancels nobody else, and is reported.
    async fn a_supervised_local_group_lets_the_others_finish() {
        let log = Log::new();
        let l = log.clone();
        let err = TaskGroup::<BoxError>::builder()
            .name("local workers")
            .policy(JoinPolicy::Supervisor)
            .local_scope(|lg| async move {
                lg.spawn(async { Err::<(), BoxError>("bad".into()) })?;
                lg.spawn(async move {
                    sleep(ms(5)).await;
                    l.push("the other finished");
                    Ok(())
                })?;
                Ok(())
            })
            .await
            .unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(log.events(), ["the other finished"]);
    }
}

/// A task spawned from another thread into a limited `SendLocalGroup` whose running task
/// finishes at that moment is never skipped: it is queued before a slot can be handed on,
/// so it starts, and the scope returns. (Many rounds, to meet the moment.)
#[test]
fn a_local_task_spawned_as_a_slot_frees_is_never_skipped() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for round in 0..2_000 {
            let done = Arc::new(AtomicUsize::new(0));
            let d = Arc::clone(&done);
            let scope =
                TaskGroup::<BoxError>::builder()
                    .limit(1)
                    .send_local_scope(|lg| async move {
                        let spawners: Vec<_> = (0..3)
                            .map(|_| {
                                let (lg, d) = (lg.clone(), Arc::clone(&d));
                                tokio::spawn(async move {
                                    for _ in 0..20 {
                                        let d = Arc::clone(&d);
                                        lg.spawn(async move {
                                            tokio::task::yield_now().await;
                                            d.fetch_add(1, Ordering::SeqCst);
                                            Ok(())
                                        })?;
                                    }
                                    Ok::<(), BoxError>(())
                                })
                            })
                            .collect();
                        for spawner in spawners {
                            spawner.await??;
                        }
                        Ok(())
                    });
            let finished = tokio::time::timeout(Duration::from_secs(10), scope).await;
            assert!(finished.is_ok(), "round {round}: the scope hung");
            finished.unwrap().unwrap();
            assert_eq!(done.load(Ordering::SeqCst), 60, "round {round}");
        }
    });
}

spec! {
    /// A queued task whose future panics when the cancelled group drops it unstarted is a
    /// task panic like any other: re-raised once every task has finished, the running
    /// task's cleanup included, and no slot is given back twice.
    async fn a_queued_local_task_that_panics_when_dropped_is_reraised_after_the_rest() {
        struct PanicOnDrop;
        impl Drop for PanicOnDrop {
            fn drop(&mut self) {
                panic!("dropped while queued");
            }
        }
        let log = Log::new();
        let l = log.clone();
        let scope = TaskGroup::<BoxError>::builder()
            .limit(1)
            .local_scope(|lg| async move {
                lg.spawn(on_cancel(sleep_forever::<()>(), move |_| async move {
                    sleep(ms(5)).await;
                    l.push("running task cleaned up");
                    Ok(())
                }))?;
                let bomb = PanicOnDrop;
                lg.spawn(async move {
                    let _bomb = bomb;
                    Ok(())
                })?;
                sleep(ms(1)).await;
                lg.cancel();
                Ok(())
            });
        let panic = AssertUnwindSafe(scope).catch_unwind().await.unwrap_err();
        assert_eq!(panic.downcast_ref::<&str>(), Some(&"dropped while queued"));
        assert_eq!(log.events(), ["running task cleaned up"]);
    }
}
