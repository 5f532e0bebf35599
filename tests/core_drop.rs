//! Hard drops (DESIGN §2.6): a group dropped by something outside aio never blocks, cancels
//! its tasks, lets their cleanup run for the grace period, then drops the rest.

use std::time::Duration;

use aio::{BoxError, TaskGroup, on_cancel};
use tokio::time::{Instant, sleep};

use crate::support::*;

/// The grace period of the dropped groups below. The cleanup they must let finish takes
/// 30 ms at most once it may start, so a second leaves room for a loaded machine.
const GRACE: Duration = Duration::from_secs(1);

/// A group whose tasks, once `go` is set, clean up for 10, 20 and 30 ms, plus one whose
/// cleanup never ends. Each task counts itself in `started`: only a started task cleans up.
async fn group_with_cleanup(
    log: Log,
    stubborn: DropFlag,
    started: Counter,
    go: Latch,
) -> Result<(), aio::TaskGroupError<BoxError>> {
    TaskGroup::<BoxError>::builder()
        .name("dropped")
        .grace(GRACE)
        .scope(|tg| async move {
            for i in 0..3u64 {
                let (log, go) = (log.clone(), go.clone());
                tg.spawn(on_cancel(
                    running_forever::<()>(started.clone()),
                    move |_| async move {
                        go.wait().await;
                        sleep(ms(10 * (i + 1))).await;
                        log.push(format!("cleanup {i}"));
                        Ok(())
                    },
                ))?;
            }
            let guard = stubborn.guard();
            tg.spawn(on_cancel(
                running_forever::<()>(started),
                move |_| async move {
                    let _guard = guard;
                    sleep(FOREVER).await;
                    Ok(())
                },
            ))?;
            sleep_forever::<()>().await
        })
        .await
}

/// The cleanup of all three tasks, in any order: their steps of 10 ms do not order them in
/// real time.
fn cleaned_up(log: &Log) -> Vec<String> {
    let mut events = log.events();
    events.sort();
    events
}

spec! {
    /// Required: a group dropped by `tokio::select!` cancels its tasks; their cleanup runs
    /// within the grace period, the task that overstays is dropped when it ends, and no
    /// task survives.
    async fn a_group_dropped_by_select_reaps_its_tasks() {
        let log = Log::new();
        let stubborn = DropFlag::new();
        let (started, go) = (Counter::new(), Latch::new());
        let start = Instant::now();
        tokio::select! {
            _ = group_with_cleanup(log.clone(), stubborn.clone(), started.clone(), go.clone()) => unreachable!(),
            _ = async {
                started.until(4).await;
                sleep(ms(5)).await;
            } => {}
        }
        // Drop did not wait: the cleanup cannot even start before `go`, and if the drop had
        // waited for it, it would have been cut off when the grace period ended.
        assert_elapsed(start, ms(5));
        go.set();
        eventually(Duration::from_secs(5), || stubborn.dropped()).await;
        assert_eq!(cleaned_up(&log), ["cleanup 0", "cleanup 1", "cleanup 2"]);
        if paused() {
            // The stubborn task was dropped when the grace period ended (seen within the
            // millisecond this test polls at).
            let grace_end = ms(5) + GRACE;
            assert!((grace_end..=grace_end + ms(1)).contains(&start.elapsed()), "{:?}", start.elapsed());
        }
        eventually(Duration::from_secs(5), no_tasks_alive).await;
    }
}

spec! {
    /// A task running a group that is aborted from outside gets the same treatment.
    async fn an_aborted_task_running_a_group_reaps_it() {
        let log = Log::new();
        let stubborn = DropFlag::new();
        let (started, go) = (Counter::new(), Latch::new());
        let running = tokio::spawn(group_with_cleanup(log.clone(), stubborn.clone(), started.clone(), go.clone()));
        started.until(4).await;
        sleep(ms(5)).await;
        running.abort();
        assert!(running.await.unwrap_err().is_cancelled());
        go.set();
        eventually(Duration::from_secs(5), || stubborn.dropped()).await;
        assert_eq!(cleaned_up(&log), ["cleanup 0", "cleanup 1", "cleanup 2"]);
        eventually(Duration::from_secs(5), no_tasks_alive).await;
    }
}

