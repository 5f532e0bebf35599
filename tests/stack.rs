//! How much stack one level of nesting costs when structured constructs nest inside one task,
//! each level's future awaiting the next: every level's `poll` stays on the stack under the
//! innermost one. A measurement, not a rule: run it in both profiles with
//!
//! ```text
//! cargo test -p aio-tests --test spec core_stack -- --ignored --nocapture
//! cargo test -p aio-tests --test spec core_stack --release -- --ignored --nocapture
//! ```
//!
//! Each level is boxed, so the size of the futures does not count, only the depth of `poll`.

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
