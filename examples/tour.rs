//! A guided tour of aio: every feature, run and explained, section by section.
//!
//! The tour runs each example of this folder (`fetch_all`, `timeouts`, `cancel_scope`,
//! `cancellation_cleanup`, `shield_critical_write`, `gather_and_race`, `in_task`,
//! `web_service`, `supervisor`, `bounded_crawl`, `server_start`, `task_tree`,
//! `barrier_phases`, `producer_consumer`, `paginated`, `rate_limit`, `condition_items`,
//! `event_signal`, `priority_jobs`, `read_files`, `blocking_sdk`, `database`, `cpu_bound`,
//! `crash_resilience`) and adds short sections of its own for what they do not cover: task
//! handles, ending a group with `cancel()`, panics, nested groups and cancel reasons, your
//! own error type, and the runtimes `run` and `run_with` build. Every section asserts what it prints, so a tour that finishes is a
//! tour whose claims held. It takes a few seconds, in real time.
//!
//! Run it from the workspace root with `cargo run --release --example tour`. Pass words to
//! run only the sections whose names contain one (`cargo run --release --example tour --
//! shield timeouts`), or `--list` to list the sections.
//!
//! Its own sections mirror:
//!
//! ```python
//! async with asyncio.TaskGroup() as tg:
//!     fast = tg.create_task(fetch(1), name="fast")
//!     answer = await tg.create_task(fetch(42))  # await a task inside the group
//! print(fast.result())                            # read it after the group
//!
//! tg.cancel()                                     # end the group early, without an error
//!
//! try:
//!     async with asyncio.TaskGroup() as tg:
//!         tg.create_task(crawl())                 # crawl() runs a TaskGroup of its own
//!         tg.create_task(index())
//! except* Exception as eg:
//!     inner = eg.exceptions[0]                    # crawl's ExceptionGroup, nested
//!
//! asyncio.run(main())                             # run() and run_with()
//! with asyncio.Runner(loop_factory=...) as runner:
//!     runner.run(main())
//! ```

// The examples that talk to a loopback server each include `support/http.rs`, so the tour
// loads it once per such example.
#![allow(clippy::duplicate_mod)]

#[path = "barrier_phases.rs"]
mod barrier_phases;
#[path = "blocking_sdk.rs"]
mod blocking_sdk;
#[path = "bounded_crawl.rs"]
mod bounded_crawl;
#[path = "cancel_scope.rs"]
mod cancel_scope;
#[path = "cancellation_cleanup.rs"]
mod cancellation_cleanup;
#[path = "condition_items.rs"]
mod condition_items;
#[path = "cpu_bound.rs"]
mod cpu_bound;
#[path = "crash_resilience.rs"]
mod crash_resilience;
#[path = "database.rs"]
mod database;
#[path = "event_signal.rs"]
mod event_signal;
#[path = "fetch_all.rs"]
mod fetch_all;
#[path = "gather_and_race.rs"]
mod gather_and_race;
#[path = "in_task.rs"]
mod in_task;
#[path = "paginated.rs"]
mod paginated;
#[path = "priority_jobs.rs"]
mod priority_jobs;
#[path = "producer_consumer.rs"]
mod producer_consumer;
#[path = "rate_limit.rs"]
mod rate_limit;
#[path = "read_files.rs"]
mod read_files;
#[path = "server_start.rs"]
mod server_start;
#[path = "shield_critical_write.rs"]
mod shield_critical_write;
#[path = "supervisor.rs"]
mod supervisor;
#[path = "task_tree.rs"]
mod task_tree;
#[path = "timeouts.rs"]
mod timeouts;
#[path = "web_service.rs"]
mod web_service;

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{
    AioError, BoxError, CancelReason, Cancelled, SpawnError, TaskError, TaskGroup, TaskGroupError,
    on_cancel, shield_detached,
};
use tokio::sync::Barrier;
use tokio::time::{Instant, sleep, sleep_until};

/// One stop of the tour.
struct Section {
    /// A short name, to pick sections from the command line.
    name: &'static str,
    title: &'static str,
    /// What to watch for, a line each.
    about: &'static [&'static str],
    /// Runs the section. Each one starts its own runtime (`aio::run`), so this is a plain
    /// function, called outside any runtime.
    run: fn(),
}

