//! `Condition` (§10): waiters queue before they release the lock, are notified in FIFO
//! order, and take the lock back before `wait` returns; a notification with nobody waiting
//! is not stored, and one given to a waiter that goes away is passed on. The poll-level
//! tests drive each `wait` by hand with tokio-test; the `spec!` tests run real tasks on
//! both runtimes.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use aio::sync::{Condition, Lock};
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready};

use crate::support::*;

#[test]
fn condition_wait_releases_the_lock_and_takes_it_back_10_3() {
    let cond = Condition::new();
    let guard = cond.try_lock().unwrap();
    let mut waiter = spawn(cond.wait(guard));
    assert_pending!(waiter.poll());
    assert!(!cond.locked(), "the lock is released while waiting");
    assert_eq!(cond.n_waiting(), 1);
    assert_eq!(cond.notify(1), 1);
    assert!(waiter.is_woken());
    let guard = assert_ready!(waiter.poll());
    assert!(cond.locked(), "wait returns with the lock held");
    drop(guard);
    assert!(!cond.locked());
}

#[test]
fn condition_notified_waiter_waits_for_the_notifier_to_release_10_4() {
    let cond = Condition::new();
    let mut waiter = spawn(cond.wait(cond.try_lock().unwrap()));
    assert_pending!(waiter.poll());
    let notifier = cond.try_lock().unwrap();
    cond.notify(1);
    // Notifying does not release the lock: the waiter cannot return yet.
    assert_pending!(waiter.poll());
    drop(notifier);
    assert!(waiter.is_woken());
    drop(assert_ready!(waiter.poll()));
}

#[test]
fn condition_notify_n_wakes_at_most_n_in_fifo_order_10_5() {
    let cond = Condition::new();
    let mut first = spawn(cond.wait(cond.try_lock().unwrap()));
    assert_pending!(first.poll());
    let mut second = spawn(cond.wait(cond.try_lock().unwrap()));
    assert_pending!(second.poll());
    let mut third = spawn(cond.wait(cond.try_lock().unwrap()));
    assert_pending!(third.poll());
    assert_eq!(cond.notify(2), 2);
    assert!(first.is_woken() && second.is_woken() && !third.is_woken());
    let guard = assert_ready!(first.poll());
    // The second has its notification and waits for the lock.
    assert_pending!(second.poll());
    drop(guard);
    drop(assert_ready!(second.poll()));
    assert_pending!(third.poll());
    // More than are waiting: all of them.
    assert_eq!(cond.notify(2048), 1);
    drop(assert_ready!(third.poll()));
}

#[test]
fn condition_notify_all_wakes_every_waiter_10_6() {
    let cond = Condition::new();
    let mut waiters: Vec<_> = (0..4)
        .map(|_| {
            let mut waiter = spawn(cond.wait(cond.try_lock().unwrap()));
            assert_pending!(waiter.poll());
            waiter
        })
        .collect();
    assert_eq!(cond.notify_all(), 4);
    assert_eq!(cond.n_waiting(), 0);
    for waiter in &mut waiters {
        drop(assert_ready!(waiter.poll()));
    }
}

#[test]
fn condition_wait_for_checks_first_and_after_each_notification_10_7() {
    let cond = Condition::new();
    let checks = AtomicUsize::new(0);
    // True at once: no waiting.
    let guard = cond.try_lock().unwrap();
    let guard = assert_ready!(spawn(cond.wait_for(guard, || true)).poll());
    drop(guard);
    // True on the third check.
    let guard = cond.try_lock().unwrap();
    let mut waiter = spawn(cond.wait_for(guard, || checks.fetch_add(1, Ordering::SeqCst) == 2));
    assert_pending!(waiter.poll());
    cond.notify(1);
    assert_pending!(waiter.poll()); // checked again: still false, waits again
    cond.notify(1);
    let guard = assert_ready!(waiter.poll());
    assert!(cond.locked());
    drop(guard);
    assert_eq!(checks.load(Ordering::SeqCst), 3);
}

