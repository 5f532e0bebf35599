//! A supervisor group: long-lived workers whose failures do not take each other down.
//!
//! Four workers each process a job every 30 ms, six jobs in all; `resize` fails at 45 ms
//! and `notify` at 165 ms, each half-way through a job.
//!
//! 1. With `JoinPolicy::Supervisor` a worker's failure cancels nobody: the other workers
//!    finish their six jobs, and the body goes on too, watching the workers with
//!    `wait(&mut handles, ReturnWhen::FirstError)` and noting each failure as it happens.
//!    When the group ends, its error reports *every* failure, in the order they happened.
//! 2. The same workers in a default (`JoinPolicy::FailFast`) group: `resize`'s failure
//!    cancels every other worker at once, so `notify` never gets to fail; each cancelled
//!    worker's handle names `resize` as the reason, and the group reports that one failure.
//! 3. A supervisor that restarts: the body takes each failure out of the group with
//!    `tg.take_failure(id)`, logs it and spawns the worker again, which picks up at its
//!    next job. Every failure was handled, so the group ends with `Ok`.
//!
//! Run it with `cargo run --example supervisor`.
//!
//! It mirrors Kotlin's `supervisorScope`, and the supervisor policy proposed for asyncio's
//! TaskGroup in CPython gh-101581:
//!
//! ```kotlin
//! supervisorScope {
//!     for (name in listOf("ingest", "resize", "index", "notify")) {
//!         launch(CoroutineName(name)) { work(name) }  // a failure cancels only itself
//!     }
//! }
//! coroutineScope { /* ... */ }                        // the default: one fails, all stop
//! ```
//!
//! ```python
//! async with asyncio.TaskGroup() as tg:           # fail-fast, today's only policy
//!     for name in ("ingest", "resize", "index", "notify"):
//!         tg.create_task(work(name), name=name)
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{
    BoxError, CancelReason, JoinPolicy, ReturnWhen, TaskError, TaskGroup, TaskGroupError,
    TaskHandle,
};
use tokio::time::{Instant, sleep_until};

/// Jobs each worker processes when nothing goes wrong.
const JOBS: u32 = 6;
/// One job every this long.
const TICK: Duration = Duration::from_millis(30);

/// The workers, and when each one fails, if it does: after how many jobs, with what error.
const WORKERS: &[(&str, Option<(u32, &str)>)] = &[
    ("ingest", None),
    (
        "resize",
        Some((1, "out of memory decoding a 40k x 40k PNG")),
    ),
    ("index", None),
    ("notify", Some((5, "SMTP 421: service not available"))),
];

/// The jobs each worker has done, and the time since the run started.
#[derive(Clone)]
struct Board {
    start: Instant,
    jobs: Arc<Mutex<BTreeMap<&'static str, u32>>>,
}

impl Board {
    fn new() -> Board {
        Board {
            start: Instant::now(),
            jobs: Arc::default(),
        }
    }

    fn note(&self, what: impl AsRef<str>) {
        println!(
            "   {:>3} ms {}",
            self.start.elapsed().as_millis(),
            what.as_ref()
        );
    }

    fn done(&self, worker: &'static str) {
        *self.jobs.lock().unwrap().entry(worker).or_default() += 1;
    }

    fn jobs(&self, worker: &str) -> u32 {
        self.jobs.lock().unwrap().get(worker).copied().unwrap_or(0)
    }
}

