//! The task tree as the live groups give it: [`task_tree`] and a group's snapshot.
//!
//! Where groups are listed, and the snapshots' types, are in `task_tree.rs`; this reads
//! the live groups and tasks into them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::vec;

use tokio::time::Instant;

use super::cell::ChildRef;
use super::core::{FINISHED, GroupCore, group_core};
use super::limit::Limit;
use crate::scope::{GroupScope, Node};
use crate::task_tree::{self, Unfold};
use crate::{GroupSnapshot, GroupState, TaskSnapshot, TaskTree};

/// A snapshot of every live task group in the process: the groups not opened inside
/// another group's task or body, and everything inside them, however deep.
///
/// One clock reading gives every age. Groups and tasks are read one at a time, each under its
/// own lock for a moment and with no lock held in between: the snapshot is not taken at one
/// instant, and a group opened or closed while it is taken may or may not be in it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use aio_core::{BoxError, TaskGroup};
///
/// TaskGroup::<BoxError>::builder().name("workers").scope(|tg| async move {
///     tg.spawn_named("worker-1", async {
///         tokio::time::sleep(std::time::Duration::from_millis(10)).await;
///         Ok(())
///     })?;
///     tokio::task::yield_now().await;
///     let tree = aio_core::task_tree().to_string();
///     assert!(tree.contains("'workers'") && tree.contains("'worker-1' (suspended"));
///     Ok(())
/// })
/// .await
/// .unwrap();
/// # }
/// ```
pub fn task_tree() -> TaskTree {
    // One clock reading for the whole tree, so ages compare across it.
    let now = Instant::now();
    let mut groups = sorted(task_tree::top_groups());
    TaskTree {
        groups: groups
            .drain(..)
            .map(|group| group.snapshot_at(now))
            .collect(),
    }
}

/// The groups the scope tree listed, oldest first.
fn sorted(groups: Vec<Arc<dyn GroupScope>>) -> Vec<Arc<GroupCore>> {
    let mut groups: Vec<Arc<GroupCore>> = groups.into_iter().map(group_core).collect();
    groups.sort_by_key(|group| group.node().id());
    groups
}

/// The live groups opened in a task's or group's node, oldest first.
fn groups_in(node: &Node) -> Vec<Arc<GroupCore>> {
    sorted(node.listed_groups())
}

impl GroupCore {
    /// A snapshot of the group, its tasks and the groups opened in them, all the way down.
    pub(crate) fn snapshot(&self) -> GroupSnapshot {
        self.snapshot_at(Instant::now())
    }

    /// A snapshot with ages as of `now`. The tree is walked with a stack on the heap, one
    /// group or task at a time, and no lock is held from one to the next.
    pub(crate) fn snapshot_at(&self, now: Instant) -> GroupSnapshot {
        let mut live = Live { now };
        let root = live.unfold(self);
        task_tree::grow_group(&mut live, root)
    }
}

/// Reads the live groups and tasks for the task tree.
struct Live {
    now: Instant,
}

impl Live {
    fn unfold(
        &self,
        group: &GroupCore,
    ) -> (
        GroupSnapshot,
        vec::IntoIter<Arc<dyn ChildRef>>,
        vec::IntoIter<Arc<GroupCore>>,
    ) {
        let live = group.live.load(Ordering::Acquire);
        let state = if live & FINISHED != 0 {
            GroupState::Finishing
        } else if let Some(cancelled) = group.node().cancellation() {
            GroupState::Cancelled(cancelled)
        } else {
            GroupState::Running
        };
        let snapshot = GroupSnapshot {
            id: group.node().id(),
            name: group.label(),
            state,
            age: self.now.saturating_duration_since(group.created),
            policy: group.policy,
            limit: group.limit.as_ref().map(Limit::max),
            queued: group.limit.as_ref().map_or(0, Limit::queued),
            tasks: Vec::new(),
            groups: Vec::new(),
        };
        (
            snapshot,
            group.tasks().into_iter(),
            groups_in(group.node()).into_iter(),
        )
    }
}

impl Unfold for Live {
    type Group = Arc<GroupCore>;
    type Task = Arc<dyn ChildRef>;
    type Tasks = vec::IntoIter<Arc<dyn ChildRef>>;
    type Groups = vec::IntoIter<Arc<GroupCore>>;

    fn group(&mut self, group: Arc<GroupCore>) -> (GroupSnapshot, Self::Tasks, Self::Groups) {
        self.unfold(&group)
    }

    fn task(&mut self, task: Arc<dyn ChildRef>) -> (TaskSnapshot, Self::Groups) {
        let snapshot = TaskSnapshot {
            id: task.id(),
            name: task.name().map(|name| name.to_string()),
            state: task.state(),
            age: self.now.saturating_duration_since(task.spawned()),
            groups: Vec::new(),
        };
        let groups = task
            .created_node()
            .map(|node| groups_in(node))
            .unwrap_or_default();
        (snapshot, groups.into_iter())
    }
}