/// The tour, in order. To add a stop: write `examples/<name>.rs` with a
/// `pub(crate) fn main()`, declare it in `Cargo.toml` and with a `#[path]` module above, and
/// list it here. Sections of the tour's own are functions at the end of this file.
const SECTIONS: &[Section] = &[
    Section {
        name: "fetch_all",
        title: "Task groups: twenty requests at once (examples/fetch_all.rs)",
        about: &[
            "TaskGroup::scope runs a body that spawns tasks and returns once all are done:",
            "here, reqwest against an axum server on loopback. The first failure cancels the",
            "rest at their next .await; the TaskGroupError names every failure, and split_by",
            "sorts them by type like `except*`.",
        ],
        run: fetch_all::main,
    },
    Section {
        name: "handles",
        title: "Task handles: await a task inside the group, read it after",
        about: &[
            "spawn returns a TaskHandle: .await it in the scope, or call result() after,",
            "when every task is done. A handle also says why a task has no value.",
        ],
        run: task_handles,
    },
    Section {
        name: "cancel",
        title: "Ending a group early: tg.cancel()",
        about: &[
            "cancel() stops the body and every task and ends the group without an error;",
            "the body's value is kept if it had returned, and the group takes no new tasks.",
        ],
        run: ending_a_group_early,
    },
    Section {
        name: "panics",
        title: "Panics: re-raised after the other tasks have finished",
        about: &[
            "A panicking task cancels its siblings like a failure; the scope waits for",
            "their cleanup, then re-raises the panic, like std::thread::scope.",
        ],
        run: panics,
    },
    Section {
        name: "nested",
        title: "Nested groups and cancel reasons",
        about: &[
            "An inner group's error is one failure of the outer group. aio::cancelled()",
            "tells a task why it is being cancelled, naming the task that failed.",
        ],
        run: nested_groups,
    },
    Section {
        name: "errors",
        title: "Your own error type",
        about: &[
            "An enum of your own with one variant for aio's errors: cancel_error! writes the",
            "conversions `?` needs and keeps cancellations apart; split() partitions failures.",
        ],
        run: own_error_type,
    },
    Section {
        name: "timeouts",
        title: "Timeouts are cancel scopes (examples/timeouts.rs)",
        about: &[
            "timeout, wait_for, timeout_at and timeout_scope; a timeout around a group,",
            "nested timeouts that attribute correctly, reschedule, current_deadline.",
        ],
        run: timeouts::main,
    },
    Section {
        name: "cancel_scope",
        title: "Cancel scopes: stop a block from anywhere (examples/cancel_scope.rs)",
        about: &[
            "CancelScope::run returns None when its own cancel or deadline stopped the work;",
            "cancel_with carries a message, current_task names the task, and a cancellation",
            "from outside passes through the scope to the one that owns it.",
        ],
        run: cancel_scope::main,
    },
    Section {
        name: "cleanup",
        title: "Cleaning up after cancellation (examples/cancellation_cleanup.rs)",
        about: &[
            "on_cancel is `except CancelledError: await cleanup(); raise`, Drop is `finally`;",
            "checkpoint() and is_cancelled() for CPU loops; a group dropped by select!.",
        ],
        run: cancellation_cleanup::main,
    },
    Section {
        name: "shield",
        title: "Shields: a critical write (examples/shield_critical_write.rs)",
        about: &[
            "shield makes the cancelled caller wait for the write, then stop at its next",
            ".await; shield_detached is asyncio's shield, and survives a hard drop.",
        ],
        run: shield_critical_write::main,
    },
    Section {
        name: "gather",
        title: "gather, as_completed, race and wait (examples/gather_and_race.rs)",
        about: &[
            "gather returns values in argument order; a failure cancels the rest and every",
            "failure is reported. gather_settled keeps going, as_completed is a Stream, race",
            "and race_ok cancel and await the losers, and wait leaves the pending tasks running.",
        ],
        run: gather_and_race::main,
    },
    Section {
        name: "in_task",
        title: "Fan-out inside one task, for request handlers (examples/in_task.rs)",
        about: &[
            "in_task::gather, gather_settled, race and race_ok spawn nothing: the calls borrow",
            "the request, differ in type and cost a select!; a failure or a winner drops the",
            "rest at once, and a cancelled handler lets every call clean up.",
        ],
        run: in_task::main,
    },
    Section {
        name: "web_service",
        title: "A web service: axum and reqwest on loopback (examples/web_service.rs)",
        about: &[
            "a handler fans out in-task under a deadline; a client that hangs up gets the",
            "handler's gather reaped with its cleanup and nothing logged above DEBUG; a",
            "graceful shutdown answers the request in flight before the group returns.",
        ],
        run: web_service::main,
    },
    Section {
        name: "supervisor",
        title: "Supervisors: a failure that cancels nobody else (examples/supervisor.rs)",
        about: &[
            "JoinPolicy::Supervisor keeps the other workers (and the body) running after a",
            "failure and reports every failure at the end; the default, FailFast, stops all.",
        ],
        run: supervisor::main,
    },
    Section {
        name: "limit",
        title: "Concurrency limits: a bounded crawl (examples/bounded_crawl.rs)",
        about: &[
            "builder().limit(5) runs at most five tasks at once. spawn never waits: the rest",
            "queue in spawn order, and a cancelled group never starts its queued tasks; the",
            "loopback server sees the requests cut off by the timeout hang up.",
        ],
        run: bounded_crawl::main,
    },
    Section {
        name: "start",
        title: "start(): an echo server that says when it listens (examples/server_start.rs)",
        about: &[
            "tg.start returns the value the task passes to status.started() and leaves the",
            "task running; a failure before that, like a port in use, is start's error.",
        ],
        run: server_start::main,
    },
    Section {
        name: "tree",
        title: "The task tree: pstree for aio (examples/task_tree.rs)",
        about: &[
            "aio::task_tree() snapshots every group and task: names, states, limits and",
            "queues, policies, the groups inside tasks and bodies, and why a group was cancelled.",
        ],
        run: task_tree::main,
    },
    Section {
        name: "barrier",
        title: "Barrier: workers that move through phases together (examples/barrier_phases.rs)",
        about: &[
            "aio::sync::Barrier is asyncio's: wait() returns the arrival index, abort() and",
            "reset() break and repair it, and a cancelled wait is undone, not counted.",
        ],
        run: barrier_phases::main,
    },
    Section {
        name: "queue",
        title: "Queue: producers, consumers, join and shutdown (examples/producer_consumer.rs)",
        about: &[
            "A bounded aio::Queue makes producers wait for room; consumers call task_done(),",
            "join() waits for every item, and shutdown() ends the consumers' get() with an",
            "error instead of a sentinel. shutdown(true) drops the backlog at once.",
            "A plain thread puts with blocking_put; a put cut short by a timeout put nothing.",
        ],
        run: producer_consumer::main,
    },
    Section {
        name: "pages",
        title: "An async generator: pages fetched by a task of the group (examples/paginated.rs)",
        about: &[
            "`async for page in fetch_pages(url)`: a task of the reader's group fetches page",
            "after page from a loopback server into a Queue the reader streams. Leaving the",
            "loop cancels the producer; its failure cancels the reader. Nothing outlives them.",
        ],
        run: paginated::main,
    },
    Section {
        name: "semaphore",
        title: "Semaphore: at most three requests at once (examples/rate_limit.rs)",
        about: &[
            "acquire() is `async with sem:`: twelve requests, never more than three in flight;",
            "a request that fails or times out gives its permit back too.",
            "A BoundedSemaphore refuses a release too many, where a Semaphore just grows.",
        ],
        run: rate_limit::main,
    },
    Section {
        name: "condition",
        title: "Condition: consumers that wait for items (examples/condition_items.rs)",
        about: &[
            "wait_for releases the lock while it waits; notify(1) wakes the longest waiter,",
            "notify_all() wakes every one, and a notification with nobody waiting is lost.",
        ],
        run: condition_items::main,
    },
    Section {
        name: "event",
        title: "Event: a starting signal, set, cleared and set again (examples/event_signal.rs)",
        about: &[
            "set() releases every waiter at once, and wait() on a set event returns at once;",
            "clear() makes the same event block again, for a second round.",
        ],
        run: event_signal::main,
    },
    Section {
        name: "priority",
        title: "PriorityQueue: the most urgent job first (examples/priority_jobs.rs)",
        about: &[
            "Jobs ordered by (priority, name) come out smallest first, even one queued late;",
            "a LifoQueue gives the newest item first, a stack.",
        ],
        run: priority_jobs::main,
    },
    Section {
        name: "threads",
        title: "to_thread, tokio::fs and ThreadPool: real files (examples/read_files.rs)",
        about: &[
            "aio::to_thread(move || fs::read_to_string(path)) is asyncio.to_thread: the read",
            "blocks a pool thread, not the runtime; tokio::fs does the same for each call, as",
            "aiofiles does. A ThreadPool maps over the files in order.",
        ],
        run: read_files::main,
    },
    Section {
        name: "sdk",
        title: "A blocking SDK under a CapacityLimiter (examples/blocking_sdk.rs)",
        about: &[
            "Twenty tasks, one limiter of four: never more than four threads inside the SDK.",
            "to_thread_cancellable's token stops a long export when a timeout fires.",
        ],
        run: blocking_sdk::main,
    },
    Section {
        name: "database",
        title: "SQLite through a CapacityLimiter(1): a pipeline of writers (examples/database.rs)",
        about: &[
            "A Queue feeds three writers that insert rows through one limiter of one token,",
            "asyncpg's pool of one connection; a query checks that every row landed. A",
            "transaction cut off by a timeout sees its CancelToken and rolls back whole.",
        ],
        run: database::main,
    },
    Section {
        name: "cpu",
        title: "ProcessPool: CPU-bound work on every core (examples/cpu_bound.rs)",
        about: &[
            "Worker processes run registered functions; init(registry) at the top of main",
            "makes the program its own worker. submit() is run_in_executor, map() a lazy",
            "ordered stream with chunks, and more workers count the primes faster.",
        ],
        run: cpu_bound::main,
    },
    Section {
        name: "crash",
        title: "ProcessPool: a worker dies and the pool goes on (examples/crash_resilience.rs)",
        about: &[
            "An abort, a timeout or a kill -9 fails only the task it hits, with the signal and",
            "the worker's last stderr; the worker is replaced. BreakPool is Python's behaviour.",
        ],
        run: crash_resilience::main,
    },
    Section {
        name: "runtimes",
        title: "run and run_with: asyncio.run on the runtime of your choice",
        about: &[
            "aio::run builds a multi-thread runtime; run_with takes your builder, such as",
            "a current-thread one. Both wait for the background work aio owns.",
        ],
        run: runtimes,
    },
];

