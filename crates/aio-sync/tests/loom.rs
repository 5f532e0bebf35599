//! Loom models of the primitives built on the wait list: `Lock`, the semaphores, `Barrier`,
//! the queues and `Condition`. Loom runs each scenario under every interleaving of its threads (up to
//! `LOOM_MAX_PREEMPTIONS` forced switches), so a wake-up lost or an item dropped in one rare
//! ordering fails here, where a stress test would have to be lucky.
//!
//! Built only with `--cfg aio_loom`, which swaps the primitives' mutex for loom's:
//!
//! ```text
//! RUSTFLAGS="--cfg aio_loom" LOOM_MAX_PREEMPTIONS=2 \
//!     cargo test -p aio-sync --release --test loom
//! ```
//!
//! `Lock` and the semaphores keep their state in one atomic word, which loom's atomics replace
//! here: the fast paths that never touch a mutex are explored too, against the slow paths
//! that queue and hand on.
//!
//! A thread "waits" with [`block_on`] and a thread whose future is "cancelled" polls it
//! once with [`poll_once`] and drops it, wherever loom has got the other threads to.
#![cfg(aio_loom)]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Wake, Waker};

use aio_sync::{
    Barrier, BoundedSemaphore, Condition, ConditionGuard, Event, GetError, Lock, Queue, Semaphore,
};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::{Arc, Notify};
use loom::thread;

/// Wakes a thread parked in [`block_on`].
///
/// Its `Arc` is std's, not loom's: a waker is cloned and dropped inside the primitives'
/// critical sections, and a loom `Arc` there would give loom a switch point of its own
/// that none of the primitives' code has.
struct Unpark(Notify);

impl Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.notify();
    }

    fn wake_by_ref(self: &std::sync::Arc<Self>) {
        self.0.notify();
    }
}

/// Polls `future` to completion, parking the loom thread while it is pending.
fn block_on<F: Future>(future: F) -> F::Output {
    let unpark = std::sync::Arc::new(Unpark(Notify::new()));
    let waker = Waker::from(std::sync::Arc::clone(&unpark));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        unpark.0.wait();
    }
}

/// Polls `future` once and drops it: a waiter cancelled after it started waiting.
fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    let waker = Waker::from(std::sync::Arc::new(Unpark(Notify::new())));
    pin!(future).poll(&mut Context::from_waker(&waker))
}

/// Runs `f` on a new loom thread, with a clone of `shared`.
fn spawn_with<S, T>(
    shared: &Arc<S>,
    f: impl FnOnce(&S) -> T + Send + 'static,
) -> thread::JoinHandle<T>
where
    S: Send + Sync + 'static,
    T: Send + 'static,
{
    let shared = Arc::clone(shared);
    thread::spawn(move || f(&shared))
}

#[test]
fn lock_released_while_a_task_starts_waiting_is_handed_to_it() {
    loom::model(|| {
        let lock = Arc::new(Lock::new());
        let guard = lock.try_lock().unwrap();
        let waiter = spawn_with(&lock, |lock| {
            let _guard = block_on(lock.lock());
        });
        // The release's one compare-and-swap races the waiter setting the flag: either the
        // waiter finds the lock free, or the release finds the flag and hands the lock on.
        drop(guard);
        waiter.join().unwrap();
        assert!(!lock.locked());
        assert_eq!(lock.n_waiting(), 0);
        drop(lock.try_lock().expect("the lock is free again"));
    });
}

#[test]
fn lock_handed_to_a_dropped_waiter_goes_to_the_next_one() {
    loom::model(|| {
        let lock = Arc::new(Lock::new());
        let guard = lock.try_lock().unwrap();
        let dropped = spawn_with(&lock, |lock| poll_once(lock.lock()).is_ready());
        let waiting = spawn_with(&lock, |lock| {
            let _guard = block_on(lock.lock());
        });
        drop(guard);
        // The dropped one may have had the lock in its one poll (and let it go), or been
        // handed it after that poll and passed it on when dropped: either way the waiting
        // one gets it, and nothing is left held.
        dropped.join().unwrap();
        waiting.join().unwrap();
        assert!(!lock.locked());
        drop(lock.try_lock().expect("the lock is free again"));
    });
}

