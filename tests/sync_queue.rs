//! `Queue`, `LifoQueue` and `PriorityQueue` (§13): asyncio's queues, FIFO-fair and cancel
//! safe. A put reserves an item for the getter that has waited longest, under the queue's
//! lock, and the item stays in the queue until that getter takes it, so a getter dropped at
//! any point loses nothing; a put that waits keeps its item until it runs, and room is kept
//! for it meanwhile, so a put dropped at any point has put nothing. The poll-level tests
//! drive each future by hand with tokio-test to reach the states in between (reserved but
//! not taken, room kept but not used); the `spec!` tests run real tasks on both runtimes,
//! and end with sweeps and stress tests, one of them through the FIFO queue's lock-free
//! ring and the buffer behind it.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

use aio::sync::{
    GetError, LifoQueue, PriorityQueue, PutError, Queue, QueueGet, QueuePut, TaskDoneError,
};
use futures::StreamExt;
use tokio_test::task::spawn;
use tokio_test::{assert_pending, assert_ready, assert_ready_eq};

use crate::support::*;

/// The three queue types, for tests that hold for each (§13d.35).
trait AnyQueue<T>: Clone + Send + Sync + 'static {
    fn put(&self, item: T) -> QueuePut<'_, T>;
    fn put_nowait(&self, item: T) -> Result<(), PutError<T>>;
    fn get(&self) -> QueueGet<'_, T>;
    fn get_nowait(&self) -> Result<T, GetError>;
    fn task_done(&self) -> Result<(), TaskDoneError>;
    fn shutdown(&self, immediate: bool);
}

macro_rules! any_queue {
    ($($queue:ident),*) => {$(
        impl<T: Send + 'static> AnyQueue<T> for $queue<T> {
            fn put(&self, item: T) -> QueuePut<'_, T> { $queue::put(self, item) }
            fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
                $queue::put_nowait(self, item)
            }
            fn get(&self) -> QueueGet<'_, T> { $queue::get(self) }
            fn get_nowait(&self) -> Result<T, GetError> { $queue::get_nowait(self) }
            fn task_done(&self) -> Result<(), TaskDoneError> { $queue::task_done(self) }
            fn shutdown(&self, immediate: bool) { $queue::shutdown(self, immediate) }
        }
    )*};
}

any_queue!(Queue, LifoQueue, PriorityQueue);

fn drain<T>(queue: &impl AnyQueue<T>) -> Vec<T> {
    std::iter::from_fn(|| queue.get_nowait().ok()).collect()
}

/// Runs `fut`, but drops it after `polls` polls if it has not finished by then.
async fn cut_after<F: Future>(polls: usize, fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    let mut left = polls;
    std::future::poll_fn(|cx| {
        if left == 0 {
            return Poll::Ready(None);
        }
        left -= 1;
        fut.as_mut().poll(cx).map(Some)
    })
    .await
}

/// A small deterministic generator, for the stress test.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

// §13a: basics.

#[test]
fn queue_of_maxsize_0_is_unbounded_and_never_full_13a_1() {
    let queue = Queue::new(0);
    for item in 0..1000 {
        queue.put_nowait(item).unwrap();
        assert!(!queue.full());
    }
    assert_eq!(queue.qsize(), 1000);
    assert_eq!(queue.maxsize(), 0);
}

#[test]
fn queue_maxsize_qsize_empty_and_full_are_exact_13a_3() {
    let queue = Queue::new(2);
    assert_eq!(queue.maxsize(), 2);
    assert!(queue.empty() && !queue.full());
    queue.put_nowait('a').unwrap();
    assert_eq!(queue.qsize(), 1);
    assert!(!queue.empty() && !queue.full());
    queue.put_nowait('b').unwrap();
    assert_eq!(queue.qsize(), 2);
    assert!(queue.full());
    queue.get_nowait().unwrap();
    assert_eq!(queue.qsize(), 1);
    assert!(!queue.full());
}

#[test]
fn queue_orders_items_fifo_lifo_and_by_priority_13a_4() {
    let fifo = Queue::new(0);
    let lifo = LifoQueue::new(0);
    let priority = PriorityQueue::new(0);
    for item in [1, 3, 2] {
        fifo.put_nowait(item).unwrap();
        lifo.put_nowait(item).unwrap();
        priority.put_nowait(item).unwrap();
    }
    assert_eq!(drain(&fifo), [1, 3, 2]);
    assert_eq!(drain(&lifo), [2, 3, 1]);
    assert_eq!(drain(&priority), [1, 2, 3]);
}

#[test]
fn priority_queue_is_a_min_heap_keeping_equal_items_in_put_order_13a_5() {
    let queue = PriorityQueue::new(0);
    // Items that compare equal by priority come out in the order they were put.
    #[derive(Debug)]
    struct Task(u8, &'static str);
    impl PartialEq for Task {
        fn eq(&self, other: &Self) -> bool {
            self.0 == other.0
        }
    }
    impl Eq for Task {}
    impl PartialOrd for Task {
        fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(other))
        }
    }
    impl Ord for Task {
        fn cmp(&self, other: &Self) -> std::cmp::Ordering {
            self.0.cmp(&other.0)
        }
    }
    for (priority, name) in [(2, "c"), (1, "a"), (2, "d"), (1, "b"), (0, "first")] {
        queue.put_nowait(Task(priority, name)).unwrap();
    }
    let names: Vec<_> = drain(&queue).into_iter().map(|task| task.1).collect();
    assert_eq!(names, ["first", "a", "b", "c", "d"]);
}

#[test]
fn queue_nowait_fails_with_empty_and_full_and_hands_the_item_back_13a_6() {
    let queue = Queue::new(1);
    assert_eq!(queue.get_nowait(), Err(GetError::Empty));
    queue.put_nowait(String::from("kept")).unwrap();
    let err = queue.put_nowait(String::from("refused")).unwrap_err();
    assert!(matches!(err, PutError::Full(_)));
    assert_eq!(err.to_string(), "the queue is full");
    assert_eq!(err.into_inner(), "refused");
    assert_eq!(GetError::Empty.to_string(), "the queue is empty");
}

#[test]
fn queue_put_waits_while_full_and_resumes_when_room_frees_13a_7() {
    let queue = Queue::new(1);
    queue.put_nowait(1).unwrap();
    let mut put = spawn(queue.put(2));
    assert_pending!(put.poll());
    assert!(!put.is_woken());
    assert_eq!(queue.get_nowait(), Ok(1));
    assert!(put.is_woken());
    assert_ready_eq!(put.poll(), Ok(()));
    assert_eq!(queue.get_nowait(), Ok(2));
}

