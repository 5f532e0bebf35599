//! [`CapacityLimiter`]: how many threads offloaded work may occupy at once.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use tokio::sync::Semaphore;

use crate::CancelToken;
use crate::futures::ToThread;

/// A cap on how many threads run offloaded work at once: Trio's `CapacityLimiter`, the
/// `max_workers` of asyncio's default executor.
///
/// [`to_thread`](crate::to_thread) takes a token from the
/// [default limiter](Self::default_limiter) before its function starts and gives it back
/// when the function returns, so at most [`total_tokens`](Self::total_tokens) functions
/// run at once however many tasks call it. Tokio's blocking pool is elastic (up to 512
/// threads by default); the limiter keeps a burst of blocking calls from turning into
/// hundreds of threads. A token stays taken while its function runs, even if the caller
/// stopped waiting for it: the bound counts threads, not callers.
///
/// A limiter is a cheap handle: clones share the tokens, so one limiter can guard every
/// call into the same scarce resource (a blocking database driver, a device) from any
/// number of call sites, with [`to_thread`](Self::to_thread) and
/// [`to_thread_cancellable`](Self::to_thread_cancellable).
///
/// # Fairness
///
/// FIFO: tokens go to callers in the order they started waiting.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_blocking::CapacityLimiter;
///
/// let db = CapacityLimiter::new(2); // the driver allows two connections
/// let rows = db.to_thread(|| 3 * 7).await.unwrap();
/// assert_eq!(rows, 21);
/// assert_eq!(db.borrowed_tokens(), 0);
/// # }
/// ```
#[derive(Clone)]
pub struct CapacityLimiter {
    inner: Arc<Inner>,
}

struct Inner {
    semaphore: Semaphore,
    total: AtomicUsize,
    /// Tokens to swallow as they come back, after a shrink found them borrowed.
    debt: AtomicUsize,
    /// Serialises resizes.
    resize: Mutex<()>,
}

/// A borrowed token, given back on drop.
pub(crate) struct Token {
    inner: Arc<Inner>,
}

impl Drop for Token {
    fn drop(&mut self) {
        let paid = self
            .inner
            .debt
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1))
            .is_ok();
        if !paid {
            self.inner.semaphore.add_permits(1);
        }
    }
}

impl CapacityLimiter {
    /// The largest number of tokens a limiter can hold.
    pub const MAX_TOKENS: usize = Semaphore::MAX_PERMITS;

    /// A limiter of `total_tokens` tokens.
    ///
    /// # Panics
    ///
    /// If `total_tokens` is 0 (nothing could ever run) or above
    /// [`MAX_TOKENS`](Self::MAX_TOKENS).
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_blocking::CapacityLimiter;
    ///
    /// let limiter = CapacityLimiter::new(4);
    /// assert_eq!(limiter.total_tokens(), 4);
    /// assert_eq!(limiter.available_tokens(), 4);
    /// ```
    #[track_caller]
    pub fn new(total_tokens: usize) -> Self {
        check_tokens(total_tokens);
        CapacityLimiter {
            inner: Arc::new(Inner {
                semaphore: Semaphore::new(total_tokens),
                total: AtomicUsize::new(total_tokens),
                debt: AtomicUsize::new(0),
                resize: Mutex::new(()),
            }),
        }
    }

