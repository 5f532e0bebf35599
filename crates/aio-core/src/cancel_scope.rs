//! [`CancelScope`]: a block that can be cancelled from anywhere, with an optional deadline;
//! Trio's and AnyIO's cancel scope. Every timeout runs on the same engine, [`ScopeRun`].
//!
//! # Which scope reports a cancellation
//!
//! When the future a scope wraps stops because of a cancellation, exactly one scope says so:
//! a timeout by returning `Err(Elapsed)`, a cancel scope by returning `None`. The rule, in
//! one place:
//!
//! * A scope *stops* its future only for its *own* cancellation (its deadline, or a
//!   `cancel()` on its handle): the future was dropped at a suspension point, or it ended by
//!   passing on the cancellation a construct inside returned (see [`Node::set_delivered`]).
//!   Any other ending (a value, a group's failures, an error that is not a cancellation) is
//!   the future's output and is returned as it is, even after the scope's own cancellation.
//! * A scope that stopped its future reports it only if no scope around it is cancelled
//!   too. Otherwise it *lets the cancellation through*: it returns `Pending` and stays so,
//!   and the enclosing scope, which is cancelled, drops it at once (or, if something
//!   structured beside it is still unwinding, as soon as that is done). The code after the
//!   inner scope never runs, as when Python's `CancelledError` passes through an `async
//!   with`. A shielded scope never lets anything through: nothing outside reaches it.
//! * A deadline that has passed counts as fired before anyone looks, whichever task runs
//!   first: a scope checks its own before polling its future, and before reporting, it
//!   fires every passed deadline around it. So of scopes whose deadlines pass together, the
//!   outermost one reports.
//!
//! The invariant this keeps: a timeout returns `Elapsed` only after its own deadline, and
//! only when no enclosing scope is cancelled; a cancellation reported once is never
//! reported again further out, and one that is let through always reaches a scope that
//! reports it.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};

use crate::scope::{self, ACTIVE, CAUGHT, CREATED, FINISHED, LazyScope, Node, NodeKind, PinGuard};
use crate::{CancelReason, ScopeId};

/// A node for a scope that has handles, bound to its parent when its future is first
/// polled.
pub(crate) fn scope_node(deadline: Option<Instant>, shielded: bool) -> Arc<Node> {
    let kind = NodeKind::Scope {
        phase: AtomicU8::new(CREATED),
        generation: AtomicU64::new(0),
    };
    Arc::new(Node::unbound(kind, shielded).with_deadline(deadline))
}

/// The owner has never registered for the deadline's generation.
const NEVER: u64 = u64::MAX;

pin_project! {
    /// Runs a future inside a scope, with the scope's deadline: the engine of
    /// [`CancelScope::run`] and of every timeout. `Ready(None)` means the scope's own
    /// cancellation stopped the future; see the module docs for the rule.
    ///
    /// The scope gets a node only when something needs one (see `scope/lazy.rs`); until
    /// then a timeout costs a timer entry, and only if its future suspends.
    ///
    /// It is kept small: a timeout is built in its caller's frame before it is awaited.
    pub(crate) struct ScopeRun<F> {
        // Dropped first: the scope is marked finished and leaves the tree however the
        // future ends.
        scope: LazyScope,
        started: bool,
        // The generation of the deadline the owner waker was registered for and the timer
        // armed for, once the scope has a node.
        synced: u64,
        owner: Option<Waker>,
        #[pin]
        fut: Option<F>,
        #[pin]
        sleep: Option<Sleep>,
    }
}

impl<F: Future> ScopeRun<F> {
    /// Runs `fut` in a scope that has no node until something needs one.
    pub(crate) fn lazy(deadline: Option<Instant>, shielded: bool, fut: F) -> Self {
        ScopeRun::with_scope(LazyScope::new(deadline, shielded), fut)
    }

