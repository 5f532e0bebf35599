//! [`from_thread`]: code running on an offloaded thread calls back into the runtime, as
//! asyncio's `run_coroutine_threadsafe(coro, loop).result()`, Trio's `from_thread.run` and
//! AnyIO's `from_thread.run` do.
//!
//! Every call handed to a thread ([`to_thread`](crate::to_thread), a
//! [`ThreadPool`](crate::ThreadPool) job) gets a [`Portal`]: the thread puts a future in it,
//! and the future that waits for the thread's result (the `to_thread` future, the
//! [`JobHandle`](crate::JobHandle)) polls it, in the waiting task, inside that task's
//! scopes, while it waits. That is Trio's design: the call back runs *as* the waiting
//! task, so it sees that task's cancel scopes, deadlines and
//! [`current_task`](aio_core::current_task), and a cancelled scope ends it.

use std::cell::RefCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use aio_core::futures::Cancellation;
use aio_core::{CancelReason, Cancelled};
use futures::FutureExt;
use futures::task::AtomicWaker;

use crate::FromThreadError;

/// A future the thread asked the waiting task to run.
type Request = Pin<Box<dyn Future<Output = ()> + Send>>;

/// What a thread's call back result is: the future's value, or its panic.
type Reply<T> = std::thread::Result<T>;

/// Runs the future `fut` in the task that waits for this thread, and blocks this thread
/// until it is done: `asyncio.run_coroutine_threadsafe(coro, loop).result()`, from the
/// thread `to_thread` or a `ThreadPool` job runs on.
///
/// The future runs *in the waiting task*: the task that awaits this thread's
/// [`to_thread`](crate::to_thread) (or [`ThreadPool`](crate::ThreadPool) job handle) polls it
/// while it waits, inside that task's cancel scopes. So it sees the task's deadlines and
/// [`current_task`](aio_core::current_task), and when a scope around the waiting task is
/// cancelled, the future is dropped where it stands and this call returns
/// [`FromThreadError::Cancelled`] in the thread, which can then wind down. A panic in the
/// future unwinds here, in the thread, as if the future had run here.
///
/// A `ThreadPool` job's call runs only while its handle is awaited (or polled by
/// [`aio::wait`](aio_core::wait), or by the `map` stream it belongs to): until then it
/// waits. So a job that calls back must be awaited before anything that waits for the job
/// to end, such as the pool's `shutdown`.
/// Once the handle is dropped, the call is cancelled; once it is detached, there is no task
/// to run it in ([`FromThreadError::Abandoned`]).
///
/// # Errors
///
/// * [`FromThreadError::NotOffloaded`]: this thread runs no `to_thread` call or pool job.
/// * [`FromThreadError::Cancelled`]: the waiting task stopped waiting before the future
///   finished, which is then dropped: a scope around it was cancelled (the reason says
///   which), or its `to_thread` future or job handle was dropped
///   ([`CancelReason::ParentCancelled`](aio_core::CancelReason::ParentCancelled)).
/// * [`FromThreadError::Abandoned`]: the job's handle was detached: nobody will wait.
///
/// # Panics
///
/// If the future panics: the panic is resumed in this thread.
///
/// # Examples
///
/// A blocking parser that asks the runtime for the pages it needs:
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_blocking::{from_thread, to_thread};
///
/// async fn fetch(page: u32) -> String {
///     tokio::task::yield_now().await; // an HTTP request in real code
///     format!("page {page}")
/// }
///
/// let words = to_thread(|| {
///     let mut words = 0;
///     for page in 1..=3 {
///         let text = from_thread(fetch(page)).expect("the caller waits");
///         words += text.split_whitespace().count();
///     }
///     words
/// })
/// .await
/// .unwrap();
/// assert_eq!(words, 6);
/// # }
/// ```
pub fn from_thread<F>(fut: F) -> Result<F::Output, FromThreadError>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let portal = PORTAL
        .with(|portal| portal.borrow().clone())
        .ok_or(FromThreadError::NotOffloaded)?;
    let (reply, replied) = std::sync::mpsc::sync_channel::<Reply<F::Output>>(1);
    portal.request(Box::pin(async move {
        let _ = reply.send(AssertUnwindSafe(fut).catch_unwind().await);
    }))?;
    match replied.recv() {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(panic)) => std::panic::resume_unwind(panic),
        // Dropped unfinished: the portal was closed first, with the reason.
        Err(_) => Err(portal.closed()),
    }
}

thread_local! {
    /// The portal of the call this thread runs, while it runs.
    static PORTAL: RefCell<Option<Arc<Portal>>> = const { RefCell::new(None) };
}

/// Makes `portal` this thread's while `f` runs.
pub(crate) fn with_portal<R>(portal: Option<Arc<Portal>>, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Arc<Portal>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            PORTAL.with(|portal| *portal.borrow_mut() = self.0.take());
        }
    }
    let _restore = Restore(PORTAL.with(|current| current.replace(portal)));
    f()
}

