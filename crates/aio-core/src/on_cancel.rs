//! [`on_cancel`]: asynchronous cleanup that runs when work is cancelled.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::scope::{self, Node, NodeKind, PinGuard, Registration, Scoped};
use crate::{CancelError, Cancelled};

/// Runs `work`; if the scope around it is cancelled first, drops `work`, runs the cleanup
/// that `cleanup` builds to completion, shielded, and returns the cancellation. The cleanup
/// also runs when `work` itself returns an error that stands for a cancellation (a task
/// group inside it that was cancelled, a `Cancelled` passed on with `?`); that error is
/// then returned as it was.
///
/// This is Python's
///
/// ```python
/// try:
///     return await work()
/// except asyncio.CancelledError as cancelled:
///     await cleanup(cancelled)
///     raise
/// ```
///
/// without async drop: the scopes around an `on_cancel` wait for its cleanup before they
/// drop anything. `cleanup` is called only on cancellation, with the [`Cancelled`] (its
/// reason says why); the future it returns runs in a [`shield`](crate::shield), so it can
/// `.await` freely. Bound it with a [`timeout`](crate::timeout) inside if it might hang. If
/// the cleanup fails, its error is returned instead of the cancellation, and a task group
/// collects it like any other failure.
///
/// # Errors
///
/// `work`'s error; or, when cancelled, the cleanup's error, else `work`'s cancellation
/// error or `E::from(Cancelled)`.
///
/// # Cancel safety
///
/// Cancellation through aio is the point of it. A hard drop of the future (a foreign
/// `select!`) drops `work` or the cleanup where they are.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use tokio::time::sleep;
/// use aio_core::{CancelReason, Cancelled, on_cancel, timeout};
///
/// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
/// let r = timeout(Duration::from_millis(10), on_cancel(
///     async {
///         sleep(Duration::from_secs(60)).await;
///         Ok::<_, Cancelled>("done")
///     },
///     |cancelled| async move {
///         sleep(Duration::from_millis(5)).await; // cleanup may await
///         tx.send(cancelled.reason().clone()).unwrap();
///         Ok(())
///     },
/// ))
/// .await;
/// assert!(r.is_err());
/// assert_eq!(rx.recv().await, Some(CancelReason::Deadline));
/// # }
/// ```
pub fn on_cancel<W, F, C, T, E>(work: W, cleanup: F) -> OnCancel<W::IntoFuture, F, C::IntoFuture, E>
where
    W: IntoFuture<Output = Result<T, E>>,
    F: FnOnce(Cancelled) -> C,
    C: IntoFuture<Output = Result<(), E>>,
    E: CancelError,
{
    let node = Arc::new(Node::unbound(NodeKind::OnCancel, false));
    OnCancel {
        pin: None,
        registration: None,
        cancelled: None,
        passed_on: None,
        work: Scoped::new(Arc::clone(&node), work.into_future()),
        node,
        cleanup: Some(cleanup),
        running: None,
    }
}

pin_project! {
    /// Future returned by [`on_cancel`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct OnCancel<W, F, C, E> {
        node: Arc<Node>,
        pin: Option<PinGuard>,
        registration: Option<Registration>,
        cancelled: Option<Cancelled>,
        // The work's own cancellation error, returned once the cleanup is done.
        passed_on: Option<E>,
        cleanup: Option<F>,
        #[pin]
        work: Scoped<W>,
        #[pin]
        running: Option<Scoped<C>>,
    }
}

impl<W, F, C, E> fmt::Debug for OnCancel<W, F, C, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnCancel")
            .field("cancelled", &self.cancelled)
            .finish_non_exhaustive()
    }
}

impl<W, F, C, T, E> Future for OnCancel<W, F, C::IntoFuture, E>
where
    W: Future<Output = Result<T, E>>,
    F: FnOnce(Cancelled) -> C,
    C: IntoFuture<Output = Result<(), E>>,
    E: CancelError,
{
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.pin.is_none() {
            let outer = scope::current();
            this.node.bind(outer.clone());
            *this.pin = Some(PinGuard::new(outer));
        }
        if this.cancelled.is_none() {
            this.registration
                .get_or_insert_with(|| Registration::new(Arc::clone(this.node)))
                .register(cx.waker());
            let node = &**this.node;
            let cancelled = match this.work.as_mut().poll_scoped(cx, || node.is_cancelled()) {
                Poll::Pending => return Poll::Pending,
                // The work ended with a cancellation of its own making: a task group inside
                // it was cancelled, or it passed on a `Cancelled` with `?`. That is Python's
                // `CancelledError` coming out of the `try` block, so the cleanup runs too.
                Poll::Ready(Some(Err(error))) if error.as_cancelled().is_some() => {
                    // Our own scope's cancellation names the cause nearest to us.
                    let cancelled = this
                        .node
                        .cancellation()
                        .or_else(|| error.as_cancelled().cloned())
                        .expect("checked above");
                    *this.passed_on = Some(error);
                    cancelled
                }
                Poll::Ready(Some(output)) => {
                    *this.pin = None;
                    *this.registration = None;
                    deliver(this.node, false);
                    return Poll::Ready(output);
                }
                Poll::Ready(None) => this
                    .node
                    .cancellation()
                    .unwrap_or_else(|| Cancelled::new(crate::CancelReason::Explicit)),
            };
            *this.registration = None;
            let cleanup = this.cleanup.take().expect("the cleanup is built once");
            // The cleanup runs in a shield under our node.
            let shield = Arc::new(Node::unbound(NodeKind::Shield, true));
            shield.bind(Some(Arc::clone(this.node)));
            let fut = cleanup(cancelled.clone()).into_future();
            this.running.set(Some(Scoped::new(shield, fut)));
            *this.cancelled = Some(cancelled);
        }
        let running = this
            .running
            .as_mut()
            .as_pin_mut()
            .expect("cleanup runs after a cancellation");
        let Poll::Ready(cleaned) = running.poll_scoped(cx, || false) else {
            return Poll::Pending;
        };
        *this.pin = None;
        let cancelled = this
            .cancelled
            .take()
            .expect("cleanup runs after a cancellation");
        let error = match cleaned {
            Some(Ok(())) => this.passed_on.take().unwrap_or_else(|| E::from(cancelled)),
            Some(Err(error)) => error,
            None => unreachable!("cleanup is shielded and never dropped"),
        };
        deliver(this.node, error.as_cancelled().is_some());
        Poll::Ready(Err(error))
    }
}

/// Tells the scope around the `on_cancel` whether it returned a cancellation.
fn deliver(node: &Node, cancellation: bool) {
    if let Some(outer) = node.parent() {
        outer.set_delivered(cancellation);
    }
}
