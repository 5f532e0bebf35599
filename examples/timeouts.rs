//! Timeouts are cancel scopes: `timeout`, `wait_for`, `timeout_at`, a timeout around a task
//! group, nested timeouts, a deadline moved while it runs, and the deadline code inherits.
//!
//! 1. `timeout(d, fut)` cancels `fut` at its next `.await` once `d` has passed and returns
//!    `Err(Elapsed)`; `Elapsed` converts into `io::Error` (`TimedOut`) for `?`.
//! 2. `wait_for(d, fut)` is the same with asyncio's signature: `None` waits for ever, and a
//!    zero duration polls the future once: ready at once is a value, else `Elapsed`.
//! 3. `timeout_at(deadline, fut)` shares one deadline between several steps.
//! 4. A timeout around a group bounds every task in it: the tasks are cancelled, their
//!    `on_cancel` cleanup runs (and may await), and only then does `Elapsed` come back.
//! 5. Nested timeouts: the one whose deadline fired is the one that reports it.
//! 6. `timeout_scope` hands the body its `Timeout`, whose `reschedule` pushes the deadline
//!    back: an idle timeout that every received chunk renews.
//! 7. `current_deadline()` tells code how much time its callers gave it, so it can fail
//!    fast instead of starting work it cannot finish.
//!
//! Run it with `cargo run --example timeouts`.
//!
//! It mirrors:
//!
//! ```python
//! try:
//!     async with asyncio.timeout(0.05):
//!         data = await slow_fetch()
//! except TimeoutError:
//!     print("request timed out")
//!
//! data = await asyncio.wait_for(slow_fetch(), timeout=None)
//!
//! async with asyncio.timeout_at(loop.time() + 0.1):
//!     await connect()
//!
//! async with asyncio.timeout(IDLE) as cm:
//!     async for chunk in stream:
//!         cm.reschedule(loop.time() + IDLE)
//! ```

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{
    BoxError, Elapsed, RescheduleError, TaskGroup, Timeout, on_cancel, timeout, timeout_at,
    timeout_scope, wait_for,
};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Milliseconds since `start`, for the printout.
fn at(start: Instant) -> u128 {
    start.elapsed().as_millis()
}

/// A fetch that a timeout always cuts short.
const SLOW: Duration = Duration::from_secs(10);

/// Stands in for a network call that takes `d`.
async fn slow_fetch(d: Duration) -> &'static str {
    sleep(d).await;
    "data"
}

pub(crate) fn main() {
    aio::run(async {
        timeout_basics().await;
        wait_for_forms().await;
        one_deadline_for_several_steps().await;
        a_timeout_around_a_group().await;
        nested_timeouts().await;
        an_idle_timeout().await;
        deadline_budget().await;
    });
}

/// `?` works in functions that return `io::Result`.
async fn fetch_within(limit: Duration, takes: Duration) -> io::Result<&'static str> {
    Ok(timeout(limit, slow_fetch(takes)).await?)
}

async fn timeout_basics() {
    println!("== 1. timeout(d, fut): `async with asyncio.timeout(d)`");
    let start = Instant::now();
    let r = timeout(ms(50), slow_fetch(SLOW)).await;
    match &r {
        Ok(data) => println!("   got {data}"),
        Err(elapsed) => println!(
            "   a 10 s fetch under a 50 ms timeout: {elapsed}, at {} ms",
            at(start)
        ),
    }
    // `Err` means the fetch was cut short: a future that finishes keeps its result, even
    // past the deadline.
    assert!(r.is_err());
    assert!(start.elapsed() >= ms(50));

    let r = timeout(ms(5000), slow_fetch(ms(10))).await;
    println!("   a 10 ms fetch under a 5 s timeout: {r:?}");
    assert_eq!(r, Ok("data"));

    let err = fetch_within(ms(20), SLOW).await.unwrap_err();
    println!(
        "   as an io::Error through `?`: kind {:?}, \"{err}\"",
        err.kind()
    );
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
}

