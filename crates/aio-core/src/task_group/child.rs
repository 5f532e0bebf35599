//! How a task of a group runs: the poll that every task shares, the Tokio task that drives a
//! [`TaskGroup`](crate::TaskGroup)'s task, and the report of how it ended (what an ending
//! means is in `outcome.rs`).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;

use super::cell::{ChildCell, LEFT_QUEUE, RUNNING, STARTED, SUSPENDED, TaskInfo};
use super::outcome::{ChildEvent, ChildOutput, Outcome};
use crate::scope::{Current, TaskScope, poll_in_scope};
use crate::{CancelReason, Cancelled, TaskError};

/// Polls a task's future once, in the task's scope (`scope` makes it): the poll that every
/// task of a group shares, however it is driven. A task waiting for a slot of its group's
/// limit is not polled; a queued task of a cancelled group never starts, and one that got a
/// slot at the same moment starts cancelled, which drops it before it runs.
///
/// `Ready` carries how the task ended. The caller then drops the future, and only then
/// reports the outcome with [`end`]: a group never sees a task finish whose future is still
/// alive.
#[inline(always)] // the hot path of every task
pub(crate) fn poll_child<F>(
    fut: Pin<&mut F>,
    info: &TaskInfo,
    scope: impl FnOnce() -> Current,
    cx: &mut Context<'_>,
) -> Poll<Outcome<<F::Output as ChildOutput>::Ok>>
where
    F: Future,
    F::Output: ChildOutput,
{
    info.register_task(cx);
    poll_child_unregistered(fut, info, scope, cx)
}

/// [`poll_child`] without registering `cx`'s waker as the one that wakes the task: for the
/// eager first poll, whose waker does nothing.
#[inline(always)]
fn poll_child_unregistered<F>(
    fut: Pin<&mut F>,
    info: &TaskInfo,
    scope: impl FnOnce() -> Current,
    cx: &mut Context<'_>,
) -> Poll<Outcome<<F::Output as ChildOutput>::Ok>>
where
    F: Future,
    F::Output: ChildOutput,
{
    if info.is_forced() {
        return Poll::Ready(Outcome::Aborted);
    }
    if info.is_queued() {
        if !info.is_cancelled() {
            return Poll::Pending;
        }
        if info.leave_queue() {
            return Poll::Ready(Outcome::Cancelled(info.cancellation_or_parent()));
        }
    }
    info.set_state(RUNNING);
    let mut started = info.own(STARTED);
    let polled = catch_unwind(AssertUnwindSafe(|| {
        poll_in_scope(
            fut,
            &mut started,
            scope,
            || info.created_node().is_some_and(|node| node.is_pinned()),
            cx,
            || info.is_cancelled(),
        )
    }));
    if started {
        info.set_own(STARTED);
    }
    match polled {
        Ok(Poll::Pending) => {
            info.set_state(SUSPENDED);
            Poll::Pending
        }
        Ok(Poll::Ready(Some(output))) => Poll::Ready(output.classify()),
        Ok(Poll::Ready(None)) => Poll::Ready(Outcome::Cancelled(info.cancellation_or_parent())),
        Err(panic) => Poll::Ready(Outcome::Panicked(panic)),
    }
}

pin_project! {
    /// The future a group hands to Tokio for each child: the user's future and the cell,
    /// and nothing else, so that a small task stays small (its flags are in the cell).
    ///
    /// The task reports how it ended from its [`Reporter`], which is dropped after the
    /// user's future: a group never sees a task finish whose future is still alive.
    /// Tokio drops a task's future as soon as its poll returns `Ready`, so the report comes
    /// right after the end.
    pub(crate) struct ChildTask<F: Future>
    where
        F::Output: ChildOutput,
    {
        #[pin]
        fut: F,
        reporter: Reporter<<F::Output as ChildOutput>::Ok>,
    }
}

/// Reports how its task ended when dropped, after the task's future.
struct Reporter<T> {
    cell: Arc<ChildCell<T>>,
}

impl<T> Drop for Reporter<T> {
    fn drop(&mut self) {
        let outcome = match self.cell.unstash() {
            // The thread started to panic since the poll ended: the future's destructor
            // panicked, after the task ended without a panic, and that is how it ends. The
            // payload goes to Tokio, which catches the panic; the panic hook has shown it.
            Some((Outcome::Ok(_) | Outcome::Cancelled(_) | Outcome::Failed(_), false))
                if std::thread::panicking() =>
            {
                Outcome::Panicked(Box::new("a task's future panicked while it was dropped"))
            }
            Some((outcome, _)) => outcome,
            // The runtime dropped the task before it finished (shutdown).
            None => Outcome::Aborted,
        };
        end(&self.cell, outcome);
    }
}

impl<F: Future + Send + 'static> ChildTask<F>
where
    F::Output: ChildOutput,
{
    pub(crate) fn new(cell: Arc<ChildCell<<F::Output as ChildOutput>::Ok>>, fut: F) -> Self {
        ChildTask {
            fut,
            reporter: Reporter { cell },
        }
    }
}

impl<F: Future> Future for ChildTask<F>
where
    F::Output: ChildOutput,
    <F::Output as ChildOutput>::Ok: Send + 'static,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        let cell = &this.reporter.cell;
        let scope = || Current::Task(Arc::clone(cell) as Arc<dyn TaskScope>);
        let outcome = match poll_child(this.fut, cell.info(), scope, cx) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => return Poll::Pending,
        };
        // Tokio drops the future now, then the reporter, which reports the outcome.
        cell.stash(outcome);
        Poll::Ready(())
    }
}

