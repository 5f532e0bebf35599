//! The workload registry and the helpers workloads share.
//!
//! A workload is the aio version, (optionally) the baseline doing the same thing with raw
//! Tokio (or with the library named in its label), and the peers: the same work with the
//! fastest crates a Rust user would otherwise pick. Each side takes the shared
//! runtime and the number of ops and returns a [`Sample`]: the wall time of one run of the
//! work only and, for contended workloads, how fairly the tasks were served. Each checks its
//! own result and panics if the work did not happen, so a broken run cannot report a fast
//! time.
//!
//! To add a workload: write its sides in a module here (one module per area: core,
//! gather, sync primitives, offload, ...), add a [`Workload`] entry to [`all`], and add the
//! same-named twin to `python/asyncio_workloads.py`.

use std::future::Future;
use std::time::{Duration, Instant};

use aio::{Event, Lock, Semaphore};
use tokio::runtime::Runtime;

use queues::{AioQueue, AsyncChannel, CrossfireMpmc, CrossfireSpsc, Kanal, TokioMpsc};

mod core;
mod gather;
mod in_task;
pub(crate) mod memory;
pub(crate) mod process;
mod queues;
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
    /// The peers: other crates doing the same work. The table shows the fastest.
    pub(crate) peers: &'static [Peer],
}

/// A peer crate's side of a workload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) label: &'static str,
    pub(crate) run: RunFn,
}

