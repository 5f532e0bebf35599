//! `TaskGroup::start`: Trio's `nursery.start`, a task that reports when it is ready.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures::task::AtomicWaker;

use super::{SpawnError, TaskGroup};
use crate::util::lock;
use crate::{CancelError, Cancelled};

/// Why [`TaskGroup::start`] did not get a ready value.
#[derive(Debug)]
#[non_exhaustive]
pub enum StartError<E> {
    /// The task failed before it reported ready. Its error is returned here instead of
    /// failing the group.
    Failed(E),
    /// The task finished without reporting ready.
    Exited,
    /// The task was cancelled before it reported ready.
    Cancelled(Cancelled),
    /// The group refused the task.
    Spawn(SpawnError),
}

impl<E: fmt::Display> fmt::Display for StartError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartError::Failed(e) => write!(f, "the task failed before it was ready: {e}"),
            StartError::Exited => {
                f.write_str("the task finished without reporting that it was ready")
            }
            StartError::Cancelled(c) => write!(f, "the task was {c} before it was ready"),
            StartError::Spawn(e) => e.fmt(f),
        }
    }
}

// `source()` is the `Cancelled` the error carries, if any.
crate::cancelled::carrier_error!(StartError);

impl<E> StartError<E> {
    /// The cancellation this error stands for, if any.
    pub fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            StartError::Cancelled(c) => Some(c),
            StartError::Spawn(e) => e.as_cancelled(),
            _ => None,
        }
    }
}

impl<E> From<Cancelled> for StartError<E> {
    fn from(c: Cancelled) -> Self {
        StartError::Cancelled(c)
    }
}

impl<E> CancelError for StartError<E> {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        StartError::as_cancelled(self)
    }
}

enum Slot<V, E> {
    Waiting,
    Ready(V),
    Failed(E),
    Exited,
    Taken,
}

struct Shared<V, E> {
    slot: Mutex<Slot<V, E>>,
    starter: AtomicWaker,
}

impl<V, E> Shared<V, E> {
    /// Fills the slot if nothing else has, and wakes the starter. Returns whether it did.
    fn settle(&self, outcome: Slot<V, E>) -> bool {
        let mut slot = lock(&self.slot);
        if !matches!(*slot, Slot::Waiting) {
            return false;
        }
        *slot = outcome;
        drop(slot);
        self.starter.wake();
        true
    }
}

/// Handed to a task started with [`TaskGroup::start`]: call [`started`](Self::started) when
/// the task is ready, with the value the starter should get. Trio's `task_status`.
pub struct TaskStatus<V, E = crate::BoxError> {
    shared: Arc<Shared<V, E>>,
}

impl<V, E> TaskStatus<V, E> {
    /// Reports that the task is ready: [`TaskGroup::start`] returns `value` while the task
    /// goes on running in the group. From now on its failure fails the group.
    pub fn started(self, value: V) {
        self.shared.settle(Slot::Ready(value));
    }
}

impl<V, E> fmt::Debug for TaskStatus<V, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskStatus").finish_non_exhaustive()
    }
}