#[test]
fn queue_get_waits_while_empty_and_resumes_on_put_13a_8() {
    let queue = Queue::new(0);
    let mut get = spawn(queue.get());
    assert_pending!(get.poll());
    queue.put_nowait("x").unwrap();
    assert!(get.is_woken());
    assert_ready_eq!(get.poll(), Ok("x"));
}

#[test]
fn queue_waiting_puts_complete_in_fifo_order_13a_9() {
    let queue = Queue::new(1);
    queue.put_nowait('0').unwrap();
    let mut a = spawn(queue.put('a'));
    let mut b = spawn(queue.put('b'));
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    assert_eq!(queue.get_nowait(), Ok('0'));
    // `a` waited longest: the room is kept for it, not for `b`.
    assert!(a.is_woken() && !b.is_woken());
    assert_ready_eq!(a.poll(), Ok(()));
    assert_eq!(queue.get_nowait(), Ok('a'));
    assert!(b.is_woken());
    assert_ready_eq!(b.poll(), Ok(()));
    assert_eq!(queue.get_nowait(), Ok('b'));
}

#[test]
fn queue_waiting_gets_are_served_in_fifo_order_13a_9() {
    let queue = Queue::new(0);
    let mut a = spawn(queue.get());
    let mut b = spawn(queue.get());
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    queue.put_nowait(1).unwrap();
    // The get that has waited longest is woken, with an item reserved for it; the other
    // still waits.
    assert!(a.is_woken() && !b.is_woken());
    assert_pending!(b.poll());
    queue.put_nowait(2).unwrap();
    assert!(b.is_woken());
    // Each takes the next item when it runs (§13b.12), whichever runs first.
    assert_ready_eq!(b.poll(), Ok(1));
    assert_ready_eq!(a.poll(), Ok(2));
}

#[test]
fn queue_debug_shows_maxsize_size_waiters_tasks_and_shutdown_13a_11() {
    let queue = Queue::new(1);
    queue.put_nowait(1).unwrap();
    let mut put = spawn(queue.put(2));
    assert_pending!(put.poll());
    assert_eq!(
        format!("{queue:?}"),
        "Queue { maxsize: 1, qsize: 1, getters: 0, putters: 1, unfinished_tasks: 1, \
         shut_down: false }"
    );
    drop(put);
    queue.get_nowait().unwrap();
    let mut get = spawn(queue.get());
    assert_pending!(get.poll());
    queue.shutdown(false);
    assert_eq!(
        format!("{queue:?}"),
        "Queue { maxsize: 1, qsize: 0, getters: 0, putters: 0, unfinished_tasks: 1, \
         shut_down: true }"
    );
    assert!(format!("{:?}", LifoQueue::<u8>::new(0)).starts_with("LifoQueue {"));
    assert!(format!("{:?}", PriorityQueue::<u8>::new(0)).starts_with("PriorityQueue {"));
}

// §13b: handoff and cancellation.

#[test]
fn queue_put_reserves_an_item_for_the_waiting_getter_under_the_lock_13b_12() {
    let queue = Queue::new(0);
    let mut get = spawn(queue.get());
    assert_pending!(get.poll());
    queue.put_nowait(1).unwrap();
    // The item stays in the queue until the getter runs, as in asyncio...
    assert_eq!(queue.qsize(), 1);
    assert!(!queue.empty());
    // ...but it is reserved: no other get can take it (asyncio differs here, §13b.22: a
    // third party's get_nowait could).
    assert_eq!(queue.get_nowait(), Err(GetError::Empty));
    assert_ready_eq!(get.poll(), Ok(1));
    assert!(queue.empty());
}

#[test]
fn priority_queue_woken_getter_takes_the_smallest_item_when_it_runs_13b_12() {
    let queue = PriorityQueue::new(0);
    let mut get = spawn(queue.get());
    assert_pending!(get.poll());
    queue.put_nowait((5, "routine")).unwrap();
    // Put after the getter was woken, before it ran: still the first out.
    queue.put_nowait((1, "urgent")).unwrap();
    assert_ready_eq!(get.poll(), Ok((1, "urgent")));
    assert_eq!(queue.get_nowait(), Ok((5, "routine")));
}

#[test]
fn lifo_queue_woken_getter_takes_the_newest_item_when_it_runs_13b_12() {
    let queue = LifoQueue::new(0);
    let mut get = spawn(queue.get());
    assert_pending!(get.poll());
    queue.put_nowait(1).unwrap();
    queue.put_nowait(2).unwrap();
    assert_ready_eq!(get.poll(), Ok(2));
    assert_eq!(queue.get_nowait(), Ok(1));
}

#[test]
fn queue_reserved_item_holds_its_room_until_taken_13b_12() {
    let queue = Queue::new(1);
    let mut get = spawn(queue.get());
    assert_pending!(get.poll());
    queue.put_nowait(1).unwrap();
    // As in asyncio, the item stays in the queue until the getter runs: the queue is
    // full, and says so exactly (§13a.3).
    assert!(queue.full());
    assert_eq!(queue.qsize(), 1);
    assert!(queue.put_nowait(2).unwrap_err().is_full());
    let mut put = spawn(queue.put(2));
    assert_pending!(put.poll());
    assert_ready_eq!(get.poll(), Ok(1));
    // Taking it freed the room, which is kept for the waiting put until it runs.
    assert!(put.is_woken());
    assert_eq!(queue.qsize(), 0);
    assert!(queue.put_nowait(3).unwrap_err().is_full());
    assert_ready_eq!(put.poll(), Ok(()));
    assert_eq!(queue.qsize(), 1);
}

#[test]
fn queue_getter_dropped_after_a_reservation_loses_no_item_13b_13() {
    for kind in 0..3 {
        let (queue, order): (Box<dyn Fn() -> Vec<i32>>, _) = match kind {
            0 => {
                let q = Queue::new(0);
                let mut get = spawn(q.get());
                assert_pending!(get.poll());
                q.put_nowait(1).unwrap();
                q.put_nowait(2).unwrap();
                drop(get);
                (Box::new(move || drain(&q)), [1, 2])
            }
            1 => {
                let q = LifoQueue::new(0);
                let mut get = spawn(q.get());
                assert_pending!(get.poll());
                q.put_nowait(1).unwrap();
                q.put_nowait(2).unwrap();
                drop(get);
                // It never left the queue: both are there, newest first.
                (Box::new(move || drain(&q)), [2, 1])
            }
            _ => {
                let q = PriorityQueue::new(0);
                let mut get = spawn(q.get());
                assert_pending!(get.poll());
                q.put_nowait(2).unwrap();
                q.put_nowait(1).unwrap();
                drop(get);
                (Box::new(move || drain(&q)), [1, 2])
            }
        };
        assert_eq!(queue(), order, "kind {kind}");
    }
}

