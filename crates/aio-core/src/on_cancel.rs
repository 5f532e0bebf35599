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
/// Work that never returns (a worker's `loop` that only ends by cancellation) must still
/// name its value's type: `on_cancel` returns `work`'s `Ok` value, and a `loop` without a
/// `break` gives the compiler nothing to infer it from. End the block with the `Ok` that
/// is never reached, `#[allow(unreachable_code)] Ok::<(), BoxError>(())`, or give the
/// block's type where you spawn it.
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
        cleanup: Some(cleanup),
        running: None,
        node: OwnNode(node),
    }
}

/// An `on_cancel`'s node. Waiting for a cancellation links it into the scope around it;
/// it leaves that scope's list when the `on_cancel` is dropped, after the work and the
/// cleanup (the last field), however it ended.
struct OwnNode(Arc<Node>);

impl Drop for OwnNode {
    fn drop(&mut self) {
        self.0.detach();
    }
}

pin_project! {
    /// Future returned by [`on_cancel`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct OnCancel<W, F, C, E> {
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
        // Dropped last.
        node: OwnNode,
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

    // `on_cancel`s nested in one task poll each other recursively, so this frame is on the
    // stack once per level: starting, ending and the cleanup's setup are done in functions
    // of their own.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.pin.is_none() {
            enter(&this.node.0, this.pin);
        }
        if this.cancelled.is_none() {
            this.registration
                .get_or_insert_with(|| Registration::new(Arc::clone(&this.node.0)))
                .register(cx.waker());
            let node = &*this.node.0;
            match this.work.as_mut().poll_scoped(cx, || node.is_cancelled()) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(output)) => {
                    if let Some(output) = work_ended(output, node, this.passed_on) {
                        *this.pin = None;
                        *this.registration = None;
                        return Poll::Ready(output);
                    }
                }
                Poll::Ready(None) => {}
            }
            *this.registration = None;
            start_cleanup(
                this.cleanup,
                &this.node.0,
                this.passed_on.as_ref(),
                this.running.as_mut(),
                this.cancelled,
            );
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
        Poll::Ready(Err(cleaned_up(
            cleaned,
            &this.node.0,
            this.cancelled,
            this.passed_on,
        )))
    }
}

/// Binds the node under the scope we run in and keeps that scope from dropping us while we
/// unwind.
#[inline(never)]
fn enter(node: &Node, pin: &mut Option<PinGuard>) {
    let outer = scope::current();
    node.bind(outer.clone());
    *pin = Some(PinGuard::new(outer));
}

/// The work ended with `output`: `Some` to return it; `None` if it is a cancellation of the
/// work's own making (a task group inside it was cancelled, or it passed on a `Cancelled`
/// with `?`), kept in `passed_on`. That is Python's `CancelledError` coming out of the `try`
/// block, so the cleanup runs too.
#[inline(never)]
fn work_ended<T, E: CancelError>(
    output: Result<T, E>,
    node: &Node,
    passed_on: &mut Option<E>,
) -> Option<Result<T, E>> {
    match output {
        Err(error) if error.as_cancelled().is_some() => {
            *passed_on = Some(error);
            None
        }
        output => {
            deliver(node, false);
            Some(output)
        }
    }
}

/// Starts the cleanup, in a shield under our node, with the cancellation that stopped the
/// work: our own scope's, which names the cause nearest to us, or the one the work passed on.
#[inline(never)]
fn start_cleanup<F, C, E>(
    cleanup: &mut Option<F>,
    node: &Arc<Node>,
    passed_on: Option<&E>,
    mut running: Pin<&mut Option<Scoped<C::IntoFuture>>>,
    slot: &mut Option<Cancelled>,
) where
    F: FnOnce(Cancelled) -> C,
    C: IntoFuture,
    E: CancelError,
{
    let cancelled = node
        .cancellation()
        .or_else(|| passed_on.and_then(|e| e.as_cancelled().cloned()))
        .unwrap_or_else(|| Cancelled::new(crate::CancelReason::Explicit));
    let cleanup = cleanup.take().expect("the cleanup is built once");
    let shield = Arc::new(Node::unbound(NodeKind::Shield, true));
    shield.bind(Some(Arc::clone(node)));
    let fut = cleanup(cancelled.clone()).into_future();
    running.set(Some(Scoped::new(shield, fut)));
    *slot = Some(cancelled);
}

/// The cleanup is done: the error to return, its own or the cancellation.
#[inline(never)]
fn cleaned_up<E: CancelError>(
    cleaned: Option<Result<(), E>>,
    node: &Node,
    cancelled: &mut Option<Cancelled>,
    passed_on: &mut Option<E>,
) -> E {
    let cancelled = cancelled.take().expect("cleanup runs after a cancellation");
    let error = match cleaned {
        Some(Ok(())) => passed_on.take().unwrap_or_else(|| E::from(cancelled)),
        Some(Err(error)) => error,
        None => unreachable!("cleanup is shielded and never dropped"),
    };
    deliver(node, error.as_cancelled().is_some());
    error
}

/// Tells the scope around the `on_cancel` whether it returned a cancellation.
fn deliver(node: &Node, cancellation: bool) {
    if let Some(outer) = node.parent() {
        outer.set_delivered(cancellation);
    }
}

// Not under loom: these run a Tokio runtime.
#[cfg(all(test, not(aio_loom)))]
mod tests {
    use std::sync::{Arc, Mutex, Weak};
    use std::time::Duration;

    use crate::scope::Node;
    use crate::{BoxError, Cancelled, TaskGroup};

    type Seen = Arc<Mutex<Vec<Weak<Node>>>>;

    /// Runs an `on_cancel` whose work waits, so that its node links into the scope around
    /// it, and keeps a weak reference to that node in `seen`.
    async fn wait_once(seen: &Seen) -> Result<(), Cancelled> {
        let fut = super::on_cancel(
            async {
                tokio::task::yield_now().await;
                Ok::<_, Cancelled>(())
            },
            |_| async { Ok(()) },
        );
        seen.lock().unwrap().push(Arc::downgrade(&fut.node.0));
        fut.await
    }

    #[tokio::test]
    async fn an_on_cancel_leaves_the_scope_around_it_when_it_ends() {
        let seen = Seen::default();
        // In a loop, as a long-lived task would: each one linked into the group's node.
        TaskGroup::<BoxError>::scope(|_tg| async {
            for _ in 0..3 {
                wait_once(&seen).await?;
            }
            Ok(())
        })
        .await
        .unwrap();
        crate::timeout(Duration::from_secs(60), wait_once(&seen))
            .await
            .unwrap()
            .unwrap();
        for node in seen.lock().unwrap().iter() {
            assert_eq!(node.strong_count(), 0, "an on_cancel's node outlived it");
        }
    }
}
