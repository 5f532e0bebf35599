//! Timeouts: cancel scopes with a deadline.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::{Instant, Sleep, sleep_until};

use crate::scope::{self, Node, NodeKind, Scoped, note_delivered};

/// The error of a timeout whose own deadline passed.
///
/// A timeout returns `Elapsed` only when *its* deadline cancelled the future it wraps. A
/// cancellation from an enclosing scope is not converted: it reaches the enclosing scope,
/// which reports it (an enclosing timeout as its own `Elapsed`, a group as cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("deadline has elapsed")]
pub struct Elapsed(());

impl From<Elapsed> for std::io::Error {
    fn from(e: Elapsed) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::TimedOut, e)
    }
}

/// Why [`Timeout::reschedule`] refused to move a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RescheduleError {
    /// The deadline passed and the future it wraps is still unwinding.
    #[error("cannot reschedule a timeout that is expiring")]
    Expiring,
    /// The deadline passed and the timeout has returned [`Elapsed`].
    #[error("cannot reschedule a timeout that has expired")]
    Expired,
    /// The timeout has returned, or was dropped, without expiring.
    #[error("cannot reschedule a timeout that has finished")]
    Finished,
}

const CREATED: u8 = 0;
const ACTIVE: u8 = 1;
const EXPIRING: u8 = 2;
const EXPIRED: u8 = 3;
const FINISHED: u8 = 4;

/// Waits for `fut` for at most `duration`.
///
/// This is `async with asyncio.timeout(delay):`. The timeout is a cancel scope: when the
/// deadline passes, `fut` is cancelled at its next `.await` (after any task group or
/// [`on_cancel`](crate::on_cancel) inside it has unwound, cleanup included) and the timeout
/// returns `Err(Elapsed)`. Task groups opened inside inherit the deadline. A result that is
/// ready by the time the deadline is noticed wins over the deadline.
///
/// # Errors
///
/// [`Elapsed`] when this timeout's deadline cancelled `fut`.
///
/// # Cancel safety
///
/// As cancel safe as `fut`: dropping the timeout drops `fut`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use aio_core::timeout;
///
/// let slow = tokio::time::sleep(Duration::from_secs(10));
/// assert!(timeout(Duration::from_secs(1), slow).await.is_err());
/// let fast = async { 7 };
/// assert_eq!(timeout(Duration::from_secs(1), fast).await, Ok(7));
/// # }
/// ```
pub fn timeout<F: IntoFuture>(duration: Duration, fut: F) -> TimeoutFuture<F::IntoFuture> {
    TimeoutFuture::new(
        Instant::now().checked_add(duration),
        fut.into_future(),
        false,
    )
}

/// Waits for `fut` until `deadline`: `asyncio.timeout_at(when)`. See [`timeout`].
///
/// # Errors
///
/// [`Elapsed`] when this timeout's deadline cancelled `fut`.
///
/// # Cancel safety
///
/// As cancel safe as `fut`: dropping the timeout drops `fut`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use tokio::time::Instant;
///
/// let deadline = Instant::now() + Duration::from_millis(50);
/// let r = aio_core::timeout_at(deadline, tokio::time::sleep(Duration::from_secs(1))).await;
/// assert!(r.is_err());
/// assert_eq!(Instant::now(), deadline);
/// # }
/// ```
pub fn timeout_at<F: IntoFuture>(deadline: Instant, fut: F) -> TimeoutFuture<F::IntoFuture> {
    TimeoutFuture::new(Some(deadline), fut.into_future(), false)
}

/// `asyncio.wait_for(aw, timeout)`: waits for `fut` for at most `duration`, or for ever when
/// `duration` is `None`.
///
/// Like [`timeout`], with asyncio's one difference: a zero duration does not start `fut` at
/// all.
///
/// # Errors
///
/// [`Elapsed`] when the deadline cancelled `fut`.
///
/// # Cancel safety
///
/// As cancel safe as `fut`: dropping it drops `fut`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
///
/// assert_eq!(aio_core::wait_for(None, async { 1 }).await, Ok(1));
/// assert!(aio_core::wait_for(Duration::ZERO, async { 1 }).await.is_err());
/// # }
/// ```
pub fn wait_for<F: IntoFuture>(
    duration: impl Into<Option<Duration>>,
    fut: F,
) -> TimeoutFuture<F::IntoFuture> {
    let duration = duration.into();
    let deadline = duration.and_then(|d| Instant::now().checked_add(d));
    let expire_at_start = duration == Some(Duration::ZERO);
    TimeoutFuture::new(deadline, fut.into_future(), expire_at_start)
}

