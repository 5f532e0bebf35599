//! One task spawned into a group: the future that runs it and the cell its result lands in.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;
use pin_project_lite::pin_project;

use super::GroupCore;
use crate::scope::{Node, Scoped};
use crate::util::lock;
use crate::{CancelError, CancelReason, Cancelled, TaskError, TaskId};

/// How a child's output is read: a value for its handle, a cancellation, or a failure for
/// the group.
pub(crate) trait ChildOutput: Send + 'static {
    type Ok: Send + 'static;
    fn classify(self) -> Outcome<Self::Ok>;
}

pub(crate) enum Outcome<T> {
    Ok(T),
    Cancelled(Cancelled),
    Failed(Box<dyn Any + Send>),
    Panicked(Box<dyn Any + Send>),
    /// Dropped by the reaper or the runtime before it finished.
    Aborted,
}

impl<T: Send + 'static, E: CancelError + Send + 'static> ChildOutput for Result<T, E> {
    type Ok = T;

    fn classify(self) -> Outcome<T> {
        match self {
            Ok(value) => Outcome::Ok(value),
            Err(error) => match error.as_cancelled() {
                // A cancellation passed up with `?`: like `CancelledError`, it adds nothing.
                Some(cancelled) => Outcome::Cancelled(cancelled.clone()),
                None => Outcome::Failed(Box::new(error)),
            },
        }
    }
}

/// What a finished child tells its group beyond "done".
pub(crate) enum ChildEvent {
    Failed(Box<dyn Any + Send>),
    Panicked(Box<dyn Any + Send>),
}

/// The output of a task that cannot fail (a detached shield).
pub(crate) struct Plain<T>(pub(crate) T);

impl<T: Send + 'static> ChildOutput for Plain<T> {
    type Ok = T;

    fn classify(self) -> Outcome<T> {
        Outcome::Ok(self.0)
    }
}

/// The parts of a child the group needs without knowing its output type.
pub(crate) trait ChildRef: Send + Sync {
    /// Wakes the child's task so it sees a cancellation.
    fn wake(&self);
    /// Makes the child drop its future at its next poll, pinned or not.
    fn force(&self);
    fn id(&self) -> TaskId;
    fn name(&self) -> Option<&Arc<str>>;
}

enum Slot<T> {
    Running,
    Done(Result<T, TaskError>),
    Taken,
}

/// Shared between a running child and its [`TaskHandle`](crate::TaskHandle).
pub(crate) struct ChildCell<T> {
    id: TaskId,
    name: Option<Arc<str>>,
    task_waker: AtomicWaker,
    forced: AtomicBool,
    slot: Mutex<Slot<T>>,
    handle_waker: AtomicWaker,
}

impl<T> ChildCell<T> {
    pub(crate) fn new(id: TaskId, name: Option<Arc<str>>) -> Self {
        ChildCell {
            id,
            name,
            task_waker: AtomicWaker::new(),
            forced: AtomicBool::new(false),
            slot: Mutex::new(Slot::Running),
            handle_waker: AtomicWaker::new(),
        }
    }

    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    pub(crate) fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    fn complete(&self, result: Result<T, TaskError>) {
        *lock(&self.slot) = Slot::Done(result);
        self.handle_waker.wake();
    }

    pub(crate) fn is_finished(&self) -> bool {
        !matches!(*lock(&self.slot), Slot::Running)
    }

    /// Takes the result if the task has finished.
    pub(crate) fn take(&self) -> Option<Result<T, TaskError>> {
        let mut slot = lock(&self.slot);
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Done(result) => Some(result),
            other => {
                *slot = other;
                None
            }
        }
    }

    /// Polls for the result, registering `cx` to be woken when it arrives.
    pub(crate) fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Result<T, TaskError>> {
        if let Some(result) = self.take() {
            return Poll::Ready(result);
        }
        self.handle_waker.register(cx.waker());
        match self.take() {
            Some(result) => Poll::Ready(result),
            None => Poll::Pending,
        }
    }
}

