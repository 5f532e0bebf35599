//! Runs the Python asyncio twin (`python/asyncio_workloads.py`) and parses its output.

use std::collections::HashMap;
use std::process::Command;

/// Where the twin script lives.
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/python/asyncio_workloads.py");

/// One workload's Python figure.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PyResult {
    /// The ops the script ran (should equal the Rust ops at the same scale).
    pub(crate) ops: usize,
    /// The median ns/op over the successful runs.
    pub(crate) ns_per_op: f64,
}

/// What the Python side produced.
#[derive(Debug, Default)]
pub(crate) struct PyRun {
    /// `python3 --version`, if it ran.
    pub(crate) version: Option<String>,
    /// How many runs of the script succeeded.
    pub(crate) runs_ok: usize,
    /// Per workload name.
    pub(crate) results: HashMap<String, PyResult>,
}

/// Runs the script `runs` times in fresh processes and keeps, per workload, the median
/// ns/op of the runs that succeeded (median, like the Rust side, rather than the best:
/// comparable statistics on both sides). A missing `python3` or a failing run is reported
/// on stderr and leaves the figures out; it never fails the benchmark.
pub(crate) fn run(scale: f64, filter: Option<&str>, runs: usize) -> PyRun {
    let mut out = PyRun::default();
    match Command::new("python3").arg("--version").output() {
        Ok(o) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_owned();
            out.version = Some(v);
        }
        Ok(o) => {
            eprintln!(
                "warning: python3 --version failed ({}); no Python figures",
                o.status
            );
            return out;
        }
        Err(e) => {
            eprintln!("warning: cannot run python3 ({e}); no Python figures");
            return out;
        }
    }

    let mut samples: HashMap<String, (usize, Vec<f64>)> = HashMap::new();
    for i in 0..runs {
        let mut cmd = Command::new("python3");
        cmd.arg(SCRIPT).arg("--scale").arg(scale.to_string());
        if let Some(f) = filter {
            cmd.arg("--filter").arg(f);
        }
        eprintln!("  python run {}/{runs}", i + 1);
        let output = match cmd.output() {
            Ok(o) => o,
            Err(e) => {
                eprintln!("warning: cannot run {SCRIPT}: {e}");
                continue;
            }
        };
        if !output.status.success() {
            eprintln!(
                "warning: {SCRIPT} failed ({}):\n{}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
            continue;
        }
        out.runs_ok += 1;
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            match parse_line(line) {
                Some((name, ops, ns)) => {
                    let entry = samples.entry(name).or_insert((ops, Vec::new()));
                    entry.0 = ops;
                    entry.1.push(ns);
                }
                None if line.trim().is_empty() => {}
                None => eprintln!("warning: unparsed Python output line: {line}"),
            }
        }
    }

    for (name, (ops, mut ns)) in samples {
        if let Some(ns_per_op) = crate::median(&mut ns) {
            out.results.insert(name, PyResult { ops, ns_per_op });
        }
    }
    out
}

/// Parses `name ops=N secs=S ns_per_op=X`; keys in any order, and spaces allowed after
/// `=` (the padded format of `asyncio_baseline.py`).
fn parse_line(line: &str) -> Option<(String, usize, f64)> {
    let name = line.split_whitespace().next()?;
    let value = |key: &str| {
        let (_, rest) = line.split_once(&format!(" {key}="))?;
        rest.split_whitespace().next()
    };
    let ops = value("ops")?.parse::<usize>().ok()?;
    let ns = value("ns_per_op")?
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())?;
    Some((name.to_owned(), ops, ns))
}
