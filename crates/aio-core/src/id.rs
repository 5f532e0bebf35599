//! Identifiers for tasks and scopes.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! id {
    ($(#[$doc:meta])* $name:ident, $counter:ident, $display:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(NonZeroU64);

        static $counter: AtomicU64 = AtomicU64::new(1);

        impl $name {
            pub(crate) fn next() -> Self {
                // Relaxed is enough: ids only need to be unique, not ordered with other
                // memory.
                let id = $counter.fetch_add(1, Ordering::Relaxed);
                $name(NonZeroU64::new(id).expect("aio id counter overflowed"))
            }

            /// The id as a number.
            pub fn as_u64(self) -> u64 {
                self.0.get()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($display, "#{}"), self.0)
            }
        }
    };
}

id! {
    /// The identity of a task spawned into a [`TaskGroup`](crate::TaskGroup).
    ///
    /// Ids are unique for the life of the process. They appear in
    /// [`TaskFailure`](crate::TaskFailure), in
    /// [`CancelReason::SiblingFailed`](crate::CancelReason) and in every `tracing` span aio
    /// opens for a task. Displayed as `task#12`.
    TaskId, NEXT_TASK, "task"
}

id! {
    /// The identity of a cancel scope: a task group, a timeout, a shield or a root.
    /// Displayed as `scope#7`.
    ScopeId, NEXT_SCOPE, "scope"
}
