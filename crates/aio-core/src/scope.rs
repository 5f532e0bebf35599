//! Cancel scopes: which scope a task is running in, and asking it about cancellation.
//!
//! The scope tree itself lives in [`node`], and scopes that have no node yet in [`lazy`];
//! this module keeps the stack of scopes the code being polled runs in, in a thread-local
//! that every wrapper future pushes to around the poll of the future it wraps (a task-local,
//! in effect), wraps futures so they run inside a node ([`Scoped`]), and offers the questions
//! a task can ask: [`is_cancelled`], [`cancelled`], [`checkpoint`] and [`current_deadline`].

mod lazy;
mod node;

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::time::Instant;

pub(crate) use lazy::{Lazy, LazyScope};
pub(crate) use node::{
    ACTIVE, CAUGHT, CREATED, FINISHED, GroupScope, Node, NodeKind, Notify, PinGuard, Registration,
    Waiter,
};

use crate::{CancelReason, Cancelled, TaskId};

thread_local! {
    /// The scopes the code being polled runs in, innermost last. Every wrapper future
    /// pushes its scope around each poll of the future it wraps and pops it after: Tokio's
    /// task-locals work the same way. This is their machinery without their frames: every
    /// level of nested scopes polls through here, so it must be cheap in stack as well as
    /// in time.
    ///
    /// Only the innermost entry answers questions, except that a [`Lazy`] scope with no
    /// node yet asks the entry below it about everything around it: the entries are the
    /// polls on this thread's stack, so the entry below a lazy scope is exactly the scope
    /// that is polling it.
    static STACK: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// One scope on the stack of polls.
pub(crate) enum Entry {
    Current(Current),
    Lazy(Lazy),
}

/// Calls `f` with the scopes the caller runs in, innermost last; `None` outside every aio
/// scope.
fn with_stack<R>(f: impl FnOnce(&[Entry]) -> R) -> Option<R> {
    STACK
        .try_with(|stack| {
            let stack = stack.borrow();
            if stack.is_empty() {
                None
            } else {
                Some(f(&stack))
            }
        })
        .ok()
        .flatten()
}

/// [`with_stack`], for the questions that write to a lazy scope (mark it fired or
/// delivered, give it a node). `f` must not poll, wake or drop anything that could enter a
/// scope.
fn with_stack_mut<R>(f: impl FnOnce(&mut [Entry]) -> R) -> Option<R> {
    STACK
        .try_with(|stack| {
            let mut stack = stack.borrow_mut();
            if stack.is_empty() {
                None
            } else {
                Some(f(&mut stack))
            }
        })
        .ok()
        .flatten()
}

/// Makes `current` the scope until the returned guard is dropped.
fn enter(current: Current) -> Entered {
    let pushed = STACK
        .try_with(|stack| stack.borrow_mut().push(Entry::Current(current)))
        .is_ok();
    Entered(pushed)
}

/// Pops the scope [`enter`] pushed, even if the poll panicked.
struct Entered(bool);

impl Drop for Entered {
    fn drop(&mut self) {
        if self.0 {
            // Drop ours after the stack is released: no borrow should be held while
            // arbitrary drops run.
            let ours = STACK.try_with(|stack| stack.borrow_mut().pop());
            drop(ours);
        }
    }
}

/// Makes the lazy scope `scope` the current one until the returned guard is dropped, which
/// gives it back, with whatever the code inside did to it (fired it, gave it a node).
pub(crate) fn enter_lazy(scope: &mut LazyScope) -> EnteredLazy<'_> {
    let pushed = STACK
        .try_with(|stack| stack.borrow_mut().push(Entry::Lazy(scope.lend())))
        .is_ok();
    EnteredLazy { scope, pushed }
}

/// Gives a lazy scope back from the stack, even if the poll panicked.
pub(crate) struct EnteredLazy<'a> {
    scope: &'a mut LazyScope,
    pushed: bool,
}

impl Drop for EnteredLazy<'_> {
    fn drop(&mut self) {
        if !self.pushed {
            return;
        }
        if let Ok(Some(Entry::Lazy(lazy))) = STACK.try_with(|stack| stack.borrow_mut().pop()) {
            self.scope.take_back(lazy);
        }
    }
}

/// What code runs in: a scope's node, or a task of a group. A task gets a node of its own
/// only when something inside it needs one (a nested scope, a question about its deadline),
/// so the many tasks that never do cost no extra allocation.
#[derive(Clone)]
pub(crate) enum Current {
    Node(Arc<Node>),
    Task(Arc<dyn TaskScope>),
}

