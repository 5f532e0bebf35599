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
    /// The most permits that may be free: a bounded semaphore's bound, or [`MAX_PERMITS`].
    /// A release checks it and adds in one compare-and-swap, so two releases cannot both
    /// pass the check for the last taken permit.
    limit: usize,
}

/// What [`Permits::add_free`] did.
enum Add {
    Added,
    /// `limit` permits are free already.
    Full,
    /// Tasks wait: the permit must go to the oldest, through the queue.
    Waiters,
}

impl Permits {
    const_unless_loom! {
        /// `permits` free permits, and never more than `limit` free.
        ///
        /// # Panics
        ///
        /// If `permits` exceeds `limit` or [`MAX_PERMITS`].
        #[track_caller]
        pub(crate) fn new(permits: usize, limit: usize) -> Self {
            assert!(
                permits <= MAX_PERMITS && limit <= MAX_PERMITS,
                "a semaphore may not have more than MAX_PERMITS permits"
            );
            assert!(permits <= limit, "more permits than the limit");
            Permits {
                state: AtomicUsize::new(permits * ONE),
                queue: WaitQueue::new(),
                limit,
            }
        }
    }

    /// Takes one permit for good, waiting in FIFO order if there is none.
    ///
    /// Cancel safe: until it completes, the permit is not taken, and a permit handed to this
    /// waiter before it is dropped goes to the next waiter.
    pub(crate) fn acquire(&self) -> Acquire<&Self> {
        Acquire::new(self)
    }

    /// Takes one permit for good if one is free and nobody is waiting.
    pub(crate) fn try_acquire(&self) -> bool {
        self.try_take().is_some()
    }

    /// Gives one permit back, to the oldest waiter if there is one, unless the limit's worth
    /// of permits are free already: then nothing changes and it returns `false`. A permit
    /// handed to a waiter that has not run yet counts as taken.
    pub(crate) fn release(&self) -> bool {
        loop {
            match self.add_free() {
                Add::Added => return true,
                Add::Full => return false,
                Add::Waiters if self.limit == 0 => return false,
                Add::Waiters => {}
            }
            let mut list = self.queue.lock();
            if list.len() > 0 {
                let waker = self.hand_on(&mut list);
                drop(list);
                waker.wake();
                return true;
            }
            // The last waiter left before we locked the queue: the flag is clear again.
        }
    }

    /// Adds a free permit if nobody waits and fewer than the limit are free.
    fn add_free(&self) -> Add {
        let mut state = self.state.load(Ordering::Relaxed);
        loop {
            if state & WAITERS != 0 {
                return Add::Waiters;
            }
            if state / ONE >= self.limit {
                return Add::Full;
            }
            match self.state.compare_exchange_weak(
                state,
                state + ONE,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Add::Added,
                Err(actual) => state = actual,
            }
        }
    }

    /// With the queue locked and a task waiting: hands a permit to the oldest, and clears
    /// the flag if it was the last. Returns its waker.
    fn hand_on(&self, list: &mut WaitList<()>) -> Waker {
        let Ok(waker) = list.notify_one(()) else {
            unreachable!("a task waits");
        };
        if list.len() == 0 {
            self.state.fetch_and(!WAITERS, Ordering::AcqRel);
        }
        waker
    }

    /// Free permits: 0 whenever a task waits, since a released permit goes to a waiter.
    pub(crate) fn available(&self) -> usize {
        self.state.load(Ordering::Acquire) / ONE
    }

    /// The most permits that may be free.
    pub(crate) fn limit(&self) -> usize {
        self.limit
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

    fn free_turn(&self, state: usize) -> Option<(usize, ())> {
        (state >= ONE).then(|| (state - ONE, ()))
    }

    fn give_back(&self, list: &mut WaitList<()>, (): ()) -> Option<Waker> {
        if list.len() > 0 {
            return Some(self.hand_on(list));
        }
        // Nobody waits, so the flag is clear: the permit, which was taken, is free again,
        // unless releases made while it was handed out have filled the semaphore up to its
        // bound meanwhile; then it is dropped, and the bound holds.
        let added = self.add_free();
        debug_assert!(
            !matches!(added, Add::Waiters),
            "WAITERS set with nobody waiting"
        );
        None
    }
}
