//! `Lock` (§8): asyncio's lock, with a guard API beside the unowned `acquire` / `release`.
//!
//! The poll-level tests drive each waiter by hand with tokio-test, so that the moments in
//! between (a waiter woken but not yet run, a waiter dropped there) can be looked at; the
//! `spec!` tests run real tasks on both runtimes.
//!
//! Not applicable: `await lock` and `async with lock as x` (§8.2-3: Rust has a guard
//! instead), loop binding (§8.15: a lock works across runtimes, tested below) and the
//! `loop=` argument (§8.16).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aio::sync::{Lock, OwnedLockGuard};
use aio::timeout;
use futures::FutureExt;
use tokio::time::{Instant, sleep};
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready};

use crate::support::*;
use crate::sync_support::*;

spec! {
    /// §8.1: a lock starts unlocked; `acquire` takes it and `release` gives it back.
    async fn lock_starts_unlocked_and_release_unlocks_it_8_1() {
        let lock = Lock::new();
        assert!(!lock.locked());
        lock.acquire().await;
        assert!(lock.locked());
        lock.release().unwrap();
        assert!(!lock.locked());
        let guard = lock.lock().await;
        assert!(lock.locked());
        drop(guard);
        assert!(!lock.locked());
    }
}

#[test]
fn lock_release_when_unlocked_is_an_error_8_4() {
    let lock = Lock::new();
    let err = lock.release().unwrap_err();
    assert_eq!(
        err.to_string(),
        "release of an unlocked lock: call release() once for each acquire()"
    );
    assert!(!lock.locked());
    // After a balanced acquire and release, one more release is refused and changes nothing.
    assert_ready!(spawn(lock.acquire()).poll());
    lock.release().unwrap();
    assert!(lock.release().is_err());
    assert!(!lock.locked());
    assert!(lock.try_lock().is_ok());
}

spec! {
    /// §8.5: the lock has no owner: a task may release a lock another task acquired, and the
    /// next waiter gets it.
    async fn lock_may_be_released_by_any_task_8_5() {
        let lock = Arc::new(Lock::new());
        let holder = tokio::spawn({
            let lock = Arc::clone(&lock);
            async move { lock.acquire().await }
        });
        holder.await.unwrap();
        assert!(lock.locked());
        let waiter = tokio::spawn({
            let lock = Arc::clone(&lock);
            async move {
                let _guard = lock.lock().await;
            }
        });
        until(|| waiters(&*lock) == 1).await;
        let releaser = tokio::spawn({
            let lock = Arc::clone(&lock);
            async move { lock.release() }
        });
        releaser.await.unwrap().unwrap();
        waiter.await.unwrap();
        assert!(!lock.locked());
    }
}

#[test]
fn lock_guard_released_by_another_task_releases_nothing_when_dropped_8_5() {
    let lock = Lock::new();
    let guard = lock.try_lock().unwrap();
    // Someone else releases it, unowned; the next waiter takes it.
    lock.release().unwrap();
    let mut next = spawn(lock.lock());
    let next_guard = assert_ready!(next.poll());
    // The first guard's acquisition is gone: dropping it must not release the second one.
    drop(guard);
    assert!(lock.locked());
    assert!(lock.try_lock().is_err());
    drop(next_guard);
    assert!(!lock.locked());
    assert!(lock.release().is_err());
}

spec! {
    /// §8.6: waiters get the lock in the order they started waiting.
    async fn lock_waiters_acquire_in_fifo_order_8_6() {
        let lock = Arc::new(Lock::new());
        let log = Log::new();
        let guard = lock.lock().await;
        let mut tasks = Vec::new();
        for i in 0..5 {
            let (l, log) = (Arc::clone(&lock), log.clone());
            tasks.push(tokio::spawn(async move {
                if i % 2 == 0 {
                    let _guard = l.lock().await;
                    log.push(format!("task {i}"));
                    tokio::task::yield_now().await;
                } else {
                    l.acquire().await;
                    log.push(format!("task {i}"));
                    tokio::task::yield_now().await;
                    l.release().unwrap();
                }
            }));
            // Task i is queued before task i + 1 starts.
            until(|| waiters(&*lock) == i + 1).await;
        }
        drop(guard);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(log.events(), ["task 0", "task 1", "task 2", "task 3", "task 4"]);
    }
}

