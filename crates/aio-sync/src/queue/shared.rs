//! The state every queue shares: the buffer in its order, the waiting getters and putters,
//! the count of unfinished tasks, and the operations on them.
//!
//! A FIFO [`Queue`](crate::Queue) keeps its items in a lock-free [`Ring`]: while nobody
//! waits, its puts and gets go through the ring alone and never take the mutex (see
//! `ring.rs`). Everything else happens under one mutex, with the ring closed to the fast
//! paths; each end of the ring is opened again only while its fast path cannot break a rule
//! below (see `Locked`'s `Drop`): a get must not pass a waiting put or take a reserved
//! item, a put must not pass a waiting get, take kept room or go ahead of the items behind
//! the ring, and neither runs once the queue is shut down. A queue bounded above the ring's capacity, or unbounded, keeps the items that
//! come while the ring is full in the locked buffer behind it; every item there is newer
//! than every item in the ring, so gets take the ring's first.
//!
//! Under the mutex, items move so that none is ever between two owners:
//!
//! * A put that finds a getter waiting buffers the item and *reserves* one item of the
//!   buffer for the getter that has waited longest (`reserved`), which it tells through
//!   its wait-list slot. The getter takes an item when it runs: the next in the queue's
//!   order at that moment, as in asyncio (for a `PriorityQueue`, the smallest, even if it
//!   was put after the getter was woken). Gets that do not wait see only the items
//!   nobody reserved, so a woken getter always finds one. Getters wait only while every
//!   item is reserved, so nobody barges past them.
//! * A getter dropped before it took its item passes the reservation to the next waiting
//!   getter, or lets it go: the item never left the buffer.
//! * A put that must wait keeps its item in its future, and its place in `putters`. When
//!   room frees, room is *kept* for the oldest waiting putter (`room_reserved`), which it
//!   is told through its slot; it puts its item when it runs. A putter dropped before that
//!   has put nothing (asyncio's and Tokio's rule: cancelled means not put), and the room it
//!   was kept goes to the next waiting putter. Puts that do not wait see only the room
//!   nobody was kept, so nobody barges past a waiting putter.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};
use std::ops::{Deref, DerefMut};
use std::sync::PoisonError;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::task::{Context, Poll, Waker};

use super::error::{GetError, PutError, TaskDoneError};
use super::ring::{self, Ring};
use crate::model::{AtomicU64, Mutex, MutexGuard};
use crate::wait_list::{Key, Wait, WaitList};

/// The items in the queue, in the order gets take them.
pub(super) enum Buffer<T> {
    /// Oldest first.
    Fifo(VecDeque<T>),
    /// Newest first: the back is the top.
    Lifo(VecDeque<T>),
    /// Smallest first; equal items oldest first.
    Priority(Heap<T>),
}

impl<T> Buffer<T> {
    pub(super) fn fifo() -> Self {
        Buffer::Fifo(VecDeque::new())
    }

    pub(super) fn lifo() -> Self {
        Buffer::Lifo(VecDeque::new())
    }

    pub(super) fn priority() -> Self
    where
        T: Ord,
    {
        Buffer::Priority(Heap {
            heap: BinaryHeap::new(),
            cmp: T::cmp,
            newest: 0,
        })
    }

    fn len(&self) -> usize {
        match self {
            Buffer::Fifo(deque) | Buffer::Lifo(deque) => deque.len(),
            Buffer::Priority(heap) => heap.heap.len(),
        }
    }

    fn push(&mut self, item: T) {
        match self {
            Buffer::Fifo(deque) | Buffer::Lifo(deque) => deque.push_back(item),
            Buffer::Priority(heap) => {
                let seq = heap.newest;
                heap.newest += 1;
                heap.push(seq, item);
            }
        }
    }

    fn pop(&mut self) -> Option<T> {
        match self {
            Buffer::Fifo(deque) => deque.pop_front(),
            Buffer::Lifo(deque) => deque.pop_back(),
            Buffer::Priority(heap) => heap.heap.pop().map(|entry| entry.item),
        }
    }
}

/// A min-heap that keeps equal items in insertion order. The comparison is stored as a
/// function, taken where `T: Ord` is known, so that the queue types need no bound on `T`
/// beyond their constructor.
pub(super) struct Heap<T> {
    heap: BinaryHeap<Entry<T>>,
    cmp: fn(&T, &T) -> Ordering,
    /// The sequence number of the next push.
    newest: u64,
}

