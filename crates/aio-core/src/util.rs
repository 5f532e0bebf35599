//! Small helpers shared by the crate.

#[cfg(not(aio_loom))]
use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, ignoring poisoning: every critical section in aio leaves its state
/// consistent before anything that can panic runs, so a poisoned lock holds valid data.
#[cfg(not(aio_loom))]
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Locks a mutex, ignoring poisoning: under loom, std's mutex (the locks no model checks)
/// or loom's (those of `crate::model`).
#[cfg(aio_loom)]
pub(crate) fn lock<M: loom_lock::Lock + ?Sized>(mutex: &M) -> M::Guard<'_> {
    mutex.lock_ignoring_poison()
}

#[cfg(aio_loom)]
mod loom_lock {
    /// A mutex that [`lock`](super::lock) can lock.
    pub(crate) trait Lock {
        type Guard<'a>
        where
            Self: 'a;
        fn lock_ignoring_poison(&self) -> Self::Guard<'_>;
    }

    impl<T: ?Sized> Lock for std::sync::Mutex<T> {
        type Guard<'a>
            = std::sync::MutexGuard<'a, T>
        where
            T: 'a;

        fn lock_ignoring_poison(&self) -> Self::Guard<'_> {
            self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }

    // What `lock(&arc)` reaches by deref coercion outside loom.
    impl<L: Lock + ?Sized> Lock for std::sync::Arc<L> {
        type Guard<'a>
            = L::Guard<'a>
        where
            L: 'a;

        fn lock_ignoring_poison(&self) -> Self::Guard<'_> {
            (**self).lock_ignoring_poison()
        }
    }

    impl<T: ?Sized> Lock for loom::sync::Mutex<T> {
        type Guard<'a>
            = loom::sync::MutexGuard<'a, T>
        where
            T: 'a;

        fn lock_ignoring_poison(&self) -> Self::Guard<'_> {
            self.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
        }
    }
}
