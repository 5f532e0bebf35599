//! A barrier between the phases of a job: three workers download, then process, then
//! upload, and none starts a phase before all have finished the one before.
//!
//! 1. Three phases, one `Barrier(3)`. Each worker takes its own time per phase (a fixed
//!    formula), yet they move through the phases together; the worker that arrives last
//!    at the barrier (index 2) reports the phase done. The barrier is cyclic: the same one
//!    serves every phase.
//! 2. A worker fails during `process`: it calls `abort()`, and the two waiting for it get
//!    `BrokenBarrierError` at once instead of waiting forever. `reset()` repairs the
//!    barrier for the next run.
//! 3. A worker gives up waiting (a timeout around `wait`): its arrival is undone, the
//!    barrier is not broken, and a stand-in takes its place. With `tokio::sync::Barrier`
//!    the arrival would still count, and the barrier would trip one party short.
//!
//! Run it with `cargo run --example barrier_phases`.
//!
//! It mirrors:
//!
//! ```python
//! barrier = asyncio.Barrier(3)
//!
//! async def worker(name):
//!     for phase in ("download", "process", "upload"):
//!         await do(phase, name)
//!         if await barrier.wait() == 2:          # the last to arrive
//!             print(f"{phase}: everyone done")
//!
//! async with asyncio.TaskGroup() as tg:
//!     for name in ("ant", "bee", "cat"):
//!         tg.create_task(worker(name))
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::sync::{Barrier, BrokenBarrierError};
use aio::{BoxError, TaskGroup, timeout};
use tokio::time::{Instant, sleep};

const WORKERS: [&str; 3] = ["ant", "bee", "cat"];
const PHASES: [&str; 3] = ["download", "process", "upload"];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How long `worker` takes for phase `phase`: 10 to 40 ms, by a fixed formula.
fn work(worker: usize, phase: usize) -> Duration {
    ms(10 + ((worker * 7 + phase * 11) % 4) as u64 * 10)
}

/// What happened, in order, with the time it happened.
#[derive(Clone)]
struct Log {
    start: Instant,
    events: Arc<Mutex<Vec<String>>>,
}

impl Log {
    fn new() -> Log {
        Log {
            start: Instant::now(),
            events: Arc::default(),
        }
    }

