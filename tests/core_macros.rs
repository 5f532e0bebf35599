//! `#[aio::main]` and `#[aio::test]`: Tokio's attributes under `aio::run`'s rules.

use std::sync::Mutex;
use std::time::Duration;

use aio::{BoxError, TaskGroup};
use tokio::runtime::{Handle, RuntimeFlavor};
use tokio::time::{Instant, sleep};

use crate::support::*;

/// `#[aio::test]` builds a current-thread runtime, like `#[tokio::test]`, and runs the body
/// in aio's root scope.
#[aio::test]
async fn aio_test_runs_the_body_on_a_current_thread_runtime() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::CurrentThread
    );
    assert!(!aio::is_cancelled());
}

#[aio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aio_test_takes_tokios_flavor_and_worker_threads() {
    assert_eq!(
        Handle::current().runtime_flavor(),
        RuntimeFlavor::MultiThread
    );
}

/// `start_paused = true` starts the clock paused, as in `#[tokio::test]`.
#[aio::test(start_paused = true)]
async fn aio_test_starts_paused_when_asked() {
    let start = Instant::now();
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(start.elapsed(), Duration::from_secs(3600));
}

/// A test may return a `Result`, as `#[tokio::test]` allows.
#[aio::test]
async fn aio_test_may_return_a_result() -> Result<(), BoxError> {
    let n = TaskGroup::<BoxError>::scope(|tg| async move { Ok(tg.spawn(async { Ok(2) })?.await?) })
        .await?;
    assert_eq!(n, 2);
    Ok(())
}

static CLEANED_UP: Mutex<Option<Log>> = Mutex::new(None);

/// Drops a group whose task, once started, needs 20 ms of cleanup, and returns at once.
#[aio::test]
async fn aio_test_drops_a_group_and_returns() {
    let log = CLEANED_UP
        .lock()
        .unwrap()
        .get_or_insert_with(Log::new)
        .clone();
    drop_a_group_once_started(ms(20), log).await;
}

/// Under the attributes, as under `aio::run`, the runtime waits for the background cleanup
/// of dropped groups before it shuts down: `#[tokio::test]` would drop it.
#[test]
fn the_attributes_await_background_cleanup_before_the_runtime_shuts_down() {
    let log = CLEANED_UP
        .lock()
        .unwrap()
        .get_or_insert_with(Log::new)
        .clone();
    let before = log.events().len();
    aio_test_drops_a_group_and_returns();
    assert!(log.events().len() > before);
}