#[test]
fn queue_next_get_receives_the_item_of_a_dropped_getter_first_13b_13() {
    let queue = Queue::new(0);
    let mut cancelled = spawn(queue.get());
    assert_pending!(cancelled.poll());
    queue.put_nowait(1).unwrap();
    queue.put_nowait(2).unwrap();
    drop(cancelled);
    assert_eq!(queue.qsize(), 2);
    assert_ready_eq!(spawn(queue.get()).poll(), Ok(1));
    assert_ready_eq!(spawn(queue.get()).poll(), Ok(2));
}

#[test]
fn queue_dropped_getter_passes_its_item_to_the_next_getter_13b_14_15() {
    let queue = Queue::new(0);
    let mut a = spawn(queue.get());
    let mut b = spawn(queue.get());
    let mut c = spawn(queue.get());
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    assert_pending!(c.poll());
    queue.put_nowait(1).unwrap();
    queue.put_nowait(2).unwrap();
    // `a` and `b` were woken with an item reserved each. `a` is cancelled before it runs:
    // its reservation goes on to `c`, still waiting.
    drop(a);
    assert!(c.is_woken());
    assert_ready_eq!(b.poll(), Ok(1));
    assert_ready_eq!(c.poll(), Ok(2));
    assert_eq!(queue.qsize(), 0);
}

#[test]
fn queue_getter_dropped_before_any_put_takes_nothing_13b_16() {
    let queue = Queue::new(0);
    let mut cancelled = spawn(queue.get());
    let mut other = spawn(queue.get());
    assert_pending!(cancelled.poll());
    assert_pending!(other.poll());
    drop(cancelled);
    queue.put_nowait(1).unwrap();
    assert_ready_eq!(other.poll(), Ok(1));
}

/// A put woken because room was kept for it, then dropped before it ran, has put nothing
/// (asyncio's and Tokio's rule: cancelled means not put), and the room goes to the next
/// waiting put, which completes.
#[test]
fn queue_putter_woken_then_dropped_puts_nothing_and_passes_its_room_on_13b_17() {
    let queue = Queue::new(1);
    queue.put_nowait(0).unwrap();
    let mut woken = spawn(queue.put(1));
    let mut next = spawn(queue.put(2));
    assert_pending!(woken.poll());
    assert_pending!(next.poll());
    assert_eq!(queue.get_nowait(), Ok(0));
    assert!(woken.is_woken());
    // The room is kept for `woken`: nobody barges in.
    assert!(queue.put_nowait(9).unwrap_err().is_full());
    assert_eq!(queue.get_nowait(), Err(GetError::Empty));
    drop(woken);
    assert!(next.is_woken());
    assert_ready_eq!(next.poll(), Ok(()));
    assert_eq!(drain(&queue), [2]);
    // A retried put succeeds once there is room, and its item is there once.
    assert_ready_eq!(spawn(queue.put(1)).poll(), Ok(()));
    assert_eq!(drain(&queue), [1]);
}

/// A put woken because room was kept for it, that runs only after the queue was shut down,
/// is refused with its item, as asyncio's woken putter that finds the queue shut down is;
/// the items already in the queue are still got.
#[test]
fn queue_put_woken_for_room_then_shut_down_is_refused_with_its_item_13d() {
    for immediate in [false, true] {
        let queue = Queue::new(1);
        queue.put_nowait(0).unwrap();
        let mut put = spawn(queue.put(1));
        assert_pending!(put.poll());
        assert_eq!(queue.get_nowait(), Ok(0));
        assert!(put.is_woken());
        queue.put_nowait(2).unwrap_err();
        queue.shutdown(immediate);
        assert_ready_eq!(put.poll(), Err(PutError::ShutDown(1)));
        assert_eq!(queue.get_nowait(), Err(GetError::ShutDown));
        assert_eq!(queue.task_done(), Ok(()));
        assert_eq!(queue.task_done(), Err(TaskDoneError));
    }
}

/// The waiter counts: gets waiting for an item and puts waiting for room, each leaving
/// the count when cancelled or when an item is reserved (room is kept) for it.
#[test]
fn queue_waiter_counts_follow_waiting_gets_and_puts() {
    let queue = Queue::new(1);
    let mut gets = (spawn(queue.get()), spawn(queue.get()));
    assert_pending!(gets.0.poll());
    assert_pending!(gets.1.poll());
    assert_eq!(queue.n_waiting_getters(), 2);
    drop(gets.1);
    assert_eq!(queue.n_waiting_getters(), 1);
    queue.put_nowait(0).unwrap();
    assert_eq!(queue.n_waiting_getters(), 0);
    assert_ready_eq!(gets.0.poll(), Ok(0));
    queue.put_nowait(1).unwrap();
    let mut puts = (spawn(queue.put(2)), spawn(queue.put(3)));
    assert_pending!(puts.0.poll());
    assert_pending!(puts.1.poll());
    assert_eq!(queue.n_waiting_putters(), 2);
    drop(puts.1);
    assert_eq!(queue.n_waiting_putters(), 1);
    assert_eq!(queue.get_nowait(), Ok(1));
    assert_eq!(queue.n_waiting_putters(), 0);
    assert_ready_eq!(puts.0.poll(), Ok(()));
    assert_eq!(drain(&queue), [2]);
}

#[test]
fn queue_putter_dropped_while_waiting_lets_the_next_put_proceed_in_order_13b_18() {
    let queue = Queue::new(1);
    queue.put_nowait(0).unwrap();
    let mut a = spawn(queue.put(1));
    let mut b = spawn(queue.put(2));
    let mut c = spawn(queue.put(3));
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    assert_pending!(c.poll());
    // `b` gives up: its item is dropped, the others keep their order.
    drop(b);
    assert_eq!(queue.get_nowait(), Ok(0));
    assert_ready_eq!(a.poll(), Ok(()));
    assert_eq!(queue.get_nowait(), Ok(1));
    assert_ready_eq!(c.poll(), Ok(()));
    assert_eq!(queue.get_nowait(), Ok(3));
    // Unfinished tasks count the accepted items only.
    for _ in 0..3 {
        queue.task_done().unwrap();
    }
    assert_eq!(queue.task_done(), Err(TaskDoneError));
}

