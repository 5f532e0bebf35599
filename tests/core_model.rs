//! A randomised model of aio's core: random trees of nested task groups, timeouts, shields,
//! `on_cancel` and hard drops, run on the paused current-thread runtime and on a two-worker
//! real-time runtime, and checked against the cancellation model (DESIGN §2-3).
//!
//! * `core_model_tree`: a scenario is a tree of `Node`s; `Gen` draws one from a seed with a
//!   small splitmix64 generator.
//! * `core_model_run`: `build` turns a node into a boxed future that records what it does
//!   in a log: every node logs when it starts, how it ends or that it was dropped;
//!   timeouts, hard drops and `cancel()` calls log what they saw.
//! * `core_model_check`: the `Checker` reads the log against the tree. On both runtimes:
//!   nothing outlives the construct it runs in; every error is reported exactly once, by
//!   the construct the tree says; a cleanup runs exactly when its work was cancelled;
//!   `Elapsed` comes only from a timeout's own deadline; panics are re-raised; nothing
//!   hangs or leaks. On paused time it also checks timing to the instant: a leaf is dropped
//!   when its scope is cancelled, a construct returns when its last piece of work ended, a
//!   task never starts after its group was cancelled, a timeout whose own deadline
//!   cancelled its future reports `Elapsed`.
//! * `core_model_shrink` finds a smaller tree that fails the same way;
//!   `core_model_scenarios` keeps the model's findings, minimised, as tests of their own.
//!
//! `cargo test -p aio-tests --test core_model` runs 300 seeds on each runtime;
//! `AIO_MODEL_SEEDS=5000` runs more, `AIO_MODEL_SEED=17` replays one seed and prints its
//! tree and its log. A failure prints the seed, the tree and what was violated (for the
//! first five failing seeds; `AIO_MODEL_SHOW=<n>` shows more); with `AIO_MODEL_SHRINK=1`,
//! and when replaying, also the smallest tree found that still fails the same way on paused
//! time.

mod core_model_check;
mod core_model_run;
mod core_model_scenarios;
mod core_model_shrink;
mod core_model_tree;

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use core_model_check::{Checker, show};
use core_model_run::{Ev, Run, Runtime, run};
use core_model_shrink::{category, shrink};
use core_model_tree::{Gen, Id, Leaf, Node, Role};

fn render_log(run: &Run) -> String {
    let mut s = String::new();
    for (i, r) in run.records.iter().enumerate() {
        let at = r.at.saturating_duration_since(run.t0);
        let ev = match &r.ev {
            Ev::TimeoutEnter {
                id,
                deadline,
                cancelled,
                ..
            } => format!(
                "TimeoutEnter({id}, deadline {}, scope cancelled: {cancelled})",
                show(Some(deadline.saturating_duration_since(run.t0)))
            ),
            ev => format!("{ev:?}"),
        };
        let _ = writeln!(s, "  {i:>3} {:>8} {ev}", show(Some(at)));
    }
    s
}

/// Runs one seed on one runtime; returns a report if anything was violated. `verbose` (a
/// replay) prints the tree and the log, and puts the log in the report.
fn check_seed(seed: u64, runtime: Runtime, verbose: bool) -> Option<String> {
    let tree = Gen::scenario(seed);
    check_tree(
        &format!("seed {seed}"),
        seed,
        &tree,
        runtime,
        verbose,
        verbose,
    )
}