/// Where a thread leaves a future for the task that waits for it.
pub(crate) struct Portal {
    state: Mutex<State>,
    waker: AtomicWaker,
}

#[derive(Default)]
struct State {
    request: Option<Request>,
    /// Why no request is taken any more.
    closed: Option<FromThreadError>,
}

impl Portal {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Updates are single assignments: a panic cannot leave the state half-done.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn request(&self, request: Request) -> Result<(), FromThreadError> {
        {
            let mut state = self.lock();
            if let Some(closed) = &state.closed {
                return Err(closed.clone());
            }
            // The thread blocks until its request is done: one at a time.
            debug_assert!(state.request.is_none(), "one request at a time");
            state.request = Some(request);
        }
        self.waker.wake();
        Ok(())
    }

    fn closed(&self) -> FromThreadError {
        self.lock().closed.clone().unwrap_or_else(|| {
            FromThreadError::Cancelled(Cancelled::new(CancelReason::ParentCancelled))
        })
    }

    /// Takes no request from now on, for `why`, and drops the one waiting, if any.
    fn close(&self, why: FromThreadError) {
        let waiting = {
            let mut state = self.lock();
            state.closed.get_or_insert(why);
            state.request.take()
        };
        drop(waiting);
    }
}

/// The waiting task's end of a [`Portal`]: polled while the task waits for the thread, it
/// runs what the thread asks for. Dropping it closes the portal.
pub(crate) struct Caller {
    portal: Arc<Portal>,
    running: Option<Request>,
    /// The waiting task's scope, watched from the first request on: why the requests end,
    /// if it is cancelled.
    scope: Option<Cancellation>,
    /// Nobody will wait: the job's handle was detached.
    detached: bool,
}

impl Caller {
    /// A portal, and its waiting end.
    pub(crate) fn new() -> (Caller, Arc<Portal>) {
        let portal = Arc::new(Portal {
            state: Mutex::new(State::default()),
            waker: AtomicWaker::new(),
        });
        let caller = Caller {
            portal: Arc::clone(&portal),
            running: None,
            scope: None,
            detached: false,
        };
        (caller, portal)
    }

    /// Runs the thread's requests, in the calling task and scope, until one is pending or
    /// none is left; registers the task to hear of the next, and of a cancellation of its
    /// scope. Returns that cancellation once it happened: the portal is closed then.
    pub(crate) fn serve(&mut self, cx: &mut Context<'_>) -> Option<Cancelled> {
        // Bound at the first poll, in the waiting task: however the wait ends, the scope
        // can say why.
        let scope = self.scope.get_or_insert_with(aio_core::cancelled);
        if let Poll::Ready(cancelled) = Pin::new(scope).poll(cx) {
            // Closed before the running request is dropped: the thread, woken by the drop,
            // finds why.
            self.portal
                .close(FromThreadError::Cancelled(cancelled.clone()));
            self.running = None;
            return Some(cancelled);
        }
        loop {
            if self.running.is_none() {
                self.portal.waker.register(cx.waker());
                match self.portal.lock().request.take() {
                    Some(request) => self.running = Some(request),
                    None => return None,
                }
            }
            let running = self.running.as_mut().expect("a request is running");
            match running.as_mut().poll(cx) {
                Poll::Ready(()) => self.running = None,
                Poll::Pending => return None,
            }
        }
    }

    /// Marks the end as let go on purpose: the thread's calls back will find
    /// [`FromThreadError::Abandoned`].
    pub(crate) fn detach(&mut self) {
        self.detached = true;
    }
}

impl Drop for Caller {
    fn drop(&mut self) {
        // Dropped without a detach, the waiting future was cancelled: by its scope, which
        // may drop it without polling it again (ask the scope why), or by its owner.
        let why = if self.detached {
            FromThreadError::Abandoned
        } else {
            let cancelled = self.scope.as_mut().and_then(|scope| {
                let mut cx = Context::from_waker(Waker::noop());
                match Pin::new(scope).poll(&mut cx) {
                    Poll::Ready(cancelled) => Some(cancelled),
                    Poll::Pending => None,
                }
            });
            let cancelled =
                cancelled.unwrap_or_else(|| Cancelled::new(CancelReason::ParentCancelled));
            FromThreadError::Cancelled(cancelled)
        };
        // Closed before the running request is dropped: the thread, woken by the drop,
        // finds why.
        self.portal.close(why);
        self.running = None;
    }
}

/// `inner`, polled after the portal's requests are served.
pub(crate) struct Served<'a, F> {
    pub(crate) caller: &'a mut Caller,
    pub(crate) inner: F,
}

impl<F: Future + Unpin> Future for Served<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let _ = this.caller.serve(cx);
        Pin::new(&mut this.inner).poll(cx)
    }
}
