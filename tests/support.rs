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

/// Counts events across tasks; `until` waits for a count.
#[derive(Clone, Default)]
pub(crate) struct Counter(Arc<CounterState>);

#[derive(Default)]
struct CounterState {
    n: AtomicUsize,
    changed: tokio::sync::Notify,
}

impl Counter {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn incr(&self) {
        self.0.n.fetch_add(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }

    pub(crate) fn get(&self) -> usize {
        self.0.n.load(Ordering::SeqCst)
    }

    /// Waits until the count is at least `n`, without moving paused time: for "the tasks
    /// have started", which a sleep cannot promise on a loaded machine.
    pub(crate) async fn until(&self, n: usize) {
        wait_until(&self.0.changed, || self.get() >= n).await;
    }
}

/// Waits on `changed` until `cond` holds, registered before each check so that no
/// notification between the check and the wait is missed.
async fn wait_until(changed: &tokio::sync::Notify, cond: impl Fn() -> bool) {
    loop {
        let notified = changed.notified();
        let mut notified = std::pin::pin!(notified);
        notified.as_mut().enable();
        if cond() {
            return;
        }
        notified.await;
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
///
/// `open` releases only the tasks already waiting: wait for them with `until_waiting`
/// first, not with a sleep, since a spawned task may start late on a loaded machine.
#[derive(Clone, Default)]
pub(crate) struct Gate(Arc<GateState>);

#[derive(Default)]
struct GateState {
    notify: tokio::sync::Notify,
    /// Calls of `wait` that have started waiting.
    waiting: Counter,
}

impl Gate {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Waits for `open`.
    pub(crate) async fn wait(&self) {
        let notified = self.0.notify.notified();
        let mut notified = std::pin::pin!(notified);
        // From here on `open` wakes this waiter.
        notified.as_mut().enable();
        self.0.waiting.incr();
        notified.await;
    }

    /// Returns once `n` calls of `wait` are waiting (or have been released), without
    /// moving paused time.
    pub(crate) async fn until_waiting(&self, n: usize) {
        self.0.waiting.until(n).await;
    }

    pub(crate) fn open(&self) {
        self.0.notify.notify_waiters();
    }
}

/// A signal that stays given: `wait` returns at once if `set` came first. It orders two
/// tasks by cause where real time promises nothing (a sleep of 10 ms against one of 20 ms
/// can end in either order on a loaded machine).
#[derive(Clone)]
pub(crate) struct Latch(Arc<tokio::sync::watch::Sender<bool>>);

impl Default for Latch {
    fn default() -> Self {
        Latch(Arc::new(tokio::sync::watch::Sender::new(false)))
    }
}

impl Latch {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn set(&self) {
        self.0.send_replace(true);
    }

    pub(crate) fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    pub(crate) async fn wait(&self) {
        let mut set = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close.
        set.wait_for(|set| *set).await.unwrap();
    }
}

/// Sleeps in small steps until `cond` holds; panics after `limit`. The limit only turns a
/// hang into a failure with a message, so it is generous: seconds.
pub(crate) async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(ms(1)).await;
    }
}

/// A timeout of `d` around `fut` whose clock starts once `started` counts `n`: a task
/// cancelled before its first poll never runs, cleanup included, and on a loaded machine a
/// spawned task can start later than a deadline of a few milliseconds. Under paused time
/// the tasks start at once, so this is `timeout(d, fut)` to the microsecond.
pub(crate) async fn timeout_once_started<F: Future>(
    started: &Counter,
    n: usize,
    d: Duration,
    fut: F,
) -> Result<F::Output, aio::Elapsed> {
    aio::timeout_scope(None, |t: aio::Timeout| async move {
        let arm = async {
            started.until(n).await;
            t.reschedule(Instant::now() + d).unwrap();
            std::future::pending::<()>().await
        };
        tokio::select! {
            out = fut => out,
            () = arm => unreachable!(),
        }
    })
    .await
}

/// A name no other run of any test uses: for what shows in the process-wide task tree,
/// where tests running at the same time see each other's groups.
pub(crate) fn unique(name: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!("{name}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
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

/// A task body that counts itself in `started` and sleeps an hour: `started.until(n)`
/// tells when it runs, and so has something to clean up when cancelled.
pub(crate) async fn running_forever<T>(started: Counter) -> Result<T, BoxError> {
    started.incr();
    sleep_forever().await
}

/// Drops a group, as `select!` does, once its one task has started: the task's cleanup
/// then takes `cleanup` and pushes "cleaned up" to `log`, in the background, as the group
/// is reaped.
pub(crate) async fn drop_a_group_once_started(cleanup: Duration, log: Log) {
    let started = Counter::new();
    let s = started.clone();
    tokio::select! {
        _ = aio::TaskGroup::<BoxError>::builder().grace(Duration::from_secs(1)).scope(|tg| async move {
            tg.spawn(aio::on_cancel(running_forever::<()>(s), move |_| async move {
                tokio::time::sleep(cleanup).await;
                log.push("cleaned up");
                Ok(())
            }))?;
            sleep_forever::<()>().await
        }) => unreachable!(),
        // Only a started task has cleanup to run.
        _ = started.until(1) => {}
    }
}

/// A task body that waits until `started` counts `n`, sleeps `d`, then fails with `msg`:
/// [`fail_after`] for siblings that must have started before the failure cancels them.
pub(crate) async fn fail_after_started(
    started: Counter,
    n: usize,
    d: Duration,
    msg: &'static str,
) -> Result<(), BoxError> {
    started.until(n).await;
    fail_after(d, msg).await
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
