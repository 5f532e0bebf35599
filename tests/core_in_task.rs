//! The gather family inside the calling task (`aio::in_task`): `gather`, `gather_settled`,
//! `race` and `race_ok` over tuples of mixed types and over `Vec`s, without spawning.
//!
//! The rules: futures may borrow and need not be `Send`; the first failure or the winner
//! drops every other future before the combinator returns; a cancellation of the caller's
//! scope reaches every future; dropping the combinator drops them all at once; a `Vec` polls
//! only the futures that were woken.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use aio::{BoxError, TaskGroup, in_task, on_cancel, timeout};

use tokio::time::{Instant, sleep};

use crate::support::*;

/// A future that records its drop in `log` under `name`, then runs `fut`.
async fn logged<T>(log: Log, name: &'static str, fut: impl Future<Output = T>) -> T {
    struct OnDrop(Log, &'static str);
    impl Drop for OnDrop {
        fn drop(&mut self) {
            self.0.push(format!("{} dropped", self.1));
        }
    }
    let _guard = OnDrop(log, name);
    fut.await
}

spec! {
    /// The futures run concurrently in the caller's task: they may borrow the caller's
    /// state (even mutably, one each) and hold what is not `Send`, and their outputs may
    /// differ in type.
    async fn futures_may_borrow_and_need_not_be_send() {
        let start = Instant::now();
        let name = String::from("request 7");
        let mut hits = 0u32;
        let local = Rc::new(RefCell::new(Vec::new()));
        let (len, (), n) = in_task::gather((
            async {
                sleep(ms(10)).await;
                Ok::<_, BoxError>(name.len())
            },
            async {
                local.borrow_mut().push(1);
                sleep(ms(10)).await;
                Ok(())
            },
            async {
                hits += 1;
                sleep(ms(10)).await;
                Ok(hits)
            },
        ))
        .await
        .unwrap();
        assert_eq!((len, n, local.borrow().len()), (9, 1, 1));
        assert_elapsed(start, ms(10));
    }
}

spec! {
    /// `gather`: the first failure drops every other future before `gather` returns, and is
    /// returned as it is; the values come back in the order given otherwise.
    async fn the_first_failure_drops_the_rest_at_once() {
        let log = Log::new();
        let r = in_task::gather((
            logged(log.clone(), "slow", async {
                sleep(FOREVER).await;
                Ok::<u8, &str>(1)
            }),
            logged(log.clone(), "failing", async {
                sleep(ms(5)).await;
                Err::<(), _>("boom")
            }),
        ))
        .await;
        log.push("returned");
        assert_eq!(r, Err("boom"));
        assert_eq!(log.events(), ["failing dropped", "slow dropped", "returned"]);

        let values = (1..=4u64)
            .map(|n| async move {
                sleep(ms(10 - 2 * n)).await;
                Ok::<_, BoxError>(n * n)
            })
            .collect::<Vec<_>>();
        assert_eq!(in_task::gather(values).await.unwrap(), [1, 4, 9, 16]);

        let log = Log::new();
        let failing = (0..3)
            .map(|n| {
                logged(log.clone(), ["a", "b", "c"][n], async move {
                    sleep(if n == 1 { ms(5) } else { FOREVER }).await;
                    if n == 1 { Err(n) } else { Ok(n) }
                })
            })
            .collect::<Vec<_>>();
        assert_eq!(in_task::gather(failing).await, Err(1));
        log.push("returned");
        let events = log.events();
        assert_eq!(events.len(), 4, "{events:?}");
        assert_eq!(events[3], "returned");
    }
}

spec! {
    /// `gather_settled` waits for every future and returns every output in the order given,
    /// errors included.
    async fn gather_settled_returns_every_output_in_order() {
        let (a, b, c) = in_task::gather_settled((
            async {
                sleep(ms(3)).await;
                Err::<u8, _>("a failed")
            },
            async {
                sleep(ms(1)).await;
                "b"
            },
            async { 3.5 },
        ))
        .await;
        assert_eq!((a, b, c), (Err("a failed"), "b", 3.5));
        let outputs = in_task::gather_settled(
            (0..5u64)
                .map(|n| async move {
                    sleep(ms(5 - n)).await;
                    n
                })
                .collect::<Vec<_>>(),
        )
        .await;
        assert_eq!(outputs, [0, 1, 2, 3, 4]);
    }
}

spec! {
    /// `race`: the first future to finish wins whatever its output, and the losers are
    /// dropped before `race` returns; of futures ready at the same poll, the first given wins.
    async fn the_first_to_finish_wins_and_the_losers_are_dropped_at_once() {
        let log = Log::new();
        let winner = in_task::race((
            logged(log.clone(), "slow", async {
                sleep(FOREVER).await;
                Ok("slow")
            }),
            logged(log.clone(), "fast", async {
                sleep(ms(10)).await;
                Err("fast failed")
            }),
        ))
        .await;
        log.push("returned");
        assert_eq!(winner, Err("fast failed"));
        assert_eq!(log.events(), ["fast dropped", "slow dropped", "returned"]);

        assert_eq!(in_task::race((async { 1 }, async { 2 })).await, 1);
        let ready = vec![std::future::ready(1), std::future::ready(2)];
        assert_eq!(in_task::race(ready).await, Some(1));
        let nothing: Vec<std::future::Ready<u8>> = Vec::new();
        assert_eq!(in_task::race(nothing).await, None);
    }
}

spec! {
    /// `race_ok`: the first success wins and the rest are dropped; if every future fails,
    /// every error comes back in the order the futures were given, not the order they
    /// failed in.
    async fn race_ok_returns_the_first_success_or_every_error_in_order() {
        let mirror = |n: u64, ok: bool| async move {
            sleep(ms(10 - n)).await;
            if ok { Ok(n) } else { Err(format!("mirror {n} down")) }
        };
        assert_eq!(in_task::race_ok((mirror(1, false), mirror(2, true), mirror(3, false))).await, Ok(2));
        let down = in_task::race_ok(vec![mirror(1, false), mirror(2, false), mirror(3, false)]).await;
        assert_eq!(down.unwrap_err(), ["mirror 1 down", "mirror 2 down", "mirror 3 down"]);
        let down = in_task::race_ok((mirror(3, false), mirror(1, false))).await;
        assert_eq!(down.unwrap_err(), ["mirror 3 down", "mirror 1 down"]);
        let nothing: Vec<std::future::Ready<Result<u8, String>>> = Vec::new();
        assert_eq!(in_task::race_ok(nothing).await, Err(Vec::new()));
    }
}

spec! {
    /// A cancellation of the scope around the caller reaches every future: each runs its
    /// cleanup, and the caller's timeout reports `Elapsed`.
    async fn a_cancellation_of_the_callers_scope_reaches_every_future() {
        let log = Log::new();
        // Each cleanup awaits, and the second takes longer than the first.
        let cleanup = |name: &'static str, takes: u64| {
            let log = log.clone();
            on_cancel(sleep_forever::<()>(), move |_| async move {
                sleep(ms(takes)).await;
                log.push(format!("{name} cleaned up"));
                Ok(())
            })
        };
        let start = Instant::now();
        let r = timeout(ms(10), in_task::gather((cleanup("a", 1), cleanup("b", 5)))).await;
        assert!(r.is_err(), "{r:?}");
        let r = timeout(ms(10), in_task::race((cleanup("c", 1), cleanup("d", 5)))).await;
        assert!(r.is_err(), "{r:?}");
        let r = timeout(ms(10), in_task::race_ok(vec![cleanup("e", 1), cleanup("f", 5)])).await;
        assert!(r.is_err(), "{r:?}");
        let r = timeout(ms(10), in_task::gather(vec![cleanup("g", 1), cleanup("h", 5)])).await;
        assert!(r.is_err(), "{r:?}");
        let mut events = log.events();
        events.sort();
        assert_eq!(
            events,
            [
                "a cleaned up",
                "b cleaned up",
                "c cleaned up",
                "d cleaned up",
                "e cleaned up",
                "f cleaned up",
                "g cleaned up",
                "h cleaned up"
            ]
        );
        assert_elapsed(start, ms(60));

        let seen = Log::new();
        let s = seen.clone();
        let _ = TaskGroup::<BoxError>::scope(|tg| async move {
            let (a, b) = in_task::gather_settled((
                async {
                    tg.cancel();
                    aio::is_cancelled()
                },
                async { aio::is_cancelled() },
            ))
            .await;
            s.push(format!("{a} {b}"));
            Ok(())
        })
        .await;
        assert_eq!(seen.events(), ["true true"]);
    }
}

