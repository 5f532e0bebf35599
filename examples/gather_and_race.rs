//! The gather family: `gather`, `gather_settled`, `as_completed`, `race`, `race_ok` and
//! `wait`. Each runs its futures as tasks of a group of its own, so nothing it starts can
//! outlive it, and every task it gives up on is cancelled *and awaited*.
//!
//! 1. `gather` returns the values in the order the futures were given, not the order they
//!    finished, and takes as long as the slowest.
//! 2. When a call fails, `gather` cancels the others (their `on_cancel` cleanup runs) and
//!    reports *every* failure. asyncio's `gather` differs here: it raises the first
//!    exception and leaves the other awaitables running, unobserved, and a second failure
//!    is lost.
//! 3. `gather_settled` is `return_exceptions=True`: every outcome in its place, and a
//!    failure cancels nothing.
//! 4. `as_completed` is a `futures::Stream` of outputs in the order they finish.
//! 5. `race`: three mirrors serve the same file; the fastest wins, and the two losers are
//!    cancelled and their cleanup awaited before `race` returns.
//! 6. `race_ok`: happy eyeballs; failures do not stop the race, the first success wins, and
//!    when every attempt fails the error lists every failure, in the order they happened.
//! 7. `wait(&mut handles, ReturnWhen::FirstCompleted)` hands back the finished handles and
//!    leaves the pending ones running in their group, where one of them is cancelled
//!    through its handle.
//!
//! Run it with `cargo run --example gather_and_race`.
//!
//! It mirrors:
//!
//! ```python
//! profile, orders, recs = await asyncio.gather(get("profile"), get("orders"), get("recs"))
//! outcomes = await asyncio.gather(*calls, return_exceptions=True)
//!
//! for next_done in asyncio.as_completed(jobs):
//!     print(await next_done)
//!
//! done, pending = await asyncio.wait(mirrors, return_when=asyncio.FIRST_COMPLETED)
//! for task in pending:
//!     task.cancel()                 # race(): cancel the losers, and wait for them
//! await asyncio.gather(*pending, return_exceptions=True)
//!
//! async with asyncio.TaskGroup() as tg:
//!     tasks = [tg.create_task(query(replica)) for replica in replicas]
//!     done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
//!     # the pending tasks still belong to tg, which waits for them
//!     tasks[2].cancel()             # all but one
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, RaceError, ReturnWhen, TaskGroup, TaskState, on_cancel};
use futures::StreamExt;
use tokio::sync::Barrier;
use tokio::time::{Instant, sleep, sleep_until};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What happened, in order, with the time it happened.
#[derive(Clone)]
struct Log {
    start: Instant,
    events: Arc<Mutex<Vec<String>>>,
    /// When set, the calls that fail wait for each other here, so that failures due at the
    /// same instant happen together.
    fail_together: Option<Arc<Barrier>>,
}

impl Log {
    fn new() -> Log {
        Log {
            start: Instant::now(),
            events: Arc::default(),
            fail_together: None,
        }
    }

    /// A log for `n` calls that fail at the same instant: none of them fails before all are
    /// due, so none is cancelled by another's failure.
    fn failing_together(n: usize) -> Log {
        Log {
            fail_together: Some(Arc::new(Barrier::new(n))),
            ..Log::new()
        }
    }

    fn push(&self, event: impl Into<String>) {
        let event = event.into();
        println!("   {:>3} ms {event}", self.start.elapsed().as_millis());
        self.events.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }

    fn at(&self, after: u64) -> Instant {
        self.start + ms(after)
    }
}

/// A pretend remote call to `what`: it answers at `log.at(after)`, or fails with `error`
/// then. Cancelled before that, it closes its connection, which takes a round trip, and
/// notes it.
async fn call(
    log: Log,
    what: &'static str,
    after: u64,
    error: Option<&'static str>,
) -> Result<String, BoxError> {
    let answer_at = log.at(after);
    let closing = log.clone();
    on_cancel(
        async move {
            sleep_until(answer_at).await; // the network
            match error {
                None => Ok(format!("{what}: 200 OK")),
                Some(error) => {
                    if let Some(together) = &log.fail_together {
                        together.wait().await;
                    }
                    Err(format!("{what}: {error}").into())
                }
            }
        },
        move |_| async move {
            sleep(ms(2)).await; // close the connection: a round trip
            closing.push(format!("{what}: cancelled, connection closed"));
            Ok(())
        },
    )
    .await
}

