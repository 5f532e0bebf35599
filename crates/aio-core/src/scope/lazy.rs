//! Scopes that get a node only when something needs one.
//!
//! Most timeouts wrap a future that finishes before the deadline and never asks about its
//! scope. Such a timeout needs no [`Node`]: its deadline, whether it fired, and whether the
//! last construct that ended inside it returned a cancellation live in the future that runs
//! it (a [`LazyScope`]). Around each poll of the wrapped future that state is lent to the
//! stack of scopes (as a [`Lazy`] entry) and given back after, so code inside can read and
//! write it with no allocation, no lock and no reference count.
//!
//! The node is made the first time something needs one, and from then on it holds the truth:
//! a group, a shield or an `on_cancel` opened inside (they hang their own nodes under it), a
//! wait for its cancellation, a handle to it. Until then, questions about the scopes around
//! a lazy scope go to the entry below it on the stack, which is the scope whose poll is
//! polling it. So the scope a lazy timeout belongs to is the one that polls it, poll by
//! poll; once it has a node, its parent is fixed to the scope that polled it then.

use std::sync::atomic::{AtomicU8, AtomicU64};
use std::sync::{Arc, OnceLock};

use tokio::time::Instant;

use super::node::{CREATED, Node, NodeKind};
use crate::CancelReason;

/// What a scope knows of itself before it has a node.
#[derive(Clone, Copy)]
pub(crate) struct Own {
    pub(crate) deadline: Option<Instant>,
    pub(crate) shielded: bool,
    /// The scope's own deadline cancelled it.
    pub(crate) fired: bool,
    /// Whether the last construct that ended inside returned a cancellation (see
    /// [`Node::set_delivered`]).
    pub(crate) delivered: bool,
    /// Where the future that owns the scope is in its life (see [`Node::phase`]).
    pub(crate) phase: u8,
}

impl Own {
    /// Makes the node that takes over from this state, hung under `parent` (`None`: bound
    /// when the scope is next polled).
    fn into_node(self, parent: Option<Option<Arc<Node>>>) -> Arc<Node> {
        let kind = NodeKind::Scope {
            phase: AtomicU8::new(self.phase),
            generation: AtomicU64::new(0),
        };
        let node = match parent {
            Some(parent) => Node::new_with_deadline(kind, parent, self.shielded, self.deadline),
            None => Arc::new(Node::unbound(kind, self.shielded).with_deadline(self.deadline)),
        };
        if self.fired {
            node.cancel(CancelReason::Deadline);
        }
        node.set_delivered(self.delivered);
        node
    }
}

/// A lazy scope while it is on the stack of scopes.
pub(crate) struct Lazy {
    node: Option<Arc<Node>>,
    pub(crate) own: Own,
}

impl Lazy {
    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        self.node.as_ref()
    }

    /// The scope's node, made now under the node `parent` gives if there is none yet.
    pub(crate) fn node_or_make(&mut self, parent: impl FnOnce() -> Option<Arc<Node>>) -> Arc<Node> {
        match &self.node {
            Some(node) => Arc::clone(node),
            None => {
                let node = self.own.into_node(Some(parent()));
                self.node = Some(Arc::clone(&node));
                node
            }
        }
    }
}

/// A scope as the future that runs it keeps it: its node if it has one, else its own state.
pub(crate) struct LazyScope {
    // A `OnceLock` so that a handle can be made from a shared reference between polls.
    node: OnceLock<Arc<Node>>,
    own: Own,
}

impl LazyScope {
    /// A scope with no node yet.
    pub(crate) fn new(deadline: Option<Instant>, shielded: bool) -> Self {
        LazyScope {
            node: OnceLock::new(),
            own: Own {
                deadline,
                shielded,
                fired: false,
                delivered: false,
                phase: CREATED,
            },
        }
    }

    /// A scope whose node exists already (it has handles), bound when it is first polled.
    pub(crate) fn with_node(node: Arc<Node>) -> Self {
        let mut scope = LazyScope::new(None, node.is_shielded());
        scope.node = OnceLock::from(node);
        scope
    }

    pub(crate) fn node(&self) -> Option<&Arc<Node>> {
        self.node.get()
    }

    /// The scope's node, made now if it has none. One made between polls is bound to the
    /// scope that polls it next.
    pub(crate) fn node_or_make(&self) -> &Arc<Node> {
        self.node.get_or_init(|| self.own.into_node(None))
    }

    /// Lends the scope to the stack of scopes for a poll.
    pub(crate) fn lend(&mut self) -> Lazy {
        Lazy {
            node: self.node.take(),
            own: self.own,
        }
    }

    /// Takes the scope back from the stack after a poll.
    pub(crate) fn take_back(&mut self, lazy: Lazy) {
        self.own = lazy.own;
        if let Some(node) = lazy.node {
            self.node = OnceLock::from(node);
        }
    }

    pub(crate) fn is_shielded(&self) -> bool {
        self.own.shielded
    }

    /// Cancelled by its own deadline or handle.
    pub(crate) fn is_cancelled_directly(&self) -> bool {
        match self.node() {
            Some(node) => node.is_cancelled_directly(),
            None => self.own.fired,
        }
    }

    /// The deadline cancels the scope.
    pub(crate) fn fire(&mut self) {
        self.own.fired = true;
        if let Some(node) = self.node() {
            node.cancel(CancelReason::Deadline);
        }
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        match self.node() {
            Some(node) => node.deadline(),
            None => self.own.deadline,
        }
    }

    /// Whether something structured inside is winding down. That always made a node.
    pub(crate) fn is_pinned(&self) -> bool {
        self.node().is_some_and(|node| node.is_pinned())
    }

    pub(crate) fn delivered(&self) -> bool {
        match self.node() {
            Some(node) => node.delivered(),
            None => self.own.delivered,
        }
    }

    pub(crate) fn phase(&self) -> u8 {
        match self.node() {
            Some(node) => node.phase(),
            None => self.own.phase,
        }
    }

    pub(crate) fn set_phase(&mut self, phase: u8) {
        self.own.phase = phase;
        if let Some(node) = self.node() {
            node.set_phase(phase);
        }
    }
}

impl Drop for LazyScope {
    /// Marks the scope finished and takes its node off the tree, however its future ends.
    fn drop(&mut self) {
        if let Some(node) = self.node.get() {
            node.finish();
            node.detach();
        }
    }
}