/// The root of a task spawned into a group.
pub(crate) trait TaskScope: Send + Sync {
    /// The task's node, created on first use.
    fn node(&self) -> &Arc<Node>;
    fn id(&self) -> TaskId;
    fn name(&self) -> Option<&Arc<str>>;
    /// The node the task hangs under: its group's, or where a detached task was started.
    fn parent(&self) -> Option<&Arc<Node>>;
    /// The task's node if it has been created.
    fn created_node(&self) -> Option<&Arc<Node>>;
    /// Whether cancellation from outside stops at the task.
    fn is_shielded(&self) -> bool;
    /// Whether the task is cancelled; never creates the node.
    fn is_cancelled(&self) -> bool;
    /// The cancellation in force for the task; never creates the node.
    fn cancellation(&self) -> Option<Cancelled>;
}

impl Current {
    pub(crate) fn node(&self) -> Arc<Node> {
        match self {
            Current::Node(node) => Arc::clone(node),
            Current::Task(task) => Arc::clone(task.node()),
        }
    }

    /// The node that stands for this scope without creating one: a task with no node of its
    /// own is answered for by the node it hangs under, unless it is shielded.
    fn existing_node(&self) -> Option<&Arc<Node>> {
        match self {
            Current::Node(node) => Some(node),
            Current::Task(task) => task
                .created_node()
                .or_else(|| task.parent().filter(|_| !task.is_shielded())),
        }
    }

    fn is_cancelled(&self) -> bool {
        match self {
            Current::Node(node) => node.is_cancelled(),
            Current::Task(task) => task.is_cancelled(),
        }
    }

    fn cancellation(&self) -> Option<Cancelled> {
        match self {
            Current::Node(node) => node.cancellation(),
            Current::Task(task) => task.cancellation(),
        }
    }

    /// Records whether a construct that ended here returned a cancellation (see
    /// [`Node::set_delivered`]). A task whose node was never created has nobody to tell.
    fn set_delivered(&self, delivered: bool) {
        match self {
            Current::Node(node) => node.set_delivered(delivered),
            Current::Task(task) => {
                if let Some(node) = task.created_node() {
                    node.set_delivered(delivered);
                }
            }
        }
    }

    fn is_pinned(&self) -> bool {
        match self {
            Current::Node(node) => node.is_pinned(),
            Current::Task(task) => task.created_node().is_some_and(|node| node.is_pinned()),
        }
    }

    fn task(&self) -> Option<TaskRef> {
        match self {
            Current::Task(task) => Some(TaskRef {
                id: task.id(),
                name: task.name().cloned(),
                parent: task.parent().cloned(),
            }),
            Current::Node(node) => TaskRef::of_node(node),
        }
    }

    fn is(&self, node: &Node) -> bool {
        match self {
            Current::Node(current) => std::ptr::eq(&**current, node),
            Current::Task(task) => task
                .created_node()
                .is_some_and(|current| std::ptr::eq(&**current, node)),
        }
    }
}

impl From<Arc<Node>> for Current {
    fn from(node: Arc<Node>) -> Self {
        Current::Node(node)
    }
}

// The questions, asked of a stack of scopes (innermost last). A lazy scope with a node
// answers through it; one without answers what it knows of itself and passes the rest of
// the question to the entry below it.

fn is_cancelled_in(stack: &[Entry]) -> bool {
    for entry in stack.iter().rev() {
        match entry {
            Entry::Current(current) => return current.is_cancelled(),
            Entry::Lazy(lazy) => match lazy.node() {
                Some(node) => return node.is_cancelled(),
                None if lazy.own.fired => return true,
                None if lazy.own.shielded => return false,
                None => {}
            },
        }
    }
    false
}

fn cancellation_in(stack: &[Entry]) -> Option<Cancelled> {
    // The reason is "ours" when the cancelled scope is the nearest one; a lazy scope passed
    // on the way makes it inherited (see `Node::cancellation`).
    let mut passed_scope = false;
    for entry in stack.iter().rev() {
        let found = match entry {
            Entry::Current(current) => current.cancellation(),
            Entry::Lazy(lazy) => match lazy.node() {
                Some(node) => node.cancellation(),
                None if lazy.own.fired => Some(Cancelled::new(CancelReason::Deadline)),
                None if lazy.own.shielded => None,
                None => {
                    passed_scope = true;
                    continue;
                }
            },
        };
        return found.map(|cancelled| {
            if passed_scope {
                cancelled.into_inherited()
            } else {
                cancelled
            }
        });
    }
    None
}

fn is_pinned_in(stack: &[Entry]) -> bool {
    match stack.last() {
        Some(Entry::Current(current)) => current.is_pinned(),
        Some(Entry::Lazy(lazy)) => lazy.node().is_some_and(|node| node.is_pinned()),
        None => false,
    }
}

