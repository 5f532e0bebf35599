//! The structured-concurrency core of [aio]: Python asyncio's model, built on Tokio.
//!
//! Most users depend on the facade, the package `aio-rs` (library `aio`), which re-exports
//! everything here at its top level.
//!
//! # The model in one page
//!
//! * **Cancel scopes form a tree.** Every [`TaskGroup`], [`timeout`] and [`shield`] opens a
//!   scope. The scopes the running code is in travel with it (a stack pushed around each
//!   poll, as a Tokio task-local is), and the tasks a group spawns run inside the group's
//!   scope, so scopes nest across tasks: a timeout
//!   around a group bounds every task in it, and [`current_deadline`] sees it.
//! * **Cancellation is level-triggered.** A cancelled scope stays cancelled, and so does
//!   everything under it that is not shielded; a scope opened inside it starts cancelled.
//!   There are no cancel counters and no `uncancel()`.
//! * **It is delivered at the next `.await`.** The future a cancelled scope wraps is
//!   dropped at its next suspension point, the way `CancelledError` arrives at any `await`
//!   in Python, so foreign futures (sockets, database clients, Tokio's own) stop promptly
//!   with no cooperation. The construct that owned the scope returns [`Cancelled`], an
//!   ordinary error value.
//! * **Structured constructs unwind inside out.** A scope never drops a future while a
//!   group, shield or [`on_cancel`] inside it is still winding down: the inner construct
//!   cancels its children, waits for their cleanup, and returns `Err(Cancelled)` first.
//!   That is what Python's `__aexit__` does, and it is what lets cleanup in deep children
//!   run.
//! * **Hard drops are defined.** A group dropped by something outside aio
//!   (`tokio::select!`, an abort, runtime shutdown) never blocks: it cancels its tasks and
//!   a background reaper gives them a grace period to clean up.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use aio_core::{BoxError, TaskGroup, timeout};
//!
//! async fn fetch(i: u64) -> Result<u64, BoxError> {
//!     tokio::time::sleep(Duration::from_millis(i)).await;
//!     if i == 3 { Err("request 3 failed".into()) } else { Ok(i * 10) }
//! }
//!
//! let result = aio_core::run(async {
//!     timeout(Duration::from_secs(5), TaskGroup::scope(|tg| async move {
//!         for i in 1..=5 {
//!             tg.spawn_named(format!("fetch-{i}"), fetch(i))?;
//!         }
//!         Ok::<_, BoxError>(())
//!     }))
//!     .await
//! });
//! let failures = result.unwrap().unwrap_err();
//! assert_eq!(failures.len(), 1);
//! assert_eq!(failures.first().unwrap().name(), Some("fetch-3"));
//! ```
//!
//! [aio]: https://github.com/aio-rs/aio

mod aio_error;
mod as_completed;
mod background;
mod cancel_scope;
mod cancelled;
mod current_task;
mod gather;
mod id;
pub mod in_task;
mod join_policy;
mod local_group;
mod model;
mod on_cancel;
mod race;
mod run;
mod scope;
mod shield;
mod slab;
mod spans;
mod task_group;
mod task_tree;
mod timeout;
mod util;
mod wait;

pub use aio_error::AioError;
pub use as_completed::{AsCompleted, as_completed};
pub use background::join_background;
pub use cancel_scope::{CancelHandle, CancelScope, move_on_after, move_on_at};
pub use cancelled::{BoxError, CancelError, CancelReason, Cancelled};
pub use current_task::{CurrentTask, current_task};
pub use gather::{gather, gather_settled};
pub use id::{ScopeId, TaskId};
pub use join_policy::JoinPolicy;
pub use local_group::{LocalGroup, SendLocalGroup};
pub use on_cancel::on_cancel;
pub use race::{RaceError, race, race_ok};
pub use run::{run, run_with};
pub use scope::{cancelled, checkpoint, current_deadline, is_cancelled};
pub use shield::{shield, shield_detached};
pub use spans::set_span_level;
pub use task_group::{
    DEFAULT_GRACE, SpawnError, StartError, TaskError, TaskFailure, TaskGroup, TaskGroupBuilder,
    TaskGroupError, TaskHandle, TaskStatus, task_tree,
};
pub use task_tree::{GroupSnapshot, GroupState, TaskSnapshot, TaskState, TaskTree};
pub use timeout::{
    Elapsed, RescheduleError, Timeout, timeout, timeout_at, timeout_scope, wait_for,
};
pub use wait::{ReturnWhen, Waitable, wait};

/// The named futures returned by aio's functions, for when you need to store one.
pub mod futures {
    pub use crate::cancel_scope::CancelScopeFuture;
    pub use crate::on_cancel::OnCancel;
    pub use crate::scope::{Cancellation, Checkpoint};
    pub use crate::shield::Shield;
    pub use crate::timeout::TimeoutFuture;
    pub use crate::wait::Wait;
}
