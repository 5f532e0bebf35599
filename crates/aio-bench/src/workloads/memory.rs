//! `memory_parked_task`: what a task costs while it waits, in bytes of resident memory.
//!
//! Each side runs in a fresh process: the bench starts itself again with
//! `--memory-child <side> <tasks>`. The child builds the same runtime as the bench, reads
//! its resident set size (`/proc/self/statm`: resident pages times the page size), spawns
//! the tasks, each of which parks for ever on a future that never completes, waits until
//! every task has been polled once, reads the resident set again and prints the difference
//! per task. It then exits without dropping the tasks. A fresh process per side keeps the
//! memory one side freed from being reused by the next.
//!
//! The Python twin has no counterpart: asyncio's figure is not comparable in bytes.

use std::future::{Future, pending};
use std::io::Write as _;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aio::{BoxError, TaskGroup};
use tokio::task::JoinSet;
use tokio_util::task::TaskTracker;

/// The row's name, for `--filter`.
pub(crate) const NAME: &str = "memory_parked_task";

/// How many tasks park at scale 1.0.
pub(crate) const TASKS: usize = 1_000_000;

/// The hidden flag that makes the bench a memory child.
const FLAG: &str = "--memory-child";

/// What the child prints, before the bytes per task.
const REPORT: &str = "bytes_per_task=";

/// One side: a label for the table, a key for the command line, and the tasks it parks.
struct Side {
    label: &'static str,
    key: &'static str,
    park: fn(usize) -> Parking,
}

/// A side's parking run, which never returns: it exits the process once it has reported.
type Parking = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// aio first, then the baseline, then the peers.
const SIDES: &[Side] = &[
    Side {
        label: "aio TaskGroup::spawn",
        key: "aio",
        park: park_aio,
    },
    Side {
        label: "tokio JoinSet::spawn",
        key: "joinset",
        park: park_joinset,
    },
    Side {
        label: "tokio::spawn (handle dropped)",
        key: "spawn",
        park: park_spawn,
    },
    Side {
        label: "tokio-util TaskTracker (handle dropped)",
        key: "tracker",
        park: park_tracker,
    },
];

/// What the parent learned from one child.
pub(crate) struct Parked {
    pub(crate) label: &'static str,
    /// Bytes per parked task, or why there is no figure.
    pub(crate) bytes: Result<f64, String>,
}

/// Runs every side in a fresh process, `tasks` tasks each, one after the other.
pub(crate) fn run(tasks: usize) -> Vec<Parked> {
    let exe = std::env::current_exe();
    SIDES
        .iter()
        .map(|side| {
            let bytes = match &exe {
                Ok(exe) => run_child(exe, side, tasks),
                Err(e) => Err(format!("cannot find the bench binary: {e}")),
            };
            Parked {
                label: side.label,
                bytes,
            }
        })
        .collect()
}

fn run_child(exe: &std::path::Path, side: &Side, tasks: usize) -> Result<f64, String> {
    let out = Command::new(exe)
        .arg(FLAG)
        .arg(side.key)
        .arg(tasks.to_string())
        .output()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why = stderr.lines().find(|line| !line.trim().is_empty());
        return Err(format!(
            "the child failed ({}): {}",
            out.status,
            why.unwrap_or("no message")
        ));
    }
    stdout
        .split_whitespace()
        .find_map(|word| word.strip_prefix(REPORT))
        .and_then(|bytes| bytes.parse().ok())
        .ok_or_else(|| format!("no figure in the child's output: {}", stdout.trim()))
}

/// If this process was started as a memory child, runs it and returns its exit code.
pub(crate) fn child_from_args() -> Option<ExitCode> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(FLAG) {
        return None;
    }
    let (Some(key), Some(tasks)) = (args.next(), args.next()) else {
        eprintln!("usage: {FLAG} <side> <tasks>");
        return Some(ExitCode::from(2));
    };
    let Some(side) = SIDES.iter().find(|side| side.key == key) else {
        eprintln!("{FLAG}: no side named {key}");
        return Some(ExitCode::from(2));
    };
    let Ok(tasks) = tasks.parse::<usize>() else {
        eprintln!("{FLAG}: not a number of tasks: {tasks}");
        return Some(ExitCode::from(2));
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(crate::WORKER_THREADS)
        .enable_all()
        .build()
        .expect("cannot build the Tokio runtime");
    // The side reports and exits the process; coming back means it did not.
    let parked = rt.block_on(rt.spawn((side.park)(tasks)));
    eprintln!("{FLAG} {key}: the side returned ({parked:?}) instead of reporting");
    Some(ExitCode::FAILURE)
}

/// Tasks that have been polled once.
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// What every side's task does: count itself, then wait for ever.
async fn park() {
    PARKED.fetch_add(1, Ordering::Relaxed);
    pending::<()>().await;
}

/// Waits until `tasks` tasks are parked, then prints what they cost beyond `before` bytes
/// and exits the process, leaving the tasks where they are.
async fn report(tasks: usize, before: usize) {
    while PARKED.load(Ordering::Relaxed) < tasks {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let after = resident_bytes();
    let per_task = after.saturating_sub(before) as f64 / tasks as f64;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "{REPORT}{per_task:.1} tasks={tasks} rss_before={before} rss_after={after}"
    );
    let _ = stdout.flush();
    std::process::exit(0);
}

fn park_aio(tasks: usize) -> Parking {
    Box::pin(async move {
        let before = resident_bytes();
        let result = TaskGroup::<BoxError>::scope(|tg| async move {
            for _ in 0..tasks {
                tg.spawn(async {
                    park().await;
                    Ok(())
                })?;
            }
            report(tasks, before).await;
            Ok(())
        })
        .await;
        result.expect("memory_parked_task: the group failed");
    })
}

fn park_joinset(tasks: usize) -> Parking {
    Box::pin(async move {
        let before = resident_bytes();
        let mut set = JoinSet::new();
        for _ in 0..tasks {
            set.spawn(park());
        }
        report(tasks, before).await;
        drop(set);
    })
}

fn park_spawn(tasks: usize) -> Parking {
    Box::pin(async move {
        let before = resident_bytes();
        for _ in 0..tasks {
            drop(tokio::spawn(park()));
        }
        report(tasks, before).await;
    })
}

fn park_tracker(tasks: usize) -> Parking {
    Box::pin(async move {
        let before = resident_bytes();
        let tracker = TaskTracker::new();
        for _ in 0..tasks {
            drop(tracker.spawn(park()));
        }
        report(tasks, before).await;
        drop(tracker);
    })
}

/// The process's resident set size: resident pages (`/proc/self/statm`, second field)
/// times the page size.
fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("cannot read /proc/self/statm");
    let pages: usize = statm
        .split_whitespace()
        .nth(1)
        .and_then(|pages| pages.parse().ok())
        .expect("no resident pages in /proc/self/statm");
    pages * page_size()
}

/// The page size, from the auxiliary vector the kernel gave the process (`AT_PAGESZ`).
fn page_size() -> usize {
    const AT_PAGESZ: usize = 6;
    const WORD: usize = size_of::<usize>();
    let auxv = std::fs::read("/proc/self/auxv").expect("cannot read /proc/self/auxv");
    let word = |bytes: &[u8]| usize::from_ne_bytes(bytes.try_into().expect("one word"));
    auxv.chunks_exact(2 * WORD)
        .find(|pair| word(&pair[..WORD]) == AT_PAGESZ)
        .map(|pair| word(&pair[WORD..]))
        .expect("no page size in /proc/self/auxv")
}