#[test]
fn lock_release_and_a_guard_of_the_same_acquisition_release_it_once() {
    loom::model(|| {
        let lock = Arc::new(Lock::new());
        let guard = lock.try_lock().unwrap();
        let waiting = spawn_with(&lock, |lock| {
            block_on(lock.acquire());
        });
        let releaser = spawn_with(&lock, |lock| lock.release().is_ok());
        // The guard and `release()` race for the same acquisition; if the waiter already
        // got the lock, `release()` may release the waiter's acquisition instead, as
        // asyncio's would. The guard never releases anyone else's.
        drop(guard);
        waiting.join().unwrap();
        let released = releaser.join().unwrap();
        if lock.locked() {
            // The waiter holds it, unreleased: `release()` had hit the guard's acquisition,
            // or found the lock free before the waiter took it.
            lock.release().unwrap();
        } else {
            // `release()` released the waiter's acquisition.
            assert!(released);
        }
        assert!(lock.release().is_err());
        assert_eq!(lock.n_waiting(), 0);
        drop(lock.try_lock().expect("the lock is free again"));
    });
}

#[test]
fn semaphore_released_while_a_task_starts_waiting_is_handed_to_it() {
    loom::model(|| {
        let sem = Arc::new(Semaphore::new(0));
        let waiter = spawn_with(&sem, |sem| block_on(sem.acquire()).forget());
        sem.release();
        waiter.join().unwrap();
        assert_eq!(sem.available_permits(), 0);
        assert_eq!(sem.n_waiting(), 0);
        sem.release();
        assert_eq!(sem.available_permits(), 1);
    });
}

#[test]
fn bounded_semaphore_permit_handed_to_a_dropped_waiter_goes_to_the_next_one() {
    loom::model(|| {
        let sem = Arc::new(BoundedSemaphore::new(1));
        let permit = sem.try_acquire().unwrap();
        let dropped = spawn_with(&sem, |sem| poll_once(sem.acquire()).is_ready());
        let waiting = spawn_with(&sem, |sem| drop(block_on(sem.acquire())));
        drop(permit);
        dropped.join().unwrap();
        waiting.join().unwrap();
        // Every permit came back exactly once: one more would be over the bound.
        assert_eq!(sem.available_permits(), 1);
        assert!(sem.release().is_err());
    });
}

#[test]
fn event_set_while_a_task_starts_waiting_wakes_it() {
    loom::model(|| {
        let event = Arc::new(Event::new());
        let waiter = spawn_with(&event, |event| block_on(event.wait()));
        // The set's one compare-and-swap races the waiter joining the queue: either the
        // waiter sees the flag, or the set sees the waiter and wakes it.
        event.set();
        waiter.join().unwrap();
        assert_eq!(event.n_waiting(), 0);
    });
}

#[test]
fn event_set_and_clear_racing_waiters_lose_no_wake_up() {
    loom::model(|| {
        let event = Arc::new(Event::new());
        let waiter = spawn_with(&event, |event| block_on(event.wait()));
        let dropped = spawn_with(&event, |event| poll_once(event.wait()).is_ready());
        // The waiter joined before the set and is woken by it, whatever the clear does
        // after; or it saw the flag; or it came after the clear and waits for the next
        // set. The dropped waiter leaves nothing behind.
        event.set();
        event.clear();
        dropped.join().unwrap();
        event.set();
        waiter.join().unwrap();
        assert_eq!(event.n_waiting(), 0);
    });
}

#[test]
fn barrier_releases_both_parties_with_distinct_indices() {
    loom::model(|| {
        let barrier = Arc::new(Barrier::new(2));
        let other = spawn_with(&barrier, |barrier| block_on(barrier.wait()).unwrap());
        let mine = block_on(barrier.wait()).unwrap();
        let theirs = other.join().unwrap();
        let mut indices = [mine, theirs];
        indices.sort_unstable();
        assert_eq!(indices, [0, 1]);
        assert_eq!(barrier.n_waiting(), 0);
    });
}

