//! [`BoundedSemaphore`]: a [`Semaphore`](crate::Semaphore) that refuses to be released
//! past its initial value.

use std::fmt;
use std::sync::Arc;

use crate::error::{ReleaseError, TryAcquireError};
use crate::permits::MAX_PERMITS;
use crate::semaphore::{
    Core, OwnedSemaphoreAcquire, OwnedSemaphorePermit, SemaphoreAcquire, SemaphorePermit,
};

/// A semaphore whose value never exceeds its initial value: asyncio's `BoundedSemaphore`.
///
/// Everything works as for [`Semaphore`](crate::Semaphore), and it is as fair (strictly
/// FIFO) and as cancel safe. The difference is [`release`](Self::release): giving back a
/// permit that was never taken returns [`ReleaseError`] instead of raising the value, as
/// asyncio raises `ValueError`. It never panics.
///
/// The bound holds however permits come back: a [`SemaphorePermit`] dropped after an
/// unowned `release()` already gave its permit back releases nothing (and logs a
/// warning through `tracing`), so the value cannot be pushed past the bound by mixing the
/// two styles either.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_sync::BoundedSemaphore;
///
/// let sem = BoundedSemaphore::new(2);
/// sem.acquire().await.forget();
/// sem.release().unwrap();
/// let err = sem.release().unwrap_err();
/// assert!(err.to_string().starts_with("bounded semaphore released too many times"));
/// assert_eq!(sem.available_permits(), 2);
/// # }
/// ```
pub struct BoundedSemaphore {
    core: Core,
}

impl BoundedSemaphore {
    /// The largest value a semaphore can hold: about 2<sup>61</sup> on 64-bit targets.
    pub const MAX_PERMITS: usize = MAX_PERMITS;

    crate::model::const_unless_loom! {
        /// A bounded semaphore holding `value` permits, which is also its bound. asyncio's
        /// default is 1: see [`Default`](#impl-Default-for-BoundedSemaphore).
        ///
        /// `const`, so a semaphore can be a `static`.
        ///
        /// # Panics
        ///
        /// If `value` exceeds [`MAX_PERMITS`](Self::MAX_PERMITS).
        ///
        /// # Examples
        ///
        /// ```
        /// use aio_sync::BoundedSemaphore;
        ///
        /// static WORKERS: BoundedSemaphore = BoundedSemaphore::new(4);
        /// assert_eq!(WORKERS.bound(), 4);
        /// assert_eq!(WORKERS.available_permits(), 4);
        /// ```
        #[track_caller]
        pub fn new(value: usize) -> BoundedSemaphore {
            BoundedSemaphore {
                core: Core::new(value, true),
            }
        }
    }

