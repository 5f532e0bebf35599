//! FIFO hand-off over one atomic word: what [`Lock`](crate::Lock) and the semaphores are
//! built on. ([`Event`](crate::Event) uses its [`WAITERS`] bit and [`WaitQueue`] too, for a
//! wake-up of every waiter rather than a hand-off.)
//!
//! Each primitive keeps its whole state in one word ([`Word`]) that has a [`WAITERS`] bit.
//! While the bit is clear, taking and giving back are one compare-and-swap each and no lock
//! is touched. A task that finds nothing to take locks the primitive's [`WaitQueue`], sets
//! the bit and joins the queue's [`WaitList`]. While the bit is set, every give-back goes
//! through the queue's lock and hands what was given back straight to the oldest waiter, in
//! the word and in the waiter's slot at once: nobody barges past a waiter, not even one that
//! was handed its turn and has not run yet.
//!
//! The invariant, kept by changing the bit only with the queue locked: **the `WAITERS` bit
//! is set exactly when the wait list holds a waiting task.** A task that finds the bit
//! clear on its fast path and then loses a race with a new waiter sees its compare-and-swap
//! fail, and takes the slow path.
//!
//! The queue is allocated on first contention, so a primitive that is never contended is
//! one word and one pointer.

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{OnceLock, PoisonError};
use std::task::{Context, Poll, Waker, ready};

use tokio::task::coop;

use crate::model::{AtomicUsize, Mutex, MutexGuard};
use crate::wait_list::{Key, Wait, WaitList};

/// Set in a [`Word`] while tasks wait in its queue.
pub(crate) const WAITERS: usize = 1;

/// A primitive's state word, and the queue its waiters wait in. A [`Token`](Self::Token)
/// is what a task holds once it has taken its turn: a permit, or the lock's acquisition.
pub(crate) trait Word: Sync {
    type Token: Send;

    fn state(&self) -> &AtomicUsize;

    fn queue(&self) -> &WaitQueue<Self::Token>;

    /// If the word `state` has a turn free: the word once it is taken, and its token.
    fn free_turn(&self, state: usize) -> Option<(usize, Self::Token)>;

    /// Takes a turn without waiting, if one is free and nobody waits.
    fn try_take(&self) -> Option<Self::Token> {
        let mut state = self.state().load(Ordering::Relaxed);
        while state & WAITERS == 0 {
            let (new, token) = self.free_turn(state)?;
            match self.state().compare_exchange_weak(
                state,
                new,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Some(token),
                Err(actual) => state = actual,
            }
        }
        None
    }

    /// With the queue locked: takes a turn if one is free and nobody waits; otherwise sets
    /// [`WAITERS`], and the caller joins the list.
    fn take_or_flag(&self) -> Option<Self::Token> {
        let mut state = self.state().load(Ordering::Relaxed);
        loop {
            if state & WAITERS != 0 {
                return None;
            }
            let (new, taken) = match self.free_turn(state) {
                Some((new, token)) => (new, Some(token)),
                None => (state | WAITERS, None),
            };
            match self.state().compare_exchange_weak(
                state,
                new,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return taken,
                Err(actual) => state = actual,
            }
        }
    }

    /// With the queue locked: gives back the turn `token` holds, to the oldest waiter (whose
    /// waker is returned, to wake once the queue is unlocked) or to the word. Clears
    /// [`WAITERS`] when the last waiter is served.
    fn give_back(&self, list: &mut WaitList<Self::Token>, token: Self::Token) -> Option<Waker>;

    /// A waiter has taken the turn it was handed.
    fn taken(&self, _token: &Self::Token) {}
}

/// The waiters of a [`Word`]: a [`WaitList`] under a mutex, allocated on first use.
pub(crate) struct WaitQueue<T> {
    list: OnceLock<Box<Mutex<WaitList<T>>>>,
}

impl<T> WaitQueue<T> {
    pub(crate) const fn new() -> Self {
        WaitQueue {
            list: OnceLock::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, WaitList<T>> {
        self.list
            .get_or_init(|| Box::new(Mutex::new(WaitList::new())))
            .lock()
            // The list is consistent between statements: a panic cannot leave it half-updated.
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// How many tasks wait (not counting those handed their turn that have not run yet).
    pub(crate) fn len(&self) -> usize {
        self.list.get().map_or(0, |list| {
            list.lock().unwrap_or_else(PoisonError::into_inner).len()
        })
    }
}

/// Gives back the turn `token` holds, through the queue: for a give-back that found
/// [`WAITERS`] set.
pub(crate) fn give_back_slow<W: Word>(word: &W, token: W::Token) {
    let waker = word.give_back(&mut word.queue().lock(), token);
    if let Some(waker) = waker {
        waker.wake();
    }
}

/// Waits for a turn of `W`, in FIFO order; see the module documentation.
///
/// Takes part in Tokio's coop budget: with the budget spent, it yields before it takes
/// anything.
///
/// Cancel safe: until it completes, nothing is taken, and a turn handed to it before it is
/// dropped goes to the next waiter.
///
/// `P` holds the primitive: a reference, or an `Arc` for the owned forms.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub(crate) struct Acquire<P: Deref<Target: Word>> {
    word: P,
    stage: Stage,
}

enum Stage {
    Start,
    Waiting(Key),
    Done,
}

impl<P: Deref<Target: Word>> Acquire<P> {
    pub(crate) fn new(word: P) -> Self {
        Acquire {
            word,
            stage: Stage::Start,
        }
    }

    /// What holds the primitive.
    pub(crate) fn word(&self) -> &P {
        &self.word
    }
}

impl<P: Deref<Target: Word> + Unpin> Future for Acquire<P> {
    type Output = <P::Target as Word>::Token;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let coop = ready!(coop::poll_proceed(cx));
        let this = self.get_mut();
        let word = &*this.word;
        let taken = match this.stage {
            Stage::Start => word.try_take().or_else(|| {
                let mut list = word.queue().lock();
                let taken = word.take_or_flag();
                if taken.is_none() {
                    this.stage = Stage::Waiting(list.push(cx.waker()));
                }
                taken
            }),
            Stage::Waiting(key) => {
                let mut stale = Vec::new();
                let polled = word.queue().lock().poll(key, cx.waker(), &mut stale);
                // The waker replaced goes now that the queue is unlocked: its drop may run
                // code that uses the primitive.
                drop(stale);
                match polled {
                    Wait::Waiting => None,
                    Wait::Notified(token) => {
                        word.taken(&token);
                        Some(token)
                    }
                }
            }
            Stage::Done => panic!("an acquire was polled after it completed"),
        };
        match taken {
            Some(token) => {
                this.stage = Stage::Done;
                coop.made_progress();
                Poll::Ready(token)
            }
            None => Poll::Pending,
        }
    }
}

impl<P: Deref<Target: Word>> Drop for Acquire<P> {
    fn drop(&mut self) {
        let Stage::Waiting(key) = self.stage else {
            return;
        };
        let word = &*self.word;
        let mut stale = Vec::new();
        let waker = {
            let mut list = word.queue().lock();
            match list.remove(key, &mut stale) {
                // Handed a turn it never took: it goes on.
                Some(token) => word.give_back(&mut list, token),
                None => {
                    if list.len() == 0 {
                        word.state().fetch_and(!WAITERS, Ordering::AcqRel);
                    }
                    None
                }
            }
        };
        drop(stale);
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}
