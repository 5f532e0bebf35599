use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aio_core::*;
use tokio::time::{Instant, sleep};

#[tokio::test(start_paused = true)]
async fn failure_cancels_siblings_and_cleanup_runs() {
    let cleaned = Arc::new(AtomicUsize::new(0));
    let c = cleaned.clone();
    let start = Instant::now();
    let err = TaskGroup::<BoxError>::scope(|tg| async move {
        tg.spawn(async { std::future::pending::<Result<(), BoxError>>().await })?;
        tg.spawn(async {
            sleep(Duration::from_secs(3600)).await;
            Ok(())
        })?;
        let c2 = c.clone();
        tg.spawn(on_cancel(
            async {
                sleep(Duration::from_secs(3600)).await;
                Ok(())
            },
            async move {
                sleep(Duration::from_millis(100)).await;
                c2.fetch_add(1, Ordering::SeqCst);
                Ok(())
            },
        ))?;
        tg.spawn(async {
            sleep(Duration::from_millis(10)).await;
            Err::<(), _>("boom".into())
        })?;
        sleep(Duration::from_secs(3600)).await;
        Ok(())
    })
    .await
    .unwrap_err();
    assert_eq!(err.len(), 1);
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
    assert_eq!(start.elapsed(), Duration::from_millis(110));
}

#[tokio::test(start_paused = true)]
async fn timeout_around_group_is_elapsed() {
    let cleaned = Arc::new(AtomicUsize::new(0));
    let c = cleaned.clone();
    let r = timeout(
        Duration::from_millis(50),
        TaskGroup::<BoxError>::scope(|tg| async move {
            for _ in 0..3 {
                let c = c.clone();
                tg.spawn(on_cancel(
                    async {
                        sleep(Duration::from_secs(3600)).await;
                        Ok(())
                    },
                    async move {
                        sleep(Duration::from_millis(5)).await;
                        c.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    },
                ))?;
            }
            Ok(())
        }),
    )
    .await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(cleaned.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_thread_failure() {
    let err = TaskGroup::<BoxError>::scope(|tg| async move {
        for _ in 0..100 {
            tg.spawn(async {
                sleep(Duration::from_secs(3600)).await;
                Ok(())
            })?;
        }
        tg.spawn(async {
            sleep(Duration::from_millis(10)).await;
            Err::<(), _>("boom".into())
        })?;
        Ok(())
    })
    .await
    .unwrap_err();
    assert_eq!(err.len(), 1);
}
