//! Benchmarks aio against raw Tokio and Python asyncio (being built).
fn main() {}
