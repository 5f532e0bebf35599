//! A task's cell: what its group, its handle and its own scope share, however the task runs
//! (a Tokio task of a [`TaskGroup`](crate::TaskGroup), or a task that a
//! [`LocalGroup`](crate::LocalGroup)'s scope polls itself).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::task::AtomicWaker;
use tokio::time::Instant;

use super::GroupCore;
use super::handle::Ending;
use super::outcome::Outcome;
use crate::model::{AtomicBool, OnceLock, fence};
use crate::scope::{Node, NodeKind, TaskScope};
use crate::util::lock;
use crate::{CancelReason, Cancelled, TaskError, TaskId, TaskState};

/// The parts of a task the group needs without knowing its output type.
pub(crate) trait ChildRef: TaskScope {
    /// Wakes the child's task so it sees a cancellation.
    fn wake(&self);
    /// Takes the waker that [`wake`](Self::wake) would wake, for the caller to wake later:
    /// waking it then is the same as calling `wake` now. `None` if there is none to wake
    /// (not registered yet, or taken; or the task is registering a new one, which it then
    /// wakes itself).
    fn take_waker(&self) -> Option<Waker>;
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
pub(super) const SCHEDULED: u8 = 1;
pub(super) const RUNNING: u8 = 2;
pub(super) const SUSPENDED: u8 = 3;
pub(super) const FINISHED: u8 = 4;

fn decode(state: u8) -> TaskState {
    match state {
        QUEUED => TaskState::Queued,
        SCHEDULED => TaskState::Scheduled,
        RUNNING => TaskState::Running,
        SUSPENDED => TaskState::Suspended,
        _ => TaskState::Finished,
    }
}

/// The task's poll has been entered once ([`TaskInfo::own`]).
pub(super) const STARTED: u8 = 1;
/// The task left the limit's queue before it was given a slot ([`TaskInfo::own`]).
pub(super) const LEFT_QUEUE: u8 = 2;

const UNREGISTERED: usize = usize::MAX;

/// Who a task belongs to.
pub(crate) enum Owner {
    Group(Arc<GroupCore>),
    /// A detached shield started outside any group, under `parent`.
    Detached {
        parent: Option<Arc<Node>>,
    },
}

/// What a task's group, its handle and its scope know of it, whatever its output: its
/// identity, where it stands, and its cancellation.
pub(crate) struct TaskInfo {
    id: TaskId,
    name: Option<Arc<str>>,
    owner: Owner,
    /// The task runs in a node that the group's cancellation does not reach.
    shielded: bool,
    /// The task counts against its group's limit.
    limited: bool,
    spawned: Instant,
    state: AtomicU8,
    /// Flags that only the code driving the task reads and writes ([`STARTED`],
    /// [`LEFT_QUEUE`]). They live here rather than in the task's future so that a task with
    /// a small future fits in Tokio's smallest task size.
    own: AtomicU8,
    /// Our key in the group's registry.
    registry_key: AtomicUsize,
    /// The task's own node, created only if something inside the task needs it.
    node: OnceLock<Arc<Node>>,
    /// Set by [`TaskHandle::cancel`](crate::TaskHandle::cancel): the task alone is cancelled.
    cancel_requested: AtomicBool,
    /// Wakes the task, and only it: a Tokio task's waker, or a local task's place among its
    /// scope's tasks.
    task_waker: AtomicWaker,
    handle_waker: AtomicWaker,
}

impl TaskInfo {
    /// A new task; `limited` if it must wait for a slot of its group's limit before it
    /// starts.
    pub(crate) fn new(
        id: TaskId,
        name: Option<Arc<str>>,
        owner: Owner,
        shielded: bool,
        limited: bool,
    ) -> Self {
        TaskInfo {
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
            handle_waker: AtomicWaker::new(),
        }
    }

    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    pub(super) fn limited(&self) -> bool {
        self.limited
    }

    /// Remembers the task's key in its group's registry.
    pub(super) fn registered(&self, key: usize) {
        self.registry_key.store(key, Ordering::Release);
    }

    /// Takes the task's key out, for a task leaving the registry before it reports its end.
    pub(super) fn take_registry_key(&self) -> Option<usize> {
        Some(self.registry_key.swap(UNREGISTERED, Ordering::AcqRel)).filter(|&k| k != UNREGISTERED)
    }

