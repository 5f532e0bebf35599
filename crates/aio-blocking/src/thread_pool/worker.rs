//! The state a [`ThreadPool`](crate::ThreadPool) shares with its worker threads, and the
//! worker loop.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

use crate::JobError;
use crate::error::panic_message;

/// A queued job, type-erased.
pub(crate) trait Work: Send {
    /// Runs the job, unless its handle cancelled it.
    fn run(self: Box<Self>);
    /// Fails the job without running it.
    fn fail(self: Box<Self>, error: JobError);
}

/// A per-thread initializer.
pub(crate) type Initializer = Arc<dyn Fn() + Send + Sync>;

pub(crate) struct Shared {
    state: Mutex<State>,
    /// Workers wait here for jobs.
    work: Condvar,
    /// Notified when the last worker exits after a shutdown.
    exited: Notify,
    max_workers: usize,
    name_prefix: String,
    initializer: Option<Initializer>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Box<dyn Work>>,
    /// Live worker threads.
    threads: usize,
    /// Threads ever started, to number their names.
    started: usize,
    /// Workers waiting for a job.
    idle: usize,
    closed: bool,
    /// The panic message of the initializer that broke the pool.
    broken: Option<String>,
}

/// Why the pool refused a job.
pub(crate) enum Refused {
    Shutdown,
    Broken(String),
}

impl Shared {
    pub(crate) fn new(
        max_workers: usize,
        name_prefix: String,
        initializer: Option<Initializer>,
    ) -> Self {
        Shared {
            state: Mutex::default(),
            work: Condvar::new(),
            exited: Notify::new(),
            max_workers,
            name_prefix,
            initializer,
        }
    }

    pub(crate) fn max_workers(&self) -> usize {
        self.max_workers
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a job and makes sure a worker will take it: an idle one, or a new thread
    /// while there are fewer than `max_workers`.
    pub(crate) fn push<J: Work + 'static>(self: &Arc<Self>, job: J) -> Result<(), (Refused, J)> {
        let mut state = self.lock();
        if let Some(message) = &state.broken {
            let message = message.clone();
            return Err((Refused::Broken(message), job));
        }
        if state.closed {
            return Err((Refused::Shutdown, job));
        }
        state.queue.push_back(Box::new(job));
        if state.queue.len() > state.idle && state.threads < self.max_workers {
            state.threads += 1;
            state.started += 1;
            let name = format!("{}-{}", self.name_prefix, state.started - 1);
            drop(state);
            let shared = Arc::clone(self);
            if let Err(e) = std::thread::Builder::new()
                .name(name)
                .spawn(move || shared.work_loop())
            {
                // No thread. If no worker is left to take the queue, nothing ever will.
                let mut state = self.lock();
                state.threads -= 1;
                let none_left = state.threads == 0;
                drop(state);
                if none_left {
                    // A shutdown may be waiting for the last thread to exit.
                    self.exited.notify_waiters();
                    self.break_pool(format!("cannot start a worker thread: {e}"));
                }
            }
        } else {
            drop(state);
            self.work.notify_one();
        }
        Ok(())
    }

    /// Stops taking jobs; with `cancel_pending`, fails the queued ones with
    /// [`JobError::Cancelled`]. Returns how many were cancelled.
    pub(crate) fn close(&self, cancel_pending: bool) -> usize {
        let mut state = self.lock();
        state.closed = true;
        let cancelled: Vec<_> = if cancel_pending {
            state.queue.drain(..).collect()
        } else {
            Vec::new()
        };
        drop(state);
        self.work.notify_all();
        let n = cancelled.len();
        for job in cancelled {
            job.fail(JobError::Cancelled);
        }
        n
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    pub(crate) fn threads(&self) -> usize {
        self.lock().threads
    }

    pub(crate) fn queued(&self) -> usize {
        self.lock().queue.len()
    }

    /// Waits until every worker has exited. Only meaningful once closed.
    pub(crate) async fn wait_exited(&self) {
        loop {
            let exited = self.exited.notified();
            let mut exited = std::pin::pin!(exited);
            exited.as_mut().enable();
            if self.lock().threads == 0 {
                return;
            }
            exited.await;
        }
    }

    fn work_loop(&self) {
        if let Some(init) = &self.initializer {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| init())) {
                let message = panic_message(&*payload);
                self.break_pool(format!("a worker's initializer panicked: {message}"));
                self.exit(self.lock());
                return;
            }
        }
        let mut state = self.lock();
        let mut counted_idle = false;
        loop {
            if let Some(job) = state.queue.pop_front() {
                if counted_idle {
                    state.idle -= 1;
                    counted_idle = false;
                }
                drop(state);
                // `f` runs under its own guard; this one catches what runs around it
                // (dropping a result nobody awaits, or a cancelled job's captures), so
                // that a panic there cannot kill the worker while it is still counted.
                let _ = catch_unwind(AssertUnwindSafe(|| job.run()));
                state = self.lock();
                continue;
            }
            if state.closed {
                if counted_idle {
                    state.idle -= 1;
                }
                self.exit(state);
                return;
            }
            if !counted_idle {
                state.idle += 1;
                counted_idle = true;
            }
            state = self
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// A worker could not start: the pool is broken, like CPython's `BrokenThreadPool`.
    /// Every queued job fails, and so will every later submit.
    fn break_pool(&self, message: String) {
        let mut state = self.lock();
        if state.broken.is_none() {
            state.broken = Some(message.clone());
        }
        state.closed = true;
        let queued: Vec<_> = state.queue.drain(..).collect();
        drop(state);
        self.work.notify_all();
        for job in queued {
            job.fail(JobError::Broken {
                message: message.clone(),
            });
        }
    }

    fn exit(&self, mut state: MutexGuard<'_, State>) {
        state.threads -= 1;
        let last = state.threads == 0;
        drop(state);
        if last {
            self.exited.notify_waiters();
        }
    }
}
