//! Cleaning up after cancellation: `on_cancel` for `except CancelledError: await cleanup();
//! raise`, `Drop` for `finally`, cleanup that fails, CPU-bound loops, and a group dropped by
//! `tokio::select!`.
//!
//! 1. A job that holds a lease runs with `on_cancel(work, cleanup)`. Left alone, it finishes
//!    and the cleanup never runs. Under a timeout, its work is dropped at the `.await` it is
//!    suspended on, its cleanup runs to the end (awaiting as it likes, shielded), the lease
//!    is released by `Drop`, and only then does the timeout return.
//! 2. A cleanup that fails: its error is not lost, the group collects it after the failure
//!    that started the cancellation.
//! 3. CPU-bound loops that cannot wait for an `.await` to be cancelled at: one calls
//!    `aio::checkpoint().await?` between batches, one polls `aio::is_cancelled()`; a third
//!    task learns why with `aio::cancelled().await`.
//! 4. A group dropped by `tokio::select!` cannot wait for its tasks: it cancels them and a
//!    background reaper gives their cleanup the group's grace period, then drops the ones
//!    that overstay. `aio::run` waits for the reaper before it returns.
//!
//! Run it with `cargo run --example cancellation_cleanup`.
//!
//! It mirrors:
//!
//! ```python
//! async def job():
//!     lease = await acquire()
//!     try:
//!         await do_work()
//!     except asyncio.CancelledError:
//!         await cleanup()
//!         raise  # always re-raise
//!     finally:
//!         lease.release()
//!
//! async def crunch():
//!     for batch in batches:
//!         compute(batch)
//!         await asyncio.sleep(0)  # let a cancellation in
//! ```
//!
//! Python has no counterpart to part 4: a coroutine cannot be dropped half-way there.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, CancelReason, TaskGroup, on_cancel, timeout};
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Long enough to count as "for ever" here: whatever sleeps this long gets cancelled.
const FOREVER: Duration = Duration::from_secs(3600);

/// Prints what happens, with the time since the part started, and keeps a copy to check.
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

/// Logs its message when dropped: a `finally` that runs on every way out, but cannot await.
struct OnDrop(Log, &'static str);

impl Drop for OnDrop {
    fn drop(&mut self) {
        self.0.push(self.1);
    }
}

pub(crate) fn main() {
    let reaped = aio::run(async {
        on_cancel_and_finally().await;
        a_cleanup_that_fails().await;
        cpu_bound_loops().await;
        a_group_dropped_by_select().await
    });
    // `aio::run` has waited for the reaper: check what it did.
    check_the_reaper(&reaped);
}

// 1. `try / except CancelledError / finally`.

/// `job()`: two steps under a lease. When cancelled, it rolls back the first step (a round
/// trip, so it awaits) before passing the cancellation on.
async fn job(log: Log) -> Result<(), BoxError> {
    let _lease = OnDrop(log.clone(), "finally: lease released"); // `finally:`, on every path
    on_cancel(
        do_work(log.clone()),
        |_| // try: await do_work()
        roll_back(log.clone()), // except CancelledError: await cleanup(); raise
    )
    .await
}

async fn do_work(log: Log) -> Result<(), BoxError> {
    sleep(ms(10)).await;
    log.push("try: step 1 done");
    sleep(ms(200)).await;
    log.push("try: step 2 done");
    Ok(())
}

async fn roll_back(log: Log) -> Result<(), BoxError> {
    log.push("except: cancelled, rolling back step 1");
    sleep(ms(20)).await; // cleanup can await: it runs shielded, to the end
    log.push("except: step 1 rolled back");
    Ok(())
}

async fn on_cancel_and_finally() {
    println!("== 1. on_cancel(work, |_| cleanup) and Drop: `except CancelledError` and `finally`");
    println!("   left alone:");
    let log = Log::new();
    job(log.clone()).await.expect("nothing cancels it");
    assert_eq!(
        log.events(),
        [
            "try: step 1 done",
            "try: step 2 done",
            "finally: lease released"
        ]
    );

    println!("   under a 110 ms timeout, which fires during step 2:");
    let log = Log::new();
    let r = timeout(ms(110), job(log.clone())).await;
    log.push(format!("the timeout returned: {}", r.as_ref().unwrap_err()));
    assert!(r.is_err());
    assert_eq!(
        log.events(),
        [
            "try: step 1 done",
            "except: cancelled, rolling back step 1",
            "except: step 1 rolled back",
            "finally: lease released",
            "the timeout returned: deadline has elapsed",
        ]
    );
    assert!(
        log.start.elapsed() >= ms(110 + 20),
        "the timeout waited for the cleanup"
    );
}

// 2. A cleanup that fails.

async fn a_cleanup_that_fails() {
    println!("== 2. a cleanup that fails: the group collects its error too");
    let err = TaskGroup::<BoxError>::scope(|tg| async move {
        tg.spawn_named(
            "upload",
            on_cancel(sleep_forever(), |_| async {
                sleep(ms(5)).await;
                Err(io::Error::other("could not delete the partial upload").into())
            }),
        )?;
        tg.spawn_named("validate", async {
            sleep(ms(100)).await;
            Err::<(), _>("checksum mismatch".into())
        })?;
        Ok(())
    })
    .await
    .unwrap_err();
    println!("   {err}");
    for failure in &err {
        println!("   - {failure}");
    }
    let names: Vec<_> = err.iter().map(|f| f.name().unwrap()).collect();
    assert_eq!(names, ["validate", "upload"], "in the order they happened");
    let (io_errors, _) = err.split_by::<io::Error>();
    assert_eq!(io_errors.unwrap().len(), 1);
}

// 3. CPU-bound loops.

/// Some CPU work that takes a moment and never awaits.
fn crunch(seed: u64) -> u64 {
    (0..20_000u64).fold(seed, |h, i| {
        std::hint::black_box(h.rotate_left(5) ^ i).wrapping_mul(31)
    })
}

/// A loop that can stop between batches: `checkpoint()` returns `Err(Cancelled)` once the
/// scope is cancelled (and otherwise yields to the scheduler once).
async fn crunch_with_checkpoints(batches: Arc<AtomicU64>) -> Result<(), BoxError> {
    let mut h = 0;
    loop {
        h = crunch(h);
        batches.fetch_add(1, Ordering::Relaxed);
        aio::checkpoint().await?;
    }
}

/// A loop that never awaits polls `is_cancelled()` instead: nothing can interrupt it
/// mid-batch. It runs under Tokio's `block_in_place` (multi-thread runtimes only, such as
/// `aio::run`'s), so the other tasks of its worker thread move elsewhere meanwhile.
async fn crunch_polling_the_flag(batches: Arc<AtomicU64>) -> Result<(), BoxError> {
    let done = tokio::task::block_in_place(|| {
        let (mut h, mut done) = (0, 0);
        loop {
            h = crunch(h);
            done += 1;
            if aio::is_cancelled() {
                break done;
            }
        }
    });
    batches.store(done, Ordering::Relaxed);
    // Stop the way cancelled code does, with the reason: the group counts it as cancelled,
    // not as a failure.
    Err(aio::cancelled().await.into())
}

async fn cpu_bound_loops() {
    println!("== 3. CPU-bound loops: checkpoint(), is_cancelled() and cancelled()");
    let start = Instant::now();
    let by_checkpoint = Arc::new(AtomicU64::new(0));
    let by_flag = Arc::new(AtomicU64::new(0));
    let reason = Arc::new(Mutex::new(None));
    let (c, f, why) = (by_checkpoint.clone(), by_flag.clone(), reason.clone());
    let r = timeout(
        ms(100),
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn_named("checkpoints", crunch_with_checkpoints(c))?;
            tg.spawn_named("flag", crunch_polling_the_flag(f))?;
            tg.spawn_named("watcher", async move {
                let cancelled = aio::cancelled().await; // resolves when the scope is cancelled
                println!("   watcher: {cancelled}");
                *why.lock().unwrap() = Some(cancelled);
                Ok(())
            })?;
            Ok(())
        }),
    )
    .await;
    let took = start.elapsed();
    let (c, f) = (
        by_checkpoint.load(Ordering::Relaxed),
        by_flag.load(Ordering::Relaxed),
    );
    println!("   checkpoint loop: {c} batches; flag loop: {f} batches; both stopped");
    let elapsed = r.as_ref().expect_err("the deadline passed");
    println!(
        "   the timeout returned Err({elapsed}) after {} ms",
        took.as_millis()
    );
    // Both loops ran, and both noticed the cancellation: the group, like every group, ended
    // only once all its tasks had.
    assert!(c > 0 && f > 0);
    let cancelled = reason.lock().unwrap().take().expect("the watcher saw it");
    assert_eq!(cancelled.reason(), &CancelReason::ParentCancelled);
    assert_eq!(cancelled.origin(), &CancelReason::Deadline);
}

