//! The FIFO list of waiting tasks that `Condition`, `Barrier` and the queues share.
//!
//! A [`WaitList`] is plain data: it lives inside its primitive's mutex, next to the state
//! the waiters wait on, so that checking the state and joining the list happen under one
//! lock and no wake-up can slip between them. Each waiter owns a [`Key`] to its slot. A
//! notifier marks the oldest waiting slot *notified*, with a payload (an item, an arrival
//! index, a unit), and hands back its waker to be woken once the lock is released. The
//! waiter takes the payload on its next poll. A waiter that goes away removes its slot, and
//! gets back the payload it was handed but never took, so that its primitive can pass it on:
//! nothing a waiter was given is lost with it.
//!
//! Slots are kept in a slab threaded with a doubly linked list of the waiting ones, so
//! joining, leaving and notifying are O(1), and the slab reuses its memory: a steady stream
//! of waiters does not allocate.

use std::task::Waker;

/// A waiter's place in a [`WaitList`], held by the waiting future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key(usize);

/// What a waiter finds when it looks at its slot.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wait<P> {
    /// Still waiting.
    Waiting,
    /// Notified with this payload; the slot is gone.
    Notified(P),
}

#[derive(Debug)]
struct Slot<P> {
    waker: Option<Waker>,
    state: SlotState<P>,
}

#[derive(Debug)]
enum SlotState<P> {
    /// In the list, between `prev` and `next` (older and newer waiters).
    Waiting {
        prev: Option<usize>,
        next: Option<usize>,
    },
    /// Out of the list, with what the notifier handed over.
    Notified(P),
}

#[derive(Debug)]
enum Entry<P> {
    Used(Slot<P>),
    /// A free entry, and the next free one.
    Free(Option<usize>),
}

/// A FIFO list of waiters; see the module documentation.
#[derive(Debug)]
pub(crate) struct WaitList<P> {
    entries: Vec<Entry<P>>,
    free: Option<usize>,
    /// The oldest waiting slot, and the newest.
    head: Option<usize>,
    tail: Option<usize>,
    waiting: usize,
}

impl<P> Default for WaitList<P> {
    fn default() -> Self {
        WaitList {
            entries: Vec::new(),
            free: None,
            head: None,
            tail: None,
            waiting: 0,
        }
    }
}

impl<P> WaitList<P> {
    pub(crate) fn new() -> Self {
        WaitList::default()
    }

    /// How many waiters are waiting (not yet notified).
    pub(crate) fn len(&self) -> usize {
        self.waiting
    }

    /// Joins the list at the back.
    pub(crate) fn push(&mut self, waker: &Waker) -> Key {
        let slot = Slot {
            waker: Some(waker.clone()),
            state: SlotState::Waiting {
                prev: self.tail,
                next: None,
            },
        };
        let index = match self.free {
            Some(index) => {
                let Entry::Free(next_free) = self.entries[index] else {
                    unreachable!("the free list holds only free entries");
                };
                self.free = next_free;
                self.entries[index] = Entry::Used(slot);
                index
            }
            None => {
                self.entries.push(Entry::Used(slot));
                self.entries.len() - 1
            }
        };
        match self.tail {
            Some(tail) => self.set_next(tail, Some(index)),
            None => self.head = Some(index),
        }
        self.tail = Some(index);
        self.waiting += 1;
        Key(index)
    }

    /// Looks at a waiter's slot: takes the payload if it was notified (the slot is then
    /// gone), or keeps `waker` to be woken if it still waits. A waker it replaces goes to
    /// `stale`, for the caller to drop once its lock is released: a waker's drop may run
    /// code that uses the primitive.
    pub(crate) fn poll(&mut self, key: Key, waker: &Waker, stale: &mut Vec<Waker>) -> Wait<P> {
        let slot = self.slot_mut(key);
        if let SlotState::Waiting { .. } = slot.state {
            match &mut slot.waker {
                Some(old) if old.will_wake(waker) => {}
                old => stale.extend(old.replace(waker.clone())),
            }
            return Wait::Waiting;
        }
        match self.release(key.0).state {
            SlotState::Notified(payload) => Wait::Notified(payload),
            SlotState::Waiting { .. } => unreachable!("checked above"),
        }
    }

    /// Leaves the list: the waiter is going away. Returns the payload it was handed but
    /// never took, for its primitive to pass on. Its waker goes to `stale`, as for
    /// [`poll`](Self::poll).
    pub(crate) fn remove(&mut self, key: Key, stale: &mut Vec<Waker>) -> Option<P> {
        if let SlotState::Waiting { .. } = self.slot_mut(key).state {
            self.unlink(key.0);
        }
        let slot = self.release(key.0);
        stale.extend(slot.waker);
        match slot.state {
            SlotState::Notified(payload) => Some(payload),
            SlotState::Waiting { .. } => None,
        }
    }

