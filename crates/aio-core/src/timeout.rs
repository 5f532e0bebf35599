//! Timeouts: cancel scopes with a deadline, whose cancellation is reported as [`Elapsed`].
//!
//! They run on the engine of [`CancelScope`](crate::CancelScope); which scope reports a
//! cancellation is decided there (see `cancel_scope/run.rs`).

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::cancel_scope::{ScopeRun, scope_node};
use crate::scope::{CREATED, Node};

/// The error of a timeout whose own deadline passed.
///
/// A timeout returns `Elapsed` only when *its* deadline cancelled the future it wraps, and
/// no scope around it is cancelled too. A cancellation from an enclosing scope is not
/// converted: it reaches the enclosing scope, which reports it (an enclosing timeout as its
/// own `Elapsed`, a group as cancelled). An outcome of the future that is not a
/// cancellation (a value, a group's failures) is returned as it is, even after the
/// deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline has elapsed")]
pub struct Elapsed(());

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Why [`Timeout::reschedule`] refused to move a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RescheduleError {
    /// The deadline passed and the future it wraps is still unwinding.
    #[error("cannot reschedule a timeout that is expiring")]
    Expiring,
    /// The deadline passed and the timeout has returned.
    #[error("cannot reschedule a timeout that has expired")]
    Expired,
    /// The timeout has returned, or was dropped, without expiring.
    #[error("cannot reschedule a timeout that has finished")]
    Finished,
}

/// Waits for `fut` for at most `duration`.
///
/// This is `async with asyncio.timeout(delay):`. The timeout is a cancel scope: when the
/// deadline passes, `fut` is cancelled at its next `.await` (after any task group or
/// [`on_cancel`](crate::on_cancel) inside it has unwound, cleanup included) and the timeout
/// returns `Err(Elapsed)`. Task groups opened inside inherit the deadline. A result that is
/// ready by the time the deadline is noticed wins over the deadline, and so does any outcome
/// of `fut` that is not a cancellation: a group inside that fails on its own while the
/// deadline passes returns its failures, not `Elapsed`.
///
/// If a scope around the timeout is cancelled too (an enclosing timeout whose deadline
/// passes at the same moment, an enclosing group that failed), the timeout does not report
/// `Elapsed`: the cancellation passes through it, the code after it does not run, and the
/// enclosing scope reports it. A timeout entered in a scope that is already cancelled
/// never returns `Elapsed` either.
///
/// # Errors
///
/// [`Elapsed`] when this timeout's deadline cancelled `fut`.
///
/// # Cancel safety
///
/// As cancel safe as `fut`: dropping the timeout drops `fut`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use aio_core::timeout;
///
/// let slow = tokio::time::sleep(Duration::from_secs(10));
/// assert!(timeout(Duration::from_secs(1), slow).await.is_err());
/// let fast = async { 7 };
/// assert_eq!(timeout(Duration::from_secs(1), fast).await, Ok(7));
/// # }
/// ```
pub fn timeout<F: IntoFuture>(duration: Duration, fut: F) -> TimeoutFuture<F::IntoFuture> {
    TimeoutFuture::new(Instant::now().checked_add(duration), fut.into_future())
}

/// Waits for `fut` until `deadline`: `asyncio.timeout_at(when)`. See [`timeout`].
///
/// # Errors
///
/// [`Elapsed`] when this timeout's deadline cancelled `fut`.
///
/// # Cancel safety
///
/// As cancel safe as `fut`: dropping the timeout drops `fut`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let deadline = Instant::now() + Duration::from_millis(50);
/// let r = aio_core::timeout_at(deadline, tokio::time::sleep(Duration::from_secs(1))).await;
/// assert!(r.is_err());
/// assert_eq!(Instant::now(), deadline);
/// # }
/// ```
pub fn timeout_at<F: IntoFuture>(deadline: Instant, fut: F) -> TimeoutFuture<F::IntoFuture> {
    TimeoutFuture::new(Some(deadline), fut.into_future())
}

/// `asyncio.wait_for(aw, timeout)`: waits for `fut` for at most `duration`, or for ever when
/// `duration` is `None`.
///
/// Exactly [`timeout`]. As in asyncio 3.12 and later, a zero duration polls `fut` once: a
/// future that is ready at once (a finished task's handle) gives its value; one that
/// suspends is cancelled there. To wait on a [`TaskHandle`](crate::TaskHandle) without
/// losing it when the wait times out, pass `&mut handle`.
///
/// # Errors
///
/// [`Elapsed`] when the deadline cancelled `fut`.
///
/// # Cancel safety
///
/// As cancel safe as `fut`: dropping it drops `fut`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
///
/// assert_eq!(aio_core::wait_for(None, async { 1 }).await, Ok(1));
/// assert_eq!(aio_core::wait_for(Duration::ZERO, async { 1 }).await, Ok(1));
/// assert!(aio_core::wait_for(Duration::ZERO, tokio::task::yield_now()).await.is_err());
/// # }
/// ```
pub fn wait_for<F: IntoFuture>(
    duration: impl Into<Option<Duration>>,
    fut: F,
) -> TimeoutFuture<F::IntoFuture> {
    let deadline = duration.into().and_then(|d| Instant::now().checked_add(d));
    TimeoutFuture::new(deadline, fut.into_future())
}

