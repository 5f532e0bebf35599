//! [`Semaphore`]: asyncio's `Semaphore`, strictly FIFO and cancel safe, and the permits that
//! it and [`BoundedSemaphore`] hand out.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use crate::BoundedSemaphore;
use crate::error::{ReleaseError, TryAcquireError};
use crate::handoff::Acquire;
use crate::permits::{MAX_PERMITS, Permits};

/// A counter of permits that tasks take and give back: asyncio's `Semaphore`.
///
/// [`acquire`](Self::acquire) waits for a permit and returns a [`SemaphorePermit`] that
/// gives it back when dropped, which is `async with sem:`. asyncio's unowned style is there
/// too: [`SemaphorePermit::forget`] keeps the permit taken with no guard, and
/// [`release`](Self::release) adds one, from any task. As in asyncio, a plain semaphore
/// may be released more times than it was acquired: its value then grows past its
/// initial value. Use a [`BoundedSemaphore`] to make that an error.
///
/// # Fairness
///
/// Strictly FIFO: permits go to waiters in the order they started waiting. A released
/// permit is handed straight to the oldest waiter, so the value stays 0 while anyone waits
/// and a newcomer cannot take a permit meant for a waiter that has not run yet; that is
/// asyncio's rule that [`locked`](Self::locked) is true while anyone waits.
///
/// Acquiring takes part in Tokio's cooperative budget, so a task that acquires and
/// releases in a loop without ever waiting still yields to the runtime now and then.
///
/// # Examples
///
/// At most two requests in flight at a time:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use aio_sync::Semaphore;
///
/// let sem = Arc::new(Semaphore::new(2));
/// let mut tasks = Vec::new();
/// for i in 0..5 {
///     let sem = Arc::clone(&sem);
///     tasks.push(tokio::spawn(async move {
///         let _permit = sem.acquire().await;
///         // At most two tasks are here at once.
///         i * 10
///     }));
/// }
/// for task in tasks {
///     task.await.unwrap();
/// }
/// assert_eq!(sem.available_permits(), 2);
/// # }
/// ```
///
/// asyncio's `await sem.acquire()` ... `sem.release()`:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_sync::Semaphore;
///
/// let sem = Semaphore::new(1);
/// sem.acquire().await.forget();
/// assert!(sem.locked());
/// sem.release();
/// assert_eq!(sem.available_permits(), 1);
/// # }
/// ```
pub struct Semaphore {
    core: Core,
}

impl Semaphore {
    /// The largest value a semaphore can hold: about 2<sup>61</sup> on 64-bit targets.
    pub const MAX_PERMITS: usize = MAX_PERMITS;

