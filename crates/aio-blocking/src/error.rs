//! The errors of thread offload: [`ToThreadError`].

use std::any::Any;

use aio_core::{CancelError, Cancelled};

/// Why [`to_thread`](crate::to_thread) returned no value.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_blocking::{ToThreadError, to_thread};
///
/// let err = to_thread(|| -> u32 { panic!("disk on fire") }).await.unwrap_err();
/// assert_eq!(err.panic_message(), Some("disk on fire"));
/// assert_eq!(err.to_string(), "the function panicked: disk on fire");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToThreadError {
    /// The function panicked; the panic is caught in the thread and its message kept. Call
    /// `std::panic::panic_any(message)` on it to re-raise, if that is what you want.
    #[error("the function panicked: {message}")]
    Panicked {
        /// The panic's message (its payload if that was a string, else a placeholder).
        message: String,
    },
    /// The function never ran: the caller's scope was cancelled before it could start, or
    /// the runtime was shutting down.
    #[error(transparent)]
    Cancelled(#[from] Cancelled),
}

impl ToThreadError {
    /// The panic's message, if the function panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            ToThreadError::Panicked { message } => Some(message),
            ToThreadError::Cancelled(_) => None,
        }
    }
}

impl CancelError for ToThreadError {
    fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            ToThreadError::Cancelled(c) => Some(c),
            ToThreadError::Panicked { .. } => None,
        }
    }
}

/// The message of a caught panic: its payload when that is a string.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic with a non-string payload".to_owned()
    }
}
