//! [`Lock`]: asyncio's `Lock`, strictly FIFO and cancel safe.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker, ready};

use crate::error::{ReleaseError, TryLockError};
use crate::handoff::{Acquire, WAITERS, WaitQueue, Word, give_back_slow};
use crate::model::{AtomicUsize, const_unless_loom};
use crate::wait_list::WaitList;

/// A mutual-exclusion lock for tasks: asyncio's `Lock`.
///
/// It guards no data (use it around a critical section, or put the data in a
/// `std::sync::Mutex` next to it); it only makes tasks take turns. There are two ways to
/// hold it:
///
/// * **A guard**, the Rust way: [`lock`](Self::lock) returns a [`LockGuard`] that releases
///   the lock when dropped, which is `async with lock:`.
/// * **Unowned**, asyncio's way: [`acquire`](Self::acquire) takes the lock with no guard,
///   and [`release`](Self::release) gives it back. Any task may release it, not only the
///   one that acquired it, as in asyncio.
///
/// # Fairness
///
/// Strictly FIFO: the lock goes to waiters in the order their `lock` or `acquire` calls
/// started waiting. There is no barging: a release hands the lock straight to the oldest
/// waiter, so a task that comes along before that waiter has run still queues behind it,
/// and [`locked`](Self::locked) stays true meanwhile (asyncio's `locked()` reports false in
/// that moment, but its `acquire()` queues all the same).
///
/// Acquiring takes part in Tokio's cooperative budget, so a task that locks and unlocks in
/// a loop without ever waiting still yields to the runtime now and then.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use aio_sync::Lock;
///
/// let lock = Arc::new(Lock::new());
/// let guard = lock.lock().await;
/// assert!(lock.locked());
/// let waiter = tokio::spawn({
///     let lock = Arc::clone(&lock);
///     async move {
///         let _guard = lock.lock().await;
///         "got it"
///     }
/// });
/// drop(guard);
/// assert_eq!(waiter.await.unwrap(), "got it");
/// assert!(!lock.locked());
/// # }
/// ```
pub struct Lock {
    /// [`LOCKED`] while the lock is held (or handed to a waiter that has not run yet),
    /// [`HANDED`] while it is handed and not yet taken, [`WAITERS`] while tasks wait, and
    /// above them the number of the acquisition, counted in [`EPOCH`]s. The word without
    /// its `HANDED` and `WAITERS` bits names the acquisition: a guard releases the lock only
    /// if it is still its own, and `release()` only if it is held and taken. Taking and
    /// releasing with nobody waiting is one compare-and-swap. (The acquisition number wraps
    /// after 2<sup>61</sup> acquisitions, 2<sup>29</sup> on 32-bit targets: a guard whose
    /// acquisition `release()` ended, kept across that many more, would release the
    /// current one.)
    state: AtomicUsize,
    queue: WaitQueue<usize>,
}

/// Set in a [`Lock`]'s word while it is held.
const LOCKED: usize = 2;
/// Set in a [`Lock`]'s word while it is handed to a waiter that has not run yet: as in
/// asyncio, `release()` then finds it not acquired.
const HANDED: usize = 4;
/// One acquisition, in a [`Lock`]'s word.
const EPOCH: usize = 8;
/// The bits of a [`Lock`]'s word that do not name the acquisition.
const FLAGS: usize = WAITERS | HANDED;

impl Lock {
    const_unless_loom! {
        /// An unlocked lock.
        ///
        /// `const`, so a lock can be a `static`.
        ///
        /// # Examples
        ///
        /// ```
        /// use aio_sync::Lock;
        ///
        /// static LOCK: Lock = Lock::new();
        /// assert!(!LOCK.locked());
        /// ```
        pub fn new() -> Lock {
            Lock {
                state: AtomicUsize::new(0),
                queue: WaitQueue::new(),
            }
        }
    }

