//! The cancel-scope tree.
//!
//! Every task group, shield, `on_cancel`, and every task or timeout that something needs a
//! node for, owns one [`Node`]. A node knows its parent, carries a sticky `cancelled` flag
//! with a reason, and keeps a list of waiters to wake when it, or any ancestor up to the
//! nearest shield, is cancelled.
//!
//! Cancellation is level-triggered. Wake-ups are *pushed*: a node links itself into its
//! parent's waiter list the first time something waits on it (a group's node at once), and
//! cancelling a node wakes its waiters, linked child nodes included, recursively; a linked
//! node that is reached this way also records that a node above it is cancelled. So the
//! question "am I cancelled?" is answered at the nearest node that is linked, shielded or
//! outermost, whatever the depth of the tree: the walk up stops there. A node nobody waits
//! on is not linked and never touches its parent's lock, which keeps short-lived scopes
//! cheap; a node created under a cancelled one starts cancelled without anyone telling it,
//! because its walk reaches that node.
//!
//! Nodes link top-down: a node links into its parent only once the parent can answer for
//! everything above it, and it reads the parent's state after it is in the parent's list.
//! A cancellation above therefore either finds it in the list or is seen by that read. And
//! a cancellation counts itself in a global count before it sets its flag, and out once it
//! has marked every linked node below: while the count is not zero, the walk goes past
//! linked nodes to the top. So no one who has seen a node cancelled, or was woken by its
//! cancellation, finds a node below it that is not.
//!
//! Lock order is always child before parent; no code path holds two node locks otherwise,
//! and wakers are called with no lock held.

use std::any::Any;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::Waker;

use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use crate::model::{AtomicBool, AtomicUsize, Mutex};
use crate::slab::Slab;
use crate::util::lock;
use crate::{CancelReason, Cancelled, ScopeId, TaskId};

/// What owns a node. Decides how it reports itself and where a task's pins stop.
pub(crate) enum NodeKind {
    /// The scope [`run`](crate::run) opens around the main future.
    Root { tracker: TaskTracker },
    /// A task group; the group keeps the strong reference.
    Group { group: Weak<dyn GroupScope> },
    /// A task spawned into a group: the root of that task's own nodes.
    Task { id: TaskId, name: Option<Arc<str>> },
    /// A [`CancelScope`](crate::CancelScope) or a timeout, which is a cancel scope with a
    /// deadline.
    Scope {
        /// Where the future that owns the scope is in its life; only that future writes it.
        phase: AtomicU8,
        /// Bumped by every move of the deadline so the owner knows to reset its timer.
        generation: AtomicU64,
    },
    /// A shield: cancellation from above does not reach through it.
    Shield,
    /// The work of an [`on_cancel`](crate::on_cancel).
    OnCancel,
}

/// Something a cancelled node wakes.
#[derive(Clone)]
pub(crate) enum Waiter {
    Waker(Waker),
    Notify(Arc<dyn Notify>),
    /// A linked child node.
    Node(Arc<Node>),
}

impl Waiter {
    fn wake(self) {
        match self {
            Waiter::Waker(waker) => waker.wake(),
            Waiter::Notify(target) => target.notify(),
            Waiter::Node(node) => {
                MARKING.fetch_add(1, Ordering::SeqCst);
                wake_after_cancel(vec![Waiter::Node(node)]);
            }
        }
    }
}

/// How many cancellations are marking the linked nodes below them right now. While one is,
/// a linked node's flags may not show it yet although the cancelled node's flag is set, so
/// [`Node::is_cancelled`] walks on past linked nodes instead of trusting them. Written only
/// by cancellations; read, almost always as zero, by every question.
#[cfg(not(aio_loom))]
static MARKING: AtomicUsize = AtomicUsize::new(0);
#[cfg(aio_loom)]
loom::lazy_static! {
    static ref MARKING: AtomicUsize = AtomicUsize::new(0);
}