spec! {
    /// A dropped group whose tasks have all finished needs no reaper.
    async fn a_dropped_group_with_no_tasks_left_leaves_nothing_behind() {
        tokio::select! {
            _ = TaskGroup::<BoxError>::scope(|tg| async move {
                tg.spawn(async { Ok(()) })?;
                sleep_forever::<()>().await
            }) => unreachable!(),
            _ = sleep(ms(5)) => {}
        }
        eventually(Duration::from_secs(5), no_tasks_alive).await;
    }
}

spec! {
    /// Dropping the group also drops the body at once; only tasks get a grace period.
    async fn a_dropped_group_drops_its_body_at_once() {
        let body = DropFlag::new();
        let guard = body.guard();
        tokio::select! {
            _ = TaskGroup::<BoxError>::scope(|tg| async move {
                let _guard = guard;
                tg.spawn(sleep_forever::<()>())?;
                sleep_forever::<()>().await
            }) => unreachable!(),
            _ = sleep(ms(5)) => {}
        }
        assert!(body.dropped());
        eventually(Duration::from_secs(10), no_tasks_alive).await;
    }
}

/// Shutting the runtime down while a group runs neither hangs nor panics.
#[test]
fn runtime_shutdown_with_a_running_group_does_not_hang() {
    for flavor in ["current_thread", "multi_thread"] {
        let runtime = plain_runtime(flavor);
        let cleaned = DropFlag::new();
        let guard = cleaned.guard();
        runtime.spawn(TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(async move {
                let _guard = guard;
                sleep_forever::<()>().await
            })?;
            sleep_forever::<()>().await
        }));
        runtime.block_on(async { sleep(ms(10)).await });
        let start = std::time::Instant::now();
        runtime.shutdown_timeout(Duration::from_secs(10));
        assert!(start.elapsed() < Duration::from_secs(5), "{flavor}");
        assert!(cleaned.dropped(), "{flavor}: the task was dropped");
    }
}

/// Under a runtime that `aio::run` did not build (`#[tokio::main]`), a dropped group's tasks
/// are reaped in the background like anywhere else, and `join_background` at the end of
/// `main` waits for their cleanup: none is lost when the runtime shuts down.
#[test]
fn join_background_keeps_the_cleanup_of_groups_dropped_under_tokio_main() {
    for flavor in ["current_thread", "multi_thread"] {
        let runtime = plain_runtime(flavor);
        let log = Log::new();
        let l = log.clone();
        let finished = runtime.block_on(async move {
            drop_a_group_once_started(ms(20), l).await;
            aio::join_background(Duration::from_secs(10)).await
        });
        drop(runtime);
        assert!(finished, "{flavor}");
        assert_eq!(log.events(), ["cleaned up"], "{flavor}");
    }
}

/// `join_background` gives up after its grace period, says so, and leaves the work to the
/// runtime.
#[test]
fn join_background_gives_up_after_its_grace_period() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let finished = runtime.block_on(async {
        tokio::select! {
            _ = TaskGroup::<BoxError>::builder().grace(FOREVER).scope(|tg| async move {
                tg.spawn(on_cancel(sleep_forever::<()>(), |_| async {
                    sleep(FOREVER).await;
                    Ok(())
                }))?;
                sleep_forever::<()>().await
            }) => unreachable!(),
            () = sleep(ms(5)) => {}
        }
        let start = Instant::now();
        let finished = aio::join_background(ms(100)).await;
        assert_eq!(start.elapsed(), ms(100));
        finished
    });
    assert!(!finished);
}

/// A runtime built the way `#[tokio::main]` builds one: not by `aio::run`.
fn plain_runtime(flavor: &str) -> tokio::runtime::Runtime {
    match flavor {
        "current_thread" => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
    .enable_all()
    .build()
    .unwrap()
}
