//! A panic in a task's function, caught in the worker: [`catch_panic`] turns it into the
//! task's [`Failure::Panic`], and the panic hook records where it happened and keeps it off
//! the worker's stderr unless the pool asked for it.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};

use super::wire::{Failure, PRINT_PANICS_ENV};
use crate::error::panic_message;

thread_local! {
    /// Where the last panic on this thread happened, recorded by the worker's panic hook.
    static PANIC_LOCATION: RefCell<Option<String>> = const { RefCell::new(None) };
    /// Whether this thread runs a task's function, whose panic becomes its error.
    static IN_TASK: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f`, turning a panic into a [`Failure::Panic`] with its message and location.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> T) -> Result<T, Failure> {
    PANIC_LOCATION.with(|l| l.borrow_mut().take());
    let outer = IN_TASK.replace(true);
    let out = catch_unwind(AssertUnwindSafe(f));
    IN_TASK.set(outer);
    out.map_err(|payload| Failure::Panic {
        message: panic_message(payload.as_ref()),
        location: PANIC_LOCATION.with(|l| l.borrow_mut().take()),
    })
}

/// Records where a panic happened, for the [`RemotePanic`](super::RemotePanic) error. A
/// panic in a task is reported by that error alone, unless the pool asked for it to be
/// printed too; any other panic keeps the default output, which reaches the pool's stderr.
pub(crate) fn install_panic_hook() {
    let print_task_panics = std::env::var_os(PRINT_PANICS_ENV).is_some();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if let Some(loc) = info.location() {
            PANIC_LOCATION.with(|l| *l.borrow_mut() = Some(loc.to_string()));
        }
        if print_task_panics || !IN_TASK.get() {
            previous(info);
        }
    }));
}