#[test]
fn lock_newcomer_cannot_barge_past_a_woken_waiter_8_7() {
    let lock = Lock::new();
    let guard = lock.try_lock().unwrap();
    let mut first = spawn(lock.lock());
    assert_pending!(first.poll());
    drop(guard);
    // The lock is handed to `first`, which has not run yet: it stays taken.
    assert!(first.is_woken());
    assert!(lock.locked());
    assert!(lock.try_lock().is_err());
    let mut newcomer = spawn(lock.acquire());
    assert_pending!(newcomer.poll());
    let first_guard = assert_ready!(first.poll());
    assert_pending!(newcomer.poll());
    drop(first_guard);
    assert!(newcomer.is_woken());
    assert_ready!(newcomer.poll());
    lock.release().unwrap();
}

#[test]
fn lock_that_is_free_is_taken_at_once_8_8() {
    let lock = Lock::new();
    // No waiter at all.
    drop(assert_ready!(spawn(lock.lock()).poll()));
    // Only cancelled waiters.
    let guard = lock.try_lock().unwrap();
    let mut cancelled = spawn(lock.lock());
    assert_pending!(cancelled.poll());
    drop(cancelled);
    drop(guard);
    assert!(!lock.locked());
    drop(assert_ready!(spawn(lock.lock()).poll()));
    assert!(lock.try_lock().is_ok());
}

#[test]
fn lock_cancelled_waiter_is_removed_from_the_queue_8_9() {
    let lock = Lock::new();
    let guard = lock.try_lock().unwrap();
    let mut first = spawn(lock.lock());
    let mut second = spawn(lock.acquire());
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    assert_eq!(waiters(&lock), 2);
    drop(first);
    assert_eq!(waiters(&lock), 1);
    drop(guard);
    assert!(second.is_woken());
    assert_ready!(second.poll());
    assert_eq!(waiters(&lock), 0);
    lock.release().unwrap();
}

#[test]
fn lock_woken_then_cancelled_waiter_passes_the_lock_on_8_10() {
    let lock = Lock::new();
    assert_ready!(spawn(lock.acquire()).poll());
    let mut woken = spawn(lock.lock());
    let mut next = spawn(lock.lock());
    assert_pending!(woken.poll());
    assert_pending!(next.poll());
    lock.release().unwrap();
    assert!(woken.is_woken());
    assert!(!next.is_woken());
    // Cancelled after it was handed the lock, before it ran: the lock goes on.
    drop(woken);
    assert!(next.is_woken());
    let guard = assert_ready!(next.poll());
    assert!(lock.locked());
    drop(guard);
    assert!(!lock.locked());
}

spec! {
    /// §8.11: a waiter cancelled while waiting is skipped when the lock is released.
    async fn lock_waiter_cancelled_before_release_is_skipped_8_11() {
        let start = Instant::now();
        let lock = Arc::new(Lock::new());
        let guard = lock.lock().await;
        // The impatient waiter's deadline is set once both wait: a deadline set when it
        // started could pass before the patient one is queued on a loaded machine.
        let waiting = {
            let lock = Arc::clone(&lock);
            timeout(FOREVER, async move { drop(lock.lock().await) })
        };
        let deadline = waiting.handle();
        let impatient = tokio::spawn(waiting);
        until(|| waiters(&*lock) == 1).await;
        let patient = tokio::spawn({
            let lock = Arc::clone(&lock);
            async move {
                let _guard = lock.lock().await;
            }
        });
        until(|| waiters(&*lock) == 2).await;
        deadline.reschedule(Instant::now() + ms(10)).unwrap();
        assert!(impatient.await.unwrap().is_err());
        assert_eq!(waiters(&*lock), 1);
        sleep(ms(10)).await;
        drop(guard);
        patient.await.unwrap();
        assert_elapsed(start, ms(20));
        assert!(!lock.locked());
    }
}