    /// The process-wide limiter that [`to_thread`](crate::to_thread) and
    /// [`to_thread_cancellable`](crate::to_thread_cancellable) use.
    ///
    /// It starts with [`default_tokens`](Self::default_tokens) tokens, the size of
    /// asyncio's default executor; resize it with
    /// [`set_total_tokens`](Self::set_total_tokens). It is one limiter for the whole
    /// process, shared by every runtime in it.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_blocking::CapacityLimiter;
    ///
    /// let limiter = CapacityLimiter::default_limiter();
    /// assert!(limiter.total_tokens() >= 1);
    /// ```
    pub fn default_limiter() -> &'static CapacityLimiter {
        static DEFAULT: OnceLock<CapacityLimiter> = OnceLock::new();
        DEFAULT.get_or_init(|| CapacityLimiter::new(Self::default_tokens()))
    }

    /// `min(32, cpus + 4)`, with the CPUs this process may use: asyncio's default
    /// `max_workers` (enough threads for blocking I/O, not so many that a burst of calls
    /// floods the machine).
    ///
    /// # Examples
    ///
    /// ```
    /// let n = aio_blocking::CapacityLimiter::default_tokens();
    /// assert!((5..=32).contains(&n));
    /// ```
    pub fn default_tokens() -> usize {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        (cpus + 4).min(32)
    }

    /// How many tokens the limiter holds in all.
    pub fn total_tokens(&self) -> usize {
        self.inner.total.load(Ordering::Acquire)
    }

    /// How many tokens are taken now, by functions running or about to run.
    pub fn borrowed_tokens(&self) -> usize {
        let available = self.inner.semaphore.available_permits();
        let debt = self.inner.debt.load(Ordering::Acquire);
        (self.total_tokens() + debt).saturating_sub(available)
    }

    /// How many tokens are free now.
    pub fn available_tokens(&self) -> usize {
        let available = self.inner.semaphore.available_permits();
        available.saturating_sub(self.inner.debt.load(Ordering::Acquire))
    }

    /// Changes the number of tokens, for every clone of the limiter.
    ///
    /// Growing lets waiting callers start at once. Shrinking never stops a running
    /// function: tokens that are borrowed are simply not given back until the total is
    /// down to the new size, so for a while more functions may be running than the new
    /// total.
    ///
    /// # Panics
    ///
    /// If `total_tokens` is 0 or above [`MAX_TOKENS`](Self::MAX_TOKENS).
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_blocking::CapacityLimiter;
    ///
    /// let limiter = CapacityLimiter::new(4);
    /// limiter.set_total_tokens(1);
    /// assert_eq!(limiter.available_tokens(), 1);
    /// limiter.set_total_tokens(8);
    /// assert_eq!(limiter.available_tokens(), 8);
    /// ```
    #[track_caller]
    pub fn set_total_tokens(&self, total_tokens: usize) {
        check_tokens(total_tokens);
        let inner = &*self.inner;
        let _resizing = inner.resize.lock().unwrap_or_else(PoisonError::into_inner);
        let old = inner.total.swap(total_tokens, Ordering::AcqRel);
        if total_tokens > old {
            let mut grow = total_tokens - old;
            // Cancel debt first: those tokens are already out and will come back.
            let _ = inner
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| {
                    let cancelled = d.min(total_tokens - old);
                    grow = total_tokens - old - cancelled;
                    Some(d - cancelled)
                });
            inner.semaphore.add_permits(grow);
        } else {
            let shrink = old - total_tokens;
            let forgotten = inner.semaphore.forget_permits(shrink);
            inner.debt.fetch_add(shrink - forgotten, Ordering::AcqRel);
        }
    }

    /// [`to_thread`](crate::to_thread) under this limiter instead of the default one.
    ///
    /// # Errors
    ///
    /// As [`to_thread`](crate::to_thread).
    ///
    /// # Panics
    ///
    /// When awaited outside a Tokio runtime.
    ///
    /// # Cancel safety
    ///
    /// As [`to_thread`](crate::to_thread): dropped before the function starts, the function
    /// never runs; dropped after, the function runs to the end (holding its token) and
    /// its result is discarded.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_blocking::CapacityLimiter;
    ///
    /// let limiter = CapacityLimiter::new(1);
    /// let len = limiter.to_thread(|| std::env::args().count()).await.unwrap();
    /// assert!(len >= 1);
    /// # }
    /// ```
    pub fn to_thread<F, T>(&self, f: F) -> ToThread<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        ToThread::new(self.clone(), false, move |_| f())
    }

    /// [`to_thread_cancellable`](crate::to_thread_cancellable) under this limiter instead of
    /// the default one.
    ///
    /// # Errors
    ///
    /// As [`to_thread_cancellable`](crate::to_thread_cancellable).
    ///
    /// # Panics
    ///
    /// When awaited outside a Tokio runtime.
    ///
    /// # Cancel safety
    ///
    /// As [`to_thread_cancellable`](crate::to_thread_cancellable): dropping the future
    /// cancels the token, the function never starts if it had not, and its result is
    /// discarded.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_blocking::CapacityLimiter;
    ///
    /// let limiter = CapacityLimiter::new(1);
    /// let steps = limiter
    ///     .to_thread_cancellable(|token| (0..100).take_while(|_| !token.is_cancelled()).count())
    ///     .await
    ///     .unwrap();
    /// assert_eq!(steps, 100);
    /// # }
    /// ```
    pub fn to_thread_cancellable<F, T>(&self, f: F) -> ToThread<T>
    where
        F: FnOnce(CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        ToThread::new(self.clone(), true, f)
    }

    /// Waits for a token, FIFO.
    pub(crate) async fn acquire(&self) -> Token {
        // The semaphore is never closed.
        let permit = self
            .inner
            .semaphore
            .acquire()
            .await
            .unwrap_or_else(|_| unreachable!("the limiter's semaphore is never closed"));
        permit.forget();
        Token {
            inner: Arc::clone(&self.inner),
        }
    }
}

#[track_caller]
fn check_tokens(total_tokens: usize) {
    assert!(
        total_tokens >= 1,
        "a CapacityLimiter needs at least one token"
    );
    assert!(
        total_tokens <= CapacityLimiter::MAX_TOKENS,
        "a CapacityLimiter holds at most MAX_TOKENS tokens"
    );
}

impl fmt::Debug for CapacityLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CapacityLimiter")
            .field("total_tokens", &self.total_tokens())
            .field("borrowed_tokens", &self.borrowed_tokens())
            .finish()
    }
}
