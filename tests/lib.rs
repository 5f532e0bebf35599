//! The specification of aio, as integration tests: see `spec.rs` and the `core_*.rs` files
//! beside it. Each test is named after the rule it proves and runs on a current-thread
//! runtime with paused time and on a two-worker multi-thread runtime. The process pool's tests
//! (`process.rs`) are a binary of their own, with their worker binary `process_worker.rs`.

pub mod process_fns;