pub(crate) fn main() {
    aio::run(async {
        gather_in_order().await;
        gather_with_failures().await;
        gather_settled().await;
        as_completed().await;
        race_mirrors().await;
        race_ok_happy_eyeballs().await;
        wait_first_completed().await;
    });
}

async fn gather_in_order() {
    println!("== 1. gather: three calls at once, values in argument order");
    let log = Log::new();
    let values = aio::gather([
        call(log.clone(), "profile", 40, None),
        call(log.clone(), "orders", 10, None),
        call(log.clone(), "recommendations", 30, None),
    ])
    .await
    .expect("no call fails");
    let took = log.start.elapsed();
    println!("   {values:?}");
    println!(
        "   took {} ms: the slowest call, not the sum (80 ms)",
        took.as_millis()
    );
    assert_eq!(
        values,
        [
            "profile: 200 OK",
            "orders: 200 OK",
            "recommendations: 200 OK"
        ]
    );
    assert!(took >= ms(40));
}

async fn gather_with_failures() {
    println!("== 2. gather: two calls fail at 10 ms; the others are cancelled, not orphaned");
    let log = Log::failing_together(2);
    let err = aio::gather([
        call(log.clone(), "profile", 500, None),
        call(log.clone(), "orders", 10, Some("HTTP 503")),
        call(log.clone(), "recommendations", 10, Some("timed out")),
        call(log.clone(), "audit", 2000, None),
    ])
    .await
    .unwrap_err();
    let took = log.start.elapsed();
    println!("   gather returned after {} ms: {err}", took.as_millis());
    let mut failures: Vec<String> = err.iter().map(|f| f.error().to_string()).collect();
    for failure in &failures {
        println!("   - {failure}");
    }
    // Both failures, whichever task reported first.
    failures.sort();
    assert_eq!(failures, ["orders: HTTP 503", "recommendations: timed out"]);
    // The slow calls were cancelled, so the failure did not wait for them; gather waited
    // for their cleanup.
    let mut cleaned = log.events();
    cleaned.sort();
    assert_eq!(
        cleaned,
        [
            "audit: cancelled, connection closed",
            "profile: cancelled, connection closed"
        ]
    );
}

async fn gather_settled() {
    println!("== 3. gather_settled (return_exceptions=True): every outcome, in place");
    let log = Log::new();
    let outcomes = aio::gather_settled([
        call(log.clone(), "profile", 20, None),
        call(log.clone(), "orders", 5, Some("HTTP 503")),
        call(log.clone(), "recommendations", 10, None),
    ])
    .await
    .expect("the caller was not cancelled");
    let shown: Vec<String> = outcomes
        .iter()
        .map(|outcome| match outcome {
            Ok(value) => format!("Ok({value})"),
            Err(e) => format!("Err({e})"),
        })
        .collect();
    for line in &shown {
        println!("   {line}");
    }
    assert_eq!(
        shown,
        [
            "Ok(profile: 200 OK)",
            "Err(orders: HTTP 503)",
            "Ok(recommendations: 200 OK)"
        ]
    );
    assert!(log.events().is_empty(), "the failure cancelled nothing");
}

async fn as_completed() {
    println!("== 4. as_completed: outputs in the order they finish, as a Stream");
    let log = Log::new();
    let mut outputs = aio::as_completed([
        call(log.clone(), "thumbnail-large", 310, None),
        call(log.clone(), "thumbnail-small", 10, None),
        call(log.clone(), "thumbnail-broken", 110, Some("not an image")),
        call(log.clone(), "thumbnail-medium", 210, None),
    ]);
    let mut order = Vec::new();
    while let Some(output) = outputs.next().await {
        let shown = match output {
            Ok(value) => value,
            Err(e) => format!("error: {e}"),
        };
        log.push(format!("next() -> {shown}"));
        order.push(shown);
    }
    assert_eq!(
        order,
        [
            "thumbnail-small: 200 OK",
            "error: thumbnail-broken: not an image",
            "thumbnail-medium: 200 OK",
            "thumbnail-large: 200 OK",
        ]
    );
}

async fn race_mirrors() {
    println!("== 5. race: three mirrors, the fastest wins, the losers are cancelled and awaited");
    let log = Log::new();
    let winner = aio::race([
        call(log.clone(), "mirror-eu", 600, None),
        call(log.clone(), "mirror-us", 10, None),
        call(log.clone(), "mirror-ap", 400, None),
    ])
    .await
    .expect("there were futures to race");
    // A race of fallible futures hands back the winner's own Result.
    let winner = winner.expect("mirror-us answered");
    log.push(format!("race returned: {winner}"));
    assert_eq!(winner, "mirror-us: 200 OK");
    // Both losers had closed their connections before race returned.
    let mut events = log.events();
    assert_eq!(events.pop().unwrap(), "race returned: mirror-us: 200 OK");
    events.sort();
    assert_eq!(
        events,
        [
            "mirror-ap: cancelled, connection closed",
            "mirror-eu: cancelled, connection closed"
        ]
    );
}

