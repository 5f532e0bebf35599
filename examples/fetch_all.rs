//! Fetch twenty URLs at once with a [`TaskGroup`], and handle failures the way `except*`
//! does.
//!
//! Each request is a named task of one group; the simulated network is a
//! `tokio::time::sleep_until`, so every request takes its own time (10 to 202 ms).
//!
//! 1. All requests succeed: the group takes as long as the slowest one, not the sum, and
//!    the pages are read from the task handles after the scope, in order.
//! 2. One request fails: the group cancels the requests still in flight at their next
//!    `.await` (each one's `on_cancel` cleanup notes it) and returns a `TaskGroupError`
//!    naming the task that failed.
//! 3. Two requests fail in the same instant, differently: both failures are collected,
//!    and `split_by` sorts them by type, as `except* HttpError` / `except* ParseError` do.
//!
//! Run it with `cargo run --example fetch_all`.
//!
//! It mirrors:
//!
//! ```python
//! async def fetch_all(client, urls):
//!     async with asyncio.TaskGroup() as tg:
//!         tasks = [tg.create_task(client.get(url), name=f"fetch-{i}")
//!                  for i, url in enumerate(urls)]
//!     return [t.result() for t in tasks]
//!
//! try:
//!     pages = await fetch_all(client, urls)
//! except* HttpError as eg:
//!     for exc in eg.exceptions:
//!         print(f"HTTP error: {exc}")
//! except* ParseError as eg:
//!     for exc in eg.exceptions:
//!         print(f"bad body: {exc}")
//! ```

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, TaskGroup, TaskGroupError, on_cancel};
use tokio::time::{Instant, sleep_until};

/// How many URLs each run fetches.
const REQUESTS: usize = 20;

/// A response with a bad status: the seed's `ValueError`.
#[derive(Debug)]
struct HttpError {
    url: String,
    status: u16,
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} answered HTTP {}", self.url, self.status)
    }
}

impl Error for HttpError {}

/// A body that is not what we asked for: the seed's `TypeError`.
#[derive(Debug)]
struct ParseError {
    url: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sent a body that is not JSON", self.url)
    }
}

impl Error for ParseError {}

/// What the simulated server does with a request.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Page,
    Status(u16),
    Garbage,
}

fn url(i: usize) -> String {
    format!("https://api.example.com/item/{i}")
}

/// How long request `i` takes when nothing goes wrong: 10 to 202 ms.
fn latency(i: usize) -> Duration {
    Duration::from_millis(10 + 2 * ((i as u64 * 37) % 100))
}

/// A pretend HTTP client. Answers come from a script instead of the network, and the
/// client remembers which requests were answered and which were cancelled in flight.
#[derive(Clone)]
struct Client {
    start: Instant,
    /// Requests that get a bad reply, and when it comes.
    faults: Arc<HashMap<usize, (Reply, Duration)>>,
    answered: Arc<Mutex<Vec<usize>>>,
    cancelled: Arc<Mutex<Vec<usize>>>,
}

impl Client {
    fn new(faults: &[(usize, Reply, Duration)]) -> Client {
        Client {
            start: Instant::now(),
            faults: Arc::new(faults.iter().map(|&(i, r, d)| (i, (r, d))).collect()),
            answered: Arc::default(),
            cancelled: Arc::default(),
        }
    }

    /// `GET url(i)`.
    async fn get(&self, i: usize) -> Result<String, BoxError> {
        let (reply, after) = self
            .faults
            .get(&i)
            .copied()
            .unwrap_or((Reply::Page, latency(i)));
        let answer_at = self.start + after;
        let answered = Arc::clone(&self.answered);
        let cancelled = Arc::clone(&self.cancelled);
        on_cancel(
            // try: the request itself.
            async move {
                sleep_until(answer_at).await; // the network
                match reply {
                    Reply::Page => {
                        answered.lock().unwrap().push(i);
                        Ok(format!("{{\"item\": {i}}}"))
                    }
                    Reply::Status(status) => Err(HttpError {
                        url: url(i),
                        status,
                    }
                    .into()),
                    Reply::Garbage => Err(ParseError { url: url(i) }.into()),
                }
            },
            |_| // except CancelledError: close the connection, then re-raise. A real client
            // would `.await` here (send a RST, return the socket to its pool).
            async move {
                cancelled.lock().unwrap().push(i);
                Ok(())
            },
        )
        .await
    }

    fn answered(&self) -> Vec<usize> {
        sorted(&self.answered)
    }

    fn cancelled(&self) -> Vec<usize> {
        sorted(&self.cancelled)
    }
}

fn sorted(list: &Mutex<Vec<usize>>) -> Vec<usize> {
    let mut list = list.lock().unwrap().clone();
    list.sort_unstable();
    list
}

/// asyncio's `fetch_all`: one task per URL; every page in order, or every failure.
async fn fetch_all(client: &Client, urls: usize) -> Result<Vec<String>, TaskGroupError<BoxError>> {
    let tasks = TaskGroup::<BoxError>::scope(|tg| async move {
        let mut tasks = Vec::with_capacity(urls);
        for i in 0..urls {
            let client = client.clone();
            tasks.push(tg.spawn_named(format!("fetch-{i}"), async move { client.get(i).await })?);
        }
        Ok(tasks)
    })
    .await?;
    // The scope has returned, so every task has finished: read the results without waiting.
    Ok(tasks
        .into_iter()
        .map(|t| t.result().expect("the group succeeded, so every task did"))
        .collect())
}

