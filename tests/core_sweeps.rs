//! Cancel-at-every-await sweeps for the timeout, shield and `on_cancel` combinators.
//!
//! The future under test stops at each of its await points until a controller lets it
//! through. For every point `k`, one run has the controller cancel instead of letting it
//! through at `k` (by moving a timeout's deadline to now, or by cancelling the group), then
//! checks what ran, what was cleaned up and what was returned. A final run cancels nothing.
//! Because the controller decides, the sweep is exact on both runtimes.

use std::sync::Arc;

use aio::{BoxError, TaskGroup, on_cancel, shield, timeout};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use crate::support::*;

/// The await points of the future under test.
#[derive(Clone)]
struct Stepper {
    at: Arc<watch::Sender<Option<usize>>>,
    go: watch::Receiver<usize>,
    log: Log,
}

/// Decides, at each await point, whether to let the future through or to cancel it.
struct Controller {
    at: watch::Receiver<Option<usize>>,
    go: watch::Sender<usize>,
}

fn stepper() -> (Stepper, Controller) {
    let (at_tx, at_rx) = watch::channel(None);
    let (go_tx, go_rx) = watch::channel(0);
    (
        Stepper {
            at: Arc::new(at_tx),
            go: go_rx,
            log: Log::new(),
        },
        Controller {
            at: at_rx,
            go: go_tx,
        },
    )
}

impl Stepper {
    /// Await point `n`: say we are here, wait to be let through, record that we passed.
    async fn point(&self, n: usize, name: &str) {
        self.at.send_replace(Some(n));
        let mut go = self.go.clone();
        if go.wait_for(|go| *go > n).await.is_err() {
            // The controller stopped here: only a cancellation gets us out.
            std::future::pending::<()>().await;
        }
        self.log.push(name);
    }
}

impl Controller {
    /// Lets the future through points `0..k`; at `k` calls `cancel`. From then on it lets
    /// through only the points that `shielded` names (the cancellation does not reach them,
    /// so they must be able to finish) and stops at the first one that is not: the
    /// cancellation drops the future there. `k == None` lets everything through.
    ///
    /// Run it outside the group under test, so the group's cancellation does not stop it.
    async fn run(
        mut self,
        k: Option<usize>,
        shielded: impl Fn(usize) -> bool,
        cancel: impl FnOnce(),
    ) {
        let Some(k) = k else {
            self.go.send_replace(usize::MAX);
            return;
        };
        for n in 0..k {
            self.at.wait_for(|at| *at == Some(n)).await.unwrap();
            self.go.send_replace(n + 1);
        }
        self.at.wait_for(|at| *at == Some(k)).await.unwrap();
        cancel();
        let mut n = k;
        while shielded(n) {
            self.go.send_replace(n + 1);
            // The future goes on to the next point, unless the shield was its last await.
            if self.at.wait_for(|at| *at == Some(n + 1)).await.is_err() {
                return;
            }
            n += 1;
        }
    }
}

const WORK_POINTS: usize = 4;

/// Work with four await points, and cleanup with two, under `on_cancel`.
async fn work(s: Stepper) -> Result<&'static str, BoxError> {
    let cleanup = s.clone();
    on_cancel(
        async move {
            for n in 0..WORK_POINTS {
                s.point(n, &format!("work {n}")).await;
            }
            Ok("finished")
        },
        move |_| async move {
            cleanup.log.push("cleanup started");
            sleep(ms(1)).await;
            cleanup.log.push("cleanup finished");
            Ok(())
        },
    )
    .await
}

spec! {
    /// A timeout whose deadline arrives at each await point of `on_cancel` work in turn:
    /// the work stops exactly there, its cleanup runs to the end, the timeout reports
    /// `Elapsed`; with no deadline the work's value comes through.
    async fn timeout_expiring_at_every_await() {
        for k in (0..WORK_POINTS).map(Some).chain([None]) {
            let (s, controller) = stepper();
            let log = s.log.clone();
            let fut = timeout(FOREVER, work(s));
            let handle = fut.handle();
            let control = tokio::spawn(
                controller.run(k, |_| false, move || handle.reschedule(Instant::now()).unwrap()),
            );
            let r = fut.await;
            control.await.unwrap();
            let passed: Vec<String> = (0..k.unwrap_or(WORK_POINTS)).map(|n| format!("work {n}")).collect();
            let mut expected = passed.clone();
            match k {
                Some(_) => {
                    assert!(r.is_err(), "k={k:?}: {r:?}");
                    expected.extend(["cleanup started".into(), "cleanup finished".into()]);
                }
                None => assert_eq!(r.unwrap().unwrap(), "finished"),
            }
            assert_eq!(log.events(), expected, "k={k:?}");
        }
    }
}