#[test]
fn queue_dropped_waiters_are_not_held_by_the_queue_13b_19() {
    let queue = Queue::new(1);
    let mut get = spawn(queue.get());
    assert_pending!(get.poll());
    assert!(format!("{queue:?}").contains("getters: 1"));
    drop(get);
    assert!(format!("{queue:?}").contains("getters: 0"));
    queue.put_nowait(0).unwrap();
    let mut put = spawn(queue.put(1));
    assert_pending!(put.poll());
    assert!(format!("{queue:?}").contains("putters: 1"));
    drop(put);
    assert!(format!("{queue:?}").contains("putters: 0"));
}

#[test]
fn queue_put_nowait_does_not_jump_over_waiting_puts_13b_21() {
    let queue = Queue::new(1);
    queue.put_nowait(0).unwrap();
    let mut waiting = spawn(queue.put(1));
    assert_pending!(waiting.poll());
    // Room freed and went to the waiting put at once: put_nowait finds the queue full.
    queue.get_nowait().unwrap();
    assert!(queue.put_nowait(2).unwrap_err().is_full());
    assert_ready_eq!(waiting.poll(), Ok(()));
    assert_eq!(drain(&queue), [1]);
}

#[test]
fn queue_get_nowait_calls_with_waiting_puts_keep_fifo_order_13b_21() {
    let queue = Queue::new(2);
    queue.put_nowait(0).unwrap();
    queue.put_nowait(1).unwrap();
    let mut puts: Vec<_> = (2..6).map(|item| spawn(queue.put(item))).collect();
    for put in &mut puts {
        assert_pending!(put.poll());
    }
    let mut got = Vec::new();
    for round in 0..6 {
        got.push(queue.get_nowait().unwrap());
        // The room freed is kept for the put that has waited longest; it puts when it runs.
        if let Some(put) = puts.get_mut(round) {
            assert!(put.is_woken());
            assert_ready_eq!(put.poll(), Ok(()));
        }
    }
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
}

// §13c: task_done and join.

#[test]
fn queue_put_counts_an_unfinished_task_and_get_does_not_finish_it_13c_23() {
    let queue = Queue::new(0);
    queue.put_nowait(1).unwrap();
    queue.get_nowait().unwrap();
    let mut join = spawn(queue.join());
    assert_pending!(join.poll());
    queue.task_done().unwrap();
    assert!(join.is_woken());
    assert_ready!(join.poll());
}

#[test]
fn queue_task_done_called_too_many_times_is_an_error_13c_24() {
    let queue = Queue::<u8>::new(0);
    assert_eq!(queue.task_done(), Err(TaskDoneError));
    assert_eq!(
        TaskDoneError.to_string(),
        "task_done() called more times than items were put"
    );
    queue.put_nowait(1).unwrap();
    assert_eq!(queue.task_done(), Ok(()));
    assert_eq!(queue.task_done(), Err(TaskDoneError));
}

#[test]
fn queue_join_with_no_unfinished_tasks_returns_at_once_and_again_13c_25() {
    let queue = Queue::<u8>::new(0);
    assert_ready!(spawn(queue.join()).poll());
    assert_ready!(spawn(queue.join()).poll());
}

#[test]
fn queue_join_waits_for_every_task_done_and_releases_all_joiners_together_13c_26() {
    let queue = Queue::new(0);
    for item in 0..3 {
        queue.put_nowait(item).unwrap();
    }
    let mut a = spawn(queue.join());
    let mut b = spawn(queue.join());
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    for _ in 0..3 {
        assert!(!a.is_woken());
        queue.get_nowait().unwrap();
        queue.task_done().unwrap();
    }
    assert!(a.is_woken() && b.is_woken());
    assert_ready!(a.poll());
    assert_ready!(b.poll());
    // A dropped joiner is simply forgotten.
    queue.put_nowait(9).unwrap();
    let mut dropped = spawn(queue.join());
    assert_pending!(dropped.poll());
    drop(dropped);
    queue.task_done().unwrap();
}

// §13d: shutdown.

#[test]
fn queue_shut_down_refuses_puts_handing_the_item_back_13d_27() {
    let queue = Queue::new(0);
    queue.shutdown(false);
    assert!(queue.is_shut_down());
    assert!(matches!(queue.put_nowait(1), Err(PutError::ShutDown(1))));
    let err = assert_ready!(spawn(queue.put(2)).poll()).unwrap_err();
    assert_eq!(err.to_string(), "the queue is shut down");
    assert!(err.is_shut_down());
    assert_eq!(err.into_inner(), 2);
}

#[test]
fn queue_shut_down_still_gives_the_items_left_then_fails_13d_28_29() {
    fn check(queue: impl AnyQueue<u8>, expected: [u8; 3]) {
        for item in [1, 3, 2] {
            queue.put_nowait(item).unwrap();
        }
        queue.shutdown(false);
        // §13d.35: each kind drains in its own order.
        assert_eq!(drain(&queue), expected);
        assert_eq!(queue.get_nowait(), Err(GetError::ShutDown));
        assert_ready_eq!(spawn(queue.get()).poll(), Err(GetError::ShutDown));
    }
    check(Queue::new(0), [1, 3, 2]);
    check(LifoQueue::new(0), [2, 3, 1]);
    check(PriorityQueue::new(0), [1, 2, 3]);
}

#[test]
fn queue_shutdown_releases_blocked_puts_and_gets_with_errors_13d_30() {
    let full = Queue::new(1);
    full.put_nowait(0).unwrap();
    let mut put = spawn(full.put(1));
    assert_pending!(put.poll());
    full.shutdown(false);
    assert!(put.is_woken());
    assert!(matches!(
        assert_ready!(put.poll()),
        Err(PutError::ShutDown(1))
    ));
    assert_eq!(full.get_nowait(), Ok(0));

    let empty = Queue::<u8>::new(0);
    let mut get = spawn(empty.get());
    assert_pending!(get.poll());
    empty.shutdown(false);
    assert!(get.is_woken());
    assert_ready_eq!(get.poll(), Err(GetError::ShutDown));
}

#[test]
fn queue_shutdown_with_an_item_reserved_for_a_getter_strands_nothing_13d_30() {
    let queue = Queue::new(0);
    let mut first = spawn(queue.get());
    let mut second = spawn(queue.get());
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    queue.put_nowait("A").unwrap();
    // "A" is reserved for the first getter, which has not run yet.
    queue.shutdown(false);
    // The second getter still waits: the first may go away without "A".
    assert_pending!(second.poll());
    assert_eq!(queue.get_nowait(), Err(GetError::Empty));
    drop(first);
    // It did: the second getter gets it, and only then does the queue count as drained.
    assert!(second.is_woken());
    assert_ready_eq!(second.poll(), Ok("A"));
    assert_eq!(queue.get_nowait(), Err(GetError::ShutDown));
    queue.task_done().unwrap();
    assert_ready!(spawn(queue.join()).poll());
}

