//! Benchmarks aio against raw Tokio, the fastest peer crates and Python asyncio.
//!
//! ```text
//! cargo run --release -p aio-bench -- [--json FILE] [--filter NAME] [--quick] [--repeat N]
//! ```
//!
//! Every workload runs on one Tokio multi-thread runtime with two worker threads: a short
//! warm-up of each side, then the aio version, its raw-Tokio baseline and its peers (the
//! fastest crates for the same work) interleaved (A B C A B C ...) for the repeat count; the
//! median ns/op of each side is reported, the fastest peer's beside aio's, and for
//! contended workloads the median fairness (min/max of the per-task acquisition counts).
//! A workload whose run takes longer than a couple of seconds is measured once, and the
//! output says so. The Python asyncio twin (`python/asyncio_workloads.py`) runs afterwards
//! at the same scale. The last tables give the size of each side's lock, semaphore and
//! event, and the resident memory of a parked task (`memory_parked_task`, each side in a
//! fresh process).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

mod python;
mod workloads;

use workloads::{RunFn, Workload};

/// Worker threads of the benchmark runtime.
const WORKER_THREADS: usize = 2;
/// Repeats by default and with `--quick`.
const DEFAULT_REPEATS: usize = 5;
const QUICK_REPEATS: usize = 3;
/// The scale `--quick` runs at.
const QUICK_SCALE: f64 = 0.1;
/// The warm-up run of each side does this fraction of the ops.
const WARMUP_FRACTION: f64 = 0.1;
/// A workload with a run longer than this is measured once, not `--repeat` times.
const SLOW_RUN: Duration = Duration::from_secs(2);

const USAGE: &str = "\
usage: aio-bench [--json FILE] [--filter NAME] [--quick] [--repeat N] [--scale S]

  --json FILE    also write the results as a JSON array to FILE
  --filter NAME  only run workloads whose name contains NAME
  --quick        smaller sizes (scale 0.1) and 3 repeats: a fast sanity run
  --repeat N     measure each side N times and report the median (default 5)
  --scale S      multiply every workload's size by S (default 1.0)";

/// The command line.
#[derive(Debug)]
struct Options {
    json: Option<String>,
    filter: Option<String>,
    repeats: usize,
    scale: f64,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Options, String> {
    let mut json = None;
    let mut filter = None;
    let mut quick = false;
    let mut repeat = None;
    let mut scale = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "--json" => json = Some(value("--json")?),
            "--filter" => filter = Some(value("--filter")?),
            "--quick" => quick = true,
            "--repeat" => {
                let v = value("--repeat")?;
                let n = v
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("--repeat: not a positive integer: {v}"))?;
                repeat = Some(n);
            }
            "--scale" => {
                let v = value("--scale")?;
                let s = v
                    .parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .ok_or_else(|| format!("--scale: not a positive number: {v}"))?;
                scale = Some(s);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(Options {
        json,
        filter,
        repeats: repeat.unwrap_or(if quick {
            QUICK_REPEATS
        } else {
            DEFAULT_REPEATS
        }),
        scale: scale.unwrap_or(if quick { QUICK_SCALE } else { 1.0 }),
    })
}

/// The figures of one workload.
#[derive(Debug)]
struct Row {
    workload: &'static str,
    ops: usize,
    aio_ns: f64,
    baseline_label: &'static str,
    baseline_ns: Option<f64>,
    python_ns: Option<f64>,
    aio_fairness: Option<f64>,
    baseline_fairness: Option<f64>,
    /// The fastest peer, by median.
    peer: Option<PeerRow>,
    /// The other peers, for workloads that have several.
    other_peers: Vec<PeerRow>,
    /// How many times each side was measured: fewer than asked when a run was slow.
    runs: usize,
    /// The longest run of any side.
    slowest: Duration,
}

/// The figures of a workload's fastest peer.
#[derive(Debug)]
struct PeerRow {
    label: &'static str,
    ns: f64,
    fairness: Option<f64>,
}

impl Row {
    /// aio / baseline: below 1 means aio is faster than the baseline.
    fn ratio(&self) -> Option<f64> {
        self.baseline_ns.map(|b| self.aio_ns / b)
    }