async fn race_ok_happy_eyeballs() {
    println!("== 6. race_ok: the first success wins; failures do not stop the race");
    let log = Log::new();
    let connected = aio::race_ok([
        call(
            log.clone(),
            "[2001:db8::1]:443",
            5,
            Some("connection refused"),
        ),
        call(log.clone(), "192.0.2.7:443", 15, None),
        call(log.clone(), "192.0.2.8:443", 600, None),
    ])
    .await
    .expect("one address answers");
    log.push(format!("race_ok returned: {connected}"));
    assert_eq!(connected, "192.0.2.7:443: 200 OK");
    assert!(log.events()[0].starts_with("192.0.2.8:443: cancelled"));

    println!("   every address refuses:");
    let log = Log::new();
    let err = aio::race_ok([
        call(
            log.clone(),
            "192.0.2.9:443",
            210,
            Some("connection refused"),
        ),
        call(
            log.clone(),
            "[2001:db8::1]:443",
            10,
            Some("no route to host"),
        ),
        call(
            log.clone(),
            "192.0.2.7:443",
            110,
            Some("connection refused"),
        ),
    ])
    .await
    .unwrap_err();
    println!("   {err}");
    let failures = err.failures().expect("every attempt failed");
    let errors: Vec<String> = failures.iter().map(|f| f.error().to_string()).collect();
    for error in &errors {
        println!("   - {error}");
    }
    assert_eq!(
        errors,
        [
            "[2001:db8::1]:443: no route to host",
            "192.0.2.7:443: connection refused",
            "192.0.2.9:443: connection refused",
        ],
        "in the order they happened"
    );
    assert!(matches!(err, RaceError::AllFailed(_)));
}

async fn wait_first_completed() {
    println!("== 7. wait(FirstCompleted): use the first answer; the others run on in the group");
    let log = Log::new();
    let l = log.clone();
    let (first, rest) = TaskGroup::<BoxError>::scope(|tg| async move {
        let mut pending = vec![
            tg.spawn_named("replica-1", call(l.clone(), "replica-1", 150, None))?,
            tg.spawn_named("primary", call(l.clone(), "primary", 10, None))?,
            tg.spawn_named("replica-2", call(l.clone(), "replica-2", 120, None))?,
        ];
        let done = aio::wait(&mut pending, ReturnWhen::FirstCompleted).await;
        assert_eq!(done.len(), 1);
        let first = done.into_iter().next().unwrap();
        let name = first.name().unwrap_or("?").to_string();
        let answer = first.result()?;
        l.push(format!("first answer, from {name}: {answer}"));
        // Still running, still owned by the group: nothing was cancelled. (The primary's
        // task may be a moment from leaving the group's list.)
        let names: Vec<&str> = pending.iter().filter_map(|h| h.name()).collect();
        let states: Vec<TaskState> = tg
            .snapshot()
            .tasks
            .iter()
            .map(|t| t.state)
            .filter(|state| *state != TaskState::Finished)
            .collect();
        l.push(format!("pending: {names:?}; the group's tasks: {states:?}"));
        assert_eq!(names, ["replica-1", "replica-2"]);
        assert!(pending.iter().all(|h| !h.is_finished()));
        assert_eq!(states.len(), 2, "the pending two, still running");
        // One replica is enough to confirm the answer: cancel the other (`task.cancel()`).
        // The group goes on; a cancelled task is not a failure.
        assert!(pending[1].cancel());
        Ok((answer, pending))
    })
    .await
    .expect("no call fails");
    // The scope waited for the pending tasks: how each ended is there to read.
    let rest: Vec<String> = rest
        .into_iter()
        .map(|h| match h.result() {
            Ok(answer) => answer,
            Err(e) => e.to_string(),
        })
        .collect();
    log.push(format!("after the scope: {rest:?}"));
    assert_eq!(first, "primary: 200 OK");
    assert_eq!(rest[0], "replica-1: 200 OK");
    assert!(rest[1].starts_with("the task was cancelled"), "{}", rest[1]);
    assert!(
        log.events()
            .contains(&"replica-2: cancelled, connection closed".to_string())
    );
    assert!(log.start.elapsed() >= ms(150));
}
