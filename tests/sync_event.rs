//! `Event` (§9): asyncio's event, whose waiters never lose a wake-up.
//!
//! The poll-level tests drive each waiter by hand with tokio-test; the `spec!` tests run
//! real tasks on both runtimes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use aio::sync::Event;
use aio::timeout;
use tokio::time::{Instant, sleep};
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready};

use crate::support::*;
use crate::sync_support::*;

spec! {
    /// §9.1: an event starts unset; `wait` returns once it is set.
    async fn event_starts_unset_and_wait_returns_once_set_9_1() {
        let start = Instant::now();
        let event = Arc::new(Event::new());
        assert!(!event.is_set());
        let waiter = tokio::spawn({
            let event = Arc::clone(&event);
            async move { event.wait().await }
        });
        sleep(ms(10)).await;
        assert!(!waiter.is_finished());
        event.set();
        waiter.await.unwrap();
        assert_elapsed(start, ms(10));
    }
}

#[test]
fn event_wait_on_a_set_event_returns_at_once_9_2() {
    let event = Event::new();
    event.set();
    assert_ready!(spawn(event.wait()).poll());
    assert_ready!(spawn(event.wait()).poll());
    assert_eq!(waiters(&event), 0);
}

spec! {
    /// §9.3: `set` wakes every waiter, and a task that calls `wait` afterwards returns
    /// without blocking.
    async fn event_set_wakes_every_waiter_and_later_waiters_pass_9_3() {
        let event = Arc::new(Event::new());
        let log = Log::new();
        let mut tasks = Vec::new();
        for i in 1..=2 {
            let (e, log) = (Arc::clone(&event), log.clone());
            tasks.push(tokio::spawn(async move {
                e.wait().await;
                log.push(i.to_string());
            }));
            until(|| waiters(&*event) == i).await;
        }
        event.set();
        event.wait().await;
        log.push("3");
        for task in tasks {
            task.await.unwrap();
        }
        let mut events = log.events();
        events.sort();
        assert_eq!(events, ["1", "2", "3"]);
        assert_eq!(waiters(&*event), 0);
    }
}

#[test]
fn event_waiters_woken_by_set_return_even_if_cleared_at_once_9_4() {
    let event = Event::new();
    let mut first = spawn(event.wait());
    let mut second = spawn(event.wait());
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    event.set();
    event.clear();
    assert!(first.is_woken() && second.is_woken());
    assert_ready!(first.poll());
    assert_ready!(second.poll());
    // A waiter that arrives after the clear blocks.
    let mut late = spawn(event.wait());
    assert_pending!(late.poll());
}

spec! {
    /// §9.4 with real tasks: `set` then `clear` before the waiters run; every one of them
    /// still returns.
    async fn event_set_then_clear_still_releases_the_waiting_tasks_9_4() {
        let event = Arc::new(Event::new());
        let mut tasks = Vec::new();
        for i in 1..=3 {
            let e = Arc::clone(&event);
            tasks.push(tokio::spawn(async move { e.wait().await }));
            until(|| waiters(&*event) == i).await;
        }
        event.set();
        event.clear();
        for task in tasks {
            task.await.unwrap();
        }
        assert!(!event.is_set());
        assert_eq!(waiters(&*event), 0);
    }
}

#[test]
fn event_repeated_set_is_idempotent_9_5() {
    let event = Event::new();
    let mut waiter = spawn(event.wait());
    assert_pending!(waiter.poll());
    event.set();
    event.set();
    assert!(event.is_set());
    assert_ready!(waiter.poll());
    // Sets before a clear leave nothing behind for a waiter after it.
    event.set();
    event.clear();
    let mut later = spawn(event.wait());
    assert_pending!(later.poll());
    assert!(!later.is_woken());
    event.set();
    assert_ready!(later.poll());
}

#[test]
fn event_cancelled_wait_removes_its_waiter_9_6() {
    let event = Event::new();
    let mut first = spawn(event.wait());
    let mut second = spawn(event.wait());
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    assert_eq!(waiters(&event), 2);
    drop(first);
    assert_eq!(waiters(&event), 1);
    event.set();
    assert_ready!(second.poll());
    assert_eq!(waiters(&event), 0);
}

#[test]
fn event_clear_makes_later_waits_block_9_7() {
    let event = Event::new();
    event.set();
    assert!(event.is_set());
    event.clear();
    assert!(!event.is_set());
    let mut waiter = spawn(event.wait());
    assert_pending!(waiter.poll());
    event.clear();
    assert!(!waiter.is_woken());
}

#[test]
fn event_debug_shows_state_and_waiters_9_8() {
    let event = Event::new();
    assert_eq!(format!("{event:?}"), "Event { state: unset, waiters: 0 }");
    let mut waiter = spawn(event.wait());
    assert_pending!(waiter.poll());
    assert_eq!(format!("{event:?}"), "Event { state: unset, waiters: 1 }");
    event.set();
    assert_ready!(waiter.poll());
    assert_eq!(format!("{event:?}"), "Event { state: set, waiters: 0 }");
}

