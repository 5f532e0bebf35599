//! The permit counter under [`Semaphore`](crate::Semaphore) and
//! [`BoundedSemaphore`](crate::BoundedSemaphore): one word, `permits << 1 | WAITERS`, with
//! FIFO hand-off to waiters (see [`handoff`](crate::handoff)).
//!
//! asyncio's semantics: a strict FIFO queue, a released permit handed straight to the oldest
//! waiter (so a newcomer cannot barge past a woken waiter that has not run yet), and a
//! waiter dropped after it was handed a permit passes the permit on. Permits are taken *for
//! good*: the primitives above decide when one comes back, which is what lets asyncio's
//! unowned `acquire()` / `release()` and guards share one counter. Acquiring or releasing
//! with nobody waiting is one compare-and-swap.

use std::sync::atomic::Ordering;
use std::task::Waker;

use crate::handoff::{Acquire, WAITERS, WaitQueue, Word};
use crate::model::{AtomicUsize, const_unless_loom};
use crate::wait_list::WaitList;

/// The largest number of permits: what the word holds beside its flag, with room to spare.
pub(crate) const MAX_PERMITS: usize = usize::MAX >> 3;

/// One permit in the word.
const ONE: usize = 2;

/// A FIFO permit counter whose permits are taken for good; see the module documentation.
pub(crate) struct Permits {
    /// Free permits times [`ONE`], plus [`WAITERS`]. While tasks wait, no permit is free:
    /// a released one goes to a waiter.
    state: AtomicUsize,
    queue: WaitQueue<()>,
}

impl Permits {
    const_unless_loom! {
        /// # Panics
        ///
        /// If `permits` exceeds [`MAX_PERMITS`].
        #[track_caller]
        pub(crate) fn new(permits: usize) -> Self {
            assert!(
                permits <= MAX_PERMITS,
                "a semaphore may not have more than MAX_PERMITS permits"
            );
            Permits {
                state: AtomicUsize::new(permits * ONE),
                queue: WaitQueue::new(),
            }
        }
    }

    /// Takes one permit for good, waiting in FIFO order if there is none.
    ///
    /// Cancel safe: until it completes, the permit is not taken, and a permit handed to this
    /// waiter before it is dropped goes to the next waiter.
    pub(crate) fn acquire(&self) -> Acquire<'_, Self> {
        Acquire::new(self)
    }

    /// Takes one permit for good if one is free and nobody is waiting.
    pub(crate) fn try_acquire(&self) -> bool {
        self.try_take().is_some()
    }

    /// Gives one permit back, to the oldest waiter if there is one, unless `limit` permits
    /// are free already: then nothing changes and it returns `false`. A permit handed to a
    /// waiter that has not run yet counts as taken.
    pub(crate) fn release(&self, limit: usize) -> bool {
        loop {
            let mut state = self.state.load(Ordering::Relaxed);
            while state & WAITERS == 0 {
                if state / ONE >= limit {
                    return false;
                }
                match self.state.compare_exchange_weak(
                    state,
                    state + ONE,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return true,
                    Err(actual) => state = actual,
                }
            }
            // Tasks wait: the permit goes to the oldest, through the queue.
            let mut list = self.queue.lock();
            if let Ok(waker) = list.notify_one(()) {
                if list.len() == 0 {
                    self.state.fetch_and(!WAITERS, Ordering::AcqRel);
                }
                drop(list);
                waker.wake();
                return true;
            }
            // The last waiter left before we locked the queue: the flag is clear again.
        }
    }

    /// Free permits: 0 whenever a task waits, since a released permit goes to a waiter.
    pub(crate) fn available(&self) -> usize {
        self.state.load(Ordering::Acquire) / ONE
    }

    /// Tasks waiting for a permit (not counting those handed one that have not run yet).
    pub(crate) fn waiting(&self) -> usize {
        self.queue.len()
    }
}

impl Word for Permits {
    type Token = ();

    fn state(&self) -> &AtomicUsize {
        &self.state
    }

    fn queue(&self) -> &WaitQueue<()> {
        &self.queue
    }

    fn try_take(&self) -> Option<()> {
        let mut state = self.state.load(Ordering::Relaxed);
        while state & WAITERS == 0 && state >= ONE {
            match self.state.compare_exchange_weak(
                state,
                state - ONE,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(()),
                Err(actual) => state = actual,
            }
        }
        None
    }

    fn take_or_flag(&self) -> Option<()> {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            let (new, taken) = if state & WAITERS != 0 {
                return None;
            } else if state >= ONE {
                (state - ONE, Some(()))
            } else {
                (state | WAITERS, None)
            };
            match self
                .state
                .compare_exchange_weak(state, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return taken,
                Err(actual) => state = actual,
            }
        }
    }

    fn give_back(&self, list: &mut WaitList<()>, (): ()) -> Option<Waker> {
        match list.notify_one(()) {
            Ok(waker) => {
                if list.len() == 0 {
                    self.state.fetch_and(!WAITERS, Ordering::AcqRel);
                }
                Some(waker)
            }
            // Nobody waits, so the flag is clear: the permit, which was taken, is free again.
            Err(()) => {
                let before = self.state.fetch_add(ONE, Ordering::Release);
                debug_assert!(before & WAITERS == 0, "WAITERS set with nobody waiting");
                None
            }
        }
    }
}