/// Runs a tree on one runtime; returns a report, with the log if `with_log`, if anything
/// was violated.
fn check_tree(
    name: &str,
    seed: u64,
    tree: &Node,
    runtime: Runtime,
    print: bool,
    with_log: bool,
) -> Option<String> {
    let run = run(seed, tree, runtime);
    let violations = Checker::new(tree, &run, runtime).check(&run);
    if print {
        println!("{name} ({runtime:?})\n{tree}log:\n{}", render_log(&run));
    }
    if violations.is_empty() {
        return None;
    }
    let mut report = format!("{name} ({runtime:?}) violates:\n");
    for v in &violations {
        let _ = writeln!(report, "  - {v}");
    }
    let _ = write!(report, "scenario:\n{tree}");
    if runtime == Runtime::Paused && shrink_failures() {
        let small = shrink(tree, &violations[0]);
        let _ = write!(
            report,
            "shrunk, still violating {:?}:\n{small}",
            category(&violations[0])
        );
    }
    if with_log {
        let _ = write!(report, "log:\n{}", render_log(&run));
    }
    Some(report)
}

/// Whether to shrink failing scenarios (`AIO_MODEL_SHRINK=1`, and when replaying a seed).
fn shrink_failures() -> bool {
    std::env::var_os("AIO_MODEL_SHRINK").is_some() || std::env::var_os("AIO_MODEL_SEED").is_some()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

/// The seeds to run: `AIO_MODEL_SEED` alone, else `AIO_MODEL_SEEDS` (300 by default).
fn seeds() -> (Vec<u64>, bool) {
    if let Some(seed) = env_u64("AIO_MODEL_SEED") {
        return (vec![seed], true);
    }
    let n = env_u64("AIO_MODEL_SEEDS").unwrap_or(300);
    ((0..n).collect(), false)
}

/// Runs the seeds on `threads` threads and fails with the reports of those that failed.
fn run_seeds(runtime: Runtime, threads: usize) {
    let (seeds, verbose) = seeds();
    let next = AtomicU64::new(0);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads.min(seeds.len()) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(&seed) = seeds.get(i) else {
                        break;
                    };
                    if let Some(report) = check_seed(seed, runtime, verbose) {
                        failures.lock().unwrap().push((seed, report));
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    if failures.is_empty() {
        return;
    }
    failures.sort_by_key(|(seed, _)| *seed);
    let shown = env_u64("AIO_MODEL_SHOW").unwrap_or(5) as usize;
    for (_, report) in failures.iter().take(shown) {
        eprintln!("{report}");
    }
    let list: Vec<u64> = failures.iter().map(|(seed, _)| *seed).collect();
    panic!(
        "{} of {} seeds failed on {runtime:?}: {list:?}\nreplay one with AIO_MODEL_SEED=<seed>",
        failures.len(),
        seeds.len()
    );
}

/// Paused time: deterministic, checked to the instant.
#[test]
fn random_scenarios_on_paused_time() {
    run_seeds(Runtime::Paused, 1);
}

/// Two workers, real time: invariants only. The scenarios mostly sleep, so several run at
/// once.
#[test]
fn random_scenarios_on_real_time() {
    run_seeds(Runtime::RealTime, 8);
}

/// The generator keeps its promises: ids are unique, and a leaf that never finishes always
/// has something that will cancel it.
#[test]
fn the_generator_draws_well_formed_trees() {
    fn walk(n: &Node, bounded: bool, ids: &mut Vec<Id>) {
        ids.push(n.id());
        if let Node::Leaf {
            kind: Leaf::Forever,
            ..
        } = n
        {
            assert!(bounded, "an unbounded forever leaf #{}", n.id());
        }
        for (role, child) in n.children() {
            let bounded = match n {
                Node::Timeout { .. } | Node::Select { .. } => true,
                Node::Shield { timeout, .. } => timeout.is_some(),
                Node::OnCancel { .. } if role == Role::Cleanup => false,
                Node::Group { canceller, .. } => bounded || canceller.is_some(),
                _ => bounded,
            };
            walk(child, bounded, ids);
        }
    }
    for seed in 0..2000 {
        let tree = Gen::scenario(seed);
        let mut ids = Vec::new();
        walk(&tree, false, &mut ids);
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(
            sorted.len(),
            ids.len(),
            "seed {seed}: duplicate ids\n{tree}"
        );
    }
}
