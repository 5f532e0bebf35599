//! The ring a FIFO [`Queue`](crate::Queue) keeps its items in: a fixed array of slots, each
//! with a stamp, and an atomic `head` (where the next get takes) and `tail` (where the next
//! put puts). While nobody waits, a put and a get are each one compare-and-swap and never
//! touch the queue's mutex, and producers and consumers touch different cache lines.
//!
//! # Stamps
//!
//! A stamp is a lap and an index, `lap * ONE_LAP + index`, where `ONE_LAP` is a power of two
//! greater than the capacity, so that moving on is an increment or a jump to the next lap,
//! never a division. Slot `i` starts with stamp `i`. A put at stamp `s` may fill the slot
//! only while its stamp is `s` (empty for this lap) and leaves it `s + 1` (full); a get at
//! stamp `s` may empty it only while it is `s + 1` and leaves it `s + ONE_LAP` (empty for
//! the next lap). A put or get first claims its stamp by moving `tail` or `head` on, then
//! writes or reads the slot, then publishes the slot's new stamp: whoever comes next for the
//! slot waits for that. Stamps are `u64` and only grow: at one put a nanosecond they would
//! last centuries, so none ever wraps.
//!
//! # Closed
//!
//! `head` and `tail` hold their stamp shifted left by one, and a [`CLOSED`] bit. While it is
//! set, the lock-free [`try_push`](Ring::try_push) and [`try_pop`](Ring::try_pop) refuse, and
//! only the holder of the queue's mutex moves items, with the `*_closed` methods. The queue
//! closes both ends whenever it takes its mutex to change anything, and before it lets go of
//! the mutex it opens each end whose fast path can break no rule then (the rules are in
//! `shared.rs`). So a put on the fast path never misses a waiting get, nor a get a waiting
//! put, and neither takes an item reserved for a woken get or room kept for a woken put.
//!
//! A put or get on the fast path that claimed its stamp before the ring closed still writes
//! or reads its slot; the mutex holder, finding the slot not yet published, waits for it. It
//! waits for a few instructions, the time between a claim and its publication.
//!
//! Closing, opening and the `*_closed` methods take the ring's [`Key`], which exists once
//! per ring and lives under the queue's mutex: holding it `&mut` is holding the mutex, so
//! the methods are safe to call, and the key knows whether it closed the ring.

#![allow(unsafe_code)]

use std::mem::MaybeUninit;
use std::panic::{RefUnwindSafe, UnwindSafe};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release, SeqCst};

use crate::model::{AtomicU64, Backoff, UnsafeCell};

/// Set in `head` and `tail` while the ring is closed to the fast paths.
const CLOSED: u64 = 1;

/// The most slots a ring has: a queue bounded above this, or unbounded, keeps the items that
/// do not fit in the ring in a locked buffer behind it. Small under loom, so that the models
/// cover that buffer too.
const MAX_SLOTS: usize = if cfg!(aio_loom) { 2 } else { 1024 };

/// The slots of an unbounded queue's ring.
const UNBOUNDED_SLOTS: usize = if cfg!(aio_loom) { 2 } else { 256 };

/// The most bytes a ring's slots take, so that a queue of large items does not allocate its
/// whole bound up front.
const MAX_BYTES: usize = 64 * 1024;

/// The right to close and open a ring and to move its items while it is closed: one per
/// ring, kept under the queue's mutex.
#[derive(Debug)]
pub(super) struct Key {
    /// Which ring: the address of its slots.
    ring: usize,
    head_closed: bool,
    tail_closed: bool,
}

pub(super) struct Ring<T> {
    head: Padded<AtomicU64>,
    tail: Padded<AtomicU64>,
    slots: Box<[Slot<T>]>,
    /// A power of two greater than the capacity.
    one_lap: u64,
}

struct Slot<T> {
    stamp: AtomicU64,
    item: UnsafeCell<MaybeUninit<T>>,
}

/// Keeps `head` and `tail` on cache lines of their own, so that a producer and a consumer
/// do not take the line from each other. 128 bytes: two lines, as modern x86 prefetches
/// lines in pairs.
#[repr(align(128))]
struct Padded<T>(T);

// SAFETY: a `Ring` hands each item from the thread that put it to the one that gets it, once:
// the stamps give every slot to one thread at a time (see the module's comment), so sharing
// the ring between threads is sound when items may be sent between them.
unsafe impl<T: Send> Sync for Ring<T> {}
// SAFETY: as above; the ring owns its items.
unsafe impl<T: Send> Send for Ring<T> {}

// A panic cannot leave the ring half-changed: no code of the user's runs between a claim and
// its publication (items are moved, never cloned or dropped there). So a queue stays usable
// after a panic elsewhere, as it was before the ring; the cells would otherwise make every
// queue type lose these traits.
impl<T> RefUnwindSafe for Ring<T> {}
impl<T> UnwindSafe for Ring<T> {}

