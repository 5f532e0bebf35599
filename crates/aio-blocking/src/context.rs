//! What a thread borrows from the code that handed it work: the `tracing` dispatcher and
//! span, asyncio's copied `contextvars`.

use tracing::{Dispatch, Span};

/// The caller's `tracing` context, captured where work is handed to a thread.
pub(crate) struct CallerContext {
    dispatch: Dispatch,
    span: Span,
}

impl CallerContext {
    /// The context of the calling code.
    pub(crate) fn capture() -> Self {
        CallerContext {
            dispatch: tracing::dispatcher::get_default(Dispatch::clone),
            span: Span::current(),
        }
    }

    /// Runs `f` (on the worker thread) with the caller's subscriber as the default and the
    /// caller's span entered, so what `f` logs lands where the caller's own events do, even
    /// under a subscriber set only for the caller's thread.
    pub(crate) fn run<R>(self, f: impl FnOnce() -> R) -> R {
        tracing::dispatcher::with_default(&self.dispatch, || {
            let _entered = self.span.enter();
            f()
        })
    }
}
