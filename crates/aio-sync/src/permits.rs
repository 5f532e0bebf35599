//! The permit counter under [`Lock`](crate::Lock), [`Semaphore`](crate::Semaphore) and
//! [`BoundedSemaphore`](crate::BoundedSemaphore).
//!
//! It is `tokio::sync::Semaphore`, which already has asyncio's semantics: a strict FIFO
//! queue, permits handed straight to the oldest waiter on release (so a newcomer cannot
//! barge past a woken waiter that has not run yet), and a waiter dropped after it was handed
//! a permit passes the permit on. What this module adds:
//!
//! * Permits are taken *for good* (`forget`): the primitives above decide when one comes
//!   back, which is what lets asyncio's unowned `acquire()` / `release()` and guards share one
//!   counter.
//! * A count of the tasks waiting, for `Debug`. It is kept on the slow path only, so an
//!   uncontended acquisition costs no more than Tokio's own.
//! * The always-ready fast path takes part in Tokio's coop budget, like Tokio's own.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::{Poll, ready};

use tokio::sync::Semaphore;
use tokio::task::coop;

use crate::waiters::Waiters;

/// The largest number of permits: Tokio's limit.
pub(crate) const MAX_PERMITS: usize = Semaphore::MAX_PERMITS;

/// A FIFO permit counter whose permits are taken for good; see the module documentation.
pub(crate) struct Permits {
    semaphore: Semaphore,
    /// Tasks that found no permit and are queued, or were handed one and have not yet run.
    waiting: Waiters,
}

impl Permits {
    /// # Panics
    ///
    /// If `permits` exceeds [`MAX_PERMITS`].
    #[track_caller]
    pub(crate) const fn new(permits: usize) -> Self {
        assert!(
            permits <= MAX_PERMITS,
            "a semaphore may not have more than MAX_PERMITS permits"
        );
        Permits {
            semaphore: Semaphore::const_new(permits),
            waiting: Waiters::new(),
        }
    }

    /// Takes one permit for good, waiting in FIFO order if there is none.
    ///
    /// Cancel safe: until it returns, the permit is not taken, and a permit handed to this
    /// waiter before it is dropped goes to the next waiter.
    pub(crate) async fn acquire(&self) {
        // Fast path: one CAS, charged to the coop budget. With the budget spent, yield
        // before taking anything. With no permit, give the budget back: Tokio's future
        // charges it when it succeeds.
        let acquired = poll_fn(|cx| {
            let coop = ready!(coop::poll_proceed(cx));
            Poll::Ready(match self.semaphore.try_acquire() {
                Ok(permit) => {
                    permit.forget();
                    coop.made_progress();
                    true
                }
                Err(_) => false,
            })
        })
        .await;
        if acquired {
            return;
        }
        // The task counts as waiting from the first poll that finds no permit.
        let mut acquire = pin!(self.semaphore.acquire());
        let mut waiting = None;
        let acquired = poll_fn(|cx| {
            let poll = acquire.as_mut().poll(cx);
            if poll.is_pending() && waiting.is_none() {
                waiting = Some(self.waiting.enter());
            }
            poll
        })
        .await;
        match acquired {
            Ok(permit) => permit.forget(),
            Err(_) => unreachable!("the semaphore is never closed"),
        }
    }

    /// Takes one permit for good if one is free and nobody is waiting.
    pub(crate) fn try_acquire(&self) -> bool {
        match self.semaphore.try_acquire() {
            Ok(permit) => {
                permit.forget();
                true
            }
            Err(_) => false,
        }
    }

    /// Gives one permit back: to the oldest waiter if there is one.
    ///
    /// # Panics
    ///
    /// If the count would exceed [`MAX_PERMITS`].
    pub(crate) fn release(&self) {
        self.semaphore.add_permits(1);
    }

    /// Free permits: 0 whenever a task waits, since a released permit goes to a waiter.
    pub(crate) fn available(&self) -> usize {
        self.semaphore.available_permits()
    }

    pub(crate) fn waiting(&self) -> usize {
        self.waiting.get()
    }
}
