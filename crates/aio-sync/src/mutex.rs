//! The mutex that guards the state of the primitives built on the wait list: std's, or
//! loom's when the crate is built with `--cfg aio_loom` so that those primitives can be
//! model checked (see `tests/loom.rs`).

#[cfg(aio_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(aio_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};