    pub(super) fn registry_key(&self) -> Option<usize> {
        Some(self.registry_key.load(Ordering::Acquire)).filter(|&key| key != UNREGISTERED)
    }

    /// The limit had a free slot when the task was spawned.
    pub(super) fn admit_now(&self) {
        self.state.store(SCHEDULED, Ordering::Release);
    }

    pub(super) fn is_queued(&self) -> bool {
        self.state.load(Ordering::Acquire) == QUEUED
    }

    /// Leaves the limit's queue if the task is still waiting there, never to start. Returns
    /// whether the task has left the queue without a slot, now or before; `false` if a slot
    /// was handed over first.
    pub(super) fn leave_queue(&self) -> bool {
        let left = self.is_queued()
            && self
                .state
                .compare_exchange(QUEUED, FINISHED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if left {
            self.set_own(LEFT_QUEUE);
        }
        self.own(LEFT_QUEUE)
    }

    pub(super) fn set_state(&self, state: u8) {
        self.state.store(state, Ordering::Release);
    }

    // Only the code driving the task uses `own`, and it polls and drops the task in order.
    pub(super) fn own(&self, flag: u8) -> bool {
        self.own.load(Ordering::Relaxed) & flag != 0
    }

    pub(super) fn set_own(&self, flag: u8) {
        // One writer: a plain read and write will do, no locked read-modify-write.
        let own = self.own.load(Ordering::Relaxed);
        self.own.store(own | flag, Ordering::Relaxed);
    }

    /// Registers the waker that [`ChildRef::wake`] wakes.
    pub(super) fn register_task(&self, cx: &Context<'_>) {
        self.task_waker.register(cx.waker());
    }

    /// The node the task hangs under: its group's, or where a detached task was started.
    fn parent(&self) -> Option<&Arc<Node>> {
        match &self.owner {
            Owner::Group(group) => Some(group.node()),
            Owner::Detached { parent } => parent.as_ref(),
        }
    }

    pub(super) fn group(&self) -> Option<&GroupCore> {
        match &self.owner {
            Owner::Group(group) => Some(group),
            Owner::Detached { .. } => None,
        }
    }

    /// The reaper of the task's dropped group wants it gone.
    pub(super) fn is_forced(&self) -> bool {
        self.group().is_some_and(GroupCore::is_forced)
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
        // Pairs with the fence in `ChildCell::cancel`.
        fence(Ordering::SeqCst);
        if self.is_cancel_requested() {
            node.cancel(CancelReason::Explicit);
        }
        node
    }

    /// The cancellation in force, or the group's reason if the task was reached some other
    /// way.
    pub(super) fn cancellation_or_parent(&self) -> Cancelled {
        TaskScope::cancellation(self)
            .unwrap_or_else(|| Cancelled::new(CancelReason::ParentCancelled))
    }
}

impl TaskScope for TaskInfo {
    #[inline]
    fn node(&self) -> &Arc<Node> {
        self.own_node()
    }

    #[inline]
    fn id(&self) -> TaskId {
        self.id
    }

    #[inline]
    fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    #[inline]
    fn parent(&self) -> Option<&Arc<Node>> {
        TaskInfo::parent(self)
    }

    #[inline]
    fn created_node(&self) -> Option<&Arc<Node>> {
        self.node.get()
    }

    #[inline]
    fn is_shielded(&self) -> bool {
        self.shielded
    }

    // A task is cancelled when it was cancelled alone, or when the node it hangs under is,
    // unless it is shielded.
    #[inline]
    fn is_cancelled(&self) -> bool {
        self.is_cancel_requested()
            || !self.shielded && self.parent().is_some_and(|parent| parent.is_cancelled())
    }

    #[inline]
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

impl ChildRef for TaskInfo {
    #[inline]
    fn wake(&self) {
        self.task_waker.wake();
    }

    #[inline]
    fn take_waker(&self) -> Option<Waker> {
        self.task_waker.take()
    }

    #[inline]
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

    #[inline]
    fn state(&self) -> TaskState {
        decode(self.state.load(Ordering::Acquire))
    }