spec! {
    /// Dropping the combinator drops every future it runs, synchronously: nothing keeps
    /// running and nothing is reaped in the background.
    async fn dropping_the_combinator_drops_every_future_at_once() {
        let log = Log::new();
        let mut race = Box::pin(in_task::race((
            logged(log.clone(), "a", sleep(FOREVER)),
            logged(log.clone(), "b", sleep(FOREVER)),
        )));
        let pending = std::future::poll_fn(|cx| Poll::Ready(race.as_mut().poll(cx).is_pending()));
        assert!(pending.await);
        drop(race);
        assert_eq!(log.events(), ["a dropped", "b dropped"]);

        let log = Log::new();
        let mut gather = Box::pin(in_task::gather(
            (0..3)
                .map(|_| logged(log.clone(), "one", async {
                    sleep(FOREVER).await;
                    Ok::<(), BoxError>(())
                }))
                .collect::<Vec<_>>(),
        ));
        let pending = std::future::poll_fn(|cx| Poll::Ready(gather.as_mut().poll(cx).is_pending()));
        assert!(pending.await);
        drop(gather);
        assert_eq!(log.events().len(), 3);
    }
}

/// A future that is ready once it has been woken, counting its polls.
struct WokenOnce {
    polls: Counter,
    woken: Rc<RefCell<Option<std::task::Waker>>>,
    fired: Rc<RefCell<bool>>,
}

