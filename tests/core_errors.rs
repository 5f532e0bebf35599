//! A custom error type: one variant holding `AioError` and one `cancel_error!` line make an
//! enum work with `spawn`, `?`, timeouts and handles, and keep cancellations apart from
//! failures.

use aio::{AioError, TaskError, TaskGroup, cancel_error, on_cancel, timeout};
use tokio::time::sleep;

use crate::support::*;

#[derive(Debug, thiserror::Error)]
enum AppError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error(transparent)]
    Aio(AioError),
}

cancel_error!(AppError::Aio);

async fn lookup(key: &str) -> Result<u32, AppError> {
    sleep(ms(5)).await;
    match key {
        "missing" => Err(AppError::NotFound(key.into())),
        _ => Ok(key.len() as u32),
    }
}

spec! {
    /// Every aio error converts with `?` into the enum: a cancellation passed up by a task
    /// (awaiting a sibling that the group cancelled, spawning into a group that shuts down)
    /// is recognised as one and adds nothing; only the real failure is reported.
    async fn a_custom_error_enum_needs_one_line_and_keeps_cancellations_apart() {
        let log = Log::new();
        let l = log.clone();
        let err = TaskGroup::<AppError>::scope(|tg| async move {
            let slow = tg.spawn(async {
                sleep(FOREVER).await;
                Ok::<u32, AppError>(0)
            })?;
            tg.spawn(lookup("missing"))?;
            let tg2 = tg.clone();
            let l2 = l.clone();
            tg.spawn(on_cancel(
                async move { Ok::<u32, AppError>(slow.await?) }, // cancelled with the group
                move |_| async move {
                    // Spawning into a group that shuts down is refused with a cancellation.
                    let refused = tg2.spawn(async { Ok(1) }).map(|_| ()).map_err(AppError::from);
                    l2.push(format!("refused: {}", refused.is_err()));
                    Ok(())
                },
            ))?;
            sleep(FOREVER).await;
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(messages_of(&err), ["not found: missing"]);
        assert_eq!(log.events(), ["refused: true"]);
    }
}

spec! {
    /// A deadline that passes converts with `?` into the enum as a real failure, and a
    /// task's outcome as what it was.
    async fn timeouts_and_task_outcomes_convert_with_the_question_mark() {
        async fn slow() -> Result<u32, AppError> {
            timeout(ms(5), async {
                sleep(FOREVER).await;
                Ok(1)
            })
            .await?
        }
        let err = slow().await.unwrap_err();
        assert!(matches!(err, AppError::Aio(AioError::Elapsed(_))), "{err:?}");
        assert!(aio::CancelError::as_cancelled(&err).is_none());

        let got = TaskGroup::<AppError>::scope(|tg| async move {
            let h = tg.spawn(lookup("four"))?;
            Ok(h.await?)
        })
        .await
        .unwrap();
        assert_eq!(got, 4);

        let cancelled = AppError::from(TaskError::Aborted);
        assert!(aio::CancelError::as_cancelled(&cancelled).is_none());
    }
}

fn messages_of(err: &aio::TaskGroupError<AppError>) -> Vec<String> {
    err.iter().map(|f| f.error().to_string()).collect()
}

mod nested {
    /// An error enum named by a path.
    #[derive(Debug)]
    pub(super) enum PathError {
        Aio(aio::AioError),
    }
}

aio::cancel_error!(nested::PathError, Aio);

#[test]
fn cancel_error_takes_a_type_named_by_a_path() {
    let err = nested::PathError::from(aio::TaskError::Aborted);
    assert!(matches!(
        err,
        nested::PathError::Aio(aio::AioError::Task(_))
    ));
}
