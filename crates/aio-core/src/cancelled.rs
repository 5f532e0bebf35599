//! [`Cancelled`], the value every cancellation in aio ends as, and its [`CancelReason`].

use std::error::Error;
use std::fmt;
use std::io;
use std::sync::Arc;

use crate::TaskId;

/// A boxed error: the usual error type for task groups whose children fail in different ways.
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// Why a scope was cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CancelReason {
    /// Someone asked for it: [`TaskGroup::cancel`](crate::TaskGroup::cancel),
    /// [`TaskHandle::cancel`](crate::TaskHandle::cancel),
    /// [`CancelHandle::cancel`](crate::CancelHandle::cancel), or their `cancel_with`, whose
    /// message [`Cancelled::message`] gives.
    Explicit,
    /// The deadline of the scope's timeout passed.
    Deadline,
    /// A sibling task, or the group's body, failed or panicked, and the group is
    /// cancelling everything else in it.
    #[non_exhaustive]
    SiblingFailed {
        /// The task that failed; `None` when it was the group's body.
        task: Option<TaskId>,
        /// The failed task's name, if it had one.
        name: Option<Arc<str>>,
    },
    /// A task of a [`gather`](crate::gather) ended cancelled, which ends the gather: the
    /// other tasks are cancelled, as for a failure.
    #[non_exhaustive]
    SiblingCancelled {
        /// The task that ended cancelled.
        task: TaskId,
        /// Its name, if it had one.
        name: Option<Arc<str>>,
    },
    /// An enclosing scope was cancelled; [`Cancelled::origin`] says why.
    ParentCancelled,
    /// The program is shutting down: [`run`](crate::run) has returned, or a group was torn
    /// down while the runtime stopped.
    Shutdown,
}

impl CancelReason {
    pub(crate) fn sibling_failed(task: Option<TaskId>, name: Option<Arc<str>>) -> Self {
        CancelReason::SiblingFailed { task, name }
    }

    pub(crate) fn sibling_cancelled(task: TaskId, name: Option<Arc<str>>) -> Self {
        CancelReason::SiblingCancelled { task, name }
    }
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CancelReason::Explicit => f.write_str("cancelled explicitly"),
            CancelReason::Deadline => f.write_str("deadline elapsed"),
            CancelReason::SiblingFailed { task: None, .. } => {
                f.write_str("the task group's body failed")
            }
            CancelReason::SiblingFailed {
                task: Some(id),
                name: Some(name),
            } => write!(f, "sibling {id} '{name}' failed"),
            CancelReason::SiblingFailed {
                task: Some(id),
                name: None,
            } => write!(f, "sibling {id} failed"),
            CancelReason::SiblingCancelled {
                task,
                name: Some(name),
            } => write!(f, "sibling {task} '{name}' was cancelled"),
            CancelReason::SiblingCancelled { task, name: None } => {
                write!(f, "sibling {task} was cancelled")
            }
            CancelReason::ParentCancelled => f.write_str("an enclosing scope was cancelled"),
            CancelReason::Shutdown => f.write_str("shutting down"),
        }
    }
}

/// The error a cancelled scope delivers: asyncio's `CancelledError`, as a value.
///
/// aio never unwinds to cancel. When a scope is cancelled, the future it wraps is dropped at
/// its next `.await` and the construct that owned the scope returns `Err(Cancelled)` (or an
/// error that carries one, see [`CancelError`]). Propagate it with `?` like any other error.
///
/// [`reason`](Self::reason) says why the nearest scope was cancelled; when that was only
/// because an enclosing scope was, it is [`CancelReason::ParentCancelled`] and
/// [`origin`](Self::origin) gives the first cause. A cancellation requested with a message
/// (`cancel_with`, asyncio's `task.cancel(msg)`) carries it in [`message`](Self::message).
///
/// # Examples
///
/// ```
/// use aio_core::{CancelReason, Cancelled};
///
/// let c = Cancelled::new(CancelReason::Deadline);
/// assert_eq!(c.reason(), &CancelReason::Deadline);
/// assert_eq!(c.to_string(), "cancelled: deadline elapsed");
/// ```
// Compact on purpose: a task's cell keeps one while the task reports how it ended, and a
// few bytes more push small tasks' cells into a bigger allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct Cancelled {
    origin: CancelReason,
    /// The nearest scope was cancelled only because an enclosing one was, for `origin`.
    inherited: bool,
    message: Option<Arc<str>>,
}

/// What [`Cancelled::reason`] returns for an inherited cancellation.
static PARENT_CANCELLED: CancelReason = CancelReason::ParentCancelled;

impl Cancelled {
    /// A cancellation whose nearest scope was cancelled for `reason`.
    pub fn new(reason: CancelReason) -> Self {
        Cancelled {
            origin: reason,
            inherited: false,
            message: None,
        }
    }

    /// The same cancellation, seen from a scope inside the one that was cancelled.
    pub(crate) fn into_inherited(self) -> Self {
        Cancelled {
            inherited: self.origin != CancelReason::ParentCancelled,
            ..self
        }
    }