async fn wait_for_forms() {
    println!("== 2. wait_for(d, fut): `asyncio.wait_for(fut, timeout=d)`");
    let r = wait_for(ms(50), slow_fetch(SLOW)).await;
    println!("   wait_for(50 ms, 10 s fetch): {}", describe(&r));
    assert!(r.is_err());

    let start = Instant::now();
    let r = wait_for(None, slow_fetch(ms(30))).await;
    println!(
        "   wait_for(None, 30 ms fetch): {} after {} ms (no deadline)",
        describe(&r),
        at(start)
    );
    assert_eq!(r, Ok("data"));

    let r = wait_for(Duration::ZERO, async { "cached" }).await;
    println!("   wait_for(0, a future ready at once): {}", describe(&r));
    assert_eq!(r, Ok("cached"));

    let resumed = AtomicBool::new(false);
    let r = wait_for(Duration::ZERO, async {
        tokio::task::yield_now().await;
        resumed.store(true, Ordering::SeqCst);
    })
    .await;
    let resumed = resumed.load(Ordering::SeqCst);
    println!(
        "   wait_for(0, a future that suspends): {}, cancelled at its first .await: {}",
        describe(&r),
        !resumed
    );
    assert!(r.is_err() && !resumed);
}

fn describe<T: std::fmt::Debug>(r: &Result<T, Elapsed>) -> String {
    match r {
        Ok(v) => format!("Ok({v:?})"),
        Err(e) => format!("Err({e})"),
    }
}

async fn one_deadline_for_several_steps() {
    println!("== 3. timeout_at(deadline, fut): one 150 ms budget for connect, send and read");
    let start = Instant::now();
    let deadline = start + ms(150);
    let steps = [("connect", ms(20)), ("send", ms(20)), ("read", ms(300))];
    let mut finished = Vec::new();
    for (step, takes) in steps {
        match timeout_at(deadline, slow_fetch(takes)).await {
            Ok(_) => {
                println!(
                    "   {step:<7} ({} ms) done at {} ms",
                    takes.as_millis(),
                    at(start)
                );
                finished.push(step);
            }
            Err(e) => {
                println!(
                    "   {step:<7} ({} ms): {e} at {} ms",
                    takes.as_millis(),
                    at(start)
                );
                break;
            }
        }
    }
    assert_eq!(finished, ["connect", "send"]);
    assert!(Instant::now() >= deadline);
}

async fn a_timeout_around_a_group() {
    println!("== 4. a timeout around a task group: its tasks clean up, then Elapsed");
    let start = Instant::now();
    let deadline = start + ms(100);
    let cleaned = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&cleaned);
    let r = timeout_at(
        deadline,
        TaskGroup::<BoxError>::scope(|tg| async move {
            for i in 1..=3 {
                let log = Arc::clone(&log);
                let work = async move {
                    // The group's tasks run under the timeout's deadline.
                    assert_eq!(aio::current_deadline(), Some(deadline));
                    sleep(Duration::from_secs(10)).await;
                    Ok(())
                };
                let cleanup = async move {
                    sleep(ms(10 * i)).await; // cleanup may await
                    log.lock().unwrap().push(i);
                    println!(
                        "   worker-{i}: cancelled, cleaned up for {} ms, done at {} ms",
                        10 * i,
                        at(start)
                    );
                    Ok(())
                };
                tg.spawn_named(format!("worker-{i}"), on_cancel(work, |_| cleanup))?;
            }
            Ok("the group's value")
        }),
    )
    .await;
    println!(
        "   the timeout returned {} at {} ms",
        describe(&r),
        at(start)
    );
    assert!(r.is_err());
    let mut cleaned = cleaned.lock().unwrap().clone();
    cleaned.sort(); // on a busy machine the cleanups may finish in any order
    assert_eq!(cleaned, [1, 2, 3]);
    assert!(
        start.elapsed() >= ms(100 + 30),
        "Elapsed waited for the slowest cleanup"
    );
}

async fn nested_timeouts() {
    println!("== 5. nested timeouts: each one reports only its own deadline");
    // The inner deadline fires first: the inner timeout reports it, the outer body goes on.
    let r = timeout(ms(5000), async {
        let inner = timeout(ms(20), slow_fetch(SLOW)).await;
        println!(
            "   inner 20 ms / outer 5 s: the inner returned {}",
            describe(&inner)
        );
        assert!(inner.is_err());
        "the outer body carried on"
    })
    .await;
    println!("     ... and the outer returned {}", describe(&r));
    assert_eq!(r, Ok("the outer body carried on"));

    // The outer deadline fires first: the outer timeout reports it; the inner one, cancelled
    // from outside, did not expire.
    let inner = timeout(ms(5000), slow_fetch(SLOW));
    let inner_timeout = inner.handle();
    let outer = timeout(ms(20), inner); // a timeout around a timeout
    let outer_timeout = outer.handle();
    let r = outer.await;
    println!(
        "   inner 5 s / outer 20 ms: the outer returned {}; expired: outer {}, inner {}",
        describe(&r),
        outer_timeout.expired(),
        inner_timeout.expired()
    );
    assert!(
        r.is_err(),
        "Err from the outer timeout, not Ok(Err) from the inner one"
    );
    assert!(outer_timeout.expired() && !inner_timeout.expired());
}

