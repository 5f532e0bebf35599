//! `Semaphore` and `BoundedSemaphore` (§11): asyncio's semaphores, with permit guards
//! beside the unowned `acquire` / `release`.
//!
//! aio hands a released permit straight to the oldest waiter, as asyncio 3.12+ does, so
//! the value stays 0 while anyone waits and `locked()` is simply "the value is 0". One
//! consequence differs from asyncio, see §11.8: a waiter already handed its permit holds
//! it, so a permit released meanwhile is free for whoever asks next.
//!
//! Not applicable: a negative initial value (§11.1: the type is unsigned) and
//! `await sem` (§11.3).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aio::sync::{BoundedSemaphore, OwnedSemaphorePermit, Semaphore};
use aio::timeout;
use tokio::time::{Instant, sleep};
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready};

use crate::support::*;
use crate::sync_support::*;

#[test]
fn semaphore_value_defaults_to_one_11_1() {
    assert_eq!(Semaphore::default().available_permits(), 1);
    assert_eq!(BoundedSemaphore::default().available_permits(), 1);
    assert_eq!(BoundedSemaphore::default().bound(), 1);
    assert_eq!(Semaphore::new(5).available_permits(), 5);
    let max = Semaphore::new(Semaphore::MAX_PERMITS);
    assert_eq!(max.available_permits(), Semaphore::MAX_PERMITS);
}

#[test]
#[should_panic(expected = "MAX_PERMITS")]
fn semaphore_value_above_the_maximum_is_refused_11_1() {
    let _ = Semaphore::new(Semaphore::MAX_PERMITS + 1);
}

#[test]
fn semaphore_of_zero_is_locked_11_2() {
    let sem = Semaphore::new(0);
    assert!(sem.locked());
    assert!(sem.try_acquire().is_err());
    assert!(BoundedSemaphore::new(0).locked());
}

#[test]
fn semaphore_is_locked_while_a_woken_waiter_has_not_run_11_4() {
    let sem = Semaphore::new(1);
    let permit = sem.try_acquire().unwrap();
    let mut waiter = spawn(sem.acquire());
    assert_pending!(waiter.poll());
    drop(permit);
    // The permit is the waiter's now, though it has not run: the value stays 0.
    assert!(waiter.is_woken());
    assert!(sem.locked());
    assert_eq!(sem.available_permits(), 0);
    assert!(sem.try_acquire().is_err());
    drop(assert_ready!(waiter.poll()));
    assert!(!sem.locked());
}

#[test]
fn semaphore_acquire_queues_at_the_back_when_locked_11_5() {
    let sem = Semaphore::new(1);
    let permit = sem.try_acquire().unwrap();
    let mut first = spawn(sem.acquire());
    assert_pending!(first.poll());
    drop(permit);
    let mut newcomer = spawn(sem.acquire());
    assert_pending!(newcomer.poll());
    let first_permit = assert_ready!(first.poll());
    assert_pending!(newcomer.poll());
    drop(first_permit);
    drop(assert_ready!(newcomer.poll()));
}

#[test]
fn semaphore_release_hands_the_permit_to_the_first_waiter_11_6() {
    let sem = Semaphore::new(0);
    let mut first = spawn(sem.acquire());
    let mut second = spawn(sem.acquire());
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    sem.release();
    assert!(first.is_woken());
    assert!(!second.is_woken());
    assert_eq!(sem.available_permits(), 0);
    assert_pending!(second.poll());
    assert_ready!(first.poll()).forget();
    sem.release();
    assert!(second.is_woken());
    assert_ready!(second.poll()).forget();
    assert_eq!(sem.available_permits(), 0);
}

spec! {
    /// §11.7 (bpo-45997): a task that releases and acquires again goes to the back of the
    /// queue: `c1_1, c2_1, c3_1, c1_2, c2_2, c3_2`.
    async fn semaphore_reacquire_after_release_goes_to_the_back_11_7() {
        let sem = Arc::new(Semaphore::new(1));
        let log = Log::new();
        let held = sem.acquire().await;
        let mut tasks = Vec::new();
        for c in 1..=3 {
            let (s, log) = (Arc::clone(&sem), log.clone());
            tasks.push(tokio::spawn(async move {
                for round in 1..=2 {
                    let _permit = s.acquire().await;
                    log.push(format!("c{c}_{round}"));
                    tokio::task::yield_now().await;
                }
            }));
            until(|| waiters(&*sem) == c).await;
        }
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(log.events(), ["c1_1", "c2_1", "c3_1", "c1_2", "c2_2", "c3_2"]);
    }
}

