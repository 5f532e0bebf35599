//! [`CancelToken`]: what a thread sees of its caller's cancellation.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The thread side of a cancellation: handed to the closure of
/// [`to_thread_cancellable`](crate::to_thread_cancellable), and cancelled when the awaiting
/// aio scope is cancelled or the awaiting future is dropped.
///
/// A thread cannot be interrupted, so a long computation asks: check
/// [`is_cancelled`](Self::is_cancelled) between steps, or sleep with
/// [`wait_timeout`](Self::wait_timeout), which wakes as soon as the token is cancelled.
/// Cancellation is level-triggered, like aio's scopes: once cancelled, a token stays
/// cancelled. Clones share the state, so the token can be moved into helper threads.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use aio_blocking::CancelToken;
///
/// let token = CancelToken::new();
/// assert!(!token.wait_timeout(Duration::from_millis(1)));
/// token.cancel();
/// assert!(token.is_cancelled());
/// assert!(token.wait_timeout(Duration::from_secs(3600))); // returns at once
/// ```
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    cancelled: AtomicBool,
    lock: Mutex<()>,
    wake: Condvar,
}

impl CancelToken {
    /// A token that is not cancelled. [`to_thread_cancellable`](crate::to_thread_cancellable)
    /// makes its own; this is for tests and for code that drives a blocking function
    /// itself.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the token is cancelled. Cheap: one atomic load.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// Cancels the token and wakes every thread in [`wait_timeout`](Self::wait_timeout).
    /// Idempotent.
    pub fn cancel(&self) {
        if self.inner.cancelled.swap(true, Ordering::AcqRel) {
            return;
        }
        // Taking the lock orders this wake-up after a waiter's check of the flag.
        drop(
            self.inner
                .lock
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        self.inner.wake.notify_all();
    }

    /// Blocks the calling thread until the token is cancelled or `timeout` passes, and
    /// returns whether it is cancelled: an interruptible `std::thread::sleep`.
    ///
    /// Never call it from async code: it blocks the thread.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        let deadline = Instant::now().checked_add(timeout);
        let mut guard = self
            .inner
            .lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if self.is_cancelled() {
                return true;
            }
            let left = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left,
                    _ => return false,
                },
                // A timeout too long to represent: wait in day-long slices.
                None => Duration::from_secs(86_400),
            };
            guard = self
                .inner
                .wake
                .wait_timeout(guard, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}