    /// Waits for the lock and holds it until the returned guard is dropped: `async with
    /// lock:`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. Dropping the future before it completes loses only its place in the
    /// queue; the lock is not taken. If the lock was handed to this waiter just before it
    /// was dropped, it goes on to the next waiter, so no wake-up is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::Lock;
    ///
    /// let lock = Lock::new();
    /// {
    ///     let _guard = lock.lock().await;
    ///     assert!(lock.locked());
    /// }
    /// assert!(!lock.locked());
    /// # }
    /// ```
    pub fn lock(&self) -> LockFuture<'_> {
        LockFuture {
            acquire: Acquire::new(self),
        }
    }

    /// Like [`lock`](Self::lock), with a guard that owns an `Arc` of the lock, so it can be
    /// moved into a task or kept in a `'static` place.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, as [`lock`](Self::lock): dropping the future loses only its place in
    /// the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use aio_sync::Lock;
    ///
    /// let lock = Arc::new(Lock::new());
    /// let guard = Arc::clone(&lock).lock_owned().await;
    /// tokio::spawn(async move {
    ///     // Critical section, in another task.
    ///     drop(guard);
    /// })
    /// .await
    /// .unwrap();
    /// assert!(!lock.locked());
    /// # }
    /// ```
    pub fn lock_owned(self: Arc<Self>) -> OwnedLockFuture {
        OwnedLockFuture {
            acquire: Acquire::new(self),
        }
    }

    /// Like [`lock`](Self::lock), blocking the thread: for code on a plain thread, or
    /// running under `to_thread` or a thread pool. Tokio's
    /// `Mutex::blocking_lock`.
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
    /// use std::sync::Arc;
    /// use aio_sync::Lock;
    ///
    /// let lock = Arc::new(Lock::new());
    /// let worker = std::thread::spawn({
    ///     let lock = Arc::clone(&lock);
    ///     move || {
    ///         let _guard = lock.blocking_lock();
    ///     }
    /// });
    /// worker.join().unwrap();
    /// assert!(!lock.locked());
    /// ```
    #[track_caller]
    pub fn blocking_lock(&self) -> LockGuard<'_> {
        crate::blocking::block_on(self.lock())
    }

    /// Takes the lock if it is free and nobody is waiting for it.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if the lock is held, or handed to a waiter that has not run yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::Lock;
    ///
    /// let lock = Lock::new();
    /// let guard = lock.try_lock().unwrap();
    /// assert!(lock.try_lock().is_err());
    /// drop(guard);
    /// assert!(lock.try_lock().is_ok());
    /// ```
    pub fn try_lock(&self) -> Result<LockGuard<'_>, TryLockError> {
        match self.try_take() {
            Some(token) => Ok(LockGuard { lock: self, token }),
            None => Err(TryLockError(())),
        }
    }

    /// Like [`try_lock`](Self::try_lock), with a guard that owns an `Arc` of the lock.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if the lock is held, or handed to a waiter that has not run yet.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use aio_sync::Lock;
    ///
    /// let lock = Arc::new(Lock::new());
    /// let guard = Arc::clone(&lock).try_lock_owned().unwrap();
    /// assert!(Arc::clone(&lock).try_lock_owned().is_err());
    /// drop(guard);
    /// assert!(!lock.locked());
    /// ```
    pub fn try_lock_owned(self: Arc<Self>) -> Result<OwnedLockGuard, TryLockError> {
        match self.try_take() {
            Some(token) => Ok(OwnedLockGuard { lock: self, token }),
            None => Err(TryLockError(())),
        }
    }

    /// Waits for the lock and holds it with no guard, until someone calls
    /// [`release`](Self::release): asyncio's `await lock.acquire()`.
    ///
    /// Prefer [`lock`](Self::lock), whose guard cannot forget to release. This form is for
    /// code where the release happens elsewhere, maybe in another task.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe. Dropping the future before it completes loses only its place in the
    /// queue; the lock is not taken. If the lock was handed to this waiter just before it
    /// was dropped, it goes on to the next waiter. Once the future has completed, the lock
    /// stays held until [`release`](Self::release): nothing releases it on its own.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::Lock;
    ///
    /// let lock = Lock::new();
    /// lock.acquire().await;
    /// assert!(lock.locked());
    /// lock.release().unwrap();
    /// assert!(!lock.locked());
    /// # }
    /// ```
    pub fn acquire(&self) -> LockAcquire<'_> {
        LockAcquire {
            acquire: Acquire::new(self),
        }
    }

    /// Releases the lock, whoever holds it: asyncio's `lock.release()`. The oldest waiter,
    /// if any, gets it next.
    ///
    /// It releases a lock held by [`acquire`](Self::acquire) or by a guard alike. A guard
    /// whose lock was released this way does nothing when it is dropped, even if the lock
    /// has been taken again in the meantime: it never releases someone else's acquisition.
    ///
    /// # Errors
    ///
    /// [`ReleaseError`] if the lock is not held (asyncio raises `RuntimeError`). Nothing
    /// changes then.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::Lock;
    ///
    /// let lock = Lock::new();
    /// assert!(lock.release().is_err());
    /// lock.acquire().await;
    /// assert!(lock.release().is_ok());
    /// assert!(lock.release().is_err());
    /// # }
    /// ```
    pub fn release(&self) -> Result<(), ReleaseError> {
        loop {
            let state = self.state.load(Ordering::Acquire);
            if state & LOCKED == 0 || state & HANDED != 0 {
                return Err(ReleaseError::unlocked_lock());
            }
            let token = state & !WAITERS;
            if state & WAITERS == 0 {
                if self.release_now(token) {
                    return Ok(());
                }
                continue;
            }
            let waker = {
                let mut list = self.queue.lock();
                if self.state.load(Ordering::Acquire) & !FLAGS != token {
                    // Released, or handed on, before we locked the queue: look again.
                    continue;
                }
                self.give_back(&mut list, token)
            };
            if let Some(waker) = waker {
                waker.wake();
            }
            return Ok(());
        }
    }

    /// Whether the lock is taken: held, or handed to a waiter that has not run yet. When
    /// it is false, [`try_lock`](Self::try_lock) would succeed.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::Lock;
    ///
    /// let lock = Lock::new();
    /// assert!(!lock.locked());
    /// let _guard = lock.try_lock().unwrap();
    /// assert!(lock.locked());
    /// ```
    pub fn locked(&self) -> bool {
        self.state.load(Ordering::Acquire) & LOCKED != 0
    }

    /// How many tasks wait in [`lock`](Self::lock), until each returns; a waiter that is
    /// cancelled stops counting at once. Trio's `statistics().tasks_waiting`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::Lock;
    ///
    /// let lock = Lock::new();
    /// let guard = lock.lock().await;
    /// let mut waiting = tokio_test::task::spawn(lock.lock());
    /// assert_eq!(lock.n_waiting(), 0); // not polled yet
    /// assert!(waiting.poll().is_pending());
    /// assert_eq!(lock.n_waiting(), 1);
    /// drop(waiting);
    /// assert_eq!(lock.n_waiting(), 0);
    /// drop(guard);
    /// # }
    /// ```
    pub fn n_waiting(&self) -> usize {
        self.queue.len()
    }

    /// Releases the acquisition `token` if nobody waits for the lock: one compare-and-swap.
    fn release_now(&self, token: usize) -> bool {
        self.state
            .compare_exchange(token, token & !LOCKED, Ordering::Release, Ordering::Relaxed)
            .is_ok()
    }

    /// Releases the acquisition `token`, if it is still the current one.
    fn release_guard(&self, token: usize) {
        if self.release_now(token) {
            return;
        }
        if self.state.load(Ordering::Acquire) & !FLAGS == token {
            give_back_slow(self, token);
        } else {
            tracing::warn!(
                "a lock guard was dropped after `Lock::release()` had already released its \
                 lock; it releases nothing"
            );
        }
    }
}