fn main() {
    // First thing: the process pool sections start the tour again as their workers, and
    // this is where a worker stops being the tour.
    aio::process::init(cpu_bound::registry().merge(crash_resilience::registry()));
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for section in SECTIONS {
            println!("{:<10} {}", section.name, section.title);
        }
        return;
    }
    let chosen: Vec<&Section> = SECTIONS
        .iter()
        .filter(|s| args.is_empty() || args.iter().any(|a| s.name.contains(a.as_str())))
        .collect();
    if chosen.is_empty() {
        eprintln!("no section matches {args:?}; `--list` lists them");
        std::process::exit(2);
    }
    let start = std::time::Instant::now();
    for (i, section) in chosen.iter().enumerate() {
        println!();
        println!(
            "[{}/{}] {} ({})",
            i + 1,
            chosen.len(),
            section.title,
            section.name
        );
        for line in section.about {
            println!("  | {line}");
        }
        let took = std::time::Instant::now();
        (section.run)();
        println!("  ({} ms)", took.elapsed().as_millis());
    }
    println!();
    println!(
        "Tour complete: {} section{} in {:.1} s, every assertion held.",
        chosen.len(),
        if chosen.len() == 1 { "" } else { "s" },
        start.elapsed().as_secs_f64()
    );
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Long enough to count as "for ever" here: whatever sleeps this long gets cancelled.
const FOREVER: Duration = Duration::from_secs(3600);