    /// aio / fastest peer: below 1 means aio is faster than every peer.
    fn peer_ratio(&self) -> Option<f64> {
        self.peer.as_ref().map(|p| self.aio_ns / p.ns)
    }

    /// python / aio: how many times faster aio is than asyncio.
    fn python_speedup(&self) -> Option<f64> {
        self.python_ns.map(|p| p / self.aio_ns)
    }
}

/// The median of `xs` (the mean of the middle two for an even count); `None` if empty.
pub(crate) fn median(xs: &mut [f64]) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    Some(if xs.len() % 2 == 0 {
        (xs[mid - 1] + xs[mid]) / 2.0
    } else {
        xs[mid]
    })
}

fn ns_per_op(elapsed: Duration, ops: usize) -> f64 {
    elapsed.as_secs_f64() * 1e9 / ops as f64
}

/// The runs of one side of a workload: ns/op and fairness, one entry per repeat.
#[derive(Default)]
struct Runs {
    ns: Vec<f64>,
    fairness: Vec<f64>,
}

impl Runs {
    /// Measures one run; returns how long it took.
    fn run(&mut self, side: RunFn, rt: &tokio::runtime::Runtime, ops: usize) -> Duration {
        let s = side(rt, ops);
        self.ns.push(ns_per_op(s.elapsed, ops));
        self.fairness.extend(s.fairness);
        s.elapsed
    }

    /// Median ns/op and median fairness.
    fn medians(mut self) -> (Option<f64>, Option<f64>) {
        (median(&mut self.ns), median(&mut self.fairness))
    }
}

/// Warms up and measures one workload, interleaving the aio version, the baseline and the
/// peers. After a round in which some run took longer than [`SLOW_RUN`], it stops.
fn measure(rt: &tokio::runtime::Runtime, w: &Workload, opts: &Options) -> Row {
    let ops = w.ops_at(opts.scale);
    let warmup_ops = workloads::scale_ops(ops, WARMUP_FRACTION);
    let sides: Vec<RunFn> = std::iter::once(w.aio)
        .chain(w.baseline)
        .chain(w.peers.iter().map(|p| p.run))
        .collect();
    for side in &sides {
        side(rt, warmup_ops);
    }
    let mut runs: Vec<Runs> = sides.iter().map(|_| Runs::default()).collect();
    let (mut rounds, mut slowest) = (0, Duration::ZERO);
    while rounds < opts.repeats && slowest <= SLOW_RUN {
        for (side, runs) in sides.iter().zip(&mut runs) {
            slowest = slowest.max(runs.run(*side, rt, ops));
        }
        rounds += 1;
    }
    let mut runs = runs.into_iter().map(Runs::medians);
    let (aio_ns, aio_fairness) = runs.next().expect("the aio side");
    let (baseline_ns, baseline_fairness) = match w.baseline {
        Some(_) => runs.next().expect("the baseline side"),
        None => (None, None),
    };
    let mut other_peers: Vec<PeerRow> = w
        .peers
        .iter()
        .zip(runs)
        .filter_map(|(p, (ns, fairness))| {
            ns.map(|ns| PeerRow {
                label: p.label,
                ns,
                fairness,
            })
        })
        .collect();
    other_peers.sort_by(|a, b| a.ns.total_cmp(&b.ns));
    let peer = (!other_peers.is_empty()).then(|| other_peers.remove(0));
    Row {
        workload: w.name,
        ops,
        aio_ns: aio_ns.expect("at least one repeat"),
        baseline_label: w.baseline_label,
        baseline_ns,
        python_ns: None,
        aio_fairness,
        baseline_fairness,
        peer,
        other_peers,
        runs: rounds,
        slowest,
    }
}

fn fmt_ns(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"))
}

fn fmt_ratio(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}x"))
}

/// `aio/baseline/peer` fairness, or `-` for a workload that does not measure it.
fn fmt_fairness(r: &Row) -> String {
    let f = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.2}"));
    let peer = r.peer.as_ref().and_then(|p| p.fairness);
    match (r.aio_fairness, r.baseline_fairness, peer) {
        (None, None, None) => "-".to_owned(),
        (a, b, p) => format!("{}/{}/{}", f(a), f(b), f(p)),
    }
}

