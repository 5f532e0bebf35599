//! The tasks a group is running.
//!
//! A group must be able to reach every running task: to wake it when the group is
//! cancelled, to force it when a dropped group's grace period ends, and to show it in the
//! task tree. The registry holds each task's cell until the task has finished *and* the side
//! that spawns tasks has swept it out (see `GroupCore::bury`), so that the cell is mostly
//! freed on the thread that allocated it.

use std::sync::Arc;
use std::task::Waker;

use super::cell::ChildRef;
use crate::TaskState;
use crate::model::Mutex;
use crate::slab::Slab;
use crate::util::lock;

pub(super) struct Registry {
    tasks: Mutex<Slab<Arc<dyn ChildRef>>>,
}

impl Registry {
    pub(super) fn new() -> Self {
        Registry {
            tasks: Mutex::new(Slab::new()),
        }
    }

    /// Adds a task; the key removes it again.
    pub(super) fn insert(&self, child: Arc<dyn ChildRef>) -> usize {
        lock(&self.tasks).insert(child)
    }

    /// Removes finished tasks; their cells are dropped by the caller, after the lock.
    pub(super) fn remove(&self, keys: &[usize]) -> Vec<Arc<dyn ChildRef>> {
        let mut tasks = lock(&self.tasks);
        keys.iter().filter_map(|&key| tasks.remove(key)).collect()
    }

    /// Removes one task; its cell is dropped by the caller, after the lock.
    pub(super) fn remove_one(&self, key: usize) -> Option<Arc<dyn ChildRef>> {
        lock(&self.tasks).remove(key)
    }

    /// Takes the waker of every task that has not finished into `wakers`, in no particular
    /// order, for the caller to wake once the lock is released (see `GroupCore::notify`):
    /// no task's `Arc` is cloned and nothing is sorted.
    pub(super) fn take_wakers(&self, wakers: &mut Vec<Waker>) {
        let tasks = lock(&self.tasks);
        wakers.extend(
            tasks
                .iter()
                .filter(|child| child.state() != TaskState::Finished)
                .filter_map(|child| child.take_waker()),
        );
    }

    /// Every task that has not finished, oldest first: for the task tree, and for the
    /// reaper, which names the tasks it forces.
    pub(super) fn running(&self) -> Vec<Arc<dyn ChildRef>> {
        let mut running: Vec<Arc<dyn ChildRef>> = lock(&self.tasks)
            .iter()
            .filter(|child| child.state() != TaskState::Finished)
            .cloned()
            .collect();
        running.sort_by_key(|child| child.id());
        running
    }
}