#[test]
fn barrier_arrival_cancelled_while_filling_is_undone_unless_it_tripped() {
    loom::model(|| {
        let barrier = Arc::new(Barrier::new(2));
        let cancelled = spawn_with(&barrier, |barrier| poll_once(barrier.wait()));
        let waiter = spawn_with(&barrier, |barrier| block_on(barrier.wait()));
        let cancelled = cancelled.join().unwrap();
        if let Poll::Ready(index) = cancelled {
            // It tripped the barrier with the waiter.
            assert_eq!(waiter.join().unwrap(), Ok(1 - index.unwrap()));
        } else {
            barrier.abort();
            match waiter.join().unwrap() {
                // It tripped with the cancelled arrival before that one was dropped: the
                // trip stands, as in asyncio, where a task cancelled while draining passed.
                Ok(_) => {}
                // The cancelled arrival was undone, so the waiter was alone until the abort.
                Err(_) => assert_eq!(barrier.n_waiting(), 0),
            }
            barrier.reset();
        }
        // An arrival that was not undone would leave a party counted that never comes
        // back, and the next round would never fill or never open.
        let other = spawn_with(&barrier, |barrier| block_on(barrier.wait()).unwrap());
        let mine = block_on(barrier.wait()).unwrap();
        assert_eq!(mine + other.join().unwrap(), 1);
        assert!(!barrier.is_broken());
    });
}

#[test]
fn queue_getter_dropped_after_a_put_loses_no_item() {
    loom::model(|| {
        let queue = Arc::new(Queue::new(0));
        let getter = spawn_with(&queue, |queue| poll_once(queue.get()));
        queue.put_nowait(7).unwrap();
        let taken = match getter.join().unwrap() {
            Poll::Ready(item) => Some(item.unwrap()),
            Poll::Pending => None,
        };
        let left = queue.get_nowait().ok();
        assert_eq!([taken, left].into_iter().flatten().collect::<Vec<_>>(), [7]);
    });
}

#[test]
fn queue_item_reserved_for_a_dropped_getter_goes_to_the_next_one() {
    loom::model(|| {
        let queue = Arc::new(Queue::new(0));
        let dropped = spawn_with(&queue, |queue| poll_once(queue.get()));
        let waiting = spawn_with(&queue, |queue| block_on(queue.get()).unwrap());
        queue.put_nowait(1).unwrap();
        // The item was either taken by the dropped get's one poll, or is still there for
        // the waiting one: reserved for it, or passed on to it by the dropped get.
        match dropped.join().unwrap() {
            Poll::Ready(item) => {
                assert_eq!(item, Ok(1));
                queue.put_nowait(2).unwrap();
                assert_eq!(waiting.join().unwrap(), 2);
            }
            Poll::Pending => assert_eq!(waiting.join().unwrap(), 1),
        }
        assert_eq!(queue.get_nowait(), Err(GetError::Empty));
    });
}

#[test]
fn queue_room_given_to_a_dropped_putter_goes_to_the_next_one() {
    loom::model(|| {
        let queue = Arc::new(Queue::new(1));
        queue.put_nowait(0).unwrap();
        let dropped = spawn_with(&queue, |queue| poll_once(queue.put(1)).is_ready());
        let waiting = spawn_with(&queue, |queue| block_on(queue.put(2)).unwrap());
        // The waiting put must get room whether or not room was kept for the dropped one
        // first. The dropped put's item is in the queue if, and only if, its one poll
        // completed: a put dropped while waiting has put nothing, even if room was kept
        // for it.
        let mut received = vec![];
        while !received.contains(&2) {
            received.push(block_on(queue.get()).unwrap());
        }
        let put = dropped.join().unwrap();
        waiting.join().unwrap();
        received.extend(queue.get_nowait());
        received.sort_unstable();
        let expected: &[u32] = if put { &[0, 1, 2] } else { &[0, 2] };
        assert_eq!(received, expected);
        assert!(queue.empty());
    });
}

