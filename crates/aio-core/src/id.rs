//! Identifiers for tasks and scopes.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

fn next() -> NonZeroU64 {
    // Relaxed is enough: ids only need to be unique, not ordered with other memory.
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    NonZeroU64::new(id).expect("aio id counter overflowed")
}

/// The identity of a task spawned into a [`TaskGroup`](crate::TaskGroup).
///
/// Ids are unique for the life of the process. They appear in
/// [`TaskFailure`](crate::TaskFailure), in [`CancelReason::SiblingFailed`](crate::CancelReason)
/// and in every `tracing` span aio opens for a task.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TaskId(NonZeroU64);

impl TaskId {
    pub(crate) fn next() -> Self {
        TaskId(next())
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({})", self.0)
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task#{}", self.0)
    }
}

/// The identity of a cancel scope: a task group, a timeout, a shield or a root.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScopeId(NonZeroU64);

impl ScopeId {
    pub(crate) fn next() -> Self {
        ScopeId(next())
    }

    /// The id as a number.
    pub fn as_u64(self) -> u64 {
        self.0.get()
    }
}

impl fmt::Debug for ScopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeId({})", self.0)
    }
}

impl fmt::Display for ScopeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "scope#{}", self.0)
    }
}