/// A task body that waits until it is cancelled.
async fn sleep_forever<E>() -> Result<(), E> {
    sleep(FOREVER).await;
    Ok(())
}

/// A task's result, for printing.
fn describe<T: fmt::Debug>(result: &Result<T, TaskError>) -> String {
    match result {
        Ok(value) => format!("Ok({value:?})"),
        Err(e) => format!("Err: {e}"),
    }
}

// Task handles.

fn task_handles() {
    aio::run(async {
        let (fast, slow, group) = TaskGroup::<BoxError>::builder()
            .name("handles")
            .scope(|tg| async move {
                let fast = tg.spawn_named("fast", async { Ok(1) })?;
                let slow = tg.spawn_named("slow", async {
                    sleep(ms(20)).await;
                    Ok(2)
                })?;
                let answer = tg.spawn(async {
                    sleep(ms(5)).await;
                    Ok(42)
                })?;
                println!(
                    "   group {} '{}', {} tasks running; `slow` is {}",
                    tg.id(),
                    tg.name().unwrap_or("?"),
                    tg.len(),
                    slow.id()
                );
                // `await task` inside the scope.
                let answer = answer.await?;
                println!("   await answer -> {answer}");
                assert_eq!(answer, 42);
                Ok((fast, slow, tg.clone()))
            })
            .await
            .expect("no task fails");
        // After the scope every task is finished: `task.result()` reads it without waiting.
        assert!(fast.is_finished() && slow.is_finished());
        let (fast, slow) = (fast.result(), slow.result());
        println!("   after the scope: fast.result() -> {fast:?}, slow.result() -> {slow:?}");
        assert_eq!((fast, slow), (Ok(1), Ok(2)));
        // A finished group takes no new tasks.
        let refused = group.spawn(async { Ok(()) }).unwrap_err();
        println!("   spawn after the scope: {refused}");
        assert_eq!(refused, SpawnError::Finished);
        assert!(group.is_empty());

        // When a group fails, the body's value is lost; keep the handles outside the scope,
        // as asyncio code keeps its list of tasks, to see how each task ended.
        let mut handles = Vec::new();
        let kept = &mut handles;
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            kept.push(tg.spawn_named("quick", async { Ok("done") })?);
            kept.push(tg.spawn_named("broken", async {
                sleep(ms(100)).await;
                Err("boom".into())
            })?);
            kept.push(tg.spawn_named("slow", async {
                sleep(FOREVER).await;
                Ok("never")
            })?);
            Ok(())
        })
        .await
        .unwrap_err();
        println!("   a failed group ({err}); its handles say:");
        let mut results = Vec::new();
        for handle in handles {
            let name = handle.name().unwrap_or("?").to_string();
            let result = handle.result();
            println!("   {name:>6}: {}", describe(&result));
            results.push(result);
        }
        assert_eq!(results[0], Ok("done"));
        assert!(matches!(results[1], Err(TaskError::Failed(_))));
        assert!(matches!(results[2], Err(TaskError::Cancelled(_))));
    });
}

