//! What aio tells `tracing`, in a process of its own: `tracing` keeps process-wide caches of
//! which subscribers want which call site, and spans opened by hundreds of other tests on
//! other threads (with no subscriber, at a level one of these tests sets for the whole
//! process) race with them there.

#[allow(unused_macros)] // `spec!`: these tests pick their runtime themselves
mod support;

mod core_tracing;
mod process_tracing;
