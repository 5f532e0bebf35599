//! [`Event`]: asyncio's `Event`, with no lost wake-up.

use std::fmt;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tokio::task::coop;

use crate::waiters::Waiters;

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
    flag: AtomicBool,
    notify: Notify,
    waiters: Waiters,
}

impl Event {
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
    pub const fn new() -> Event {
        Event {
            flag: AtomicBool::new(false),
            notify: Notify::const_new(),
            waiters: Waiters::new(),
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
        if !self.flag.swap(true, Ordering::SeqCst) {
            // Every `wait` that saw the flag lowered created its `Notified` before looking,
            // so this wakes it, even if `clear` runs before it is polled again.
            self.notify.notify_waiters();
        }
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
        self.flag.store(false, Ordering::SeqCst);
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
        self.flag.load(Ordering::SeqCst)
    }

    /// How many tasks wait in [`wait`](Self::wait); a waiter that is cancelled, or that a
    /// [`set`](Self::set) woke, stops counting once it is dropped or returns.
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
        self.waiters.get()
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
    pub async fn wait(&self) {
        // Register first, look second: a `set` after this line wakes `notified`, and a
        // `set` before it is seen by the check. `notify_waiters` wakes every `Notified`
        // created before it, enabled or not; enabling also makes the order plain.
        let mut notified = pin!(self.notify.notified());
        notified.as_mut().enable();
        if self.is_set() {
            // An always-ready path: charge the coop budget as Tokio's own primitives do.
            coop::consume_budget().await;
            return;
        }
        let _waiting = self.waiters.enter();
        coop::cooperative(notified).await;
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
            .field("waiters", &self.waiters.get())
            .finish()
    }
}
