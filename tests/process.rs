//! The process pool, rule by rule: real worker processes (the `process-worker` binary of
//! this package), on a real-time multi-thread runtime unless said otherwise below.
//!
//! Rules cited as `§15.N` come from the ProcessPoolExecutor section of asyncio's behaviour
//! catalogue, adapted where aio differs on purpose: a crash fails only its task unless the
//! pool opts into `CrashPolicy::BreakPool`, bad data fails only its task, and running tasks
//! can be cancelled (their worker is killed and replaced).
//!
//! These tests are a binary of their own because they need real time (on paused time the
//! clock would jump to the next timeout whenever a test waits for a worker) and their worker
//! binary. Their clocks are hang guards only: no test asserts how long something took,
//! except that orphaned workers are gone within a second of their pool's process dying.
//! The tests of `task_timeout` run on a clock that stands still instead
//! (`process_support::run_frozen`): a timeout fires exactly when the test moves the clock,
//! and never for a call that must succeed, however slow the machine.

mod process_support;

mod process_chaos;
mod process_failures;
mod process_pipeline;
mod process_pool;
mod process_shutdown;
mod process_start;