spec! {
    /// A group cancelled while one of its tasks is at each await point in turn, where points
    /// 2 to 4 are inside a shield: before the shield the task stops at once; inside it the
    /// shielded steps all finish, the code after the shield runs, and the task stops at its
    /// next await; after the shield it stops where it is.
    async fn shield_cancelled_at_every_await() {
        const POINTS: usize = 7;
        for k in (0..POINTS).map(Some).chain([None]) {
            let (s, controller) = stepper();
            let log = s.log.clone();
            let r = TaskGroup::<BoxError>::scope(|tg| async move {
                let group = tg.clone();
                let shielded = |n| (2..=4).contains(&n);
                tokio::spawn(controller.run(k, shielded, move || group.cancel()));
                tg.spawn(async move {
                    s.point(0, "before 0").await;
                    s.point(1, "before 1").await;
                    shield(async {
                        s.point(2, "shielded 2").await;
                        s.point(3, "shielded 3").await;
                        s.point(4, "shielded 4").await;
                    })
                    .await;
                    s.log.push("after the shield");
                    s.point(5, "after 5").await;
                    s.point(6, "after 6").await;
                    Ok(())
                })?;
                Ok(())
            })
            .await;
            let all = [
                "before 0", "before 1", "shielded 2", "shielded 3", "shielded 4",
                "after the shield", "after 5", "after 6",
            ];
            let expected: Vec<&str> = match k {
                None => all.to_vec(),
                Some(k) if k < 2 => all[..k].to_vec(),
                Some(_k @ 2..=4) => all[..6].to_vec(),
                Some(k) => all[..k + 1].to_vec(),
            };
            assert_eq!(log.events(), expected, "k={k:?}");
            // The body returned before the cancellation: `cancel()` keeps its value.
            assert!(r.is_ok(), "k={k:?}");
        }
    }
}

spec! {
    /// `on_cancel` work cancelled at each await point in turn, with a cleanup that has await
    /// points of its own: the cleanup always runs every step, even though the scope stays
    /// cancelled while it does.
    async fn on_cancel_cancelled_at_every_await() {
        for k in (0..WORK_POINTS).map(Some).chain([None]) {
            let (s, controller) = stepper();
            let log = s.log.clone();
            let r = TaskGroup::<BoxError>::scope(|tg| async move {
                let group = tg.clone();
                tokio::spawn(controller.run(k, |_| false, move || group.cancel()));
                let cleanup = s.clone();
                let out = on_cancel(
                    async move {
                        for n in 0..WORK_POINTS {
                            s.point(n, &format!("work {n}")).await;
                        }
                        Ok::<_, BoxError>("finished")
                    },
                    move |_| async move {
                        assert!(!aio::is_cancelled(), "cleanup runs shielded");
                        for n in 0..3u64 {
                            sleep(ms(n)).await;
                            cleanup.log.push(format!("cleanup {n}"));
                        }
                        Ok(())
                    },
                )
                .await;
                Ok(out)
            })
            .await;
            let mut expected: Vec<String> =
                (0..k.unwrap_or(WORK_POINTS)).map(|n| format!("work {n}")).collect();
            match k {
                Some(_) => {
                    expected.extend((0..3).map(|n| format!("cleanup {n}")));
                    // The body got the cancellation back from `on_cancel` and returned it
                    // as a value, so the group returns that value.
                    let out = r.unwrap();
                    assert!(aio::CancelError::as_cancelled(&out.unwrap_err()).is_some());
                }
                None => assert_eq!(r.unwrap().unwrap(), "finished"),
            }
            assert_eq!(log.events(), expected, "k={k:?}");
        }
    }
}