#[test]
fn queue_bounded_to_one_moves_items_in_order_between_two_waiting_sides() {
    loom::model(|| {
        let queue = Arc::new(Queue::new(1));
        let producer = spawn_with(&queue, |queue| {
            (1..=3).for_each(|item| block_on(queue.put(item)).unwrap())
        });
        let received: Vec<u32> = (0..3).map(|_| block_on(queue.get()).unwrap()).collect();
        producer.join().unwrap();
        assert_eq!(received, [1, 2, 3]);
        assert!(queue.empty());
    });
}

#[test]
fn queue_shutdown_immediate_releases_a_blocked_getter() {
    loom::model(|| {
        let queue = Arc::new(Queue::<u32>::new(0));
        let getter = spawn_with(&queue, |queue| block_on(queue.get()));
        queue.shutdown(true);
        assert_eq!(getter.join().unwrap(), Err(GetError::ShutDown));
    });
}

#[test]
fn queue_join_returns_once_the_last_task_is_done() {
    loom::model(|| {
        let queue = Arc::new(Queue::new(0));
        queue.put_nowait(1).unwrap();
        let joiner = spawn_with(&queue, |queue| block_on(queue.join()));
        assert_eq!(block_on(queue.get()), Ok(1));
        queue.task_done().unwrap();
        joiner.join().unwrap();
    });
}

// The FIFO queue's ring. Under loom a ring has two slots, so that these models also cover
// the buffer an unbounded or larger queue keeps behind a full ring.

#[test]
fn queue_put_on_the_fast_path_while_a_get_starts_waiting_wakes_it() {
    loom::model(|| {
        let queue = Arc::new(Queue::new(2));
        let getter = spawn_with(&queue, |queue| block_on(queue.get()).unwrap());
        queue.put_nowait(1).unwrap();
        assert_eq!(getter.join().unwrap(), 1);
        assert!(queue.empty());
    });
}

#[test]
fn queue_get_on_the_fast_path_while_a_put_starts_waiting_lets_it_in() {
    loom::model(|| {
        let queue = Arc::new(Queue::new(2));
        queue.put_nowait(1).unwrap();
        queue.put_nowait(2).unwrap();
        let putter = spawn_with(&queue, |queue| block_on(queue.put(3)).unwrap());
        let got: Vec<u32> = (0..3).map(|_| block_on(queue.get()).unwrap()).collect();
        putter.join().unwrap();
        assert_eq!(got, [1, 2, 3]);
    });
}

#[test]
fn queue_ring_and_the_buffer_behind_it_keep_fifo_order() {
    loom::model(|| {
        // Two items fill the ring; the third waits behind it, and the fourth must not
        // pass it by once a get has made room in the ring.
        let queue = Arc::new(Queue::new(0));
        let producer = spawn_with(&queue, |queue| {
            (1..=4).for_each(|item| queue.put_nowait(item).unwrap())
        });
        let got: Vec<u32> = (0..4).map(|_| block_on(queue.get()).unwrap()).collect();
        producer.join().unwrap();
        assert_eq!(got, [1, 2, 3, 4]);
        assert_eq!(queue.get_nowait(), Err(GetError::Empty));
    });
}

#[test]
fn queue_bounded_past_its_ring_lets_a_waiting_put_in_behind_the_buffer() {
    loom::model(|| {
        // Bound 3 on a ring of two slots: the third item waits behind the ring, and the
        // fourth put waits for room.
        let queue = Arc::new(Queue::new(3));
        (1..=3).for_each(|item| queue.put_nowait(item).unwrap());
        let putter = spawn_with(&queue, |queue| block_on(queue.put(4)).unwrap());
        let fast = spawn_with(&queue, |queue| queue.get_nowait().ok());
        let mut got: Vec<u32> = fast.join().unwrap().into_iter().collect();
        putter.join().unwrap();
        got.extend(std::iter::from_fn(|| queue.get_nowait().ok()));
        assert_eq!(got, [1, 2, 3, 4]);
    });
}