// Ending a group early.

/// A connection handler that serves until it is cancelled, then closes.
async fn serve(conn: u32) -> Result<(), BoxError> {
    let close = async move {
        println!("   conn-{conn}: closed");
        Ok(())
    };
    on_cancel(sleep_forever(), |_| close).await
}

fn ending_a_group_early() {
    aio::run(async {
        let start = Instant::now();
        let served = TaskGroup::<BoxError>::scope(|tg| async move {
            for conn in 1..=3 {
                tg.spawn_named(format!("conn-{conn}"), serve(conn))?;
            }
            let group = tg.clone();
            tg.spawn_named("shutdown", async move {
                sleep(ms(30)).await;
                println!(
                    "   shutdown: tg.cancel() at {} ms",
                    start.elapsed().as_millis()
                );
                group.cancel();
                Ok(())
            })?;
            Ok("listening on :8080")
        })
        .await;
        println!("   the body had returned, so the scope keeps its value: {served:?}");
        assert_eq!(served.unwrap(), "listening on :8080");

        // A body cut off by cancel() has no value to give: the scope reports the
        // cancellation, with no failure.
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(async move {
                sleep(ms(10)).await;
                group.cancel();
                Ok(())
            })?;
            sleep(FOREVER).await; // cancelled here
            Ok("never")
        })
        .await
        .unwrap_err();
        println!("   a body cut off by cancel(): Err({err})");
        assert!(err.is_cancelled() && err.is_empty());
        assert_eq!(
            err.as_cancelled().unwrap().reason(),
            &CancelReason::Explicit
        );

        // Once cancelled, a group takes no new tasks.
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            assert!(tg.is_cancelled() && aio::is_cancelled());
            let refused = tg.spawn(async { Ok(()) }).unwrap_err();
            println!("   spawn after cancel(): {refused}");
            assert!(matches!(refused, SpawnError::ShuttingDown(_)));
            Ok(())
        })
        .await
        .expect("cancel() is not an error");
    });
}

// Panics.

/// A real bug: this header is too short.
fn header_version(header: &[u8]) -> u8 {
    header[3]
}