/// Runs the future that `body` builds under a timeout that `body` can see and move.
///
/// This is `async with asyncio.timeout(None) as cm:` followed by `cm.reschedule(...)`
/// inside the block. `deadline` may be `None` (no deadline until rescheduled).
///
/// # Errors
///
/// [`Elapsed`] when the deadline cancelled the body.
///
/// # Cancel safety
///
/// As cancel safe as the body: dropping the timeout drops it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use tokio::time::{sleep, Instant};
///
/// let start = Instant::now();
/// let r = aio_core::timeout_scope(None, |t| async move {
///     // Learn how long we may take, then commit to it.
///     t.reschedule(Instant::now() + Duration::from_secs(2)).unwrap();
///     sleep(Duration::from_secs(60)).await;
/// })
/// .await;
/// assert!(r.is_err());
/// assert_eq!(start.elapsed(), Duration::from_secs(2));
/// # }
/// ```
pub fn timeout_scope<F, Fut>(
    deadline: impl Into<Option<Instant>>,
    body: F,
) -> TimeoutFuture<Fut::IntoFuture>
where
    F: FnOnce(Timeout) -> Fut,
    Fut: IntoFuture,
{
    let node = timeout_node(deadline.into());
    let handle = Timeout {
        node: Arc::clone(&node),
    };
    TimeoutFuture::with_node(node, body(handle).into_future(), false)
}

fn timeout_node(deadline: Option<Instant>) -> Arc<Node> {
    let kind = NodeKind::Timeout {
        phase: AtomicU8::new(CREATED),
        generation: AtomicU64::new(0),
    };
    Arc::new(Node::unbound(kind, false).with_deadline(deadline))
}

/// A handle to a running timeout: asyncio's `Timeout` object.
///
/// Get one from [`TimeoutFuture::handle`] or inside [`timeout_scope`]. Handles are cheap to
/// clone and may be used from any task.
#[derive(Clone)]
pub struct Timeout {
    node: Arc<Node>,
}

impl Timeout {
    /// The deadline, or `None` if the timeout never fires.
    pub fn deadline(&self) -> Option<Instant> {
        self.node.deadline()
    }

    /// Moves the deadline; `None` disables it. A deadline in the past fires at the
    /// timeout's next poll.
    ///
    /// # Errors
    ///
    /// [`RescheduleError`] once the timeout has fired or finished.
    pub fn reschedule(&self, deadline: impl Into<Option<Instant>>) -> Result<(), RescheduleError> {
        match phase(&self.node).load(Ordering::Acquire) {
            EXPIRING => Err(RescheduleError::Expiring),
            EXPIRED => Err(RescheduleError::Expired),
            FINISHED => Err(RescheduleError::Finished),
            _ => {
                self.node.set_deadline(deadline.into());
                Ok(())
            }
        }
    }

    /// Whether the deadline has fired (the future may still be unwinding).
    pub fn expired(&self) -> bool {
        matches!(
            phase(&self.node).load(Ordering::Acquire),
            EXPIRING | EXPIRED
        )
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match phase(&self.node).load(Ordering::Acquire) {
            CREATED => "created",
            ACTIVE => "active",
            EXPIRING => "expiring",
            EXPIRED => "expired",
            _ => "finished",
        };
        f.debug_struct("Timeout")
            .field("state", &state)
            .field("deadline", &self.deadline())
            .finish()
    }
}

fn phase(node: &Node) -> &AtomicU8 {
    match node.kind() {
        NodeKind::Timeout { phase, .. } => phase,
        _ => unreachable!("a Timeout handle always points at a timeout node"),
    }
}

fn generation(node: &Node) -> u64 {
    match node.kind() {
        NodeKind::Timeout { generation, .. } => generation.load(Ordering::Acquire),
        _ => unreachable!("a timeout future always owns a timeout node"),
    }
}

/// Marks the timeout finished and leaves the tree however the future ends.
struct Exit {
    node: Arc<Node>,
}