#[test]
fn queue_shutdown_fails_the_other_getters_once_the_reserved_item_is_taken_13d_30() {
    let queue = Queue::new(0);
    let mut first = spawn(queue.get());
    let mut second = spawn(queue.get());
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    queue.put_nowait(1).unwrap();
    queue.shutdown(false);
    assert_pending!(second.poll());
    assert_ready_eq!(first.poll(), Ok(1));
    assert!(second.is_woken());
    assert_ready_eq!(second.poll(), Err(GetError::ShutDown));
}

#[test]
fn queue_shutdown_keeps_unfinished_tasks_for_join_13d_31() {
    let queue = Queue::new(0);
    queue.put_nowait(1).unwrap();
    queue.shutdown(false);
    let mut join = spawn(queue.join());
    assert_pending!(join.poll());
    assert_eq!(queue.get_nowait(), Ok(1));
    queue.task_done().unwrap();
    assert_ready!(join.poll());
}

#[test]
fn queue_immediate_shutdown_drops_the_items_and_releases_join_13d_32() {
    let queue = Queue::new(0);
    for item in 0..3 {
        queue.put_nowait(item).unwrap();
    }
    let mut join = spawn(queue.join());
    assert_pending!(join.poll());
    queue.shutdown(true);
    assert_eq!(queue.qsize(), 0);
    assert!(join.is_woken());
    assert_ready!(join.poll());
    assert_eq!(queue.get_nowait(), Err(GetError::ShutDown));
    assert_eq!(queue.task_done(), Err(TaskDoneError));
}

#[test]
fn queue_immediate_shutdown_with_blocked_puts_and_gets_13d_30_32() {
    // Blocked puts, on a full queue.
    let full = Queue::new(1);
    full.put_nowait(String::from("queued")).unwrap();
    let mut put = spawn(full.put(String::from("waiting")));
    assert_pending!(put.poll());
    full.shutdown(true);
    let err = assert_ready!(put.poll()).unwrap_err();
    assert!(err.is_shut_down());
    assert_eq!(err.into_inner(), "waiting");
    assert_eq!(full.get_nowait(), Err(GetError::ShutDown));
    assert_ready!(spawn(full.join()).poll());

    // Blocked gets, on an empty queue.
    let empty = Queue::<u8>::new(0);
    let mut a = spawn(empty.get());
    let mut b = spawn(empty.get());
    assert_pending!(a.poll());
    assert_pending!(b.poll());
    empty.shutdown(true);
    assert_ready_eq!(a.poll(), Err(GetError::ShutDown));
    assert_ready_eq!(b.poll(), Err(GetError::ShutDown));
}

#[test]
fn queue_immediate_shutdown_spares_items_already_got_for_task_done_13d_33() {
    let queue = Queue::new(0);
    for item in 0..3 {
        queue.put_nowait(item).unwrap();
    }
    assert_eq!(queue.get_nowait(), Ok(0));
    queue.shutdown(true);
    // Two items dropped; the one got is still unfinished.
    let mut join = spawn(queue.join());
    assert_pending!(join.poll());
    queue.task_done().unwrap();
    assert_ready!(join.poll());
    assert_eq!(queue.task_done(), Err(TaskDoneError));
}

#[test]
fn queue_immediate_shutdown_drops_the_items_reserved_for_getters_too_13d_32() {
    let queue = Queue::new(0);
    let mut taker = spawn(queue.get());
    let mut dropper = spawn(queue.get());
    assert_pending!(taker.poll());
    assert_pending!(dropper.poll());
    queue.put_nowait(1).unwrap();
    queue.put_nowait(2).unwrap();
    let mut join = spawn(queue.join());
    assert_pending!(join.poll());
    // Both were woken with an item reserved, and had not run: as in asyncio, the items
    // were still in the queue, and go with the rest...
    queue.shutdown(true);
    assert_eq!(queue.qsize(), 0);
    assert!(join.is_woken());
    assert_ready!(join.poll());
    // ...so the getters find the queue drained, whether they run or go away.
    assert_ready_eq!(taker.poll(), Err(GetError::ShutDown));
    drop(dropper);
    assert_eq!(queue.get_nowait(), Err(GetError::ShutDown));
    assert_eq!(queue.task_done(), Err(TaskDoneError));
}

#[test]
fn queue_shutdown_is_idempotent_and_shows_in_debug_13d_34() {
    let queue = Queue::new(0);
    queue.put_nowait(1).unwrap();
    queue.shutdown(false);
    queue.shutdown(false);
    assert!(format!("{queue:?}").contains("shut_down: true"));
    assert_eq!(queue.qsize(), 1);
    // A later immediate shutdown still empties it.
    queue.shutdown(true);
    assert_eq!(queue.qsize(), 0);
}

#[test]
fn queue_shutdown_applies_to_lifo_and_priority_queues_13d_35() {
    let lifo = LifoQueue::new(1);
    lifo.put_nowait(1).unwrap();
    let mut put = spawn(lifo.put(2));
    assert_pending!(put.poll());
    lifo.shutdown(true);
    assert!(matches!(
        assert_ready!(put.poll()),
        Err(PutError::ShutDown(2))
    ));
    assert_eq!(lifo.get_nowait(), Err(GetError::ShutDown));

    let priority = PriorityQueue::<u8>::new(0);
    let mut get = spawn(priority.get());
    assert_pending!(get.poll());
    priority.shutdown(false);
    assert_ready_eq!(get.poll(), Err(GetError::ShutDown));
}

// Poll-level sweeps: drop a future after every possible number of steps.

/// One step of a scripted exchange.
#[derive(Clone, Copy, Debug)]
enum Step {
    PollVictim,
    PollOther,
    Put,
    GetNowait,
}

