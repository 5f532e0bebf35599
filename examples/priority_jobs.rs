//! A job queue that serves the most urgent job first: an `aio::PriorityQueue` of jobs
//! ordered by `(priority, name)`, 0 being the most urgent, and one worker.
//!
//! 1. Five jobs are queued in no particular order, then the worker starts. It gets them
//!    most urgent first, and, within a priority, by name: a job's derived `Ord` compares
//!    its fields in order, as Python compares `(priority, name)` tuples. The first job
//!    turns up a failing disk and queues a follow-up of priority 0, which comes next,
//!    ahead of every job already waiting. The producer side `join()`s the queue, which
//!    also waits for the follow-up, then shuts it down, which ends the worker's loop over
//!    `stream()`.
//! 2. The same items in a `LifoQueue` come out newest first, like a stack, and in a
//!    `Queue` oldest first.
//!
//! Run it with `cargo run --example priority_jobs`.
//!
//! It mirrors:
//!
//! ```python
//! jobs = asyncio.PriorityQueue()
//! for job in [(2, "resize images"), (0, "page on-call"), (3, "rotate logs"),
//!             (1, "renew certificate"), (1, "email invoices")]:
//!     jobs.put_nowait(job)
//!
//! async def worker():
//!     while True:
//!         try:
//!             priority, name = await jobs.get()
//!         except asyncio.QueueShutDown:
//!             return
//!         if name == "page on-call":
//!             jobs.put_nowait((0, "replace disk"))
//!         jobs.task_done()
//!
//! async with asyncio.TaskGroup() as tg:
//!     tg.create_task(worker())
//!     await jobs.join()
//!     jobs.shutdown()
//!
//! stack = asyncio.LifoQueue()             # newest first
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, LifoQueue, PriorityQueue, Queue, TaskGroup};
use futures::StreamExt;
use tokio::time::sleep;

/// A job: the derived `Ord` compares `priority` first, then `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Job {
    /// 0 is the most urgent.
    priority: u8,
    name: &'static str,
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({}, {})", self.priority, self.name)
    }
}

const fn job(priority: u8, name: &'static str) -> Job {
    Job { priority, name }
}

/// The jobs queued before the worker starts, in the order they are put.
const JOBS: [Job; 5] = [
    job(2, "resize images"),
    job(0, "page on-call"),
    job(3, "rotate logs"),
    job(1, "renew certificate"),
    job(1, "email invoices"),
];

/// The job that `page on-call` queues when it finds the disk failing.
const FOLLOW_UP: Job = job(0, "replace disk");

pub(crate) fn main() {
    aio::run(async {
        most_urgent_first().await;
        other_orders();
    });
}

async fn most_urgent_first() {
    println!("== 1. a PriorityQueue of jobs, one worker");
    let jobs = PriorityQueue::new(0);
    for job in JOBS {
        jobs.put_nowait(job).unwrap();
    }
    println!("   queued: {}", JOBS.map(|j| j.to_string()).join(", "));
    let done = Arc::new(Mutex::new(Vec::new()));
    TaskGroup::<BoxError>::scope(|tg| {
        let (jobs, done) = (&jobs, &done);
        async move {
            let (queue, done) = (jobs.clone(), Arc::clone(done));
            tg.spawn_named("worker", async move {
                let mut next = queue.stream();
                while let Some(job) = next.next().await {
                    println!("   worker: {job}");
                    sleep(Duration::from_millis(2)).await; // the work
                    if job.name == "page on-call" {
                        println!("   worker: the disk is failing; queued {FOLLOW_UP}");
                        queue.put_nowait(FOLLOW_UP)?;
                    }
                    done.lock().unwrap().push(job);
                    queue.task_done()?;
                }
                println!("   worker: the queue is shut down and empty; it returns");
                Ok(())
            })?;
            jobs.join().await;
            jobs.shutdown(false);
            Ok(())
        }
    })
    .await
    .expect("no job fails");

    let done = done.lock().unwrap().clone();
    let names: Vec<&str> = done.iter().map(|j| j.name).collect();
    assert_eq!(
        names,
        [
            "page on-call",
            "replace disk",
            "email invoices",
            "renew certificate",
            "resize images",
            "rotate logs",
        ]
    );
    assert!(jobs.empty() && jobs.is_shut_down());
}

fn other_orders() {
    println!("== 2. the same items in a LifoQueue and a Queue");
    let pages = ["home", "docs", "api"];
    let stack = LifoQueue::new(0);
    let line = Queue::new(0);
    for page in pages {
        stack.put_nowait(page).unwrap();
        line.put_nowait(page).unwrap();
    }
    let from_stack: Vec<&str> = std::iter::from_fn(|| stack.get_nowait().ok()).collect();
    let from_line: Vec<&str> = std::iter::from_fn(|| line.get_nowait().ok()).collect();
    println!("   put {pages:?}: a LifoQueue gives {from_stack:?}, a Queue {from_line:?}");
    assert_eq!(from_stack, ["api", "docs", "home"]);
    assert_eq!(from_line, pages);
}
