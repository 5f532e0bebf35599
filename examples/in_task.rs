//! Fan-out inside one task: `aio::in_task::{gather, gather_settled, race, race_ok}`, the
//! request handler's tools. Nothing is spawned, so the futures borrow the request and the
//! handler's connection, and their outputs may differ in type.
//!
//! 1. A handler gathers a profile, orders and recommendations for one request, borrowing
//!    it, under a deadline: a tuple of three different types comes back.
//! 2. When one call fails, the others are dropped before `gather` returns: no work goes on
//!    behind the handler's back, and nothing is reaped or logged.
//! 3. `race` asks two replicas and keeps the first answer; the slower call is dropped.
//! 4. `race_ok` tries mirrors until one succeeds; if all fail, every error comes back, in
//!    the order the mirrors were given.
//! 5. When the handler's deadline passes, the cancellation reaches every call: each one's
//!    `on_cancel` cleanup runs to its end before the timeout reports.
//!
//! Run it with `cargo run --example in_task`.
//!
//! It mirrors:
//!
//! ```python
//! async def handler(request, db):
//!     async with asyncio.timeout(2):
//!         profile, orders, recs = await asyncio.gather(
//!             db.profile(request.user), db.orders(request.user), recommend(request))
//!
//! done, pending = await asyncio.wait(replicas, return_when=asyncio.FIRST_COMPLETED)
//! for task in pending:
//!     task.cancel()
//! ```

use std::cell::{Cell, RefCell};
use std::time::Duration;

use aio::{BoxError, in_task, on_cancel, timeout};
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

struct Request {
    user: u32,
    path: String,
}

/// The handler's connection: not `Sync`, and borrowed by every call. It counts the queries
/// in flight, and the most there were at once.
#[derive(Default)]
struct Db {
    queries: RefCell<Vec<String>>,
    in_flight: Cell<usize>,
    peak: Cell<usize>,
}

impl Db {
    fn started(&self) {
        self.in_flight.set(self.in_flight.get() + 1);
        self.peak.set(self.peak.get().max(self.in_flight.get()));
    }

    async fn query(&self, what: &str, user: u32, takes: u64) -> Result<String, BoxError> {
        self.queries.borrow_mut().push(format!("{what}({user})"));
        self.started();
        sleep(ms(takes)).await;
        self.in_flight.set(self.in_flight.get() - 1);
        if what == "broken" {
            return Err(format!("{what}({user}) failed").into());
        }
        Ok(format!("{what} of user {user}"))
    }

    async fn order_count(&self, user: u32) -> Result<usize, BoxError> {
        self.queries.borrow_mut().push(format!("orders({user})"));
        self.started();
        sleep(ms(15)).await;
        self.in_flight.set(self.in_flight.get() - 1);
        Ok(user as usize % 5)
    }
}

async fn recommend(request: &Request) -> Result<Vec<&str>, BoxError> {
    sleep(ms(5)).await;
    Ok(vec![request.path.as_str(), "/bestsellers"])
}

pub(crate) fn main() {
    aio::run(async {
        gather_for_a_request().await;
        one_call_fails().await;
        first_replica_wins().await;
        mirrors().await;
        deadline_reaches_every_call().await;
    });
}

async fn gather_for_a_request() {
    println!("== 1. a handler gathers three calls that borrow the request");
    let request = Request {
        user: 7,
        path: "/shoes".into(),
    };
    let db = Db::default();
    let (profile, orders, recommendations) = timeout(
        Duration::from_secs(2),
        in_task::gather((
            db.query("profile", request.user, 10),
            db.order_count(request.user),
            recommend(&request),
        )),
    )
    .await
    .expect("well within the deadline")
    .expect("no call fails");
    println!("   {profile}, {orders} orders, recommended {recommendations:?}");
    println!(
        "   {} queries on one connection, {} of them in flight at once",
        db.queries.borrow().len(),
        db.peak.get()
    );
    assert_eq!(profile, "profile of user 7");
    assert_eq!(orders, 2);
    assert_eq!(recommendations, ["/shoes", "/bestsellers"]);
    assert_eq!(db.queries.borrow().len(), 2);
    assert_eq!(db.peak.get(), 2, "the calls ran concurrently");
}

async fn one_call_fails() {
    println!("== 2. one call fails: the others are dropped before gather returns");
    let db = Db::default();
    let slow_finished = RefCell::new(false);
    let slow = async {
        let profile = db.query("profile", 1, 60_000).await;
        *slow_finished.borrow_mut() = true;
        profile
    };
    let r = in_task::gather((slow, db.query("broken", 1, 5))).await;
    let error = r.expect_err("the broken call fails");
    println!("   gather returned: {error}");
    println!(
        "   the slow call finished: {} (it was dropped)",
        slow_finished.borrow()
    );
    assert_eq!(error.to_string(), "broken(1) failed");
    assert!(!*slow_finished.borrow());
}

async fn first_replica_wins() {
    println!("== 3. race: the first replica to answer wins");
    let db = Db::default();
    let answer = in_task::race((
        db.query("replica-a", 3, 5_000),
        db.query("replica-b", 3, 10),
    ))
    .await
    .expect("replica-b answers");
    println!("   {answer}; replica-a was dropped");
    assert_eq!(answer, "replica-b of user 3");
}

async fn mirrors() {
    println!("== 4. race_ok: the first mirror that succeeds, else every error in order");
    let db = Db::default();
    let mirror = |name: &'static str, takes| {
        let db = &db;
        async move {
            if name.ends_with("down") {
                sleep(ms(takes)).await;
                return Err(format!("{name} is down"));
            }
            db.query(name, 9, takes).await.map_err(|e| e.to_string())
        }
    };
    let won = in_task::race_ok(vec![
        mirror("eu-down", 1),
        mirror("us", 10),
        mirror("asia", 5_000),
    ])
    .await;
    println!("   {won:?}");
    assert_eq!(won.as_deref(), Ok("us of user 9"));
    let lost = in_task::race_ok(vec![mirror("eu-down", 9), mirror("us-down", 1)]).await;
    println!("   all down: {lost:?}");
    assert_eq!(
        lost.unwrap_err(),
        ["eu-down is down", "us-down is down"],
        "in the order given, not the order they failed"
    );
}

async fn deadline_reaches_every_call() {
    println!("== 5. the handler's deadline passes: every call cleans up");
    let cleaned = RefCell::new(Vec::new());
    let call = |name: &'static str, cleanup_takes| {
        let cleaned = &cleaned;
        on_cancel(
            async move {
                sleep(Duration::from_secs(60)).await;
                Ok::<_, BoxError>(name)
            },
            move |_| async move {
                sleep(ms(cleanup_takes)).await; // release a connection, roll back
                cleaned.borrow_mut().push(name);
                Ok(())
            },
        )
    };
    let r = timeout(
        ms(20),
        in_task::gather((call("payment", 10), call("inventory", 5))),
    )
    .await;
    let mut cleaned = cleaned.into_inner();
    cleaned.sort();
    println!("   timeout: {r:?}; cleaned up: {cleaned:?}");
    assert!(r.is_err());
    assert_eq!(cleaned, ["inventory", "payment"]);
}
