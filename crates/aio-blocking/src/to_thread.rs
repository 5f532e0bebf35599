//! [`to_thread`] and [`to_thread_cancellable`]: `asyncio.to_thread` on Tokio's blocking
//! pool.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use aio_core::{CancelReason, Cancelled};
use futures::FutureExt;
use tokio::sync::oneshot::{self, error::RecvError};

use crate::context::CallerContext;
use crate::error::panic_message;
use crate::from_thread::{Caller, Served};
use crate::runner::Call;
use crate::{CancelToken, CapacityLimiter, ToThreadError};

/// Runs the blocking function `f` on a thread and waits for its result:
/// `await asyncio.to_thread(f)`.
///
/// `f` runs on Tokio's blocking pool, at most
/// [`CapacityLimiter::default_limiter`]`().total_tokens()` at once across the process (by
/// default `min(32, cpus + 4)`, asyncio's default executor size); the others wait their
/// turn, first come first served. Use [`CapacityLimiter::to_thread`] to run under a
/// limiter of your own.
///
/// * **Context.** The caller's current `tracing` span is entered in the thread while `f`
///   runs, under the caller's default subscriber, so events `f` emits belong to the
///   caller's request, as asyncio copies the `contextvars` into the thread.
/// * **Panics** in `f` are caught in the thread and returned as
///   [`ToThreadError::Panicked`] with the message; they never unwind into the caller.
/// * **Scopes.** Inside a cancelled aio scope, `to_thread` starts nothing: it suspends,
///   and the scope drops it there, as it drops any future at its `.await`. The
///   cancellation never becomes an error value, so `?` cannot report it as a failure of a
///   task. While `f` runs, a cancellation of the scope drops this future the same way (see
///   *Cancel safety*); `f` cannot be interrupted. When it must stop early, use
///   [`to_thread_cancellable`].
///
/// Closures replace asyncio's `*args, **kwargs`: capture what `f` needs with `move`.
///
/// # Errors
///
/// [`ToThreadError::Panicked`] if `f` panicked; [`ToThreadError::Cancelled`] if it never
/// ran because the runtime is shutting down.
///
/// # Panics
///
/// When awaited outside a Tokio runtime.
///
/// # Cancel safety
///
/// Dropping the future before `f` has started (while it waits for a token, or while its
/// thread is still queued) means `f` never runs. Once `f` has started, dropping the future
/// detaches it: `f` runs to the end on its thread, keeping its limiter token until then,
/// and its result is discarded (asyncio's behaviour: a thread cannot be stopped). At exit,
/// [`aio::run`](aio_core::run) waits for running functions for up to its grace period
/// ([`DEFAULT_GRACE`](aio_core::DEFAULT_GRACE)), where asyncio waits without limit.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let path = std::env::temp_dir().join(format!("aio-to-thread-{}.txt", std::process::id()));
/// std::fs::write(&path, "hello")?;
///
/// let read = path.clone();
/// let text = aio_blocking::to_thread(move || std::fs::read_to_string(read)).await??;
/// assert_eq!(text, "hello");
/// # std::fs::remove_file(path)?;
/// # Ok(())
/// # }
/// ```
pub fn to_thread<F, T>(f: F) -> ToThread<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    CapacityLimiter::default_limiter().to_thread(f)
}

/// Like [`to_thread`], but `f` gets a [`CancelToken`] that is cancelled when the awaiting
/// scope is cancelled or this future is dropped, so a long loop can stop early.
///
/// The token is cancelled as soon as the cancellation of the caller's scope is known, even
/// while the scope still waits for something structured to wind down before it drops this
/// future. A [`shield`](aio_core::shield) around the call keeps outer cancellations from
/// reaching the token, as it does for any other code.
///
/// If `f` returns (early, or having ignored the token) before this future is dropped, its
/// value is returned; aio keeps results that complete before the cancellation lands.
///
/// # Errors
///
/// As [`to_thread`].
///
/// # Panics
///
/// When awaited outside a Tokio runtime.
///
/// # Cancel safety
///
/// Dropping the future cancels the token. If `f` has not started, it never runs; if it is
/// running, it goes on until it notices the token (or returns), and its result is
/// discarded.
///
/// # Examples
///
/// A search that stops when its caller gives up:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use aio_blocking::to_thread_cancellable;
///
/// let result = aio_core::timeout(
///     Duration::from_millis(10),
///     to_thread_cancellable(|token| {
///         let mut tried = 0u64;
///         while !token.is_cancelled() {
///             tried += 1; // try one more candidate
///             token.wait_timeout(Duration::from_millis(1));
///         }
///         tried
///     }),
/// )
/// .await;
/// assert!(result.is_err(), "the timeout fired, and the thread stopped");
/// # }
/// ```
pub fn to_thread_cancellable<F, T>(f: F) -> ToThread<T>
where
    F: FnOnce(CancelToken) -> T + Send + 'static,
    T: Send + 'static,
{
    CapacityLimiter::default_limiter().to_thread_cancellable(f)
}

/// Future returned by [`to_thread`], [`to_thread_cancellable`] and their
/// [`CapacityLimiter`] forms: the value of the function, or why there is none.
///
/// A named type, so a call can be stored in a struct; it is `Send`, `Unpin` and
/// `'static`. See [`to_thread`] for what dropping it does.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_blocking::futures::ToThread;
///
/// struct Loading {
///     config: ToThread<std::io::Result<String>>,
/// }
///
/// let loading = Loading {
///     config: aio_blocking::to_thread(|| std::fs::read_to_string("/nonexistent/aio.toml")),
/// };
/// assert!(loading.config.await.unwrap().is_err());
/// # }
/// ```
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ToThread<T> {
    call: Pin<Box<dyn Future<Output = Result<T, ToThreadError>> + Send>>,
}