    crate::model::const_unless_loom! {
        /// A semaphore holding `value` permits. asyncio's default is 1: see
        /// [`Default`](#impl-Default-for-Semaphore).
        ///
        /// `const`, so a semaphore can be a `static`.
        ///
        /// # Panics
        ///
        /// If `value` exceeds [`MAX_PERMITS`](Self::MAX_PERMITS). (asyncio's negative value
        /// cannot be written here.)
        ///
        /// # Examples
        ///
        /// ```
        /// use aio_sync::Semaphore;
        ///
        /// static CONNECTIONS: Semaphore = Semaphore::new(10);
        /// assert_eq!(CONNECTIONS.available_permits(), 10);
        /// assert!(Semaphore::new(0).locked());
        /// ```
        #[track_caller]
        pub fn new(value: usize) -> Semaphore {
            Semaphore {
                core: Core::new(value, false),
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
    /// use aio_sync::Semaphore;
    ///
    /// let sem = Semaphore::new(2);
    /// let permit = sem.acquire().await;
    /// assert_eq!(sem.available_permits(), 1);
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 2);
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
    /// use aio_sync::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// let permit = Arc::clone(&sem).acquire_owned().await;
    /// tokio::spawn(async move {
    ///     // Work while holding the permit, then let it go.
    ///     drop(permit);
    /// })
    /// .await
    /// .unwrap();
    /// assert_eq!(sem.available_permits(), 1);
    /// # }
    /// ```
    pub fn acquire_owned(self: Arc<Self>) -> OwnedSemaphoreAcquire {
        OwnedSemaphoreAcquire::new(Owner::Plain(self))
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
    #[doc = "use aio_sync::Semaphore;"]
    ///
    #[doc = "let sem = Semaphore::new(1);"]
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
    /// use aio_sync::Semaphore;
    ///
    /// let sem = Semaphore::new(1);
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
    /// use aio_sync::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// let permit = Arc::clone(&sem).try_acquire_owned().unwrap();
    /// assert!(Arc::clone(&sem).try_acquire_owned().is_err());
    /// drop(permit);
    /// assert_eq!(sem.available_permits(), 1);
    /// ```
    pub fn try_acquire_owned(self: Arc<Self>) -> Result<OwnedSemaphorePermit, TryAcquireError> {
        if self.core.try_acquire() {
            Ok(OwnedSemaphorePermit::new(Owner::Plain(self)))
        } else {
            Err(TryAcquireError(()))
        }
    }

    /// Adds a permit: asyncio's `sem.release()`. The oldest waiter, if any, gets it.
    ///
    /// Any task may call it, whether or not it acquired a permit, and the value may grow
    /// past its initial value, as in asyncio. It pairs with [`SemaphorePermit::forget`].
    ///
    /// # Panics
    ///
    /// If the value would exceed [`MAX_PERMITS`](Self::MAX_PERMITS).
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::Semaphore;
    ///
    /// let sem = Semaphore::new(0);
    /// sem.release();
    /// sem.release();
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn release(&self) {
        // A plain semaphore has no bound to break.
        let _ = self.core.release();
    }

    /// Whether [`acquire`](Self::acquire) would wait: the value is 0, which it is whenever a
    /// task waits (asyncio: "the value is 0 or a task waits").
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::Semaphore;
    ///
    /// let sem = Semaphore::new(1);
    /// assert!(!sem.locked());
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
    /// use aio_sync::Semaphore;
    ///
    /// let sem = Semaphore::new(3);
    /// let _permit = sem.try_acquire().unwrap();
    /// assert_eq!(sem.available_permits(), 2);
    /// ```
    pub fn available_permits(&self) -> usize {
        self.core.available_permits()
    }

    /// How many tasks wait in [`acquire`](Self::acquire); a waiter that is cancelled stops
    /// counting at once.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::Semaphore;
    ///
    /// let sem = Semaphore::new(1);
    /// let _permit = sem.acquire().await;
    /// let mut waiting = tokio_test::task::spawn(sem.acquire());
    /// assert!(waiting.poll().is_pending());
    /// assert_eq!(sem.n_waiting(), 1);
    /// # }
    /// ```
    pub fn n_waiting(&self) -> usize {
        self.core.n_waiting()
    }
}

impl Default for Semaphore {
    /// A semaphore holding one permit, as asyncio's `Semaphore()`.
    fn default() -> Self {
        Semaphore::new(1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.core.fmt("Semaphore", f)
    }
}

/// The state a [`Semaphore`] and a [`BoundedSemaphore`] share.
pub(crate) struct Core {
    /// A bounded semaphore's permits never exceed its initial value, a plain semaphore's
    /// [`MAX_PERMITS`].
    permits: Permits,
    bounded: bool,
}

impl Core {
    crate::model::const_unless_loom! {
        #[track_caller]
        pub(crate) fn new(value: usize, bounded: bool) -> Core {
            assert!(
                value <= MAX_PERMITS,
                "a semaphore may not have more than MAX_PERMITS permits"
            );
            Core {
                permits: Permits::new(value, if bounded { value } else { MAX_PERMITS }),
                bounded,
            }
        }
    }

    pub(crate) fn acquire(&self) -> SemaphoreAcquire<'_> {
        SemaphoreAcquire {
            core: self,
            acquire: self.permits.acquire(),
        }
    }

    pub(crate) fn try_acquire(&self) -> bool {
        self.permits.try_acquire()
    }

    /// Gives a permit back; refused for a bounded semaphore that has all of its permits.
    ///
    /// # Panics
    ///
    /// If a plain semaphore's value would exceed [`MAX_PERMITS`].
    #[track_caller]
    pub(crate) fn release(&self) -> Result<(), ReleaseError> {
        if self.permits.release() {
            Ok(())
        } else if self.bounded {
            Err(ReleaseError::too_many_times(self.permits.limit()))
        } else {
            panic!("a semaphore may not have more than MAX_PERMITS permits");
        }
    }

    /// Gives back the permit a guard holds.
    fn release_permit(&self) {
        if self.release().is_err() {
            tracing::warn!(
                "a bounded semaphore permit was dropped after `release()` had already given \
                 back all of its permits; it releases nothing"
            );
        }
    }

    /// A bounded semaphore's initial value.
    pub(crate) fn bound(&self) -> Option<usize> {
        self.bounded.then(|| self.permits.limit())
    }

    pub(crate) fn locked(&self) -> bool {
        self.permits.available() == 0
    }

    pub(crate) fn available_permits(&self) -> usize {
        self.permits.available()
    }

    pub(crate) fn n_waiting(&self) -> usize {
        self.permits.waiting()
    }

    pub(crate) fn fmt(&self, name: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let value = self.permits.available();
        let state = if value == 0 { "locked" } else { "unlocked" };
        let mut s = f.debug_struct(name);
        s.field("state", &format_args!("{state}"))
            .field("value", &value);
        if let Some(bound) = self.bound() {
            s.field("bound", &bound);
        }
        s.field("waiters", &self.permits.waiting()).finish()
    }
}

/// A permit from a [`Semaphore`] or a [`BoundedSemaphore`], given back when dropped.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_sync::Semaphore;
///
/// let sem = Semaphore::new(1);
/// let permit = sem.acquire().await;
/// assert!(sem.locked());
/// drop(permit);
/// assert!(!sem.locked());
/// # }
/// ```
#[must_use = "dropping the permit gives it back at once; call `forget()` to keep it until \
              `release()`"]
pub struct SemaphorePermit<'a> {
    core: &'a Core,
}

impl<'a> SemaphorePermit<'a> {
    /// The permit for one acquisition just recorded in `core`.
    pub(crate) fn new(core: &'a Core) -> Self {
        SemaphorePermit { core }
    }

    /// Keeps the permit taken with no guard: it comes back only through the semaphore's
    /// `release()`. With [`Semaphore::acquire`], this is asyncio's unowned
    /// `await sem.acquire()`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::BoundedSemaphore;
    ///
    /// let sem = BoundedSemaphore::new(1);
    /// sem.acquire().await.forget();
    /// assert!(sem.locked());
    /// sem.release().unwrap();
    /// assert!(!sem.locked());
    /// # }
    /// ```
    pub fn forget(self) {
        std::mem::forget(self);
    }
}

impl Drop for SemaphorePermit<'_> {
    fn drop(&mut self) {
        self.core.release_permit();
    }
}

impl fmt::Debug for SemaphorePermit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit").finish_non_exhaustive()
    }
}