spec! {
    /// §9.9: there is no timeout parameter; `wait` composes with `timeout`.
    async fn event_wait_composes_with_timeout_9_9() {
        let start = Instant::now();
        let event = Arc::new(Event::new());
        assert!(timeout(ms(10), event.wait()).await.is_err());
        assert_elapsed(start, ms(10));
        assert_eq!(waiters(&*event), 0);
        let setter = tokio::spawn({
            let event = Arc::clone(&event);
            async move {
                sleep(ms(5)).await;
                event.set();
            }
        });
        // Seconds of slack: the set 5 ms later must come first on a loaded machine too.
        assert!(timeout(ms(10_000), event.wait()).await.is_ok());
        assert_elapsed(start, ms(15));
        setter.await.unwrap();
    }
}

spec! {
    /// A.8 (tokio#5396): `set` racing with new waiters loses no wake-up. Every round a
    /// fresh event is set from one task while others start waiting on it; each waiter
    /// returns.
    async fn event_set_racing_new_waiters_loses_no_wakeup_a8() {
        for _round in 0..200 {
            let event = Arc::new(Event::new());
            let mut tasks = Vec::new();
            for _ in 0..4 {
                let e = Arc::clone(&event);
                tasks.push(tokio::spawn(async move { e.wait().await }));
            }
            let setter = tokio::spawn({
                let event = Arc::clone(&event);
                async move { event.set() }
            });
            for task in tasks {
                timeout(ms(10_000), task).await.expect("a waiter missed the set").unwrap();
            }
            setter.await.unwrap();
            assert_eq!(waiters(&*event), 0);
        }
    }
}

#[test]
fn event_wait_loop_on_a_set_event_never_starves_a_timer_a8() {
    hot_loop_lets_a_timer_fire(|| {
        static EVENT: Event = Event::new();
        EVENT.set();
        EVENT.wait()
    });
}

/// Waiters wait in loops while a setter sets and clears: the scenario the sweep below
/// cancels at every poll. `set_once` records that the setter got to a `set`.
async fn waiters_and_a_setter(event: &Event, set_once: &AtomicBool) {
    let waiter = |n: usize| async move {
        for _ in 0..n {
            event.wait().await;
            tokio::task::yield_now().await;
        }
    };
    let setter = async {
        for _ in 0..2 {
            tokio::task::yield_now().await;
            set_once.store(true, Ordering::SeqCst);
            event.set();
            event.clear();
            tokio::task::yield_now().await;
        }
        event.set();
    };
    tokio::join!(waiter(2), waiter(1), setter, waiter(3));
}

#[test]
fn event_wait_cancelled_at_every_poll_loses_no_wakeup_a8() {
    for k in 0.. {
        let event = Event::new();
        let set_once = AtomicBool::new(false);
        // A waiter from outside, waiting before the scenario starts.
        let mut outsider = spawn(event.wait());
        assert_pending!(outsider.poll());
        let mut scenario = spawn(waiters_and_a_setter(&event, &set_once));
        let mut finished = false;
        for _ in 0..k {
            if scenario.poll().is_ready() {
                finished = true;
                break;
            }
        }
        drop(scenario);
        if set_once.load(Ordering::SeqCst) {
            // The scenario set the event, even if it cleared it after: the outsider was
            // woken and returns.
            assert!(outsider.is_woken(), "k={k}");
            assert_ready!(outsider.poll());
        } else {
            assert!(!outsider.is_woken(), "k={k}");
            assert_pending!(outsider.poll());
            event.set();
            assert_ready!(outsider.poll());
        }
        // Every waiter the scenario dropped has left.
        assert_eq!(waiters(&event), 0, "k={k}");
        if finished {
            assert!(k > 3, "the scenario should wait at least a few times");
            break;
        }
    }
}

/// `n_waiting` counts the tasks waiting for the flag; one that is cancelled stops counting
/// at once, and those a `set` woke stop once they return.
#[test]
fn event_n_waiting_counts_waiters_and_forgets_cancelled_ones() {
    let event = Event::new();
    let mut first = spawn(event.wait());
    let mut second = spawn(event.wait());
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    assert_eq!(event.n_waiting(), 2);
    drop(second);
    assert_eq!(event.n_waiting(), 1);
    event.set();
    assert_ready!(first.poll());
    assert_eq!(event.n_waiting(), 0);
}

/// `wait` returns a named future that can be polled by reference.
#[tokio::test(start_paused = true)]
async fn event_wait_is_a_named_future_that_can_be_polled_by_reference() {
    let event = Event::new();
    let mut waiting: aio::sync::futures::EventWait<'_> = event.wait();
    tokio::select! {
        () = &mut waiting => panic!("the event is not set"),
        () = sleep(ms(1)) => {}
    }
    assert_eq!(event.n_waiting(), 1);
    event.set();
    waiting.await;
}

/// Like every future here, an event wait polled again after it completed panics rather than
/// wait a second time.
#[test]
#[should_panic(expected = "polled after it completed")]
fn event_wait_polled_after_it_completed_panics() {
    let event = Event::new();
    event.set();
    let mut wait = spawn(event.wait());
    assert_ready!(wait.poll());
    let _ = wait.poll();
}
