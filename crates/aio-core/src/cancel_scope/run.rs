//! `ScopeRun`: the engine of every cancel scope and timeout, and the one place that decides
//! which scope reports a cancellation.
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
//!
//! What the rule reads, kept by the scope tree: whether the last construct that ended in a
//! scope returned a cancellation (`Node::set_delivered`, and `scope::set_delivered` for a
//! lazy scope), and the passed deadlines around a scope (`Node::fire_passed_deadlines`,
//! `scope::fire_passed_deadlines`). The rest is here: `before_poll` fires a passed deadline
//! before the future runs, `ended` tells an output from a cancellation passed on,
//! `after_pending` drops the future when the scope's own cancellation came, and
//! `stopped` reports or lets the cancellation through.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64};
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};

use crate::scope::{self, ACTIVE, CAUGHT, CREATED, FINISHED, LazyScope, Node, NodeKind};

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
    // A timer that elapsed was armed for a deadline that may have moved later since (a
    // handle's `reschedule` between the timer's wake-up and this poll): the deadline decides.
    // Only a node's deadline can move; without one the timer's is the deadline.
    if timer == Some(true)
        && !scope.is_cancelled_directly()
        && (scope.node().is_none()
            || scope
                .deadline()
                .is_some_and(|deadline| deadline <= Instant::now()))
    {
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
