//! [`CancelScope`]: a block that can be cancelled from anywhere, with an optional deadline;
//! Trio's and AnyIO's cancel scope. Every timeout runs on the same engine, `ScopeRun`
//! (`cancel_scope/run.rs`), where the rule of which scope reports a cancellation is written.

mod run;

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Instant;

pub(crate) use self::run::{ScopeRun, scope_node};
use crate::scope::{self, ACTIVE, CAUGHT, CREATED, Node, PinGuard};
use crate::{CancelReason, ScopeId};

/// A block of code that can be cancelled from anywhere: Trio's and AnyIO's `CancelScope`.
///
/// [`run`](Self::run) runs a future inside the scope. Any task that holds a
/// [`CancelHandle`] (from [`handle`](Self::handle), cheap to clone and `Send`) can cancel it,
/// or move its deadline. When the scope is cancelled, by its handle or by its deadline, the
/// future is cancelled at its next `.await` (structured constructs inside it unwind first,
/// their cleanup included) and `run` returns `None`: the caller carries on, with no error to
/// handle. A future that finishes anyway returns `Some(output)`.
/// [`CancelHandle::cancelled_caught`] says afterwards which of the two happened.
///
/// A cancel scope nests with groups, timeouts and shields like every other scope: groups
/// opened inside it are cancelled with it, [`current_deadline`](crate::current_deadline)
/// sees its deadline, and a cancellation from *outside* is not caught: it passes through
/// `run` to the scope it belongs to. If both this scope and one around it are cancelled,
/// the outer one reports it. A [`shielded`](Self::shielded) scope is not reached by
/// cancellation from outside at all (Trio's `shield=True`), and the scopes around it wait
/// for it.
///
/// A [`timeout`](crate::timeout) is a cancel scope with a deadline whose cancellation is
/// reported as [`Elapsed`](crate::Elapsed).
///
/// # Examples
///
/// "Cancel this block and carry on", from another task:
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use aio_core::CancelScope;
///
/// let scope = CancelScope::new();
/// let handle = scope.handle();
/// tokio::spawn(async move {
///     tokio::time::sleep(Duration::from_secs(1)).await;
///     handle.cancel_with("operator pressed stop");
/// });
/// let handle = scope.handle();
/// let out = scope.run(tokio::time::sleep(Duration::from_secs(3600))).await;
/// assert_eq!(out, None);
/// assert!(handle.cancelled_caught());
/// # }
/// ```
///
/// Trio's `move_on_after`: give up after a deadline, with no error:
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
///
/// let quick = aio_core::move_on_after(Duration::from_secs(1), async { "done" }).await;
/// assert_eq!(quick, Some("done"));
/// let slow = aio_core::move_on_after(
///     Duration::from_secs(1),
///     tokio::time::sleep(Duration::from_secs(60)),
/// )
/// .await;
/// assert_eq!(slow, None);
/// # }
/// ```
pub struct CancelScope {
    node: Arc<Node>,
}

impl CancelScope {
    /// A scope with no deadline, reached by cancellation from outside.
    pub fn new() -> Self {
        CancelScope {
            node: scope_node(None, false),
        }
    }

    /// A scope that cancellation from outside does not reach: Trio's
    /// `CancelScope(shield=True)`. Only its own handle and deadline cancel it, and the scopes
    /// around it wait for it before they drop anything. See [`shield`](crate::shield).
    pub fn shielded() -> Self {
        CancelScope {
            node: scope_node(None, true),
        }
    }

    /// Sets the deadline, after which the scope cancels itself.
    pub fn with_deadline(self, deadline: Instant) -> Self {
        self.node.set_deadline(Some(deadline));
        self
    }

    /// Sets the deadline to `duration` from now.
    pub fn with_timeout(self, duration: Duration) -> Self {
        self.node.set_deadline(Instant::now().checked_add(duration));
        self
    }

    /// A handle to cancel the scope, move its deadline, and learn how it ended.
    pub fn handle(&self) -> CancelHandle {
        CancelHandle {
            node: Arc::clone(&self.node),
        }
    }

    /// Runs `fut` inside the scope.
    ///
    /// Returns `Some` with `fut`'s output if it finished, `None` if the scope's own
    /// cancellation stopped it. A scope cancelled before `run` is first polled never starts
    /// `fut`.
    ///
    /// # Cancel safety
    ///
    /// As cancel safe as `fut`: dropping the future drops `fut`.
    pub fn run<F: IntoFuture>(self, fut: F) -> CancelScopeFuture<F::IntoFuture> {
        CancelScopeFuture {
            pin: None,
            run: ScopeRun::new(self.node, fut.into_future()),
        }
    }
}

impl Default for CancelScope {
    fn default() -> Self {
        CancelScope::new()
    }
}

impl fmt::Debug for CancelScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelScope")
            .field("id", &self.node.id())
            .field("deadline", &self.node.deadline())
            .field("shielded", &self.node.is_shielded())
            .finish()
    }
}

