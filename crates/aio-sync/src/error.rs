//! The errors of [`Lock`](crate::Lock), [`Semaphore`](crate::Semaphore) and
//! [`BoundedSemaphore`](crate::BoundedSemaphore).

use std::fmt;

/// The error of an unowned `release()` that has no acquisition to release:
/// [`Lock::release`](crate::Lock::release) on an unlocked lock (asyncio's
/// `RuntimeError('Lock is not acquired.')`), or
/// [`BoundedSemaphore::release`](crate::BoundedSemaphore::release) past the initial value
/// (asyncio's `ValueError('BoundedSemaphore released too many times')`).
///
/// Nothing was released: the primitive is as it was before the call.
///
/// # Examples
///
/// ```
/// use aio_sync::Lock;
///
/// let lock = Lock::new();
/// let err = lock.release().unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "release of an unlocked lock: call release() once for each acquire()"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct ReleaseError {
    kind: Released,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Released {
    UnlockedLock,
    TooManyTimes { bound: usize },
}

impl fmt::Display for Released {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Released::UnlockedLock => {
                f.write_str("release of an unlocked lock: call release() once for each acquire()")
            }
            Released::TooManyTimes { bound } => write!(
                f,
                "bounded semaphore released too many times: it already has all {bound} of \
                 its permits; call release() once for each acquire()"
            ),
        }
    }
}

impl ReleaseError {
    pub(crate) fn unlocked_lock() -> Self {
        ReleaseError {
            kind: Released::UnlockedLock,
        }
    }

    pub(crate) fn too_many_times(bound: usize) -> Self {
        ReleaseError {
            kind: Released::TooManyTimes { bound },
        }
    }
}

/// The error of [`Lock::try_lock`](crate::Lock::try_lock): the lock is held, or handed
/// to a waiter that has not run yet.
///
/// # Examples
///
/// ```
/// use aio_sync::Lock;
///
/// let lock = Lock::new();
/// let _guard = lock.try_lock().unwrap();
/// assert_eq!(
///     lock.try_lock().unwrap_err().to_string(),
///     "the lock is locked; await lock() to wait for it"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the lock is locked; await lock() to wait for it")]
pub struct TryLockError(pub(crate) ());

/// The error of `try_acquire` on a [`Semaphore`](crate::Semaphore) or
/// [`BoundedSemaphore`](crate::BoundedSemaphore): no permit is free, or other tasks are
/// waiting for one and come first.
///
/// # Examples
///
/// ```
/// use aio_sync::Semaphore;
///
/// let sem = Semaphore::new(0);
/// assert_eq!(
///     sem.try_acquire().unwrap_err().to_string(),
///     "no permit is free; await acquire() to wait for one"
/// );
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no permit is free; await acquire() to wait for one")]
pub struct TryAcquireError(pub(crate) ());