/// The primitives' sizes, for the memory table: per kind, each side's label and bytes.
pub(crate) fn sizes() -> Vec<(&'static str, Vec<(&'static str, usize)>)> {
    sync::sizes()
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
            peers: &[],
        },
        Workload {
            name: "taskgroup_spawn_yield",
            ops: 100_000,
            aio: core::spawn_yield_aio,
            baseline_label: "tokio JoinSet",
            baseline: Some(core::spawn_yield_tokio),
            peers: &[],
        },
        // Eager start against a plain spawn of the same children: aio/baseline is what
        // `spawn_eager` saves. A JoinSet of them is the peer.
        Workload {
            name: "taskgroup_spawn_eager",
            ops: 100_000,
            aio: core::spawn_eager_aio,
            baseline_label: "aio TaskGroup::spawn",
            baseline: Some(core::spawn_mostly_ready_aio),
            peers: &[Peer {
                label: "tokio JoinSet",
                run: core::spawn_mostly_ready_tokio,
            }],
        },
        Workload {
            name: "taskgroup_cancel_siblings",
            ops: 10_000,
            aio: core::cancel_siblings_aio,
            baseline_label: "tokio JoinSet::abort_all",
            baseline: Some(core::cancel_siblings_tokio),
            peers: &[],
        },
        Workload {
            name: "timeout_no_fire",
            ops: 100_000,
            aio: core::timeout_no_fire_aio,
            baseline_label: "tokio::time::timeout",
            baseline: Some(core::timeout_no_fire_tokio),
            peers: &[],
        },
        Workload {
            name: "nested_scopes",
            ops: 100_000,
            aio: core::nested_scopes_aio,
            baseline_label: "10 nested tokio::time::timeout",
            baseline: Some(core::nested_scopes_tokio),
            peers: &[],
        },
        Workload {
            name: "timeout_fire_10k",
            ops: 10_000,
            aio: core::timeout_fire_aio,
            baseline_label: "JoinSet of tokio::time::timeout",
            baseline: Some(core::timeout_fire_tokio),
            peers: &[],
        },
        // ns per level of a chain of nested groups, one task per level: twice, to show how
        // the cost per level grows with the depth.
        Workload {
            name: "group_chain_depth_1k",
            ops: 1_000,
            aio: core::group_chain_aio,
            baseline_label: "JoinSet per level",
            baseline: Some(core::group_chain_tokio),
            peers: &[],
        },
        Workload {
            name: "group_chain_depth_10k",
            ops: 10_000,
            aio: core::group_chain_aio,
            baseline_label: "JoinSet per level",
            baseline: Some(core::group_chain_tokio),
            peers: &[],
        },
        Workload {
            name: "gather",
            ops: 100_000,
            aio: gather::gather_aio,
            baseline_label: "join_all of spawned tasks",
            baseline: Some(gather::gather_tokio),
            peers: &[],
        },
        Workload {
            name: "as_completed",
            ops: 10_000,
            aio: gather::as_completed_aio,
            baseline_label: "JoinSet::join_next",
            baseline: Some(gather::as_completed_tokio),
            peers: &[],
        },
        Workload {
            name: "limited_group",
            ops: 100_000,
            aio: gather::limited_group_aio,
            baseline_label: "JoinSet + Semaphore(10)",
            baseline: Some(gather::limited_group_tokio),
            peers: &[],
        },
        Workload {
            name: "race4_in_task",
            ops: 100_000,
            aio: in_task::race4_aio,
            baseline_label: "tokio::select!",
            baseline: Some(in_task::race4_select),
            peers: &[Peer {
                label: "futures-concurrency race",
                run: in_task::race4_futures_concurrency,
            }],
        },
        Workload {
            name: "join4_in_task",
            ops: 100_000,
            aio: in_task::join4_aio,
            baseline_label: "tokio::try_join!",
            baseline: Some(in_task::join4_try_join),
            peers: &[Peer {
                label: "futures-concurrency try_join",
                run: in_task::join4_futures_concurrency,
            }],
        },
        Workload {
            name: "lock_contended",
            ops: 100_000,
            aio: sync::lock_contended::<Lock>,
            baseline_label: "tokio Mutex<()>",
            baseline: Some(sync::lock_contended::<tokio::sync::Mutex<()>>),
            peers: &[
                Peer {
                    label: "async-lock Mutex",
                    run: sync::lock_contended::<async_lock::Mutex<()>>,
                },
                Peer {
                    label: "futures-intrusive Mutex (fair)",
                    run: sync::lock_contended::<futures_intrusive::sync::Mutex<()>>,
                },
            ],
        },
        Workload {
            name: "lock_uncontended",
            ops: 1_000_000,
            aio: sync::lock_uncontended::<Lock>,
            baseline_label: "tokio Mutex<()>",
            baseline: Some(sync::lock_uncontended::<tokio::sync::Mutex<()>>),
            peers: &[
                Peer {
                    label: "async-lock Mutex",
                    run: sync::lock_uncontended::<async_lock::Mutex<()>>,
                },
                Peer {
                    label: "futures-intrusive Mutex (fair)",
                    run: sync::lock_uncontended::<futures_intrusive::sync::Mutex<()>>,
                },
            ],
        },
        Workload {
            name: "lock_4tasks_noawait",
            ops: 100_000,
            aio: sync::lock_4tasks_noawait::<Lock>,
            baseline_label: "tokio Mutex<()>",
            baseline: Some(sync::lock_4tasks_noawait::<tokio::sync::Mutex<()>>),
            // Fair against fair: async-lock lets the running task take the lock back
            // (barging), which is several times faster here and not what aio promises.
            peers: &[Peer {
                label: "futures-intrusive Mutex (fair)",
                run: sync::lock_4tasks_noawait::<futures_intrusive::sync::Mutex<()>>,
            }],
        },
        Workload {
            name: "semaphore_uncontended",
            ops: 1_000_000,
            aio: sync::semaphore_uncontended::<Semaphore>,
            baseline_label: "tokio Semaphore",
            baseline: Some(sync::semaphore_uncontended::<tokio::sync::Semaphore>),
            peers: &[
                Peer {
                    label: "async-lock Semaphore",
                    run: sync::semaphore_uncontended::<async_lock::Semaphore>,
                },
                Peer {
                    label: "futures-intrusive Semaphore (fair)",
                    run: sync::semaphore_uncontended::<futures_intrusive::sync::Semaphore>,
                },
            ],
        },
        Workload {
            name: "semaphore_limit10",
            ops: 100_000,
            aio: sync::semaphore_limit10::<Semaphore>,
            baseline_label: "tokio Semaphore",
            baseline: Some(sync::semaphore_limit10::<tokio::sync::Semaphore>),
            peers: &[
                Peer {
                    label: "async-lock Semaphore",
                    run: sync::semaphore_limit10::<async_lock::Semaphore>,
                },
                Peer {
                    label: "futures-intrusive Semaphore (fair)",
                    run: sync::semaphore_limit10::<futures_intrusive::sync::Semaphore>,
                },
            ],
        },
        Workload {
            name: "event_pingpong",
            ops: 100_000,
            aio: sync::event_pingpong::<Event>,
            baseline_label: "tokio Notify",
            baseline: Some(sync::event_pingpong::<tokio::sync::Notify>),
            peers: &[Peer {
                label: "event-listener + flag",
                run: sync::event_pingpong::<sync::FlagListener>,
            }],
        },
        Workload {
            name: "event_wake_all",
            ops: 10_000,
            aio: sync::event_wake_all_aio,
            baseline_label: "tokio watch::Receiver::wait_for",
            baseline: Some(sync::event_wake_all_tokio),
            peers: &[],
        },
        Workload {
            name: "queue_spsc_bounded128",
            ops: 1_000_000,
            aio: queues::spsc::<AioQueue, 128>,
            baseline_label: "tokio mpsc::channel(128)",
            baseline: Some(queues::spsc::<TokioMpsc, 128>),
            peers: SPSC_PEERS_128,
        },
        Workload {
            name: "queue_spsc_bounded1024",
            ops: 1_000_000,
            aio: queues::spsc::<AioQueue, 1024>,
            baseline_label: "tokio mpsc::channel(1024)",
            baseline: Some(queues::spsc::<TokioMpsc, 1024>),
            peers: SPSC_PEERS_1024,
        },
        mpmc_workload::<4, 4, 128>("queue_mpmc_4x4_bounded128"),
        mpmc_workload::<4, 4, 1024>("queue_mpmc_4x4_bounded1024"),
        mpmc_workload::<16, 16, 128>("queue_mpmc_16x16_bounded128"),
        mpmc_workload::<16, 16, 1024>("queue_mpmc_16x16_bounded1024"),
        Workload {
            name: "condition_notify",
            ops: 100_000,
            aio: sync::condition_notify_aio,
            baseline_label: "none",
            baseline: None,
            peers: &[],
        },
        Workload {
            name: "to_thread_sequential",
            ops: 10_000,
            aio: threads::sequential_aio,
            baseline_label: "tokio spawn_blocking",
            baseline: Some(threads::sequential_tokio),
            peers: &[
                Peer {
                    label: "rayon spawn + oneshot",
                    run: threads::sequential_rayon,
                },
                Peer {
                    label: "blocking unblock",
                    run: threads::sequential_blocking,
                },
            ],
        },
        Workload {
            name: "to_thread_concurrent",
            ops: 10_000,
            aio: threads::concurrent_aio,
            baseline_label: "JoinSet of spawn_blocking",
            baseline: Some(threads::concurrent_tokio),
            peers: &[
                Peer {
                    label: "rayon spawn + oneshot",
                    run: threads::concurrent_rayon,
                },
                Peer {
                    label: "blocking unblock",
                    run: threads::concurrent_blocking,
                },
            ],
        },
        Workload {
            name: "procpool_roundtrip_seq",
            ops: 2_000,
            aio: process::roundtrip_seq_aio,
            baseline_label: "floor: pipe ping-pong",
            baseline: Some(process::pipe_pingpong),
            peers: &[],
        },
        Workload {
            name: "procpool_submit_concurrent",
            ops: 2_000,
            aio: process::submit_concurrent_aio,
            baseline_label: "floor: pipelined pipe",
            baseline: Some(process::pipe_pipelined),
            peers: &[],
        },
        Workload {
            name: "procpool_map_chunk256",
            ops: 20_000,
            aio: process::map_chunk256_aio,
            baseline_label: "none (Tokio has no process pool)",
            baseline: None,
            peers: &[],
        },
    ]
}