/// The table, and a line for each workload measured fewer than `repeats` times.
fn print_table(rows: &[Row], repeats: usize) {
    let header = [
        "workload",
        "ops",
        "aio ns/op",
        "baseline",
        "baseline ns/op",
        "aio/baseline",
        "fastest peer",
        "peer ns/op",
        "aio/peer",
        "python ns/op",
        "python/aio",
        "fairness aio/base/peer",
    ];
    let cells: Vec<[String; 12]> = rows
        .iter()
        .map(|r| {
            [
                r.workload.to_owned(),
                r.ops.to_string(),
                fmt_ns(Some(r.aio_ns)),
                r.baseline_label.to_owned(),
                fmt_ns(r.baseline_ns),
                fmt_ratio(r.ratio()),
                r.peer.as_ref().map_or("-", |p| p.label).to_owned(),
                fmt_ns(r.peer.as_ref().map(|p| p.ns)),
                fmt_ratio(r.peer_ratio()),
                fmt_ns(r.python_ns),
                fmt_ratio(r.python_speedup()),
                fmt_fairness(r),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    // Text columns are left-aligned, numbers right-aligned.
    let left = [
        true, false, false, true, false, false, true, false, false, false, false, false,
    ];
    let line = |cols: &[String]| {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                s.push_str(" | ");
            }
            if left[i] {
                let _ = write!(s, "{c:<w$}", w = widths[i]);
            } else {
                let _ = write!(s, "{c:>w$}", w = widths[i]);
            }
        }
        s.trim_end().to_owned()
    };
    println!("{}", line(&header.map(str::to_owned)));
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    println!("{}", line(&rule).replace(" | ", "-|-"));
    for row in &cells {
        println!("{}", line(row));
    }
    for r in rows.iter().filter(|r| !r.other_peers.is_empty()) {
        let others: Vec<String> = r
            .other_peers
            .iter()
            .map(|p| {
                format!(
                    "{} {:.1} ns/op, aio/peer {:.2}x",
                    p.label,
                    p.ns,
                    r.aio_ns / p.ns
                )
            })
            .collect();
        println!("{}: other peers: {}", r.workload, others.join("; "));
    }
    for r in rows.iter().filter(|r| r.runs < repeats) {
        let times = match r.runs {
            1 => "once".to_owned(),
            n => format!("{n} times"),
        };
        println!(
            "{}: measured {times}, not {repeats} times: a run took {:.1} s",
            r.workload,
            r.slowest.as_secs_f64()
        );
    }
}

/// The size of each side's primitives: a user pays it per lock, semaphore or event.
fn print_sizes() {
    println!("\nmemory per primitive (bytes):");
    for (kind, sides) in workloads::sizes() {
        let sides: Vec<String> = sides
            .iter()
            .map(|(label, bytes)| format!("{label} {bytes}"))
            .collect();
        println!("  {kind:<10} {}", sides.join(", "));
    }
}

/// The resident memory of a parked task, each side measured once in a fresh process.
fn print_parked(tasks: usize, parked: &[workloads::memory::Parked]) {
    println!(
        "\nmemory per parked task (bytes of resident memory, {tasks} tasks each waiting for \
         ever, each side once in a fresh process):"
    );
    let sides: Vec<String> = parked
        .iter()
        .map(|p| match &p.bytes {
            Ok(bytes) => format!("{} {bytes:.0}", p.label),
            Err(e) => format!("{} - ({e})", p.label),
        })
        .collect();
    println!("  {}", sides.join(", "));
    if let [aio, baseline, ..] = parked {
        if let (Ok(a), Ok(b)) = (&aio.bytes, &baseline.bytes) {
            println!("  {} / {}: {:.2}x", aio.label, baseline.label, a / b);
        }
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `x` as a JSON number, or `null` (also for non-finite values, which JSON cannot hold).
fn json_number(x: Option<f64>) -> String {
    match x {
        Some(x) if x.is_finite() => format!("{x:.3}"),
        _ => "null".to_owned(),
    }
}

fn to_json(rows: &[Row]) -> String {
    let mut out = String::from("[\n");
    for (i, r) in rows.iter().enumerate() {
        let _ = write!(
            out,
            "  {{\"workload\": {}, \"aio_ns_per_op\": {}, \"baseline\": {}, \
             \"baseline_ns_per_op\": {}, \"python_ns_per_op\": {}, \"ops\": {}, \
             \"ratio\": {}, \"python_speedup\": {}, \"aio_fairness\": {}, \
             \"baseline_fairness\": {}, \"peer\": {}, \"peer_ns_per_op\": {}, \
             \"peer_ratio\": {}, \"peer_fairness\": {}, \"runs\": {}}}",
            json_string(r.workload),
            json_number(Some(r.aio_ns)),
            json_string(r.baseline_label),
            json_number(r.baseline_ns),
            json_number(r.python_ns),
            r.ops,
            json_number(r.ratio()),
            json_number(r.python_speedup()),
            json_number(r.aio_fairness),
            json_number(r.baseline_fairness),
            r.peer
                .as_ref()
                .map_or_else(|| "null".to_owned(), |p| json_string(p.label)),
            json_number(r.peer.as_ref().map(|p| p.ns)),
            json_number(r.peer_ratio()),
            json_number(r.peer.as_ref().and_then(|p| p.fairness)),
            r.runs,
        );
        out.push_str(if i + 1 < rows.len() { ",\n" } else { "\n" });
    }
    out.push_str("]\n");
    out
}

fn main() -> ExitCode {
    // First: the process pool workloads start this binary again as their workers, and the
    // memory row as a child that parks tasks.
    aio::process::init(workloads::process::registry());
    if let Some(code) = workloads::memory::child_from_args() {
        return code;
    }
    let opts = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let selected: Vec<Workload> = workloads::all()
        .into_iter()
        .filter(|w| opts.filter.as_deref().is_none_or(|f| w.name.contains(f)))
        .collect();
    let memory = opts
        .filter
        .as_deref()
        .is_none_or(|f| workloads::memory::NAME.contains(f));
    if selected.is_empty() && !memory {
        eprintln!(
            "error: no workload matches --filter {}",
            opts.filter.as_deref().unwrap_or_default()
        );
        return ExitCode::from(2);
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .enable_all()
        .build()
        .expect("cannot build the Tokio runtime");

    let parallelism = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "aio-bench: available parallelism {parallelism}, tokio worker threads {WORKER_THREADS}, \
         repeats {} (median), scale {}",
        opts.repeats, opts.scale
    );

    let started = Instant::now();
    let mut rows = Vec::with_capacity(selected.len());
    for w in &selected {
        eprintln!("  running {} ({} ops)", w.name, w.ops_at(opts.scale));
        rows.push(measure(&rt, w, &opts));
    }
    let parked_tasks = workloads::scale_ops(workloads::memory::TASKS, opts.scale);
    let parked = memory.then(|| {
        eprintln!(
            "  running {} ({parked_tasks} tasks per side)",
            workloads::memory::NAME
        );
        workloads::memory::run(parked_tasks)
    });
    let rust_secs = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let py = if rows.is_empty() {
        python::PyRun::default()
    } else {
        python::run(opts.scale, opts.filter.as_deref(), opts.repeats)
    };
    let py_secs = started.elapsed().as_secs_f64();
    for row in &mut rows {
        if let Some(p) = py.results.get(row.workload) {
            if p.ops != row.ops {
                eprintln!(
                    "warning: {}: Python ran {} ops, Rust {}",
                    row.workload, p.ops, row.ops
                );
            }
            row.python_ns = Some(p.ns_per_op);
        } else if py.runs_ok > 0 {
            eprintln!("warning: {}: no Python figure", row.workload);
        }
    }

    match &py.version {
        Some(v) => println!(
            "python: {v}, {}/{} runs ok (median); rust {rust_secs:.1}s, python {py_secs:.1}s",
            py.runs_ok, opts.repeats
        ),
        None => println!("python: unavailable; rust {rust_secs:.1}s"),
    }
    if !rows.is_empty() {
        println!();
        print_table(&rows, opts.repeats);
    }
    print_sizes();
    if let Some(parked) = &parked {
        print_parked(parked_tasks, parked);
    }

    if let Some(path) = &opts.json {
        if let Err(e) = std::fs::write(path, to_json(&rows)) {
            eprintln!("error: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
        println!("\nwrote {path}");
    }
    ExitCode::SUCCESS
}
