//! Thread and process offload for aio: `to_thread`, a `ThreadPool`, and a `ProcessPool` of
//! worker processes for CPU-bound work.
//!
//! This crate is being built; it currently exports nothing.
