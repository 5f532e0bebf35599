//! The workload registry and the helpers workloads share.
//!
//! A workload is a pair of functions, the aio version and (optionally) the baseline doing the
//! same thing with raw Tokio (or with the library named in its label). Each takes the shared
//! runtime and the number of ops and returns a [`Sample`]: the wall time of one run of the
//! work only and, for contended workloads, how fairly the tasks were served. Each checks its
//! own result and panics if the work did not happen, so a broken run cannot report a fast
//! time.
//!
//! To add a workload: write the two functions in a module here (one module per area: core,
//! gather, sync primitives, offload, ...), add a [`Workload`] entry to [`all`], and add the
//! same-named twin to `python/asyncio_workloads.py`.

use std::future::Future;
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

mod core;
mod gather;
mod in_task;
pub(crate) mod process;
mod sync;
mod threads;

/// One run of one side of a workload: `(runtime, ops) -> what the run measured`.
pub(crate) type RunFn = fn(&Runtime, usize) -> Sample;

/// What one run of one side of a workload measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    /// The wall time of the work.
    pub(crate) elapsed: Duration,
    /// For a contended workload, min/max of the per-task acquisition counts: 1.0 when every
    /// task got as many turns, 0.0 when one starved.
    pub(crate) fairness: Option<f64>,
}

impl From<Duration> for Sample {
    /// A run that measured only its time.
    fn from(elapsed: Duration) -> Self {
        Sample {
            elapsed,
            fairness: None,
        }
    }
}

/// A benchmark: the aio version and what it is compared with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Workload {
    /// The name, shared with the Python twin.
    pub(crate) name: &'static str,
    /// How many ops one run does at scale 1.0.
    pub(crate) ops: usize,
    /// The aio version.
    pub(crate) aio: RunFn,
    /// What the baseline is, for the table and the JSON.
    pub(crate) baseline_label: &'static str,
    /// The baseline, if there is one.
    pub(crate) baseline: Option<RunFn>,
}

impl Workload {
    /// The ops at `scale`, rounded down and at least one: the same rule as the Python twin.
    pub(crate) fn ops_at(&self, scale: f64) -> usize {
        scale_ops(self.ops, scale)
    }
}

/// `max(1, int(ops * scale))`, as in Python.
pub(crate) fn scale_ops(ops: usize, scale: f64) -> usize {
    ((ops as f64 * scale) as usize).max(1)
}

