//! The errors a task group reports: [`TaskGroupError`], [`TaskFailure`] and [`SpawnError`].

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use crate::{BoxError, CancelError, Cancelled, TaskId};

/// One failure collected by a task group: a task's (or the body's) error with who raised it.
#[derive(Debug)]
pub struct TaskFailure<E> {
    task: Option<TaskId>,
    name: Option<Arc<str>>,
    index: Option<usize>,
    error: E,
}

impl<E> TaskFailure<E> {
    pub(crate) fn new(task: Option<TaskId>, name: Option<Arc<str>>, error: E) -> Self {
        TaskFailure {
            task,
            name,
            index: None,
            error,
        }
    }

    /// Notes the position of the failed future among those given to a gather or a race.
    pub(crate) fn with_index(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }

    /// The task that failed; `None` when the group's body failed.
    pub fn task_id(&self) -> Option<TaskId> {
        self.task
    }

    /// The failed task's name, if it had one.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// For [`gather`](crate::gather) and [`race_ok`](crate::race_ok): the position of the
    /// failed future among the futures given, counting from 0.
    pub fn index(&self) -> Option<usize> {
        self.index
    }

    /// Whether the group's body, rather than a task, failed.
    pub fn is_body(&self) -> bool {
        self.task.is_none()
    }

    /// The error.
    pub fn error(&self) -> &E {
        &self.error
    }

    /// Takes the error.
    pub fn into_error(self) -> E {
        self.error
    }

    fn map<F>(self, f: impl FnOnce(E) -> F) -> TaskFailure<F> {
        TaskFailure {
            task: self.task,
            name: self.name,
            index: self.index,
            error: f(self.error),
        }
    }
}

impl<E: fmt::Display> fmt::Display for TaskFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(id) = self.task else {
            return write!(f, "body: {}", self.error);
        };
        write!(f, "{id}")?;
        if let Some(name) = &self.name {
            write!(f, " '{name}'")?;
        }
        if let Some(index) = self.index {
            write!(f, " (future {index})")?;
        }
        write!(f, ": {}", self.error)
    }
}

/// Why a task group's scope did not return its body's value: asyncio's `ExceptionGroup`,
/// or the `CancelledError` of a group that was cancelled from outside.
///
/// A group that saw failures holds every one of them, in the order they happened, the
/// body's own error last; errors raised by tasks *while* being cancelled are included.
/// Tasks that ended cancelled add nothing. A group that ended only because it was
/// cancelled holds no failure and [`as_cancelled`](Self::as_cancelled) returns why.
/// Failures take priority over a cancellation, as in asyncio.
///
/// [`split`](Self::split) and, for boxed errors, [`split_by`](TaskGroupError::split_by) are
/// the counterpart of `except*`.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use aio_core::{BoxError, TaskGroup};
/// use tokio::time::sleep;
///
/// let err = TaskGroup::<BoxError>::scope(|tg| async move {
///     // Both fail at the same moment, so both failures are collected.
///     tg.spawn_named("parse", async {
///         sleep(Duration::from_millis(10)).await;
///         Err::<(), _>("bad input".into())
///     })?;
///     tg.spawn_named("fetch", async {
///         sleep(Duration::from_millis(10)).await;
///         Err::<(), _>(std::io::Error::other("refused").into())
///     })?;
///     Ok(())
/// })
/// .await
/// .unwrap_err();
///
/// assert_eq!(err.len(), 2);
/// let (io, rest) = err.split_by::<std::io::Error>();
/// assert_eq!(io.unwrap().first().unwrap().name(), Some("fetch"));
/// assert_eq!(rest.unwrap().first().unwrap().error().to_string(), "bad input");
/// # }
/// ```
pub struct TaskGroupError<E> {
    failures: Vec<TaskFailure<E>>,
    cancelled: Option<Cancelled>,
}

impl<E> TaskGroupError<E> {
    pub(crate) fn failed(failures: Vec<TaskFailure<E>>) -> Self {
        debug_assert!(!failures.is_empty());
        TaskGroupError {
            failures,
            cancelled: None,
        }
    }

    pub(crate) fn from_cancelled(cancelled: Cancelled) -> Self {
        TaskGroupError {
            failures: Vec::new(),
            cancelled: Some(cancelled),
        }
    }

    /// Notes, for each failure of a task, the position `index_of` gives its task.
    pub(crate) fn index_failures(&mut self, index_of: impl Fn(TaskId) -> Option<usize>) {
        for failure in &mut self.failures {
            if let Some(index) = failure.task.and_then(&index_of) {
                failure.index = Some(index);
            }
        }
    }

    /// The cancellation that ended the group, when no task failed.
    pub fn as_cancelled(&self) -> Option<&Cancelled> {
        self.cancelled.as_ref()
    }