// 4. A group dropped by `tokio::select!`.

async fn a_group_dropped_by_select() -> Log {
    println!("== 4. a group dropped by tokio::select!: the reaper runs its tasks' cleanup");
    let log = Log::new();
    let l = log.clone();
    let uploads = TaskGroup::<BoxError>::builder()
        .name("uploads")
        .grace(ms(250))
        .scope(|tg| async move {
            for i in 1..=3 {
                let l = l.clone();
                let delete_partial_upload = async move {
                    sleep(ms(90 + 10 * i)).await;
                    l.push(format!("upload-{i}: partial upload deleted"));
                    Ok(())
                };
                tg.spawn_named(
                    format!("upload-{i}"),
                    on_cancel(sleep_forever(), |_| delete_partial_upload),
                )?;
            }
            // A task whose cleanup would outlast the grace period.
            let dropped = OnDrop(l.clone(), "stubborn: dropped when the grace period ran out");
            let stubborn_cleanup = async move {
                let _dropped = dropped;
                sleep(FOREVER).await;
                Ok(())
            };
            tg.spawn_named("stubborn", on_cancel(sleep_forever(), |_| stubborn_cleanup))?;
            sleep_forever().await
        });
    tokio::select! {
        _ = uploads => unreachable!("the group never finishes on its own"),
        () = sleep(ms(20)) => log.push("select!: the timer won; the group is dropped"),
    }
    log.push("dropping the group did not wait; the reaper works in the background");
    assert_eq!(log.events().len(), 2, "no cleanup has finished yet");
    log
}

async fn sleep_forever() -> Result<(), BoxError> {
    sleep(FOREVER).await;
    Ok(())
}

fn check_the_reaper(log: &Log) {
    println!(
        "   aio::run returned after the reaper finished, at {} ms",
        log.start.elapsed().as_millis()
    );
    let events = log.events();
    assert_eq!(events.len(), 2 + 4, "{events:?}");
    // The three cleanups ran at once, and may finish in any order; the grace period ran out
    // after them.
    let mut deleted = events[2..5].to_vec();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            "upload-1: partial upload deleted",
            "upload-2: partial upload deleted",
            "upload-3: partial upload deleted",
        ]
    );
    assert_eq!(events[5], "stubborn: dropped when the grace period ran out");
    assert!(
        log.start.elapsed() >= ms(20 + 250),
        "the stubborn task had its grace period"
    );
}
