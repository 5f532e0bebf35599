//! Rate limiting with a semaphore: twelve requests to a real HTTP server, at most three in
//! flight.
//!
//! The server is axum on a loopback port (`examples/support/http.rs`), the client reqwest.
//! `/api/item/{i}` answers after 5 to 15 ms; item 5 answers 503, and item 9 never answers.
//!
//! 1. `Semaphore::new(3)`: each request takes a permit with `acquire().await` (asyncio's
//!    `async with sem:`) and gives it back when the permit is dropped, however the request
//!    ended: with the item, with the 503, or cut off by its own 100 ms timeout. All twelve
//!    tasks start at once and nine of them wait for a permit. The requests count how many
//!    are in flight and record the most ever seen: exactly three; the server never has more
//!    than three in its handlers. (The first three wait at a gate until all three hold a
//!    permit, so that the limit is reached on every run, however the machine schedules the
//!    tasks; while they wait there, `try_acquire` fails.) Each request's own result is its
//!    task's value, so a failed request cancels no other, as with
//!    `return_exceptions=True`.
//! 2. `BoundedSemaphore` catches a release too many: a pool of two connections, one taken
//!    and given back asyncio's unowned way (`forget()`, then `release()`), then released
//!    once more by mistake. The bounded semaphore refuses, with an error that says why; a
//!    plain `Semaphore` takes the extra permit and silently allows one more request.
//!
//! Semaphore or `TaskGroup::builder().limit(n)` (see `examples/bounded_crawl.rs`)? A
//! limited group caps its own tasks, and a queued task is a future that has never run: a
//! cancelled group just drops it. A semaphore caps whatever acquires it: tasks of several
//! groups, or only the part of a task that needs the scarce resource (the request, not the
//! parsing that follows), and it is what asyncio code already has.
//!
//! Run it with `cargo run --example rate_limit`.
//!
//! It mirrors:
//!
//! ```python
//! sem = asyncio.Semaphore(3)
//!
//! async def fetch(i):
//!     async with sem:                         # at most three requests in here
//!         async with asyncio.timeout(0.1):    # item 9 never answers
//!             r = await client.get(f"/api/item/{i}")
//!         r.raise_for_status()                # item 5 answers 503
//!         return r.text
//!
//! items = await asyncio.gather(*(fetch(i) for i in range(12)), return_exceptions=True)
//!
//! pool = asyncio.BoundedSemaphore(2)
//! await pool.acquire()
//! pool.release()
//! pool.release()    # ValueError: BoundedSemaphore released too many times
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[path = "support/http.rs"]
mod http;

use aio::{BoundedSemaphore, BoxError, Event, Semaphore, TaskGroup};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use http::{Site, Stats, with_server};

/// How many requests there are.
const REQUESTS: usize = 12;
/// How many may be in flight at once.
const LIMIT: usize = 3;
/// The item the server answers with a 503.
const FAILS: usize = 5;
/// The item the server never answers.
const HANGS: usize = 9;
/// How long a request may take.
const TIMEOUT: Duration = Duration::from_millis(100);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How long the server takes for item `i`: 5 to 15 ms, by a fixed formula.
fn latency(i: usize) -> Duration {
    ms(5 + (i as u64 * 7) % 11)
}

// The server.

fn routes(stats: Stats) -> Router {
    Router::new()
        .route("/api/item/{i}", get(item))
        .with_state(stats)
}

async fn item(State(stats): State<Stats>, Path(i): Path<usize>) -> (StatusCode, String) {
    let handling = stats.enter(format!("/api/item/{i}"));
    sleep(latency(i)).await;
    if i == HANGS {
        sleep(Duration::from_secs(3600)).await;
    }
    handling.answered();
    match i {
        FAILS => (
            StatusCode::SERVICE_UNAVAILABLE,
            "down for maintenance".into(),
        ),
        _ => (StatusCode::OK, format!("item {i}")),
    }
}

// The client.

/// What the requests share: the server, the semaphore, and the counts they keep.
struct Client {
    site: Site,
    sem: Semaphore,
    /// Requests holding a permit now.
    in_flight: watch::Sender<usize>,
    /// The most ever in flight at once.
    most: AtomicUsize,
    /// The first requests wait here until the limit is reached.
    gate: Event,
}

impl Client {
    /// `GET /api/item/{i}`, with a permit.
    async fn fetch(&self, i: usize) -> Result<String, BoxError> {
        let _permit = self.sem.acquire().await;
        let mut now = 0;
        self.in_flight.send_modify(|n| {
            *n += 1;
            now = *n;
        });
        self.most.fetch_max(now, Ordering::SeqCst);
        self.gate.wait().await;
        let url = self.site.url(&format!("/api/item/{i}"));
        let reply = aio::timeout(TIMEOUT, get_text(&self.site.client, url)).await;
        self.in_flight.send_modify(|n| *n -= 1);
        reply?
        // `_permit` is dropped here, however the request ended: the next waiting request
        // gets it.
    }
}

async fn get_text(client: &reqwest::Client, url: String) -> Result<String, BoxError> {
    let response = client.get(url).send().await?.error_for_status()?;
    Ok(response.text().await?)
}