fn panics() {
    // The default hook would print a backtrace hint for the panic on the worker thread;
    // print one line instead, and put the default back afterwards.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = (payload.downcast_ref::<&str>().copied())
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("<not a string>");
        println!("   [panic hook] panicked: {message}");
    }));
    aio::run(async {
        let start = Instant::now();
        let cleaned = Arc::new(AtomicBool::new(false));
        let c = Arc::clone(&cleaned);
        let group = TaskGroup::<BoxError>::scope(move |tg| async move {
            let cleanup = async move {
                sleep(ms(20)).await;
                println!(
                    "   sibling: cleaned up at {} ms",
                    start.elapsed().as_millis()
                );
                c.store(true, Ordering::SeqCst);
                Ok(())
            };
            tg.spawn_named("sibling", on_cancel(sleep_forever(), |_| cleanup))?;
            tg.spawn_named("parser", async {
                sleep(ms(100)).await;
                Ok(header_version(b"aio"))
            })?;
            Ok(())
        });
        // Catch it the Tokio way: run the group as a task and look at its JoinError.
        let payload = tokio::spawn(group)
            .await
            .expect_err("the panic is re-raised")
            .into_panic();
        let message = payload.downcast_ref::<String>().map_or("?", String::as_str);
        println!(
            "   the scope re-raised it at {} ms, after the cleanup: {message}",
            start.elapsed().as_millis()
        );
        assert!(message.contains("index out of bounds"));
        assert!(cleaned.load(Ordering::SeqCst), "the sibling finished first");
    });
    std::panic::set_hook(default_hook);
}

// Nested groups and cancel reasons.

/// Waits until the task is cancelled and records why.
async fn report_cancellation(
    name: &'static str,
    seen: Arc<Mutex<Vec<(&'static str, Cancelled)>>>,
) -> Result<(), BoxError> {
    let cancelled = aio::cancelled().await;
    println!("   {name}: {cancelled}");
    seen.lock().unwrap().push((name, cancelled));
    Ok(())
}

fn nested_groups() {
    aio::run(async {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (s1, s2) = (Arc::clone(&seen), Arc::clone(&seen));
        let err = TaskGroup::<BoxError>::scope(|outer| async move {
            outer.spawn_named("crawler", async move {
                TaskGroup::<BoxError>::scope(|inner| async move {
                    inner.spawn_named("page-1", async {
                        sleep(ms(100)).await;
                        Err::<(), _>("robots.txt says no".into())
                    })?;
                    inner.spawn_named("page-2", report_cancellation("page-2", s1))?;
                    Ok(())
                })
                .await?; // the inner group's error becomes this task's error
                Ok(())
            })?;
            outer.spawn_named("indexer", report_cancellation("indexer", s2))?;
            Ok(())
        })
        .await
        .unwrap_err();
        println!("   outer: {err}");
        assert_eq!(err.len(), 1);
        assert_eq!(err.first().unwrap().name(), Some("crawler"));
        // `except* ExceptionGroup`: take the nested group's failures out.
        let (groups, rest) = err.split_by::<TaskGroupError<BoxError>>();
        assert!(rest.is_none());
        let inner = groups.unwrap().into_errors().remove(0);
        println!("   inner: {inner}");
        assert_eq!(inner.first().unwrap().name(), Some("page-1"));

        let seen = seen.lock().unwrap();
        let failed = |who: &str| {
            let (_, c) = seen.iter().find(|(name, _)| *name == who).unwrap();
            match c.reason() {
                CancelReason::SiblingFailed { name, .. } => name.as_deref().map(str::to_owned),
                other => panic!("unexpected reason {other:?}"),
            }
        };
        assert_eq!(failed("page-2").as_deref(), Some("page-1"));
        assert_eq!(failed("indexer").as_deref(), Some("crawler"));
    });
}

// Your own error type.

/// A fetch error of your own: one variant holds aio's errors, and `cancel_error!` writes the
/// conversions `?` needs (spawn, task, timeout, cancellation) and tells cancellations apart.
#[derive(Debug)]
enum FetchError {
    Status(u16),
    TimedOut,
    Aio(AioError),
}

aio::cancel_error!(FetchError::Aio);

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Status(status) => write!(f, "HTTP {status}"),
            FetchError::TimedOut => f.write_str("timed out"),
            FetchError::Aio(e) => e.fmt(f),
        }
    }
}