/// `except* HttpError` and `except* ParseError`: handles the failures of those two types and
/// hands back the rest, like the `ExceptionGroup` that `except*` re-raises. Returns how many
/// of each it handled.
fn handle_failures(
    err: TaskGroupError<BoxError>,
) -> Result<(usize, usize), TaskGroupError<BoxError>> {
    let (http, rest) = err.split_by::<HttpError>();
    for failure in http.iter().flatten() {
        let status = failure.error().status;
        println!(
            "   except* HttpError:  {} got status {status}",
            name(failure.name())
        );
    }
    let http = http.map_or(0, |group| group.len());
    let Some(rest) = rest else {
        return Ok((http, 0));
    };
    let (parse, rest) = rest.split_by::<ParseError>();
    for failure in parse.iter().flatten() {
        println!(
            "   except* ParseError: {}: {}",
            name(failure.name()),
            failure.error()
        );
    }
    match rest {
        Some(unhandled) => Err(unhandled),
        None => Ok((http, parse.map_or(0, |group| group.len()))),
    }
}

fn name(name: Option<&str>) -> &str {
    name.unwrap_or("<unnamed>")
}

fn list(ids: &[usize]) -> String {
    let names: Vec<String> = ids.iter().map(|i| format!("fetch-{i}")).collect();
    names.join(" ")
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(crate) fn main() {
    aio::run(async {
        all_succeed().await;
        one_fails().await;
        two_fail_at_once().await;
    });
}

async fn all_succeed() {
    println!("== 1. {REQUESTS} requests, all succeed");
    let client = Client::new(&[]);
    let pages = fetch_all(&client, REQUESTS)
        .await
        .expect("no request fails");
    let took = client.start.elapsed();
    let one_by_one: Duration = (0..REQUESTS).map(latency).sum();
    println!(
        "   got {} pages in order: {}, {}, ...",
        pages.len(),
        pages[0],
        pages[1]
    );
    println!(
        "   took {} ms: as long as the slowest request; one after another would take {} ms",
        took.as_millis(),
        one_by_one.as_millis()
    );
    assert_eq!(pages.len(), REQUESTS);
    assert_eq!(pages[7], "{\"item\": 7}");
    assert!(took >= latency(8), "request 8 is the slowest");
    assert!(took < one_by_one / 2, "the requests ran concurrently");
    assert!(client.cancelled().is_empty());
}

async fn one_fails() {
    println!("== 2. request 7 fails after 60 ms: the group cancels the requests in flight");
    let fails_at = ms(60);
    let client = Client::new(&[(7, Reply::Status(503), fails_at)]);
    let err = fetch_all(&client, REQUESTS).await.unwrap_err();
    let took = client.start.elapsed();
    let (answered, cancelled) = (client.answered(), client.cancelled());
    println!(
        "   answered before the failure ({}): {}",
        answered.len(),
        list(&answered)
    );
    println!(
        "   cancelled, each ran its on_cancel cleanup ({}): {}",
        cancelled.len(),
        list(&cancelled)
    );
    println!(
        "   fetch_all returned after {} ms, with {} failure:",
        took.as_millis(),
        err.len()
    );
    for failure in &err {
        println!("   - {failure}");
    }

    // The failure, with the name of the task that raised it.
    assert_eq!(err.len(), 1);
    let failure = err.first().unwrap();
    assert_eq!(failure.name(), Some("fetch-7"));
    assert!(failure.task_id().is_some());
    // Nothing was lost: every request was answered, cancelled, or is the failure.
    assert_eq!(answered.len() + cancelled.len() + 1, REQUESTS);
    for i in (0..REQUESTS).filter(|&i| i != 7) {
        if latency(i) < fails_at {
            assert!(
                answered.contains(&i),
                "fetch-{i} answered before the failure"
            );
        }
    }
    for i in &cancelled {
        assert!(latency(*i) > fails_at, "fetch-{i} was still in flight");
    }
    assert!(!cancelled.is_empty());
    assert!(took < latency(8), "the slowest request was cut short");
    // `except* HttpError` handles it.
    assert_eq!(handle_failures(err).unwrap(), (1, 0));
}

async fn two_fail_at_once() {
    println!("== 3. requests 4 and 9 both fail at 40 ms: `except*` sorts the failures");
    // Both bad replies arrive in the same instant, so each fails before the other's failure
    // can cancel it: the group collects both.
    let client = Client::new(&[(4, Reply::Status(500), ms(40)), (9, Reply::Garbage, ms(40))]);
    let err = fetch_all(&client, REQUESTS).await.unwrap_err();
    println!("   {err}");
    let mut names: Vec<&str> = err.iter().map(|f| name(f.name())).collect();
    names.sort_unstable();
    assert_eq!(names, ["fetch-4", "fetch-9"]);
    assert_eq!(
        client.answered().len() + client.cancelled().len() + 2,
        REQUESTS
    );
    let handled = handle_failures(err).expect("nothing but HTTP and parse errors");
    assert_eq!(handled, (1, 1));
}