/// How the first poll of an eager task went.
pub(crate) enum FirstPoll<F, T> {
    /// The task ended, and its future has been dropped: report the outcome with [`end`].
    Ended(Outcome<T>),
    /// The task suspended: its future, boxed because it is pinned from now on, goes on as a
    /// Tokio task.
    Suspended(Pin<Box<F>>),
}

/// Polls a new task's future once, here and now, in the task's own scope: the eager start of
/// [`TaskGroup::spawn_eager`](crate::TaskGroup::spawn_eager). A task that ends at this poll
/// has its future dropped at once, before the caller reports how it ended, as a Tokio task's
/// is.
///
/// The poll's waker does nothing, and is not registered as the task's own (the one a
/// cancellation of the group wakes): a wake-up before the Tokio task exists has nobody to go
/// to. None is lost, because the Tokio task polls the future as soon as it first runs, which
/// sees whatever happened since, cancellation included, and every poll registers its own
/// waker wherever the future waits.
pub(crate) fn poll_eagerly<F>(
    cell: &Arc<ChildCell<<F::Output as ChildOutput>::Ok>>,
    fut: F,
) -> FirstPoll<F, <F::Output as ChildOutput>::Ok>
where
    F: Future,
    F::Output: ChildOutput<Ok: Send + 'static>,
{
    let mut fut = Box::pin(fut);
    let scope = || Current::Task(Arc::clone(cell) as Arc<dyn TaskScope>);
    let mut cx = Context::from_waker(Waker::noop());
    let outcome = match poll_child_unregistered(fut.as_mut(), cell.info(), scope, &mut cx) {
        Poll::Ready(outcome) => outcome,
        Poll::Pending => return FirstPoll::Suspended(fut),
    };
    FirstPoll::Ended(drop_future(outcome, || drop(fut)))
}

/// Drops the future of a task that ended with `outcome`, by `drop`, before the end is
/// reported, as a Tokio task's future is dropped: a panic while dropping it is how the task
/// ended, unless it had panicked already.
pub(crate) fn drop_future<T>(outcome: Outcome<T>, drop: impl FnOnce()) -> Outcome<T> {
    match catch_unwind(AssertUnwindSafe(drop)) {
        Err(panic) if !matches!(outcome, Outcome::Panicked(_)) => Outcome::Panicked(panic),
        _ => outcome,
    }
}

/// Reports how the task ended, once: it leaves the limit's queue if it is still in it, and
/// gives back its slot of the limit if it held one.
pub(crate) fn end<T>(cell: &ChildCell<T>, outcome: Outcome<T>) {
    let info = cell.info();
    info.leave_queue();
    finish(cell, info.limited() && !info.own(LEFT_QUEUE), outcome);
}

fn finish<T>(cell: &ChildCell<T>, holds_slot: bool, outcome: Outcome<T>) {
    let info = cell.info();
    info.set_state(super::cell::FINISHED);
    if let Some(node) = info.created_node() {
        node.detach();
    }
    // What awaiting a failed task means for the awaiter: its group is cancelled.
    let failure = || {
        Cancelled::new(CancelReason::sibling_failed(
            Some(info.id()),
            info.name().cloned(),
        ))
    };
    let (result, event) = match outcome {
        Outcome::Ok(value) => (Ok(value), None),
        Outcome::Cancelled(cancelled) => (Err(TaskError::Cancelled(cancelled)), None),
        Outcome::Aborted => (Err(TaskError::Aborted), None),
        Outcome::Failed(error) => (
            Err(TaskError::Failed(failure())),
            Some(ChildEvent::Failed(error)),
        ),
        Outcome::Panicked(panic) => (
            Err(TaskError::Panicked(failure())),
            Some(ChildEvent::Panicked(panic)),
        ),
    };
    let cancelled = matches!(result, Err(TaskError::Cancelled(_)));
    match (info.group(), event) {
        (Some(group), Some(event)) => group.child_failed(info.id(), info.name(), event),
        (Some(group), None) if cancelled => group.child_cancelled(info.id(), info.name()),
        (None, Some(ChildEvent::Panicked(_))) => {
            tracing::error!(task.id = %info.id(), "detached task panicked outside any task group");
        }
        _ => {}
    }
    cell.complete(result);
    if let Some(group) = info.group() {
        // Before `child_done`: once the last task is done the group may finalize.
        group.bury(info.registry_key());
        group.child_done(holds_slot);
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;

    use super::ChildTask;
    use crate::Cancelled;

    fn size_of_task<F: Future<Output = Result<u64, Cancelled>>>(_: &F) -> usize {
        size_of::<ChildTask<F>>()
    }

    /// A group's task adds to the user's future only its cell pointer: the flags, the
    /// scope and the outcome live in the cell. Tokio sizes tasks in steps of 128 bytes
    /// (x86_64), so every byte here can push a task into the next step.
    #[test]
    fn a_child_task_is_its_future_plus_one_word() {
        let i = 7_u64;
        let fut = async move { Ok(i) };
        assert_eq!(size_of_task(&fut), size_of_val(&fut) + size_of::<usize>());
    }
}