/// A long-lived worker: one job per tick, until it has done `JOBS`, or until it fails
/// half-way through the job after `fails.0`. A restarted worker picks up at its next job.
async fn worker(
    board: Board,
    name: &'static str,
    fails: Option<(u32, &'static str)>,
) -> Result<u32, BoxError> {
    for job in board.jobs(name) + 1..=JOBS {
        if let Some((after, error)) = fails.filter(|&(after, _)| job == after + 1) {
            sleep_until(board.start + TICK * after + TICK / 2).await;
            board.note(format!("{name}: failed: {error}"));
            return Err(error.into());
        }
        sleep_until(board.start + TICK * job).await; // the job
        board.done(name);
    }
    Ok(JOBS)
}

/// What became of one worker: its name and its handle's result.
type Outcome = (String, Result<u32, TaskError>);

/// Runs the workers in a group with `policy`. The body watches them, noting each failure
/// as it happens, and moves what became of each worker to `outcomes`.
///
/// The handles live in `running`, outside the group: when the group fails, the body's value
/// is lost (and a fail-fast group cancels the body itself), and `wait` is cancel safe, so
/// the handles of the workers the body had not seen finish are still there afterwards.
async fn run_workers(
    board: &Board,
    policy: JoinPolicy,
    running: &mut Vec<TaskHandle<u32>>,
    outcomes: &mut Vec<Outcome>,
) -> Result<(), TaskGroupError<BoxError>> {
    TaskGroup::<BoxError>::builder()
        .name("workers")
        .policy(policy)
        .scope(|tg| async move {
            for &(name, fails) in WORKERS {
                running.push(tg.spawn_named(name, worker(board.clone(), name, fails))?);
            }
            while !running.is_empty() {
                // Wakes on the next failure, or once every worker has finished.
                for handle in aio::wait(running, ReturnWhen::FirstError).await {
                    let name = handle.name().unwrap_or("?").to_string();
                    let result = handle.result();
                    let seen = match &result {
                        Ok(_) => "finish".to_string(),
                        Err(TaskError::Failed(_)) if tg.is_cancelled() => {
                            "fail; the group is cancelling the others".to_string()
                        }
                        Err(TaskError::Failed(_)) => {
                            format!("fail; {} workers still running", running.len())
                        }
                        Err(_) => "end cancelled".to_string(),
                    };
                    board.note(format!("body: saw {name} {seen}"));
                    outcomes.push((name, result));
                }
            }
            Ok(())
        })
        .await
}

/// Everything that became of the workers: what the body saw, then the handles it had not
/// seen finish, in the order of `WORKERS`.
fn collect(mut outcomes: Vec<Outcome>, running: Vec<TaskHandle<u32>>) -> Vec<Outcome> {
    for handle in running {
        outcomes.push((handle.name().unwrap_or("?").to_string(), handle.result()));
    }
    outcomes.sort_by_key(|(name, _)| WORKERS.iter().position(|(w, _)| w == name));
    outcomes
}

pub(crate) fn main() {
    aio::run(async {
        supervisor().await;
        fail_fast().await;
        restarts().await;
    });
}

async fn supervisor() {
    println!("== 1. JoinPolicy::Supervisor: resize and notify fail, the others keep going");
    let board = Board::new();
    let (mut running, mut outcomes) = (Vec::new(), Vec::new());
    let err = run_workers(&board, JoinPolicy::Supervisor, &mut running, &mut outcomes)
        .await
        .unwrap_err();
    let took = board.start.elapsed();
    println!("   the group ended after {} ms: {err}", took.as_millis());
    for failure in &err {
        println!("   - {failure}");
    }
    // The body was never cancelled: it saw every worker end.
    assert!(running.is_empty());
    let outcomes = collect(outcomes, running);
    report(&board, &outcomes);
    for (name, result) in &outcomes {
        match name.as_str() {
            "resize" | "notify" => assert!(matches!(result, Err(TaskError::Failed(_)))),
            _ => assert_eq!(result, &Ok(JOBS)),
        }
    }

    // Every failure, in the order they happened.
    let failed: Vec<&str> = err.iter().map(|f| f.name().unwrap()).collect();
    assert_eq!(failed, ["resize", "notify"]);
    assert!(!err.is_cancelled());
    assert_eq!(board.jobs("resize"), 1);
    assert_eq!(board.jobs("notify"), 5);
    assert_eq!(board.jobs("ingest"), JOBS);
    assert_eq!(board.jobs("index"), JOBS);
    assert!(took >= TICK * JOBS, "the group waited for the survivors");
}

async fn fail_fast() {
    println!("== 2. the default, JoinPolicy::FailFast: resize's failure stops everything");
    let board = Board::new();
    let (mut running, mut outcomes) = (Vec::new(), Vec::new());
    let err = run_workers(&board, JoinPolicy::FailFast, &mut running, &mut outcomes)
        .await
        .unwrap_err();
    let took = board.start.elapsed();
    println!("   the group ended after {} ms: {err}", took.as_millis());
    let outcomes = collect(outcomes, running);
    report(&board, &outcomes);
    for (name, result) in &outcomes {
        if name == "resize" {
            assert!(matches!(result, Err(TaskError::Failed(_))));
            continue;
        }
        let Err(TaskError::Cancelled(cancelled)) = result else {
            panic!("{name} should have been cancelled: {result:?}");
        };
        let CancelReason::SiblingFailed { name: failed, .. } = cancelled.reason() else {
            panic!("{name} was cancelled for another reason: {cancelled}");
        };
        assert_eq!(failed.as_deref(), Some("resize"));
    }
    assert_eq!(err.len(), 1, "notify was cancelled before it could fail");
    assert_eq!(err.first().unwrap().name(), Some("resize"));
    for name in ["ingest", "index", "notify"] {
        assert!(
            board.jobs(name) < JOBS,
            "{name} stopped at resize's failure, short of its {JOBS} jobs"
        );
    }
}

async fn restarts() {
    println!("== 3. a supervisor that restarts: take the failure, spawn the worker again");
    let board = Board::new();
    let b = board.clone();
    let restarted = TaskGroup::<BoxError>::builder()
        .name("workers")
        .policy(JoinPolicy::Supervisor)
        .scope(|tg| async move {
            let mut running = Vec::new();
            for &(name, fails) in WORKERS {
                running.push(tg.spawn_named(name, worker(b.clone(), name, fails))?);
            }
            let mut restarted = Vec::new();
            while !running.is_empty() {
                for handle in aio::wait(&mut running, ReturnWhen::FirstError).await {
                    if !handle.has_failed() {
                        continue;
                    }
                    let name = *WORKERS
                        .iter()
                        .map(|(name, _)| name)
                        .find(|name| handle.name() == Some(**name))
                        .expect("every worker has a name");
                    // The failure is the body's to handle now: the group will not report it.
                    let error = tg.take_failure(handle.id()).expect("it failed");
                    b.note(format!("body: {name} failed ({error}); restarting it"));
                    running.push(tg.spawn_named(name, worker(b.clone(), name, None))?);
                    restarted.push(name);
                }
            }
            Ok(restarted)
        })
        .await
        .expect("every failure was handled");
    println!(
        "   the group ended after {} ms with Ok; restarted: {restarted:?}",
        board.start.elapsed().as_millis()
    );
    assert_eq!(restarted, ["resize", "notify"]);
    for &(name, _) in WORKERS {
        assert_eq!(board.jobs(name), JOBS, "{name} did every job");
    }
}

/// Prints what became of each worker.
fn report(board: &Board, outcomes: &[Outcome]) {
    for (name, result) in outcomes {
        let shown = match result {
            Ok(done) => format!("finished, {}", jobs(*done)),
            Err(TaskError::Failed(_)) => format!("failed after {}", jobs(board.jobs(name))),
            Err(TaskError::Cancelled(c)) => {
                format!(
                    "cancelled after {} ({})",
                    jobs(board.jobs(name)),
                    c.reason()
                )
            }
            Err(e) => e.to_string(),
        };
        println!("   {name:>6}: {shown}");
    }
}

/// "1 job", "2 jobs".
fn jobs(n: u32) -> String {
    format!("{n} job{}", if n == 1 { "" } else { "s" })
}
