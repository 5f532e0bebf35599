//! The mutex and the atomic word the primitives are built on: std's, or loom's when the crate
//! is built with `--cfg aio_loom`, so that the primitives can be model checked (see
//! `tests/loom.rs`).

#[cfg(aio_loom)]
pub(crate) use loom::sync::atomic::AtomicUsize;
#[cfg(aio_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(aio_loom))]
pub(crate) use std::sync::atomic::AtomicUsize;
#[cfg(not(aio_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Declares a `const fn`, except under loom, whose atomics cannot be built in a const
/// context.
macro_rules! const_unless_loom {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(aio_loom))]
        $(#[$attr])*
        $vis const fn $($rest)*

        #[cfg(aio_loom)]
        $(#[$attr])*
        $vis fn $($rest)*
    };
}

pub(crate) use const_unless_loom;
