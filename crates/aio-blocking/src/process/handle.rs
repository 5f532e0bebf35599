//! [`ProcessHandle`]: a task submitted to a process pool, as a future of its result.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::{Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, ready};

use serde::de::DeserializeOwned;
use tokio::sync::oneshot;

use super::dispatch::{Dispatcher, Reply};
use super::error::ProcessError;
use super::registry::describe;
use super::worker::Outcome;

/// A task submitted with [`ProcessPool::submit`](crate::ProcessPool::submit): a future of
/// its result, like the `concurrent.futures.Future` that `submit` returns in Python.
///
/// The task runs whether or not the handle is polled. As every pool handle, it follows one
/// rule: dropping it is [`cancel`](Self::cancel), and [`detach`](Self::detach) lets the task
/// run with nobody waiting. Cancelling a task still queued takes it out of the queue, and it
/// never runs; cancelling a task already running kills its worker, which is replaced: that
/// is how aio stops work that Python's pools cannot. So `aio::timeout(d, handle)` bounds the
/// whole call, queue included.
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
/// let handle = pool.submit(&SQUARE, 12).unwrap();
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

    /// Cancels the task, and returns whether it is cancelled: `Future.cancel()`. A task
    /// still queued never runs; a running one has its worker killed and replaced, unless it
    /// ends within 20 ms. A task
    /// sent ahead to a busy worker is skipped by that worker, unless the worker started it
    /// before the cancel reached it: it then runs (a short call, as only short calls are
    /// sent ahead), and its result is dropped. A task that has finished is not cancelled
    /// (`false`), and its result stays in the handle.
    /// Awaiting the handle of a cancelled task returns [`ProcessError::Cancelled`].
    ///
    /// # Examples
    ///
    /// ```standalone_crate
    /// # use aio_blocking::ProcessPool;
    /// # use aio_blocking::process::{self, Function, Registry};
    /// # fn sleep_ms(ms: u64) -> u64 { std::thread::sleep(std::time::Duration::from_millis(ms)); ms }
    /// # const SLEEP_MS: Function<u64, u64> = aio_blocking::remote_fn!(sleep_ms);
    /// # fn main() {
    /// # process::init(Registry::new().register(&SLEEP_MS));
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let pool = ProcessPool::builder().max_workers(1).build().unwrap();
    /// use aio_blocking::process::ProcessError;
    ///
    /// let long = pool.submit(&SLEEP_MS, 3_600_000).unwrap();
    /// assert!(long.cancel()); // its worker is killed
    /// assert!(long.is_cancelled());
    /// assert_eq!(long.await, Err(ProcessError::Cancelled));
    /// assert_eq!(pool.submit(&SLEEP_MS, 1).unwrap().await, Ok(1)); // a new worker
    /// # pool.shutdown(false).await;
    /// # });
    /// # }
    /// ```
    pub fn cancel(&self) -> bool {
        self.raw.cancel()
    }

    /// Whether [`cancel`](Self::cancel) cancelled the task.
    pub fn is_cancelled(&self) -> bool {
        self.raw.is_cancelled()
    }

    /// Lets the task run with nobody waiting for its result: neither dropping this handle
    /// nor anything else cancels it. Its result is discarded.
    pub fn detach(self) {
        self.raw.detach();
    }
}

impl<R> aio_core::Waitable for ProcessHandle<R> {
    fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        self.raw.poll_finished(cx)
    }

    fn is_finished(&self) -> bool {
        self.raw.is_finished()
    }

    fn has_failed(&self) -> bool {
        self.raw.has_failed()
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
    /// A lock only so that [`cancel`](Self::cancel) can work through `&self`; polling has
    /// `&mut` access and takes no lock.
    state: Mutex<State>,
}

enum State {
    Waiting {
        reply: oneshot::Receiver<Reply>,
        pool: Weak<Dispatcher>,
    },
    Failed(Option<ProcessError>),
    /// Cancelled through the handle: the receiver is dropped, which the pool sees.
    Cancelled,
    /// The reply, once [`wait`](aio_core::wait) saw it arrive, until it is awaited.
    Finished(Reply),
    Done,
}

