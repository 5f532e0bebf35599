//! One task spawned into a group: the future that runs it and the cell its result lands in.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use super::GroupCore;
use crate::scope::{Current, Node, NodeKind, TaskScope, poll_in_scope};
use crate::task_handle::Ending;
use crate::util::lock;
use crate::{CancelError, CancelReason, Cancelled, TaskError, TaskId, TaskState};

/// How a child's output is read: a value for its handle, a cancellation, or a failure for
/// the group.
pub(crate) trait ChildOutput: Send + 'static {
    type Ok: Send + 'static;
    fn classify(self) -> Outcome<Self::Ok>;
}

pub(crate) enum Outcome<T> {
    Ok(T),
    Cancelled(Cancelled),
    Failed(Box<dyn Any + Send>),
    Panicked(Box<dyn Any + Send>),
    /// Dropped by the reaper or the runtime before it finished.
    Aborted,
}

impl<T: Send + 'static, E: CancelError + Send + 'static> ChildOutput for Result<T, E> {
    type Ok = T;

    fn classify(self) -> Outcome<T> {
        match self {
            Ok(value) => Outcome::Ok(value),
            Err(error) => match error.as_cancelled() {
                // A cancellation passed up with `?`: like `CancelledError`, it adds nothing.
                Some(cancelled) => Outcome::Cancelled(cancelled.clone()),
                None => Outcome::Failed(Box::new(error)),
            },
        }
    }
}

/// What a finished child tells its group beyond "done".
pub(crate) enum ChildEvent {
    Failed(Box<dyn Any + Send>),
    Panicked(Box<dyn Any + Send>),
}

/// The output of a task that cannot fail (a detached shield).
pub(crate) struct Plain<T>(pub(crate) T);

impl<T: Send + 'static> ChildOutput for Plain<T> {
    type Ok = T;

    fn classify(self) -> Outcome<T> {
        Outcome::Ok(self.0)
    }
}

/// The parts of a child the group needs without knowing its output type.
pub(crate) trait ChildRef: TaskScope {
    /// Wakes the child's task so it sees a cancellation.
    fn wake(&self);
    /// Lets a queued child start (the limit handed it a slot). Returns `false` if the child
    /// no longer wants it: it ended while queued.
    fn admit(&self) -> bool;
    /// What the task is doing, for the task tree.
    fn state(&self) -> TaskState;
    /// When the task was spawned.
    fn spawned(&self) -> Instant;
}

/// A task's lifecycle, as the task tree shows it.
pub(crate) const QUEUED: u8 = 0;
const SCHEDULED: u8 = 1;
const RUNNING: u8 = 2;
const SUSPENDED: u8 = 3;
const FINISHED: u8 = 4;

fn decode(state: u8) -> TaskState {
    match state {
        QUEUED => TaskState::Queued,
        SCHEDULED => TaskState::Scheduled,
        RUNNING => TaskState::Running,
        SUSPENDED => TaskState::Suspended,
        _ => TaskState::Finished,
    }
}

enum Slot<T> {
    Running,
    /// The task's poll has seen how it ends; it reports once its future is dropped.
    /// `unwinding`: the thread was already panicking when the poll ended.
    Ending {
        outcome: Outcome<T>,
        unwinding: bool,
    },
    /// How the task ended. The error is boxed: it is rare, and large next to most values.
    Done(Result<T, Box<TaskError>>),
    /// The result was taken; how the task ended stays known.
    Taken(Ending),
}

/// Who a task belongs to.
pub(crate) enum Owner {
    Group(Arc<GroupCore>),
    /// A detached shield started outside any group, under `parent`.
    Detached {
        parent: Option<Arc<Node>>,
    },
}