    #[inline]
    fn spawned(&self) -> Instant {
        self.spawned
    }
}

/// Where a cell keeps its [`TaskInfo`]. A Tokio task's cell holds it inline: one allocation
/// per task, which the registry and the task's scope point at. A local task's output may
/// borrow, so its cell cannot be handed to the registry; the info then has an allocation of
/// its own, which the registry and the scope share with the cell.
enum Info {
    Inline(TaskInfo),
    Shared(Arc<TaskInfo>),
}

enum Slot<T> {
    Running,
    /// The task's poll has seen how it ends; it reports once its future is dropped.
    /// `unwinding`: the thread was already panicking when the poll ended.
    Ending {
        outcome: Outcome<T>,
        unwinding: bool,
    },
    /// How the task ended. The error is not boxed: the slot is as large as `Ending` anyway,
    /// and a cancelled task then allocates nothing to report it.
    Done(Result<T, TaskError>),
    /// The result was taken; how the task ended stays known.
    Taken(Ending),
}

/// Shared between a task, its [`TaskHandle`](crate::TaskHandle) and its group: the task's
/// [`TaskInfo`] and the slot its result lands in.
pub(crate) struct ChildCell<T> {
    info: Info,
    slot: Mutex<Slot<T>>,
}

impl<T> ChildCell<T> {
    /// The cell of a task that runs as a Tokio task: the cell is its info's allocation.
    pub(crate) fn inline(info: TaskInfo) -> Self {
        ChildCell {
            info: Info::Inline(info),
            slot: Mutex::new(Slot::Running),
        }
    }

    /// The cell of a task whose info is shared with its group (a local task).
    pub(crate) fn shared(info: Arc<TaskInfo>) -> Self {
        ChildCell {
            info: Info::Shared(info),
            slot: Mutex::new(Slot::Running),
        }
    }

    pub(crate) fn info(&self) -> &TaskInfo {
        match &self.info {
            Info::Inline(info) => info,
            Info::Shared(info) => info,
        }
    }

    pub(crate) fn id(&self) -> TaskId {
        self.info().id
    }

    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.info().name.as_ref()
    }

    /// Stores how the task ended and wakes its handle.
    pub(super) fn complete(&self, result: Result<T, TaskError>) {
        *lock(&self.slot) = Slot::Done(result);
        self.info().handle_waker.wake();
    }

    pub(crate) fn is_finished(&self) -> bool {
        matches!(*lock(&self.slot), Slot::Done(_) | Slot::Taken(_))
    }

    /// Keeps how the task ended until its future has been dropped.
    pub(super) fn stash(&self, outcome: Outcome<T>) {
        *lock(&self.slot) = Slot::Ending {
            outcome,
            unwinding: std::thread::panicking(),
        };
    }

    /// Takes what [`stash`](Self::stash) kept, and whether the thread was panicking then;
    /// `None` if the task never ended by itself.
    pub(super) fn unstash(&self) -> Option<(Outcome<T>, bool)> {
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
                    Slot::Done(result) => Some(result),
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
        self.info().handle_waker.register(cx.waker());
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
        self.info().handle_waker.register(cx.waker());
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
        let info = self.info();
        if message.is_some() {
            // The message is kept by the task's node, so the node must exist.
            info.own_node().cancel_with(CancelReason::Explicit, message);
        }
        info.cancel_requested.store(true, Ordering::SeqCst);
        // Pairs with the fence in `TaskInfo::own_node`: either the node's creator sees the
        // request, or we see the node.
        fence(Ordering::SeqCst);
        if let Some(node) = info.node.get() {
            node.cancel(CancelReason::Explicit);
        }
        info.task_waker.wake();
        true
    }
}

// A Tokio task's cell is what the registry and the task's scope point at; it answers for
// its info.
impl<T: Send> TaskScope for ChildCell<T> {
    fn node(&self) -> &Arc<Node> {
        self.info().own_node()
    }

    fn id(&self) -> TaskId {
        self.info().id
    }

    fn name(&self) -> Option<&Arc<str>> {
        self.info().name.as_ref()
    }

    fn parent(&self) -> Option<&Arc<Node>> {
        self.info().parent()
    }

    fn created_node(&self) -> Option<&Arc<Node>> {
        self.info().node.get()
    }

    fn is_shielded(&self) -> bool {
        self.info().shielded
    }

    fn is_cancelled(&self) -> bool {
        TaskScope::is_cancelled(self.info())
    }

    fn cancellation(&self) -> Option<Cancelled> {
        TaskScope::cancellation(self.info())
    }
}

impl<T: Send> ChildRef for ChildCell<T> {
    fn wake(&self) {
        self.info().wake();
    }

