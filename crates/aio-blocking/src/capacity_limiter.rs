//! [`CapacityLimiter`]: how many threads offloaded work may occupy at once.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use tokio::sync::Semaphore;

use crate::CancelToken;
use crate::futures::ToThread;
use crate::runner::{self, Call, Idle, Inbox};

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

/// A limiter's shared state, as its tokens and runners hold it.
pub(crate) type Limiter = Arc<Inner>;

pub(crate) struct Inner {
    state: Mutex<State>,
}

struct State {
    total: usize,
    /// Tokens nobody holds.
    available: usize,
    /// Tokens to swallow as they come back, after a shrink found them borrowed.
    debt: usize,
    /// Calls waiting for a token, by their ids, which grow: oldest first.
    waiting: BTreeMap<u64, Call>,
    next_id: u64,
    /// Runners with nothing to do, most recently idle last.
    idle: Vec<Idle>,
}

/// A borrowed token. Given back on drop: straight to the oldest waiting call, which runs
/// next on the thread giving the token back if that thread is a runner of the call's
/// runtime (see [`runner`](crate::runner)), or else is handed to its runtime's blocking
/// pool by that thread, so that a queue of calls moves on without a round trip through the
/// calling tasks.
pub(crate) struct Token {
    /// `None` once the token has been handed on by [`give_back`].
    inner: Option<Arc<Inner>>,
}

impl Token {
    fn new(inner: &Arc<Inner>) -> Self {
        Token {
            inner: Some(Arc::clone(inner)),
        }
    }

    /// The limiter, without giving the token back.
    fn into_limiter(mut self) -> Arc<Inner> {
        self.inner.take().expect("a token holds its limiter")
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            give_back(inner);
        }
    }
}

/// Gives a token back: to the oldest waiting call, or to the limiter. A call whose runtime
/// refuses it hands the token straight back, and the next call gets it: a loop, not a
/// recursion, however many calls of a runtime that is gone are waiting.
fn give_back(mut inner: Arc<Inner>) {
    loop {
        let call = {
            let mut state = inner.lock();
            if state.debt > 0 {
                state.debt -= 1;
                return;
            }
            let Some((_, call)) = state.waiting.pop_first() else {
                state.available += 1;
                drop(state);
                runner::token_returned(&inner);
                return;
            };
            call
        };
        let Some((call, token)) = call.run_next_here(Token::new(&inner)) else {
            return;
        };
        match call.launch(token) {
            None => return,
            Some(token) => inner = token.into_limiter(),
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a few assignments: a panic cannot leave the state half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Lists an idle runner: a call that starts with a free token goes to it.
    pub(crate) fn wait_here(&self, idle: Idle) {
        self.lock().idle.push(idle);
    }

    /// Takes the idle runner whose inbox is `inbox` off the list, if no call took it.
    pub(crate) fn leave(&self, inbox: &Arc<Inbox>) {
        let mut state = self.lock();
        if let Some(i) = state.idle.iter().position(|idle| idle.is(inbox)) {
            state.idle.swap_remove(i);
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
                state: Mutex::new(State {
                    total: total_tokens,
                    available: total_tokens,
                    debt: 0,
                    waiting: BTreeMap::new(),
                    next_id: 0,
                    idle: Vec::new(),
                }),
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
        self.inner.lock().total
    }

    /// How many tokens are taken now, by functions running or about to run.
    pub fn borrowed_tokens(&self) -> usize {
        let state = self.inner.lock();
        state.total + state.debt - state.available
    }

    /// How many tokens are free now.
    pub fn available_tokens(&self) -> usize {
        self.inner.lock().available
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
        let mut started = Vec::new();
        {
            let mut state = self.inner.lock();
            let old = std::mem::replace(&mut state.total, total_tokens);
            if total_tokens > old {
                // Cancel debt first: those tokens are already out and will come back.
                let grow = total_tokens - old;
                let cancelled = state.debt.min(grow);
                state.debt -= cancelled;
                state.available += grow - cancelled;
                // New tokens go to the calls that wait, oldest first.
                while state.available > 0 {
                    let Some((_, call)) = state.waiting.pop_first() else {
                        break;
                    };
                    state.available -= 1;
                    started.push(call);
                }
            } else {
                let shrink = old - total_tokens;
                let taken = state.available.min(shrink);
                state.available -= taken;
                state.debt += shrink - taken;
            }
        }
        for call in started {
            // A token a call's runtime refused goes on to the next call as it drops.
            drop(call.launch(Token::new(&self.inner)));
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

    /// Runs `call` with a token: at once if one is free and no call waits, on an idle
    /// runner of its runtime if there is one, else once the calls before it have been
    /// given theirs (FIFO). Returns the id it waits under, if it had to wait, for
    /// [`withdraw`](Self::withdraw).
    pub(crate) fn start(&self, call: Call) -> Option<u64> {
        {
            let mut state = self.inner.lock();
            if state.available == 0 || !state.waiting.is_empty() {
                let id = state.next_id;
                state.next_id += 1;
                state.waiting.insert(id, call);
                return Some(id);
            }
            state.available -= 1;
            let runtime = call.runtime();
            if let Some(i) = state.idle.iter().rposition(|idle| idle.runs(runtime)) {
                let idle = state.idle.swap_remove(i);
                idle.give(call, Token::new(&self.inner));
                return None;
            }
        }
        drop(call.launch(Token::new(&self.inner)));
        None
    }

    /// Takes the call waiting under `id` out of the queue, if it still waits: its caller
    /// went away. The call (and all it captured) is dropped here, on the caller's side,
    /// once the lock is released.
    pub(crate) fn withdraw(&self, id: u64) {
        let call = self.inner.lock().waiting.remove(&id);
        drop(call);
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