    /// Whether the group ended because it was cancelled, with no failure.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.is_some()
    }

    /// How many failures were collected.
    pub fn len(&self) -> usize {
        self.failures.len()
    }

    /// Whether no failure was collected (the group was cancelled).
    pub fn is_empty(&self) -> bool {
        self.failures.is_empty()
    }

    /// The failures, in the order they happened.
    pub fn iter(&self) -> std::slice::Iter<'_, TaskFailure<E>> {
        self.failures.iter()
    }

    /// The failure that happened first: the one that made the group cancel the rest.
    pub fn first(&self) -> Option<&TaskFailure<E>> {
        self.failures.first()
    }

    /// The errors, in the order they happened, without task ids and names.
    pub fn into_errors(self) -> Vec<E> {
        self.failures
            .into_iter()
            .map(TaskFailure::into_error)
            .collect()
    }

    /// The failures, in the order they happened.
    pub fn into_failures(self) -> Vec<TaskFailure<E>> {
        self.failures
    }

    /// Splits the failures into those whose error matches `pred` and the rest, keeping
    /// their order. Either side is `None` when it would be empty; a cancellation stays with
    /// the rest. This is `ExceptionGroup.split`.
    pub fn split(self, mut pred: impl FnMut(&E) -> bool) -> (Option<Self>, Option<Self>) {
        let (matched, rest): (Vec<_>, Vec<_>) =
            self.failures.into_iter().partition(|f| pred(&f.error));
        (
            (!matched.is_empty()).then(|| TaskGroupError::failed(matched)),
            non_empty(rest, self.cancelled),
        )
    }
}

fn non_empty<E>(
    failures: Vec<TaskFailure<E>>,
    cancelled: Option<Cancelled>,
) -> Option<TaskGroupError<E>> {
    (!failures.is_empty() || cancelled.is_some()).then_some(TaskGroupError {
        failures,
        cancelled,
    })
}

impl TaskGroupError<BoxError> {
    /// Splits out the failures whose error is a `T`, downcast to it; the rest stay boxed.
    /// This is `except* T`.
    pub fn split_by<T: Error + Send + Sync + 'static>(
        self,
    ) -> (Option<TaskGroupError<T>>, Option<TaskGroupError<BoxError>>) {
        let mut matched = Vec::new();
        let mut rest = Vec::new();
        for failure in self.failures {
            if failure.error.is::<T>() {
                matched.push(failure.map(|e| *e.downcast::<T>().expect("checked with is::<T>")));
            } else {
                rest.push(failure);
            }
        }
        (
            (!matched.is_empty()).then(|| TaskGroupError::failed(matched)),
            non_empty(rest, self.cancelled),
        )
    }
}

impl<'a, E> IntoIterator for &'a TaskGroupError<E> {
    type Item = &'a TaskFailure<E>;
    type IntoIter = std::slice::Iter<'a, TaskFailure<E>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<E> IntoIterator for TaskGroupError<E> {
    type Item = TaskFailure<E>;
    type IntoIter = std::vec::IntoIter<TaskFailure<E>>;

    fn into_iter(self) -> Self::IntoIter {
        self.failures.into_iter()
    }
}

impl<E: fmt::Debug> fmt::Debug for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("TaskGroupError");
        match &self.cancelled {
            Some(cancelled) => s.field("cancelled", cancelled),
            None => s.field("failures", &self.failures),
        }
        .finish()
    }
}

impl<E: fmt::Display> fmt::Display for TaskGroupError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.failures.as_slice(), &self.cancelled) {
            ([], Some(cancelled)) => write!(f, "task group {cancelled}"),
            ([], None) => f.write_str("task group failed"),
            ([only], _) => write!(f, "1 failure in task group: {only}"),
            ([first, ..], _) => write!(
                f,
                "{} failures in task group; first: {first}",
                self.failures.len()
            ),
        }
    }
}

// `source()` is the `Cancelled` of a cancelled group. The failures are not a chain but a
// set: read them with `iter`. (`E` need not implement `Error`, so that
// `TaskGroupError<BoxError>` is an error too.)
crate::cancelled::carrier_error!(TaskGroupError);

impl<E> From<Cancelled> for TaskGroupError<E> {
    fn from(cancelled: Cancelled) -> Self {
        TaskGroupError::from_cancelled(cancelled)
    }
}

impl<E> CancelError for TaskGroupError<E> {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        TaskGroupError::as_cancelled(self)
    }
}

/// Why [`TaskGroup::spawn`](crate::TaskGroup::spawn) refused a task. The task's future is
/// dropped without being polled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpawnError {
    /// The group's scope has returned; nothing can join it any more.
    #[error("cannot spawn into a task group that has finished")]
    Finished,
    /// The group is cancelled and unwinding; a new task would only be cancelled.
    #[error("cannot spawn into a task group that is shutting down ({0})")]
    ShuttingDown(Cancelled),
}

impl SpawnError {
    /// The cancellation that made the group refuse the task, for
    /// [`ShuttingDown`](Self::ShuttingDown).
    pub fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            SpawnError::ShuttingDown(c) => Some(c),
            SpawnError::Finished => None,
        }
    }
}

impl From<SpawnError> for std::io::Error {
    fn from(e: SpawnError) -> std::io::Error {
        std::io::Error::other(e)
    }
}