spec! {
    /// §8.12: a release and a cancellation in the same step never let two tasks hold the
    /// lock. Many tasks lock with short timeouts while others release: at most one is ever
    /// inside, and the lock ends free.
    async fn lock_cancel_and_release_together_never_let_two_tasks_hold_it_8_12() {
        let lock = Arc::new(Lock::new());
        let inside = Arc::new(AtomicUsize::new(0));
        let entered = Counter::new();
        let mut tasks = Vec::new();
        for t in 0..16u64 {
            let (lock, inside, entered) = (Arc::clone(&lock), Arc::clone(&inside), entered.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng::new(t);
                for _ in 0..20 {
                    let patience = ms(rng.below(3));
                    if let Ok(guard) = timeout(patience, lock.lock()).await {
                        assert_eq!(inside.fetch_add(1, Ordering::SeqCst), 0, "two holders");
                        entered.incr();
                        sleep(ms(rng.below(2))).await;
                        inside.fetch_sub(1, Ordering::SeqCst);
                        drop(guard);
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert!(entered.get() > 0);
        assert!(!lock.locked());
        assert_eq!(waiters(&*lock), 0);
    }
}

spec! {
    /// §8.13 (bpo-27585): a task cancelled at the moment the lock is released to it hands
    /// the lock to the next waiter, so nobody deadlocks. On the current-thread runtime the
    /// release and the cancellation land before the first waiter runs.
    async fn lock_cancelled_waiter_finding_the_lock_free_wakes_the_next_8_13() {
        let lock = Arc::new(Lock::new());
        let log = Log::new();
        let gate = Gate::new();
        let guard = lock.lock().await;
        let first = tokio::spawn({
            let (lock, log, gate) = (Arc::clone(&lock), log.clone(), gate.clone());
            async move {
                tokio::select! {
                    biased;
                    _ = gate.wait() => log.push("first cancelled"),
                    _guard = lock.lock() => log.push("first locked"),
                }
            }
        });
        until(|| waiters(&*lock) == 1).await;
        let second = tokio::spawn({
            let (lock, log) = (Arc::clone(&lock), log.clone());
            async move {
                let _guard = lock.lock().await;
                log.push("second locked");
            }
        });
        until(|| waiters(&*lock) == 2).await;
        drop(guard);
        gate.open();
        first.await.unwrap();
        second.await.unwrap();
        if paused() {
            assert_eq!(log.events(), ["first cancelled", "second locked"]);
        }
        assert!(log.contains("second locked"));
        assert!(!lock.locked());
    }
}

#[test]
fn lock_locked_and_debug_report_the_state_and_waiters_8_14() {
    let lock = Lock::new();
    assert_eq!(format!("{lock:?}"), "Lock { state: unlocked, waiters: 0 }");
    let guard = lock.try_lock().unwrap();
    assert!(lock.locked());
    let mut waiter = spawn(lock.lock());
    assert_pending!(waiter.poll());
    assert_eq!(format!("{lock:?}"), "Lock { state: locked, waiters: 1 }");
    drop(waiter);
    drop(guard);
    assert_eq!(format!("{lock:?}"), "Lock { state: unlocked, waiters: 0 }");
}

#[test]
fn lock_is_not_bound_to_a_runtime_8_15() {
    // asyncio binds a lock to the loop of its first contended use; here one lock serves
    // two runtimes on two threads.
    let lock = Arc::new(Lock::new());
    let one = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let guard = one.block_on(Arc::clone(&lock).lock_owned());
    let waiter = std::thread::spawn({
        let lock = Arc::clone(&lock);
        move || {
            let two = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            two.block_on(async move {
                let _guard = lock.lock().await;
            });
        }
    });
    while waiters(&*lock) == 0 {
        std::thread::yield_now();
    }
    drop(guard);
    waiter.join().unwrap();
    assert!(!lock.locked());
}

spec! {
    /// An owned guard moves into another task and releases the lock there.
    async fn lock_owned_guard_releases_in_the_task_it_moved_to() {
        let lock = Arc::new(Lock::new());
        let guard: OwnedLockGuard = Arc::clone(&lock).lock_owned().await;
        assert!(Arc::clone(&lock).try_lock_owned().is_err());
        tokio::spawn(async move {
            sleep(ms(5)).await;
            drop(guard);
        });
        let start = Instant::now();
        let _again = lock.lock().await;
        assert_elapsed(start, ms(5));
    }
}

#[test]
fn lock_acquire_and_release_in_a_loop_never_starve_a_timer_a8() {
    hot_loop_lets_a_timer_fire(|| {
        static LOCK: Lock = Lock::new();
        async {
            LOCK.acquire().await;
            LOCK.release().unwrap();
            drop(LOCK.lock().await);
        }
    });
}

/// Three parties take the lock in turn, each in both styles, with a yield while holding it:
/// the scenario the sweeps below cancel at every poll.
async fn three_parties_take_turns(lock: &Lock) {
    let party = |n: usize| async move {
        for _ in 0..n {
            {
                let _guard = lock.lock().await;
                tokio::task::yield_now().await;
            }
            lock.acquire().await;
            // Released even if the scenario is dropped right here.
            let _release = ReleaseOnDrop(lock);
            tokio::task::yield_now().await;
        }
    };
    tokio::join!(party(2), party(1), party(2));
}

struct ReleaseOnDrop<'a>(&'a Lock);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.release().unwrap();
    }
}

#[test]
fn lock_acquire_cancelled_at_every_poll_loses_nothing_a8() {
    for k in 0.. {
        let lock = Lock::new();
        let mut scenario = spawn(three_parties_take_turns(&lock));
        let mut finished = false;
        let mut outsider = None;
        for poll in 0..k {
            if scenario.poll().is_ready() {
                finished = true;
                break;
            }
            if poll == 0 {
                // A waiter queued behind the scenario's first waiters.
                outsider = Some(spawn(lock.lock()));
            }
            // It takes the lock as soon as it gets it, and releases it at once.
            if let Some(o) = &mut outsider {
                if o.poll().map(drop).is_ready() {
                    outsider = None;
                }
            }
        }
        drop(scenario);
        // Whatever the scenario held or was handed is passed on: a waiting outsider gets
        // the lock, then the lock is free and nobody is counted as waiting.
        if let Some(mut o) = outsider {
            assert!(o.is_woken(), "k={k}: the outsider was never woken");
            drop(assert_ready!(o.poll()));
        }
        assert!(!lock.locked(), "k={k}: {lock:?}");
        assert_eq!(waiters(&lock), 0, "k={k}");
        assert!(lock.release().is_err(), "k={k}");
        if finished {
            assert!(k > 3, "the scenario should wait at least a few times");
            break;
        }
    }
}

spec! {
    /// The same scenario under a timeout of 0, 1, 2, ... ms, while another task holds the
    /// lock for 1 ms at a time: cancelled at each of its waits in turn, then left to
    /// finish, it never leaves the lock taken.
    async fn lock_acquire_cancelled_by_a_timeout_at_every_wait_loses_nothing_a8() {
        for d in 0.. {
            let lock = Arc::new(Lock::new());
            let other = tokio::spawn({
                let lock = Arc::clone(&lock);
                async move {
                    for _ in 0..5 {
                        let _guard = lock.lock().await;
                        sleep(ms(1)).await;
                    }
                }
            });
            let r = timeout(ms(d), async {
                three_parties_take_turns(&lock).await;
                sleep(ms(1)).await;
                three_parties_take_turns(&lock).await;
            })
            .await;
            other.await.unwrap();
            assert!(!lock.locked(), "d={d}");
            assert_eq!(waiters(&*lock), 0, "d={d}");
            if r.is_ok() {
                break;
            }
            assert!(d < 1000, "the scenario never finished");
        }
    }
}

#[test]
fn lock_guard_future_is_send_and_the_lock_is_sync() {
    fn send<T: Send>(_: &T) {}
    fn sync<T: Send + Sync>() {}
    sync::<Lock>();
    let lock = Lock::new();
    send(&lock.lock());
    send(&lock.acquire());
    send(&Arc::new(Lock::new()).lock_owned().boxed());
}

/// `n_waiting` counts the tasks waiting for the lock; one that is cancelled stops counting
/// at once, and one that got the lock is no longer waiting.
#[test]
fn lock_n_waiting_counts_waiters_and_forgets_cancelled_ones() {
    let lock = Lock::new();
    let guard = lock.try_lock().unwrap();
    let mut first = spawn(lock.lock());
    let mut second = spawn(lock.lock());
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    assert_eq!(lock.n_waiting(), 2);
    drop(second);
    assert_eq!(lock.n_waiting(), 1);
    drop(guard);
    let _guard = assert_ready!(first.poll());
    assert_eq!(lock.n_waiting(), 0);
}

/// A lock released by its guard while a task waits is handed to that task: until it runs,
/// `release()` finds the lock not acquired (asyncio's `RuntimeError`), and nobody else can
/// take it, so it is never held twice.
#[test]
fn lock_handed_to_a_waiter_cannot_be_released_or_taken_before_it_runs() {
    let lock = Lock::new();
    let guard = lock.try_lock().unwrap();
    let mut waiter = spawn(lock.lock());
    assert_pending!(waiter.poll());
    drop(guard);
    assert!(waiter.is_woken());
    assert!(lock.release().is_err());
    assert!(lock.try_lock().is_err());
    assert!(lock.locked());
    let guard = assert_ready!(waiter.poll());
    // Taken: now `release()` may end it, as asyncio's may end any holder's acquisition.
    assert!(lock.release().is_ok());
    assert!(!lock.locked());
    drop(guard); // its acquisition was ended already: it releases nothing
    let _mine = lock.try_lock().expect("free");
}

/// `lock`, `lock_owned` and `acquire` return named futures: they can be stored in a struct
/// field and polled by reference, in a `select!` that may come back to them.
#[tokio::test(start_paused = true)]
async fn lock_futures_are_named_and_can_be_polled_by_reference() {
    use aio::sync::futures::{LockAcquire, LockFuture, OwnedLockFuture};

    let lock = Arc::new(Lock::new());
    let guard = lock.lock().await;
    let mut waiting: LockFuture<'_> = lock.lock();
    tokio::select! {
        _ = &mut waiting => panic!("the lock is held"),
        () = sleep(ms(1)) => {}
    }
    drop(guard);
    let guard = waiting.await;
    let owned: OwnedLockFuture = Arc::clone(&lock).lock_owned();
    let unowned: LockAcquire<'_> = lock.acquire();
    drop(guard);
    drop(owned.await);
    unowned.await;
    lock.release().unwrap();
}

/// `blocking_lock`, `blocking_acquire` and `blocking_wait` wait from a thread of the
/// runtime's blocking pool (`to_thread`) while async tasks hold and release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_forms_wait_under_to_thread_for_async_holders() {
    let lock = Arc::new(Lock::new());
    let sem = Arc::new(aio::sync::Semaphore::new(0));
    let event = Arc::new(aio::sync::Event::new());
    let guard = lock.lock().await;
    let worker = aio::to_thread({
        let (lock, sem, event) = (Arc::clone(&lock), Arc::clone(&sem), Arc::clone(&event));
        move || {
            drop(lock.blocking_lock());
            sem.blocking_acquire().forget();
            event.blocking_wait();
        }
    });
    drop(guard);
    sem.release();
    event.set();
    worker.await.unwrap();
    assert!(!lock.locked());
    assert_eq!(sem.available_permits(), 0);
}