/// Runs `script` against a queue, with a victim get dropped after `cut` steps, and checks
/// that every item put is got exactly once.
fn get_sweep(queue: &impl AnyQueue<u32>, script: &[Step], cut: usize) {
    let mut next = 0;
    let mut got = Vec::new();
    let mut victim = Some(spawn(queue.get()));
    let mut other = spawn(queue.get());
    let mut other_done = false;
    for (i, step) in script.iter().enumerate() {
        if i == cut {
            victim = None;
        }
        match step {
            Step::PollVictim => {
                if let Some(get) = &mut victim {
                    if let Poll::Ready(item) = get.poll() {
                        got.push(item.unwrap());
                        victim = Some(spawn(queue.get()));
                    }
                }
            }
            Step::PollOther => {
                if !other_done {
                    if let Poll::Ready(item) = other.poll() {
                        got.push(item.unwrap());
                        other_done = true;
                    }
                }
            }
            Step::Put => {
                if queue.put_nowait(next).is_ok() {
                    next += 1;
                }
            }
            Step::GetNowait => got.extend(queue.get_nowait().ok()),
        }
    }
    drop(victim);
    if !other_done {
        if let Poll::Ready(item) = other.poll() {
            got.push(item.unwrap());
        }
    }
    drop(other);
    got.extend(drain(queue));
    got.sort_unstable();
    assert_eq!(got, (0..next).collect::<Vec<_>>(), "cut after {cut} steps");
    for _ in 0..next {
        queue.task_done().unwrap();
    }
    assert_eq!(
        queue.task_done(),
        Err(TaskDoneError),
        "cut after {cut} steps"
    );
}

#[test]
fn queue_get_dropped_at_any_step_loses_and_duplicates_no_item_13b() {
    use Step::*;
    let script = [
        PollVictim, PollOther, Put, PollVictim, Put, Put, PollOther, PollVictim, GetNowait,
        PollVictim, Put, PollVictim, Put, PollOther, PollVictim, Put, GetNowait, PollVictim,
    ];
    for cut in 0..=script.len() {
        for maxsize in [0, 1, 2] {
            get_sweep(&Queue::new(maxsize), &script, cut);
            get_sweep(&LifoQueue::new(maxsize), &script, cut);
            get_sweep(&PriorityQueue::new(maxsize), &script, cut);
        }
    }
}

/// Runs a scripted exchange on a bounded queue, with a victim put dropped after `cut`
/// steps, and checks that every item accepted is got exactly once, and no other.
fn put_sweep(queue: &impl AnyQueue<u32>, script: &[Step], cut: usize) {
    let mut next = 0;
    let mut completed = Vec::new();
    let mut got = Vec::new();
    let mut victim_item = next;
    next += 1;
    let mut victim = Some(spawn(queue.put(victim_item)));
    let mut other_item = None;
    let mut other: Option<tokio_test::task::Spawn<QueuePut<'_, u32>>> = None;
    for (i, step) in script.iter().enumerate() {
        if i == cut {
            victim = None;
        }
        match step {
            Step::PollVictim => {
                if let Some(put) = &mut victim {
                    if let Poll::Ready(result) = put.poll() {
                        result.unwrap();
                        completed.push(victim_item);
                        victim_item = next;
                        next += 1;
                        victim = Some(spawn(queue.put(victim_item)));
                    }
                }
            }
            Step::PollOther => match &mut other {
                None => {
                    other_item = Some(next);
                    other = Some(spawn(queue.put(next)));
                    next += 1;
                    if let Poll::Ready(result) = other.as_mut().unwrap().poll() {
                        result.unwrap();
                        completed.extend(other_item.take());
                        other = None;
                    }
                }
                Some(put) => {
                    if let Poll::Ready(result) = put.poll() {
                        result.unwrap();
                        completed.extend(other_item.take());
                        other = None;
                    }
                }
            },
            Step::Put => {
                if queue.put_nowait(next).is_ok() {
                    completed.push(next);
                }
                next += 1;
            }
            Step::GetNowait => got.extend(queue.get_nowait().ok()),
        }
    }
    drop(victim);
    drop(other);
    got.extend(drain(queue));
    let mut sorted = got.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), got.len(), "duplicate at cut {cut}: {got:?}");
    for item in &completed {
        assert!(got.contains(item), "lost {item} at cut {cut}: {got:?}");
    }
    // A put that did not complete put nothing.
    assert_eq!(
        got.len(),
        completed.len(),
        "cut {cut}: {got:?} against {completed:?}"
    );
    for _ in 0..got.len() {
        queue.task_done().unwrap();
    }
    assert_eq!(
        queue.task_done(),
        Err(TaskDoneError),
        "cut after {cut} steps"
    );
}

#[test]
fn queue_put_dropped_at_any_step_puts_nothing_and_loses_nothing_13b() {
    use Step::*;
    let script = [
        PollVictim, Put, PollOther, PollVictim, GetNowait, PollVictim, GetNowait, PollOther, Put,
        PollVictim, GetNowait, GetNowait, PollOther, PollVictim, Put, GetNowait, PollVictim,
        PollOther,
    ];
    for cut in 0..=script.len() {
        for maxsize in [1, 2] {
            put_sweep(&Queue::new(maxsize), &script, cut);
            put_sweep(&LifoQueue::new(maxsize), &script, cut);
            put_sweep(&PriorityQueue::new(maxsize), &script, cut);
        }
    }
}

// Coop budget.

#[test]
fn queue_never_yielding_loop_does_not_starve_a_timer_a8() {
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let queue = Queue::new(1);
            let spin = async {
                // Always ready: without the coop budget, this never gives the timer a turn.
                loop {
                    queue.put(1).await.unwrap();
                    queue.get().await.unwrap();
                    queue.put_nowait(2).unwrap();
                    let mut stream = queue.stream();
                    stream.next().await.unwrap();
                }
            };
            tokio::select! {
                () = spin => unreachable!(),
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        });
        done.send(()).unwrap();
    });
    wait.recv_timeout(Duration::from_secs(20))
        .expect("a never-yielding queue loop starved the timer");
}

// Tasks on both runtimes.

spec! {
    /// §13b.21: producers and consumers on a queue of one never deadlock.
    async fn queue_of_one_never_deadlocks_producers_and_consumers_13b_21() {
        producers_and_consumers(Queue::new(1), 3, 200).await;
    }
}

spec! {
    /// The stream yields the items, then ends once the queue is shut down and drained.
    async fn queue_stream_ends_when_shut_down_and_drained_13d_28() {
        let queue = Queue::new(2);
        let producer = {
            let queue = queue.clone();
            tokio::spawn(async move {
                for item in 0..10 {
                    queue.put(item).await.unwrap();
                }
                queue.shutdown(false);
            })
        };
        let got: Vec<_> = queue.stream().collect().await;
        assert_eq!(got, (0..10).collect::<Vec<_>>());
        producer.await.unwrap();
        let mut ended = queue.stream();
        assert_eq!(ended.next().await, None);
        assert!(futures::stream::FusedStream::is_terminated(&ended));
    }
}