#[test]
fn queue_immediate_shutdown_racing_a_fast_put_leaves_the_count_exact() {
    loom::model(|| {
        let queue = Arc::new(Queue::new(2));
        queue.put_nowait(0).unwrap();
        let putter = spawn_with(&queue, |queue| queue.put_nowait(1).is_ok());
        queue.shutdown(true);
        putter.join().unwrap();
        // The put either went in before the shutdown and was dropped with the rest, or was
        // refused: either way nothing is left unfinished, and `join` returns.
        assert_eq!(queue.qsize(), 0);
        assert!(queue.task_done().is_err());
        block_on(queue.join());
    });
}

#[test]
fn queue_two_fast_puts_and_fast_gets_move_each_item_once_in_order() {
    loom::model(|| {
        let queue = Arc::new(Queue::new(2));
        let first = spawn_with(&queue, |queue| queue.put_nowait(1).unwrap());
        let second = spawn_with(&queue, |queue| queue.put_nowait(2).unwrap());
        let mut got: Vec<u32> = (0..2).filter_map(|_| queue.get_nowait().ok()).collect();
        first.join().unwrap();
        second.join().unwrap();
        got.extend(std::iter::from_fn(|| queue.get_nowait().ok()));
        got.sort_unstable();
        assert_eq!(got, [1, 2]);
    });
}

#[test]
fn queue_task_done_racing_a_fast_put_never_miscounts() {
    loom::model(|| {
        let queue = Arc::new(Queue::new(2));
        queue.put_nowait(1).unwrap();
        assert_eq!(queue.get_nowait(), Ok(1));
        let putter = spawn_with(&queue, |queue| queue.put_nowait(2).unwrap());
        let joiner = spawn_with(&queue, |queue| block_on(queue.join()));
        // One done for the item got; a second succeeds only if it counts the racing put.
        queue.task_done().unwrap();
        let second = queue.task_done().is_ok();
        putter.join().unwrap();
        if !second {
            assert_eq!(block_on(queue.get()), Ok(2));
            queue.task_done().unwrap();
        }
        joiner.join().unwrap();
        assert!(queue.task_done().is_err());
    });
}

/// Takes the condition's lock, after touching `turns`, an atomic that loom can see.
///
/// Loom explores other orders only where threads touch the same loom object, and Tokio's
/// semaphore under the lock is not one. Without this, loom would never try another thread
/// winning the lock first.
fn lock<'a>(cond: &'a Condition, turns: &AtomicUsize) -> ConditionGuard<'a> {
    turns.fetch_add(1, Ordering::SeqCst);
    block_on(cond.lock())
}

#[test]
fn condition_notification_taken_by_a_dropped_waiter_is_passed_on() {
    loom::model(|| {
        let cond = Arc::new(Condition::new());
        let turns = Arc::new(AtomicUsize::new(0));
        // What the waiters wait for. A std atomic, not loom's: the lock that orders it is
        // Tokio's, which loom cannot see, so loom would let a reader see a stale value.
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let dropped = thread::spawn({
            let (cond, turns) = (Arc::clone(&cond), Arc::clone(&turns));
            move || {
                let guard = lock(&cond, &turns);
                let _ = poll_once(cond.wait(guard));
            }
        });
        let waiting = thread::spawn({
            let (cond, turns, ready) = (Arc::clone(&cond), Arc::clone(&turns), Arc::clone(&ready));
            move || {
                let guard = lock(&cond, &turns);
                drop(block_on(cond.wait_for(guard, || {
                    ready.load(std::sync::atomic::Ordering::Relaxed)
                })));
            }
        });
        let guard = lock(&cond, &turns);
        ready.store(true, std::sync::atomic::Ordering::Relaxed);
        cond.notify(1);
        drop(guard);
        // Without the pass-on, the notification could die with the dropped waiter while
        // the other one waits on a predicate that is already true.
        dropped.join().unwrap();
        waiting.join().unwrap();
        assert_eq!(cond.n_waiting(), 0);
        assert!(!cond.locked());
    });
}
