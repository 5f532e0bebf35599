//! [`JobHandle`]: a job submitted to a [`ThreadPool`](crate::ThreadPool), and the queued form
//! of the job the workers run.

use std::fmt;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::worker::{Refused, Shared, Work};
use crate::context::CallerContext;
use crate::error::panic_message;
use crate::from_thread::Caller;
use crate::{JobError, SubmitError};

const PENDING: u8 = 0;
const RUNNING: u8 = 1;
/// Cancelled before it started; it never runs.
const CANCELLED: u8 = 2;
/// Failed by the pool before it started (a broken pool); the error is on its way. A job
/// the pool cancelled (`close(true)`) is [`CANCELLED`].
const FAILED: u8 = 3;

type Reply<T> = Result<T, JobError>;

/// A job waiting in the queue.
struct Queued<F, T> {
    f: F,
    context: CallerContext,
    state: Arc<AtomicU8>,
    reply: oneshot::Sender<Reply<T>>,
}

impl<F, T> Work for Queued<F, T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    fn run(self: Box<Self>) {
        let Queued {
            f,
            context,
            state,
            reply,
        } = *self;
        if state
            .compare_exchange(PENDING, RUNNING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let out = context.run(|| catch_unwind(AssertUnwindSafe(f)));
        let _ = reply.send(out.map_err(|p| JobError::Panicked {
            message: panic_message(&*p),
        }));
    }

    fn fail(self: Box<Self>, error: JobError) {
        // Cancelled by the pool (`close(true)`) is cancelled, as the handle reports it.
        let ended = if error == JobError::Cancelled {
            CANCELLED
        } else {
            FAILED
        };
        if self
            .state
            .compare_exchange(PENDING, ended, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            let _ = self.reply.send(Err(error));
        }
    }
}

/// Queues `f` on the pool.
pub(crate) fn submit<F, T>(shared: &Arc<Shared>, f: F) -> Result<JobHandle<T>, SubmitError<F>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let state = Arc::new(AtomicU8::new(PENDING));
    let (reply, result) = oneshot::channel();
    let (caller, portal) = Caller::new();
    let job = Queued {
        f,
        context: CallerContext::capture(portal),
        state: Arc::clone(&state),
        reply,
    };
    match shared.push(job) {
        Ok(()) => Ok(JobHandle {
            state,
            result,
            finished: None,
            caller,
            detached: false,
        }),
        Err((Refused::Shutdown, job)) => Err(SubmitError::new(job.f, None)),
        Err((Refused::Broken(message), job)) => Err(SubmitError::new(job.f, Some(message))),
    }
}

/// A job submitted to a [`ThreadPool`](crate::ThreadPool): `.await` it for the job's
/// result, or [`cancel`](Self::cancel) it while it is still queued. concurrent.futures'
/// `Future`, as asyncio's `run_in_executor` wraps it.
///
/// As every pool handle, it follows one rule: dropping it is [`cancel`](Self::cancel), and
/// [`detach`](Self::detach) lets the job run with nobody waiting. Cancelling a job before it
/// starts means it never runs, as cancelling the task that awaits `run_in_executor` does in
/// asyncio. A running job cannot be cancelled (a thread cannot be interrupted): it runs to
/// the end and, if nobody waits, its result is discarded.
///
/// # Cancel safety
///
/// Awaiting a handle is cancel safe in the sense above: dropping it while it waits
/// cancels the job if it has not started, and otherwise only loses the result.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_blocking::{JobError, ThreadPool};
///
/// let pool = ThreadPool::new(1).unwrap();
/// let (gate, wait) = std::sync::mpsc::channel::<()>();
/// let first = pool.submit(move || wait.recv().unwrap()).unwrap(); // occupies the worker
/// let second = pool.submit(|| 2).unwrap();
/// assert!(second.cancel());
/// gate.send(()).unwrap();
/// first.await.unwrap();
/// assert_eq!(second.await, Err(JobError::Cancelled));
/// # }
/// ```
#[must_use = "dropping a JobHandle cancels its job if it has not started; call detach() to let it run"]
pub struct JobHandle<T> {
    state: Arc<AtomicU8>,
    result: oneshot::Receiver<Reply<T>>,
    /// The result, once [`wait`](aio_core::wait) saw it arrive, until it is awaited.
    finished: Option<Reply<T>>,
    /// Runs the job's [`from_thread`](crate::from_thread) calls while the handle is awaited.
    caller: Caller,
    detached: bool,
}