/// Wakes the waiters of a node that was just cancelled, and everything linked below it.
///
/// Every linked node below is first marked cancelled from above, then everything is woken:
/// whatever a wake-up runs finds the whole subtree cancelled. Marking a node sets its flag
/// before its waiter list is collected (see [`Node::link`]). Iterative, because the tree
/// can be as deep as a chain of ten thousand groups. The caller counted itself in
/// [`MARKING`] before it set the cancelled node's flag; this counts it out once every node
/// below is marked, and before anything is woken.
fn wake_after_cancel(waiters: Vec<Waiter>) {
    let mut below: Vec<Arc<Node>> = Vec::new();
    let mut wake: Vec<Waiter> = Vec::with_capacity(waiters.len());
    let mut sort = |waiter: Waiter, below: &mut Vec<Arc<Node>>| match waiter {
        Waiter::Node(node) => below.push(node),
        other => wake.push(other),
    };
    for waiter in waiters {
        sort(waiter, &mut below);
    }
    while let Some(node) = below.pop() {
        // Marked already: by the cancellation of a node between it and us, whose wake-ups
        // cover what is below it, or when it was linked, before anything below it was.
        if node.cancelled_above.swap(true, Ordering::SeqCst) {
            continue;
        }
        let waiters: Vec<Waiter> = lock(&node.state).waiters.iter().cloned().collect();
        for waiter in waiters {
            sort(waiter, &mut below);
        }
    }
    MARKING.fetch_sub(1, Ordering::SeqCst);
    wake.into_iter().for_each(Waiter::wake);
}

/// The task group that owns a group's node, as the scope tree knows it: the tree is the
/// bottom layer, and the groups built on it stay behind this trait, as tasks stay behind
/// [`TaskScope`](super::TaskScope).
pub(crate) trait GroupScope: Send + Sync {
    /// The tracker of the [`run`](crate::run) scope the group was opened under, if any.
    fn tracker(&self) -> Option<&TaskTracker>;
    /// The group's name, if it was given one.
    fn name(&self) -> Option<&Arc<str>>;
    /// The group, for the module that made it to downcast.
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

/// A waiter that fans the wake-up out further (a task group).
pub(crate) trait Notify: Send + Sync {
    fn notify(&self);
}

/// Why a node was cancelled. A message only comes with an explicit request, so it takes the
/// reason's place rather than room of its own in every node.
enum Why {
    Reason(CancelReason),
    /// `cancel_with(message)`: [`CancelReason::Explicit`] with a message.
    Message(Arc<str>),
}

const NOT_LINKED: usize = usize::MAX;

/// Where the future that owns a [`NodeKind::Scope`] is in its life ([`Node::phase`]): not
/// polled yet.
pub(crate) const CREATED: u8 = 0;
/// The future runs.
pub(crate) const ACTIVE: u8 = 1;
/// The future returned its wrapped future's output, or was dropped.
pub(crate) const FINISHED: u8 = 2;
/// The future returned because the scope's own cancellation stopped the wrapped future.
pub(crate) const CAUGHT: u8 = 3;

struct NodeState {
    deadline: Option<Instant>,
    /// The future that owns a timeout node, woken when the deadline is moved.
    owner: Option<Waker>,
    waiters: Slab<Waiter>,
    /// Our key in the parent's waiter list while linked, else [`NOT_LINKED`].
    link: usize,
    /// For a task's or a group's node: the groups opened in it, for the task tree.
    groups: Slab<Weak<dyn GroupScope>>,
}

pub(crate) struct Node {
    id: ScopeId,
    kind: NodeKind,
    shielded: bool,
    parent: OnceLock<Option<Arc<Node>>>,
    cancelled: AtomicBool,
    /// A node above this one, up to the nearest shield, is cancelled, and the cancellation
    /// was pushed here (or seen when the node was linked). Sticky, like `cancelled`.
    cancelled_above: AtomicBool,
    /// In the parent's waiter list: `cancelled_above` is kept up to date.
    linked: AtomicBool,
    /// Structured constructs inside this node, in this task, that are still winding down.
    pins: AtomicU32,
    /// Whether the last construct that ended in this node returned a cancellation (see
    /// [`Node::set_delivered`]).
    delivered: AtomicBool,
    /// Set once, before `cancelled`: every task of a cancelled group reads it as it ends,
    /// so it is read without a lock.
    why: OnceLock<Why>,
    state: Mutex<NodeState>,
}

impl Node {
    /// A node whose parent is known now.
    pub(crate) fn new(kind: NodeKind, parent: Option<Arc<Node>>, shielded: bool) -> Arc<Node> {
        Arc::new(Node::with_parent(kind, OnceLock::from(parent), shielded))
    }