/// Shared between a running child, its [`TaskHandle`](crate::TaskHandle) and its group.
pub(crate) struct ChildCell<T> {
    id: TaskId,
    name: Option<Arc<str>>,
    owner: Owner,
    /// The task runs in a node that the group's cancellation does not reach.
    shielded: bool,
    /// The task counts against its group's limit.
    limited: bool,
    spawned: Instant,
    state: AtomicU8,
    /// Flags that only the task's own future reads and writes ([`STARTED`], [`LEFT_QUEUE`]).
    /// They live here rather than in the future so that a task with a small future fits in
    /// Tokio's smallest task size.
    own: AtomicU8,
    /// Our key in the group's registry.
    registry_key: AtomicUsize,
    /// The task's own node, created only if something inside the task needs it.
    node: OnceLock<Arc<Node>>,
    /// Set by [`TaskHandle::cancel`](crate::TaskHandle::cancel): the task alone is cancelled.
    cancel_requested: AtomicBool,
    task_waker: AtomicWaker,
    slot: Mutex<Slot<T>>,
    handle_waker: AtomicWaker,
}

const UNREGISTERED: usize = usize::MAX;

/// The future has been polled.
const STARTED: u8 = 1;
/// The task left the limit's queue before it was given a slot.
const LEFT_QUEUE: u8 = 2;

impl<T> ChildCell<T> {
    /// A cell for a new task; `limited` if the task must wait for a slot of its group's
    /// limit before it starts.
    pub(crate) fn new(
        id: TaskId,
        name: Option<Arc<str>>,
        owner: Owner,
        shielded: bool,
        limited: bool,
    ) -> Self {
        ChildCell {
            id,
            name,
            owner,
            shielded,
            limited,
            spawned: Instant::now(),
            state: AtomicU8::new(if limited { QUEUED } else { SCHEDULED }),
            own: AtomicU8::new(0),
            registry_key: AtomicUsize::new(UNREGISTERED),
            node: OnceLock::new(),
            cancel_requested: AtomicBool::new(false),
            task_waker: AtomicWaker::new(),
            slot: Mutex::new(Slot::Running),
            handle_waker: AtomicWaker::new(),
        }
    }

    /// Remembers the task's key in its group's registry.
    pub(crate) fn registered(&self, key: usize) {
        self.registry_key.store(key, Ordering::Release);
    }

    fn registry_key(&self) -> Option<usize> {
        Some(self.registry_key.load(Ordering::Acquire)).filter(|&key| key != UNREGISTERED)
    }

    /// The limit had a free slot when the task was spawned.
    pub(crate) fn admit_now(&self) {
        self.state.store(SCHEDULED, Ordering::Release);
    }

    fn is_queued(&self) -> bool {
        self.state.load(Ordering::Acquire) == QUEUED
    }

