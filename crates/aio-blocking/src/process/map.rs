//! [`ProcessMap`]: `pool.map(f, items)` as a lazy, ordered stream.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::dispatch::{Dispatcher, Reply};
use super::error::ProcessError;
use super::handle::{RawHandle, decode};
use super::registry::describe;
use super::slot;
use super::wire::MAX_PARTS;

/// The stream of results of [`ProcessPool::map`](crate::ProcessPool::map), in input order.
///
/// Items are read from the input only as the stream is polled, `chunksize` at a time, and
/// at most `buffered` chunks are in flight (queued or running) at once; each chunk is one
/// call to a worker. So the input may be endless, and memory stays bounded by
/// `buffered × chunksize` items (Python's `map` read its whole input until 3.14's
/// `buffersize`).
///
/// A chunk the pool refuses outright (the pool is shut down or broken, or the function is
/// not registered) yields its items' errors, and the stream ends there: the rest of the
/// input is not read, so that an endless input cannot make an endless stream of errors.
///
/// Dropping the stream cancels its chunks, as dropping a
/// [`ProcessHandle`](super::ProcessHandle) does.
///
/// # Examples
///
/// ```standalone_crate
/// # use aio_blocking::ProcessPool;
/// # use aio_blocking::process::{self, Function, Registry};
/// # fn square(x: u64) -> u64 { x * x }
/// # const SQUARE: Function<u64, u64> = aio_blocking::remote_fn!(square);
/// # fn main() {
/// # process::init(Registry::new().register(&SQUARE));
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// # let pool = ProcessPool::builder().max_workers(2).build().unwrap();
/// use futures::StreamExt;
///
/// // An endless input: only what the stream needs is read.
/// let mut squares = pool.map(&SQUARE, 0u64..).chunksize(256).buffered(4).take(1000);
/// let mut n = 0;
/// while let Some(square) = squares.next().await {
///     assert_eq!(square.unwrap(), n * n);
///     n += 1;
/// }
/// assert_eq!(n, 1000);
/// # pool.shutdown(false).await;
/// # });
/// # }
/// ```
#[must_use = "streams do nothing unless polled"]
pub struct ProcessMap<I, A, R> {
    pool: Arc<Dispatcher>,
    name: &'static str,
    registered: bool,
    /// `None` once exhausted.
    items: Option<I>,
    chunksize: usize,
    buffered: usize,
    in_flight: VecDeque<Chunk>,
    ready: VecDeque<Result<R, ProcessError>>,
    _args: PhantomData<fn(A)>,
}

/// One chunk: the call for the items that encoded, and for each item its encoding error
/// (`Some`) or its place in the call (`None`).
struct Chunk {
    call: Option<RawHandle>,
    items: Vec<Option<ProcessError>>,
}

impl<I, A, R> ProcessMap<I, A, R>
where
    I: Iterator<Item = A>,
    A: Serialize,
    R: DeserializeOwned,
{
    pub(crate) fn new(
        pool: Arc<Dispatcher>,
        name: &'static str,
        registered: bool,
        items: I,
        buffered: usize,
    ) -> Self {
        ProcessMap {
            pool,
            name,
            registered,
            items: Some(items),
            chunksize: 1,
            buffered: buffered.max(1),
            in_flight: VecDeque::new(),
            ready: VecDeque::new(),
            _args: PhantomData,
        }
    }

    /// Items per call to a worker (default 1): larger chunks amortise the round trip for
    /// small items.
    ///
    /// # Panics
    ///
    /// If `n` is 0 (Python's `ValueError` for `chunksize < 1`), or above 2^24, the most
    /// items one call carries.
    #[track_caller]
    pub fn chunksize(mut self, n: usize) -> Self {
        assert!(n >= 1, "chunksize must be at least 1");
        assert!(n <= MAX_PARTS, "chunksize must be at most 2^24 items");
        self.chunksize = n;
        self
    }

    /// Chunks in flight at most (default: twice the pool's `max_workers`, at most 1024).
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    #[track_caller]
    pub fn buffered(mut self, n: usize) -> Self {
        assert!(n >= 1, "buffered must be at least 1");
        self.buffered = n;
        self
    }

    /// Reads and submits chunks until `buffered` are in flight or the input ends.
    fn fill(&mut self) {
        while self.in_flight.len() < self.buffered {
            let Some(items) = &mut self.items else {
                return;
            };
            let mut parts = Vec::new();
            let mut slots = Vec::new();
            for item in items.by_ref().take(self.chunksize) {
                match postcard::to_allocvec(&item) {
                    Ok(bytes) => {
                        parts.push(bytes);
                        slots.push(None);
                    }
                    Err(e) => slots.push(Some(ProcessError::SerializeArgs(describe::<A>(&e)))),
                }
            }
            if slots.len() < self.chunksize {
                self.items = None;
            }
            if slots.is_empty() {
                return;
            }
            let mut call = if parts.is_empty() {
                None
            } else if self.registered {
                Some(slot::submit(&self.pool, self.name, parts))
            } else {
                Some(RawHandle::failed(ProcessError::NotRegistered {
                    name: self.name.to_owned(),
                }))
            };
            // Refused (the pool is shut down or broken, or the function unknown): every
            // later chunk would be too, so the input is read no further and the stream
            // ends after this chunk's errors, even over an endless input.
            if call.as_mut().is_some_and(RawHandle::refused) {
                self.items = None;
            }
            self.in_flight.push_back(Chunk { call, items: slots });
        }
    }

    fn unpack(&mut self, items: Vec<Option<ProcessError>>, reply: Reply) {
        match reply {
            Ok(outcomes) => {
                let mut outcomes = outcomes.into_iter();
                for item in items {
                    self.ready.push_back(match item {
                        Some(e) => Err(e),
                        None => match outcomes.next() {
                            Some(outcome) => decode(outcome),
                            None => Err(ProcessError::DeserializeResult(
                                "the worker sent fewer results than items".to_owned(),
                            )),
                        },
                    });
                }
            }
            Err(e) => {
                for item in items {
                    self.ready.push_back(Err(item.unwrap_or_else(|| e.clone())));
                }
            }
        }
    }
}

impl<I, A, R> Stream for ProcessMap<I, A, R>
where
    I: Iterator<Item = A> + Unpin,
    A: Serialize,
    R: DeserializeOwned,
{
    type Item = Result<R, ProcessError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.ready.pop_front() {
                return Poll::Ready(Some(item));
            }
            this.fill();
            let Some(front) = this.in_flight.front_mut() else {
                return Poll::Ready(None);
            };
            let reply = match &mut front.call {
                Some(call) => ready!(call.poll_reply(cx)),
                None => Ok(Vec::new()),
            };
            if let Some(chunk) = this.in_flight.pop_front() {
                this.unpack(chunk.items, reply);
            }
        }
    }
}

// Nothing is ever pinned inside: results are moved out by value.
impl<I: Unpin, A, R> Unpin for ProcessMap<I, A, R> {}

impl<I, A, R> fmt::Debug for ProcessMap<I, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessMap")
            .field("function", &self.name)
            .field("chunksize", &self.chunksize)
            .field("buffered", &self.buffered)
            .field("chunks_in_flight", &self.in_flight.len())
            .field("input_done", &self.items.is_none())
            .finish_non_exhaustive()
    }
}
