//! Identifiers for tasks and scopes.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_TASK: AtomicU64 = AtomicU64::new(1);
static NEXT_SCOPE: AtomicU64 = AtomicU64::new(1);

fn next(counter: &AtomicU64) -> NonZeroU64 {
    // Relaxed is enough: ids only need to be unique, not ordered with other memory.
    let id = counter.fetch_add(1, Ordering::Relaxed);
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
        TaskId(next(&NEXT_TASK))
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
        ScopeId(next(&NEXT_SCOPE))
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