impl<T: Send> ChildRef for ChildCell<T> {
    fn wake(&self) {
        self.task_waker.wake();
    }

    fn force(&self) {
        self.forced.store(true, Ordering::Release);
        self.task_waker.wake();
    }

    fn id(&self) -> TaskId {
        self.id
    }

    fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }
}

pin_project! {
    /// The future a group hands to Tokio for each child.
    pub(crate) struct ChildTask<F: Future>
    where
        F::Output: ChildOutput,
    {
        group: Option<Arc<GroupCore>>,
        key: usize,
        cell: Arc<ChildCell<<F::Output as ChildOutput>::Ok>>,
        #[pin]
        inner: Scoped<F>,
        done: bool,
    }

    impl<F: Future> PinnedDrop for ChildTask<F>
    where
        F::Output: ChildOutput,
    {
        fn drop(this: Pin<&mut Self>) {
            // The runtime dropped the task before it finished (shutdown).
            let this = this.project();
            if !*this.done {
                *this.done = true;
                finish(this.group.as_deref(), *this.key, this.cell, this.inner.node(), Outcome::Aborted);
            }
        }
    }
}

impl<F: Future> ChildTask<F>
where
    F::Output: ChildOutput,
{
    pub(crate) fn new(
        group: Option<Arc<GroupCore>>,
        key: usize,
        cell: Arc<ChildCell<<F::Output as ChildOutput>::Ok>>,
        node: Arc<Node>,
        fut: F,
    ) -> Self {
        ChildTask {
            group,
            key,
            cell,
            inner: Scoped::new(node, fut),
            done: false,
        }
    }
}

impl<F: Future> Future for ChildTask<F>
where
    F::Output: ChildOutput,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(());
        }
        let outcome = if this.cell.forced.load(Ordering::Acquire) {
            drop_quietly(this.inner.as_mut());
            Outcome::Aborted
        } else {
            this.cell.task_waker.register(cx.waker());
            let inner = this.inner.as_mut();
            match catch_unwind(AssertUnwindSafe(|| {
                inner.poll_scoped(cx, Node::is_cancelled)
            })) {
                Ok(Poll::Pending) => return Poll::Pending,
                Ok(Poll::Ready(Some(output))) => output.classify(),
                Ok(Poll::Ready(None)) => Outcome::Cancelled(
                    this.inner
                        .node()
                        .cancellation()
                        .unwrap_or_else(|| Cancelled::new(CancelReason::ParentCancelled)),
                ),
                Err(panic) => {
                    drop_quietly(this.inner.as_mut());
                    Outcome::Panicked(panic)
                }
            }
        };
        *this.done = true;
        finish(
            this.group.as_deref(),
            *this.key,
            this.cell,
            this.inner.node(),
            outcome,
        );
        Poll::Ready(())
    }
}

/// Drops a future whose poll panicked; a second panic from its destructor is swallowed so
/// the first one is the one reported.
fn drop_quietly<F: Future>(inner: Pin<&mut Scoped<F>>) {
    let _ = catch_unwind(AssertUnwindSafe(|| inner.drop_future()));
}

fn finish<T>(
    group: Option<&GroupCore>,
    key: usize,
    cell: &ChildCell<T>,
    node: &Node,
    outcome: Outcome<T>,
) {
    node.detach();
    let (result, event) = match outcome {
        Outcome::Ok(value) => (Ok(value), None),
        Outcome::Cancelled(cancelled) => (Err(TaskError::Cancelled(cancelled)), None),
        Outcome::Aborted => (Err(TaskError::Aborted), None),
        Outcome::Failed(error) => (Err(TaskError::Failed), Some(ChildEvent::Failed(error))),
        Outcome::Panicked(panic) => (Err(TaskError::Panicked), Some(ChildEvent::Panicked(panic))),
    };
    cell.complete(result);
    match group {
        Some(group) => group.child_done(key, cell.id(), cell.name(), event),
        None => {
            if let Some(ChildEvent::Panicked(_)) = event {
                tracing::error!(task.id = %cell.id(), "detached task panicked outside any task group");
            }
        }
    }
}