    pub(crate) fn with_message(mut self, message: Option<Arc<str>>) -> Self {
        self.message = message;
        self
    }

    /// Why the nearest enclosing scope was cancelled.
    pub fn reason(&self) -> &CancelReason {
        if self.inherited {
            &PARENT_CANCELLED
        } else {
            &self.origin
        }
    }

    /// Why the cancellation started: the reason of the outermost scope that was cancelled
    /// directly. Equal to [`reason`](Self::reason) unless that is
    /// [`ParentCancelled`](CancelReason::ParentCancelled).
    pub fn origin(&self) -> &CancelReason {
        &self.origin
    }

    /// The message the cancellation was requested with, if any: the `msg` of
    /// `cancel_with(msg)`, asyncio's `CancelledError.args[0]`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_core::{Cancelled, TaskGroup};
    ///
    /// let err = TaskGroup::<Cancelled>::scope(|tg| async move {
    ///     tg.cancel_with("the user pressed stop");
    ///     aio_core::checkpoint().await?;
    ///     Ok(())
    /// })
    /// .await
    /// .unwrap_err();
    /// let cancelled = err.as_cancelled().unwrap();
    /// assert_eq!(cancelled.message(), Some("the user pressed stop"));
    /// assert_eq!(cancelled.to_string(), "cancelled: the user pressed stop");
    /// # }
    /// ```
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
}

impl fmt::Display for Cancelled {
    /// `cancelled: <why>`, where the why of a cancellation requested with a message is the
    /// message; an inherited one adds its origin: `cancelled: an enclosing scope was
    /// cancelled (deadline elapsed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.message, self.inherited) {
            (Some(message), false) => write!(f, "cancelled: {message}"),
            (Some(message), true) => write!(f, "cancelled: {} ({message})", self.reason()),
            (None, false) => write!(f, "cancelled: {}", self.origin),
            (None, true) => write!(f, "cancelled: {} ({})", self.reason(), self.origin),
        }
    }
}

impl fmt::Debug for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Cancelled");
        s.field("reason", self.reason())
            .field("origin", &self.origin);
        if let Some(message) = &self.message {
            s.field("message", message);
        }
        s.finish()
    }
}

impl Error for Cancelled {}

impl From<Cancelled> for io::Error {
    fn from(c: Cancelled) -> io::Error {
        io::Error::other(c)
    }
}

/// An error type that can carry a [`Cancelled`].
///
/// A task group has to tell a child that *failed* from a child that merely passed a
/// cancellation up with `?` (a nested group or [`on_cancel`](crate::on_cancel) returning
/// `Err(Cancelled)` while unwinding). The first is collected into the
/// [`TaskGroupError`](crate::TaskGroupError); the second, like asyncio's `CancelledError`,
/// adds nothing. This trait is how the group asks.
///
/// It is implemented for [`Cancelled`], [`BoxError`] and [`std::io::Error`]. For
/// `BoxError` (and an `io::Error` wrapping one) it recognises every aio error that stands
/// for a cancellation: [`Cancelled`], and the [`TaskGroupError`](crate::TaskGroupError)s,
/// [`TaskError`](crate::TaskError)s, [`SpawnError`](crate::SpawnError)s,
/// [`StartError`](crate::StartError)s and [`RaceError`](crate::RaceError)s whose
/// `as_cancelled()` is `Some`, whatever their own error type (a boxed
/// `TaskGroupError<io::Error>` that was cancelled is a cancellation).
///
/// For your own error enum, the short way is one variant holding an
/// [`AioError`](crate::AioError) and one line, [`cancel_error!`](crate::cancel_error), which
/// writes this trait and every `From` that `?` needs. By hand, keep cancellations in a
/// variant of their own, and route the aio errors you convert with `?` through it:
///
/// ```
/// use aio_core::{CancelError, Cancelled, SpawnError, TaskError};
///
/// #[derive(Debug)]
/// enum FetchError {
///     Status(u16),
///     Cancelled(Cancelled),
///     Spawn(SpawnError),
///     Task(TaskError),
/// }
///
/// impl From<Cancelled> for FetchError {
///     fn from(c: Cancelled) -> Self {
///         FetchError::Cancelled(c)
///     }
/// }
///
/// // `tg.spawn(..)?` in a group that is shutting down is a cancellation, not a failure.
/// impl From<SpawnError> for FetchError {
///     fn from(e: SpawnError) -> Self {
///         match e.as_cancelled() {
///             Some(c) => FetchError::Cancelled(c.clone()),
///             None => FetchError::Spawn(e),
///         }
///     }
/// }
///
/// // `handle.await?` on a task that failed or was cancelled passes a cancellation up.
/// impl From<TaskError> for FetchError {
///     fn from(e: TaskError) -> Self {
///         match e.as_cancelled() {
///             Some(c) => FetchError::Cancelled(c.clone()),
///             None => FetchError::Task(e),
///         }
///     }
/// }
///
/// impl CancelError for FetchError {
///     fn as_cancelled(&self) -> Option<&Cancelled> {
///         match self {
///             FetchError::Cancelled(c) => Some(c),
///             _ => None,
///         }
///     }
/// }
/// # let _ = FetchError::Status(500);
/// ```
pub trait CancelError: From<Cancelled> {
    /// The cancellation this error carries, or `None` for a real failure.
    fn as_cancelled(&self) -> Option<&Cancelled>;
}