#[test]
fn condition_shares_the_lock_it_is_given_10_9() {
    let lock = Arc::new(Lock::new());
    let cond = Condition::with_lock(Arc::clone(&lock));
    assert!(Arc::ptr_eq(cond.lock_ref(), &lock));
    let guard = cond.try_lock().unwrap();
    assert!(lock.locked());
    assert!(lock.try_lock().is_err());
    drop(guard);
    assert!(!cond.locked());
}

#[test]
fn condition_two_conditions_over_one_lock_share_waiting_guards_10_9() {
    let lock = Arc::new(Lock::new());
    let not_empty = Condition::with_lock(Arc::clone(&lock));
    let not_full = Condition::with_lock(Arc::clone(&lock));
    // A guard taken through one condition waits on the other: it is the same lock.
    let mut waiter = spawn(not_full.wait(not_empty.try_lock().unwrap()));
    assert_pending!(waiter.poll());
    assert_eq!(not_empty.notify(1), 0);
    assert_eq!(not_full.notify(1), 1);
    drop(assert_ready!(waiter.poll()));
}

#[test]
#[should_panic(expected = "the guard of another lock")]
fn condition_wait_with_the_guard_of_another_lock_panics_10_1() {
    let cond = Condition::new();
    let other = Condition::new();
    let mut waiter = spawn(cond.wait(other.try_lock().unwrap()));
    let _ = waiter.poll();
}

#[test]
fn condition_notification_with_nobody_waiting_is_not_stored_c1() {
    let cond = Condition::new();
    assert_eq!(cond.notify(1), 0);
    assert_eq!(cond.notify_all(), 0);
    let mut waiter = spawn(cond.wait(cond.try_lock().unwrap()));
    assert_pending!(waiter.poll());
    assert!(!waiter.is_woken());
    assert_pending!(waiter.poll());
}

#[test]
fn condition_cancelled_waiter_leaves_the_queue_10_10() {
    let cond = Condition::new();
    let mut cancelled = spawn(cond.wait(cond.try_lock().unwrap()));
    assert_pending!(cancelled.poll());
    let mut next = spawn(cond.wait(cond.try_lock().unwrap()));
    assert_pending!(next.poll());
    drop(cancelled);
    assert_eq!(cond.n_waiting(), 1);
    assert!(!cond.locked(), "a dropped wait holds no lock");
    assert_eq!(cond.notify(1), 1);
    drop(assert_ready!(next.poll()));
}

#[test]
fn condition_woken_then_dropped_waiter_passes_its_notification_on_10_15() {
    let cond = Condition::new();
    let mut woken = spawn(cond.wait(cond.try_lock().unwrap()));
    assert_pending!(woken.poll());
    let mut next = spawn(cond.wait(cond.try_lock().unwrap()));
    assert_pending!(next.poll());
    assert_eq!(cond.notify(1), 1);
    // Cancelled after the notification, before it ran: the next waiter gets it.
    drop(woken);
    assert!(next.is_woken());
    drop(assert_ready!(next.poll()));
}

#[test]
fn condition_dropped_while_retaking_the_lock_passes_on_and_holds_nothing_10_11() {
    let cond = Condition::new();
    let mut retaking = spawn(cond.wait(cond.try_lock().unwrap()));
    assert_pending!(retaking.poll());
    let mut next = spawn(cond.wait(cond.try_lock().unwrap()));
    assert_pending!(next.poll());
    let notifier = cond.try_lock().unwrap();
    cond.notify(1);
    // Notified, now waiting for the lock the notifier holds; then cancelled.
    assert_pending!(retaking.poll());
    drop(retaking);
    assert!(next.is_woken(), "the notification went on");
    drop(notifier);
    assert!(!cond.locked(), "the cancelled waiter took no lock");
    drop(assert_ready!(next.poll()));
}

