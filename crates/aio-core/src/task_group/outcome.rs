//! How a task of a group ended, and what its output means: a value for its handle, a
//! cancellation, or a failure for the group.

use std::any::Any;

use crate::{CancelError, Cancelled};

/// How a child's output is read: a value for its handle, a cancellation, or a failure for
/// the group.
pub(crate) trait ChildOutput {
    type Ok;
    fn classify(self) -> Outcome<Self::Ok>;
}

pub(crate) enum Outcome<T> {
    Ok(T),
    Cancelled(Cancelled),
    Failed(Box<dyn Any + Send>),
    Panicked(Box<dyn Any + Send>),
    /// Dropped by the reaper, the runtime or its scope before it finished.
    Aborted,
}

impl<T, E: CancelError + Send + 'static> ChildOutput for Result<T, E> {
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

impl<T> ChildOutput for Plain<T> {
    type Ok = T;

    fn classify(self) -> Outcome<T> {
        Outcome::Ok(self.0)
    }
}