    /// Leaves the limit's queue without starting; `false` if a slot was handed over first.
    fn leave_queue(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, FINISHED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    fn set_state(&self, state: u8) {
        self.state.store(state, Ordering::Release);
    }

    // Only the task's future uses `own`, and Tokio orders its polls and its drop.
    fn own(&self, flag: u8) -> bool {
        self.own.load(Ordering::Relaxed) & flag != 0
    }

    fn set_own(&self, flag: u8) {
        // One writer: a plain read and write will do, no locked read-modify-write.
        let own = self.own.load(Ordering::Relaxed);
        self.own.store(own | flag, Ordering::Relaxed);
    }

    /// The node the task hangs under: its group's, or where a detached task was started.
    fn parent(&self) -> Option<&Arc<Node>> {
        match &self.owner {
            Owner::Group(group) => Some(group.node()),
            Owner::Detached { parent } => parent.as_ref(),
        }
    }

    fn group(&self) -> Option<&GroupCore> {
        match &self.owner {
            Owner::Group(group) => Some(group),
            Owner::Detached { .. } => None,
        }
    }

    /// The reaper of the task's dropped group wants it gone.
    fn is_forced(&self) -> bool {
        self.group().is_some_and(GroupCore::is_forced)
    }

    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    fn complete(&self, result: Result<T, TaskError>) {
        *lock(&self.slot) = Slot::Done(result.map_err(Box::new));
        self.handle_waker.wake();
    }

    pub(crate) fn is_finished(&self) -> bool {
        matches!(*lock(&self.slot), Slot::Done(_) | Slot::Taken(_))
    }

    /// Keeps how the task ended until its future has been dropped.
    fn stash(&self, outcome: Outcome<T>) {
        *lock(&self.slot) = Slot::Ending {
            outcome,
            unwinding: std::thread::panicking(),
        };
    }

    /// Takes what [`stash`](Self::stash) kept, and whether the thread was panicking then;
    /// `None` if the task never ended by itself.
    fn unstash(&self) -> Option<(Outcome<T>, bool)> {
        let mut slot = lock(&self.slot);
        match std::mem::replace(&mut *slot, Slot::Running) {
            Slot::Ending { outcome, unwinding } => Some((outcome, unwinding)),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// Takes the result if the task has finished; [`TaskError::Taken`] if it was taken
    /// before.
    pub(crate) fn take(&self) -> Option<Result<T, TaskError>> {
        let mut slot = lock(&self.slot);
        match &*slot {
            Slot::Done(result) => {
                let ending = Ending::of(result);
                match std::mem::replace(&mut *slot, Slot::Taken(ending)) {
                    Slot::Done(result) => Some(result.map_err(|e| *e)),
                    _ => unreachable!("the slot was just seen done"),
                }
            }
            Slot::Taken(_) => Some(Err(TaskError::Taken)),
            _ => None,
        }
    }

    /// Polls for the result, registering `cx` to be woken when it arrives.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
        if let Some(result) = self.take() {
            return Poll::Ready(result);
        }
        self.handle_waker.register(cx.waker());
        match self.take() {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }

    /// Polls for the task to finish, without taking its result.
    pub(crate) fn poll_finished(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.is_finished() {
            return Poll::Ready(());
        }
        self.handle_waker.register(cx.waker());
        if self.is_finished() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    /// Whether the task failed or panicked, once it has finished.
    pub(crate) fn has_failed(&self) -> bool {
        self.ending() == Some(Ending::Failed)
    }

    /// Whether the task ended cancelled, once it has finished.
    pub(crate) fn was_cancelled(&self) -> bool {
        self.ending() == Some(Ending::Cancelled)
    }

    fn ending(&self) -> Option<Ending> {
        match &*lock(&self.slot) {
            Slot::Done(result) => Some(Ending::of(result)),
            Slot::Taken(ending) => Some(*ending),
            _ => None,
        }
    }

    /// Cancels this task alone, with a message if given; `false` if it has already
    /// finished.
    pub(crate) fn cancel(&self, message: Option<Arc<str>>) -> bool {
        if self.is_finished() {
            return false;
        }
        if message.is_some() {
            // The message is kept by the task's node, so the node must exist.
            self.own_node().cancel_with(CancelReason::Explicit, message);
        }
        self.cancel_requested.store(true, Ordering::SeqCst);
        // Pairs with the fence in `TaskScope::node`: either the node's creator sees the
        // request, or we see the node.
        fence(Ordering::SeqCst);
        if let Some(node) = self.node.get() {
            node.cancel(CancelReason::Explicit);
        }
        self.task_waker.wake();
        true
    }

    fn is_cancel_requested(&self) -> bool {
        self.cancel_requested.load(Ordering::SeqCst)
    }

    /// The task's node, created on first use.
    fn own_node(&self) -> &Arc<Node> {
        if let Some(node) = self.node.get() {
            return node;
        }
        let node = self.node.get_or_init(|| {
            let kind = NodeKind::Task {
                id: self.id,
                name: self.name.clone(),
            };
            Node::new(kind, self.parent().cloned(), self.shielded)
        });
        // Pairs with the fence in `cancel`.
        fence(Ordering::SeqCst);
        if self.is_cancel_requested() {
            node.cancel(CancelReason::Explicit);
        }
        node
    }
}

impl<T: Send> TaskScope for ChildCell<T> {
    fn node(&self) -> &Arc<Node> {
        self.own_node()
    }

    fn id(&self) -> TaskId {
        self.id
    }

    fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    fn parent(&self) -> Option<&Arc<Node>> {
        ChildCell::parent(self)
    }

    fn created_node(&self) -> Option<&Arc<Node>> {
        self.node.get()
    }

    // A task is cancelled when it was cancelled alone, or when the node it hangs under is,
    // unless it is shielded.
    fn is_cancelled(&self) -> bool {
        self.is_cancel_requested()
            || !self.shielded && self.parent().is_some_and(|parent| parent.is_cancelled())
    }

    fn cancellation(&self) -> Option<Cancelled> {
        let outer = if self.shielded {
            None
        } else {
            self.parent().and_then(|parent| parent.cancellation())
        };
        outer.or_else(|| {
            self.is_cancel_requested().then(|| {
                // A request with a message left it in the node.
                self.node
                    .get()
                    .and_then(|node| node.direct_cancellation())
                    .unwrap_or_else(|| Cancelled::new(CancelReason::Explicit))
            })
        })
    }
}

impl<T: Send> ChildRef for ChildCell<T> {
    fn wake(&self) {
        self.task_waker.wake();
    }

    fn admit(&self) -> bool {
        let admitted = self
            .state
            .compare_exchange(QUEUED, SCHEDULED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if admitted {
            self.task_waker.wake();
        }
        admitted
    }

    fn state(&self) -> TaskState {
        decode(self.state.load(Ordering::Acquire))
    }

    fn spawned(&self) -> Instant {
        self.spawned
    }
}

pin_project! {
    /// The future a group hands to Tokio for each child: the user's future and the cell,
    /// and nothing else, so that a small task stays small (its flags are in the cell).
    ///
    /// The task reports how it ended from its [`Reporter`], which is dropped after the
    /// user's future: a group never sees a task finish whose future is still alive.
    /// Tokio drops a task's future as soon as its poll returns `Ready`, so the report comes
    /// right after the end.
    pub(crate) struct ChildTask<F: Future>
    where
        F::Output: ChildOutput,
    {
        #[pin]
        fut: F,
        reporter: Reporter<<F::Output as ChildOutput>::Ok>,
    }
}

/// Reports how its task ended when dropped, after the task's future.
struct Reporter<T: Send + 'static> {
    cell: Arc<ChildCell<T>>,
}

impl<T: Send + 'static> Drop for Reporter<T> {
    fn drop(&mut self) {
        let outcome = match self.cell.unstash() {
            // The thread started to panic since the poll ended: the future's destructor
            // panicked, after the task ended without a panic, and that is how it ends. The
            // payload goes to Tokio, which catches the panic; the panic hook has shown it.
            Some((Outcome::Ok(_) | Outcome::Cancelled(_) | Outcome::Failed(_), false))
                if std::thread::panicking() =>
            {
                Outcome::Panicked(Box::new("a task's future panicked while it was dropped"))
            }
            Some((outcome, _)) => outcome,
            // The runtime dropped the task before it finished (shutdown).
            None => Outcome::Aborted,
        };
        end(&self.cell, outcome);
    }
}

impl<F: Future + Send + 'static> ChildTask<F>
where
    F::Output: ChildOutput,
{
    pub(crate) fn new(cell: Arc<ChildCell<<F::Output as ChildOutput>::Ok>>, fut: F) -> Self {
        ChildTask {
            fut,
            reporter: Reporter { cell },
        }
    }
}

impl<F: Future> Future for ChildTask<F>
where
    F::Output: ChildOutput,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let cell = &this.reporter.cell;
        cell.task_waker.register(cx.waker());
        let outcome = 'outcome: {
            if cell.is_forced() {
                break 'outcome Outcome::Aborted;
            }
            if cell.is_queued() {
                // Waiting for a slot of the group's limit. The queued tasks of a cancelled
                // group never start; one that got a slot at the same moment starts
                // cancelled, which drops it before it runs.
                if !cell.is_cancelled() {
                    return Poll::Pending;
                }
                if leave_queue(cell) {
                    break 'outcome Outcome::Cancelled(cancellation(cell));
                }
            }
            cell.set_state(RUNNING);
            let mut started = cell.own(STARTED);
            let polled = catch_unwind(AssertUnwindSafe(|| {
                poll_in_scope(
                    this.fut,
                    &mut started,
                    || Current::Task(Arc::clone(cell) as Arc<dyn TaskScope>),
                    || cell.created_node().is_some_and(|node| node.is_pinned()),
                    cx,
                    || cell.is_cancelled(),
                )
            }));
            if started {
                cell.set_own(STARTED);
            }
            match polled {
                Ok(Poll::Pending) => {
                    cell.set_state(SUSPENDED);
                    return Poll::Pending;
                }
                Ok(Poll::Ready(Some(output))) => output.classify(),
                Ok(Poll::Ready(None)) => Outcome::Cancelled(cancellation(cell)),
                Err(panic) => Outcome::Panicked(panic),
            }
        };
        // Tokio drops the future now, then the reporter, which reports the outcome.
        cell.stash(outcome);
        Poll::Ready(())
    }
}