    /// [`new`](Self::new), with a first deadline.
    pub(crate) fn new_with_deadline(
        kind: NodeKind,
        parent: Option<Arc<Node>>,
        shielded: bool,
        deadline: Option<Instant>,
    ) -> Arc<Node> {
        Arc::new(Node::with_parent(kind, OnceLock::from(parent), shielded).with_deadline(deadline))
    }

    /// A node whose parent is bound later, when the future that owns it is first polled.
    pub(crate) fn unbound(kind: NodeKind, shielded: bool) -> Node {
        Node::with_parent(kind, OnceLock::new(), shielded)
    }

    fn with_parent(kind: NodeKind, parent: OnceLock<Option<Arc<Node>>>, shielded: bool) -> Node {
        Node {
            id: ScopeId::next(),
            kind,
            shielded,
            parent,
            cancelled: AtomicBool::new(false),
            cancelled_above: AtomicBool::new(false),
            linked: AtomicBool::new(false),
            pins: AtomicU32::new(0),
            delivered: AtomicBool::new(false),
            why: OnceLock::new(),
            state: Mutex::new(NodeState {
                deadline: None,
                owner: None,
                waiters: Slab::new(),
                link: NOT_LINKED,
                groups: Slab::new(),
            }),
        }
    }

    /// Sets the first deadline of a node that nobody shares yet.
    pub(crate) fn with_deadline(mut self, deadline: Option<Instant>) -> Node {
        self.state
            .get_mut()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .deadline = deadline;
        self
    }

    /// Sets the parent; later calls are ignored.
    pub(crate) fn bind(&self, parent: Option<Arc<Node>>) {
        let _ = self.parent.set(parent);
    }

    /// Whether the parent has been set, to a node or to none.
    pub(crate) fn is_bound(&self) -> bool {
        self.parent.get().is_some()
    }

    fn phase_cell(&self) -> &AtomicU8 {
        match &self.kind {
            NodeKind::Scope { phase, .. } => phase,
            _ => unreachable!("only a scope's future and handles ask for its phase"),
        }
    }

    /// Where the future that owns this scope node is in its life: [`CREATED`], [`ACTIVE`],
    /// [`FINISHED`] or [`CAUGHT`].
    pub(crate) fn phase(&self) -> u8 {
        self.phase_cell().load(Ordering::Acquire)
    }

    /// Only the future that owns the scope writes its phase.
    pub(crate) fn set_phase(&self, phase: u8) {
        self.phase_cell().store(phase, Ordering::Release);
    }

    /// Whether the future that owns this scope node has returned (or was dropped).
    pub(crate) fn is_over(&self) -> bool {
        matches!(self.phase(), FINISHED | CAUGHT)
    }

    /// The future that owns this scope node is gone without having returned.
    pub(crate) fn finish(&self) {
        if matches!(self.phase(), CREATED | ACTIVE) {
            self.set_phase(FINISHED);
        }
    }

    /// Bumped by every move of the deadline, so the owner knows to reset its timer.
    pub(crate) fn generation(&self) -> u64 {
        match &self.kind {
            NodeKind::Scope { generation, .. } => generation.load(Ordering::Acquire),
            _ => unreachable!("only a scope's future asks for its deadline's generation"),
        }
    }

    pub(crate) fn parent(&self) -> Option<&Arc<Node>> {
        self.parent.get().and_then(Option::as_ref)
    }

    pub(crate) fn id(&self) -> ScopeId {
        self.id
    }

    pub(crate) fn kind(&self) -> &NodeKind {
        &self.kind
    }

    /// Whether cancellation from outside stops at this node.
    pub(crate) fn is_shielded(&self) -> bool {
        self.shielded
    }

    /// Whether this node is the outermost node of a task; pins never cross it.
    fn is_task_root(&self) -> bool {
        matches!(self.kind, NodeKind::Task { .. } | NodeKind::Root { .. })
    }

