//! [`ProcessHandle`]: a task submitted to a process pool, as a future of its result.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll, ready};

use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::error::ProcessError;
use super::pool::{Reply, Shared};
use super::registry::describe;
use super::worker::Outcome;

/// A task submitted with [`ProcessPool::submit`](crate::ProcessPool::submit): a future of
/// its result, like the `concurrent.futures.Future` that `submit` returns in Python.
///
/// The task runs whether or not the handle is polled. Dropping the handle cancels it: a
/// task still queued leaves the queue and never runs; a task already running has its
/// worker killed and replaced, which is how aio cancels work that Python's pools cannot
/// stop. So `aio::timeout(d, handle)` bounds the whole call, queue included.
///
/// # Cancel safety
///
/// Awaiting the handle is cancel safe only in the sense above: dropping it cancels the
/// task. To wait for a result without owning the task's fate, keep the handle and poll it
/// by reference (`&mut handle`).
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
/// use aio_blocking::process::ProcessError;
///
/// let handle = pool.submit(&SQUARE, 12);
/// match handle.await {
///     Ok(n) => assert_eq!(n, 144),
///     Err(ProcessError::WorkerCrashed(crash)) => panic!("lost a worker: {crash}"),
///     Err(e) => panic!("{e}"),
/// }
/// # pool.shutdown(false).await;
/// # });
/// # }
/// ```
#[must_use = "dropping a ProcessHandle cancels its task"]
pub struct ProcessHandle<R> {
    raw: RawHandle,
    _output: PhantomData<fn() -> R>,
}

impl<R> ProcessHandle<R> {
    pub(crate) fn new(raw: RawHandle) -> Self {
        ProcessHandle {
            raw,
            _output: PhantomData,
        }
    }

    pub(crate) fn failed(error: ProcessError) -> Self {
        ProcessHandle::new(RawHandle::failed(error))
    }
}

impl<R: DeserializeOwned> Future for ProcessHandle<R> {
    type Output = Result<R, ProcessError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let reply = ready!(self.raw.poll_reply(cx));
        Poll::Ready(
            reply.and_then(|outcomes| match outcomes.into_iter().next() {
                Some(outcome) => decode(outcome),
                None => Err(ProcessError::DeserializeResult(
                    "the worker sent no result".to_owned(),
                )),
            }),
        )
    }
}

impl<R> fmt::Debug for ProcessHandle<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessHandle")
            .field("id", &self.raw.id)
            .finish_non_exhaustive()
    }
}

/// Decodes one outcome as an `R`.
pub(crate) fn decode<R: DeserializeOwned>(outcome: Outcome) -> Result<R, ProcessError> {
    match outcome {
        Ok(bytes) => postcard::from_bytes(&bytes)
            .map_err(|e| ProcessError::DeserializeResult(describe::<R>(&e))),
        Err(failure) => Err(ProcessError::from_failure(failure)),
    }
}

/// The untyped side of a handle: the reply of one queued call, which leaves the queue if
/// dropped before it was taken.
pub(crate) struct RawHandle {
    id: u64,
    state: State,
}

enum State {
    Waiting {
        reply: oneshot::Receiver<Reply>,
        pool: Weak<Shared>,
    },
    Failed(Option<ProcessError>),
    Done,
}

impl RawHandle {
    pub(crate) fn new(id: u64, reply: oneshot::Receiver<Reply>, pool: Weak<Shared>) -> Self {
        RawHandle {
            id,
            state: State::Waiting { reply, pool },
        }
    }

    pub(crate) fn failed(error: ProcessError) -> Self {
        RawHandle {
            id: 0,
            state: State::Failed(Some(error)),
        }
    }

    /// Whether the pool refused the call outright, without queueing it.
    pub(crate) fn refused(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }

    pub(crate) fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<Reply> {
        let out = match &mut self.state {
            State::Waiting { reply, .. } => match ready!(Pin::new(reply).poll(cx)) {
                Ok(reply) => reply,
                // The slot went away without answering: its runtime shut down.
                Err(_) => Err(ProcessError::Cancelled),
            },
            State::Failed(error) => Err(error.take().unwrap_or(ProcessError::Cancelled)),
            State::Done => panic!("a ProcessHandle polled after it completed"),
        };
        self.state = State::Done;
        Poll::Ready(out)
    }
}

impl Drop for RawHandle {
    fn drop(&mut self) {
        if let State::Waiting { pool, .. } = &self.state {
            if let Some(pool) = pool.upgrade() {
                pool.cancel_queued(self.id);
            }
        }
    }
}