impl<T> Heap<T> {
    fn push(&mut self, seq: u64, item: T) {
        self.heap.push(Entry {
            seq,
            item,
            cmp: self.cmp,
        });
    }
}

struct Entry<T> {
    seq: u64,
    item: T,
    cmp: fn(&T, &T) -> Ordering,
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        // `BinaryHeap` pops the greatest: make the smallest item, then the oldest, greatest.
        (self.cmp)(&other.item, &self.item).then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Entry<T> {}

/// A queue's shared state; the public queue types hold it in an `Arc`.
pub(super) struct Shared<T> {
    /// A FIFO queue's items, as far as they fit; `None` for the other orders.
    ring: Option<Ring<T>>,
    state: Mutex<State<T>>,
    /// Items put into the locked buffer: with the ring's count of puts, every item ever
    /// put. Changed under the mutex only; atomic so that `task_done` can read it.
    pushed_locked: AtomicU64,
    /// Items marked done, and items an immediate shutdown dropped. The unfinished tasks are
    /// the items put less these, and this never passes the items put.
    done: AtomicU64,
}

struct State<T> {
    /// 0 for unbounded.
    maxsize: usize,
    /// Every item in the queue that is not in the ring, including the reserved ones.
    buf: Buffer<T>,
    /// The ring's key, if the queue has a ring.
    ring_key: Option<ring::Key>,
    /// How many of the queue's items are reserved for getters that were told so and have
    /// not taken one yet. Never more than the items in the ring and `buf`.
    reserved: usize,
    /// Waiting getters, told when an item is reserved for them or when the queue is
    /// drained.
    getters: WaitList<Notice>,
    /// Waiting putters, told when room is kept for them or when the queue is shut down.
    /// Each keeps its item until it runs: a put that is dropped has put nothing.
    putters: WaitList<PutNotice>,
    /// Room kept for putters that were told so and have not put their item yet. The items
    /// and this never come to more than `maxsize` together.
    room_reserved: usize,
    joiners: WaitList<()>,
    shut_down: bool,
    /// Shut down with `immediate`: the items are gone.
    emptied: bool,
}

/// What a waiting getter is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Notice {
    /// An item of the buffer is reserved for it.
    Reserved,
    /// The queue is shut down and holds no more items.
    Drained,
}

/// What a waiting putter is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PutNotice {
    /// Room for its item is kept for it.
    Room,
    /// The queue is shut down: the item is refused.
    ShutDown,
}

/// Where a [`get`](crate::Queue::get) is.
#[derive(Debug)]
pub(super) enum GetStage {
    Start,
    Waiting(Key),
    Done,
}

/// Where a [`put`](crate::Queue::put) is.
pub(super) enum PutStage<T> {
    Start(T),
    /// Waiting for room, with the item.
    Waiting {
        key: Key,
        item: T,
    },
    Done,
}

/// Where a [`join`](crate::Queue::join) is.
#[derive(Debug)]
pub(super) enum JoinStage {
    Start,
    Waiting(Key),
    Done,
}

/// What a queue looks like, for `Debug`.
pub(super) struct Snapshot {
    pub(super) maxsize: usize,
    pub(super) qsize: usize,
    pub(super) getters: usize,
    pub(super) putters: usize,
    pub(super) unfinished: usize,
    pub(super) shut_down: bool,
}

/// The state, locked, with the ring closed: what every change to a queue goes through.
/// Dropping it opens the ring again if the fast paths may run, then unlocks.
struct Locked<'a, T> {
    state: MutexGuard<'a, State<T>>,
    shared: &'a Shared<T>,
}

impl<T> Deref for Locked<'_, T> {
    type Target = State<T>;

    fn deref(&self) -> &State<T> {
        &self.state
    }
}

impl<T> DerefMut for Locked<'_, T> {
    fn deref_mut(&mut self) -> &mut State<T> {
        &mut self.state
    }
}

