//! A polite crawler: forty requests, at most five at a time, with a limited task group.
//!
//! `TaskGroup::builder().limit(5)` runs at most five of the group's tasks at once. The
//! pages come from a real HTTP server on a loopback port (axum, `examples/support/http.rs`),
//! fetched with reqwest: `/page/{i}` answers after 20 to 36 ms (a fixed formula), and
//! `/hang/{i}` never answers. The crawler records how many requests are in flight and the
//! most it ever saw; the server counts the most it had in its handlers.
//!
//! 1. The whole crawl. All forty `spawn`s return at once, without waiting for a slot: the
//!    group holds five running requests and thirty-five queued ones, which start, in the
//!    order they were spawned, as slots free up. (The requests wait for the crawler to open
//!    a gate before they go out, so none can finish while the body is spawning: if `spawn`
//!    waited for a slot, the body would never get to open it. The crawler opens it once the
//!    first five wait there.) The crawl never has more than five requests in flight, and
//!    does reach five, and neither does the server; it takes about an eighth of the time
//!    the requests would take one after another.
//! 2. The same crawl under a 70 ms timeout, of a site where pages 0 and 3 never answer.
//!    The requests in flight are cancelled at their next `.await`, the hanging ones
//!    included, and the server sees their clients hang up; the queued ones never start at
//!    all, and their handles say they were cancelled, with the reason.
//!
//! Run it with `cargo run --example bounded_crawl`.
//!
//! It mirrors the asyncio rate-limit pattern, a `Semaphore` around each request and a
//! `gather` over all of them:
//!
//! ```python
//! sem = asyncio.Semaphore(5)
//!
//! async def fetch(i):
//!     async with sem:                    # every task exists and waits here
//!         return await client.get(f"/page/{i}")
//!
//! async with asyncio.timeout(0.07):
//!     pages = await asyncio.gather(*(fetch(i) for i in range(40)))
//! ```
//!
//! With the semaphore, all forty tasks start and thirty-five of them park on it; with a
//! limited group, a queued task is a future that has never been polled, and a cancelled
//! group simply drops it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[path = "support/http.rs"]
mod http;

use aio::{BoxError, CancelReason, TaskError, TaskGroup, TaskGroupError, TaskHandle};
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

use http::{Site, Stats, with_server};

/// How many pages the crawl fetches.
const REQUESTS: usize = 40;
/// How many requests may be in flight at once.
const LIMIT: usize = 5;
/// When to print a progress line: after this many requests are done.
const PROGRESS_AT: [usize; 4] = [10, 20, 30, 40];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How long the server takes for page `i`: 20 to 36 ms, scattered by a fixed formula.
fn latency(i: usize) -> Duration {
    ms(20 + (i as u64 * 7) % 17)
}

// The server.

fn routes(stats: Stats) -> Router {
    Router::new()
        .route("/page/{i}", get(page))
        .route("/hang/{i}", get(hang))
        .with_state(stats)
}

async fn page(State(stats): State<Stats>, Path(i): Path<usize>) -> String {
    let handling = stats.enter(format!("/page/{i}"));
    sleep(latency(i)).await;
    handling.answered();
    format!("<html>page {i}</html>")
}

async fn hang(State(stats): State<Stats>, Path(i): Path<usize>) -> String {
    let handling = stats.enter(format!("/hang/{i}"));
    sleep(Duration::from_secs(3600)).await;
    handling.answered();
    format!("<html>page {i}, at last</html>")
}

// The crawler.

/// The crawl's counters, shared by its requests.
#[derive(Clone)]
struct Crawler {
    site: Site,
    /// The pages that never answer.
    hanging: &'static [usize],
    start: Instant,
    /// Requests started and not yet ended, waiting at the gate or out on the network.
    in_flight: Arc<watch::Sender<usize>>,
    most: Arc<AtomicUsize>,
    started: Arc<Mutex<Vec<usize>>>,
    finished: Arc<AtomicUsize>,
    cancelled: Arc<AtomicUsize>,
    /// Requests go out once this is `true`.
    gate: watch::Receiver<bool>,
    open_gate: Arc<watch::Sender<bool>>,
}

