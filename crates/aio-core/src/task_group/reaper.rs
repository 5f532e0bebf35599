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
    let running = core.len();
    if running == 0 {
        let _ = core
            .live
            .compare_exchange(0, FINISHED, Ordering::AcqRel, Ordering::Acquire);
        core.report_lost();
        core.finalize();
        return;
    }
    tracing::warn!(
        group.id = %core.node.id(),
        group.name = core.name.as_deref(),
        tasks = running,
        grace = ?core.grace,
        "task group dropped before it finished; its tasks are cancelled and reaped in the background"
    );
    // If the runtime is shutting down the reaper is dropped at once; so are the tasks.
    core.spawn_tracked(run(Arc::clone(&core)));
}

async fn run(core: Arc<GroupCore>) {
    // If the runtime drops the reaper (it is shutting down), the group still leaves the tree
    // and frees what it kept.
    let _finalize = Finalize(Arc::clone(&core));
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
}

struct Finalize(Arc<GroupCore>);

impl Drop for Finalize {
    fn drop(&mut self) {
        self.0.finalize();
    }
}