impl<T> Drop for Locked<'_, T> {
    /// Opens each end of the ring whose fast path can break no rule now, then unlocks.
    fn drop(&mut self) {
        let state = &mut *self.state;
        let (Some(ring), Some(key)) = (&self.shared.ring, state.ring_key.as_mut()) else {
            return;
        };
        let running = !state.shut_down;
        // A get on the fast path must not pass a waiting put by (each get makes room for
        // one), nor take an item reserved for a waiting get. Gets that wait do not matter:
        // they wait only while the ring holds nothing but reserved items.
        let gets = running && state.putters.len() == 0 && state.reserved == 0;
        // A put on the fast path must not pass a waiting get by (each put reserves an item
        // for one), nor take room kept for a waiting put, nor go ahead of items kept
        // behind the ring. Puts that wait do not matter: with no room kept, they wait
        // only while the ring is full, and gets take the slow path while they wait.
        let puts =
            running && state.getters.len() == 0 && state.room_reserved == 0 && state.buf.len() == 0;
        ring.open(key, gets, puts);
    }
}

impl<T> Locked<'_, T> {
    /// Every item in the queue, including the reserved ones.
    fn len(&self) -> usize {
        self.shared.len(&self.state)
    }

    fn push(&mut self, item: T) {
        let state = &mut *self.state;
        if let (Some(ring), Some(key)) = (&self.shared.ring, state.ring_key.as_mut()) {
            // Items go behind the ring only while it is full, and stay there until it has
            // been emptied: every item behind it is newer than every item in it.
            if state.buf.len() == 0 && ring.len() < ring.capacity() {
                ring.push_closed(key, item);
                return;
            }
        }
        self.state.buf.push(item);
        let pushed = self.shared.pushed_locked.load(Relaxed);
        self.shared.pushed_locked.store(pushed + 1, Relaxed);
    }

    fn pop(&mut self) -> Option<T> {
        if let (Some(ring), Some(key)) = (&self.shared.ring, self.state.ring_key.as_mut()) {
            if let Some(item) = ring.pop_closed(key) {
                return Some(item);
            }
        }
        self.state.buf.pop()
    }

    /// Whether an item could go in now, past the room kept for woken putters.
    fn has_room(&self) -> bool {
        self.shared.has_room(&self.state)
    }

    /// Takes `item` into the queue, and reserves an item for the oldest waiting getter.
    fn accept(&mut self, item: T, wakers: &mut Vec<Waker>) {
        self.push(item);
        self.reserve_for_next_getter(wakers);
    }

    /// Reserves an item for the getter that has waited longest, if one waits.
    fn reserve_for_next_getter(&mut self, wakers: &mut Vec<Waker>) {
        if let Ok(waker) = self.getters.notify_one(Notice::Reserved) {
            self.reserved += 1;
            wakers.push(waker);
        }
    }

    /// Keeps room for waiting putters, oldest first, while there is room.
    fn admit_putters(&mut self, wakers: &mut Vec<Waker>) {
        while self.has_room() {
            let Ok(waker) = self.putters.notify_one(PutNotice::Room) else {
                break;
            };
            self.room_reserved += 1;
            wakers.push(waker);
        }
    }

    fn try_put(&mut self, item: T, wakers: &mut Vec<Waker>) -> Result<(), PutError<T>> {
        if self.shut_down {
            return Err(PutError::ShutDown(item));
        }
        // Putters that wait come first, and the room kept for woken ones is theirs: no
        // barging.
        if self.putters.len() > 0 || !self.has_room() {
            return Err(PutError::Full(item));
        }
        self.accept(item, wakers);
        Ok(())
    }

    /// Takes an item nobody reserved, for a get that does not wait.
    fn try_get(&mut self, wakers: &mut Vec<Waker>) -> Result<T, GetError> {
        // Getters wait only while every item is reserved.
        debug_assert!(self.getters.len() == 0 || self.len() == self.reserved);
        if self.len() > self.reserved {
            return Ok(self.take(wakers));
        }
        if self.drained() {
            Err(GetError::ShutDown)
        } else {
            Err(GetError::Empty)
        }
    }

    /// Takes the next item, which frees its room; the caller knows there is one for it.
    fn take(&mut self, wakers: &mut Vec<Waker>) -> T {
        let item = self.pop().expect("an item is there for the taker");
        self.admit_putters(wakers);
        self.fail_getters_if_drained(wakers);
        item
    }

    /// Shut down, and no item left: none can come any more.
    fn drained(&self) -> bool {
        self.shut_down && self.len() == 0
    }

    /// Once a shut-down queue is drained, the getters still waiting fail.
    fn fail_getters_if_drained(&mut self, wakers: &mut Vec<Waker>) {
        if self.drained() {
            self.getters.notify(usize::MAX, || Notice::Drained, wakers);
        }
    }

    fn wake_joiners_if_done(&mut self, wakers: &mut Vec<Waker>) {
        if self.shared.unfinished() == 0 {
            self.joiners.notify(usize::MAX, || (), wakers);
        }
    }
}

