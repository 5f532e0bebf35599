//! A group's concurrency limit.
//!
//! At most `max` tasks run at once. A task spawned while the group is full (a Tokio task, or
//! a local group's task) has not started: it waits in a first-in, first-out queue, in the
//! order the tasks were spawned (decided when `spawn` is called, so the scheduler cannot
//! reorder it), and starts when a running task finishes and hands its slot on. A queued
//! task of a cancelled group never starts.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::cell::ChildRef;
use crate::util::lock;

pub(super) struct Limit {
    max: usize,
    state: Mutex<LimitState>,
}

struct LimitState {
    running: usize,
    queue: VecDeque<Arc<dyn ChildRef>>,
}

impl Limit {
    pub(super) fn new(max: usize) -> Self {
        Limit {
            max,
            state: Mutex::new(LimitState {
                running: 0,
                queue: VecDeque::new(),
            }),
        }
    }

    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// Takes a slot for a new task if one is free; queues the task otherwise. Returns
    /// whether it may start now.
    pub(super) fn enter(&self, child: &Arc<dyn ChildRef>) -> bool {
        let mut state = lock(&self.state);
        if state.running < self.max {
            state.running += 1;
            true
        } else {
            state.queue.push_back(Arc::clone(child));
            false
        }
    }

    /// A task that held a slot is done: the slot goes to the first queued task that still
    /// wants it, or back to the pool.
    pub(super) fn release(&self) {
        loop {
            let next = {
                let mut state = lock(&self.state);
                match state.queue.pop_front() {
                    Some(next) => next,
                    None => {
                        state.running -= 1;
                        return;
                    }
                }
            };
            // A queued task that was cancelled before its turn has left: try the next one.
            if next.admit() {
                return;
            }
        }
    }

    /// How many tasks are waiting for a slot.
    pub(super) fn queued(&self) -> usize {
        lock(&self.state).queue.len()
    }
}
