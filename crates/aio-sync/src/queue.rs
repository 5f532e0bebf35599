//! [`Queue`], [`LifoQueue`] and [`PriorityQueue`]: asyncio's queues, FIFO-fair and cancel
//! safe.
//!
//! The three types share one core (`shared`) and differ only in the order of their
//! buffer; a macro writes their common methods once.

mod error;
mod futures;
mod ring;
mod shared;

use std::fmt;
use std::sync::Arc;

pub use self::error::{GetError, PutError, TaskDoneError};
pub use self::futures::{QueueGet, QueueJoin, QueuePut, QueueStream};
use self::shared::{Buffer, GetStage, JoinStage, PutStage, Shared};

/// Writes a queue type, and the methods every queue has.
macro_rules! queue {
    (
        $(#[$attr:meta])*
        $name:ident, $order:literal, $example:literal
    ) => {
        $(#[$attr])*
        pub struct $name<T> {
            shared: Arc<Shared<T>>,
        }

        impl<T> Clone for $name<T> {
            /// Another handle to the same queue.
            fn clone(&self) -> Self {
                $name {
                    shared: Arc::clone(&self.shared),
                }
            }
        }

        impl<T> fmt::Debug for $name<T> {
            /// Like asyncio's `repr`: the bound, the size, how many getters and putters
            /// wait, the unfinished tasks, and whether the queue is shut down.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let snapshot = self.shared.snapshot();
                f.debug_struct(stringify!($name))
                    .field("maxsize", &snapshot.maxsize)
                    .field("qsize", &snapshot.qsize)
                    .field("getters", &snapshot.getters)
                    .field("putters", &snapshot.putters)
                    .field("unfinished_tasks", &snapshot.unfinished)
                    .field("shut_down", &snapshot.shut_down)
                    .finish()
            }
        }

        impl<T> $name<T> {
            /// Puts an item into the queue, waiting for room while it is full.
            ///
            /// Puts that wait are served in FIFO order, and a put that finds others
            /// waiting waits behind them. When room frees, the oldest waiting item is
            /// taken into the queue at once: if a getter waits, an item is reserved for it.
            ///
            /// # Errors
            ///
            /// [`PutError::ShutDown`] with the item if the queue is, or becomes,
            /// [shut down](Self::shutdown) before it takes the item.
            ///
            /// # Cancel safety
            ///
            /// Cancel safe in asyncio's sense: a put that did not complete has put nothing.
            /// Dropping the future before it completes drops the item, which is never in
            /// the queue, and the put loses its place among the waiting puts; room that
            /// was kept for it goes to the next waiting put. So a put cut short by a
            /// timeout can be retried without putting the item twice. To keep the item
            /// itself, use [`put_nowait`](Self::put_nowait), which hands it back.
            ///
            /// # Examples
            ///
            /// ```
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() {
            #[doc = concat!("use aio_sync::", stringify!($name), ";")]
            ///
            #[doc = concat!("let queue = ", stringify!($name), "::new(1);")]
            /// queue.put("a").await.unwrap();
            /// assert!(queue.full());
            /// let producer = {
            ///     let queue = queue.clone();
            ///     tokio::spawn(async move { queue.put("b").await })
            /// };
            /// assert_eq!(queue.get().await, Ok("a"));
            /// producer.await.unwrap().unwrap();
            /// assert_eq!(queue.get().await, Ok("b"));
            /// # }
            /// ```
            pub fn put(&self, item: T) -> QueuePut<'_, T> {
                QueuePut {
                    shared: &self.shared,
                    stage: PutStage::Start(item),
                }
            }

            /// Puts an item into the queue without waiting.
            ///
            /// If a getter waits, an item is reserved for it at once (see [`get`](Self::get)).
            ///
            /// # Errors
            ///
            /// [`PutError::Full`] with the item if the queue is [full](Self::full), or
            /// other puts are waiting for room (they come first); [`PutError::ShutDown`]
            /// with the item if the queue is shut down.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use aio_sync::{", stringify!($name), ", PutError};")]
            ///
            #[doc = concat!("let queue = ", stringify!($name), "::new(1);")]
            /// queue.put_nowait(1).unwrap();
            /// let err = queue.put_nowait(2).unwrap_err();
            /// assert!(err.is_full());
            /// assert_eq!(err.into_inner(), 2);
            /// queue.shutdown(false);
            /// assert!(matches!(queue.put_nowait(3), Err(PutError::ShutDown(3))));
            /// ```
            pub fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
                self.shared.put_nowait(item)
            }

            #[doc = concat!("Removes and returns an item, ", $order, ", waiting while the queue is empty.")]
            ///
            /// Gets that wait are served in FIFO order: when an item is put, one item is
            /// reserved, under the queue's lock, for the get that has waited longest, so
            /// that no other get can take it first. The get takes its item when it runs:
            /// the next in the queue's order at that moment, as in asyncio, where a woken
            /// getter pops whatever is next when it runs. Once the queue is
            /// [shut down](Self::shutdown), gets still return the items left, then fail.
            ///
            /// # Errors
            ///
            /// [`GetError::ShutDown`] if the queue is shut down and holds no more items
            /// (after an immediate shutdown, at once).
            ///
            /// # Cancel safety
            ///
            /// Cancel safe: dropping the future never loses an item, since a get takes
            /// its item out of the queue only when it returns it. Dropped after an item
            /// was reserved for it, it passes the reservation to the next waiting get, or
            /// leaves the item to whoever gets next. The get loses its place among the
            /// waiting gets.
            ///
            /// # Examples
            ///
            /// ```
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() {
            #[doc = concat!("use aio_sync::", stringify!($name), ";")]
            ///
            #[doc = concat!("let queue = ", stringify!($name), "::new(0);")]
            /// let consumer = {
            ///     let queue = queue.clone();
            ///     tokio::spawn(async move { queue.get().await })
            /// };
            /// queue.put("item").await.unwrap();
            /// assert_eq!(consumer.await.unwrap(), Ok("item"));
            /// # }
            /// ```
            pub fn get(&self) -> QueueGet<'_, T> {
                QueueGet {
                    shared: &self.shared,
                    stage: GetStage::Start,
                }
            }

            #[doc = concat!("Removes and returns an item, ", $order, ", without waiting.")]
            ///
            /// Items reserved for waiting [`get`](Self::get)s are theirs: this takes only
            /// an item nobody reserved.
            ///
            /// # Errors
            ///
            /// [`GetError::Empty`] if the queue holds no item; [`GetError::ShutDown`] if,
            /// moreover, it is shut down.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use aio_sync::{", stringify!($name), ", GetError};")]
            ///
            #[doc = concat!("let queue = ", stringify!($name), "::new(0);")]
            #[doc = concat!("for item in [1, 3, 2] {\n    queue.put_nowait(item).unwrap();\n}\nassert_eq!(\n    std::iter::from_fn(|| queue.get_nowait().ok()).collect::<Vec<_>>(),\n    ", $example, "\n);")]
            /// assert_eq!(queue.get_nowait(), Err(GetError::Empty));
            /// ```
            pub fn get_nowait(&self) -> Result<T, GetError> {
                self.shared.get_nowait()
            }

            /// Like [`put`](Self::put), blocking the thread: for a producer on a plain
            /// thread, or running under `to_thread` or a thread pool. Tokio's
            /// `Sender::blocking_send`.
            ///
            /// # Errors
            ///
            /// As for [`put`](Self::put).
            ///
            /// # Panics
            ///
            /// If called inside a Tokio task, where blocking would stall every task of its
            /// worker: use [`put`](Self::put) there.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::new(1);")]
            /// std::thread::scope(|s| {
            ///     s.spawn(|| queue.blocking_put(1).unwrap());
            /// });
            /// assert_eq!(queue.blocking_get(), Ok(1));
            /// ```
            #[track_caller]
            pub fn blocking_put(&self, item: T) -> Result<(), PutError<T>> {
                crate::blocking::block_on(self.put(item))
            }

            /// Like [`get`](Self::get), blocking the thread: for a consumer on a plain
            /// thread, or running under `to_thread` or a thread pool.
            ///
            /// # Errors
            ///
            /// As for [`get`](Self::get).
            ///
            /// # Panics
            ///
            /// If called inside a Tokio task: use [`get`](Self::get) there.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::new(0);")]
            /// queue.put_nowait('a').unwrap();
            /// queue.shutdown(false);
            /// let got = std::thread::scope(|s| s.spawn(|| queue.blocking_get()).join().unwrap());
            /// assert_eq!(got, Ok('a'));
            /// assert!(queue.blocking_get().is_err()); // shut down and drained
            /// ```
            #[track_caller]
            pub fn blocking_get(&self) -> Result<T, GetError> {
                crate::blocking::block_on(self.get())
            }

            /// The number of items in the queue, including the ones reserved for waiting
            /// [`get`](Self::get)s that have not run yet, as in asyncio.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::new(0);")]
            /// queue.put_nowait('a').unwrap();
            /// assert_eq!(queue.qsize(), 1);
            /// ```
            pub fn qsize(&self) -> usize {
                self.shared.qsize()
            }

            /// Whether the queue holds no item. (While it holds only items reserved for
            /// waiting [`get`](Self::get)s, it is not empty, but
            /// [`get_nowait`](Self::get_nowait) fails.)
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::new(0);")]
            /// assert!(queue.empty());
            /// queue.put_nowait('a').unwrap();
            /// assert!(!queue.empty());
            /// ```
            pub fn empty(&self) -> bool {
                self.qsize() == 0
            }

            /// Whether the queue has no room: whether [`put_nowait`](Self::put_nowait)
            /// would fail with [`PutError::Full`]. Never true for an unbounded queue.
            ///
            /// Exact, as in asyncio: true when [`qsize`](Self::qsize) is
            /// [`maxsize`](Self::maxsize), and also while the room left is kept for
            /// waiting [`put`](Self::put)s that were woken and have not run yet.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::new(1);")]
            /// assert!(!queue.full());
            /// queue.put_nowait('a').unwrap();
            /// assert!(queue.full());
            /// ```
            pub fn full(&self) -> bool {
                self.shared.full()
            }

            /// The most items the queue holds; 0 for unbounded.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::<u8>::new(8);")]
            /// assert_eq!(queue.maxsize(), 8);
            /// ```
            pub fn maxsize(&self) -> usize {
                self.shared.maxsize()
            }

            /// How many [`get`](Self::get)s wait for an item (not counting those an item
            /// was already reserved for). Trio's `tasks_waiting_receive`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::<u8>::new(1);")]
            /// let mut get = tokio_test::task::spawn(queue.get());
            /// assert!(get.poll().is_pending());
            /// assert_eq!(queue.n_waiting_getters(), 1);
            /// drop(get);
            /// assert_eq!(queue.n_waiting_getters(), 0);
            /// ```
            pub fn n_waiting_getters(&self) -> usize {
                self.shared.snapshot().getters
            }

            /// How many [`put`](Self::put)s wait for room (not counting those room was
            /// already kept for). Trio's `tasks_waiting_send`.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::new(1);")]
            /// queue.put_nowait(1).unwrap();
            /// let mut put = tokio_test::task::spawn(queue.put(2));
            /// assert!(put.poll().is_pending());
            /// assert_eq!(queue.n_waiting_putters(), 1);
            /// assert_eq!(queue.get_nowait(), Ok(1)); // room is kept for the put
            /// assert_eq!(queue.n_waiting_putters(), 0);
            /// ```
            pub fn n_waiting_putters(&self) -> usize {
                self.shared.snapshot().putters
            }

            /// Marks one item as processed, for [`join`](Self::join).
            ///
            /// Each item put counts as an unfinished task; a consumer calls this once for
            /// each item it got, when it is done with it. `get` does not.
            ///
            /// # Errors
            ///
            /// [`TaskDoneError`] if there are no unfinished tasks: it was called more times
            /// than items were put.
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::new(0);")]
            /// queue.put_nowait(1).unwrap();
            /// queue.get_nowait().unwrap();
            /// assert!(queue.task_done().is_ok());
            /// assert!(queue.task_done().is_err());
            /// ```
            pub fn task_done(&self) -> Result<(), TaskDoneError> {
                self.shared.task_done()
            }

            /// Waits until every item put has been marked done with
            /// [`task_done`](Self::task_done).
            ///
            /// Returns at once if there are no unfinished tasks. All waiting joins are
            /// released together, when the count reaches 0.
            ///
            /// # Cancel safety
            ///
            /// Cancel safe: a join holds nothing another task could need.
            ///
            /// # Examples
            ///
            /// ```
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() {
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::new(0);")]
            /// for item in 0..3 {
            ///     queue.put_nowait(item).unwrap();
            /// }
            /// let worker = {
            ///     let queue = queue.clone();
            ///     tokio::spawn(async move {
            ///         while let Ok(_item) = queue.get().await {
            ///             queue.task_done().unwrap();
            ///         }
            ///     })
            /// };
            /// queue.join().await;
            /// assert!(queue.empty());
            /// queue.shutdown(false);
            /// worker.await.unwrap();
            /// # }
            /// ```
            pub fn join(&self) -> QueueJoin<'_, T> {
                QueueJoin {
                    shared: &self.shared,
                    stage: JoinStage::Start,
                }
            }

            /// Shuts the queue down, as asyncio 3.13's `shutdown(immediate)`.
            ///
            /// Puts fail from now on with [`PutError::ShutDown`], the item handed back;
            /// waiting puts fail at once. Gets return the items left, then fail with
            /// [`GetError::ShutDown`]. Waiting gets fail at once (they wait only while
            /// every item is reserved), unless items are reserved for gets that have not
            /// run yet: a reserved get may be dropped and pass its reservation on, so the
            /// others wait until the reserved items are taken. The count of unfinished
            /// tasks is kept: [`join`](Self::join) still waits for
            /// [`task_done`](Self::task_done).
            ///
            /// With `immediate`, every item left is dropped at once, reserved ones too
            /// (their gets fail), and the count of unfinished tasks falls by as many (not
            /// below 0), which may release `join`.
            ///
            /// Shutting down never fails, and again does nothing more (but a later
            /// `immediate` still empties the queue).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("use aio_sync::{", stringify!($name), ", GetError};")]
            ///
            #[doc = concat!("let queue = ", stringify!($name), "::new(0);")]
            /// queue.put_nowait(1).unwrap();
            /// queue.shutdown(false);
            /// assert!(queue.is_shut_down());
            /// assert!(queue.put_nowait(2).unwrap_err().is_shut_down());
            /// assert_eq!(queue.get_nowait(), Ok(1));
            /// assert_eq!(queue.get_nowait(), Err(GetError::ShutDown));
            /// ```
            pub fn shutdown(&self, immediate: bool) {
                self.shared.shutdown(immediate);
            }

            /// Whether the queue is [shut down](Self::shutdown).
            ///
            /// # Examples
            ///
            /// ```
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::<()>::new(0);")]
            /// assert!(!queue.is_shut_down());
            /// queue.shutdown(true);
            /// assert!(queue.is_shut_down());
            /// ```
            pub fn is_shut_down(&self) -> bool {
                self.shared.is_shut_down()
            }

            /// The queue's items as a [`Stream`](::futures::stream::Stream): each is a
            /// [`get`](Self::get), and the stream ends once the queue is shut down and
            /// holds no more items.
            ///
            /// # Cancel safety
            ///
            /// As [`get`](Self::get): dropping the stream loses no item.
            ///
            /// # Examples
            ///
            /// ```
            /// # #[tokio::main(flavor = "current_thread")]
            /// # async fn main() {
            /// use futures::StreamExt;
            ///
            #[doc = concat!("let queue = aio_sync::", stringify!($name), "::new(0);")]
            /// queue.put_nowait(1).unwrap();
            /// queue.shutdown(false);
            /// assert_eq!(queue.stream().collect::<Vec<_>>().await, [1]);
            /// # }
            /// ```
            pub fn stream(&self) -> QueueStream<T> {
                QueueStream {
                    shared: Arc::clone(&self.shared),
                    stage: GetStage::Start,
                    ended: false,
                }
            }
        }
    };
}