/// Every workload, in the order they run.
pub(crate) fn all() -> Vec<Workload> {
    vec![
        Workload {
            name: "taskgroup_spawn_join",
            ops: 100_000,
            aio: core::spawn_join_aio,
            baseline_label: "tokio JoinSet",
            baseline: Some(core::spawn_join_tokio),
        },
        Workload {
            name: "taskgroup_spawn_yield",
            ops: 100_000,
            aio: core::spawn_yield_aio,
            baseline_label: "tokio JoinSet",
            baseline: Some(core::spawn_yield_tokio),
        },
        Workload {
            name: "taskgroup_cancel_siblings",
            ops: 10_000,
            aio: core::cancel_siblings_aio,
            baseline_label: "tokio JoinSet::abort_all",
            baseline: Some(core::cancel_siblings_tokio),
        },
        Workload {
            name: "timeout_no_fire",
            ops: 100_000,
            aio: core::timeout_no_fire_aio,
            baseline_label: "tokio::time::timeout",
            baseline: Some(core::timeout_no_fire_tokio),
        },
        Workload {
            name: "nested_scopes",
            ops: 100_000,
            aio: core::nested_scopes_aio,
            baseline_label: "10 nested tokio::time::timeout",
            baseline: Some(core::nested_scopes_tokio),
        },
        Workload {
            name: "gather",
            ops: 100_000,
            aio: gather::gather_aio,
            baseline_label: "join_all of spawned tasks",
            baseline: Some(gather::gather_tokio),
        },
        Workload {
            name: "as_completed",
            ops: 10_000,
            aio: gather::as_completed_aio,
            baseline_label: "JoinSet::join_next",
            baseline: Some(gather::as_completed_tokio),
        },
        Workload {
            name: "limited_group",
            ops: 100_000,
            aio: gather::limited_group_aio,
            baseline_label: "JoinSet + Semaphore(10)",
            baseline: Some(gather::limited_group_tokio),
        },
        Workload {
            name: "race4_in_task",
            ops: 100_000,
            aio: in_task::race4_aio,
            baseline_label: "tokio::select!",
            baseline: Some(in_task::race4_select),
        },
        Workload {
            name: "race4_in_task_fc",
            ops: 100_000,
            aio: in_task::race4_aio,
            baseline_label: "futures-concurrency race",
            baseline: Some(in_task::race4_futures_concurrency),
        },
        Workload {
            name: "join4_in_task",
            ops: 100_000,
            aio: in_task::join4_aio,
            baseline_label: "tokio::try_join!",
            baseline: Some(in_task::join4_try_join),
        },
        Workload {
            name: "join4_in_task_fc",
            ops: 100_000,
            aio: in_task::join4_aio,
            baseline_label: "futures-concurrency try_join",
            baseline: Some(in_task::join4_futures_concurrency),
        },
        Workload {
            name: "lock_contended",
            ops: 100_000,
            aio: sync::lock_contended_aio,
            baseline_label: "tokio Mutex<()>",
            baseline: Some(sync::lock_contended_tokio),
        },
        Workload {
            name: "lock_uncontended",
            ops: 1_000_000,
            aio: sync::lock_uncontended_aio,
            baseline_label: "tokio Mutex<()>",
            baseline: Some(sync::lock_uncontended_tokio),
        },
        Workload {
            name: "semaphore_limit10",
            ops: 100_000,
            aio: sync::semaphore_limit10_aio,
            baseline_label: "tokio Semaphore",
            baseline: Some(sync::semaphore_limit10_tokio),
        },
        Workload {
            name: "event_wake_all",
            ops: 10_000,
            aio: sync::event_wake_all_aio,
            baseline_label: "tokio watch::Receiver::wait_for",
            baseline: Some(sync::event_wake_all_tokio),
        },
        Workload {
            name: "queue_spsc_bounded1024",
            ops: 1_000_000,
            aio: sync::queue_spsc_aio,
            baseline_label: "tokio mpsc::channel(1024)",
            baseline: Some(sync::queue_spsc_tokio),
        },
        Workload {
            name: "queue_mpmc_4x4_bounded128",
            ops: 1_000_000,
            aio: sync::queue_mpmc_aio,
            baseline_label: "async-channel bounded(128)",
            baseline: Some(sync::queue_mpmc_async_channel),
        },
        Workload {
            name: "condition_notify",
            ops: 100_000,
            aio: sync::condition_notify_aio,
            baseline_label: "none",
            baseline: None,
        },
        Workload {
            name: "to_thread_sequential",
            ops: 10_000,
            aio: threads::sequential_aio,
            baseline_label: "tokio spawn_blocking",
            baseline: Some(threads::sequential_tokio),
        },
        Workload {
            name: "to_thread_concurrent",
            ops: 10_000,
            aio: threads::concurrent_aio,
            baseline_label: "JoinSet of spawn_blocking",
            baseline: Some(threads::concurrent_tokio),
        },
        Workload {
            name: "procpool_roundtrip_seq",
            ops: 2_000,
            aio: process::roundtrip_seq_aio,
            baseline_label: "none (Tokio has no process pool)",
            baseline: None,
        },
        Workload {
            name: "procpool_submit_concurrent",
            ops: 2_000,
            aio: process::submit_concurrent_aio,
            baseline_label: "none (Tokio has no process pool)",
            baseline: None,
        },
        Workload {
            name: "procpool_map_chunk256",
            ops: 20_000,
            aio: process::map_chunk256_aio,
            baseline_label: "none (Tokio has no process pool)",
            baseline: None,
        },
    ]
}

/// Runs `fut` as one Tokio task on `rt` (from `block_on`) and times it from inside the task,
/// so neither the spawn that starts it nor the runtime's wake-up of `block_on` is counted.
///
/// Running in a spawned task rather than in `block_on` itself puts the workload's driving
/// task on a worker thread, where real code runs (and where Tokio's coop budget applies),
/// and keeps the runtime at exactly two threads doing work.
pub(crate) fn time_in_task<F, T>(rt: &Runtime, fut: F) -> (Duration, T)
where
    F: Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            let out = fut.await;
            (start.elapsed(), out)
        })
        .await
        .expect("benchmark task panicked")
    })
}