fn own_error_type() {
    aio::run(async {
        let at = Instant::now() + ms(10);
        // Three failures in the same instant: none fails before all three are due, so none is
        // cancelled by another's failure, and all three are collected.
        let together = Arc::new(Barrier::new(3));
        let err = TaskGroup::<FetchError>::scope(|tg| async move {
            for (name, error) in [
                ("a", FetchError::Status(503)),
                ("b", FetchError::Status(404)),
                ("c", FetchError::TimedOut),
            ] {
                let together = Arc::clone(&together);
                tg.spawn_named(name, async move {
                    sleep_until(at).await;
                    together.wait().await;
                    Err::<(), _>(error)
                })?;
            }
            // A task that passes its cancellation up with `?` adds nothing.
            tg.spawn_named("d", on_cancel(sleep_forever(), |_| async { Ok(()) }))?;
            Ok(())
        })
        .await
        .unwrap_err();
        println!("   {err}");
        assert_eq!(err.len(), 3);
        let (retry, give_up) = err.split(|e| {
            matches!(e, FetchError::Status(s) if *s >= 500) || matches!(e, FetchError::TimedOut)
        });
        let names = |group: &Option<TaskGroupError<FetchError>>| {
            let mut names: Vec<String> = group
                .iter()
                .flatten()
                .map(|f| format!("{} ({})", f.name().unwrap_or("?"), f.error()))
                .collect();
            names.sort();
            names
        };
        let (retry, give_up) = (names(&retry), names(&give_up));
        println!(
            "   retry: {}; give up: {}",
            retry.join(", "),
            give_up.join(", ")
        );
        assert_eq!(retry, ["a (HTTP 503)", "c (timed out)"]);
        assert_eq!(give_up, ["b (HTTP 404)"]);

        // The body can fail too: its failure comes last, with no task id.
        let err = TaskGroup::<FetchError>::scope(|tg| async move {
            tg.spawn_named("prefetch", sleep_forever())?;
            sleep(ms(5)).await;
            Err::<(), _>(FetchError::Status(400))
        })
        .await
        .unwrap_err();
        let failure = err.into_failures().remove(0);
        println!(
            "   a body that fails: {failure}; is_body() = {}",
            failure.is_body()
        );
        assert!(failure.is_body() && failure.task_id().is_none());
    });
}

// Runtimes.

/// Spawns eight short tasks and returns the threads they ran on.
async fn threads_used() -> HashSet<std::thread::ThreadId> {
    TaskGroup::<BoxError>::scope(|tg| async move {
        let mut tasks = Vec::new();
        for _ in 0..8 {
            tasks.push(tg.spawn(async {
                sleep(ms(5)).await;
                Ok(std::thread::current().id())
            })?);
        }
        let mut threads = HashSet::new();
        for task in tasks {
            threads.insert(task.await?);
        }
        Ok(threads)
    })
    .await
    .expect("no task fails")
}

fn runtimes() {
    // asyncio.run(main()): a multi-thread runtime; tasks run in parallel on its workers.
    let threads = aio::run(threads_used());
    println!(
        "   aio::run: 8 tasks ran on {} worker thread(s)",
        threads.len()
    );
    assert!(!threads.contains(&std::thread::current().id()));

    // run_with: any runtime you build. A current-thread one runs everything right here.
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_time(); // aio's timeouts and reapers need the timer
    let threads = aio::run_with(&mut builder, threads_used()).expect("the runtime builds");
    println!(
        "   aio::run_with(current_thread): 8 tasks ran on the calling thread: {}",
        threads.len() == 1
    );
    assert_eq!(threads, HashSet::from([std::thread::current().id()]));

    // Inside a runtime, starting another is an error, not a deadlock.
    aio::run(async {
        let err = aio::run_with(&mut tokio::runtime::Builder::new_current_thread(), async {});
        let err = err.unwrap_err();
        println!("   run_with inside a runtime: {err}");
    });

    // Background work that aio owns is waited for when run returns (for up to
    // aio::DEFAULT_GRACE): here, a detached shield started outside any group.
    let saved = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&saved);
    aio::run(async move {
        let _write = shield_detached(async move {
            sleep(ms(20)).await;
            s.store(true, Ordering::SeqCst);
        });
        // main returns at once, without awaiting the handle
    });
    println!(
        "   a detached write outside any group finished before run returned: {} (grace {:?})",
        saved.load(Ordering::SeqCst),
        aio::DEFAULT_GRACE
    );
    assert!(saved.load(Ordering::SeqCst));
}