    /// Runs `fut` in the scope of `node`, which has handles already.
    pub(crate) fn new(node: Arc<Node>, fut: F) -> Self {
        ScopeRun::with_scope(LazyScope::with_node(node), fut)
    }

    fn with_scope(scope: LazyScope, fut: F) -> Self {
        ScopeRun {
            scope,
            started: false,
            synced: NEVER,
            owner: None,
            fut: Some(fut),
            sleep: None,
        }
    }
}

impl<F> ScopeRun<F> {
    pub(crate) fn scope(&self) -> &LazyScope {
        &self.scope
    }
}

impl<F: Future> Future for ScopeRun<F> {
    type Output = Option<F::Output>;

    // Nested scopes poll each other recursively, so this frame is on the stack once per
    // level: everything but the poll of the wrapped future is done in functions of their
    // own, which return before it or run after it.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let timer = this.sleep.as_ref().as_pin_ref().map(|s| s.is_elapsed());
        before_poll(this.scope, timer);
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            // Dropped, and the cancellation let through: the enclosing scope drops us.
            return stopped(this.scope).map(|()| None);
        };
        // What `scope::poll_in_scope` does, with the scope lent to the stack for the poll.
        if !*this.started {
            if this.scope.is_cancelled_directly() {
                this.fut.set(None);
                return stopped(this.scope).map(|()| None);
            }
            *this.started = true;
        }
        let entered = scope::enter_lazy(this.scope);
        let polled = fut.poll(cx);
        drop(entered);
        match polled {
            Poll::Ready(output) => {
                this.fut.set(None);
                match ended(this.scope) {
                    Poll::Ready(()) => Poll::Ready(Some(output)),
                    // The future ended by passing our cancellation on: we stopped it.
                    Poll::Pending => stopped(this.scope).map(|()| None),
                }
            }
            Poll::Pending => {
                let scope = this.scope;
                after_pending(this.fut, this.sleep, this.owner, this.synced, scope, cx)
                    .map(|()| None)
            }
        }
    }
}

/// Enters the scope on the first poll, and binds a node made since to the scope polling
/// us; fires a deadline that has passed before the future is polled, so that of nested
/// scopes whose deadlines pass together the outer one reports. `timer` is whether the armed
/// timer has elapsed, if one is armed.
#[inline(never)]
fn before_poll(scope: &mut LazyScope, timer: Option<bool>) {
    if let Some(node) = scope.node() {
        if !node.is_bound() {
            node.bind(scope::current());
        }
    }
    if scope.phase() == CREATED {
        scope.set_phase(ACTIVE);
    }
    if timer == Some(true) && !scope.is_cancelled_directly() {
        scope.fire();
    }
}

/// The future returned: `Ready` to return its output, `Pending` if it passed our own
/// cancellation on, so that we stopped it.
#[inline(never)]
fn ended(scope: &mut LazyScope) -> Poll<()> {
    if scope.is_cancelled_directly() && scope.delivered() {
        return Poll::Pending;
    }
    scope.set_phase(FINISHED);
    // Our output is the future's: it is a cancellation if the future's was.
    match scope.node() {
        Some(node) => {
            if let Some(parent) = node.parent() {
                parent.set_delivered(node.delivered());
            }
        }
        None => scope::set_delivered(scope.delivered()),
    }
    Poll::Ready(())
}