impl<T> JobHandle<T> {
    /// Cancels the job if it has not started, and returns whether it is cancelled:
    /// `Future.cancel()`. A job that is running or done cannot be cancelled (`false`);
    /// a thread cannot be interrupted.
    pub fn cancel(&self) -> bool {
        match self
            .state
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == CANCELLED,
        }
    }

    /// Whether the job was cancelled before it started: by [`cancel`](Self::cancel), or by
    /// the pool's `close(true)` or `shutdown(true)` (`Future.cancelled()`).
    pub fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Acquire) == CANCELLED
    }

    /// Whether a worker has started the job (it may be done).
    pub fn is_started(&self) -> bool {
        self.state.load(Ordering::Acquire) == RUNNING
    }

    /// Lets the job run with nobody waiting for its result.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = aio_blocking::ThreadPool::new(1).unwrap();
    /// let (done, ran) = std::sync::mpsc::channel();
    /// pool.submit(move || done.send("flushed").unwrap()).unwrap().detach();
    /// pool.shutdown(false).await;
    /// assert_eq!(ran.recv().unwrap(), "flushed");
    /// # }
    /// ```
    pub fn detach(mut self) {
        self.detached = true;
        self.caller.detach();
    }
}

// Nothing in a handle is pinned: the result is only ever moved out.
impl<T> Unpin for JobHandle<T> {}

impl<T> JobHandle<T> {
    /// Runs the job's calls back into the runtime ([`from_thread`](crate::from_thread)),
    /// without looking at its result.
    pub(crate) fn serve_calls(&mut self, cx: &mut Context<'_>) {
        let _ = self.caller.serve(cx);
    }

    /// The result, once it is in; runs the job's calls back into the runtime meanwhile.
    fn poll_reply(&mut self, cx: &mut Context<'_>) -> Poll<Reply<T>> {
        if let Some(reply) = self.finished.take() {
            return Poll::Ready(reply);
        }
        self.serve_calls(cx);
        match Pin::new(&mut self.result).poll(cx) {
            Poll::Ready(Ok(reply)) => Poll::Ready(reply),
            // The job was dropped unrun: the pool cancelled it.
            Poll::Ready(Err(_)) => Poll::Ready(Err(JobError::Cancelled)),
            Poll::Pending if self.is_cancelled() => Poll::Ready(Err(JobError::Cancelled)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T> Future for JobHandle<T> {
    type Output = Result<T, JobError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().poll_reply(cx)
    }
}

impl<T> aio_core::Waitable for JobHandle<T> {
    fn poll_finished(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.finished.is_none() {
            self.finished = Some(std::task::ready!(self.poll_reply(cx)));
        }
        Poll::Ready(())
    }

    fn is_finished(&self) -> bool {
        self.finished.is_some()
    }

    fn has_failed(&self) -> bool {
        matches!(&self.finished, Some(Err(e)) if *e != JobError::Cancelled)
    }
}

impl<T> Drop for JobHandle<T> {
    fn drop(&mut self) {
        if !self.detached {
            let _ = self.state.compare_exchange(
                PENDING,
                CANCELLED,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }
}

impl<T> fmt::Debug for JobHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state.load(Ordering::Acquire) {
            PENDING => "pending",
            RUNNING => "started",
            CANCELLED => "cancelled",
            _ => "failed",
        };
        f.debug_struct("JobHandle").field("state", &state).finish()
    }
}