impl Crawler {
    fn new(site: &Site, hanging: &'static [usize]) -> Crawler {
        let (open_gate, gate) = watch::channel(false);
        Crawler {
            site: site.clone(),
            hanging,
            gate,
            open_gate: Arc::new(open_gate),
            start: Instant::now(),
            in_flight: Arc::new(watch::Sender::new(0)),
            most: Arc::default(),
            started: Arc::default(),
            finished: Arc::default(),
            cancelled: Arc::default(),
        }
    }

    fn in_flight(&self) -> usize {
        *self.in_flight.borrow()
    }

    fn started(&self) -> Vec<usize> {
        let mut started = self.started.lock().unwrap().clone();
        started.sort_unstable();
        started
    }

    /// `GET /page/{i}`. `group` is only there to read the queue length for the progress
    /// report.
    async fn fetch(self, i: usize, group: TaskGroup<BoxError>) -> Result<String, BoxError> {
        let mut now = 0;
        self.in_flight.send_modify(|n| {
            *n += 1;
            now = *n;
        });
        self.most.fetch_max(now, Ordering::SeqCst);
        self.started.lock().unwrap().push(i);
        // Leaves the in-flight count however the request ends; counts it as cancelled
        // unless it was answered.
        let mut in_flight = InFlight {
            crawler: self.clone(),
            answered: false,
        };
        // Go out once the crawl has opened the gate, after spawning every request.
        self.gate.clone().wait_for(|open| *open).await?;
        let path = match self.hanging.contains(&i) {
            true => format!("/hang/{i}"),
            false => format!("/page/{i}"),
        };
        let url = self.site.url(&path);
        let page = self.site.client.get(url).send().await?;
        let page = page.error_for_status()?.text().await?;
        in_flight.answered = true;
        drop(in_flight);
        let finished = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
        if PROGRESS_AT.contains(&finished) {
            println!(
                "   {:>3} ms {finished:>2}/{REQUESTS} done: {} in flight, {} queued",
                self.start.elapsed().as_millis(),
                self.in_flight(),
                group.snapshot().queued
            );
        }
        Ok(page)
    }
}