impl<T> Shared<T> {
    pub(super) fn new(maxsize: usize, buf: Buffer<T>) -> Self {
        let (ring, ring_key) = match buf {
            Buffer::Fifo(_) => {
                let (ring, key) = Ring::for_maxsize(maxsize);
                (Some(ring), Some(key))
            }
            _ => (None, None),
        };
        Shared {
            ring,
            state: Mutex::new(State {
                maxsize,
                buf,
                ring_key,
                reserved: 0,
                getters: WaitList::new(),
                putters: WaitList::new(),
                room_reserved: 0,
                joiners: WaitList::new(),
                shut_down: false,
                emptied: false,
            }),
            pushed_locked: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    /// Locks the state to read it; the ring stays open.
    fn peek(&self) -> MutexGuard<'_, State<T>> {
        // The state is consistent between statements: a panic cannot leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the state to change it, and closes the ring to the fast paths.
    fn lock(&self) -> Locked<'_, T> {
        let mut state = self.peek();
        if let (Some(ring), Some(key)) = (&self.ring, state.ring_key.as_mut()) {
            ring.close(key);
        }
        Locked {
            state,
            shared: self,
        }
    }

    /// Every item ever put.
    fn pushed(&self) -> u64 {
        self.ring.as_ref().map_or(0, Ring::pushed) + self.pushed_locked.load(Acquire)
    }

    /// Items put and not yet marked done (nor dropped by an immediate shutdown).
    fn unfinished(&self) -> u64 {
        // `done` first: the items put only grow, and `done` never passes them.
        let done = self.done.load(Acquire);
        self.pushed() - done
    }

    pub(super) fn maxsize(&self) -> usize {
        self.peek().maxsize
    }

    /// Every item in the queue, including the reserved ones: in the ring and behind it.
    fn len(&self, state: &State<T>) -> usize {
        self.ring.as_ref().map_or(0, Ring::len) + state.buf.len()
    }

    /// Whether an item could go in now, past the room kept for woken putters.
    fn has_room(&self, state: &State<T>) -> bool {
        state.maxsize == 0 || self.len(state) + state.room_reserved < state.maxsize
    }

    pub(super) fn qsize(&self) -> usize {
        self.len(&self.peek())
    }

    pub(super) fn full(&self) -> bool {
        let state = self.peek();
        !self.has_room(&state)
    }

    pub(super) fn is_shut_down(&self) -> bool {
        self.peek().shut_down
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        let state = self.peek();
        Snapshot {
            maxsize: state.maxsize,
            qsize: self.len(&state),
            getters: state.getters.len(),
            putters: state.putters.len(),
            unfinished: self.unfinished() as usize,
            shut_down: state.shut_down,
        }
    }

    pub(super) fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        let item = match &self.ring {
            Some(ring) => match ring.try_push(item) {
                Ok(()) => return Ok(()),
                Err(item) => item,
            },
            None => item,
        };
        let mut wakers = Vec::new();
        let result = self.lock().try_put(item, &mut wakers);
        wakers.into_iter().for_each(Waker::wake);
        result
    }

    pub(super) fn get_nowait(&self) -> Result<T, GetError> {
        if let Some(item) = self.ring.as_ref().and_then(Ring::try_pop) {
            return Ok(item);
        }
        let mut wakers = Vec::new();
        let result = self.lock().try_get(&mut wakers);
        wakers.into_iter().for_each(Waker::wake);
        result
    }