impl<T> ToThread<T> {
    pub(crate) fn new<F>(limiter: CapacityLimiter, watch: bool, f: F) -> Self
    where
        F: FnOnce(CancelToken) -> T + Send + 'static,
        T: Send + 'static,
    {
        ToThread {
            call: Box::pin(run(limiter, watch, f)),
        }
    }
}

impl<T> Future for ToThread<T> {
    type Output = Result<T, ToThreadError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.call.as_mut().poll(cx)
    }
}

impl<T> fmt::Debug for ToThread<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToThread").finish_non_exhaustive()
    }
}

/// What the thread reports: `None` if `f` was never started.
type Outcome<T> = Option<Result<T, String>>;

/// The body of every `to_thread` flavour. `watch` says whether to cancel the token as soon
/// as the caller's scope is cancelled (only [`to_thread_cancellable`] hands out its token,
/// so only it pays for watching once `f` runs); a call that waits for a token is watched
/// in any case, so that a cancelled scope never starts it.
async fn run<F, T>(limiter: CapacityLimiter, watch: bool, f: F) -> Result<T, ToThreadError>
where
    F: FnOnce(CancelToken) -> T + Send + 'static,
    T: Send + 'static,
{
    if aio_core::is_cancelled() {
        return dropped_by_the_scope().await;
    }
    let token = CancelToken::new();
    let (mut caller, portal) = Caller::new();
    let context = CallerContext::capture(portal);
    let thread_token = token.clone();
    let (report, mut handle) = oneshot::channel::<Outcome<T>>();
    // The call waits in the limiter's queue, not here: the thread that gives a token back
    // starts the next call itself.
    let queued = limiter.start(Call::new(move |permit| {
        let outcome = (!thread_token.is_cancelled()).then(|| {
            let out = context.run(|| catch_unwind(AssertUnwindSafe(|| f(thread_token))));
            out.map_err(|p| panic_message(&*p))
        });
        // The token goes back as soon as `f` returns, before the caller hears of it. If
        // handing it on panics (no thread for the next call), the caller still hears.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(permit)));
        let _ = report.send(outcome);
    }));
    // From here on, a drop takes the call out of the queue (dropping `f` and what it
    // holds), keeps it from starting, or tells it to stop.
    let queued = queued.map(|id| (&limiter, id));
    let mut on_drop = CancelOnDrop {
        token: Some(token.clone()),
        queued,
    };

    let (joined, seen) = if watch || queued.is_some() {
        Watch {
            handle: &mut handle,
            caller: &mut caller,
            token: &token,
            queued,
            seen: None,
        }
        .await
    } else {
        let served = Served {
            caller: &mut caller,
            inner: &mut handle,
        };
        (served.await, None)
    };
    on_drop.token = None;
    on_drop.queued = None;

    match joined {
        Ok(Some(Ok(value))) => Ok(value),
        Ok(Some(Err(message))) => Err(ToThreadError::Panicked { message }),
        // Not started: the token was cancelled because the scope was.
        Ok(None) => {
            debug_assert!(
                seen.is_some(),
                "only a cancelled scope cancels the token here"
            );
            dropped_by_the_scope().await
        }
        // Taken out of the queue because the scope was cancelled.
        Err(_) if seen.is_some() => dropped_by_the_scope().await,
        // The blocking pool refused or dropped the call: the runtime is shutting down.
        Err(_) => Err(Cancelled::new(CancelReason::Shutdown).into()),
    }
}

/// Where a call inside a cancelled scope ends: suspended, so that the scope drops it, as it
/// drops any future at its next `.await`. A cancellation is never turned into an error
/// value here, so `?` cannot pass it on as a failure.
async fn dropped_by_the_scope<T>() -> Result<T, ToThreadError> {
    std::future::pending().await
}

/// Waits for the thread, running what it asks for through [`from_thread`](crate::from_thread),
/// and cancels its token as soon as the caller's scope is cancelled, taking the call out of
/// the limiter's queue if it still waits there.
struct Watch<'a, T> {
    handle: &'a mut oneshot::Receiver<Outcome<T>>,
    caller: &'a mut Caller,
    token: &'a CancelToken,
    queued: Option<(&'a CapacityLimiter, u64)>,
    seen: Option<Cancelled>,
}

impl<T> Future for Watch<'_, T> {
    type Output = (Result<Outcome<T>, RecvError>, Option<Cancelled>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        // The caller watches the scope for the thread's calls back; the same watch cancels
        // the token.
        if let Some(cancelled) = this.caller.serve(cx) {
            if this.seen.is_none() {
                this.token.cancel();
                if let Some((limiter, id)) = this.queued {
                    limiter.withdraw(id);
                }
                this.seen = Some(cancelled);
            }
        }
        let joined = ready!(this.handle.poll_unpin(cx));
        Poll::Ready((joined, this.seen.take()))
    }
}

/// If the future is dropped before the thread reported back: takes the call out of the
/// limiter's queue if it still waits there, and cancels its token.
struct CancelOnDrop<'a> {
    token: Option<CancelToken>,
    queued: Option<(&'a CapacityLimiter, u64)>,
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some((limiter, id)) = self.queued.take() {
            limiter.withdraw(id);
        }
        if let Some(token) = self.token.take() {
            token.cancel();
        }
    }
}