/// A request in flight; dropping it takes it off the count.
struct InFlight {
    crawler: Crawler,
    answered: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.crawler.in_flight.send_modify(|n| *n -= 1);
        if !self.answered {
            self.crawler.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// The crawl: one task per page in a group limited to `LIMIT`. The handles go to
/// `handles`, outside the group, so they can be read however the crawl ends.
async fn crawl(
    crawler: &Crawler,
    handles: &mut Vec<TaskHandle<String>>,
) -> Result<(), TaskGroupError<BoxError>> {
    TaskGroup::<BoxError>::builder()
        .name("crawl")
        .limit(LIMIT)
        .scope(|tg| async move {
            let spawning = Instant::now();
            for i in 0..REQUESTS {
                let request = crawler.clone().fetch(i, tg.clone());
                handles.push(tg.spawn_named(format!("GET /page/{i}"), request)?);
            }
            let snapshot = tg.snapshot();
            let took = spawning.elapsed();
            println!(
                "   spawned {REQUESTS} requests in {took:?} without waiting: {} tasks in the \
                 group, {} queued behind the limit of {}",
                tg.len(),
                snapshot.queued,
                snapshot.limit.unwrap()
            );
            // No spawn waited for a slot (none could have been freed: the gate is shut), and
            // all but five requests wait in the queue.
            assert_eq!(tg.len(), REQUESTS);
            assert_eq!(snapshot.queued, REQUESTS - LIMIT);
            // Open the gate once the five requests with a slot wait at it.
            let mut in_flight = crawler.in_flight.subscribe();
            in_flight
                .wait_for(|n| *n == LIMIT)
                .await
                .expect("the crawler keeps the sender");
            crawler.open_gate.send_replace(true);
            Ok(())
        })
        .await
}

pub(crate) fn main() {
    aio::run(with_server(routes, |site| async move {
        the_whole_crawl(&site).await;
        a_crawl_cut_short(&site).await;
    }));
}

async fn the_whole_crawl(site: &Site) {
    println!("== 1. {REQUESTS} requests, at most {LIMIT} at a time");
    let crawler = Crawler::new(site, &[]);
    let mut handles = Vec::new();
    crawl(&crawler, &mut handles)
        .await
        .expect("no request fails");
    let took = crawler.start.elapsed();
    let one_by_one: Duration = (0..REQUESTS).map(latency).sum();
    let most = crawler.most.load(Ordering::SeqCst);
    println!(
        "   done in {} ms (one after another: {} ms; the best {LIMIT} at a time can do: {} ms)",
        took.as_millis(),
        one_by_one.as_millis(),
        (one_by_one / LIMIT as u32).as_millis()
    );
    let most_served = site.stats.most();
    println!(
        "   most requests in flight at once: {most}; most in the server's handlers at once: \
         {most_served}"
    );
    let pages: Vec<String> = handles
        .into_iter()
        .map(|h| h.result().expect("every request succeeded"))
        .collect();
    assert_eq!(pages.len(), REQUESTS);
    assert_eq!(pages[17], "<html>page 17</html>");
    assert_eq!(
        most, LIMIT,
        "never more than the limit, and the limit was used"
    );
    // A request is in the server's handler only while the crawler counts it in flight.
    assert!(most_served <= LIMIT);
    assert_eq!(crawler.started(), (0..REQUESTS).collect::<Vec<_>>());
    assert!(took >= one_by_one / LIMIT as u32);
    assert_eq!(site.stats.take_answered().len(), REQUESTS);
}

/// The pages that never answer in the second crawl. Both are among the first five, which
/// start at once: they are in flight when the timeout fires, whatever the machine's load.
const HANGING: [usize; 2] = [0, 3];

async fn a_crawl_cut_short(site: &Site) {
    println!("== 2. pages 0 and 3 hang, and a 70 ms timeout: queued requests never start");
    site.stats.reset_most();
    let crawler = Crawler::new(site, &HANGING);
    let mut handles = Vec::new();
    let elapsed = aio::timeout(ms(70), crawl(&crawler, &mut handles))
        .await
        .unwrap_err();
    let took = crawler.start.elapsed();
    let started = crawler.started().len();
    let finished = crawler.finished.load(Ordering::SeqCst);
    let cancelled = crawler.cancelled.load(Ordering::SeqCst);
    println!(
        "   {elapsed} after {} ms: {finished} requests done, {cancelled} cancelled in flight, \
         {} never started",
        took.as_millis(),
        REQUESTS - started
    );
    assert!(crawler.most.load(Ordering::SeqCst) <= LIMIT);
    assert_eq!(finished + cancelled, started, "every started request ended");
    assert!(cancelled >= HANGING.len() && started < REQUESTS);

    // Each handle says how its request ended; the queued ones were cancelled before they
    // ever ran, because the timeout cancelled their group.
    let mut never_started = 0;
    for (i, handle) in handles.into_iter().enumerate() {
        let result = handle.result();
        if crawler.started.lock().unwrap().contains(&i) {
            continue;
        }
        never_started += 1;
        let Err(TaskError::Cancelled(why)) = &result else {
            panic!("request {i} never started, yet: {result:?}");
        };
        if never_started == 1 {
            println!("   GET /page/{i}, the first that never started: {why}");
        }
        assert_eq!(why.origin(), &CancelReason::Deadline);
    }
    assert_eq!(never_started, REQUESTS - started);
    assert_eq!(crawler.in_flight(), 0);

    // Each cancelled request dropped its connection: the server saw the clients hang up,
    // and no handler waits for one that is gone.
    site.stats.idle().await;
    let hung_up = site.stats.take_hung_up();
    println!(
        "   the server saw {} client(s) hang up: {}",
        hung_up.len(),
        hung_up.join(" ")
    );
    assert!(hung_up.len() <= cancelled && site.stats.most() <= LIMIT);
}