spec! {
    /// §11.8: interleaved releases and acquires keep the permits in FIFO order. Two
    /// releases hand permits to tasks 2 and 3, in that order. Task 2 then releases and
    /// acquires again: where asyncio makes it wait until task 3 has run, aio lets it take
    /// the permit it just freed, since task 3 already holds its own. Nobody is overtaken
    /// while waiting: on the current-thread runtime the order is `[1, 2, 4, 3]`.
    async fn semaphore_interleaved_release_and_acquire_keep_fifo_11_8() {
        let sem = Arc::new(Semaphore::new(1));
        let log = Log::new();
        let one = tokio::spawn({
            let (sem, log) = (Arc::clone(&sem), log.clone());
            async move {
                sem.acquire().await.forget();
                log.push("1");
            }
        });
        one.await.unwrap();
        let two = tokio::spawn({
            let (sem, log) = (Arc::clone(&sem), log.clone());
            async move {
                sem.acquire().await.forget();
                log.push("2");
                sem.release();
                sem.acquire().await.forget();
                log.push("4");
            }
        });
        until(|| waiters(&*sem) == 1).await;
        let three = tokio::spawn({
            let (sem, log) = (Arc::clone(&sem), log.clone());
            async move {
                sem.acquire().await.forget();
                log.push("3");
            }
        });
        until(|| waiters(&*sem) == 2).await;
        sem.release();
        sem.release();
        two.await.unwrap();
        three.await.unwrap();
        // Tasks 2 and 3 hold their permits at once, so on two workers either may log
        // first.
        assert_eq!(log.position("1"), 0);
        assert!(log.position("2") < log.position("4"));
        assert!(log.contains("3"));
        if paused() {
            assert_eq!(log.events(), ["1", "2", "4", "3"]);
        }
        // Three holders of three permits (one initial, two released).
        assert_eq!(sem.available_permits(), 0);
    }
}

spec! {
    /// §11.9: a waiter cancelled before any release is skipped: two releases go to the
    /// second and third waiters.
    async fn semaphore_waiter_cancelled_before_release_is_skipped_11_9() {
        let sem = Arc::new(Semaphore::new(0));
        let log = Log::new();
        let mut tasks = Vec::new();
        for c in 1..=3 {
            let (s, log) = (Arc::clone(&sem), log.clone());
            tasks.push(tokio::spawn(async move {
                s.acquire().await.forget();
                log.push(c.to_string());
            }));
            until(|| waiters(&*sem) == c).await;
        }
        let first = tasks.remove(0);
        first.abort();
        assert!(first.await.unwrap_err().is_cancelled());
        assert_eq!(waiters(&*sem), 2);
        sem.release();
        sem.release();
        for task in tasks {
            task.await.unwrap();
        }
        let mut events = log.events();
        if paused() {
            assert_eq!(events, ["2", "3"]);
        }
        events.sort();
        assert_eq!(events, ["2", "3"]);
        assert_eq!(sem.available_permits(), 0);
    }
}

spec! {
    /// §11.10 (gh-111693): permits released together wake as many waiters as they can
    /// serve, not just one.
    async fn semaphore_release_wakes_as_many_waiters_as_the_value_allows_11_10() {
        let sem = Arc::new(Semaphore::new(0));
        let served = Counter::new();
        let mut tasks = Vec::new();
        for c in 1..=4 {
            let (s, served) = (Arc::clone(&sem), served.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = s.acquire().await;
                served.incr();
                sleep(FOREVER).await;
            }));
            until(|| waiters(&*sem) == c).await;
        }
        sem.release();
        sem.release();
        sem.release();
        until(|| served.get() == 3).await;
        assert_eq!(waiters(&*sem), 1);
        assert_eq!(sem.available_permits(), 0);
        for task in &tasks {
            task.abort();
        }
        for task in tasks {
            let _ = task.await;
        }
        assert_eq!(sem.available_permits(), 3);
    }
}