    /// Notifies the oldest waiter with `payload`. Returns its waker, to wake once the lock
    /// is released, or hands `payload` back if nobody waits.
    pub(crate) fn notify_one(&mut self, payload: P) -> Result<Waker, P> {
        if self.head.is_none() {
            return Err(payload);
        }
        Ok(self
            .notify_one_with(|_| payload)
            .expect("checked that somebody waits"))
    }

    /// Notifies the oldest waiter with the payload `make` builds, given that waiter's waker.
    /// Returns the waker, or `None` if nobody waits.
    pub(crate) fn notify_one_with(&mut self, make: impl FnOnce(&Waker) -> P) -> Option<Waker> {
        let index = self.head?;
        self.unlink(index);
        let Entry::Used(slot) = &mut self.entries[index] else {
            unreachable!("the list holds only used entries");
        };
        let waker = slot.waker.take().expect("a waiting slot has a waker");
        slot.state = SlotState::Notified(make(&waker));
        Some(waker)
    }

    /// Notifies up to `n` of the oldest waiters, each with `payload()`, and adds their
    /// wakers to `wakers`. Returns how many were notified.
    pub(crate) fn notify(
        &mut self,
        n: usize,
        mut payload: impl FnMut() -> P,
        wakers: &mut Vec<Waker>,
    ) -> usize {
        let mut notified = 0;
        while notified < n {
            let Some(waker) = self.notify_one_with(|_| payload()) else {
                break;
            };
            wakers.push(waker);
            notified += 1;
        }
        notified
    }

    fn slot_mut(&mut self, key: Key) -> &mut Slot<P> {
        match &mut self.entries[key.0] {
            Entry::Used(slot) => slot,
            Entry::Free(_) => panic!("a wait-list key outlived its slot"),
        }
    }

    fn set_next(&mut self, index: usize, next: Option<usize>) {
        if let Entry::Used(Slot {
            state: SlotState::Waiting { next: n, .. },
            ..
        }) = &mut self.entries[index]
        {
            *n = next;
        }
    }

    fn set_prev(&mut self, index: usize, prev: Option<usize>) {
        if let Entry::Used(Slot {
            state: SlotState::Waiting { prev: p, .. },
            ..
        }) = &mut self.entries[index]
        {
            *p = prev;
        }
    }

    /// Takes a waiting slot out of the list; it stays in the slab.
    fn unlink(&mut self, index: usize) {
        let Entry::Used(Slot {
            state: SlotState::Waiting { prev, next },
            ..
        }) = self.entries[index]
        else {
            unreachable!("only waiting slots are in the list");
        };
        match prev {
            Some(prev) => self.set_next(prev, next),
            None => self.head = next,
        }
        match next {
            Some(next) => self.set_prev(next, prev),
            None => self.tail = prev,
        }
        self.waiting -= 1;
    }