impl CancelError for Cancelled {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        Some(self)
    }
}

/// Implements `Error` for one of aio's generic errors that may carry a cancellation
/// (`TaskGroupError<E>`, `StartError<E>`, `RaceError<E>`): `source()` is the [`Cancelled`]
/// it carries, and `description()` the marker that [`find_cancelled`] looks for, so that a
/// boxed one carrying a cancellation is recognised as one whatever `E` is.
macro_rules! carrier_error {
    ($error:ident) => {
        impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for $error<E> {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.as_cancelled()
                    .map(|c| c as &(dyn std::error::Error + 'static))
            }

            #[allow(deprecated)]
            fn description(&self) -> &str {
                $crate::cancelled::carrier_marker()
            }
        }
    };
}

pub(crate) use carrier_error;

/// A static, so that its address is unique: no string literal can share it.
static CARRIER_MARKER: [u8; 42] = *b"an aio error that may carry a cancellation";

/// What aio's generic errors return from `Error::description`; see [`find_cancelled`].
pub(crate) fn carrier_marker() -> &'static str {
    std::str::from_utf8(&CARRIER_MARKER).expect("the marker is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A task's cell keeps a `Cancelled` while the task reports how it ended: it must stay
    /// as small as it was before it carried a message.
    #[test]
    fn a_cancellation_is_small() {
        assert!(size_of::<Cancelled>() <= 64, "{}", size_of::<Cancelled>());
    }

    #[test]
    fn inherited_cancellation_names_its_origin() {
        let c = Cancelled::new(CancelReason::Deadline).into_inherited();
        assert_eq!(c.reason(), &CancelReason::ParentCancelled);
        assert_eq!(c.origin(), &CancelReason::Deadline);
        assert_eq!(
            c.to_string(),
            "cancelled: an enclosing scope was cancelled (deadline elapsed)"
        );
    }

    #[test]
    fn boxed_and_io_errors_recognise_cancellation() {
        let boxed: BoxError = Cancelled::new(CancelReason::Explicit).into();
        assert!(boxed.as_cancelled().is_some());
        let other: BoxError = "boom".into();
        assert!(other.as_cancelled().is_none());
        let io: io::Error = Cancelled::new(CancelReason::Explicit).into();
        assert!(io.as_cancelled().is_some());
        assert!(io::Error::other("x").as_cancelled().is_none());
    }

    /// `TaskGroupError<E>`, `StartError<E>` and `RaceError<E>` carrying a cancellation are
    /// cancellations once boxed, whatever `E` is; carrying a failure, they are failures.
    #[test]
    fn boxed_generic_aio_errors_are_recognised_for_every_error_type() {
        #[derive(Debug)]
        struct Mine;
        impl fmt::Display for Mine {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("mine")
            }
        }
        let c = || Cancelled::new(CancelReason::Explicit);
        let cancellations: Vec<BoxError> = vec![
            Box::new(crate::TaskGroupError::<io::Error>::from_cancelled(c())),
            Box::new(crate::TaskGroupError::<Mine>::from_cancelled(c())),
            Box::new(crate::StartError::<io::Error>::Cancelled(c())),
            Box::new(crate::StartError::<Mine>::Spawn(
                crate::SpawnError::ShuttingDown(c()),
            )),
            Box::new(crate::RaceError::<io::Error>::Cancelled(c())),
            Box::new(crate::RaceError::<Mine>::Cancelled(c())),
        ];
        for e in &cancellations {
            assert_eq!(e.as_cancelled(), Some(&c()), "{e}");
        }
        let failures: Vec<BoxError> = vec![
            Box::new(crate::TaskGroupError::failed(vec![
                crate::TaskFailure::new(None, None, Mine),
            ])),
            Box::new(crate::StartError::<Mine>::Failed(Mine)),
            Box::new(crate::StartError::<Mine>::Exited),
            Box::new(crate::StartError::<Mine>::Spawn(
                crate::SpawnError::Finished,
            )),
            Box::new(crate::RaceError::<Mine>::Empty),
        ];
        for e in &failures {
            assert!(e.as_cancelled().is_none(), "{e}");
        }
        let io: io::Error = io::Error::other(crate::TaskGroupError::<Mine>::from_cancelled(c()));
        assert!(io.as_cancelled().is_some());
    }

    #[test]
    fn an_error_caused_by_a_cancellation_is_a_failure() {
        #[derive(Debug)]
        struct CleanupFailed(Cancelled);
        impl fmt::Display for CleanupFailed {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("cleanup failed")
            }
        }
        impl Error for CleanupFailed {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let e: BoxError = Box::new(CleanupFailed(Cancelled::new(CancelReason::Explicit)));
        assert!(e.as_cancelled().is_none());
    }
}