queue! {
    /// A first-in, first-out queue: asyncio's `Queue`, for many producers and consumers.
    ///
    /// Bounded by a `maxsize`, or unbounded. Cheap to clone: clones are handles to the same
    /// queue. Items can be counted as tasks and awaited with [`task_done`](Self::task_done)
    /// and [`join`](Self::join), and the queue can be [shut down](Self::shutdown).
    ///
    /// Fair: waiting gets are served in FIFO order, each reserved an item under the lock,
    /// and waiting puts too; neither [`get_nowait`](Self::get_nowait) nor
    /// [`put_nowait`](Self::put_nowait) jumps ahead of tasks that wait. Cancel safe: a
    /// dropped get never loses an item (see [`get`](Self::get)).
    ///
    /// Lock-free while nobody waits: the items sit in a ring of up to 1,024 slots (256 for
    /// an unbounded queue), and a put or get is one compare-and-swap on it. Only a put or get
    /// that has to wait, or that meets one that waits, takes the queue's lock.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::Queue;
    ///
    /// let queue = Queue::new(2);
    /// let consumer = {
    ///     let queue = queue.clone();
    ///     tokio::spawn(async move {
    ///         let mut got = Vec::new();
    ///         while let Ok(item) = queue.get().await {
    ///             got.push(item);
    ///         }
    ///         got
    ///     })
    /// };
    /// for item in 0..5 {
    ///     queue.put(item).await.unwrap();
    /// }
    /// queue.shutdown(false);
    /// assert_eq!(consumer.await.unwrap(), [0, 1, 2, 3, 4]);
    /// # }
    /// ```
    Queue, "oldest first", "[1, 3, 2]"
}