spec! {
    /// A consumer waits for items with `wait_for`; a producer adds them under the lock and
    /// notifies. Every item is consumed.
    async fn condition_producer_and_consumer_see_every_item_10_7() {
        let cond = Arc::new(Condition::new());
        let items = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
        let consumer = {
            let (cond, items) = (Arc::clone(&cond), Arc::clone(&items));
            tokio::spawn(async move {
                let mut seen = Vec::new();
                while seen.len() < 20 {
                    let guard = cond.lock().await;
                    let _guard = cond
                        .wait_for(guard, || !items.lock().unwrap().is_empty())
                        .await;
                    seen.append(&mut items.lock().unwrap());
                }
                seen
            })
        };
        for i in 0..20 {
            let _guard = cond.lock().await;
            items.lock().unwrap().push(i);
            cond.notify(1);
            drop(_guard);
            if i % 3 == 0 {
                tokio::time::sleep(ms(1)).await;
            }
        }
        assert_eq!(consumer.await.unwrap(), (0..20).collect::<Vec<_>>());
    }
}

spec! {
    /// A cancel-at-every-point sweep: one waiter is cut short by a timeout after 0, 5, 10,
    /// ... ms; a notification is sent at 20 ms, once the other waiter waits. Whenever the
    /// cut comes, the notification is not lost: exactly one waiter gets through on it.
    async fn condition_wait_is_cancel_safe_at_every_point_a8() {
        for cut in (0..=40).step_by(5) {
            let cond = Arc::new(Condition::new());
            let through = Arc::new(AtomicUsize::new(0));
            let waiter = |cond: Arc<Condition>, through: Arc<AtomicUsize>| async move {
                let guard = cond.lock().await;
                let _guard = cond.wait(guard).await;
                through.fetch_add(1, Ordering::SeqCst);
            };
            let quitter = tokio::spawn(aio::timeout(
                ms(cut),
                waiter(Arc::clone(&cond), Arc::clone(&through)),
            ));
            while cond.n_waiting() == 0 && !quitter.is_finished() {
                tokio::task::yield_now().await;
            }
            let stayer = tokio::spawn(waiter(Arc::clone(&cond), Arc::clone(&through)));
            tokio::time::sleep(ms(20)).await;
            // The stayer waits (a notification before that would rightly reach nobody once
            // the quitter is gone); `is_finished` is read first, so a count of one after it
            // is the stayer's.
            loop {
                let quit = quitter.is_finished();
                let n = cond.n_waiting();
                if n == 2 || quit && n == 1 {
                    break;
                }
                tokio::task::yield_now().await;
            }
            {
                let _guard = cond.lock().await;
                cond.notify(1);
            }
            let one_through = || through.load(Ordering::SeqCst) >= 1;
            eventually(std::time::Duration::from_secs(10), one_through).await;
            // Time for a second waiter to get through wrongly.
            tokio::time::sleep(ms(30)).await;
            assert_eq!(through.load(Ordering::SeqCst), 1, "cut at {cut} ms");
            // Release whoever still waits.
            cond.notify_all();
            let _ = quitter.await.unwrap();
            stayer.await.unwrap();
        }
    }
}

/// `lock`, `wait` and `wait_for` return named futures that can be stored and polled by
/// reference: a `select!` that times out on a `wait` and comes back to it still gets the
/// notification.
#[tokio::test(start_paused = true)]
async fn condition_futures_are_named_and_can_be_polled_by_reference() {
    use aio::sync::futures::{ConditionLock, ConditionWait, ConditionWaitFor};

    let cond = Condition::new();
    let locking: ConditionLock<'_> = cond.lock();
    let guard = locking.await;
    let mut waiting: ConditionWait<'_> = cond.wait(guard);
    tokio::select! {
        _ = &mut waiting => panic!("nobody notified"),
        () = tokio::time::sleep(std::time::Duration::from_millis(1)) => {}
    }
    assert_eq!(cond.n_waiting(), 1);
    assert_eq!(cond.notify(1), 1);
    let guard = waiting.await;
    let checked: ConditionWaitFor<'_, _> = cond.wait_for(guard, || true);
    drop(checked.await);
    assert!(!cond.locked());
}
