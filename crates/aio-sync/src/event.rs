//! [`Event`]: asyncio's `Event`, with no lost wake-up.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};

use tokio::task::coop;

use crate::handoff::{WAITERS, WaitQueue};
use crate::model::{AtomicUsize, const_unless_loom};
use crate::wait_list::{Key, Wait};

/// A flag that tasks can wait for: asyncio's `Event`.
///
/// [`set`](Self::set) raises the flag and wakes every task waiting in
/// [`wait`](Self::wait); while it is raised, `wait` returns at once.
/// [`clear`](Self::clear) lowers it again, so later calls to `wait` block.
///
/// A waiter woken by `set` returns even if `clear` follows before it runs, as in asyncio:
/// the wake-up belongs to the waiter, not to the flag. And no wake-up is lost to a race:
/// `wait` registers itself before it looks at the flag, so a `set` cannot slip between the
/// two.
///
/// # Fairness
///
/// `set` releases every waiter at once; none is favoured, and a task that calls `wait`
/// after the `set` may return before the waiters it woke have run. Waiting takes part in
/// Tokio's cooperative budget, so a loop over the `wait` of a set event still yields to
/// the runtime now and then.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use aio_sync::Event;
///
/// let ready = Arc::new(Event::new());
/// let waiter = tokio::spawn({
///     let ready = Arc::clone(&ready);
///     async move {
///         ready.wait().await;
///         "ready"
///     }
/// });
/// ready.set();
/// assert_eq!(waiter.await.unwrap(), "ready");
/// # }
/// ```
pub struct Event {
    /// [`SET`] while the flag is raised, [`WAITERS`] while tasks wait in `queue`. The
    /// `WAITERS` bit changes only with the queue locked, and while it is set, `set` raises
    /// the flag with the queue locked too: a waiter that looks at the flag under the lock
    /// and then joins the queue cannot miss the `set` that follows.
    state: AtomicUsize,
    queue: WaitQueue<()>,
}

/// Set in an [`Event`]'s word while its flag is raised.
const SET: usize = 2;

impl Event {
    const_unless_loom! {
        /// An event that is not set.
        ///
        /// `const`, so an event can be a `static`.
        ///
        /// # Examples
        ///
        /// ```
        /// use aio_sync::Event;
        ///
        /// static SHUTDOWN: Event = Event::new();
        /// assert!(!SHUTDOWN.is_set());
        /// ```
        pub fn new() -> Event {
            Event {
                state: AtomicUsize::new(0),
                queue: WaitQueue::new(),
            }
        }
    }

    /// Sets the flag and wakes every task waiting for it. Setting a set event does nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::Event;
    ///
    /// let event = Event::new();
    /// event.set();
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn set(&self) {
        let mut state = self.state.load(Ordering::Acquire);
        while state & (SET | WAITERS) == 0 {
            // Nobody waits: one compare-and-swap.
            match self.state.compare_exchange_weak(
                state,
                state | SET,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
        if state & SET != 0 {
            return;
        }
        // Tasks wait: raise the flag and wake them all, with the queue locked. The first
        // waker is kept apart, so that waking one waiter allocates nothing.
        let (mut first, mut rest) = (None, Vec::new());
        {
            let mut list = self.queue.lock();
            if self.state.fetch_or(SET, Ordering::AcqRel) & SET == 0 {
                first = list.notify_one(()).ok();
                list.notify(usize::MAX, || (), &mut rest);
                self.state.fetch_and(!WAITERS, Ordering::AcqRel);
            }
        }
        first
            .into_iter()
            .chain(rest)
            .for_each(std::task::Waker::wake);
    }

    /// Lowers the flag: later calls to [`wait`](Self::wait) block until the next
    /// [`set`](Self::set). Waiters already woken by a `set` still return.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::Event;
    ///
    /// let event = Event::new();
    /// event.set();
    /// event.clear();
    /// assert!(!event.is_set());
    /// ```
    pub fn clear(&self) {
        // A load first: clearing a clear event writes nothing, so waiters' cache lines stay.
        if self.state.load(Ordering::Relaxed) & SET != 0 {
            self.state.fetch_and(!SET, Ordering::AcqRel);
        }
    }

    /// Whether the flag is set.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::Event;
    ///
    /// let event = Event::default();
    /// assert!(!event.is_set());
    /// event.set();
    /// assert!(event.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.state.load(Ordering::Acquire) & SET != 0
    }

    /// How many tasks wait in [`wait`](Self::wait); a waiter that is cancelled, or that a
    /// [`set`](Self::set) woke, stops counting at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::Event;
    ///
    /// let event = Event::new();
    /// let mut waiting = tokio_test::task::spawn(event.wait());
    /// assert!(waiting.poll().is_pending());
    /// assert_eq!(event.n_waiting(), 1);
    /// event.set();
    /// assert!(waiting.poll().is_ready());
    /// assert_eq!(event.n_waiting(), 0);
    /// # }
    /// ```
    pub fn n_waiting(&self) -> usize {
        self.queue.len()
    }

    /// Waits until the flag is set; returns at once if it is set now.
    ///
    /// A waiter woken by [`set`](Self::set) returns even if [`clear`](Self::clear) runs
    /// before it does.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. Waiting consumes nothing, so dropping the future loses nothing, for
    /// this task or any other: the other waiters are woken by the same `set`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::Event;
    ///
    /// let event = Event::new();
    /// event.set();
    /// event.wait().await; // Returns at once.
    /// # }
    /// ```
    pub fn wait(&self) -> EventWait<'_> {
        EventWait {
            event: self,
            waiting: None,
            done: false,
        }
    }

