//! `TaskGroup::start`: Trio's `nursery.start`, a task that reports when it is ready.

use aio::{BoxError, CancelReason, StartError, TaskGroup, TaskStatus};
use tokio::time::sleep;

use crate::support::*;

spec! {
    /// The starter gets the ready value while the task goes on running in the group.
    async fn start_returns_the_ready_value_and_the_task_runs_on() {
        let log = Log::new();
        let l = log.clone();
        let seen = Latch::new();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let server_log = l.clone();
            let port_seen = seen.clone();
            let port = tg
                .start(|status: TaskStatus<u16>| async move {
                    sleep(ms(5)).await; // binding...
                    status.started(8080);
                    sleep(ms(10)).await; // serving...
                    // Still serving when the starter has the port: it cannot finish first.
                    port_seen.wait().await;
                    server_log.push("served");
                    Ok(())
                })
                .await?;
            assert_eq!(port, 8080);
            l.push("started");
            seen.set();
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(log.events(), ["started", "served"]);
    }
}

spec! {
    /// A task that fails before it is ready fails `start`, not the group.
    async fn a_failure_before_ready_fails_start_not_the_group() {
        let out = TaskGroup::<BoxError>::scope(|tg| async move {
            let r = tg
                .start(|_status: TaskStatus<u16>| async move {
                    sleep(ms(5)).await;
                    Err::<(), BoxError>("port in use".into())
                })
                .await;
            match r {
                Err(StartError::Failed(e)) => assert_eq!(e.to_string(), "port in use"),
                other => panic!("unexpected {other:?}"),
            }
            sleep(ms(5)).await; // the group was not cancelled
            Ok("carried on")
        })
        .await
        .unwrap();
        assert_eq!(out, "carried on");
    }
}

spec! {
    /// A task that finishes without reporting ready makes `start` say so.
    async fn a_task_that_never_reports_ready_exits() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let r = tg
                .start_named("forgetful", |_status: TaskStatus<u16>| async move { Ok(()) })
                .await;
            assert!(matches!(r, Err(StartError::Exited)), "{r:?}");
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    /// After it is ready, a task's failure is an ordinary failure of the group.
    async fn a_failure_after_ready_fails_the_group() {
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.start(|status: TaskStatus<()>| async move {
                status.started(());
                sleep(ms(5)).await;
                Err::<(), BoxError>("crashed while serving".into())
            })
            .await?;
            sleep_forever::<()>().await
        })
        .await
        .unwrap_err();
        assert_eq!(messages(&err), ["crashed while serving"]);
    }
}

spec! {
    /// A task cancelled before it is ready (its group is cancelled) makes `start` report the
    /// cancellation, which passes up with `?` as a cancellation.
    async fn a_task_cancelled_before_ready_reports_the_cancellation() {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let s = seen.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            let group = tg.clone();
            tg.spawn(async move {
                sleep(ms(5)).await;
                group.cancel();
                Ok(())
            })?;
            let r = aio::shield(tg.start(|_status: TaskStatus<()>| async move {
                sleep_forever::<()>().await
            }))
            .await;
            *s.lock().unwrap() = Some(r);
            Ok(())
        })
        .await
        .unwrap();
        let r = seen.lock().unwrap().take().unwrap();
        let err = r.unwrap_err();
        assert_eq!(err.as_cancelled().unwrap().reason(), &CancelReason::Explicit);
    }
}