impl RawHandle {
    pub(crate) fn new(id: u64, reply: oneshot::Receiver<Reply>, pool: Weak<Dispatcher>) -> Self {
        RawHandle {
            id,
            state: Mutex::new(State::Waiting { reply, pool }),
        }
    }

    pub(crate) fn failed(error: ProcessError) -> Self {
        RawHandle {
            id: 0,
            state: Mutex::new(State::Failed(Some(error))),
        }
    }

    /// Whether the pool refused the call outright, without queueing it.
    pub(crate) fn refused(&mut self) -> bool {
        matches!(self.state_mut(), State::Failed(_))
    }

    /// Why the pool refused the call, if it did.
    pub(crate) fn refusal(&mut self) -> Option<ProcessError> {
        match self.state_mut() {
            State::Failed(error) => error.take(),
            _ => None,
        }
    }

    fn state_mut(&mut self) -> &mut State {
        self.state.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is one assignment: a panic cannot leave the state half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<Reply> {
        let state = self.state_mut();
        let out = match state {
            State::Waiting { reply, .. } => match ready!(Pin::new(reply).poll(cx)) {
                Ok(reply) => reply,
                // The slot went away without answering: its runtime shut down.
                Err(_) => Err(ProcessError::Cancelled),
            },
            State::Failed(error) => Err(error.take().unwrap_or(ProcessError::Cancelled)),
            State::Cancelled => Err(ProcessError::Cancelled),
            State::Finished(_) => match std::mem::replace(state, State::Done) {
                State::Finished(reply) => reply,
                _ => unreachable!("matched above"),
            },
            State::Done => panic!("a ProcessHandle polled after it completed"),
        };
        *state = State::Done;
        Poll::Ready(out)
    }

    /// Ready once the reply is in, which stays in the handle.
    fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if matches!(self.state_mut(), State::Waiting { .. }) {
            let reply = ready!(self.poll_reply(cx));
            *self.state_mut() = State::Finished(reply);
        }
        Poll::Ready(())
    }

    fn is_finished(&self) -> bool {
        !matches!(*self.lock(), State::Waiting { .. })
    }

    /// Whether the call finished with an error other than a cancellation.
    fn has_failed(&self) -> bool {
        match &*self.lock() {
            State::Finished(Err(e)) | State::Failed(Some(e)) => *e != ProcessError::Cancelled,
            State::Finished(Ok(outcomes)) => outcomes.iter().any(Result::is_err),
            _ => false,
        }
    }

    /// Cancels the call unless its result is in: closes its reply channel, which a slot
    /// running it sees (and kills the worker), and takes it out of the queue.
    fn cancel(&self) -> bool {
        let mut state = self.lock();
        let pool = match &*state {
            State::Waiting { reply, pool } if reply.is_empty() => pool.clone(),
            State::Cancelled => return true,
            _ => return false,
        };
        // Dropped here, under the lock: the slot sees the channel closed.
        *state = State::Cancelled;
        drop(state);
        if let Some(pool) = pool.upgrade() {
            pool.cancel_queued(self.id);
        }
        true
    }

    fn is_cancelled(&self) -> bool {
        matches!(*self.lock(), State::Cancelled)
    }

    /// Lets the call run unobserved: its reply channel stays open, held by a task of the
    /// pool's runtime that waits for the reply and drops it.
    fn detach(mut self) {
        if let State::Waiting { reply, pool } = std::mem::replace(self.state_mut(), State::Done) {
            if let Some(pool) = pool.upgrade() {
                pool.runtime().spawn(async move { drop(reply.await) });
            }
        }
    }
}

impl Drop for RawHandle {
    fn drop(&mut self) {
        if let State::Waiting { reply, pool } = std::mem::replace(self.state_mut(), State::Done) {
            // Closed before the pool is told: a slot it wakes sees the call abandoned.
            drop(reply);
            if let Some(pool) = pool.upgrade() {
                pool.cancel_queued(self.id);
            }
        }
    }
}