impl<T> Ring<T> {
    /// The ring for a FIFO queue of at most `maxsize` items (0 for unbounded), and its key.
    pub(super) fn for_maxsize(maxsize: usize) -> (Self, Key) {
        let wanted = if maxsize == 0 {
            UNBOUNDED_SLOTS
        } else {
            maxsize.min(MAX_SLOTS)
        };
        let fits = (MAX_BYTES / size_of::<Slot<T>>().max(1)).max(1);
        let ring = Self::with_capacity(wanted.min(fits));
        let key = Key {
            ring: ring.slots.as_ptr() as usize,
            head_closed: false,
            tail_closed: false,
        };
        (ring, key)
    }

    fn check_key(&self, key: &Key) {
        assert_eq!(key.ring, self.slots.as_ptr() as usize, "another ring's key");
    }

    /// Checks that `key` is this ring's, and that it closed both ends.
    fn check_closed(&self, key: &Key) {
        self.check_key(key);
        assert!(key.head_closed && key.tail_closed, "the ring is not closed");
    }

    fn with_capacity(capacity: usize) -> Self {
        assert!(capacity > 0, "a ring has at least one slot");
        let slots = (0..capacity as u64)
            .map(|stamp| Slot {
                stamp: AtomicU64::new(stamp),
                item: UnsafeCell::new(MaybeUninit::uninit()),
            })
            .collect();
        Ring {
            head: Padded(AtomicU64::new(0)),
            tail: Padded(AtomicU64::new(0)),
            slots,
            one_lap: (capacity as u64 + 1).next_power_of_two(),
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.slots.len()
    }

    fn slot(&self, stamp: u64) -> &Slot<T> {
        &self.slots[(stamp & (self.one_lap - 1)) as usize]
    }

    /// The stamp after `stamp`: the next index, or the first of the next lap.
    fn next(&self, stamp: u64) -> u64 {
        let index = stamp & (self.one_lap - 1);
        if index + 1 < self.slots.len() as u64 {
            stamp + 1
        } else {
            (stamp & !(self.one_lap - 1)) + self.one_lap
        }
    }

    /// How many puts or gets came before `stamp`.
    fn count(&self, stamp: u64) -> u64 {
        (stamp >> self.one_lap.trailing_zeros()) * self.slots.len() as u64
            + (stamp & (self.one_lap - 1))
    }

    /// How many items were ever put into the ring, including a put that has claimed its
    /// slot and not yet written it.
    pub(super) fn pushed(&self) -> u64 {
        self.count(self.tail.0.load(Acquire) >> 1)
    }

    /// How many items are in the ring: a size it had at one moment, even while puts and
    /// gets go on (exact while the ring is closed).
    pub(super) fn len(&self) -> usize {
        loop {
            let tail = self.tail.0.load(SeqCst) >> 1;
            let head = self.head.0.load(SeqCst) >> 1;
            // The tail did not move while the head was read: the two held together then.
            // (Read apart, a put and a get between the reads would show a size the ring
            // never had.)
            if self.tail.0.load(SeqCst) >> 1 == tail {
                let len = self.count(tail) - self.count(head);
                debug_assert!(len <= self.slots.len() as u64, "more items than slots");
                return len as usize;
            }
        }
    }

    /// Puts `item` without waiting and without the mutex, if the ring is open and has room;
    /// hands it back otherwise (closed, full, or a get of the slot still in flight), for the
    /// queue's slow path.
    pub(super) fn try_push(&self, item: T) -> Result<(), T> {
        let mut backoff = Backoff::default();
        let mut word = self.tail.0.load(Relaxed);
        loop {
            if word & CLOSED != 0 {
                return Err(item);
            }
            let stamp = word >> 1;
            let slot = self.slot(stamp);
            let seen = slot.stamp.load(Acquire);
            if seen == stamp {
                // Empty for this lap: claim it. The compare-and-swap fails if the ring was
                // closed meanwhile.
                let next = self.next(stamp) << 1;
                match self
                    .tail
                    .0
                    .compare_exchange_weak(word, next, AcqRel, Relaxed)
                {
                    Ok(_) => {
                        // SAFETY: the claim gives this slot to this thread alone until the
                        // stamp below publishes it; the get of the last lap's item published
                        // `seen == stamp` after it read the item out (Release/Acquire).
                        slot.item
                            .with_mut(|item_ptr| unsafe { (*item_ptr).write(item) });
                        slot.stamp.store(stamp + 1, Release);
                        return Ok(());
                    }
                    Err(actual) => word = actual,
                }
            } else if seen > stamp {
                // Another put took this stamp since `tail` was read.
                backoff.snooze();
                word = self.tail.0.load(Relaxed);
            } else {
                // The slot still holds the last lap's item: full.
                return Err(item);
            }
        }
    }

    /// Gets the oldest item without waiting and without the mutex, if the ring is open and
    /// holds one; `None` otherwise (closed, empty, or the put of the oldest still in flight),
    /// for the queue's slow path.
    pub(super) fn try_pop(&self) -> Option<T> {
        let mut backoff = Backoff::default();
        let mut word = self.head.0.load(Relaxed);
        loop {
            if word & CLOSED != 0 {
                return None;
            }
            let stamp = word >> 1;
            let slot = self.slot(stamp);
            let seen = slot.stamp.load(Acquire);
            if seen == stamp + 1 {
                let next = self.next(stamp) << 1;
                match self
                    .head
                    .0
                    .compare_exchange_weak(word, next, AcqRel, Relaxed)
                {
                    Ok(_) => {
                        // SAFETY: the claim gives this slot to this thread alone until the
                        // stamp below publishes it empty; its put published `stamp + 1`
                        // after writing the item (Release/Acquire).
                        let item = slot
                            .item
                            .with(|item_ptr| unsafe { (*item_ptr).assume_init_read() });
                        slot.stamp.store(stamp + self.one_lap, Release);
                        return Some(item);
                    }
                    Err(actual) => word = actual,
                }
            } else if seen > stamp + 1 {
                // Another get took this stamp since `head` was read.
                backoff.snooze();
                word = self.head.0.load(Relaxed);
            } else {
                // Empty for this lap.
                return None;
            }
        }
    }

    /// Closes both ends of the ring to the fast paths, if `key` has not already.
    pub(super) fn close(&self, key: &mut Key) {
        self.check_key(key);
        if !key.head_closed {
            self.head.0.fetch_or(CLOSED, AcqRel);
            key.head_closed = true;
        }
        if !key.tail_closed {
            self.tail.0.fetch_or(CLOSED, AcqRel);
            key.tail_closed = true;
        }
    }

    /// Opens the ends of the ring that `key` closed, to the fast paths: the head (gets) if
    /// `gets`, the tail (puts) if `puts`.
    pub(super) fn open(&self, key: &mut Key, gets: bool, puts: bool) {
        self.check_key(key);
        if gets && key.head_closed {
            self.head.0.fetch_and(!CLOSED, AcqRel);
            key.head_closed = false;
        }
        if puts && key.tail_closed {
            self.tail.0.fetch_and(!CLOSED, AcqRel);
            key.tail_closed = false;
        }
    }

    /// Puts `item` at the tail of the closed ring.
    ///
    /// # Panics
    ///
    /// If the ring is full, or `key` is not its key or has not closed it.
    pub(super) fn push_closed(&self, key: &mut Key, item: T) {
        self.check_closed(key);
        assert!(self.len() < self.capacity(), "a put into a full ring");
        // Closed with the key: nobody else moves `tail` until the key opens the ring.
        let stamp = self.tail.0.load(Relaxed) >> 1;
        let slot = self.slot(stamp);
        // A get on the fast path may still be reading the last lap's item out of the slot.
        let mut backoff = Backoff::default();
        while slot.stamp.load(Acquire) != stamp {
            backoff.snooze();
        }
        // SAFETY: the slot is this thread's alone: `tail` is, and the slot's last get is
        // done (it published `stamp`, Release/Acquire).
        slot.item
            .with_mut(|item_ptr| unsafe { (*item_ptr).write(item) });
        slot.stamp.store(stamp + 1, Release);
        self.tail.0.store(self.next(stamp) << 1 | CLOSED, Release);
    }

    /// Gets the oldest item of the closed ring, if it holds one.
    ///
    /// # Panics
    ///
    /// If `key` is not the ring's key or has not closed it.
    pub(super) fn pop_closed(&self, key: &mut Key) -> Option<T> {
        self.check_closed(key);
        // SAFETY: closed with the key: nobody else moves `head` until the key opens it.
        unsafe { self.pop_exclusive() }
    }

    /// Gets the oldest item, if the ring holds one.
    ///
    /// # Safety
    ///
    /// Nobody else moves `head` meanwhile: the ring is closed and the caller holds its key,
    /// or the caller has the ring `&mut`.
    unsafe fn pop_exclusive(&self) -> Option<T> {
        if self.len() == 0 {
            return None;
        }
        let stamp = self.head.0.load(Relaxed) >> 1;
        let slot = self.slot(stamp);
        // A put on the fast path may still be writing the item.
        let mut backoff = Backoff::default();
        while slot.stamp.load(Acquire) != stamp + 1 {
            backoff.snooze();
        }
        // SAFETY: the slot is this thread's alone: `head` is (the caller's promise), and the
        // slot's put is done (it published `stamp + 1`, Release/Acquire).
        let item = slot
            .item
            .with(|item_ptr| unsafe { (*item_ptr).assume_init_read() });
        slot.stamp.store(stamp + self.one_lap, Release);
        self.head.0.store(self.next(stamp) << 1 | CLOSED, Release);
        Some(item)
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: the ring is `&mut`: nobody else can touch it.
        while unsafe { self.pop_exclusive() }.is_some() {}
    }
}