    fn take_waker(&self) -> Option<Waker> {
        self.info().take_waker()
    }

    fn admit(&self) -> bool {
        self.info().admit()
    }

    fn state(&self) -> TaskState {
        self.info().state()
    }

    fn spawned(&self) -> Instant {
        self.info().spawned
    }
}

#[cfg(test)]
mod tests {
    use super::{Info, TaskInfo};

    /// A cell that shares its task's info costs a Tokio task's cell nothing: the choice
    /// between keeping the info inline and pointing at it fits in the info's spare bits.
    #[test]
    fn keeping_the_info_inline_or_shared_costs_no_space() {
        assert_eq!(size_of::<Info>(), size_of::<TaskInfo>());
    }

    /// A finished task's error waits in its slot unboxed, so that a cancelled task
    /// allocates nothing to report how it ended. That costs a small task's cell 8 bytes,
    /// which its allocation absorbs: with `Arc`'s counts the cell stays within the same
    /// 240-byte step of the system allocator (232 bytes and its 8-byte header).
    #[test]
    // Sizes are a 64-bit platform's; loom's flags and once-cell are bigger.
    #[cfg(all(target_pointer_width = "64", not(aio_loom)))]
    fn a_small_tasks_cell_stays_within_its_allocation_step() {
        assert!(
            size_of::<super::ChildCell<()>>() <= 216,
            "{}",
            size_of::<super::ChildCell<()>>()
        );
    }
}

/// Loom models of a cancel racing the first use of a task's node: the node is made on
/// first use and published through a once-cell, the request is a flag, and each side fences
/// between its write and its read of the other's (`TaskInfo::own_node`,
/// `ChildCell::cancel`). The task is a detached one: a group's would need its runtime.
#[cfg(all(test, aio_loom))]
mod models {
    use std::sync::Arc;

    use loom::thread;

    use super::{ChildCell, Owner, TaskInfo};
    use crate::model::harness::Parker;
    use crate::scope::{Node, NodeKind, TaskScope, Waiter};
    use crate::{CancelReason, TaskId};

    /// A task under a node of its own, in its cell.
    fn task() -> Arc<ChildCell<()>> {
        let parent = Node::new(NodeKind::OnCancel, None, false);
        let owner = Owner::Detached {
            parent: Some(parent),
        };
        let info = TaskInfo::new(TaskId::next(), None, owner, false, false);
        Arc::new(ChildCell::inline(info))
    }

    /// What a task does with its node: waits on it, as anything inside the task that waits
    /// for a cancellation does, and returns once the node is cancelled.
    fn wait_for_the_cancel(node: &Arc<Node>) {
        let (parker, waker) = Parker::new();
        let key = node.register(Waiter::Waker(waker));
        while !node.is_cancelled() {
            parker.park();
        }
        node.unregister(key);
    }

    #[test]
    fn a_cancel_racing_the_first_use_of_a_tasks_node_always_reaches_it() {
        loom::model(|| {
            let cell = task();
            let handle = thread::spawn({
                let cell = Arc::clone(&cell);
                move || assert!(cell.cancel(None))
            });
            // The task's first use of its node: a scope opened inside it, or a wait.
            let node = Arc::clone(TaskScope::node(&*cell));
            wait_for_the_cancel(&node);
            handle.join().unwrap();
            assert!(TaskScope::is_cancelled(&*cell));
            let created = cell.info().node.get().expect("the task made its node");
            assert!(Arc::ptr_eq(created, &node));
        });
    }

    #[test]
    fn a_cancel_with_a_message_racing_the_first_use_of_a_tasks_node_leaves_its_message() {
        loom::model(|| {
            let cell = task();
            // A message is kept by the node: both sides make it, if it is not there yet.
            let handle = thread::spawn({
                let cell = Arc::clone(&cell);
                move || assert!(cell.cancel(Some("stop".into())))
            });
            let node = Arc::clone(TaskScope::node(&*cell));
            wait_for_the_cancel(&node);
            handle.join().unwrap();
            let created = cell.info().node.get().expect("the task made its node");
            assert!(Arc::ptr_eq(created, &node), "the node was made twice");
            let cancelled = TaskScope::cancellation(&*cell).expect("the task is cancelled");
            assert_eq!(*cancelled.reason(), CancelReason::Explicit);
            assert_eq!(cancelled.message(), Some("stop"));
        });
    }
}
