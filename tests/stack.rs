//! Deep nesting in one task: structured constructs nested inside one task, each level's future
//! awaiting the next, keep every level's `poll` on the stack under the innermost one. The
//! rules: a Tokio worker's 2 MiB stack holds 3,000 nested timeouts, task groups and shields,
//! as it holds 3,000 nested `tokio::time::timeout`s, and a nested timeout costs no more stack
//! than Tokio's. Each level is boxed, so the size of the futures does not count, only the
//! depth of `poll`.
//!
//! Stack depth is a property of optimised code, where a service runs: in a debug build every
//! function keeps a frame of its own, Tokio's included. So the rules run in release, which
//! `.ci/run` does (`cargo test --release -p aio-tests --test stack`), and are skipped in
//! debug builds. The measurement behind them, for both profiles:
//!
//! ```text
//! cargo test -p aio-tests --test stack -- --ignored --nocapture
//! cargo test -p aio-tests --test stack --release -- --ignored --nocapture
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aio::{BoxError, TaskGroup};

type Level = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Makes a chain of so many levels of one construct.
type Nest = fn(usize) -> Level;

const HOUR: Duration = Duration::from_secs(3600);

/// The deepest stack address the innermost level saw.
static DEEPEST: AtomicUsize = AtomicUsize::new(usize::MAX);

#[inline(never)]
fn stack_address() -> usize {
    let local = 0_u8;
    std::hint::black_box(&local) as *const u8 as usize
}

/// The innermost level: notes the stack address on its first poll and on the one after it
/// yields, when every level above polls again.
async fn innermost() {
    DEEPEST.fetch_min(stack_address(), Ordering::Relaxed);
    tokio::task::yield_now().await;
    DEEPEST.fetch_min(stack_address(), Ordering::Relaxed);
}

fn plain(n: usize) -> Level {
    Box::pin(async move {
        match n {
            0 => innermost().await,
            _ => plain(n - 1).await,
        }
    })
}

fn tokio_timeout(n: usize) -> Level {
    Box::pin(async move {
        match n {
            0 => innermost().await,
            _ => tokio::time::timeout(HOUR, tokio_timeout(n - 1))
                .await
                .unwrap(),
        }
    })
}

fn aio_timeout(n: usize) -> Level {
    Box::pin(async move {
        match n {
            0 => innermost().await,
            _ => aio::timeout(HOUR, aio_timeout(n - 1)).await.unwrap(),
        }
    })
}

fn task_group(n: usize) -> Level {
    Box::pin(async move {
        match n {
            0 => innermost().await,
            _ => TaskGroup::<BoxError>::scope(|_tg| async move {
                task_group(n - 1).await;
                Ok(())
            })
            .await
            .unwrap(),
        }
    })
}

fn shield(n: usize) -> Level {
    Box::pin(async move {
        match n {
            0 => innermost().await,
            _ => aio::shield(shield(n - 1)).await,
        }
    })
}

fn on_cancel(n: usize) -> Level {
    Box::pin(async move {
        match n {
            0 => innermost().await,
            _ => aio::on_cancel(
                async move {
                    on_cancel(n - 1).await;
                    Ok::<(), BoxError>(())
                },
                |_| async { Ok(()) },
            )
            .await
            .unwrap(),
        }
    })
}

/// Stack used from the top of a fresh thread down to the innermost of `depth` levels, run as a
/// task of a current-thread runtime on that thread.
fn stack_used(nest: Nest, depth: usize) -> usize {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || {
            let top = stack_address();
            DEEPEST.store(usize::MAX, Ordering::Relaxed);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move { tokio::spawn(nest(depth)).await.unwrap() });
            top - DEEPEST.load(Ordering::Relaxed)
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
#[ignore = "a measurement: run it with --ignored --nocapture"]
fn stack_per_nesting_level() {
    const TWO_MIB: usize = 2 << 20;
    let constructs: [(&str, Nest); 6] = [
        ("a boxed level alone", plain),
        ("tokio::time::timeout", tokio_timeout),
        ("aio::timeout", aio_timeout),
        ("TaskGroup::scope", task_group),
        ("aio::shield", shield),
        ("aio::on_cancel", on_cancel),
    ];
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!("{profile}: bytes of stack per level, and about how many levels fit 2 MiB");
    for (name, nest) in constructs {
        let (shallow, deep) = (stack_used(nest, 100), stack_used(nest, 1100));
        let per_level = (deep - shallow) / 1000;
        let base = shallow - 100 * per_level;
        println!(
            "{name:>22}: {per_level:>5} B/level, ~{} levels",
            (TWO_MIB - base) / per_level
        );
    }
}

/// A Tokio worker thread's stack, by default.
const WORKER_STACK: usize = 2 << 20;

/// Runs `depth` levels of `nest` as a task on a thread with a worker's stack. An overflow
/// aborts the test binary.
fn run_on_a_worker_stack(nest: Nest, depth: usize) {
    std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move { tokio::spawn(nest(depth)).await.unwrap() });
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "stack depth is a property of optimised code"
)]
fn three_thousand_nested_timeouts_run_on_a_worker_stack_as_tokios_do() {
    run_on_a_worker_stack(tokio_timeout, 3000);
    run_on_a_worker_stack(aio_timeout, 3000);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "stack depth is a property of optimised code"
)]
fn three_thousand_nested_task_groups_run_on_a_worker_stack() {
    run_on_a_worker_stack(task_group, 3000);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "stack depth is a property of optimised code"
)]
fn three_thousand_nested_shields_and_two_thousand_on_cancels_run_on_a_worker_stack() {
    run_on_a_worker_stack(shield, 3000);
    run_on_a_worker_stack(on_cancel, 2000);
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "stack depth is a property of optimised code"
)]
fn a_nested_timeout_costs_no_more_stack_than_a_tokio_timeout() {
    let per_level = |nest: Nest| (stack_used(nest, 1100) - stack_used(nest, 100)) / 1000;
    let (ours, tokios) = (per_level(aio_timeout), per_level(tokio_timeout));
    assert!(
        ours <= tokios,
        "aio::timeout {ours} B/level, tokio::time::timeout {tokios}"
    );
}