    /// Whether the node counts as a scope of its own when naming a cancel reason: a task or an
    /// `on_cancel` only belong to the scope around them.
    fn is_scope(&self) -> bool {
        !matches!(self.kind, NodeKind::Task { .. } | NodeKind::OnCancel)
    }

    /// The node, then its ancestors up to and including the nearest shield.
    fn chain(&self) -> impl Iterator<Item = &Node> {
        let mut next = Some(self);
        std::iter::from_fn(move || {
            let node = next?;
            next = if node.shielded {
                None
            } else {
                node.parent().map(|p| &**p)
            };
            Some(node)
        })
    }

    /// The node, then its ancestors in the same task.
    fn task_chain(&self) -> impl Iterator<Item = &Node> {
        let mut next = Some(self);
        std::iter::from_fn(move || {
            let node = next?;
            next = if node.is_task_root() {
                None
            } else {
                node.parent().map(|p| &**p)
            };
            Some(node)
        })
    }

    /// The node, then all its ancestors.
    fn ancestry(&self) -> impl Iterator<Item = &Node> {
        std::iter::successors(Some(self), |node| node.parent().map(|p| &**p))
    }

    /// Cancelled directly or through an ancestor (shields stop the search). The walk stops
    /// at the first linked node, which knows about everything above it: O(1) at any depth
    /// below a group, whose node is always linked. While a cancellation is still marking
    /// the nodes below it, the walk goes on to the top instead (see [`MARKING`]): whoever
    /// has seen a node cancelled never sees a node below it that is not.
    pub(crate) fn is_cancelled(&self) -> bool {
        for node in self.chain() {
            // `linked` first: once it reads true, the flags it was published after are seen.
            let linked = node.linked.load(Ordering::SeqCst);
            if node.flags() {
                return true;
            }
            // No cancellation is marking: the flags, read again after that, answer for
            // everything above. (Read before the count fell to zero, they might not show a
            // mark that was made before it did.)
            if linked && MARKING.load(Ordering::SeqCst) == 0 {
                return node.flags();
            }
        }
        false
    }

    /// This node's own flags: cancelled directly, or marked by a cancellation above.
    fn flags(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst) || self.cancelled_above.load(Ordering::SeqCst)
    }

