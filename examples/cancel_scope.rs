//! Cancel scopes: stop a block from anywhere and carry on, with no group and no error.
//!
//! 1. A download runs in a `CancelScope`; a watcher task cancels it with a message
//!    (`cancel_with`). The download's cleanup sees the message, `run` returns `None`, and
//!    `cancelled_caught()` says the scope stopped it. Log lines name the task they run in
//!    with `aio::current_task()`.
//! 2. A keep-alive moves the scope's deadline while it runs (`set_deadline`); when the
//!    keep-alives stop, the deadline passes and the scope stops its work.
//! 3. `move_on_after`: give up quietly after a deadline.
//! 4. A cancellation from outside is not the scope's: it passes through `run` (the code
//!    after it never runs) to the group that owns it. A shielded scope is not reached by it
//!    at all, and its caller stops at the next `.await`.
//!
//! Run it with `cargo run --example cancel_scope`.
//!
//! It mirrors Trio (and AnyIO), with asyncio's `cancel(msg)` and `current_task()`:
//!
//! ```python
//! with trio.CancelScope() as scope:
//!     nursery.start_soon(watch_for_stop, scope)     # calls scope.cancel()
//!     await download()
//! if scope.cancelled_caught:
//!     print("stopped")
//!
//! with trio.move_on_after(0.05):
//!     await slow_report()
//!
//! task.cancel("the user pressed stop")               # asyncio's message
//! print(asyncio.current_task().get_name())
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, CancelScope, TaskGroup, move_on_after, on_cancel};
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Who is running: the task's name and group, as `current_task()` gives them.
fn who() -> String {
    match aio::current_task() {
        Some(task) => format!(
            "{} in {}",
            task.name().unwrap_or("a task"),
            task.group_name().unwrap_or("a group")
        ),
        None => "the main future".into(),
    }
}

pub(crate) fn main() {
    aio::run(async {
        stopped_by_a_watcher().await;
        a_deadline_kept_alive().await;
        moving_on().await;
        cancellation_from_outside().await;
    });
}

async fn stopped_by_a_watcher() {
    println!("== 1. a download stopped from another task, with a message");
    let cleaned = Arc::new(Mutex::new(None));
    let seen = Arc::clone(&cleaned);
    TaskGroup::<BoxError>::builder()
        .name("downloads")
        .scope(|tg| async move {
            let scope = CancelScope::new();
            let stop = scope.handle();
            tg.spawn_named("watcher", async move {
                sleep(ms(20)).await; // the user presses stop
                println!("   {}: cancelling the download", who());
                stop.cancel_with("the user pressed stop");
                Ok(())
            })?;
            let handle = scope.handle();
            let download = on_cancel(
                async {
                    println!("   {}: downloading", who());
                    sleep(Duration::from_secs(3600)).await;
                    Ok::<_, BoxError>("the file")
                },
                move |cancelled| async move {
                    sleep(ms(5)).await; // remove the partial file
                    println!("   cleanup: removed the partial file ({cancelled})");
                    *seen.lock().unwrap() = cancelled.message().map(String::from);
                    Ok(())
                },
            );
            let out = scope.run(download).await;
            println!(
                "   run returned {out:?}, cancelled_caught: {}",
                handle.cancelled_caught()
            );
            assert!(out.is_none() && handle.cancelled_caught());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        cleaned.lock().unwrap().as_deref(),
        Some("the user pressed stop")
    );
}

async fn a_deadline_kept_alive() {
    println!("== 2. a deadline that keep-alives push back, until they stop");
    let start = Instant::now();
    let scope = CancelScope::new().with_timeout(ms(30));
    let handle = scope.handle();
    let keep_alive = scope.handle();
    let out = scope
        .run(async move {
            for beat in 1..=3 {
                sleep(ms(20)).await;
                keep_alive.set_deadline(Instant::now() + ms(30));
                println!("   keep-alive {beat}: deadline moved 30 ms ahead");
            }
            sleep(Duration::from_secs(3600)).await; // no more keep-alives
        })
        .await;
    let took = start.elapsed();
    println!(
        "   the scope stopped its work after {} ms: {out:?}",
        took.as_millis()
    );
    assert!(out.is_none() && handle.cancelled_caught());
    assert!(took >= ms(90));
}

async fn moving_on() {
    println!("== 3. move_on_after: give up quietly");
    let report = move_on_after(ms(20), async {
        sleep(Duration::from_secs(3600)).await;
        "the report"
    })
    .await;
    println!("   a slow report under move_on_after(20 ms): {report:?}");
    assert_eq!(report, None);
    let quick = move_on_after(ms(500), async { "cached" }).await;
    println!("   a quick one: {quick:?}");
    assert_eq!(quick, Some("cached"));
}

async fn cancellation_from_outside() {
    println!("== 4. a cancellation from outside passes through; a shielded scope keeps it out");
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    let err = TaskGroup::<BoxError>::scope(|tg| async move {
        let group = tg.clone();
        tg.spawn(async move {
            sleep(ms(10)).await;
            group.cancel_with("shutting down");
            Ok(())
        })?;
        let saved = CancelScope::shielded()
            .run(async {
                sleep(ms(30)).await; // outlives the group's cancellation
                "saved"
            })
            .await;
        l.lock().unwrap().push(format!("shielded scope: {saved:?}"));
        let scope = CancelScope::new();
        let out = scope.run(sleep(Duration::from_secs(3600))).await;
        l.lock().unwrap().push(format!("not reached: {out:?}"));
        Ok(())
    })
    .await
    .unwrap_err();
    println!("   the group reports it: {err}");
    for line in log.lock().unwrap().iter() {
        println!("   {line}");
    }
    assert!(err.is_cancelled());
    assert_eq!(*log.lock().unwrap(), ["shielded scope: Some(\"saved\")"]);
}
