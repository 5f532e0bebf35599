//! `run` and `run_with`: `asyncio.run` for aio.

use aio::{BoxError, TaskGroup, shield_detached};
use tokio::runtime::Builder;
use tokio::time::sleep;

use crate::support::*;

#[test]
fn run_returns_the_value_of_main() {
    assert_eq!(aio::run(async { 6 * 7 }), 42);
}

#[test]
fn run_propagates_a_panic_in_main() {
    let r = std::panic::catch_unwind(|| aio::run(async { panic!("main panicked") }));
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"main panicked"));
}

#[test]
fn run_with_uses_the_given_builder() {
    let mut builder = Builder::new_current_thread();
    builder.enable_time();
    let out = aio::run_with(&mut builder, async {
        sleep(ms(1)).await;
        TaskGroup::<BoxError>::scope(|tg| async move {
            let a = tg.spawn(async { Ok(1) })?;
            Ok(a.await? + 1)
        })
        .await
    })
    .unwrap();
    assert_eq!(out.unwrap(), 2);
}

#[test]
fn run_inside_a_runtime_is_an_error() {
    let runtime = Builder::new_current_thread().build().unwrap();
    runtime.block_on(async {
        let err = aio::run_with(&mut Builder::new_current_thread(), async {}).unwrap_err();
        assert!(err.to_string().contains("inside a Tokio runtime"), "{err}");
    });
}

/// Detached work that aio owns outside any group is waited for when `run` shuts down.
#[test]
fn run_waits_for_detached_work_at_shutdown() {
    let log = Log::new();
    let l = log.clone();
    aio::run(async move {
        drop(shield_detached(async move {
            sleep(ms(50)).await;
            l.push("saved");
        }));
    });
    assert_eq!(log.events(), ["saved"]);
}

/// The reaper of a group dropped inside `run` is waited for at shutdown, so its tasks'
/// cleanup is not cut short.
#[test]
fn run_waits_for_the_reapers_of_dropped_groups() {
    let log = Log::new();
    let l = log.clone();
    aio::run(drop_a_group_once_started(ms(50), l));
    assert_eq!(log.events(), ["cleaned up"]);
}

/// So is the reaper of a group dropped in a task that `tokio::spawn` started, outside every
/// aio scope (a server's connection task): `run` waits for the background work of its whole
/// runtime.
#[test]
fn run_waits_for_groups_dropped_in_tasks_that_tokio_spawn_started() {
    let log = Log::new();
    let l = log.clone();
    aio::run(async move {
        let connection = tokio::spawn(drop_a_group_once_started(ms(50), l));
        connection.await.unwrap();
    });
    assert_eq!(log.events(), ["cleaned up"]);
}
