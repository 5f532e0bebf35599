//! [`AioError`]: every error aio's own operations return, in one type, and
//! [`cancel_error!`](crate::cancel_error), which makes a custom error enum work with aio in
//! one line.

use std::error::Error;
use std::io;

use crate::cancelled::carrier_marker;
use crate::{BoxError, CancelError, Cancelled, Elapsed, SpawnError, TaskError};

/// Any error that aio's own operations return: a cancellation, a refused spawn, a task's
/// outcome, an elapsed deadline. Keep it in one variant of your error enum and let
/// [`cancel_error!`](crate::cancel_error) write the conversions: `?` then works on spawns,
/// handles and timeouts, and a cancellation stays a cancellation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AioError {
    /// The scope was cancelled.
    #[error(transparent)]
    Cancelled(Cancelled),
    /// A spawn was refused.
    #[error(transparent)]
    Spawn(SpawnError),
    /// An awaited task failed, was cancelled or panicked.
    #[error(transparent)]
    Task(TaskError),
    /// A timeout's deadline passed.
    #[error(transparent)]
    Elapsed(Elapsed),
}

impl AioError {
    /// The cancellation this error stands for, if any: a cancellation, a spawn refused by a
    /// group that is shutting down, a task that passed a cancellation up. A refused spawn
    /// into a finished group and an elapsed deadline are real failures.
    pub fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            AioError::Cancelled(c) => Some(c),
            AioError::Spawn(e) => e.as_cancelled(),
            AioError::Task(e) => e.as_cancelled(),
            AioError::Elapsed(_) => None,
        }
    }
}

impl CancelError for AioError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        AioError::as_cancelled(self)
    }
}

impl From<Cancelled> for AioError {
    fn from(c: Cancelled) -> Self {
        AioError::Cancelled(c)
    }
}

impl From<SpawnError> for AioError {
    fn from(e: SpawnError) -> Self {
        AioError::Spawn(e)
    }
}

impl From<TaskError> for AioError {
    fn from(e: TaskError) -> Self {
        AioError::Task(e)
    }
}

impl From<Elapsed> for AioError {
    fn from(e: Elapsed) -> Self {
        AioError::Elapsed(e)
    }
}

/// Makes a custom error enum an aio error in one line: given the variant that holds an
/// [`AioError`], writes `From<Cancelled>`, `From<SpawnError>`, `From<TaskError>` and
/// `From<Elapsed>` (all through that variant) and [`CancelError`] (which asks it).
///
/// Then `?` converts a refused spawn, a task's outcome, a deadline and a cancellation, and
/// none can turn a cancellation into a failure by mistake: a `From` written by hand that
/// forgets to look at `as_cancelled()` makes a group report its own cancellation as a
/// failure. (aio's other errors, such as a `TaskGroupError` or a `RaceError`, are yours to
/// match or convert.) Add `#[from]` (thiserror) or a `From` of your own to the variant if
/// you also want `?` on `AioError` itself.
///
/// Name the type by a path as `cancel_error!(crate::api::ApiError, Aio)`. Generic enums need
/// the impls written by hand.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use aio_core::{AioError, TaskGroup, cancel_error, timeout};
///
/// #[derive(Debug, thiserror::Error)]
/// enum FetchError {
///     #[error("HTTP {0}")]
///     Status(u16),
///     #[error(transparent)]
///     Aio(AioError),
/// }
/// cancel_error!(FetchError::Aio);
///
/// async fn fetch(page: u16) -> Result<String, FetchError> {
///     // `?` on a timeout: an elapsed deadline is a failure of this fetch.
///     timeout(Duration::from_secs(5), async { Ok(format!("page {page}")) }).await?
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let pages = TaskGroup::<FetchError>::scope(|tg| async move {
///     let first = tg.spawn(fetch(1))?; // `?` on a refused spawn
///     let second = tg.spawn(fetch(2))?;
///     Ok(vec![first.await?, second.await?]) // `?` on a task's outcome
/// })
/// .await
/// .unwrap();
/// assert_eq!(pages, ["page 1", "page 2"]);
/// # }
/// ```
#[macro_export]
macro_rules! cancel_error {
    ($error:ident :: $variant:ident) => {
        $crate::cancel_error!($error, $variant);
    };
    ($error:ty, $variant:ident) => {
        impl ::core::convert::From<$crate::Cancelled> for $error {
            fn from(e: $crate::Cancelled) -> Self {
                Self::$variant($crate::AioError::from(e))
            }
        }

        impl ::core::convert::From<$crate::SpawnError> for $error {
            fn from(e: $crate::SpawnError) -> Self {
                Self::$variant($crate::AioError::from(e))
            }
        }

        impl ::core::convert::From<$crate::TaskError> for $error {
            fn from(e: $crate::TaskError) -> Self {
                Self::$variant($crate::AioError::from(e))
            }
        }

        impl ::core::convert::From<$crate::Elapsed> for $error {
            fn from(e: $crate::Elapsed) -> Self {
                Self::$variant($crate::AioError::from(e))
            }
        }

        impl $crate::CancelError for $error {
            fn as_cancelled(&self) -> ::core::option::Option<&$crate::Cancelled> {
                #[allow(unreachable_patterns)]
                match self {
                    Self::$variant(e) => e.as_cancelled(),
                    _ => ::core::option::Option::None,
                }
            }
        }
    };
}

// A boxed or wrapped error is a cancellation when it is one of aio's errors that carries one.

impl CancelError for BoxError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        find_cancelled(&**self)
    }
}

impl CancelError for io::Error {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        self.get_ref()
            .and_then(|inner| find_cancelled(inner as &(dyn Error + 'static)))
    }
}

/// Recognises the aio error types that stand for a cancellation once they are type-erased.
///
/// Only the error itself is inspected, never its `source()` chain: an error *caused by* a
/// cancellation (a cleanup that failed) is a real failure, as in Python.
fn find_cancelled<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a Cancelled> {
    if let Some(c) = e.downcast_ref::<Cancelled>() {
        return Some(c);
    }
    if let Some(task) = e.downcast_ref::<TaskError>() {
        return task.as_cancelled();
    }
    if let Some(spawn) = e.downcast_ref::<SpawnError>() {
        return spawn.as_cancelled();
    }
    if let Some(aio) = e.downcast_ref::<AioError>() {
        return aio.as_cancelled();
    }
    // The generic ones (`TaskGroupError<E>`, `StartError<E>`, `RaceError<E>`) cannot be
    // downcast without knowing `E`. They answer `Error::description` with a marker instead,
    // and their `source()` is the cancellation they carry. (`description` is deprecated for
    // describing errors; as a marker it is the one way to ask a type-erased error what it is
    // without its type, and no other error returns this static's address.)
    #[allow(deprecated)]
    let carrier = std::ptr::eq(e.description(), carrier_marker());
    if carrier {
        return e.source()?.downcast_ref::<Cancelled>();
    }
    None
}
