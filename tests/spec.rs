//! aio's behaviour, rule by rule.
//!
//! Rules cited as `§N.M` come from asyncio's behaviour catalogue (CPython's `Lib/asyncio`
//! sources and tests), adapted where aio's cancellation model differs on purpose:
//! cancellation is level-triggered and scoped, and a scope's future is dropped at its next
//! `.await` instead of receiving an exception. Each module opens with what it covers.

#[macro_use]
mod support;

mod blocking_threads;
mod core_cancel_scope;
mod core_current_task;
mod core_drop;
mod core_eager;
mod core_errors;
mod core_gather;
mod core_handle;
mod core_in_task;
mod core_layers;
mod core_local;
mod core_macros;
mod core_policy;
mod core_run;
mod core_scope;
mod core_shield;
mod core_start;
mod core_sweeps;
mod core_taskgroup;
mod core_timeout;
mod core_tree;
mod sync_barrier;
mod sync_condition;
mod sync_event;
mod sync_lock;
mod sync_queue;
mod sync_semaphore;
mod sync_support;
