//! [`Condition`]: asyncio's `Condition`, over a [`Lock`], with no lost notification.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use crate::error::TryLockError;
use crate::lock::{Lock, LockFuture, LockGuard};
use crate::model::{Mutex, MutexGuard};
use crate::wait_list::{Key, Wait, WaitList};

/// A condition variable for tasks: asyncio's `Condition`. Tasks holding its [`Lock`] wait
/// for a notification with [`wait`](Self::wait), which releases the lock while waiting
/// and takes it back before returning; other tasks wake them with
/// [`notify`](Self::notify) or [`notify_all`](Self::notify_all).
///
/// The lock guards no data itself: keep the state the tasks wait on where the lock's
/// holders can reach it (atomics, a `std::sync::Mutex`), and change it while holding the
/// lock, so that no notification can fall between a waiter's check and its `wait`.
///
/// # Fairness
///
/// Waiters are notified in FIFO order; each then queues for the lock again when it runs,
/// behind whoever already waits for it. A notification that finds nobody waiting is not
/// stored. A notified waiter that is dropped before it has the lock again passes its
/// notification on to the next waiter, so a wake-up is never lost to a cancellation
/// (asyncio gh-112202); the price is a possible spurious wake-up, which callers must allow
/// for anyway: check the state again after `wait`, or use [`wait_for`](Self::wait_for).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use aio_sync::Condition;
///
/// let cond = Arc::new(Condition::new());
/// let ready = Arc::new(AtomicBool::new(false));
/// let consumer = tokio::spawn({
///     let (cond, ready) = (Arc::clone(&cond), Arc::clone(&ready));
///     async move {
///         let guard = cond.lock().await;
///         let _guard = cond.wait_for(guard, || ready.load(Ordering::SeqCst)).await;
///         "ready"
///     }
/// });
/// let _guard = cond.lock().await;
/// ready.store(true, Ordering::SeqCst);
/// cond.notify_all();
/// drop(_guard);
/// assert_eq!(consumer.await.unwrap(), "ready");
/// # }
/// ```
pub struct Condition {
    lock: Arc<Lock>,
    waiters: Mutex<WaitList<()>>,
}

impl Condition {
    /// A condition with a lock of its own: `asyncio.Condition()`.
    pub fn new() -> Condition {
        Condition::with_lock(Arc::new(Lock::new()))
    }

    /// A condition over `lock`, which other conditions and tasks may share:
    /// `asyncio.Condition(lock)`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use aio_sync::{Condition, Lock};
    ///
    /// let lock = Arc::new(Lock::new());
    /// let not_empty = Condition::with_lock(Arc::clone(&lock));
    /// let not_full = Condition::with_lock(Arc::clone(&lock));
    /// let guard = not_empty.lock().await;
    /// assert!(lock.locked() && not_full.locked());
    /// drop(guard);
    /// # }
    /// ```
    pub fn with_lock(lock: Arc<Lock>) -> Condition {
        Condition {
            lock,
            waiters: Mutex::new(WaitList::new()),
        }
    }

    /// The condition's lock.
    pub fn lock_ref(&self) -> &Arc<Lock> {
        &self.lock
    }

