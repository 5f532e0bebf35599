//! A count of the tasks waiting on a primitive, for its `Debug` output.

use std::sync::atomic::{AtomicUsize, Ordering};

/// How many tasks wait. Kept on slow paths only, so the uncontended case does not pay for
/// it; `Relaxed`, since it is only reported, never acted on. On a cache line of its own,
/// so that counting does not slow down the primitive's own state next to it.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Waiters(AtomicUsize);

impl Waiters {
    pub(crate) const fn new() -> Self {
        Waiters(AtomicUsize::new(0))
    }

    /// Counts the calling task as waiting until the returned guard is dropped.
    pub(crate) fn enter(&self) -> Waiting<'_> {
        self.0.fetch_add(1, Ordering::Relaxed);
        Waiting(&self.0)
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }
}

/// A task counted as waiting; see [`Waiters::enter`].
pub(crate) struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
