//! The mutex, atomics and cell the primitives are built on: std's, or loom's when the crate
//! is built with `--cfg aio_loom`, so that the primitives can be model checked (see
//! `tests/loom.rs`).

#[cfg(aio_loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(aio_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, AtomicUsize};
#[cfg(aio_loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};
#[cfg(not(aio_loom))]
pub(crate) use std::sync::atomic::{AtomicU64, AtomicUsize};
#[cfg(not(aio_loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// std's `UnsafeCell` with loom's interface, which checks every access under loom.
#[cfg(not(aio_loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(aio_loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// Waits, a turn at a time, for another thread to finish a few instructions: spin hints,
/// and now and then a yield of the thread, in case that thread was preempted. Under loom
/// every turn yields, or loom would never run the thread waited for.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    turns: u32,
}

impl Backoff {
    pub(crate) fn snooze(&mut self) {
        self.turns = self.turns.wrapping_add(1);
        if cfg!(aio_loom) {
            #[cfg(aio_loom)]
            loom::thread::yield_now();
        } else if self.turns % 32 == 0 {
            std::thread::yield_now();
        } else {
            std::hint::spin_loop();
        }
    }
}

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