/// Runs the future that `body` builds under a timeout that `body` can see and move.
///
/// This is `async with asyncio.timeout(None) as cm:` followed by `cm.reschedule(...)`
/// inside the block. `deadline` may be `None` (no deadline until rescheduled).
///
/// # Errors
///
/// [`Elapsed`] when the deadline cancelled the body.
///
/// # Cancel safety
///
/// As cancel safe as the body: dropping the timeout drops it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use tokio::time::{sleep, Instant};
///
/// let start = Instant::now();
/// let r = aio_core::timeout_scope(None, |t| async move {
///     // Learn how long we may take, then commit to it.
///     t.reschedule(Instant::now() + Duration::from_secs(2)).unwrap();
///     sleep(Duration::from_secs(60)).await;
/// })
/// .await;
/// assert!(r.is_err());
/// assert_eq!(start.elapsed(), Duration::from_secs(2));
/// # }
/// ```
pub fn timeout_scope<F, Fut>(
    deadline: impl Into<Option<Instant>>,
    body: F,
) -> TimeoutFuture<Fut::IntoFuture>
where
    F: FnOnce(Timeout) -> Fut,
    Fut: IntoFuture,
{
    let node = scope_node(deadline.into(), false);
    let handle = Timeout {
        node: Arc::clone(&node),
    };
    TimeoutFuture {
        run: ScopeRun::new(node, body(handle).into_future()),
    }
}

/// A handle to a running timeout: asyncio's `Timeout` object.
///
/// Get one from [`TimeoutFuture::handle`] or inside [`timeout_scope`]. Handles are cheap to
/// clone and may be used from any task.
#[derive(Clone)]
pub struct Timeout {
    node: Arc<Node>,
}

impl Timeout {
    /// The deadline, or `None` if the timeout never fires.
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline()
    }

    /// Moves the deadline; `None` disables it. A deadline in the past fires at the
    /// timeout's next poll.
    ///
    /// # Errors
    ///
    /// [`RescheduleError`] once the timeout has fired or finished.
    pub fn reschedule(&self, deadline: impl Into<Option<Instant>>) -> Result<(), RescheduleError> {
        match (self.expired(), self.node.is_over()) {
            (true, false) => Err(RescheduleError::Expiring),
            (true, true) => Err(RescheduleError::Expired),
            (false, true) => Err(RescheduleError::Finished),
            (false, false) => {
                self.node.set_deadline(deadline.into());
                Ok(())
            }
        }
    }

    /// Whether the deadline has fired (the future may still be unwinding).
    pub fn expired(&self) -> bool {
        // Only its deadline cancels a timeout's own node.
        self.node.is_cancelled_directly()
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match (self.expired(), self.node.is_over()) {
            (true, false) => "expiring",
            (true, true) => "expired",
            (false, true) => "finished",
            (false, false) if self.node.phase() == CREATED => "created",
            (false, false) => "active",
        };
        f.debug_struct("Timeout")
            .field("state", &state)
            .field("deadline", &self.deadline())
            .finish()
    }
}

pin_project! {
    /// Future returned by [`timeout`], [`timeout_at`], [`wait_for`] and [`timeout_scope`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct TimeoutFuture<F> {
        #[pin]
        run: ScopeRun<F>,
    }
}

impl<F: Future> TimeoutFuture<F> {
    fn new(deadline: Option<Instant>, fut: F) -> Self {
        TimeoutFuture {
            run: ScopeRun::lazy(deadline, false, fut),
        }
    }

    /// A handle to read or move the deadline while the future runs.
    pub fn handle(&self) -> Timeout {
        Timeout {
            node: Arc::clone(self.run.scope().node_or_make()),
        }
    }
}

impl<F: Future> fmt::Debug for TimeoutFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutFuture")
            .field("timeout", &self.handle())
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for TimeoutFuture<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project()
            .run
            .poll(cx)
            .map(|output| output.ok_or(Elapsed(())))
    }
}

// Not under loom: these run a Tokio runtime, whose nodes would be loom's outside a model.
#[cfg(all(test, not(aio_loom)))]
mod tests {
    use std::future::{Future, poll_fn};
    use std::pin::pin;
    use std::task::Poll;
    use std::time::Duration;

    use tokio::task::yield_now;

    use super::timeout;
    use crate::{BoxError, TaskGroup, current_deadline, is_cancelled};

    /// Runs the future `make` makes under a timeout to its end, and says whether the
    /// timeout's scope had a node by then.
    fn made_a_node<F: Future>(make: impl FnOnce() -> F) -> bool {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut run = pin!(timeout(Duration::from_secs(10), make()));
            poll_fn(|cx| run.as_mut().poll(cx).map(drop)).await;
            run.run.scope().node().is_some()
        })
    }

    #[test]
    fn a_timeout_that_nothing_inside_asks_about_makes_no_node() {
        assert!(!made_a_node(|| async { 1 }));
        assert!(!made_a_node(yield_now));
        assert!(!made_a_node(|| tokio::time::sleep(Duration::from_secs(1))));
        assert!(!made_a_node(|| async {
            assert!(!is_cancelled());
            assert!(current_deadline().is_some());
            crate::checkpoint().await.unwrap();
            timeout(Duration::from_secs(1), yield_now()).await.unwrap();
        }));
        // Fired, with nothing inside to unwind.
        assert!(!made_a_node(|| tokio::time::sleep(Duration::from_secs(60))));
    }

    #[test]
    fn a_timeout_makes_its_node_when_something_inside_hangs_under_it() {
        assert!(made_a_node(|| async {
            TaskGroup::<BoxError>::scope(|_| async { Ok(()) })
                .await
                .unwrap();
        }));
        assert!(made_a_node(|| async {
            yield_now().await;
            let mut wait = pin!(crate::cancelled());
            poll_fn(|cx| Poll::Ready(wait.as_mut().poll(cx).is_pending())).await
        }));
        assert!(made_a_node(|| crate::shield(async { 1 })));
    }
}