queue! {
    /// A last-in, first-out queue: asyncio's `LifoQueue`. The newest item is got first.
    ///
    /// As [`Queue`] in all but the order of items; waiting gets and puts are still served
    /// in FIFO order. A get takes the newest item there is when it runs, even if that item
    /// was put after the get was woken, as in asyncio.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::LifoQueue;
    ///
    /// let stack = LifoQueue::new(0);
    /// stack.put_nowait(1).unwrap();
    /// stack.put_nowait(2).unwrap();
    /// assert_eq!(stack.get_nowait(), Ok(2));
    /// assert_eq!(stack.get_nowait(), Ok(1));
    /// ```
    LifoQueue, "newest first", "[2, 3, 1]"
}

queue! {
    /// A priority queue: asyncio's `PriorityQueue`. The smallest item is got first, as
    /// with `heapq`; equal items come out in the order they were put.
    ///
    /// As [`Queue`] in all but the order of items; waiting gets and puts are still served
    /// in FIFO order. Put `(priority, data)` tuples to order data by priority.
    ///
    /// A get takes the smallest item there is when it runs, even if that item was put
    /// after the get was woken, as in asyncio: an urgent item put right after a routine
    /// one goes first.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::PriorityQueue;
    ///
    /// let queue = PriorityQueue::new(0);
    /// queue.put_nowait((2, "later")).unwrap();
    /// queue.put_nowait((1, "first")).unwrap();
    /// assert_eq!(queue.get_nowait(), Ok((1, "first")));
    /// ```
    PriorityQueue, "smallest first", "[1, 2, 3]"
}