impl Drop for Exit {
    fn drop(&mut self) {
        let _ = phase(&self.node).compare_exchange(
            ACTIVE,
            FINISHED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        let _ = phase(&self.node).compare_exchange(
            CREATED,
            FINISHED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        self.node.detach();
    }
}

pin_project! {
    /// Future returned by [`timeout`], [`timeout_at`], [`wait_for`] and [`timeout_scope`].
    #[must_use = "futures do nothing unless you `.await` or poll them"]
    pub struct TimeoutFuture<F> {
        exit: Exit,
        entered: bool,
        expire_at_start: bool,
        // The timer is armed for this generation of the deadline.
        armed: Option<u64>,
        // The owner waker is registered for this generation.
        owner: Option<(u64, Waker)>,
        #[pin]
        inner: Scoped<F>,
        #[pin]
        sleep: Option<Sleep>,
    }
}

impl<F: Future> TimeoutFuture<F> {
    fn new(deadline: Option<Instant>, fut: F, expire_at_start: bool) -> Self {
        TimeoutFuture::with_node(timeout_node(deadline), fut, expire_at_start)
    }

    fn with_node(node: Arc<Node>, fut: F, expire_at_start: bool) -> Self {
        TimeoutFuture {
            exit: Exit {
                node: Arc::clone(&node),
            },
            entered: false,
            expire_at_start,
            armed: None,
            owner: None,
            inner: Scoped::new(node, fut),
            sleep: None,
        }
    }

    /// A handle to read or move the deadline while the future runs.
    pub fn handle(&self) -> Timeout {
        Timeout {
            node: Arc::clone(&self.exit.node),
        }
    }
}

impl<F> fmt::Debug for TimeoutFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutFuture")
            .field(
                "timeout",
                &Timeout {
                    node: Arc::clone(&self.exit.node),
                },
            )
            .finish_non_exhaustive()
    }
}

impl<F: Future> Future for TimeoutFuture<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let node = &this.exit.node;
        if !*this.entered {
            *this.entered = true;
            node.bind(scope::current());
            phase(node).store(ACTIVE, Ordering::Release);
            if *this.expire_at_start {
                fire(node);
            }
        }
        // A deadline that has already passed counts before the future is polled, so that
        // of two nested timeouts that fire together the outer one reports it.
        if !node.is_cancelled_directly()
            && this
                .sleep
                .as_ref()
                .as_pin_ref()
                .is_some_and(|s| s.is_elapsed())
        {
            fire(node);
        }
        match this
            .inner
            .as_mut()
            .poll_scoped(cx, || node.is_cancelled_directly())
        {
            Poll::Ready(Some(output)) => {
                let expired = node.is_cancelled_directly();
                phase(node).store(if expired { EXPIRED } else { FINISHED }, Ordering::Release);
                // After the deadline fired, a future that ends by passing the cancellation
                // up has been cancelled by it; one that finished without noticing keeps its
                // result.
                return Poll::Ready(if expired && node.delivered() {
                    Err(Elapsed(()))
                } else {
                    Ok(output)
                });
            }
            Poll::Ready(None) => return Poll::Ready(Err(expire(node))),
            Poll::Pending => {}
        }
        if node.is_cancelled_directly() {
            // Expiring: something structured inside is still unwinding.
            return Poll::Pending;
        }
        // Reschedules wake the owner; register before reading the generation so a
        // reschedule in between is never missed.
        let generation_now = generation(node);
        if !this
            .owner
            .as_ref()
            .is_some_and(|(g, w)| *g == generation_now && w.will_wake(cx.waker()))
        {
            node.set_owner(cx.waker());
            *this.owner = Some((generation_now, cx.waker().clone()));
        }
        let generation_now = generation(node);
        let mut due = false;
        if *this.armed != Some(generation_now) {
            *this.armed = Some(generation_now);
            let deadline = node.deadline();
            // A deadline that is already due fires now, not at the timer's next tick:
            // `timeout(0)` cancels even a future that only yields.
            due = deadline.is_some_and(|d| d <= Instant::now());
            match (deadline, this.sleep.as_mut().as_pin_mut()) {
                (None, _) => this.sleep.set(None),
                (Some(deadline), Some(sleep)) => sleep.reset(deadline),
                (Some(deadline), None) => this.sleep.set(Some(sleep_until(deadline))),
            }
        }
        if !due {
            let fired = match this.sleep.as_mut().as_pin_mut() {
                Some(sleep) => sleep.poll(cx).is_ready(),
                None => false,
            };
            if !fired {
                return Poll::Pending;
            }
        }
        // The deadline fired while the future was suspended: that is where it is cancelled,
        // unless something structured inside must unwind first.
        fire(node);
        if node.is_pinned() {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        this.inner.drop_future();
        Poll::Ready(Err(expire(node)))
    }
}

/// The future was dropped because the deadline passed.
fn expire(node: &Node) -> Elapsed {
    phase(node).store(EXPIRED, Ordering::Release);
    // If a scope around us is cancelled too, our `Elapsed` only carries its cancellation
    // outwards: let that scope report it.
    if let Some(parent) = node.parent() {
        note_delivered(parent);
    }
    Elapsed(())
}

fn fire(node: &Node) {
    phase(node).store(EXPIRING, Ordering::Release);
    node.cancel(crate::CancelReason::Deadline);
}
