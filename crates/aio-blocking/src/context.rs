//! What a thread borrows from the code that handed it work: the `tracing` dispatcher and
//! span, asyncio's copied `contextvars`.

use std::sync::Arc;

use tracing::{Dispatch, Span};

use crate::from_thread::{self, Portal};

/// The caller's `tracing` context, captured where work is handed to a thread, and the
/// portal through which the thread calls back into the waiting task.
pub(crate) struct CallerContext {
    dispatch: Dispatch,
    span: Span,
    portal: Arc<Portal>,
}

impl CallerContext {
    /// The context of the calling code, with the thread's end of its portal.
    pub(crate) fn capture(portal: Arc<Portal>) -> Self {
        CallerContext {
            dispatch: tracing::dispatcher::get_default(Dispatch::clone),
            span: Span::current(),
            portal,
        }
    }

    /// Runs `f` (on the worker thread) with the caller's subscriber as the default and the
    /// caller's span entered, so what `f` logs lands where the caller's own events do, even
    /// under a subscriber set only for the caller's thread; [`from_thread`](crate::from_thread)
    /// reaches the caller through the portal.
    pub(crate) fn run<R>(self, f: impl FnOnce() -> R) -> R {
        let CallerContext {
            dispatch,
            span,
            portal,
        } = self;
        tracing::dispatcher::with_default(&dispatch, || {
            let _entered = span.enter();
            from_thread::with_portal(Some(portal), f)
        })
    }
}