impl<T> Queue<T> {
    /// A queue of at most `maxsize` items; 0 for unbounded.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = aio_sync::Queue::<String>::new(0);
    /// assert!(!queue.full());
    /// ```
    pub fn new(maxsize: usize) -> Self {
        Queue {
            shared: Arc::new(Shared::new(maxsize, Buffer::fifo())),
        }
    }
}

impl<T> LifoQueue<T> {
    /// A LIFO queue of at most `maxsize` items; 0 for unbounded.
    ///
    /// # Examples
    ///
    /// ```
    /// let stack = aio_sync::LifoQueue::<String>::new(4);
    /// assert_eq!(stack.maxsize(), 4);
    /// ```
    pub fn new(maxsize: usize) -> Self {
        LifoQueue {
            shared: Arc::new(Shared::new(maxsize, Buffer::lifo())),
        }
    }
}

impl<T: Ord> PriorityQueue<T> {
    /// A priority queue of at most `maxsize` items; 0 for unbounded.
    ///
    /// # Examples
    ///
    /// ```
    /// let queue = aio_sync::PriorityQueue::<(u8, String)>::new(0);
    /// assert!(queue.empty());
    /// ```
    pub fn new(maxsize: usize) -> Self {
        PriorityQueue {
            shared: Arc::new(Shared::new(maxsize, Buffer::priority())),
        }
    }
}
