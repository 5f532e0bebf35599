//! The specification of aio, as integration tests: see `spec.rs` and the `core_*.rs` files
//! beside it. Each test is named after the rule it proves and runs on a current-thread
//! runtime with paused time and on a two-worker multi-thread runtime.