impl Future for WokenOnce {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.polls.incr();
        if *self.fired.borrow() {
            return Poll::Ready(());
        }
        *self.woken.borrow_mut() = Some(cx.waker().clone());
        Poll::Pending
    }
}

/// A `Vec` of futures polls again only the one that was woken, so that `n` futures woken
/// one at a time cost `2n` polls, not `n²`.
#[tokio::test(flavor = "current_thread")]
async fn a_vec_polls_only_the_futures_that_were_woken() {
    const N: usize = 200;
    let polls = Counter::new();
    let branches: Vec<_> = (0..N)
        .map(|_| WokenOnce {
            polls: polls.clone(),
            woken: Rc::new(RefCell::new(None)),
            fired: Rc::new(RefCell::new(false)),
        })
        .collect();
    let handles: Vec<_> = branches
        .iter()
        .map(|b| (Rc::clone(&b.woken), Rc::clone(&b.fired)))
        .collect();
    let mut gather = Box::pin(in_task::gather_settled(branches));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    assert!(gather.as_mut().poll(&mut cx).is_pending());
    assert_eq!(polls.get(), N);
    for (i, (woken, fired)) in handles.iter().enumerate() {
        *fired.borrow_mut() = true;
        woken.borrow_mut().take().unwrap().wake();
        let done = gather.as_mut().poll(&mut cx).is_ready();
        assert_eq!(done, i == N - 1);
    }
    assert_eq!(polls.get(), 2 * N);
}

/// Polls `fut` once, from inside an `.await`.
async fn poll_once<F: Future>(mut fut: Pin<&mut F>) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await
}

/// Runs `fut` until one of its futures has ended while its scope was cancelled with a shield
/// alive in it, then leaves the scope, and awaits `fut` outside: what it returns.
async fn decided_while_unwinding<F: Future>(mut fut: Pin<&mut F>) -> F::Output {
    let _ = TaskGroup::<BoxError>::scope(|tg| {
        let mut fut = fut.as_mut();
        async move {
            let mut unwinding = std::pin::pin!(aio::shield(sleep(FOREVER)));
            assert!(poll_once(unwinding.as_mut()).await.is_pending());
            assert!(poll_once(fut.as_mut()).await.is_pending());
            tg.cancel();
            for _ in 0..3 {
                assert!(
                    poll_once(fut.as_mut()).await.is_pending(),
                    "held while unwinding"
                );
            }
            Ok(())
        }
    })
    .await;
    fut.await
}

async fn ok_after_yield() -> Result<u32, u32> {
    tokio::task::yield_now().await;
    Ok(1)
}

async fn err_after_yield() -> Result<u32, u32> {
    tokio::task::yield_now().await;
    Err(9)
}

type Boxed = Pin<Box<dyn Future<Output = Result<u32, u32>> + Send>>;

fn boxed(fut: impl Future<Output = Result<u32, u32>> + Send + 'static) -> Boxed {
    Box::pin(fut)
}

spec! {
    /// A failure or a winner that came while the scope unwound is held, not lost: awaited
    /// again once nothing unwinds (here, outside the scope), the combinator returns it
    /// instead of waiting for the futures that are still pending.
    async fn a_decision_held_while_unwinding_is_returned_once_nothing_unwinds() {
        use std::future::pending;
        use std::pin::pin;
        let r = decided_while_unwinding(pin!(in_task::race((ok_after_yield(), pending())))).await;
        assert_eq!(r, Ok(1));
        let r = decided_while_unwinding(pin!(in_task::race_ok((ok_after_yield(), pending())))).await;
        assert_eq!(r, Ok(1));
        let r = decided_while_unwinding(pin!(in_task::gather((err_after_yield(), pending::<Result<u32, u32>>())))).await;
        assert_eq!(r, Err(9));
        let r = decided_while_unwinding(pin!(in_task::race(vec![boxed(ok_after_yield()), boxed(pending())]))).await;
        assert_eq!(r, Some(Ok(1)));
        let r = decided_while_unwinding(pin!(in_task::race_ok(vec![boxed(ok_after_yield()), boxed(pending())]))).await;
        assert_eq!(r, Ok(1));
        let r = decided_while_unwinding(pin!(in_task::gather(vec![boxed(err_after_yield()), boxed(pending())]))).await;
        assert_eq!(r, Err(9));
    }
}

/// With nothing unwinding, a cancelled scope holds nothing back: a future that ends at the
/// same instant as the timeout around the combinator still decides it, and the timeout
/// returns that output.
#[tokio::test(start_paused = true)]
async fn a_decision_at_the_deadline_is_returned_when_nothing_unwinds() {
    let at_10ms = || async {
        sleep(ms(10)).await;
        Ok::<u32, u32>(1)
    };
    let pending = std::future::pending::<Result<u32, u32>>;
    let r = timeout(ms(10), in_task::race_ok((at_10ms(), pending()))).await;
    assert_eq!(r, Ok(Ok(1)));
    let r = timeout(
        ms(10),
        in_task::race(vec![boxed(at_10ms()), boxed(pending())]),
    )
    .await;
    assert_eq!(r, Ok(Some(Ok(1))));
}