#[test]
fn semaphore_woken_then_cancelled_waiter_passes_its_permit_on_11_11() {
    let sem = Semaphore::new(0);
    let mut woken = spawn(sem.acquire());
    let mut next = spawn(sem.acquire());
    assert_pending!(woken.poll());
    assert_pending!(next.poll());
    sem.release();
    assert!(woken.is_woken());
    // Cancelled after it was handed the permit, before it ran: the permit goes on.
    drop(woken);
    assert!(next.is_woken());
    assert_eq!(sem.available_permits(), 0);
    drop(assert_ready!(next.poll()));
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn bounded_semaphore_woken_then_cancelled_waiter_passes_its_permit_on_11_11() {
    let sem = BoundedSemaphore::new(1);
    sem.try_acquire().unwrap().forget();
    let mut woken = spawn(sem.acquire());
    let mut next = spawn(sem.acquire());
    assert_pending!(woken.poll());
    assert_pending!(next.poll());
    sem.release().unwrap();
    drop(woken);
    assert!(next.is_woken());
    drop(assert_ready!(next.poll()));
    assert_eq!(sem.available_permits(), 1);
    assert!(sem.release().is_err());
}

#[test]
fn semaphore_two_cancelled_waiters_then_one_release_serve_exactly_the_third_11_12() {
    let sem = Semaphore::new(0);
    let mut waiters_: Vec<_> = (0..4).map(|_| spawn(sem.acquire())).collect();
    for w in &mut waiters_ {
        assert_pending!(w.poll());
    }
    let mut fourth = waiters_.pop().unwrap();
    let mut third = waiters_.pop().unwrap();
    drop(waiters_);
    sem.release();
    assert!(third.is_woken());
    assert!(!fourth.is_woken());
    assert_ready!(third.poll()).forget();
    assert_pending!(fourth.poll());
    assert_eq!(waiters(&sem), 1);
}

spec! {
    /// §11.13 (gh-90155): a task holding the permit cancels a waiter and then releases: the
    /// semaphore stays usable, and a later acquire under a 1 s timeout succeeds.
    async fn semaphore_stays_usable_after_a_waiter_is_cancelled_around_a_release_11_13() {
        let sem = Arc::new(Semaphore::new(1));
        let permit = sem.acquire().await;
        let waiter = tokio::spawn({
            let sem = Arc::clone(&sem);
            async move { sem.acquire().await.forget() }
        });
        until(|| waiters(&*sem) == 1).await;
        waiter.abort();
        drop(permit);
        let _ = waiter.await;
        let again = timeout(Duration::from_secs(1), sem.acquire()).await;
        assert!(again.is_ok());
        drop(again);
        assert_eq!(sem.available_permits(), 1);
    }
}

#[test]
fn semaphore_cancelled_waiter_is_removed_11_14() {
    let sem = Semaphore::new(0);
    let mut first = spawn(sem.acquire());
    let mut second = spawn(sem.acquire());
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    assert_eq!(waiters(&sem), 2);
    drop(first);
    assert_eq!(waiters(&sem), 1);
    drop(second);
    assert_eq!(waiters(&sem), 0);
    sem.release();
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn semaphore_may_be_released_past_its_initial_value_11_15() {
    let sem = Semaphore::new(1);
    sem.release();
    sem.release();
    assert_eq!(sem.available_permits(), 3);
    // A permit guard released twice (once by `release`) is two releases, as in asyncio.
    let permit = sem.try_acquire().unwrap();
    sem.release();
    drop(permit);
    assert_eq!(sem.available_permits(), 4);
}

#[test]
fn bounded_semaphore_release_past_its_initial_value_is_an_error_11_16() {
    let sem = BoundedSemaphore::new(2);
    let err = sem.release().unwrap_err();
    assert_eq!(
        err.to_string(),
        "bounded semaphore released too many times: it already has all 2 of its permits; \
         call release() once for each acquire()"
    );
    assert_eq!(sem.available_permits(), 2);
    sem.try_acquire().unwrap().forget();
    sem.try_acquire().unwrap().forget();
    sem.release().unwrap();
    sem.release().unwrap();
    assert!(sem.release().is_err());
    assert_eq!(sem.available_permits(), 2);
}

#[test]
fn bounded_semaphore_permit_handed_to_a_waiter_counts_as_taken_11_16() {
    let sem = BoundedSemaphore::new(1);
    sem.try_acquire().unwrap().forget();
    let mut waiter = spawn(sem.acquire());
    assert_pending!(waiter.poll());
    // The permit goes to the waiter, which has not run yet: it is not free.
    sem.release().unwrap();
    assert_eq!(sem.available_permits(), 0);
    // So a release now is accepted, as asyncio accepts it (its value is 0 too)...
    sem.release().unwrap();
    assert_eq!(sem.available_permits(), 1);
    // ...and the bound holds: the waiter's own release is the one refused.
    assert_ready!(waiter.poll()).forget();
    assert!(sem.release().is_err());
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn bounded_semaphore_permit_released_by_release_gives_back_nothing_on_drop_a8() {
    let sem = BoundedSemaphore::new(1);
    let permit = sem.try_acquire().unwrap();
    // Released unowned first; the guard then finds nothing to give back.
    sem.release().unwrap();
    assert_eq!(sem.available_permits(), 1);
    drop(permit);
    assert_eq!(sem.available_permits(), 1);
    // The same with an owned permit.
    let sem = Arc::new(sem);
    let owned: OwnedSemaphorePermit = Arc::clone(&sem).try_acquire_owned().unwrap();
    sem.release().unwrap();
    drop(owned);
    assert_eq!(sem.available_permits(), 1);
}

#[test]
fn bounded_semaphore_concurrent_releases_and_drops_never_exceed_the_bound_a8() {
    // Threads race unowned releases against permit drops: whatever the interleaving, the
    // releases that succeed plus the drops that give back make exactly the bound.
    const BOUND: usize = 4;
    let sem = Arc::new(BoundedSemaphore::new(BOUND));
    for _round in 0..200 {
        let permits: Vec<OwnedSemaphorePermit> = (0..BOUND)
            .map(|_| Arc::clone(&sem).try_acquire_owned().unwrap())
            .collect();
        assert_eq!(sem.available_permits(), 0);
        let ok = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(std::sync::Barrier::new(2 * BOUND));
        let mut threads = Vec::new();
        for permit in permits {
            let start = Arc::clone(&start);
            threads.push(std::thread::spawn(move || {
                start.wait();
                drop(permit);
            }));
        }
        for _ in 0..BOUND {
            let (sem, ok, start) = (Arc::clone(&sem), Arc::clone(&ok), Arc::clone(&start));
            threads.push(std::thread::spawn(move || {
                start.wait();
                if sem.release().is_ok() {
                    ok.fetch_add(1, Ordering::SeqCst);
                }
            }));
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(sem.available_permits(), BOUND);
        assert!(ok.load(Ordering::SeqCst) <= BOUND);
        assert!(sem.release().is_err());
    }
}

#[test]
fn semaphore_debug_shows_state_value_and_waiters_11_17() {
    let sem = Semaphore::new(1);
    assert_eq!(
        format!("{sem:?}"),
        "Semaphore { state: unlocked, value: 1, waiters: 0 }"
    );
    let permit = sem.try_acquire().unwrap();
    let mut waiter = spawn(sem.acquire());
    assert_pending!(waiter.poll());
    assert_eq!(
        format!("{sem:?}"),
        "Semaphore { state: locked, value: 0, waiters: 1 }"
    );
    drop(waiter);
    drop(permit);
    let bounded = BoundedSemaphore::new(3);
    assert_eq!(
        format!("{bounded:?}"),
        "BoundedSemaphore { state: unlocked, value: 3, bound: 3, waiters: 0 }"
    );
}

spec! {
    /// §11.18: the permit guard acquires and releases, on a Semaphore and a
    /// BoundedSemaphore alike, borrowed or owned.
    async fn semaphore_guard_acquires_and_releases_for_both_kinds_11_18() {
        let sem = Arc::new(Semaphore::new(1));
        let bounded = Arc::new(BoundedSemaphore::new(1));
        {
            let _a = sem.acquire().await;
            let _b = bounded.acquire().await;
            assert!(sem.locked() && bounded.locked());
        }
        assert!(!sem.locked() && !bounded.locked());
        let a = Arc::clone(&sem).acquire_owned().await;
        let b = Arc::clone(&bounded).acquire_owned().await;
        tokio::spawn(async move { drop((a, b)) }).await.unwrap();
        assert_eq!(sem.available_permits(), 1);
        assert_eq!(bounded.available_permits(), 1);
        assert!(bounded.release().is_err());
    }
}

spec! {
    /// §11.19: the value is readable: `available_permits()`.
    async fn semaphore_reports_its_value_11_19() {
        let sem = Semaphore::new(3);
        let a = sem.acquire().await;
        let b = sem.acquire().await;
        assert_eq!(sem.available_permits(), 1);
        drop((a, b));
        assert_eq!(sem.available_permits(), 3);
    }
}

spec! {
    /// A waiter whose timeout fires while it waits leaves with no permit; the holder's
    /// release then serves the next waiter.
    async fn semaphore_acquire_composes_with_timeout() {
        let start = Instant::now();
        let sem = Semaphore::new(0);
        assert!(timeout(ms(10), sem.acquire()).await.is_err());
        assert_elapsed(start, ms(10));
        assert_eq!(waiters(&sem), 0);
        sem.release();
        assert!(timeout(ms(10), sem.acquire()).await.is_ok());
    }
}

#[test]
fn semaphore_acquire_and_release_in_a_loop_never_starve_a_timer_a8() {
    hot_loop_lets_a_timer_fire(|| {
        static SEM: Semaphore = Semaphore::new(2);
        static BOUNDED: BoundedSemaphore = BoundedSemaphore::new(1);
        async {
            SEM.acquire().await.forget();
            SEM.release();
            drop(BOUNDED.acquire().await);
        }
    });
}

/// Four parties share two permits, in both styles, yielding while they hold one: the
/// scenario the sweeps below cancel at every poll.
async fn four_parties_share_two_permits(sem: &BoundedSemaphore) {
    let party = |n: usize| async move {
        for _ in 0..n {
            {
                let _permit = sem.acquire().await;
                tokio::task::yield_now().await;
            }
            sem.acquire().await.forget();
            // Released even if the scenario is dropped right here.
            let _release = ReleaseOnDrop(sem);
            tokio::task::yield_now().await;
        }
    };
    tokio::join!(party(2), party(1), party(2), party(1));
}

struct ReleaseOnDrop<'a>(&'a BoundedSemaphore);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.release().unwrap();
    }
}

#[test]
fn semaphore_acquire_cancelled_at_every_poll_loses_no_permit_a8() {
    for k in 0.. {
        let sem = BoundedSemaphore::new(2);
        let mut scenario = spawn(four_parties_share_two_permits(&sem));
        let mut finished = false;
        let mut outsider = None;
        for poll in 0..k {
            if scenario.poll().is_ready() {
                finished = true;
                break;
            }
            if poll == 0 {
                // A waiter queued behind the scenario's first waiters.
                outsider = Some(spawn(sem.acquire()));
            }
            // It takes its permit as soon as it gets one, and gives it back at once.
            if let Some(o) = &mut outsider {
                if o.poll().map(drop).is_ready() {
                    outsider = None;
                }
            }
        }
        drop(scenario);
        // Whatever the scenario held or was handed is passed on: a waiting outsider gets
        // a permit, and then both permits are back and nobody is counted as waiting.
        if let Some(mut o) = outsider {
            assert!(o.is_woken(), "k={k}: the outsider was never woken");
            drop(assert_ready!(o.poll()));
        }
        assert_eq!(sem.available_permits(), 2, "k={k}: {sem:?}");
        assert_eq!(waiters(&sem), 0, "k={k}");
        assert!(sem.release().is_err(), "k={k}");
        if finished {
            assert!(k > 4, "the scenario should wait at least a few times");
            break;
        }
    }
}

spec! {
    /// Stress: many tasks acquire and release with random cancellation (timeouts of 0-2 ms
    /// and `select!` against a yield), in every style; the permits are never exceeded, and
    /// at the end the value is exactly the initial one.
    async fn semaphore_permits_survive_random_cancellation_stress() {
        const PERMITS: usize = 3;
        let sem = Arc::new(Semaphore::new(PERMITS));
        let bounded = Arc::new(BoundedSemaphore::new(PERMITS));
        let inside = Arc::new(AtomicUsize::new(0));
        let served = Counter::new();
        let mut tasks = Vec::new();
        for t in 0..48u64 {
            let (sem, bounded) = (Arc::clone(&sem), Arc::clone(&bounded));
            let (inside, served) = (Arc::clone(&inside), served.clone());
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng::new(t + 1);
                for _ in 0..50 {
                    let acquired = match rng.below(5) {
                        0 => timeout(ms(rng.below(3)), sem.acquire()).await.is_ok(),
                        1 => timeout(ms(rng.below(3)), Arc::clone(&sem).acquire_owned())
                            .await
                            .is_ok(),
                        2 => {
                            let polls = rng.below(3);
                            tokio::select! {
                                biased;
                                _permit = bounded.acquire() => true,
                                _ = async {
                                    for _ in 0..polls {
                                        tokio::task::yield_now().await;
                                    }
                                } => false,
                            }
                        }
                        3 => match timeout(ms(rng.below(3)), bounded.acquire()).await {
                            Ok(permit) => {
                                // asyncio's style: acquire, await, release.
                                permit.forget();
                                tokio::task::yield_now().await;
                                bounded.release().unwrap();
                                true
                            }
                            Err(_) => false,
                        },
                        _ => {
                            drop(sem.acquire().await);
                            true
                        }
                    };
                    // Then a critical section on a permit held across awaits: never more
                    // tasks inside than permits.
                    if acquired {
                        let _permit = bounded.acquire().await;
                        let n = inside.fetch_add(1, Ordering::SeqCst);
                        assert!(n < PERMITS, "{} holders of {PERMITS} permits", n + 1);
                        served.incr();
                        if rng.below(4) == 0 {
                            sleep(ms(1)).await;
                        } else {
                            tokio::task::yield_now().await;
                        }
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert!(served.get() > 0);
        assert_eq!(sem.available_permits(), PERMITS);
        assert_eq!(bounded.available_permits(), PERMITS);
        assert!(bounded.release().is_err());
        assert_eq!(waiters(&*sem), 0);
        assert_eq!(waiters(&*bounded), 0);
    }
}

/// `n_waiting` counts the tasks waiting for a permit, on both semaphores; one that is
/// cancelled stops counting at once, and one that got its permit is no longer waiting.
#[test]
fn semaphore_n_waiting_counts_waiters_and_forgets_cancelled_ones() {
    let sem = Semaphore::new(1);
    let bounded = BoundedSemaphore::new(1);
    let held = (sem.try_acquire().unwrap(), bounded.try_acquire().unwrap());
    let mut waiting = (spawn(sem.acquire()), spawn(bounded.acquire()));
    let mut cancelled = (spawn(sem.acquire()), spawn(bounded.acquire()));
    assert_pending!(waiting.0.poll());
    assert_pending!(waiting.1.poll());
    assert_pending!(cancelled.0.poll());
    assert_pending!(cancelled.1.poll());
    assert_eq!((sem.n_waiting(), bounded.n_waiting()), (2, 2));
    drop(cancelled);
    assert_eq!((sem.n_waiting(), bounded.n_waiting()), (1, 1));
    drop(held);
    let _permits = (
        assert_ready!(waiting.0.poll()),
        assert_ready!(waiting.1.poll()),
    );
    assert_eq!((sem.n_waiting(), bounded.n_waiting()), (0, 0));
}

/// A bounded semaphore of value 0 refuses every release, even with a task waiting (asyncio's
/// `ValueError`): handing that task a permit would push the value past the bound.
#[test]
fn bounded_semaphore_of_zero_refuses_a_release_with_a_waiter() {
    let sem = BoundedSemaphore::new(0);
    let mut waiter = spawn(sem.acquire());
    assert_pending!(waiter.poll());
    assert!(sem.release().is_err());
    assert!(!waiter.is_woken());
    assert_pending!(waiter.poll());
}

/// A permit handed to a waiter that is dropped before it runs comes back only as far as
/// the bound: releases made meanwhile may have filled the semaphore, and its value never
/// exceeds its bound.
#[test]
fn bounded_semaphore_never_exceeds_its_bound_when_a_handed_waiter_is_dropped() {
    let sem = BoundedSemaphore::new(1);
    sem.try_acquire().unwrap().forget();
    let mut waiter = spawn(sem.acquire());
    assert_pending!(waiter.poll());
    sem.release().unwrap(); // handed to the waiter, which counts it as taken
    sem.release().unwrap(); // so this one is free
    drop(waiter); // the handed permit comes back: the semaphore is full already
    assert_eq!(sem.available_permits(), 1);
    assert!(sem.release().is_err());
}

/// `acquire` and `acquire_owned` return named futures, on both semaphores.
#[tokio::test(start_paused = true)]
async fn semaphore_futures_are_named_and_can_be_polled_by_reference() {
    use aio::sync::futures::{OwnedSemaphoreAcquire, SemaphoreAcquire};

    let sem = Arc::new(Semaphore::new(0));
    let mut waiting: SemaphoreAcquire<'_> = sem.acquire();
    tokio::select! {
        _ = &mut waiting => panic!("no permit is free"),
        () = sleep(ms(1)) => {}
    }
    sem.release();
    drop(waiting.await);
    let bounded = Arc::new(BoundedSemaphore::new(1));
    let owned: OwnedSemaphoreAcquire = Arc::clone(&bounded).acquire_owned();
    let permit = owned.await;
    assert!(bounded.locked());
    drop(permit);
    assert_eq!(bounded.available_permits(), 1);
}