fn set_delivered_in(stack: &mut [Entry], delivered: bool) {
    match stack.last_mut() {
        Some(Entry::Current(current)) => current.set_delivered(delivered),
        Some(Entry::Lazy(lazy)) => match lazy.node() {
            Some(node) => node.set_delivered(delivered),
            None => lazy.own.delivered = delivered,
        },
        None => {}
    }
}

/// The innermost scope's node, made now for a lazy scope (and the lazy scopes around it)
/// that has none.
fn node_in(stack: &mut [Entry]) -> Option<Arc<Node>> {
    let (innermost, outer) = stack.split_last_mut()?;
    Some(match innermost {
        Entry::Current(current) => current.node(),
        Entry::Lazy(lazy) => lazy.node_or_make(|| node_in(outer)),
    })
}

fn deadline_in(stack: &[Entry]) -> Option<Instant> {
    let mut earliest: Option<Instant> = None;
    for entry in stack.iter().rev() {
        let (deadline, last) = match entry {
            Entry::Current(current) => (
                current
                    .existing_node()
                    .and_then(|node| node.effective_deadline()),
                true,
            ),
            Entry::Lazy(lazy) => match lazy.node() {
                Some(node) => (node.effective_deadline(), true),
                None => (lazy.own.deadline, lazy.own.shielded),
            },
        };
        earliest = earliest.into_iter().chain(deadline).min();
        if last {
            break;
        }
    }
    earliest
}

/// Fires the passed deadlines of the lazy scopes from the innermost out, and returns the
/// node where the rest of the chain goes on, for the caller to fire once the stack is
/// released: cancelling a node wakes its waiters, and no borrow of the stack is held then.
fn fire_passed_deadlines_in(stack: &mut [Entry]) -> Option<Arc<Node>> {
    // The clock is read only if a lazy scope with a deadline is found.
    let mut now = None;
    for entry in stack.iter_mut().rev() {
        match entry {
            Entry::Current(current) => return current.existing_node().cloned(),
            Entry::Lazy(lazy) => match lazy.node() {
                Some(node) => return Some(Arc::clone(node)),
                None => {
                    let own = &mut lazy.own;
                    own.fired |= own
                        .deadline
                        .is_some_and(|deadline| deadline <= *now.get_or_insert_with(Instant::now));
                    if own.shielded {
                        return None;
                    }
                }
            },
        }
    }
    None
}

fn task_in(stack: &[Entry]) -> Option<TaskRef> {
    for entry in stack.iter().rev() {
        match entry {
            Entry::Current(current) => return current.task(),
            Entry::Lazy(lazy) => {
                if let Some(node) = lazy.node() {
                    return TaskRef::of_node(node);
                }
            }
        }
    }
    None
}

/// A task spawned into a group, as [`current_task`] finds it.
pub(crate) struct TaskRef {
    pub(crate) id: TaskId,
    pub(crate) name: Option<Arc<str>>,
    /// The node the task hangs under: its group's, or where a detached task was started.
    pub(crate) parent: Option<Arc<Node>>,
}

impl TaskRef {
    /// The task `node` runs in.
    fn of_node(node: &Node) -> Option<TaskRef> {
        let task = node.task_node()?;
        match task.kind() {
            NodeKind::Task { id, name } => Some(TaskRef {
                id: *id,
                name: name.clone(),
                parent: task.parent().cloned(),
            }),
            _ => None,
        }
    }
}

/// The task spawned into a group that the caller runs in; `None` outside such a task.
pub(crate) fn current_task() -> Option<TaskRef> {
    with_stack(task_in).flatten()
}

/// The node the calling code runs in; `None` outside every aio scope. Inside a lazy scope
/// this makes its node.
pub(crate) fn current() -> Option<Arc<Node>> {
    with_stack_mut(node_in).flatten()
}

/// Whether the caller's scope is cancelled while something in it is unwinding: an
/// `on_cancel` or a shield that the scope must not drop is alive in it.
pub(crate) fn is_unwinding() -> bool {
    with_stack(|stack| is_cancelled_in(stack) && is_pinned_in(stack)).unwrap_or(false)
}

/// Whether the calling code runs directly in `node`: false when it runs elsewhere, or
/// outside every aio scope. Never creates a node.
pub(crate) fn is_current(node: &Node) -> bool {
    with_stack(|stack| match stack.last() {
        Some(Entry::Current(current)) => current.is(node),
        Some(Entry::Lazy(lazy)) => lazy
            .node()
            .is_some_and(|current| std::ptr::eq(&**current, node)),
        None => false,
    })
    .unwrap_or(false)
}