    /// Waits for the condition's lock: `async with cond:`.
    ///
    /// # Cancel safety
    ///
    /// As [`Lock::lock`]: dropping the future loses only its place in the queue.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::Condition;
    ///
    /// let cond = Condition::new();
    /// let guard = cond.lock().await;
    /// assert!(cond.locked());
    /// drop(guard);
    /// assert!(!cond.locked());
    /// # }
    /// ```
    pub fn lock(&self) -> ConditionLock<'_> {
        ConditionLock {
            lock: self.lock.lock(),
            of: &self.lock,
        }
    }

    /// Takes the condition's lock if it is free and nobody waits for it.
    ///
    /// # Errors
    ///
    /// [`TryLockError`] if the lock is taken.
    pub fn try_lock(&self) -> Result<ConditionGuard<'_>, TryLockError> {
        Ok(ConditionGuard {
            lock: self.lock.try_lock()?,
            of: &self.lock,
        })
    }

    /// Whether the condition's lock is taken.
    pub fn locked(&self) -> bool {
        self.lock.locked()
    }

    /// Releases the lock, waits until notified, then takes the lock back: `await
    /// cond.wait()`. Holding the guard is how the type system says "the lock is held";
    /// asyncio checks it at run time (§10.1).
    ///
    /// The waiter joins the queue of waiters *before* the lock is released, so a
    /// notification sent by the next holder of the lock cannot be missed. It may wake
    /// without the condition being true (a passed-on notification, or another waiter got
    /// there first): check again, or use [`wait_for`](Self::wait_for).
    ///
    /// # Panics
    ///
    /// If `guard` holds another lock than this condition's.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe, and no notification is lost: dropped while waiting, the waiter leaves
    /// the queue; dropped after it was notified (while it waits for the lock again), it
    /// passes its notification to the next waiter. Either way the lock is not held once the
    /// future is gone: the guard given to `wait` was released, and no new one was made.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::Arc;
    /// use aio_sync::Condition;
    ///
    /// let cond = Arc::new(Condition::new());
    /// let waiter = tokio::spawn({
    ///     let cond = Arc::clone(&cond);
    ///     async move {
    ///         let guard = cond.lock().await;
    ///         let _guard = cond.wait(guard).await;
    ///         "notified"
    ///     }
    /// });
    /// // Let the waiter start waiting, then notify it.
    /// while cond.n_waiting() == 0 {
    ///     tokio::task::yield_now().await;
    /// }
    /// let _guard = cond.lock().await;
    /// assert_eq!(cond.notify(1), 1);
    /// drop(_guard);
    /// assert_eq!(waiter.await.unwrap(), "notified");
    /// # }
    /// ```
    pub fn wait<'a>(&'a self, guard: ConditionGuard<'a>) -> ConditionWait<'a> {
        assert!(
            Arc::ptr_eq(guard.of, &self.lock),
            "Condition::wait was given the guard of another lock"
        );
        ConditionWait {
            cond: self,
            stage: WaitStage::Notified(Notified {
                cond: self,
                stage: Stage::Holding(guard),
            }),
        }
    }

    /// Waits until `predicate` returns true, checking it with the lock held: first at once,
    /// then after each notification. Returns the guard, with the lock held and the
    /// predicate true: `await cond.wait_for(predicate)`.
    ///
    /// # Panics
    ///
    /// If `guard` holds another lock than this condition's.
    ///
    /// # Cancel safety
    ///
    /// As [`wait`](Self::wait).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_sync::Condition;
    ///
    /// let cond = Condition::new();
    /// let guard = cond.lock().await;
    /// // A predicate that already holds returns at once.
    /// let _guard = cond.wait_for(guard, || true).await;
    /// # }
    /// ```
    pub fn wait_for<'a, P: FnMut() -> bool>(
        &'a self,
        guard: ConditionGuard<'a>,
        predicate: P,
    ) -> ConditionWaitFor<'a, P> {
        assert!(
            Arc::ptr_eq(guard.of, &self.lock),
            "Condition::wait_for was given the guard of another lock"
        );
        ConditionWaitFor {
            cond: self,
            predicate,
            stage: WaitForStage::Check(guard),
        }
    }

    /// Wakes up to `n` waiting tasks, the ones that have waited longest, and returns how
    /// many it woke. A notification with nobody waiting is not stored.
    ///
    /// Each woken task returns from [`wait`](Self::wait) once it has the lock again, so
    /// call this with the lock held, right after changing the state the tasks wait on.
    /// (asyncio requires the lock; Rust's `Condvar` does not, and neither does this.)
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_sync::Condition;
    ///
    /// let cond = Condition::new();
    /// assert_eq!(cond.notify(1), 0); // nobody waits: nothing is stored
    /// ```
    pub fn notify(&self, n: usize) -> usize {
        let mut wakers = Vec::new();
        let woken = self.waiters().notify(n, || (), &mut wakers);
        wakers.into_iter().for_each(Waker::wake);
        woken
    }

    /// Wakes every waiting task; returns how many.
    pub fn notify_all(&self) -> usize {
        self.notify(usize::MAX)
    }

    /// How many tasks wait to be notified.
    pub fn n_waiting(&self) -> usize {
        self.waiters().len()
    }

    fn waiters(&self) -> MutexGuard<'_, WaitList<()>> {
        // The list is consistent between statements: a panic cannot leave it half-updated.
        self.waiters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for Condition {
    fn default() -> Self {
        Condition::new()
    }
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = if self.locked() { "locked" } else { "unlocked" };
        f.debug_struct("Condition")
            .field("state", &format_args!("{state}"))
            .field("waiters", &self.n_waiting())
            .finish()
    }
}

/// Holds a [`Condition`]'s lock until dropped; returned by [`Condition::lock`]. Given to
/// [`Condition::wait`], which releases it and returns a new one once notified.
#[must_use = "dropping the guard releases the lock at once"]
pub struct ConditionGuard<'a> {
    lock: LockGuard<'a>,
    of: &'a Arc<Lock>,
}

impl fmt::Debug for ConditionGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionGuard")
            .field("lock", &self.lock)
            .finish()
    }
}

/// Future returned by [`Condition::lock`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ConditionLock<'a> {
    lock: LockFuture<'a>,
    of: &'a Arc<Lock>,
}

