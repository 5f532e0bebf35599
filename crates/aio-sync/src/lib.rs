//! asyncio's synchronisation primitives for aio: `Lock`, `Event`, `Condition`, `Semaphore`,
//! `BoundedSemaphore`, `Barrier` and the `Queue` family, strictly FIFO-fair and cancel safe.
//!
//! This crate is being built; it currently exports nothing.