    fn push(&self, event: impl Into<String>) {
        let event = event.into();
        println!("   {:>3} ms {event}", self.start.elapsed().as_millis());
        self.events.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

pub(crate) fn main() {
    aio::run(async {
        phases_in_step().await;
        abort_on_failure().await;
        a_worker_gives_up().await;
    });
}

async fn phases_in_step() {
    println!("== 1. three workers, three phases, one barrier");
    let barrier = Arc::new(Barrier::new(WORKERS.len()));
    let log = Log::new();
    TaskGroup::<BoxError>::scope(|tg| {
        let (barrier, log) = (&barrier, &log);
        async move {
            for (w, name) in WORKERS.into_iter().enumerate() {
                let (barrier, log) = (Arc::clone(barrier), log.clone());
                tg.spawn_named(name, async move {
                    for (p, phase) in PHASES.into_iter().enumerate() {
                        sleep(work(w, p)).await;
                        log.push(format!("{name}: {phase} done"));
                        if barrier.wait().await? == WORKERS.len() - 1 {
                            log.push(format!("-- {phase}: everyone done"));
                        }
                    }
                    Ok(())
                })?;
            }
            Ok(())
        }
    })
    .await
    .expect("no worker fails");

    // No worker finished a phase before everyone had finished the one before.
    let events = log.events();
    for (p, phase) in PHASES.into_iter().enumerate() {
        let everyone = format!("-- {phase}: everyone done");
        let at = events.iter().position(|e| *e == everyone).expect("tripped");
        let done_before = events[..at]
            .iter()
            .filter(|e| e.ends_with(&format!("{phase} done")))
            .count();
        assert_eq!(done_before, WORKERS.len(), "{events:?}");
        if let Some(next) = PHASES.get(p + 1) {
            let first_next = events
                .iter()
                .position(|e| e.ends_with(&format!("{next} done")))
                .unwrap();
            assert!(first_next > at, "{events:?}");
        }
    }
}

async fn abort_on_failure() {
    println!("== 2. a worker fails during `process` and aborts the barrier");
    let barrier = Arc::new(Barrier::new(WORKERS.len()));
    let log = Log::new();
    let outcomes = TaskGroup::<BoxError>::scope(|tg| {
        let (barrier, log) = (&barrier, &log);
        async move {
            let mut handles = Vec::new();
            for (w, name) in WORKERS.into_iter().enumerate() {
                let (barrier, log) = (Arc::clone(barrier), log.clone());
                handles.push(tg.spawn_named(name, async move {
                    for (p, phase) in PHASES.into_iter().enumerate() {
                        sleep(work(w, p)).await;
                        if name == "bee" && phase == "process" {
                            log.push("bee: process failed: disk full; aborting the barrier");
                            barrier.abort();
                            return Ok::<_, BoxError>(format!("{name}: gave up in {phase}"));
                        }
                        if let Err(broken) = barrier.wait().await {
                            log.push(format!("{name}: {broken}"));
                            return Ok(format!("{name}: stopped after {phase}"));
                        }
                    }
                    Ok(format!("{name}: finished"))
                })?);
            }
            Ok(handles)
        }
    })
    .await
    .expect("the workers handle the broken barrier themselves");
    let outcomes: Vec<String> = outcomes.into_iter().map(|h| h.result().unwrap()).collect();
    println!("   outcomes: {outcomes:?}");
    assert_eq!(
        outcomes,
        [
            "ant: stopped after process",
            "bee: gave up in process",
            "cat: stopped after process"
        ]
    );
    assert!(barrier.is_broken());
    assert_eq!(barrier.wait().await, Err(BrokenBarrierError));
    barrier.reset();
    println!("   after reset(): broken = {}", barrier.is_broken());
    assert!(!barrier.is_broken());
}

async fn a_worker_gives_up() {
    println!("== 3. a worker gives up waiting; a stand-in takes its place");
    let barrier = Arc::new(Barrier::new(3));
    let log = Log::new();
    TaskGroup::<BoxError>::scope(|tg| {
        let (barrier, log) = (&barrier, &log);
        async move {
            let impatient = {
                let (barrier, log) = (Arc::clone(barrier), log.clone());
                tg.spawn_named("impatient", async move {
                    let r = timeout(ms(20), barrier.wait()).await;
                    log.push(format!(
                        "impatient: gave up after 20 ms ({}); {} waiting",
                        r.unwrap_err(),
                        barrier.n_waiting()
                    ));
                    Ok(())
                })?
            };
            let steady = {
                let (barrier, log) = (Arc::clone(barrier), log.clone());
                tg.spawn_named("steady", async move {
                    let index = barrier.wait().await?;
                    log.push(format!("steady: through, index {index}"));
                    Ok(())
                })?
            };
            impatient.await?;
            assert!(!barrier.is_broken(), "a cancelled arrival breaks nothing");
            for name in ["stand-in-1", "stand-in-2"] {
                let (barrier, log) = (Arc::clone(barrier), log.clone());
                tg.spawn_named(name, async move {
                    sleep(ms(10)).await;
                    let index = barrier.wait().await?;
                    log.push(format!("{name}: through, index {index}"));
                    Ok(())
                })?;
            }
            steady.await?;
            Ok(())
        }
    })
    .await
    .expect("the barrier trips with the stand-ins");
    let mut through: Vec<String> = log
        .events()
        .into_iter()
        .filter(|e| e.contains("through"))
        .collect();
    through.sort();
    assert_eq!(through.len(), 3, "{through:?}");
    assert!(through[0].starts_with("stand-in-1") && through[2].starts_with("steady"));
}