spec! {
    /// A cancel-at-every-await sweep with real timeouts: consumers' gets are cut short
    /// after 1, 2, ... 12 ms while a producer puts an item every 3 ms. Whatever the cut,
    /// every item is got exactly once, and a single consumer gets them in order.
    async fn queue_get_cut_by_timeouts_loses_no_item_13b() {
        for cut in 1..=12u64 {
            let queue = Queue::new(2);
            let producer = {
                let queue = queue.clone();
                tokio::spawn(async move {
                    for item in 0..20u32 {
                        queue.put(item).await.unwrap();
                        tokio::time::sleep(ms(3)).await;
                    }
                    queue.shutdown(false);
                })
            };
            let consumers: Vec<_> = (0..2u64)
                .map(|c| {
                    let queue = queue.clone();
                    tokio::spawn(async move {
                        let mut got = Vec::new();
                        loop {
                            match aio::timeout(ms(cut + c), queue.get()).await {
                                Ok(Ok(item)) => got.push(item),
                                Ok(Err(GetError::ShutDown)) => break got,
                                Ok(Err(e)) => panic!("{e}"),
                                Err(_) => {}
                            }
                        }
                    })
                })
                .collect();
            producer.await.unwrap();
            let mut got = Vec::new();
            for consumer in consumers {
                let mine = consumer.await.unwrap();
                assert!(mine.windows(2).all(|w| w[0] < w[1]), "cut {cut}: {mine:?}");
                got.extend(mine);
            }
            got.sort_unstable();
            assert_eq!(got, (0..20).collect::<Vec<_>>(), "cut {cut}");
        }
    }
}

spec! {
    /// The same sweep on the put side: puts are cut short by timeouts on a full queue. An
    /// item whose put returned is got exactly once; a cut put's item never.
    async fn queue_put_cut_by_timeouts_puts_exactly_what_returned_13b() {
        for cut in 1..=12u64 {
            let queue = Queue::new(1);
            let producer = {
                let queue = queue.clone();
                tokio::spawn(async move {
                    let mut accepted = Vec::new();
                    for item in 0..20u32 {
                        if let Ok(result) = aio::timeout(ms(cut), queue.put(item)).await {
                            result.unwrap();
                            accepted.push(item);
                        }
                    }
                    accepted
                })
            };
            let consumer = {
                let queue = queue.clone();
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    while let Ok(item) = queue.get().await {
                        got.push(item);
                        tokio::time::sleep(ms(4)).await;
                    }
                    got
                })
            };
            let accepted = producer.await.unwrap();
            queue.shutdown(false);
            let got = consumer.await.unwrap();
            assert!(got.windows(2).all(|w| w[0] < w[1]), "cut {cut}: {got:?}");
            // Exactly the items whose put returned, each once: a cut put put nothing.
            assert_eq!(got, accepted, "cut {cut}");
        }
    }
}

/// How many items the stress test moves: about a second per runtime in a debug build on
/// two cores.
const STRESS_ITEMS: u32 = 1_000_000;

async fn stress(items: u32) {
    const SIDES: u32 = 4;
    let queue = Queue::new(16);
    let producers: Vec<_> = (0..SIDES)
        .map(|p| {
            let queue = queue.clone();
            tokio::spawn(async move {
                for item in (p..items).step_by(SIDES as usize) {
                    queue.put(item).await.unwrap();
                }
            })
        })
        .collect();
    let consumers: Vec<_> = (0..SIDES)
        .map(|c| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut rng = XorShift(0x9e37_79b9_7f4a_7c15 ^ u64::from(c + 1));
                let mut got = Vec::new();
                let mut cancelled = 0u32;
                loop {
                    // Each get is cancelled at random: after one or two polls, by a
                    // select against a yield, or by a short timeout; or it runs to the end.
                    let outcome = match rng.next() % 5 {
                        0 => Some(queue.get().await),
                        1 => cut_after(1, queue.get()).await,
                        2 => cut_after(2, queue.get()).await,
                        3 => tokio::select! {
                            got = queue.get() => Some(got),
                            () = tokio::task::yield_now() => None,
                        },
                        _ => aio::timeout(Duration::from_micros(rng.next() % 300), queue.get())
                            .await
                            .ok(),
                    };
                    match outcome {
                        Some(Ok(item)) => got.push(item),
                        Some(Err(_)) => break (got, cancelled),
                        None => cancelled += 1,
                    }
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
    queue.shutdown(false);
    let mut got = Vec::with_capacity(items as usize);
    let mut cancelled = 0;
    for consumer in consumers {
        let (mine, cut) = consumer.await.unwrap();
        got.extend(mine);
        cancelled += cut;
    }
    assert!(cancelled > 0, "no get was cancelled");
    assert_eq!(got.len(), items as usize, "items lost or duplicated");
    got.sort_unstable();
    assert!(got.iter().copied().eq(0..items), "items lost or duplicated");
}

spec! {
    /// 4 producers and 4 consumers move distinct items through a `Queue(16)` while the
    /// consumers' gets are cancelled at random: each item is got exactly once.
    async fn queue_stress_randomly_cancelled_consumers_get_every_item_once_13b() {
        stress(STRESS_ITEMS).await;
    }
}

/// A FIFO queue keeps its items in a lock-free ring of at most 1,024 slots (256 when
/// unbounded, fewer for large items); those that come while it is full wait behind it. They
/// still come out in the order they were put, and the queue is full at its `maxsize`, not
/// at the ring's size.
#[test]
fn queue_keeps_fifo_order_past_its_ring_unbounded_bounded_or_with_large_items() {
    fn check<T: Clone + PartialEq + std::fmt::Debug + Send + 'static>(
        queue: &Queue<T>,
        make: impl Fn(u32) -> T,
    ) {
        let mut next_out = 0;
        for item in 0..3_000 {
            queue.put_nowait(make(item)).unwrap();
            if item % 3 == 0 {
                assert_eq!(queue.get_nowait(), Ok(make(next_out)));
                next_out += 1;
            }
        }
        assert_eq!(queue.qsize(), (3_000 - next_out) as usize);
        let rest: Vec<T> = (next_out..3_000).map(&make).collect();
        assert_eq!(drain(queue), rest);
        assert!(queue.empty());
    }
    check(&Queue::new(0), |item| item);
    check(&Queue::new(2_500), |item| item);
    // 4 KiB items: a ring of 15 slots.
    check(&Queue::new(0), |item| [item as u8; 4096]);

    let bounded = Queue::new(2_000);
    for item in 0..2_000 {
        bounded.put_nowait(item).unwrap();
    }
    assert!(bounded.full());
    assert!(bounded.put_nowait(2_000).unwrap_err().is_full());
    assert_eq!(bounded.get_nowait(), Ok(0));
    bounded.put_nowait(2_000).unwrap();
    assert_eq!(drain(&bounded), (1..=2_000).collect::<Vec<_>>());
}

/// `qsize()` reads the ring's head and tail without the lock, yet reports a size the queue
/// had: while another thread puts and gets one item after another on a queue that never
/// holds fewer than one item or more than two, it never reports 0 or 3.
#[test]
fn queue_qsize_is_a_size_the_queue_had_while_puts_and_gets_go_on() {
    let queue = Queue::new(0);
    queue.put_nowait(0u64).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut item = 1;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                queue.put_nowait(item).unwrap();
                queue.get_nowait().unwrap();
                item += 1;
            }
        });
        // Counted, not asserted, here: the other thread must be stopped first.
        let wrong = (0..1_000_000)
            .filter(|_| !(1..=2).contains(&queue.qsize()) || queue.empty())
            .count();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(wrong, 0, "qsize() showed sizes the queue never had");
    });
}

