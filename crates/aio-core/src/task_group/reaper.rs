//! What happens to a group whose scope future is dropped before it finished.
//!
//! `Drop` cannot wait, so the group is cancelled on the spot and its tasks are handed to a
//! background task, the reaper. The reaper gives them the group's grace period to finish
//! their cleanup, then forces the stragglers to drop their futures, waits for that, and
//! reports through `tracing` what nobody is left to receive: failures and panics.

use std::sync::Arc;

use std::sync::atomic::Ordering;

use super::core::FINISHED;
use super::{GroupCore, WaitChildren};
use crate::CancelReason;

pub(crate) fn reap(core: Arc<GroupCore>) {
    core.node.cancel(CancelReason::ParentCancelled);
    // Finished here only if no task is counted in: a spawn from a clone of the group on
    // another thread may count itself in until the count is closed, and is then waited for
    // in the background like any other task.
    let closed = match core
        .live
        .compare_exchange(0, FINISHED, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => true,
        // Closed already: a refused spawn may be backing out of it.
        Err(live) => live & FINISHED != 0,
    };
    if closed {
        core.report_lost();
        core.finalize();
        return;
    }
    let running = core.len();
    // Routine (a client hung up, a `select!` branch lost): worth a line only when debugging.
    // What goes wrong after (a task outliving the grace period, a lost failure, a runtime
    // that shuts down first) is reported at WARN or ERROR.
    tracing::debug!(
        group.id = %core.node.id(),
        group.name = core.label(),
        tasks = running,
        grace = ?core.grace,
        "task group dropped before it finished; its tasks are cancelled and reaped in the background"
    );
    // If the runtime is shutting down the reaper is dropped at once; so are the tasks.
    // The guard exists before the reaper first runs: a runtime that shuts down before that
    // still finalizes the group, and says what was lost.
    let finalize = Finalize {
        core: Arc::clone(&core),
        reaped: false,
    };
    core.spawn_tracked(run(finalize));
}

async fn run(mut finalize: Finalize) {
    let core = Arc::clone(&finalize.core);
    let waited = tokio::time::timeout(
        core.grace,
        WaitChildren {
            core: &core,
            waited: false,
        },
    )
    .await;
    if waited.is_err() {
        for child in &core.force() {
            tracing::warn!(
                group.id = %core.node.id(),
                task.id = %child.id(),
                task.name = child.name().map(|n| &**n),
                "task did not finish within the grace period of its dropped group; dropping it"
            );
        }
        WaitChildren {
            core: &core,
            waited: false,
        }
        .await;
    }
    core.report_lost();
    finalize.reaped = true;
}

struct Finalize {
    core: Arc<GroupCore>,
    /// Every task has ended; `false` if the runtime dropped the reaper first.
    reaped: bool,
}

impl Drop for Finalize {
    fn drop(&mut self) {
        if !self.reaped {
            tracing::warn!(
                group.id = %self.core.node.id(),
                group.name = self.core.label(),
                tasks = self.core.len(),
                "the runtime shut down while the tasks of a dropped task group were finishing \
                 their cleanup; they were dropped where they stood. Let the runtime wait for aio's \
                 background work: use `aio::run` or `#[aio::main]`, or end `main` with \
                 `aio::join_background(grace).await`, with a grace as long as the group's"
            );
        }
        self.core.finalize();
    }
}