impl<E: CancelError + Send + 'static> TaskGroup<E> {
    /// Starts a task and waits until it reports that it is ready, returning the value it
    /// reports; the task goes on running in the group. Trio's `await nursery.start(fn)`.
    ///
    /// `task` receives a [`TaskStatus`]; the task calls `status.started(value)` once it is
    /// ready (a server bound to its port, a connection established). Until then, its failure
    /// is `start`'s, not the group's: `start` returns [`StartError::Failed`] and the group
    /// carries on. After it, the task is an ordinary task of the group.
    ///
    /// # Errors
    ///
    /// [`StartError`]: the task failed, finished or was cancelled before it was ready, or
    /// the group refused it.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future does not stop the task, which belongs to the group; only the
    /// ready value is lost.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_core::{BoxError, TaskGroup, TaskStatus};
    ///
    /// TaskGroup::<BoxError>::scope(|tg| async move {
    ///     let port = tg
    ///         .start(|status: TaskStatus<u16, BoxError>| async move {
    ///             // ... bind a listener ...
    ///             status.started(8080);
    ///             // ... serve until the group is cancelled ...
    ///             Ok(())
    ///         })
    ///         .await?;
    ///     assert_eq!(port, 8080);
    ///     Ok(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub async fn start<F, Fut, V>(&self, task: F) -> Result<V, StartError<E>>
    where
        F: FnOnce(TaskStatus<V, E>) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        V: Send + 'static,
    {
        self.start_inner(None, task).await
    }

    /// Like [`start`](Self::start), with a name for the task.
    ///
    /// # Errors
    ///
    /// As for [`start`](Self::start).
    ///
    /// # Cancel safety
    ///
    /// As for [`start`](Self::start).
    pub async fn start_named<F, Fut, V>(
        &self,
        name: impl Into<Arc<str>>,
        task: F,
    ) -> Result<V, StartError<E>>
    where
        F: FnOnce(TaskStatus<V, E>) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        V: Send + 'static,
    {
        self.start_inner(Some(name.into()), task).await
    }

    async fn start_inner<F, Fut, V>(
        &self,
        name: Option<Arc<str>>,
        task: F,
    ) -> Result<V, StartError<E>>
    where
        F: FnOnce(TaskStatus<V, E>) -> Fut,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        V: Send + 'static,
    {
        let shared = Arc::new(Shared {
            slot: Mutex::new(Slot::Waiting),
            starter: AtomicWaker::new(),
        });
        let fut = task(TaskStatus {
            shared: Arc::clone(&shared),
        });
        let watch = NotReady(Arc::clone(&shared));
        let child = async move {
            let outcome = match fut.await {
                // Before it was ready, a failure belongs to the starter.
                Err(error) if error.as_cancelled().is_none() => {
                    let not_ready = matches!(*lock(&watch.0.slot), Slot::Waiting);
                    if not_ready {
                        watch.0.settle(Slot::Failed(error));
                        return Ok(());
                    }
                    Err(error)
                }
                other => other,
            };
            drop(watch);
            outcome
        };
        let spawned = match &name {
            Some(name) => self.spawn_named(Arc::clone(name), child),
            None => self.spawn(child),
        };
        spawned.map_err(StartError::Spawn)?;
        let group = self.core.node().clone();
        Started { shared }
            .await
            .map_err(|not_ready| match not_ready {
                Some(error) => StartError::Failed(error),
                None => match group.cancellation() {
                    Some(cancelled) => StartError::Cancelled(cancelled),
                    None => StartError::Exited,
                },
            })
    }
}

/// Tells the starter that the task ended, or was dropped, before it was ready. (The task's
/// own [`TaskStatus`] cannot: it may be dropped early by a task that goes on running.)
struct NotReady<V, E>(Arc<Shared<V, E>>);

impl<V, E> Drop for NotReady<V, E> {
    fn drop(&mut self) {
        self.0.settle(Slot::Exited);
    }
}

/// Waits for a started task's report.
struct Started<V, E> {
    shared: Arc<Shared<V, E>>,
}

impl<V, E> Future for Started<V, E> {
    /// The ready value, or the task's error (`Some`) or nothing (`None`) if it was not ready.
    type Output = Result<V, Option<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.shared.starter.register(cx.waker());
        let mut slot = lock(&self.shared.slot);
        match std::mem::replace(&mut *slot, Slot::Taken) {
            Slot::Waiting => {
                *slot = Slot::Waiting;
                Poll::Pending
            }
            Slot::Ready(value) => Poll::Ready(Ok(value)),
            Slot::Failed(error) => Poll::Ready(Err(Some(error))),
            Slot::Exited | Slot::Taken => Poll::Ready(Err(None)),
        }
    }
}