/// The queues can be held across `catch_unwind`, as they could before the ring.
#[test]
fn queue_types_are_unwind_safe() {
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>() {}
    unwind_safe::<Queue<String>>();
    unwind_safe::<LifoQueue<String>>();
    unwind_safe::<PriorityQueue<String>>();
}

/// Runs `producers` tasks that put `per_producer` items each, tagged with the producer, and
/// as many consumers that get them and mark each done; checks that each item is got once,
/// that each consumer sees each producer's items in order, and that `join` returns once
/// every item is done.
async fn producers_and_consumers(queue: Queue<u64>, producers: u64, per_producer: u64) {
    let putters: Vec<_> = (0..producers)
        .map(|p| {
            let queue = queue.clone();
            tokio::spawn(async move {
                for seq in 0..per_producer {
                    queue.put(p << 32 | seq).await.unwrap();
                }
            })
        })
        .collect();
    let getters: Vec<_> = (0..producers)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Ok(item) = queue.get().await {
                    got.push(item);
                    queue.task_done().unwrap();
                }
                got
            })
        })
        .collect();
    for putter in putters {
        putter.await.unwrap();
    }
    // Every item put is marked done once it is got: `join` returns once all are.
    queue.join().await;
    assert!(queue.empty());
    assert_eq!(queue.task_done(), Err(TaskDoneError));
    queue.shutdown(false);
    let mut all = Vec::new();
    for getter in getters {
        let got = getter.await.unwrap();
        // FIFO: each consumer sees each producer's items in the order they were put.
        for p in 0..producers {
            let seqs: Vec<u64> = got
                .iter()
                .filter(|&&i| i >> 32 == p)
                .map(|&i| i & 0xffff_ffff)
                .collect();
            assert!(
                seqs.windows(2).all(|w| w[0] < w[1]),
                "producer {p} out of order"
            );
        }
        all.extend(got);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (0..producers)
        .flat_map(|p| (0..per_producer).map(move |seq| p << 32 | seq))
        .collect();
    assert_eq!(all.len(), expected.len(), "items lost or duplicated");
    assert!(all == expected, "items lost or duplicated");
}

/// 4 producers and 4 consumers on two workers through a queue that stays within its ring,
/// one bounded past it and one unbounded: each item is got once, each consumer sees each
/// producer's items in order, and the count of unfinished tasks comes back to 0 exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_many_producers_and_consumers_through_the_ring_keep_order_and_count() {
    for maxsize in [128, 3_000, 0] {
        producers_and_consumers(Queue::new(maxsize), 4, 50_000).await;
    }
}

/// A waker whose last drop uses the queue, as a waker that logs or counts might.
struct QueueTouchingWaker(Queue<u8>);

impl std::task::Wake for QueueTouchingWaker {
    fn wake(self: std::sync::Arc<Self>) {}
}

impl Drop for QueueTouchingWaker {
    fn drop(&mut self) {
        let _ = self.0.qsize();
    }
}

#[test]
fn queue_drops_a_replaced_or_removed_waker_outside_its_lock_a8() {
    let queue = Queue::<u8>::new(0);
    let noop = futures::task::noop_waker();
    // A get polled by one waker, then by another: the first is let go of.
    let mut get = Box::pin(queue.get());
    let first = std::task::Waker::from(std::sync::Arc::new(QueueTouchingWaker(queue.clone())));
    assert!(
        get.as_mut()
            .poll(&mut std::task::Context::from_waker(&first))
            .is_pending()
    );
    drop(first);
    assert!(
        get.as_mut()
            .poll(&mut std::task::Context::from_waker(&noop))
            .is_pending()
    );
    // A get dropped while its waker is the last one.
    let mut get = Box::pin(queue.get());
    let only = std::task::Waker::from(std::sync::Arc::new(QueueTouchingWaker(queue.clone())));
    assert!(
        get.as_mut()
            .poll(&mut std::task::Context::from_waker(&only))
            .is_pending()
    );
    drop(only);
    drop(get);
    // Neither deadlocked on the queue's lock.
    assert_eq!(queue.qsize(), 0);
}

/// The blocking forms serve code off the runtime's workers: a producer on a plain thread
/// and a consumer under `to_thread` (a thread of the runtime's blocking pool) move every
/// item in order through a queue that fills up, and the async side sees the same queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_blocking_forms_serve_plain_threads_and_to_thread() {
    let queue = Queue::new(4);
    let producer = std::thread::spawn({
        let queue = queue.clone();
        move || {
            for item in 0..100 {
                queue.blocking_put(item).unwrap();
            }
            queue.shutdown(false);
        }
    });
    let consumer = aio::to_thread({
        let queue = queue.clone();
        move || {
            let mut got = Vec::new();
            while let Ok(item) = queue.blocking_get() {
                got.push(item);
            }
            got
        }
    });
    let got = consumer.await.unwrap();
    producer.join().unwrap();
    assert_eq!(got, (0..100).collect::<Vec<_>>());
    assert_eq!(queue.get().await, Err(GetError::ShutDown));
}

/// A blocking form called inside a task would stall every task of its worker: it panics.
#[tokio::test]
#[should_panic(expected = "runtime")]
async fn queue_blocking_get_inside_a_task_panics() {
    let queue = Queue::<u8>::new(1);
    let _ = queue.blocking_get();
}