impl Word for Lock {
    type Token = usize;

    fn state(&self) -> &AtomicUsize {
        &self.state
    }

    fn queue(&self) -> &WaitQueue<usize> {
        &self.queue
    }

    // A free lock has nobody waiting: while anyone waits, a release hands the lock on.
    fn free_turn(&self, state: usize) -> Option<(usize, usize)> {
        let token = state.wrapping_add(EPOCH) | LOCKED;
        (state & LOCKED == 0).then_some((token, token))
    }

    fn taken(&self, _token: &usize) {
        self.state.fetch_and(!HANDED, Ordering::AcqRel);
    }

    fn give_back(&self, list: &mut WaitList<usize>, token: usize) -> Option<Waker> {
        let mut state = self.state.load(Ordering::Acquire);
        loop {
            if state & !FLAGS != token {
                // That acquisition was released already, by `release()`.
                return None;
            }
            // The lock stays locked for the oldest waiter, under the next acquisition,
            // handed until the waiter takes it; or it is free if nobody waits.
            let next = token.wrapping_add(EPOCH);
            let new = match list.len() {
                0 => token & !LOCKED,
                1 => next | HANDED,
                _ => next | HANDED | WAITERS,
            };
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) if new & LOCKED == 0 => return None,
                Ok(_) => return list.notify_one(next).ok(),
                Err(actual) => state = actual,
            }
        }
    }
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.locked() { "locked" } else { "unlocked" };
        f.debug_struct("Lock")
            .field("state", &format_args!("{state}"))
            .field("waiters", &self.n_waiting())
            .finish()
    }
}