/// The peers of a one-producer, one-consumer queue of capacity `CAP`.
macro_rules! spsc_peers {
    ($cap:literal) => {
        &[
            Peer {
                label: "async-channel",
                run: queues::spsc::<AsyncChannel, $cap>,
            },
            Peer {
                label: "kanal",
                run: queues::spsc::<Kanal, $cap>,
            },
            Peer {
                label: "crossfire spsc",
                run: queues::spsc::<CrossfireSpsc, $cap>,
            },
        ]
    };
}

const SPSC_PEERS_128: &[Peer] = spsc_peers!(128);
const SPSC_PEERS_1024: &[Peer] = spsc_peers!(1024);

/// `P` producers and `Q` consumers over a queue of capacity `CAP`: against async-channel
/// (Tokio has no multi-consumer channel), kanal and crossfire.
fn mpmc_workload<const P: usize, const Q: usize, const CAP: usize>(name: &'static str) -> Workload {
    Workload {
        name,
        ops: 1_000_000,
        aio: queues::mpmc::<AioQueue, P, Q, CAP>,
        baseline_label: "async-channel",
        baseline: Some(queues::mpmc::<AsyncChannel, P, Q, CAP>),
        peers: &const {
            [
                Peer {
                    label: "kanal",
                    run: queues::mpmc::<Kanal, P, Q, CAP>,
                },
                Peer {
                    label: "crossfire mpmc",
                    run: queues::mpmc::<CrossfireMpmc, P, Q, CAP>,
                },
            ]
        },
    }
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