    /// Cancelled by a request made on this very node.
    pub(crate) fn is_cancelled_directly(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// The cancellation in force here, if any.
    pub(crate) fn cancellation(&self) -> Option<Cancelled> {
        if !self.is_cancelled() {
            return None;
        }
        // The reason is "ours" when the cancelled node is the nearest scope around us;
        // once the walk has passed a scope, it is inherited from further out.
        let mut passed_scope = false;
        for node in self.chain() {
            if let Some(cancelled) = node.direct_cancellation() {
                return Some(if passed_scope {
                    cancelled.into_inherited()
                } else {
                    cancelled
                });
            }
            passed_scope |= node.is_scope();
        }
        None
    }

    /// The cancellation requested on this very node, if any.
    pub(crate) fn direct_cancellation(&self) -> Option<Cancelled> {
        if !self.cancelled.load(Ordering::Acquire) {
            return None;
        }
        Some(match self.why.get() {
            Some(Why::Reason(reason)) => Cancelled::new(reason.clone()),
            Some(Why::Message(message)) => {
                Cancelled::new(CancelReason::Explicit).with_message(Some(Arc::clone(message)))
            }
            None => Cancelled::new(CancelReason::Explicit),
        })
    }

    /// Whether a scope around this one is cancelled and its cancellation reaches in here.
    pub(crate) fn parent_cancelled(&self) -> bool {
        !self.shielded && self.parent().is_some_and(|parent| parent.is_cancelled())
    }

    /// Cancels this node and everything under it that is not shielded. The first reason
    /// sticks; returns whether this call was the one that cancelled.
    pub(crate) fn cancel(&self, reason: CancelReason) -> bool {
        self.cancel_with(reason, None)
    }

    /// Like [`cancel`](Self::cancel), with a message for the [`Cancelled`] it delivers.
    pub(crate) fn cancel_with(&self, reason: CancelReason, message: Option<Arc<str>>) -> bool {
        let waiters = {
            let mut state = lock(&self.state);
            if self.cancelled.load(Ordering::Relaxed) {
                return false;
            }
            // Counted in before the flag is set: see `MARKING`.
            MARKING.fetch_add(1, Ordering::SeqCst);
            // The first cancellation is the only one to get here, under the lock.
            let _ = self.why.set(match message {
                Some(message) => Why::Message(message),
                None => Why::Reason(reason),
            });
            self.cancelled.store(true, Ordering::SeqCst);
            let mut waiters: Vec<Waiter> = state.waiters.iter().cloned().collect();
            waiters.extend(state.owner.take().map(Waiter::Waker));
            waiters
        };
        wake_after_cancel(waiters);
        true
    }

    /// Adds a waiter, links the node into the tree so ancestors can reach it, and returns
    /// the key for [`unregister`](Self::unregister). Check [`is_cancelled`](Self::is_cancelled)
    /// *after* registering to close the race with a concurrent cancel.
    pub(crate) fn register(self: &Arc<Self>, waiter: Waiter) -> usize {
        let key = lock(&self.state).waiters.insert(waiter);
        self.ensure_linked();
        key
    }

    pub(crate) fn update_waker(&self, key: usize, waker: &Waker) {
        if let Some(slot) = lock(&self.state).waiters.get_mut(key) {
            *slot = Waiter::Waker(waker.clone());
        }
    }

    pub(crate) fn unregister(&self, key: usize) {
        let removed = lock(&self.state).waiters.remove(key);
        drop(removed);
    }

    /// Links this node, and its ancestors, into their parents' waiter lists, stopping at a
    /// shield, at a node with no parent, or at a node that is already linked. Outermost
    /// first, so that each node links into a parent that answers for everything above it.
    pub(crate) fn ensure_linked(self: &Arc<Self>) {
        if self.answers_for_above() {
            return;
        }
        // Usually the parent answers already; else link the unlinked ancestors first.
        let mut unlinked = vec![];
        let mut next = self.parent();
        while let Some(node) = next.filter(|node| !node.answers_for_above()) {
            unlinked.push(Arc::clone(node));
            next = node.parent();
        }
        for node in unlinked.iter().rev() {
            node.link();
        }
        self.link();
    }

    /// Whether this node's own flags tell whether it is cancelled: it is linked, shielded,
    /// or has no parent.
    fn answers_for_above(&self) -> bool {
        self.shielded || self.linked.load(Ordering::Acquire) || self.parent().is_none()
    }

    /// Links this node into its parent's waiter list; the parent answers for above it.
    fn link(self: &Arc<Self>) {
        let Some(parent) = self.parent() else {
            return;
        };
        let mut state = lock(&self.state);
        if state.link != NOT_LINKED || self.shielded {
            return;
        }
        state.link = lock(&parent.state)
            .waiters
            .insert(Waiter::Node(Arc::clone(self)));
        // A cancellation above that came before we were in the list: its flag was set
        // before it took the parent's lock to collect the list, so we see it here. One that
        // comes later finds us in the list.
        if parent.is_cancelled() {
            self.cancelled_above.store(true, Ordering::SeqCst);
        }
        // Only now do our flags answer for the parent's.
        self.linked.store(true, Ordering::SeqCst);
    }

    /// Unlinks the node from its parent. Called by the node's owner when it is done.
    pub(crate) fn detach(&self) {
        if !self.linked.load(Ordering::Acquire) {
            return;
        }
        let key = {
            let mut state = lock(&self.state);
            self.linked.store(false, Ordering::Release);
            std::mem::replace(&mut state.link, NOT_LINKED)
        };
        if key == NOT_LINKED {
            return;
        }
        if let Some(parent) = self.parent() {
            let removed = lock(&parent.state).waiters.remove(key);
            drop(removed);
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        lock(&self.state).deadline
    }

    /// Moves the deadline and wakes the owner so it resets its timer.
    pub(crate) fn set_deadline(&self, deadline: Option<Instant>) {
        let owner = {
            let mut state = lock(&self.state);
            state.deadline = deadline;
            if let NodeKind::Scope { generation, .. } = &self.kind {
                generation.fetch_add(1, Ordering::Release);
            }
            state.owner.take()
        };
        if let Some(owner) = owner {
            owner.wake();
        }
    }

    /// Remembers the waker of the future that owns this node.
    pub(crate) fn set_owner(&self, waker: &Waker) {
        let mut state = lock(&self.state);
        match &state.owner {
            Some(owner) if owner.will_wake(waker) => {}
            _ => state.owner = Some(waker.clone()),
        }
    }

    /// Lists a group opened in this task's or group's node, for the task tree; the key
    /// takes it off again.
    pub(crate) fn list_group(&self, group: Weak<dyn GroupScope>) -> usize {
        lock(&self.state).groups.insert(group)
    }

    pub(crate) fn unlist_group(&self, key: usize) {
        let removed = lock(&self.state).groups.remove(key);
        drop(removed);
    }

    /// The live groups listed in this node, in no particular order.
    pub(crate) fn listed_groups(&self) -> Vec<Arc<dyn GroupScope>> {
        lock(&self.state)
            .groups
            .iter()
            .filter_map(Weak::upgrade)
            .collect()
    }

    /// The earliest deadline in force here: ours or an ancestor's, up to the nearest shield.
    pub(crate) fn effective_deadline(&self) -> Option<Instant> {
        self.chain().filter_map(Node::deadline).min()
    }

    pub(crate) fn is_pinned(&self) -> bool {
        self.pins.load(Ordering::Relaxed) > 0
    }

    /// Whether the last construct that ended in this node returned a cancellation.
    pub(crate) fn delivered(&self) -> bool {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Records whether a construct that just ended in this node (a group, a timeout, an
    /// `on_cancel`, a `checkpoint`) returned a cancellation.
    ///
    /// A scope whose own cancellation fired uses this when the future it wraps ends: that
    /// future's output is a cancellation (so the scope reports that it stopped the future)
    /// exactly when the last construct that ended inside it returned one and the future
    /// passed it on. Only the task that runs in the node writes it.
    pub(crate) fn set_delivered(&self, delivered: bool) {
        // Tasks of a group read its node's line on every poll: write only on a change.
        if self.delivered.load(Ordering::Relaxed) != delivered {
            self.delivered.store(delivered, Ordering::Relaxed);
        }
    }

    /// Cancels every scope from this node up to the nearest shield whose deadline has passed,
    /// even if the future that owns it has not been polled since: of scopes whose deadlines
    /// pass together, the outermost one reports, whichever task runs first. A scope that
    /// has returned (left behind by a future moved elsewhere) is not fired: its outcome is
    /// settled.
    pub(crate) fn fire_passed_deadlines(&self) {
        // The clock is read only if a scope with a deadline is found: most chains have none.
        let mut now = None;
        for node in self.chain() {
            if matches!(node.kind, NodeKind::Scope { .. })
                && !node.is_cancelled_directly()
                && node
                    .deadline()
                    .is_some_and(|deadline| deadline <= *now.get_or_insert_with(Instant::now))
                && !node.is_over()
            {
                node.cancel(CancelReason::Deadline);
            }
        }
    }

    /// The node of the task this node runs in, if that is a task spawned into a group.
    pub(crate) fn task_node(&self) -> Option<&Node> {
        self.ancestry()
            .find(|node| matches!(node.kind, NodeKind::Task { .. }))
    }

    /// The tracker of the [`run`](crate::run) scope this node lives under, if any. A group
    /// keeps the one it was opened under, so the walk stops at the nearest group.
    pub(crate) fn root_tracker(&self) -> Option<TaskTracker> {
        self.ancestry()
            .find_map(|node| match &node.kind {
                NodeKind::Root { tracker } => Some(Some(tracker.clone())),
                NodeKind::Group { group } => group.upgrade().map(|group| group.tracker().cloned()),
                _ => None,
            })
            .flatten()
    }

    /// The innermost task group this node lives in.
    pub(crate) fn nearest_group(&self) -> Option<Arc<dyn GroupScope>> {
        self.ancestry().find_map(|node| match &node.kind {
            NodeKind::Group { group } => group.upgrade(),
            _ => None,
        })
    }
}

/// Keeps every node from `start` up to its task's root from dropping its future while a
/// structured construct below is still winding down.
pub(crate) struct PinGuard {
    start: Option<Arc<Node>>,
}

impl PinGuard {
    pub(crate) fn new(start: Option<Arc<Node>>) -> Self {
        if let Some(node) = &start {
            for n in node.task_chain() {
                n.pins.fetch_add(1, Ordering::Relaxed);
            }
        }
        PinGuard { start }
    }
}

impl Drop for PinGuard {
    fn drop(&mut self) {
        if let Some(node) = &self.start {
            for n in node.task_chain() {
                n.pins.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// A waker registered on a node, removed again on drop.
pub(crate) struct Registration {
    node: Arc<Node>,
    key: Option<usize>,
    waker: Option<Waker>,
}

impl Registration {
    pub(crate) fn new(node: Arc<Node>) -> Self {
        Registration {
            node,
            key: None,
            waker: None,
        }
    }

    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Registers `waker`, or replaces the one registered before if it would wake another task.
    pub(crate) fn register(&mut self, waker: &Waker) {
        match self.key {
            None => {
                self.key = Some(self.node.register(Waiter::Waker(waker.clone())));
                self.waker = Some(waker.clone());
            }
            Some(key) => {
                if !self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
                    self.node.update_waker(key, waker);
                    self.waker = Some(waker.clone());
                }
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.node.unregister(key);
        }
    }
}

// Not under loom, whose lock and flags are bigger.
#[cfg(all(test, not(aio_loom)))]
mod tests {
    /// Every timeout allocates a node: it stays within the size it had before nodes carried
    /// cancel messages and task names.
    #[test]
    fn a_node_is_no_bigger_than_it_was() {
        assert!(
            size_of::<super::Node>() <= 248,
            "{}",
            size_of::<super::Node>()
        );
    }
}

/// Loom models of cancellation pushed down the tree: a node links itself into its parent's
/// waiter list, outermost first, and reads the parent's state once it is in (`Node::link`);
/// a cancel marks every linked node below before it collects that node's list, and wakes
/// nothing before all are marked (`wake_after_cancel`). A waiter here is what a future that
/// waits for a cancellation registers: a waker, and the check after registering that
/// `Node::register` asks for.
#[cfg(all(test, aio_loom))]
mod models {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, AtomicU64};

    use loom::thread;

    use super::{CREATED, Node, NodeKind, Waiter};
    use crate::CancelReason;
    use crate::model::harness::Parker;

    /// A cancel scope's node under `parent`, not linked into it yet.
    fn scope(parent: Option<&Arc<Node>>) -> Arc<Node> {
        let kind = NodeKind::Scope {
            phase: AtomicU8::new(CREATED),
            generation: AtomicU64::new(0),
        };
        Node::new(kind, parent.cloned(), false)
    }

    /// `grandparent`, `parent` and `child`, a chain of nodes nobody waits on yet.
    fn chain() -> [Arc<Node>; 3] {
        let grandparent = scope(None);
        let parent = scope(Some(&grandparent));
        let child = scope(Some(&parent));
        [grandparent, parent, child]
    }

    /// Waits on `node` on a thread of its own until it is cancelled: registers a waker
    /// (which links the node and the unlinked nodes above it), then checks, and parks
    /// unless the check saw the cancellation. The wake-up that unparks it must come after
    /// the node is cancelled.
    fn wait_on_a_thread(node: &Arc<Node>) -> thread::JoinHandle<()> {
        let node = Arc::clone(node);
        thread::spawn(move || {
            let (parker, waker) = Parker::new();
            let key = node.register(Waiter::Waker(waker));
            if !node.is_cancelled() {
                parker.park();
                assert!(node.is_cancelled(), "woken before its node was cancelled");
            }
            node.unregister(key);
        })
    }

    #[test]
    fn a_waiter_registering_below_a_parent_being_cancelled_is_woken_or_sees_it() {
        loom::model(|| {
            let parent = scope(None);
            let child = scope(Some(&parent));
            let waiter = wait_on_a_thread(&child);
            parent.cancel(CancelReason::Explicit);
            waiter.join().unwrap();
            assert!(child.is_cancelled());
        });
    }

    #[test]
    fn a_waiter_registering_below_a_grandparent_being_cancelled_is_woken_or_sees_it() {
        loom::model(|| {
            // The waiter links the parent, then the child.
            let [grandparent, parent, child] = chain();
            let waiter = wait_on_a_thread(&child);
            grandparent.cancel(CancelReason::Explicit);
            waiter.join().unwrap();
            assert!(parent.is_cancelled());
            assert!(child.is_cancelled());
        });
    }

    #[test]
    fn whatever_a_cancel_wakes_finds_every_linked_node_below_cancelled() {
        loom::model(|| {
            let [grandparent, parent, child] = chain();
            // Everything is linked: something waits on the child.
            let (_child_parker, child_waker) = Parker::new();
            let _key = child.register(Waiter::Waker(child_waker));
            // A waiter on the parent, woken by the cancel, looks at the nodes above and
            // below it.
            let (parker, waker) = Parker::new();
            let _key = parent.register(Waiter::Waker(waker));
            let woken = thread::spawn({
                let (grandparent, child) = (Arc::clone(&grandparent), Arc::clone(&child));
                move || {
                    parker.park();
                    assert!(grandparent.is_cancelled(), "woken before the cancel");
                    assert!(
                        child.is_cancelled(),
                        "woken before the nodes below were marked"
                    );
                }
            });
            grandparent.cancel(CancelReason::Explicit);
            woken.join().unwrap();
        });
    }

    #[test]
    fn cancels_at_two_levels_at_once_reach_a_waiter_registering_below() {
        loom::model(|| {
            let [grandparent, parent, child] = chain();
            let waiter = wait_on_a_thread(&child);
            let cancel_parent = thread::spawn({
                let parent = Arc::clone(&parent);
                move || assert!(parent.cancel(CancelReason::Explicit))
            });
            assert!(grandparent.cancel(CancelReason::Deadline));
            cancel_parent.join().unwrap();
            waiter.join().unwrap();
            assert!(child.is_cancelled());
            // The nearest cancelled scope is the one that reports, as inherited.
            let cancelled = child.cancellation().expect("the child is cancelled");
            assert_eq!(*cancelled.origin(), CancelReason::Explicit);
        });
    }

    /// The rule `MARKING` keeps: a cancel marks the linked nodes below it one by one, so
    /// for a moment the node it cancelled is cancelled and a linked node below is not yet
    /// marked. Whoever has seen the one must see the other.
    #[test]
    fn whoever_sees_a_node_cancelled_sees_every_node_below_it_cancelled() {
        loom::model(|| {
            let [grandparent, parent, child] = chain();
            // Everything is linked: something waits on the child.
            let (_parker, waker) = Parker::new();
            let _key = child.register(Waiter::Waker(waker));
            let asker = thread::spawn({
                let (parent, child) = (Arc::clone(&parent), Arc::clone(&child));
                move || {
                    if parent.is_cancelled() {
                        assert!(child.is_cancelled(), "the parent is, the child is not");
                    }
                }
            });
            grandparent.cancel(CancelReason::Explicit);
            asker.join().unwrap();
            assert!(child.is_cancelled());
        });
    }

    /// A node leaves its parent's list when its owner is done (`Node::detach`), under its
    /// own lock and then the parent's, while a cancel of the parent walks the list and takes
    /// the child's lock: neither blocks the other, and the list keeps nothing of the child.
    #[test]
    fn a_node_leaving_its_parent_during_the_parents_cancel_is_let_go() {
        loom::model(|| {
            let parent = scope(None);
            let child = scope(Some(&parent));
            let (_parker, waker) = Parker::new();
            let key = child.register(Waiter::Waker(waker));
            let leaving = thread::spawn({
                let child = Arc::clone(&child);
                move || {
                    child.unregister(key);
                    child.detach();
                }
            });
            assert!(parent.cancel(CancelReason::Explicit));
            leaving.join().unwrap();
            assert_eq!(
                Arc::strong_count(&child),
                1,
                "the parent still holds the child"
            );
        });
    }
}