impl<'a> Future for ConditionLock<'a> {
    type Output = ConditionGuard<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ConditionGuard<'a>> {
        let lock = ready!(Pin::new(&mut self.lock).poll(cx));
        Poll::Ready(ConditionGuard { lock, of: self.of })
    }
}

impl fmt::Debug for ConditionLock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionLock").finish_non_exhaustive()
    }
}

/// Future returned by [`Condition::wait`]: notified, then the lock again.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ConditionWait<'a> {
    cond: &'a Condition,
    stage: WaitStage<'a>,
}

enum WaitStage<'a> {
    Notified(Notified<'a>),
    /// Notified; taking the lock again. Dropped now, the notification goes on.
    Relocking(LockFuture<'a>),
    Done,
}

impl<'a> Future for ConditionWait<'a> {
    type Output = ConditionGuard<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ConditionGuard<'a>> {
        let this = &mut *self;
        loop {
            match &mut this.stage {
                WaitStage::Notified(notified) => {
                    ready!(Pin::new(notified).poll(cx));
                    this.stage = WaitStage::Relocking(this.cond.lock.lock());
                }
                WaitStage::Relocking(relock) => {
                    let lock = ready!(Pin::new(relock).poll(cx));
                    this.stage = WaitStage::Done;
                    let of = &this.cond.lock;
                    return Poll::Ready(ConditionGuard { lock, of });
                }
                WaitStage::Done => panic!("a condition wait was polled after it completed"),
            }
        }
    }
}

impl Drop for ConditionWait<'_> {
    // Notified, it went away before it had the lock again: it leaves the lock's queue, then
    // passes the notification on.
    fn drop(&mut self) {
        if let WaitStage::Relocking(relock) = std::mem::replace(&mut self.stage, WaitStage::Done) {
            drop(relock);
            self.cond.notify(1);
        }
    }
}

impl fmt::Debug for ConditionWait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionWait").finish_non_exhaustive()
    }
}

/// Future returned by [`Condition::wait_for`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct ConditionWaitFor<'a, P> {
    cond: &'a Condition,
    predicate: P,
    stage: WaitForStage<'a>,
}

enum WaitForStage<'a> {
    /// Holding the lock: look at the predicate.
    Check(ConditionGuard<'a>),
    Waiting(ConditionWait<'a>),
    Done,
}

// The predicate is only ever called through `&mut`, never pinned.
impl<P> Unpin for ConditionWaitFor<'_, P> {}

impl<'a, P: FnMut() -> bool> Future for ConditionWaitFor<'a, P> {
    type Output = ConditionGuard<'a>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<ConditionGuard<'a>> {
        let this = &mut *self;
        loop {
            match std::mem::replace(&mut this.stage, WaitForStage::Done) {
                WaitForStage::Check(guard) => {
                    if (this.predicate)() {
                        return Poll::Ready(guard);
                    }
                    this.stage = WaitForStage::Waiting(this.cond.wait(guard));
                }
                WaitForStage::Waiting(mut wait) => match Pin::new(&mut wait).poll(cx) {
                    Poll::Ready(guard) => this.stage = WaitForStage::Check(guard),
                    Poll::Pending => {
                        this.stage = WaitForStage::Waiting(wait);
                        return Poll::Pending;
                    }
                },
                WaitForStage::Done => panic!("a condition wait was polled after it completed"),
            }
        }
    }
}

impl<P> fmt::Debug for ConditionWaitFor<'_, P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionWaitFor").finish_non_exhaustive()
    }
}

enum Stage<'a> {
    /// Holding the lock, not yet in the queue.
    Holding(ConditionGuard<'a>),
    Waiting(Key),
    Done,
}

/// Joins the queue, then releases the lock; completes when notified.
struct Notified<'a> {
    cond: &'a Condition,
    stage: Stage<'a>,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let this = &mut *self;
        // Wakers the wait list lets go of, dropped once its lock is released.
        let mut stale = Vec::new();
        let poll = match std::mem::replace(&mut this.stage, Stage::Done) {
            Stage::Holding(guard) => {
                this.stage = Stage::Waiting(this.cond.waiters().push(cx.waker()));
                // In the queue: now the lock may go.
                drop(guard);
                Poll::Pending
            }
            Stage::Waiting(key) => match this.cond.waiters().poll(key, cx.waker(), &mut stale) {
                Wait::Waiting => {
                    this.stage = Stage::Waiting(key);
                    Poll::Pending
                }
                Wait::Notified(()) => Poll::Ready(()),
            },
            Stage::Done => panic!("`Notified` polled after it completed"),
        };
        if poll.is_ready() {
            coop.made_progress();
        }
        poll
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        if let Stage::Waiting(key) = self.stage {
            let mut stale = Vec::new();
            let passed_on = self.cond.waiters().remove(key, &mut stale);
            if passed_on.is_some() {
                self.cond.notify(1);
            }
        }
    }
}