    pub(super) fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut done = self.done.load(Acquire);
        loop {
            // Read after `done`: the items put then, or more.
            let pushed = self.pushed();
            if pushed == done {
                return Err(TaskDoneError);
            }
            match self
                .done
                .compare_exchange_weak(done, done + 1, AcqRel, Acquire)
            {
                Ok(_) if pushed == done + 1 => break,
                Ok(_) => return Ok(()),
                Err(actual) => done = actual,
            }
        }
        // The count may have reached 0: release the joiners, if it still is. A joiner that
        // checked the count before this task's mark waits in the list by now, since it
        // checked and joined under the lock this takes.
        let mut wakers = Vec::new();
        let mut state = self.peek();
        if self.unfinished() == 0 {
            state.joiners.notify(usize::MAX, || (), &mut wakers);
        }
        drop(state);
        wakers.into_iter().for_each(Waker::wake);
        Ok(())
    }

    /// Marks `dropped` items done, but no more than are unfinished.
    fn drop_unfinished(&self, dropped: u64) {
        let mut done = self.done.load(Acquire);
        loop {
            let unfinished = self.pushed() - done;
            let new = done + dropped.min(unfinished);
            match self.done.compare_exchange_weak(done, new, AcqRel, Acquire) {
                Ok(_) => return,
                Err(actual) => done = actual,
            }
        }
    }

    pub(super) fn shutdown(&self, immediate: bool) {
        let mut wakers = Vec::new();
        let mut discarded = None;
        {
            let mut state = self.lock();
            state.shut_down = true;
            if immediate {
                state.emptied = true;
                // Reserved items go too: their getters find the queue drained.
                state.reserved = 0;
                let mut items = Vec::with_capacity(state.len());
                items.extend(std::iter::from_fn(|| state.pop()));
                self.drop_unfinished(items.len() as u64);
                state.wake_joiners_if_done(&mut wakers);
                discarded = Some(items);
            }
            // Waiting putters are refused and keep their items; those that were kept room
            // find, when they run, that the queue is shut down.
            state
                .putters
                .notify(usize::MAX, || PutNotice::ShutDown, &mut wakers);
            // The getters waiting with nothing reserved fail once the reserved items are
            // taken (or at once, if there are none).
            state.fail_getters_if_drained(&mut wakers);
        }
        wakers.into_iter().for_each(Waker::wake);
        // The items' destructors run outside the lock: they may use the queue.
        drop(discarded);
    }

    pub(super) fn poll_get(
        &self,
        stage: &mut GetStage,
        cx: &mut Context<'_>,
    ) -> Poll<Result<T, GetError>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        if let (GetStage::Start, Some(ring)) = (&*stage, &self.ring) {
            if let Some(item) = ring.try_pop() {
                *stage = GetStage::Done;
                coop.made_progress();
                return Poll::Ready(Ok(item));
            }
        }
        // Wakers to wake, and wakers the wait lists let go of, both once the lock is
        // released.
        let (mut wakers, mut stale) = (Vec::new(), Vec::new());
        let poll = {
            let mut state = self.lock();
            match *stage {
                GetStage::Start => match state.try_get(&mut wakers) {
                    Err(GetError::Empty) => {
                        *stage = GetStage::Waiting(state.getters.push(cx.waker()));
                        Poll::Pending
                    }
                    done => Poll::Ready(done),
                },
                GetStage::Waiting(key) => match state.getters.poll(key, cx.waker(), &mut stale) {
                    Wait::Waiting => Poll::Pending,
                    // An immediate shutdown took the reserved item with the rest.
                    Wait::Notified(Notice::Reserved) if state.emptied => {
                        Poll::Ready(Err(GetError::ShutDown))
                    }
                    Wait::Notified(Notice::Reserved) => {
                        state.reserved -= 1;
                        Poll::Ready(Ok(state.take(&mut wakers)))
                    }
                    Wait::Notified(Notice::Drained) => Poll::Ready(Err(GetError::ShutDown)),
                },
                GetStage::Done => panic!("a queue get was polled after it completed"),
            }
        };
        wakers.into_iter().for_each(Waker::wake);
        if poll.is_ready() {
            *stage = GetStage::Done;
            coop.made_progress();
        }
        poll
    }

    pub(super) fn cancel_get(&self, stage: &mut GetStage) {
        let GetStage::Waiting(key) = std::mem::replace(stage, GetStage::Done) else {
            return;
        };
        let (mut wakers, mut stale) = (Vec::new(), Vec::new());
        {
            let mut state = self.lock();
            // Reserved an item it never took: the reservation goes to the next waiting
            // getter, or lapses, and the item is anybody's again.
            let reserved = state.getters.remove(key, &mut stale) == Some(Notice::Reserved);
            if reserved && !state.emptied {
                state.reserved -= 1;
                state.reserve_for_next_getter(&mut wakers);
            }
        }
        wakers.into_iter().for_each(Waker::wake);
    }

    pub(super) fn poll_put(
        &self,
        stage: &mut PutStage<T>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), PutError<T>>> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        if let (PutStage::Start(_), Some(ring)) = (&*stage, &self.ring) {
            let PutStage::Start(item) = std::mem::replace(stage, PutStage::Done) else {
                unreachable!("the stage was just matched");
            };
            match ring.try_push(item) {
                Ok(()) => {
                    coop.made_progress();
                    return Poll::Ready(Ok(()));
                }
                Err(item) => *stage = PutStage::Start(item),
            }
        }
        let (mut wakers, mut stale) = (Vec::new(), Vec::new());
        let poll = {
            let mut state = self.lock();
            match std::mem::replace(stage, PutStage::Done) {
                PutStage::Start(item) => match state.try_put(item, &mut wakers) {
                    Err(PutError::Full(item)) => {
                        let key = state.putters.push(cx.waker());
                        *stage = PutStage::Waiting { key, item };
                        Poll::Pending
                    }
                    done => Poll::Ready(done),
                },
                PutStage::Waiting { key, item } => {
                    match state.putters.poll(key, cx.waker(), &mut stale) {
                        Wait::Waiting => {
                            *stage = PutStage::Waiting { key, item };
                            Poll::Pending
                        }
                        Wait::Notified(PutNotice::Room) => {
                            state.room_reserved -= 1;
                            if state.shut_down {
                                // Shut down since room was kept: refused, as asyncio's
                                // putter that wakes to a shut-down queue is.
                                Poll::Ready(Err(PutError::ShutDown(item)))
                            } else {
                                state.accept(item, &mut wakers);
                                Poll::Ready(Ok(()))
                            }
                        }
                        Wait::Notified(PutNotice::ShutDown) => {
                            Poll::Ready(Err(PutError::ShutDown(item)))
                        }
                    }
                }
                PutStage::Done => panic!("a queue put was polled after it completed"),
            }
        };
        wakers.into_iter().for_each(Waker::wake);
        if poll.is_ready() {
            coop.made_progress();
        }
        poll
    }

    /// Drops a put, which has put nothing: returns its item, to be dropped by the caller
    /// outside the lock. Room kept for it goes to the next waiting putter.
    pub(super) fn cancel_put(&self, stage: &mut PutStage<T>) -> Option<T> {
        match std::mem::replace(stage, PutStage::Done) {
            PutStage::Start(item) => Some(item),
            PutStage::Done => None,
            PutStage::Waiting { key, item } => {
                let (mut wakers, mut stale) = (Vec::new(), Vec::new());
                {
                    let mut state = self.lock();
                    if state.putters.remove(key, &mut stale) == Some(PutNotice::Room) {
                        state.room_reserved -= 1;
                        if !state.shut_down {
                            state.admit_putters(&mut wakers);
                        }
                    }
                }
                wakers.into_iter().for_each(Waker::wake);
                Some(item)
            }
        }
    }

    pub(super) fn poll_join(&self, stage: &mut JoinStage, cx: &mut Context<'_>) -> Poll<()> {
        let coop = std::task::ready!(tokio::task::coop::poll_proceed(cx));
        let mut stale = Vec::new();
        let poll = {
            let mut state = self.peek();
            match *stage {
                JoinStage::Start if self.unfinished() == 0 => Poll::Ready(()),
                JoinStage::Start => {
                    *stage = JoinStage::Waiting(state.joiners.push(cx.waker()));
                    Poll::Pending
                }
                JoinStage::Waiting(key) => match state.joiners.poll(key, cx.waker(), &mut stale) {
                    Wait::Waiting => Poll::Pending,
                    Wait::Notified(()) => Poll::Ready(()),
                },
                JoinStage::Done => panic!("a queue join was polled after it completed"),
            }
        };
        if poll.is_ready() {
            *stage = JoinStage::Done;
            coop.made_progress();
        }
        poll
    }

    pub(super) fn cancel_join(&self, stage: &mut JoinStage) {
        if let JoinStage::Waiting(key) = std::mem::replace(stage, JoinStage::Done) {
            // Every joiner is released at once: there is nothing to pass on.
            let mut stale = Vec::new();
            self.peek().joiners.remove(key, &mut stale);
        }
    }
}