    /// Waits for a permit, and holds it until the returned [`SemaphorePermit`] is dropped:
    /// `async with sem:`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. Dropping the future before it completes loses only its place in the
    /// queue; no permit is taken. If a permit was handed to this waiter just before it was
    /// dropped, the permit goes on to the next waiter, so no wake-up is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(1);
    /// let permit = sem.acquire().await;
    /// assert!(sem.locked());
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 1);
    /// # }
    /// ```
    pub fn acquire(&self) -> SemaphoreAcquire<'_> {
        self.core.acquire()
    }

    /// Like [`acquire`](Self::acquire), with a permit that owns an `Arc` of the semaphore,
    /// so it can be moved into a task.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`acquire`](Self::acquire): dropping the future loses only its place
    /// in the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use aio_sync::BoundedSemaphore;
    ///
    /// let sem = Arc::new(BoundedSemaphore::new(1));
    /// let permit = Arc::clone(&sem).acquire_owned().await;
    /// tokio::spawn(async move { drop(permit) }).await.unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// # }
    /// ```
    pub fn acquire_owned(self: Arc<Self>) -> OwnedSemaphoreAcquire {
        OwnedSemaphoreAcquire::bounded(self)
    }

    /// Like [`acquire`](Self::acquire), blocking the thread: for code on a plain thread,
    /// or running under `to_thread` or a thread pool.
    ///
    /// # Panics
    ///
    /// If called inside a Tokio task, where blocking would stall every task of its worker:
    /// use the `async` form there. (Inside another executor's task it cannot tell, and
    /// blocks.)
    ///
    /// # Examples
    ///
    /// ```
    #[doc = "use aio_sync::BoundedSemaphore;"]
    ///
    #[doc = "let sem = BoundedSemaphore::new(1);"]
    /// let permit = std::thread::scope(|s| s.spawn(|| sem.blocking_acquire()).join().unwrap());
    /// assert!(sem.locked());
    /// drop(permit);
    /// ```
    #[track_caller]
    pub fn blocking_acquire(&self) -> SemaphorePermit<'_> {
        crate::blocking::block_on(self.acquire())
    }

    /// Takes a permit if one is free and nobody is waiting for one.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError`] if the value is 0 (which it is while anyone waits).
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(1);
    /// let permit = sem.try_acquire().unwrap();
    /// assert!(sem.try_acquire().is_err());
    /// drop(permit);
    /// assert!(sem.try_acquire().is_ok());
    /// ```
    pub fn try_acquire(&self) -> Result<SemaphorePermit<'_>, TryAcquireError> {
        if self.core.try_acquire() {
            Ok(SemaphorePermit::new(&self.core))
        } else {
            Err(TryAcquireError(()))
        }
    }

    /// Like [`try_acquire`](Self::try_acquire), with a permit that owns an `Arc` of the
    /// semaphore.
    ///
    /// # Errors
    ///
    /// [`TryAcquireError`] if the value is 0 (which it is while anyone waits).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aio_sync::BoundedSemaphore;
    ///
    /// let sem = Arc::new(BoundedSemaphore::new(1));
    /// let permit = Arc::clone(&sem).try_acquire_owned().unwrap();
    /// assert!(Arc::clone(&sem).try_acquire_owned().is_err());
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        if self.core.try_acquire() {
            Ok(OwnedSemaphorePermit::new_bounded(self))
        } else {
            Err(TryAcquireError(()))
        }
    }

    /// Gives a permit back: asyncio's `sem.release()`. The oldest waiter, if any, gets it.
    ///
    /// Any task may call it, whether or not it acquired the permit itself; it pairs with
    /// [`SemaphorePermit::forget`]. It gives back a permit held by a guard just as well;
    /// that guard then releases nothing when dropped.
    ///
    /// # Errors
    ///
    /// [`ReleaseError`] if every permit is free, so that releasing would raise the value
    /// past [`bound`](Self::bound) (asyncio raises `ValueError`). Nothing changes then. A
    /// permit handed to a waiter that has not run yet is not free, as in asyncio: a release
    /// in that moment is accepted, and the holder's own release fails later instead.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(1);
    /// assert!(sem.release().is_err());
    /// sem.try_acquire().unwrap().forget();
    /// assert!(sem.release().is_ok());
    /// assert!(sem.release().is_err());
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.core.release()
    }

    /// Whether [`acquire`](Self::acquire) would wait: the value is 0, which it is whenever a
    /// task waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(1);
    /// let _permit = sem.try_acquire().unwrap();
    /// assert!(sem.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.core.locked()
    }

    /// The value: how many permits are free now. A released permit goes straight to a
    /// waiter, so this is 0 while anyone waits.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(3);
    /// let _permit = sem.try_acquire().unwrap();
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.core.available_permits()
    }

    /// How many tasks wait in [`acquire`](Self::acquire); a waiter that is cancelled stops
    /// counting at once. See [`Semaphore::n_waiting`](crate::Semaphore::n_waiting).
    pub fn n_waiting(&self) -> usize {
        self.core.n_waiting()
    }

    /// The initial value, which the value never exceeds.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::BoundedSemaphore;
    ///
    /// assert_eq!(BoundedSemaphore::new(5).bound(), 5);
    /// ```
    pub fn bound(&self) -> usize {
        self.core
            .bound()
            .expect("a bounded semaphore's core has a bound")
    }

    pub(crate) fn core(&self) -> &Core {
        &self.core
    }
}

impl Default for BoundedSemaphore {
    /// A bounded semaphore holding one permit, as asyncio's `BoundedSemaphore()`.
    fn default() -> Self {
        BoundedSemaphore::new(1)
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt("BoundedSemaphore", f)
    }
}
