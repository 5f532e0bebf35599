//! The slots of a [`ProcessPool`](crate::ProcessPool): Tokio tasks that each own at most
//! one worker process and run the queued calls on it.
//!
//! Slots start on demand, up to `max_workers`, and an idle slot takes the oldest queued
//! task, so a task stays in the queue, and cancellable, until a worker is free to run it. A
//! slot ends only when the pool is closing and the queue is empty, or when the pool is
//! killed or broken; it then stops or kills its worker and reaps it.

use std::sync::Arc;

use super::config::CrashPolicy;
use super::dispatch::{Dispatcher, Job, SlotGuard};
use super::error::{BrokenCause, ProcessError};
use super::handle::RawHandle;
use super::worker::{Outcome, Worker};

/// Queues a call of `name` with one argument per part, and starts a slot if no free one
/// can take it.
pub(crate) fn submit(pool: &Arc<Dispatcher>, name: &'static str, parts: Vec<Vec<u8>>) -> RawHandle {
    let (id, reply, guard) = match pool.enqueue(name, parts) {
        Ok(queued) => queued,
        Err(refused) => return RawHandle::failed(refused),
    };
    let handle = RawHandle::new(id, reply, Arc::downgrade(pool));
    if let Some(guard) = guard {
        // Outside the lock: a runtime that has shut down drops the slot at once, and its
        // guard then fails what is queued.
        pool.runtime().spawn(run_slot(guard));
    }
    pool.notify_work();
    handle
}

/// How a task on a worker ended.
enum End {
    Done(Vec<Outcome>),
    Crashed,
    TimedOut,
    /// Its handle was dropped while it ran.
    Abandoned,
    /// The pool killed every worker.
    Killed,
}

async fn run_slot(mut guard: SlotGuard) {
    let shared = Arc::clone(&guard.shared);
    let slot = guard.slot;
    let mut worker: Option<Worker> = None;
    while shared.wait_for_work(slot, &mut worker).await {
        let mut w = match worker.take() {
            Some(w) => w,
            None => match Worker::start(&shared.cfg).await {
                Ok(w) => {
                    shared.worker_started(slot, w.pid());
                    w
                }
                Err(e) => {
                    if shared.start_failed(e) {
                        break;
                    }
                    continue;
                }
            },
        };
        let Some((id, mut job, busy)) = shared.take_job() else {
            worker = Some(w);
            continue;
        };
        let end = run_job(&shared, &mut w, id, &mut job).await;
        // The worker to keep, and one to retire once the reply is out.
        let mut retiring = None;
        let reply = match end {
            End::Done(outcomes) => {
                let spent = shared
                    .cfg
                    .max_tasks_per_child
                    .is_some_and(|max| w.calls >= max.get());
                if spent {
                    shared.worker_gone(slot);
                    retiring = Some(w);
                } else {
                    worker = Some(w);
                }
                Ok(outcomes)
            }
            End::Crashed => {
                let crashed = w.crashed().await;
                shared.worker_gone(slot);
                // Reported by the task's error; logged at WARN only if nobody takes it.
                tracing::debug!(error = %crashed, "a process pool worker died in a task");
                if shared.cfg.crash_policy == CrashPolicy::BreakPool {
                    shared.break_pool(BrokenCause::WorkerCrashed(crashed.clone()));
                }
                Err(ProcessError::WorkerCrashed(crashed))
            }
            End::TimedOut | End::Abandoned | End::Killed => {
                w.kill().await;
                shared.worker_gone(slot);
                Err(match end {
                    End::TimedOut => ProcessError::TimedOut {
                        after: shared.cfg.task_timeout.unwrap_or_default(),
                    },
                    End::Killed => shared.killed_error(),
                    _ => ProcessError::Cancelled,
                })
            }
        };
        drop(busy);
        if let Err(Err(error @ ProcessError::WorkerCrashed(_))) = job.reply.send(reply) {
            tracing::warn!(%error, "a process pool worker died in a task nobody waits for");
        }
        if let Some(w) = retiring {
            w.retire().await;
        }
    }
    if let Some(mut w) = worker.take() {
        if shared.kill.is_cancelled() {
            w.kill().await;
        } else {
            w.retire().await;
        }
    }
    guard.finished = true;
}

async fn run_job(shared: &Dispatcher, w: &mut Worker, id: u64, job: &mut Job) -> End {
    let args: Vec<&[u8]> = job.parts.iter().map(Vec::as_slice).collect();
    let timeout = shared.cfg.task_timeout;
    let expiry = async move {
        match timeout {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = w.call(id, job.name, &args) => match r {
            Ok(outcomes) => End::Done(outcomes),
            Err(()) => End::Crashed,
        },
        () = job.reply.closed() => End::Abandoned,
        () = expiry => End::TimedOut,
        () = shared.kill.cancelled() => End::Killed,
    }
}
