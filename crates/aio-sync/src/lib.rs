//! asyncio's synchronisation primitives for aio: `Lock`, `Event`, `Condition`, `Semaphore`,
//! `BoundedSemaphore`, `Barrier` and the `Queue` family, strictly FIFO-fair and cancel safe.

mod barrier;
mod wait_list;

pub use barrier::{Barrier, BarrierWait, BrokenBarrierError};