async fn an_idle_timeout() {
    const IDLE: Duration = Duration::from_millis(140);
    const EVERY: Duration = Duration::from_millis(40);
    println!("== 6. timeout_scope + reschedule: an idle timeout that each chunk pushes back");
    let start = Instant::now();
    let mut received = Vec::new();
    let chunks = &mut received;
    let (idle, idle_timeout) = TaskGroup::<BoxError>::scope(|tg| async move {
        let (tx, mut rx) = mpsc::channel(8);
        tg.spawn_named("peer", async move {
            for chunk in 1..=4 {
                sleep(EVERY).await;
                if tx.send(chunk).await.is_err() {
                    return Ok(()); // the reader hung up
                }
            }
            sleep(Duration::from_secs(10)).await; // then it goes quiet, connection open
            Ok(())
        })?;
        let idle = timeout_scope(start + IDLE, |t: Timeout| async move {
            while let Some(chunk) = rx.recv().await {
                chunks.push((chunk, Instant::now()));
                t.reschedule(Instant::now() + IDLE)
                    .expect("the timeout is running");
                println!(
                    "   chunk {chunk} at {} ms: deadline pushed back to {} ms",
                    at(start),
                    ms_of(start, t.deadline())
                );
            }
        });
        let idle_timeout = idle.handle();
        let r = idle.await;
        tg.cancel(); // hang up on the peer
        Ok((r, idle_timeout))
    })
    .await
    .expect("the peer never fails");
    println!(
        "   no chunk for {} ms: {} at {} ms",
        IDLE.as_millis(),
        describe(&idle),
        at(start)
    );
    assert!(idle.is_err() && idle_timeout.expired());
    let chunks: Vec<u32> = received.iter().map(|&(chunk, _)| chunk).collect();
    assert_eq!(chunks, [1, 2, 3, 4]);
    // The last chunk came after the first deadline, so the chunks did push it back.
    let (_, last) = received[3];
    assert!(last > start + IDLE);
    assert!(start.elapsed() >= EVERY * 4 + IDLE);
    assert_eq!(idle_timeout.reschedule(None), Err(RescheduleError::Expired));
}

fn ms_of(start: Instant, deadline: Option<Instant>) -> u128 {
    deadline.map_or(0, |d| d.duration_since(start).as_millis())
}

/// A query that knows its cost, and refuses to start when the caller's deadline is too near.
async fn query(name: &str, cost: Duration) -> Result<String, BoxError> {
    if let Some(deadline) = aio::current_deadline() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left < cost {
            let (cost, left) = (cost.as_millis(), left.as_millis());
            return Err(format!("{name}: needs {cost} ms, only {left} ms left").into());
        }
    }
    sleep(cost).await;
    Ok(format!("{name}: done"))
}

async fn deadline_budget() {
    println!("== 7. current_deadline(): how much time the callers gave us");
    println!("   outside any timeout: {:?}", aio::current_deadline());
    assert_eq!(aio::current_deadline(), None);
    let (small, big) = timeout(ms(1000), async {
        let deadline = aio::current_deadline().expect("inside a timeout");
        // A looser timeout inside does not extend the budget: the earliest deadline wins.
        let inner = timeout(Duration::from_secs(10), async { aio::current_deadline() }).await;
        assert_eq!(inner, Ok(Some(deadline)));
        (
            query("small report", ms(20)).await,
            query("full export", ms(5000)).await,
        )
    })
    .await
    .expect("query fails fast instead of running out of time");
    println!("   {}", small.as_ref().unwrap());
    println!("   {} (failed fast)", big.as_ref().unwrap_err());
    assert!(small.is_ok() && big.is_err());
}