/// Future returned by [`Lock::lock`]: the lock's guard, once it is this task's turn.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct LockFuture<'a> {
    acquire: Acquire<&'a Lock>,
}

impl<'a> Future for LockFuture<'a> {
    type Output = LockGuard<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard<'a>> {
        let token = ready!(Pin::new(&mut self.acquire).poll(cx));
        let lock = *self.acquire.word();
        Poll::Ready(LockGuard { lock, token })
    }
}

impl fmt::Debug for LockFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockFuture").finish_non_exhaustive()
    }
}

/// Future returned by [`Lock::lock_owned`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct OwnedLockFuture {
    acquire: Acquire<Arc<Lock>>,
}

impl Future for OwnedLockFuture {
    type Output = OwnedLockGuard;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<OwnedLockGuard> {
        let token = ready!(Pin::new(&mut self.acquire).poll(cx));
        let lock = Arc::clone(self.acquire.word());
        Poll::Ready(OwnedLockGuard { lock, token })
    }
}

impl fmt::Debug for OwnedLockFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedLockFuture").finish_non_exhaustive()
    }
}

/// Future returned by [`Lock::acquire`]: the lock, held with no guard.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct LockAcquire<'a> {
    acquire: Acquire<&'a Lock>,
}

impl Future for LockAcquire<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.acquire).poll(cx).map(drop)
    }
}

impl fmt::Debug for LockAcquire<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockAcquire").finish_non_exhaustive()
    }
}

/// Holds a [`Lock`] until dropped; returned by [`Lock::lock`] and [`Lock::try_lock`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_sync::Lock;
///
/// let lock = Lock::new();
/// let guard = lock.lock().await;
/// drop(guard);
/// assert!(!lock.locked());
/// # }
/// ```
#[must_use = "dropping the guard releases the lock at once"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
    token: usize,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.release_guard(self.token);
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", self.lock)
            .finish()
    }
}

/// Holds a [`Lock`] until dropped, through an `Arc`; returned by [`Lock::lock_owned`] and
/// [`Lock::try_lock_owned`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use aio_sync::{Lock, OwnedLockGuard};
///
/// let lock = Arc::new(Lock::new());
/// let guard: OwnedLockGuard = Arc::clone(&lock).lock_owned().await;
/// assert!(Arc::ptr_eq(guard.lock(), &lock));
/// # }
/// ```
#[must_use = "dropping the guard releases the lock at once"]
pub struct OwnedLockGuard {
    lock: Arc<Lock>,
    token: usize,
}

impl OwnedLockGuard {
    /// The lock this guard holds.
    pub fn lock(&self) -> &Arc<Lock> {
        &self.lock
    }
}

impl Drop for OwnedLockGuard {
    fn drop(&mut self) {
        self.lock.release_guard(self.token);
    }
}

impl fmt::Debug for OwnedLockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedLockGuard")
            .field("lock", &*self.lock)
            .finish()
    }
}