pub(crate) fn main() {
    aio::run(async {
        with_server(routes, three_at_a_time).await;
        a_release_too_many().await;
    });
}

async fn three_at_a_time(site: Site) {
    println!("== 1. {REQUESTS} requests, a Semaphore({LIMIT})");
    let client = Arc::new(Client {
        site,
        sem: Semaphore::new(LIMIT),
        in_flight: watch::Sender::new(0),
        most: AtomicUsize::new(0),
        gate: Event::new(),
    });
    let start = Instant::now();
    let responses = TaskGroup::<BoxError>::scope(|tg| {
        let client = &client;
        async move {
            let mut tasks = Vec::new();
            for i in 0..REQUESTS {
                let client = Arc::clone(client);
                // The request's own result is the task's value: a failure cancels no other.
                tasks.push(tg.spawn_named(format!("GET /api/item/{i}"), async move {
                    Ok(client.fetch(i).await)
                })?);
            }
            // Open the gate once three requests hold a permit.
            client
                .in_flight
                .subscribe()
                .wait_for(|n| *n == LIMIT)
                .await?;
            let refused = client.sem.try_acquire().unwrap_err();
            println!(
                "   {LIMIT} requests hold a permit: locked() = {}, available_permits() = {}; \
                 the other {} wait for one, and try_acquire fails: {refused}",
                client.sem.locked(),
                client.sem.available_permits(),
                REQUESTS - LIMIT
            );
            assert!(client.sem.locked());
            assert_eq!(client.sem.available_permits(), 0);
            client.gate.set();
            Ok(tasks)
        }
    })
    .await
    .expect("no request fails");
    let took = start.elapsed();

    let responses: Vec<Result<String, BoxError>> = responses
        .into_iter()
        .map(|t| t.result().expect("every task returns its request's result"))
        .collect();
    let most = client.most.load(Ordering::SeqCst);
    let most_served = client.site.stats.most();
    // How long the requests take, one after another: the one that hangs takes its timeout.
    let takes = |i| if i == HANGS { TIMEOUT } else { latency(i) };
    let one_by_one: Duration = (0..REQUESTS).map(takes).sum();
    let items = responses.iter().filter(|r| r.is_ok()).count();
    println!(
        "   {items} items in {} ms (one after another: {} ms); most in flight at once: {most}, \
         in the server's handlers: {most_served}",
        took.as_millis(),
        one_by_one.as_millis()
    );
    for (i, failed) in responses.iter().enumerate() {
        if let Err(why) = failed {
            println!("   GET /api/item/{i}: {why}");
        }
    }
    assert_eq!(responses.len(), REQUESTS);
    assert_eq!(items, REQUESTS - 2);
    assert_eq!(responses[7].as_deref().ok(), Some("item 7"));
    let status = |e: &BoxError| e.downcast_ref::<reqwest::Error>().and_then(|e| e.status());
    assert!(
        responses[FAILS]
            .as_ref()
            .is_err_and(|e| status(e) == Some(StatusCode::SERVICE_UNAVAILABLE))
    );
    assert!(
        responses[HANGS]
            .as_ref()
            .is_err_and(|e| e.is::<aio::Elapsed>())
    );
    assert_eq!(
        most, LIMIT,
        "never more than the limit, and the limit was used"
    );
    // A request is in the server's handler only while the client counts it in flight.
    assert!(most_served <= LIMIT);
    // Three at a time can do no better than a third of the time one at a time takes.
    assert!(took >= one_by_one / LIMIT as u32);
    assert_eq!(*client.in_flight.borrow(), 0);
    // Every permit came back, from the failed and the timed-out request too.
    assert_eq!(client.sem.available_permits(), LIMIT);
    // The request cut off by its timeout dropped its connection: the server saw it go.
    client.site.stats.idle().await;
    let hung_up = client.site.stats.take_hung_up();
    println!(
        "   the server saw the client hang up on {}",
        hung_up.join(" ")
    );
    assert!(
        hung_up
            .iter()
            .all(|path| *path == format!("/api/item/{HANGS}"))
    );
}

async fn a_release_too_many() {
    println!("== 2. BoundedSemaphore refuses a release too many");
    let pool = BoundedSemaphore::new(2);
    // asyncio's `await pool.acquire()`: a permit with no guard, given back by `release()`.
    pool.acquire().await.forget();
    pool.release().expect("one permit is taken");
    let err = pool.release().unwrap_err();
    println!("   a second release(): {err}");
    assert_eq!(
        err.to_string(),
        "bounded semaphore released too many times: it already has all 2 of its permits; \
         call release() once for each acquire()"
    );
    assert_eq!(pool.available_permits(), 2);

    // The same mistake with a plain Semaphore goes unnoticed: it now lets three in.
    let plain = Semaphore::new(2);
    plain.acquire().await.forget();
    plain.release();
    plain.release();
    println!(
        "   the same with a Semaphore(2): no error, available_permits() = {}",
        plain.available_permits()
    );
    assert_eq!(plain.available_permits(), 3);
}