/// Runs `fut` for at most `duration`, and returns `None` if that was not enough: Trio's
/// `move_on_after`. The same as `CancelScope::new().with_timeout(duration).run(fut)`, and
/// as `timeout(duration, fut).await.ok()`.
///
/// # Cancel safety
///
/// As cancel safe as `fut`: dropping the future drops `fut`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
///
/// let out = aio_core::move_on_after(Duration::from_millis(10), async {
///     tokio::time::sleep(Duration::from_secs(1)).await;
///     "too slow"
/// })
/// .await;
/// assert_eq!(out, None);
/// # }
/// ```
pub fn move_on_after<F: IntoFuture>(
    duration: Duration,
    fut: F,
) -> CancelScopeFuture<F::IntoFuture> {
    CancelScopeFuture {
        pin: None,
        run: ScopeRun::lazy(
            Instant::now().checked_add(duration),
            false,
            fut.into_future(),
        ),
    }
}

/// Runs `fut` until `deadline`, and returns `None` if it had not finished: Trio's
/// `move_on_at`. See [`move_on_after`].
///
/// # Cancel safety
///
/// As cancel safe as `fut`: dropping the future drops `fut`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let deadline = Instant::now() + Duration::from_secs(1);
/// assert_eq!(aio_core::move_on_at(deadline, async { 5 }).await, Some(5));
/// # }
/// ```
pub fn move_on_at<F: IntoFuture>(deadline: Instant, fut: F) -> CancelScopeFuture<F::IntoFuture> {
    CancelScopeFuture {
        pin: None,
        run: ScopeRun::lazy(Some(deadline), false, fut.into_future()),
    }
}

/// A handle to a [`CancelScope`]: cancel it, move its deadline, or ask how it ended. Cheap
/// to clone, and usable from any task or thread.
#[derive(Clone)]
pub struct CancelHandle {
    node: Arc<Node>,
}

impl CancelHandle {
    /// Cancels the scope: its future is cancelled at its next `.await` and
    /// [`CancelScope::run`] returns `None`. Idempotent; before `run` it makes `run` return
    /// `None` without starting the future; once `run` has returned it does nothing.
    pub fn cancel(&self) {
        self.cancel_inner(None);
    }

    /// Like [`cancel`](Self::cancel), with a message that the
    /// [`Cancelled`](crate::Cancelled) seen inside the scope carries.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_core::{CancelScope, Cancelled, on_cancel};
    ///
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// let scope = CancelScope::new();
    /// let handle = scope.handle();
    /// let out = scope
    ///     .run(on_cancel(
    ///         async move {
    ///             handle.cancel_with("enough");
    ///             std::future::pending::<Result<(), Cancelled>>().await
    ///         },
    ///         |cancelled| async move {
    ///             tx.send(cancelled.message().map(String::from)).unwrap();
    ///             Ok(())
    ///         },
    ///     ))
    ///     .await;
    /// assert_eq!(out, None);
    /// assert_eq!(rx.await.unwrap().as_deref(), Some("enough"));
    /// # }
    /// ```
    pub fn cancel_with(&self, message: impl Into<Arc<str>>) {
        self.cancel_inner(Some(message.into()));
    }

    fn cancel_inner(&self, message: Option<Arc<str>>) {
        if !self.node.is_over() {
            self.node.cancel_with(CancelReason::Explicit, message);
        }
    }

    /// Whether the scope was cancelled, by its handle or by its deadline (Trio's
    /// `cancel_called`). A cancellation from outside does not count.
    pub fn cancel_called(&self) -> bool {
        self.node.is_cancelled_directly()
    }

    /// Whether the scope's own cancellation stopped its future, so that
    /// [`run`](CancelScope::run) returned `None` (Trio's `cancelled_caught`). `false` while it
    /// runs, if its future finished anyway, and if the cancellation came from outside.
    pub fn cancelled_caught(&self) -> bool {
        self.node.phase() == CAUGHT
    }

    /// The deadline, or `None` if the scope has none.
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline()
    }

    /// Moves the deadline; `None` removes it. A deadline in the past cancels the scope at
    /// its next poll. Once the scope is cancelled or has returned, this changes nothing that
    /// can be seen but [`deadline`](Self::deadline).
    pub fn set_deadline(&self, deadline: impl Into<Option<Instant>>) {
        self.node.set_deadline(deadline.into());
    }

    /// The scope's id, as the task tree and `tracing` show it.
    pub fn id(&self) -> ScopeId {
        self.node.id()
    }
}

impl fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.node.phase() {
            CREATED => "created",
            ACTIVE if self.cancel_called() => "cancelling",
            ACTIVE => "active",
            CAUGHT => "cancelled",
            _ => "finished",
        };
        f.debug_struct("CancelHandle")
            .field("id", &self.node.id())
            .field("state", &state)
            .field("deadline", &self.deadline())
            .finish()
    }
}

pin_project! {
    /// Future returned by [`CancelScope::run`], [`move_on_after`] and [`move_on_at`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct CancelScopeFuture<F> {
        // A shielded scope keeps the scopes around it from dropping it while it runs.
        pin: Option<PinGuard>,
        #[pin]
        run: ScopeRun<F>,
    }
}

impl<F: Future> CancelScopeFuture<F> {
    /// A handle to the scope.
    pub fn handle(&self) -> CancelHandle {
        CancelHandle {
            node: Arc::clone(self.run.scope().node_or_make()),
        }
    }
}

impl<F> fmt::Debug for CancelScopeFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelScopeFuture")
            .field("id", &self.run.scope().node().map(|node| node.id()))
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for CancelScopeFuture<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.pin.is_none() && this.run.scope().is_shielded() {
            *this.pin = Some(PinGuard::new(scope::current()));
        }
        let poll = this.run.poll(cx);
        if poll.is_ready() {
            *this.pin = None;
        }
        poll
    }
}