/// Records, in the scope the caller runs in, whether a construct that just ended there
/// returned a cancellation (see [`Node::set_delivered`]).
pub(crate) fn set_delivered(delivered: bool) {
    with_stack_mut(|stack| set_delivered_in(stack, delivered));
}

/// Cancels every scope from the caller's up to the nearest shield whose deadline has
/// passed (see [`Node::fire_passed_deadlines`]).
pub(crate) fn fire_passed_deadlines() {
    if let Some(node) = with_stack_mut(fire_passed_deadlines_in).flatten() {
        node.fire_passed_deadlines();
    }
}

/// Runs `fut` with `node` as its current node.
pub(crate) fn in_node<F: Future>(node: Arc<Node>, fut: F) -> InNode<F> {
    InNode {
        current: Current::Node(node),
        fut,
    }
}

pin_project! {
    /// Future returned by [`in_node`].
    pub(crate) struct InNode<F> {
        current: Current,
        #[pin]
        fut: F,
    }
}

impl<F: Future> Future for InNode<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = enter(this.current.clone());
        this.fut.poll(cx)
    }
}

pin_project! {
    /// A future running inside a scope, dropped at its next suspension point once its owner
    /// wants it cancelled and nothing structured inside it is still winding down.
    pub(crate) struct Scoped<F> {
        scope: Current,
        started: bool,
        #[pin]
        fut: Option<F>,
    }
}

impl<F> Scoped<F> {
    /// Drops the wrapped future now, pinned or not.
    pub(crate) fn drop_future(self: Pin<&mut Self>) {
        self.project().fut.set(None);
    }

    /// Whether the wrapped future is still there: it has neither ended nor been dropped.
    pub(crate) fn holds_future(&self) -> bool {
        self.fut.is_some()
    }
}

impl<F: Future> Scoped<F> {
    pub(crate) fn new(scope: impl Into<Current>, fut: F) -> Self {
        Scoped {
            scope: scope.into(),
            started: false,
            fut: Some(fut),
        }
    }

    /// The wrapped future, if it is still there.
    pub(crate) fn into_inner(self) -> Option<F> {
        self.fut
    }

    /// Polls the wrapped future with its scope as the current one.
    ///
    /// `cancel_wanted` says whether the owner wants the future gone. A future that has not
    /// started is then dropped without ever running. A started one is polled once more and
    /// dropped if it suspends again with nothing structured inside it pinned: cancellation
    /// lands at its next suspension point, and an operation that completed before the
    /// cancellation arrived is not thrown away. Returns `Ready(None)` when it was dropped.
    ///
    /// Inlined into its caller, like [`poll_in_scope`]: nested scopes poll recursively, and
    /// each frame here would be on the stack once per level.
    #[inline(always)]
    pub(crate) fn poll_scoped(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        cancel_wanted: impl Fn() -> bool,
    ) -> Poll<Option<F::Output>> {
        let this = self.project();
        let scope = &*this.scope;
        let mut fut = this.fut;
        let Some(polled) = fut.as_mut().as_pin_mut() else {
            return Poll::Ready(None);
        };
        let poll = poll_in_scope(
            polled,
            this.started,
            || scope.clone(),
            || scope.is_pinned(),
            cx,
            cancel_wanted,
        );
        if poll.is_ready() {
            fut.set(None);
        }
        poll
    }
}

/// What [`Scoped::poll_scoped`] does, for a wrapper that keeps the parts itself: a group's
/// task keeps its scope in its cell, and its `started` flag there too, so that its Tokio
/// task stays small.
///
/// `scope` makes the scope to install for the poll; `is_pinned` says, after the poll,
/// whether something structured inside the future is still winding down. Once this returns
/// `Ready` the caller must drop the future without polling it again: `Ready(None)` means it
/// was cancelled.
#[inline(always)] // see `Scoped::poll_scoped`
pub(crate) fn poll_in_scope<F: Future>(
    fut: Pin<&mut F>,
    started: &mut bool,
    scope: impl FnOnce() -> Current,
    is_pinned: impl FnOnce() -> bool,
    cx: &mut Context<'_>,
    cancel_wanted: impl Fn() -> bool,
) -> Poll<Option<F::Output>> {
    if !*started {
        if cancel_wanted() {
            return Poll::Ready(None);
        }
        *started = true;
    }
    let entered = enter(scope());
    let poll = fut.poll(cx);
    drop(entered);
    match poll {
        Poll::Ready(output) => Poll::Ready(Some(output)),
        Poll::Pending if cancel_wanted() && !is_pinned() => Poll::Ready(None),
        Poll::Pending => Poll::Pending,
    }
}

