//! The state every queue shares: the buffer in its order, the waiting getters and putters,
//! the count of unfinished tasks, and the operations on them, all under one mutex.
//!
//! Items move under the lock, so none is ever between two owners:
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
use std::sync::PoisonError;
use std::task::{Context, Poll, Waker};

use super::error::{GetError, PutError, TaskDoneError};
use crate::model::{Mutex, MutexGuard};
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

    /// Empties the buffer, and returns what it held, to be dropped outside the lock.
    fn take(&mut self) -> Buffer<T> {
        let empty = match self {
            Buffer::Fifo(_) => Buffer::Fifo(VecDeque::new()),
            Buffer::Lifo(_) => Buffer::Lifo(VecDeque::new()),
            Buffer::Priority(heap) => Buffer::Priority(Heap {
                heap: BinaryHeap::new(),
                cmp: heap.cmp,
                newest: 0,
            }),
        };
        std::mem::replace(self, empty)
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
    state: Mutex<State<T>>,
}

struct State<T> {
    /// 0 for unbounded.
    maxsize: usize,
    /// Every item in the queue, including the reserved ones.
    buf: Buffer<T>,
    /// How many items of `buf` are reserved for getters that were told so and have not
    /// taken one yet. Never more than `buf.len()`.
    reserved: usize,
    /// Waiting getters, told when an item is reserved for them or when the queue is
    /// drained.
    getters: WaitList<Notice>,
    /// Waiting putters, told when room is kept for them or when the queue is shut down.
    /// Each keeps its item until it runs: a put that is dropped has put nothing.
    putters: WaitList<PutNotice>,
    /// Room kept for putters that were told so and have not put their item yet. The buffer
    /// and this never hold more than `maxsize` together.
    room_reserved: usize,
    /// Items put and not yet marked done.
    unfinished: usize,
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

impl<T> State<T> {
    /// Whether an item could go in now, past the room kept for woken putters.
    fn has_room(&self) -> bool {
        self.maxsize == 0 || self.buf.len() + self.room_reserved < self.maxsize
    }

    /// Takes `item` into the queue, and reserves an item for the oldest waiting getter.
    fn accept(&mut self, item: T, wakers: &mut Vec<Waker>) {
        self.unfinished += 1;
        self.buf.push(item);
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
        debug_assert!(self.getters.len() == 0 || self.buf.len() == self.reserved);
        if self.buf.len() > self.reserved {
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
        let item = self.buf.pop().expect("an item is there for the taker");
        self.admit_putters(wakers);
        self.fail_getters_if_drained(wakers);
        item
    }

    /// Shut down, and no item left: none can come any more.
    fn drained(&self) -> bool {
        self.shut_down && self.buf.len() == 0
    }

    /// Once a shut-down queue is drained, the getters still waiting fail.
    fn fail_getters_if_drained(&mut self, wakers: &mut Vec<Waker>) {
        if self.drained() {
            self.getters.notify(usize::MAX, || Notice::Drained, wakers);
        }
    }

    fn wake_joiners_if_done(&mut self, wakers: &mut Vec<Waker>) {
        if self.unfinished == 0 {
            self.joiners.notify(usize::MAX, || (), wakers);
        }
    }
}

impl<T> Shared<T> {
    pub(super) fn new(maxsize: usize, buf: Buffer<T>) -> Self {
        Shared {
            state: Mutex::new(State {
                maxsize,
                buf,
                reserved: 0,
                getters: WaitList::new(),
                putters: WaitList::new(),
                room_reserved: 0,
                unfinished: 0,
                joiners: WaitList::new(),
                shut_down: false,
                emptied: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // The state is consistent between statements: a panic cannot leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn maxsize(&self) -> usize {
        self.lock().maxsize
    }

    pub(super) fn qsize(&self) -> usize {
        self.lock().buf.len()
    }

    pub(super) fn full(&self) -> bool {
        let state = self.lock();
        state.maxsize > 0 && !state.has_room()
    }

    pub(super) fn is_shut_down(&self) -> bool {
        self.lock().shut_down
    }

    pub(super) fn snapshot(&self) -> Snapshot {
        let state = self.lock();
        Snapshot {
            maxsize: state.maxsize,
            qsize: state.buf.len(),
            getters: state.getters.len(),
            putters: state.putters.len(),
            unfinished: state.unfinished,
            shut_down: state.shut_down,
        }
    }

    pub(super) fn put_nowait(&self, item: T) -> Result<(), PutError<T>> {
        let mut wakers = Vec::new();
        let result = self.lock().try_put(item, &mut wakers);
        wakers.into_iter().for_each(Waker::wake);
        result
    }

    pub(super) fn get_nowait(&self) -> Result<T, GetError> {
        let mut wakers = Vec::new();
        let result = self.lock().try_get(&mut wakers);
        wakers.into_iter().for_each(Waker::wake);
        result
    }

    pub(super) fn task_done(&self) -> Result<(), TaskDoneError> {
        let mut wakers = Vec::new();
        {
            let mut state = self.lock();
            if state.unfinished == 0 {
                return Err(TaskDoneError);
            }
            state.unfinished -= 1;
            state.wake_joiners_if_done(&mut wakers);
        }
        wakers.into_iter().for_each(Waker::wake);
        Ok(())
    }

    pub(super) fn shutdown(&self, immediate: bool) {
        let mut wakers = Vec::new();
        let mut discarded = None;
        {
            let mut guard = self.lock();
            let state = &mut *guard;
            state.shut_down = true;
            if immediate {
                state.emptied = true;
                // Reserved items go too: their getters find the queue drained.
                state.reserved = 0;
                let items = state.buf.take();
                state.unfinished = state.unfinished.saturating_sub(items.len());
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
            let mut state = self.lock();
            match *stage {
                JoinStage::Start if state.unfinished == 0 => Poll::Ready(()),
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
            self.lock().joiners.remove(key, &mut stale);
        }
    }
}