    /// Frees a slot that is out of the list, and returns it.
    fn release(&mut self, index: usize) -> Slot<P> {
        let entry = std::mem::replace(&mut self.entries[index], Entry::Free(self.free));
        self.free = Some(index);
        match entry {
            Entry::Used(slot) => slot,
            Entry::Free(_) => unreachable!("released twice"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Wake, Waker};

    use super::{Wait, WaitList};

    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn waker() -> (Waker, Arc<CountingWaker>) {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        (Waker::from(Arc::clone(&counter)), counter)
    }

    #[test]
    fn notifies_in_fifo_order() {
        let (w, _) = waker();
        let mut list = WaitList::new();
        let keys: Vec<_> = (0..3).map(|_| list.push(&w)).collect();
        assert_eq!(list.len(), 3);
        for i in 0..3 {
            assert!(list.notify_one(i).is_ok());
        }
        for (i, key) in keys.into_iter().enumerate() {
            assert_eq!(list.poll(key, &w, &mut Vec::new()), Wait::Notified(i));
        }
        assert_eq!(list.len(), 0);
        assert!(matches!(list.notify_one(9), Err(9)));
    }

    #[test]
    fn a_waiter_that_leaves_is_skipped() {
        let (w, _) = waker();
        let mut list = WaitList::new();
        let a = list.push(&w);
        let b = list.push(&w);
        let c = list.push(&w);
        assert_eq!(list.remove(b, &mut Vec::new()), None);
        assert_eq!(list.len(), 2);
        list.notify_one('x').unwrap();
        list.notify_one('y').unwrap();
        assert_eq!(list.poll(a, &w, &mut Vec::new()), Wait::Notified('x'));
        assert_eq!(list.poll(c, &w, &mut Vec::new()), Wait::Notified('y'));
    }

    #[test]
    fn a_notified_waiter_that_leaves_hands_its_payload_back() {
        let (w, _) = waker();
        let mut list = WaitList::new();
        let a = list.push(&w);
        let b = list.push(&w);
        list.notify_one("item").unwrap();
        assert_eq!(list.remove(a, &mut Vec::new()), Some("item"));
        // Its primitive passes it on.
        list.notify_one("item").unwrap();
        assert_eq!(list.poll(b, &w, &mut Vec::new()), Wait::Notified("item"));
    }

    #[test]
    fn notify_wakes_after_the_fact_and_keeps_the_newest_waker() {
        let (first, first_count) = waker();
        let (second, second_count) = waker();
        let mut list = WaitList::new();
        let key = list.push(&first);
        assert_eq!(list.poll(key, &second, &mut Vec::new()), Wait::Waiting);
        let mut wakers = Vec::new();
        assert_eq!(list.notify(5, || (), &mut wakers), 1);
        wakers.into_iter().for_each(Waker::wake);
        assert_eq!(first_count.0.load(Ordering::SeqCst), 0);
        assert_eq!(second_count.0.load(Ordering::SeqCst), 1);
        assert_eq!(list.poll(key, &second, &mut Vec::new()), Wait::Notified(()));
    }

    #[test]
    fn slots_are_reused() {
        let (w, _) = waker();
        let mut list = WaitList::<u32>::new();
        for _ in 0..1000 {
            let a = list.push(&w);
            let b = list.push(&w);
            list.remove(a, &mut Vec::new());
            list.notify_one(1).unwrap();
            assert_eq!(list.poll(b, &w, &mut Vec::new()), Wait::Notified(1));
        }
        assert!(list.entries.len() <= 2);
    }
}

/// A loom model of the protocol every user of the list follows: join and check under one
/// lock, wake after unlocking, and pass on what a departing waiter was handed. Its users
/// (`Barrier`, the queues, `Condition`) have models of their own in `tests/loom.rs`.
#[cfg(all(test, aio_loom))]
mod model {
    use std::sync::Arc as StdArc;
    use std::task::{Wake, Waker};

    use loom::sync::{Arc, Mutex, Notify};
    use loom::thread;

    use super::{Key, Wait, WaitList};

    struct Unpark(Notify);

    impl Wake for Unpark {
        fn wake(self: StdArc<Self>) {
            self.0.notify();
        }
    }

    /// Payloads nobody waited for, and the waiters.
    type Mailbox = Mutex<(Vec<u32>, WaitList<u32>)>;

    /// Hands `payload` to the oldest waiter, or keeps it.
    fn give(mailbox: &Mailbox, payload: u32) {
        let woken = {
            let mut state = mailbox.lock().unwrap();
            match state.1.notify_one(payload) {
                Ok(waker) => Some(waker),
                Err(payload) => {
                    state.0.push(payload);
                    None
                }
            }
        };
        woken.into_iter().for_each(Waker::wake);
    }

    /// Takes a kept payload or joins the list; then waits, polling `rounds` times at most.
    /// Leaving early passes on a payload it was handed. Returns what it took.
    fn take(mailbox: &Mailbox, rounds: Option<usize>) -> Option<u32> {
        let unpark = StdArc::new(Unpark(Notify::new()));
        let waker = Waker::from(StdArc::clone(&unpark));
        let key: Key = {
            let mut state = mailbox.lock().unwrap();
            if let Some(payload) = state.0.pop() {
                return Some(payload);
            }
            state.1.push(&waker)
        };
        let mut stale = Vec::new();
        for _ in 0..rounds.unwrap_or(usize::MAX) {
            if let Wait::Notified(payload) = mailbox.lock().unwrap().1.poll(key, &waker, &mut stale)
            {
                return Some(payload);
            }
            if rounds.is_none() {
                unpark.0.wait();
            }
        }
        let handed = mailbox.lock().unwrap().1.remove(key, &mut stale);
        if let Some(payload) = handed {
            give(mailbox, payload);
        }
        None
    }

    #[test]
    fn every_payload_is_taken_once_though_a_waiter_leaves() {
        loom::model(|| {
            let mailbox: Arc<Mailbox> = Arc::new(Mutex::new((Vec::new(), WaitList::new())));
            let leaving = thread::spawn({
                let mailbox = Arc::clone(&mailbox);
                move || take(&mailbox, Some(1))
            });
            let staying = thread::spawn({
                let mailbox = Arc::clone(&mailbox);
                move || take(&mailbox, None)
            });
            give(&mailbox, 1);
            give(&mailbox, 2);
            let mut taken: Vec<u32> = [leaving.join().unwrap(), staying.join().unwrap()]
                .into_iter()
                .flatten()
                .collect();
            let mut state = mailbox.lock().unwrap();
            taken.append(&mut state.0);
            taken.sort_unstable();
            assert_eq!(taken, [1, 2]);
            assert_eq!(state.1.len(), 0);
        });
    }
}