/// Whether the scope the caller runs in has been cancelled.
///
/// Cancellation is level-triggered: once this returns `true` it keeps returning `true`.
/// Outside every aio scope, and inside a [`shield`](crate::shield), it is `false` unless
/// a scope inside the shield was cancelled.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_core::{TaskGroup, Cancelled};
///
/// TaskGroup::<Cancelled>::scope(|tg| async move {
///     assert!(!aio_core::is_cancelled());
///     tg.cancel();
///     assert!(aio_core::is_cancelled());
///     Ok(())
/// })
/// .await
/// .unwrap();
/// # }
/// ```
pub fn is_cancelled() -> bool {
    with_stack(is_cancelled_in).unwrap_or(false)
}

/// Waits until the scope the caller runs in is cancelled and returns why.
///
/// Outside every aio scope, and inside a [`shield`](crate::shield), this never completes.
/// See [`is_cancelled`].
///
/// # Cancel safety
///
/// Cancel safe: dropping the future only removes its registration.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_core::{BoxError, CancelReason, TaskGroup};
///
/// let watcher = TaskGroup::<BoxError>::scope(|tg| async move {
///     let watcher = tg.spawn(async { Ok(aio_core::cancelled().await) })?;
///     tokio::task::yield_now().await; // let the watcher start waiting
///     tg.cancel();
///     Ok(watcher)
/// })
/// .await
/// .unwrap();
/// assert_eq!(watcher.result().unwrap().reason(), &CancelReason::Explicit);
/// # }
/// ```
pub fn cancelled() -> Cancellation {
    Cancellation {
        registration: None,
        started: false,
    }
}

/// Returns `Err(Cancelled)` if the caller's scope is cancelled; otherwise yields to the
/// scheduler once and checks again.
///
/// Use it inside long computations that never `.await` anything else, so a cancelled scope
/// can stop them: `aio_core::checkpoint().await?`.
///
/// # Errors
///
/// [`Cancelled`] when the scope is cancelled, before or after the yield.
///
/// # Cancel safety
///
/// Cancel safe: it holds nothing.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), aio_core::Cancelled> {
/// let mut total = 0u64;
/// for i in 0..10_000u64 {
///     total += i;
///     if i % 1_000 == 0 {
///         aio_core::checkpoint().await?;
///     }
/// }
/// assert_eq!(total, 49_995_000);
/// # Ok(())
/// # }
/// ```
pub fn checkpoint() -> Checkpoint {
    Checkpoint { yielded: false }
}

/// The earliest deadline that applies to the caller: that of the innermost timeout or of any
/// timeout around it, up to the nearest [`shield`](crate::shield). Deadlines are inherited by
/// the tasks of every group opened inside a timeout.
///
/// Trio calls this `current_effective_deadline()`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let deadline = Instant::now() + Duration::from_secs(5);
/// let seen = aio_core::timeout_at(deadline, async { aio_core::current_deadline() }).await;
/// assert_eq!(seen, Ok(Some(deadline)));
/// assert_eq!(aio_core::current_deadline(), None);
/// # }
/// ```
pub fn current_deadline() -> Option<Instant> {
    with_stack(deadline_in).flatten()
}

/// Future returned by [`cancelled`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Cancellation {
    registration: Option<Registration>,
    started: bool,
}

impl std::fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancellation")
            .field("scope", &self.registration.as_ref().map(|r| r.node().id()))
            .finish()
    }
}

impl Future for Cancellation {
    type Output = Cancelled;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Cancelled> {
        if !self.started {
            self.started = true;
            self.registration = current().map(Registration::new);
        }
        let Some(registration) = self.registration.as_mut() else {
            return Poll::Pending;
        };
        let cancelled = match registration.node().cancellation() {
            Some(cancelled) => cancelled,
            None => {
                registration.register(cx.waker());
                match registration.node().cancellation() {
                    Some(cancelled) => cancelled,
                    None => return Poll::Pending,
                }
            }
        };
        registration.node().set_delivered(true);
        Poll::Ready(cancelled)
    }
}

/// Future returned by [`checkpoint`].
#[derive(Debug)]
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Checkpoint {
    yielded: bool,
}

impl Future for Checkpoint {
    type Output = Result<(), Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let cancelled = with_stack_mut(|stack| {
            let cancelled = cancellation_in(stack);
            if cancelled.is_some() {
                set_delivered_in(stack, true);
            }
            cancelled
        });
        if let Some(Some(cancelled)) = cancelled {
            return Poll::Ready(Err(cancelled));
        }
        if self.yielded {
            return Poll::Ready(Ok(()));
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}
