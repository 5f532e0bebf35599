//! Shields: work that the cancellation of the scope around it does not reach.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::scope::{self, Node, NodeKind, PinGuard, Scoped};
use crate::task_group::{ChildCell, ChildTask, Owner, Plain, TaskInfo, group_core};
use crate::timeout::{TimeoutFuture, timeout, timeout_at};
use crate::{TaskHandle, TaskId};

/// Runs `fut` to completion even if the scope around it is cancelled.
///
/// This is Trio's `CancelScope(shield=True)`, and what `asyncio.shield` is usually reached
/// for: `fut` runs in a scope that outer cancellation does not reach, and while it runs, the
/// scopes around it hold off dropping their own futures. When it is done, the caller gets
/// its output, and a cancelled caller is then cancelled at its next `.await`. Scopes opened
/// inside the shield (timeouts, groups) work as usual. Bound a shield with
/// [`Shield::timeout`] so cleanup cannot hang for ever.
///
/// A shield cannot stop a *hard* drop: if something outside aio drops the future that
/// contains it (`tokio::select!`, `JoinHandle::abort`), the shielded work is dropped too. For
/// work that must finish even then, use [`shield_detached`].
///
/// # Cancel safety
///
/// Cancellation by an enclosing aio scope waits for `fut`. Dropping the shield drops `fut`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::time::Duration;
/// use tokio::time::sleep;
///
/// let written = Arc::new(AtomicBool::new(false));
/// let w = written.clone();
/// let r = aio_core::timeout(Duration::from_millis(10), async move {
///     aio_core::shield(async move {
///         sleep(Duration::from_millis(50)).await; // outlives the deadline
///         w.store(true, Ordering::SeqCst);
///     })
///     .await;
///     sleep(Duration::from_secs(1)).await; // cancelled here
/// })
/// .await;
/// assert!(r.is_err());
/// assert!(written.load(Ordering::SeqCst));
/// # }
/// ```
pub fn shield<F: IntoFuture>(fut: F) -> Shield<F::IntoFuture> {
    let node = Arc::new(Node::unbound(NodeKind::Shield, true));
    Shield {
        inner: Scoped::new(Arc::clone(&node), fut.into_future()),
        node,
        pin: None,
    }
}

pin_project! {
    /// Future returned by [`shield`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct Shield<F> {
        node: Arc<Node>,
        pin: Option<PinGuard>,
        #[pin]
        inner: Scoped<F>,
    }
}

impl<F: Future> Shield<F> {
    /// Bounds the shielded work: it is cancelled, and the shield returns `Err(Elapsed)`,
    /// if it has not finished after `duration`. Trio's `move_on_after(t, shield=True)`.
    pub fn timeout(self, duration: Duration) -> Shield<TimeoutFuture<F>> {
        self.wrap(|fut| timeout(duration, fut))
    }

    /// Like [`timeout`](Self::timeout), with a deadline.
    pub fn deadline(self, deadline: Instant) -> Shield<TimeoutFuture<F>> {
        self.wrap(|fut| timeout_at(deadline, fut))
    }

    fn wrap<G: Future>(self, f: impl FnOnce(F) -> G) -> Shield<G> {
        let fut = self
            .inner
            .into_inner()
            .expect("a shield is only rewrapped before it is polled");
        Shield {
            inner: Scoped::new(Arc::clone(&self.node), f(fut)),
            node: self.node,
            pin: None,
        }
    }
}

impl<F> fmt::Debug for Shield<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shield")
            .field("scope", &self.node.id())
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for Shield<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.pin.is_none() {
            let outer = scope::current();
            this.node.bind(outer.clone());
            *this.pin = Some(PinGuard::new(outer));
        }
        match this.inner.poll_scoped(cx, || false) {
            Poll::Ready(Some(output)) => {
                *this.pin = None;
                // Our output is the future's: it is a cancellation if the future's was.
                if let Some(outer) = this.node.parent() {
                    outer.set_delivered(this.node.delivered());
                }
                Poll::Ready(output)
            }
            Poll::Ready(None) => unreachable!("a shield never drops its future"),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Starts `fut` as a task that finishes even if whoever awaits it is cancelled or dropped.
///
/// This is `asyncio.shield(task)` with an owner: the task belongs to the nearest enclosing
/// [`TaskGroup`](crate::TaskGroup) (which waits for it before returning, even while it is
/// cancelled), or, outside any group, to the [`run`](crate::run) scope, which waits for it
/// on shutdown. The group's cancellation does not reach it. Awaiting the returned handle
/// gives its output; dropping the handle leaves it running.
///
/// If its group is itself dropped without being awaited, the task gets the group's grace
/// period like any other before it is dropped.
///
/// # Panics
///
/// Panics outside a Tokio runtime.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use aio_core::{Cancelled, TaskGroup};
///
/// let saved = TaskGroup::<Cancelled>::scope(|tg| async move {
///     let save = aio_core::shield_detached(async {
///         tokio::time::sleep(Duration::from_millis(100)).await;
///         "saved"
///     });
///     tg.cancel(); // the body is cancelled; the save is not
///     Ok(save)
/// })
/// .await
/// .unwrap();
/// assert_eq!(saved.result(), Ok("saved"));
/// # }
/// ```
#[track_caller]
pub fn shield_detached<F>(fut: F) -> TaskHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let outer = scope::current();
    let mut fut = fut.map(Plain);
    if let Some(group) = outer
        .as_ref()
        .and_then(|node| node.nearest_group())
        .map(group_core)
    {
        match group.spawn(None, fut, true) {
            Ok(handle) => return handle,
            Err((_, refused)) => fut = refused,
        }
    }
    // No live group around us: run as a task of its own, tracked by the run() scope if any,
    // else among the work `join_background` waits for.
    let runtime = tokio::runtime::Handle::current();
    let tracker = outer.as_ref().and_then(|node| node.root_tracker());
    let owner = Owner::Detached { parent: outer };
    let info = TaskInfo::new(TaskId::next(), None, owner, true, false);
    let cell = Arc::new(ChildCell::inline(info));
    let task = ChildTask::new(Arc::clone(&cell), fut);
    crate::background::spawn_background(&runtime, tracker.as_ref(), task);
    TaskHandle::new(cell)
}