/// The future is suspended: cancel it if our cancellation came, else (re)arm the timer.
/// `Ready` when the scope stopped the future and reports it.
#[inline(never)]
fn after_pending<F: Future>(
    mut fut: Pin<&mut Option<F>>,
    mut sleep: Pin<&mut Option<Sleep>>,
    owner: &mut Option<Waker>,
    synced: &mut u64,
    scope: &mut LazyScope,
    cx: &mut Context<'_>,
) -> Poll<()> {
    if scope.is_cancelled_directly() {
        // The future was kept because something structured inside it is unwinding; that
        // wakes us when it is done. Unless the cancellation came from another task during
        // the poll: then the future goes now.
        if scope.is_pinned() {
            return Poll::Pending;
        }
        fut.set(None);
        return stopped(scope);
    }
    let due = match scope.node() {
        Some(node) => sync_with_node(sleep.as_mut(), owner, synced, node, cx),
        // Without a node nothing can move the deadline: arm the timer once.
        None => match (scope.deadline(), sleep.is_none()) {
            (Some(deadline), true) => {
                sleep.set(Some(sleep_until(deadline)));
                Some(deadline <= Instant::now())
            }
            _ => Some(false),
        },
    };
    let Some(due) = due else {
        // Cancelled from elsewhere before we were registered: start over.
        cx.waker().wake_by_ref();
        return Poll::Pending;
    };
    if !due {
        let fired = match sleep.as_mut().as_pin_mut() {
            Some(timer) => timer.poll(cx).is_ready(),
            None => false,
        };
        if !fired {
            return Poll::Pending;
        }
    }
    // The deadline fired while the future was suspended: that is where it is cancelled,
    // unless something structured inside must unwind first.
    scope.fire();
    if scope.is_pinned() {
        cx.waker().wake_by_ref();
        return Poll::Pending;
    }
    fut.set(None);
    stopped(scope)
}

/// Registers the owner's waker with the node and arms the timer for the node's deadline,
/// when either changed. Returns whether the deadline is already due, or `None` if the node
/// was cancelled before the waker was registered.
fn sync_with_node(
    mut sleep: Pin<&mut Option<Sleep>>,
    owner: &mut Option<Waker>,
    synced: &mut u64,
    node: &Node,
    cx: &mut Context<'_>,
) -> Option<bool> {
    // A cancel or a move of the deadline wakes the owner, once: register again when the
    // deadline moved since, or the task changed, and re-read the deadline after.
    let generation_now = node.generation();
    if *synced != generation_now || !owner.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
        node.set_owner(cx.waker());
        *owner = Some(cx.waker().clone());
        if node.is_cancelled_directly() {
            return None;
        }
    }
    if *synced == generation_now {
        return Some(false);
    }
    *synced = generation_now;
    let deadline = node.deadline();
    match (deadline, sleep.as_mut().as_pin_mut()) {
        (None, _) => sleep.set(None),
        (Some(deadline), Some(timer)) => timer.reset(deadline),
        (Some(deadline), None) => sleep.set(Some(sleep_until(deadline))),
    }
    // A deadline that is already due fires now, not at the timer's next tick: `timeout(0)`
    // cancels even a future that only yields.
    Some(deadline.is_some_and(|d| d <= Instant::now()))
}

/// The scope's own cancellation stopped its future. Report it (`Ready`), or let it through
/// to a cancelled scope around us (`Pending`, for good: see the module docs).
///
/// Only the scope it was entered in can drop a future that lets a cancellation through, so
/// one polled anywhere else (moved to another task after its first poll) reports instead of
/// waiting for a drop that would never come. A scope with no node belongs to whichever
/// scope polls it, so that one is always where it was entered.
#[inline(never)]
fn stopped(scope: &mut LazyScope) -> Poll<()> {
    let let_through = match scope.node() {
        Some(node) => {
            if !node.is_shielded() {
                if let Some(parent) = node.parent() {
                    parent.fire_passed_deadlines();
                }
            }
            node.parent_cancelled()
                && node
                    .parent()
                    .is_some_and(|parent| scope::is_current(parent))
        }
        None => {
            !scope.is_shielded() && {
                scope::fire_passed_deadlines();
                scope::is_cancelled()
            }
        }
    };
    if let_through {
        return Poll::Pending;
    }
    match scope.node() {
        Some(node) => {
            if let Some(parent) = node.parent() {
                parent.set_delivered(false);
            }
        }
        None => scope::set_delivered(false),
    }
    scope.set_phase(CAUGHT);
    Poll::Ready(())
}

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
