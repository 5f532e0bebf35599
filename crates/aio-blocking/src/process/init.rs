//! [`init`] and [`worker_main`]: how a program becomes its own worker.

use std::sync::{Arc, OnceLock};

use super::Registry;
use super::child;

/// The registry of this process, set by the first [`init`].
static REGISTRY: OnceLock<Arc<Registry>> = OnceLock::new();

/// Makes this program usable by a [`ProcessPool`](crate::ProcessPool): call it first thing
/// in `main`.
///
/// A pool's workers are this same executable, started again with a marker in their
/// environment. In such a process `init` never returns: it runs the worker, serving calls
/// to the functions of `registry`, and exits when the pool stops it or goes away. In any
/// other process it records `registry` as the one pools use and returns at once; later
/// calls keep the first registry.
///
/// **Everything in `main` before `init` runs in every worker too**, so put nothing there:
/// no logging set-up, no arguments parsing, no runtime. That is why `init` takes the
/// registry rather than finding it later: the worker must not run any of your program.
///
/// Tests and tools whose `main` you cannot change point a pool at a dedicated worker
/// binary instead, with [`ProcessPoolBuilder::worker_exe`](super::ProcessPoolBuilder::worker_exe)
/// and [`ProcessPoolBuilder::registry`](super::ProcessPoolBuilder::registry); that binary's
/// `main` calls `init` or [`worker_main`].
///
/// The pool's channel reaches a worker as its standard input; `init` moves it to a
/// descriptor of its own and leaves `/dev/null` as standard input, before any task runs.
/// Code that runs before `init` must not read standard input. Standard output and standard
/// error are the pool process's own.
///
/// # Examples
///
/// ```
/// use aio_blocking::process::{self, Function, Registry};
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// const SQUARE: Function<u64, u64> = aio_blocking::remote_fn!(square);
///
/// fn main() {
///     process::init(Registry::new().register(&SQUARE));
///     // Only the pool's own process gets here.
///     assert!(!process::is_worker());
/// }
/// ```
pub fn init(registry: Registry) {
    if child::is_worker_process() {
        child::serve(registry)
    }
    // Its pool died before it got here: it has nobody to serve, and must not run the
    // program in the pool's stead.
    if child::is_orphaned_worker() {
        std::process::exit(child::EXIT_NOT_A_WORKER);
    }
    let _ = REGISTRY.set(Arc::new(registry));
}

/// The `main` of a dedicated worker binary: serves the pool that started this process, and
/// never returns.
///
/// Unlike [`init`], it does not return in a process that was not started by a pool: it
/// prints why and exits with status 2.
///
/// # Examples
///
/// A worker binary for a test suite, with the pool built by
/// `ProcessPool::builder().worker_exe(env!("CARGO_BIN_EXE_my-worker")).registry(functions())`:
///
/// ```no_run
/// use aio_blocking::process::{self, Function, Registry};
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
/// const SQUARE: Function<u64, u64> = aio_blocking::remote_fn!(square);
///
/// fn main() {
///     process::worker_main(Registry::new().register(&SQUARE))
/// }
/// ```
pub fn worker_main(registry: Registry) -> ! {
    if !child::is_worker_process() {
        eprintln!(
            "this program is a worker of aio's ProcessPool: a pool starts it, it is not meant \
             to be run by hand"
        );
        std::process::exit(2);
    }
    child::serve(registry)
}

/// Whether this process is a pool's worker. In code after [`init`] this is always `false`,
/// since `init` does not return in a worker.
///
/// # Examples
///
/// ```
/// assert!(!aio_blocking::process::is_worker());
/// ```
pub fn is_worker() -> bool {
    child::is_worker_process()
}

/// The registry [`init`] recorded, if it was called.
pub(crate) fn registry() -> Option<Arc<Registry>> {
    REGISTRY.get().cloned()
}