/// Reports how the task ended, once: it leaves the limit's queue if it is still in it, and
/// gives back its slot of the limit if it held one.
fn end<T: Send + 'static>(cell: &Arc<ChildCell<T>>, outcome: Outcome<T>) {
    leave_queue(cell);
    finish(cell, cell.limited && !cell.own(LEFT_QUEUE), outcome);
}

/// Leaves the limit's queue if the task is still waiting there. Returns whether it has left
/// the queue without a slot.
fn leave_queue<T>(cell: &ChildCell<T>) -> bool {
    if cell.is_queued() && cell.leave_queue() {
        cell.set_own(LEFT_QUEUE);
    }
    cell.own(LEFT_QUEUE)
}

fn cancellation<T: Send>(cell: &ChildCell<T>) -> Cancelled {
    cell.cancellation()
        .unwrap_or_else(|| Cancelled::new(CancelReason::ParentCancelled))
}

fn finish<T: Send + 'static>(cell: &Arc<ChildCell<T>>, holds_slot: bool, outcome: Outcome<T>) {
    cell.set_state(FINISHED);
    if let Some(node) = cell.created_node() {
        node.detach();
    }
    // What awaiting a failed task means for the awaiter: its group is cancelled.
    let failure = || {
        Cancelled::new(CancelReason::sibling_failed(
            Some(cell.id()),
            cell.name().cloned(),
        ))
    };
    let (result, event) = match outcome {
        Outcome::Ok(value) => (Ok(value), None),
        Outcome::Cancelled(cancelled) => (Err(TaskError::Cancelled(cancelled)), None),
        Outcome::Aborted => (Err(TaskError::Aborted), None),
        Outcome::Failed(error) => (
            Err(TaskError::Failed(failure())),
            Some(ChildEvent::Failed(error)),
        ),
        Outcome::Panicked(panic) => (
            Err(TaskError::Panicked(failure())),
            Some(ChildEvent::Panicked(panic)),
        ),
    };
    let cancelled = matches!(result, Err(TaskError::Cancelled(_)));
    match (cell.group(), event) {
        (Some(group), Some(event)) => group.child_failed(cell.id(), cell.name(), event),
        (Some(group), None) if cancelled => group.child_cancelled(cell.id(), cell.name()),
        (None, Some(ChildEvent::Panicked(_))) => {
            tracing::error!(task.id = %cell.id(), "detached task panicked outside any task group");
        }
        _ => {}
    }
    cell.complete(result);
    if let Some(group) = cell.group() {
        // Before `child_done`: once the last task is done the group may finalize.
        group.bury(cell.registry_key());
        group.child_done(holds_slot);
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::ChildTask;
    use crate::Cancelled;

    fn size_of_task<F: Future<Output = Result<u64, Cancelled>>>(_: &F) -> usize {
        size_of::<ChildTask<F>>()
    }

    /// A group's task adds to the user's future only its cell pointer: the flags, the
    /// scope and the outcome live in the cell. Tokio sizes tasks in steps of 128 bytes
    /// (x86_64), so every byte here can push a task into the next step.
    #[test]
    fn a_child_task_is_its_future_plus_one_word() {
        let i = 7_u64;
        let fut = async move { Ok(i) };
        assert_eq!(size_of_task(&fut), size_of_val(&fut) + size_of::<usize>());
    }
}
