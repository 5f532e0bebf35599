//! Shared helpers: the two runtimes every test runs on, and probes to observe tasks.

#![allow(dead_code)]

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::BoxError;
use tokio::time::Instant;

/// Defines a test that runs its body on both runtimes: `<name>::current_thread` (paused
/// time, deterministic) and `<name>::multi_thread` (two workers, real time).
macro_rules! spec {
    ($(#[$attr:meta])* async fn $name:ident() $body:block) => {
        $(#[$attr])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body() $body

            #[test]
            fn current_thread() {
                $crate::support::run_current_thread(body());
            }

            #[test]
            fn multi_thread() {
                $crate::support::run_multi_thread(body());
            }
        }
    };
}

thread_local! {
    static PAUSED: Cell<bool> = const { Cell::new(false) };
}

/// How long a test may take before it is declared hung. Under paused time this is virtual
/// time, so a test that waits for an hour-long sleep it should have cancelled fails here.
const HANG_GUARD: Duration = Duration::from_secs(60);

pub(crate) fn run_current_thread<F: Future<Output = ()>>(body: F) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    PAUSED.with(|p| p.set(true));
    let _watchdog = Watchdog::start();
    runtime.block_on(guard(body));
    PAUSED.with(|p| p.set(false));
}

pub(crate) fn run_multi_thread<F: Future<Output = ()>>(body: F) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _watchdog = Watchdog::start();
    runtime.block_on(guard(body));
}

/// Aborts the test process if a test spins for two minutes of wall-clock time. Paused time
/// cannot move while a task busy-loops, so the virtual-time guard would never fire; better a
/// loud abort than a CI run that hangs.
struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    fn start() -> Self {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let test = std::thread::current()
            .name()
            .unwrap_or("a test")
            .to_string();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                wait.recv_timeout(Duration::from_secs(120))
            {
                eprintln!("{test} spun for two minutes without finishing; aborting");
                std::process::abort();
            }
        });
        Watchdog(Some(done))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.take();
    }
}

async fn guard<F: Future<Output = ()>>(body: F) {
    if tokio::time::timeout(HANG_GUARD, body).await.is_err() {
        panic!("test did not finish within {HANG_GUARD:?}: something was not cancelled");
    }
}

/// Whether the test runs on the paused current-thread runtime.
pub(crate) fn paused() -> bool {
    PAUSED.with(Cell::get)
}

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An hour: long enough that waiting for it means cancellation failed.
pub(crate) const FOREVER: Duration = Duration::from_secs(3600);

/// Asserts that `start.elapsed()` is `expected`: exactly under paused time, and at least
/// `expected` but well under a long sleep in real time.
#[track_caller]
pub(crate) fn assert_elapsed(start: Instant, expected: Duration) {
    let elapsed = start.elapsed();
    if paused() {
        assert_eq!(elapsed, expected, "virtual time elapsed");
    } else {
        assert!(
            elapsed >= expected && elapsed < expected + Duration::from_secs(10),
            "elapsed {elapsed:?}, expected about {expected:?}"
        );
    }
}

/// An ordered record of what happened, shared between tasks.
#[derive(Clone, Default)]
pub(crate) struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push(event.into());
    }

    pub(crate) fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    pub(crate) fn contains(&self, event: &str) -> bool {
        self.0.lock().unwrap().iter().any(|e| e == event)
    }

    /// Position of `event`; panics if it never happened.
    #[track_caller]
    pub(crate) fn position(&self, event: &str) -> usize {
        let events = self.events();
        events
            .iter()
            .position(|e| e == event)
            .unwrap_or_else(|| panic!("{event:?} not in {events:?}"))
    }
}

/// Counts events across tasks.
#[derive(Clone, Default)]
pub(crate) struct Counter(Arc<AtomicUsize>);

impl Counter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn incr(&self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

/// Set when the value holding it is dropped: proves a future was dropped (cancelled).
#[derive(Clone, Default)]
pub(crate) struct DropFlag(Arc<AtomicBool>);

impl DropFlag {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// A guard to move into a future; dropping the future sets the flag.
    pub(crate) fn guard(&self) -> DropGuard {
        DropGuard(self.0.clone())
    }

    pub(crate) fn dropped(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub(crate) struct DropGuard(Arc<AtomicBool>);

impl Drop for DropGuard {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Releases many waiting tasks at once. `open` marks every waiter released before it wakes
/// any of them, so on a multi-thread runtime too, each one that was waiting has its event
/// before a cancellation caused by another can reach it: "the same tick".
#[derive(Clone, Default)]
pub(crate) struct Gate(Arc<tokio::sync::Notify>);

impl Gate {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Waits for `open`. Call it, and let it suspend, before the gate opens.
    pub(crate) async fn wait(&self) {
        self.0.notified().await;
    }

    pub(crate) fn open(&self) {
        self.0.notify_waiters();
    }
}

/// A task body that never finishes on its own.
pub(crate) async fn pending_forever<T>() -> Result<T, BoxError> {
    std::future::pending().await
}

/// A task body that sleeps an hour.
pub(crate) async fn sleep_forever<T>() -> Result<T, BoxError> {
    tokio::time::sleep(FOREVER).await;
    unreachable!("an hour-long sleep should have been cancelled")
}

/// A task body that sleeps `d`, then fails with `msg`.
pub(crate) async fn fail_after(d: Duration, msg: &'static str) -> Result<(), BoxError> {
    tokio::time::sleep(d).await;
    Err(msg.into())
}

/// The messages of a group's failures, in order.
pub(crate) fn messages(err: &aio::TaskGroupError<BoxError>) -> Vec<String> {
    err.iter().map(|f| f.error().to_string()).collect()
}

/// Whether the runtime has no task alive besides the test itself.
pub(crate) fn no_tasks_alive() -> bool {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
        == 0
}