    /// Like [`wait`](Self::wait), blocking the thread: for code on a plain thread, or
    /// running under `to_thread` or a thread pool.
    ///
    /// # Panics
    ///
    /// If called inside a Tokio task, where blocking would stall every task of its worker:
    /// use the `async` form there. (Inside another executor's task it cannot tell, and
    /// blocks.)
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aio_sync::Event;
    ///
    /// let ready = Arc::new(Event::new());
    /// let worker = std::thread::spawn({
    ///     let ready = Arc::clone(&ready);
    ///     move || ready.blocking_wait()
    /// });
    /// ready.set();
    /// worker.join().unwrap();
    /// ```
    #[track_caller]
    pub fn blocking_wait(&self) {
        crate::blocking::block_on(self.wait());
    }
}

/// Future returned by [`Event::wait`]. The flag is looked at first, and a waiter joins the
/// queue only if it is lowered.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct EventWait<'a> {
    event: &'a Event,
    waiting: Option<Key>,
    done: bool,
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Even an always-ready wait charges the coop budget, as Tokio's own primitives do.
        assert!(!self.done, "an event wait was polled after it completed");
        let coop = ready!(coop::poll_proceed(cx));
        let event = self.event;
        let ready = match self.waiting {
            None => {
                event.is_set() || {
                    let mut list = event.queue.lock();
                    let mut state = event.state.load(Ordering::Acquire);
                    loop {
                        if state & SET != 0 {
                            break true;
                        }
                        if state & WAITERS != 0 {
                            self.waiting = Some(list.push(cx.waker()));
                            break false;
                        }
                        match event.state.compare_exchange_weak(
                            state,
                            state | WAITERS,
                            Ordering::AcqRel,
                            Ordering::Acquire,
                        ) {
                            Ok(_) => state |= WAITERS,
                            Err(actual) => state = actual,
                        }
                    }
                }
            }
            Some(key) => {
                let mut stale = Vec::new();
                let polled = event.queue.lock().poll(key, cx.waker(), &mut stale);
                drop(stale);
                polled != Wait::Waiting
            }
        };
        if ready {
            self.waiting = None;
            self.done = true;
            coop.made_progress();
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

impl fmt::Debug for EventWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventWait")
            .field("waiting", &self.waiting.is_some())
            .finish()
    }
}

impl Drop for EventWait<'_> {
    fn drop(&mut self) {
        let Some(key) = self.waiting else {
            return;
        };
        // A wake-up it was handed is its own: nothing to pass on.
        let mut stale = Vec::new();
        let mut list = self.event.queue.lock();
        list.remove(key, &mut stale);
        if list.len() == 0 {
            self.event.state.fetch_and(!WAITERS, Ordering::AcqRel);
        }
        drop(list);
        drop(stale);
    }
}

impl Default for Event {
    fn default() -> Self {
        Event::new()
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.is_set() { "set" } else { "unset" };
        f.debug_struct("Event")
            .field("state", &format_args!("{state}"))
            .field("waiters", &self.n_waiting())
            .finish()
    }
}