/// The semaphore an [`OwnedSemaphorePermit`] came from.
#[derive(Clone)]
enum Owner {
    Plain(Arc<Semaphore>),
    Bounded(Arc<BoundedSemaphore>),
}

impl Owner {
    fn core(&self) -> &Core {
        match self {
            Owner::Plain(sem) => &sem.core,
            Owner::Bounded(sem) => sem.core(),
        }
    }
}

/// What an owned acquire waits on: the owner's permits.
impl Deref for Owner {
    type Target = Permits;

    fn deref(&self) -> &Permits {
        &self.core().permits
    }
}

/// Future returned by [`Semaphore::acquire`] and [`BoundedSemaphore::acquire`]: a permit,
/// once it is this task's turn.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct SemaphoreAcquire<'a> {
    core: &'a Core,
    acquire: Acquire<&'a Permits>,
}

impl<'a> Future for SemaphoreAcquire<'a> {
    type Output = SemaphorePermit<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SemaphorePermit<'a>> {
        ready!(Pin::new(&mut self.acquire).poll(cx));
        Poll::Ready(SemaphorePermit::new(self.core))
    }
}

impl fmt::Debug for SemaphoreAcquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreAcquire").finish_non_exhaustive()
    }
}

/// Future returned by [`Semaphore::acquire_owned`] and
/// [`BoundedSemaphore::acquire_owned`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct OwnedSemaphoreAcquire {
    acquire: Acquire<Owner>,
}

impl OwnedSemaphoreAcquire {
    fn new(owner: Owner) -> Self {
        OwnedSemaphoreAcquire {
            acquire: Acquire::new(owner),
        }
    }

    pub(crate) fn bounded(owner: Arc<BoundedSemaphore>) -> Self {
        Self::new(Owner::Bounded(owner))
    }
}

impl Future for OwnedSemaphoreAcquire {
    type Output = OwnedSemaphorePermit;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OwnedSemaphorePermit> {
        ready!(Pin::new(&mut self.acquire).poll(cx));
        Poll::Ready(OwnedSemaphorePermit::new(self.acquire.word().clone()))
    }
}

impl fmt::Debug for OwnedSemaphoreAcquire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphoreAcquire")
            .finish_non_exhaustive()
    }
}

/// A permit from a [`Semaphore`] or a [`BoundedSemaphore`] that owns an `Arc` of it, given
/// back when dropped.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use aio_sync::{OwnedSemaphorePermit, Semaphore};
///
/// let sem = Arc::new(Semaphore::new(1));
/// let permit: OwnedSemaphorePermit = Arc::clone(&sem).acquire_owned().await;
/// tokio::spawn(async move { drop(permit) }).await.unwrap();
/// assert_eq!(sem.available_permits(), 1);
/// # }
/// ```
#[must_use = "dropping the permit gives it back at once; call `forget()` to keep it until \
              `release()`"]
pub struct OwnedSemaphorePermit {
    owner: Owner,
    held: bool,
}

impl OwnedSemaphorePermit {
    pub(crate) fn new_bounded(owner: Arc<BoundedSemaphore>) -> Self {
        Self::new(Owner::Bounded(owner))
    }

    fn new(owner: Owner) -> Self {
        OwnedSemaphorePermit { owner, held: true }
    }

    fn core(&self) -> &Core {
        self.owner.core()
    }

    /// Keeps the permit taken with no guard: it comes back only through the semaphore's
    /// `release()`. See [`SemaphorePermit::forget`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aio_sync::Semaphore;
    ///
    /// let sem = Arc::new(Semaphore::new(1));
    /// Arc::clone(&sem).try_acquire_owned().unwrap().forget();
    /// assert!(sem.locked());
    /// sem.release();
    /// assert!(!sem.locked());
    /// ```
    pub fn forget(mut self) {
        self.held = false;
    }
}

impl Drop for OwnedSemaphorePermit {
    fn drop(&mut self) {
        if self.held {
            self.core().release_permit();
        }
    }
}

impl fmt::Debug for OwnedSemaphorePermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedSemaphorePermit")
            .finish_non_exhaustive()
    }
}
