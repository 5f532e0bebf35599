//! Fetch twenty URLs at once with a [`TaskGroup`], from a real HTTP server, and handle
//! failures the way `except*` does.
//!
//! The example starts an axum server on a loopback port (`examples/support/http.rs`) and
//! fetches from it with reqwest. The server plays the network: `/item/{i}` answers
//! `{"item": i}` after 10 to 202 ms, `/status/{code}` answers with that status, `/garbage`
//! with a body that is not JSON, and `/hang` never answers. Each request is a named task of
//! one group.
//!
//! 1. All requests succeed: the group takes as long as the slowest one, not the sum, and
//!    the items are read from the task handles after the scope, in order.
//! 2. One request gets a 503 while two others hang: the group cancels the requests still in
//!    flight at their next `.await` (each one's `on_cancel` cleanup notes it) and returns a
//!    `TaskGroupError` naming the task that failed. A cancelled request drops its
//!    connection, so the server sees those clients hang up: nothing is left running there.
//! 3. Two requests fail differently, a 500 and a body that does not parse: both failures
//!    are collected, and `split_by` sorts them by type, as `except* HttpError` /
//!    `except* ParseError` do. (The two wait for each other before they report, so that
//!    neither is cancelled by the other's failure on any run: they fail in the same
//!    instant.)
//! 4. Half the items are cached: `spawn_eager` polls each task once inside the call, as
//!    `asyncio.eager_task_factory` does, so a cached item is ready before the call returns,
//!    without a Tokio task, and only the others go to the server, which sees only those.
//!
//! Run it with `cargo run --example fetch_all`.
//!
//! It mirrors:
//!
//! ```python
//! async def fetch(client, url):
//!     r = await client.get(url)
//!     r.raise_for_status()                        # HttpError
//!     return r.json()                             # ParseError
//!
//! async def fetch_all(client, urls):
//!     async with asyncio.TaskGroup() as tg:
//!         tasks = [tg.create_task(fetch(client, url), name=f"fetch-{i}")
//!                  for i, url in enumerate(urls)]
//!     return [t.result() for t in tasks]
//!
//! async with httpx.AsyncClient() as client:
//!     try:
//!         items = await fetch_all(client, urls)
//!     except* HttpError as eg:
//!         for exc in eg.exceptions:
//!             print(f"HTTP error: {exc}")
//!     except* ParseError as eg:
//!         for exc in eg.exceptions:
//!             print(f"bad body: {exc}")
//! ```

#[path = "support/http.rs"]
mod http;

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{Barrier, BoxError, TaskGroup, TaskGroupError, on_cancel};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::time::{Instant, sleep};

use http::{Site, Stats, with_server};

/// How many URLs each run fetches.
const REQUESTS: usize = 20;
/// How long the server takes to answer with an error.
const FAILS_AFTER: Duration = Duration::from_millis(40);

/// What `/item/{i}` answers.
#[derive(Debug, Serialize, Deserialize)]
struct Item {
    item: usize,
}

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
    source: reqwest::Error,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sent a body that is not an item", self.url)
    }
}

impl Error for ParseError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

// The server.

/// How long `/item/{i}` takes: 10 to 202 ms.
fn latency(i: usize) -> Duration {
    Duration::from_millis(10 + 2 * ((i as u64 * 37) % 100))
}

fn routes(stats: Stats) -> Router {
    Router::new()
        .route("/item/{i}", get(item))
        .route("/status/{code}", get(status))
        .route("/garbage", get(garbage))
        .route("/hang", get(hang))
        .with_state(stats)
}

async fn item(State(stats): State<Stats>, Path(i): Path<usize>) -> Json<Item> {
    let handling = stats.enter(format!("/item/{i}"));
    sleep(latency(i)).await;
    handling.answered();
    Json(Item { item: i })
}

async fn status(State(stats): State<Stats>, Path(code): Path<u16>) -> StatusCode {
    let handling = stats.enter(format!("/status/{code}"));
    sleep(FAILS_AFTER).await;
    handling.answered();
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

async fn garbage(State(stats): State<Stats>) -> &'static str {
    let handling = stats.enter("/garbage");
    sleep(FAILS_AFTER).await;
    handling.answered();
    "<html>we moved</html>"
}

async fn hang(State(stats): State<Stats>) -> &'static str {
    let handling = stats.enter("/hang");
    sleep(Duration::from_secs(3600)).await;
    handling.answered();
    "too late"
}

// The client.

/// `GET url`: the item, or an [`HttpError`] or a [`ParseError`].
async fn fetch(client: &reqwest::Client, url: String) -> Result<Item, BoxError> {
    let response = client.get(&url).send().await?;
    let status = response.status();
    if !status.is_success() {
        let status = status.as_u16();
        return Err(HttpError { url, status }.into());
    }
    response.json().await.map_err(|source| {
        if source.is_decode() {
            ParseError { url, source }.into()
        } else {
            source.into()
        }
    })
}

/// The client side of a run: how each request ended.
#[derive(Clone)]
struct Client {
    site: Site,
    /// The requests that fail wait here for each other before they report.
    together: Option<Arc<Barrier>>,
    answered: Arc<Mutex<Vec<usize>>>,
    cancelled: Arc<Mutex<Vec<usize>>>,
    /// How long the answered requests were in flight, added up.
    busy: Arc<Mutex<Duration>>,
}

impl Client {
    fn new(site: &Site) -> Client {
        Client {
            site: site.clone(),
            together: None,
            answered: Arc::default(),
            cancelled: Arc::default(),
            busy: Arc::default(),
        }
    }

    /// Failures will wait for each other, `failures` of them, before they report.
    fn failing_together(mut self, failures: usize) -> Client {
        self.together = Some(Arc::new(Barrier::new(failures)));
        self
    }

    /// Request `i`, `GET url`, noting how it ends.
    async fn get(&self, i: usize, url: String) -> Result<Item, BoxError> {
        let client = self.clone();
        let cancelled = Arc::clone(&self.cancelled);
        on_cancel(
            // try: the request itself.
            async move {
                let sent = Instant::now();
                let reply = fetch(&client.site.client, url).await;
                match (&reply, &client.together) {
                    (Ok(_), _) => {
                        client.answered.lock().unwrap().push(i);
                        *client.busy.lock().unwrap() += sent.elapsed();
                    }
                    (Err(_), Some(together)) => {
                        together.wait().await?;
                    }
                    (Err(_), None) => {}
                }
                reply
            },
            // except CancelledError: note it, then re-raise. Dropping the request closed
            // its connection already.
            move |_| async move {
                cancelled.lock().unwrap().push(i);
                Ok(())
            },
        )
        .await
    }

    fn answered(&self) -> Vec<usize> {
        sorted(self.answered.lock().unwrap().clone())
    }

    fn cancelled(&self) -> Vec<usize> {
        sorted(self.cancelled.lock().unwrap().clone())
    }

    fn busy(&self) -> Duration {
        *self.busy.lock().unwrap()
    }
}

fn sorted(mut list: Vec<usize>) -> Vec<usize> {
    list.sort_unstable();
    list
}

/// asyncio's `fetch_all`: one task per URL; every item in order, or every failure.
async fn fetch_all(
    client: &Client,
    urls: Vec<String>,
) -> Result<Vec<Item>, TaskGroupError<BoxError>> {
    let tasks = TaskGroup::<BoxError>::scope(|tg| async move {
        let mut tasks = Vec::with_capacity(urls.len());
        for (i, url) in urls.into_iter().enumerate() {
            let client = client.clone();
            tasks.push(tg.spawn_named(
                format!("fetch-{i}"),
                async move { client.get(i, url).await },
            )?);
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

/// The twenty URLs, with `odd` ones in place of some items.
fn urls(site: &Site, odd: &[(usize, &str)]) -> Vec<String> {
    let odd: HashMap<usize, &str> = odd.iter().copied().collect();
    (0..REQUESTS)
        .map(|i| match odd.get(&i) {
            Some(path) => site.url(path),
            None => site.url(&format!("/item/{i}")),
        })
        .collect()
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
        let error = failure.error();
        let cause = std::iter::successors(error.source(), |&e| e.source()).last();
        println!(
            "   except* ParseError: {}: {error} ({})",
            name(failure.name()),
            cause.map_or(String::new(), ToString::to_string)
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

pub(crate) fn main() {
    aio::run(with_server(routes, |site| async move {
        all_succeed(&site).await;
        one_fails_two_hang(&site).await;
        two_fail_at_once(&site).await;
        cached_items_start_eagerly(&site).await;
    }));
}

async fn all_succeed(site: &Site) {
    println!("== 1. {REQUESTS} requests, all succeed");
    let client = Client::new(site);
    let start = Instant::now();
    let items = fetch_all(&client, urls(site, &[]))
        .await
        .expect("no request fails");
    let took = start.elapsed();
    let busy = client.busy();
    let one_by_one: Duration = (0..REQUESTS).map(latency).sum();
    println!(
        "   got {} items in order: {:?}, {:?}, ...",
        items.len(),
        items[0],
        items[1]
    );
    println!(
        "   took {} ms: as long as the slowest request; one after another would take {} ms",
        took.as_millis(),
        one_by_one.as_millis()
    );
    println!(
        "   the requests were in flight for {} ms in all, within those {} ms: they overlapped",
        busy.as_millis(),
        took.as_millis()
    );
    assert_eq!(items.len(), REQUESTS);
    assert_eq!(items[7].item, 7);
    assert!(took >= latency(8), "request 8 is the slowest");
    // Requests made one after another would be in flight for at most the whole time; these
    // were in flight for over 2 s in all, ten times the slowest one.
    assert!(busy > took, "the requests ran concurrently");
    assert!(client.cancelled().is_empty());
    assert_eq!(site.stats.take_answered().len(), REQUESTS);
}

async fn one_fails_two_hang(site: &Site) {
    println!("== 2. request 7 gets a 503 while 8 and 15 hang: the group cancels the rest");
    let client = Client::new(site);
    let odd = [(7, "/status/503"), (8, "/hang"), (15, "/hang")];
    let path = |i| match odd.iter().find(|(o, _)| *o == i) {
        Some((_, path)) => path.to_string(),
        None => format!("/item/{i}"),
    };
    let urls = urls(site, &odd);
    let start = Instant::now();
    let err = fetch_all(&client, urls).await.unwrap_err();
    let took = start.elapsed();
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
    // Nothing was lost: every request was answered, cancelled, or is the failure; the two
    // that hang can only have been cancelled.
    assert_eq!(answered.len() + cancelled.len() + 1, REQUESTS);
    assert!(cancelled.contains(&8) && cancelled.contains(&15));

    // The server saw each cancelled request that had reached it hang up: no handler is
    // left waiting for a client that is gone.
    site.stats.idle().await;
    let hung_up = site.stats.take_hung_up();
    println!(
        "   the server saw {} client(s) hang up: {}",
        hung_up.len(),
        hung_up.join(" ")
    );
    let cancelled_paths: Vec<String> = cancelled.iter().map(|&i| path(i)).collect();
    assert!(hung_up.iter().all(|p| cancelled_paths.contains(p)));
    site.stats.take_answered();
    // `except* HttpError` handles it.
    assert_eq!(handle_failures(err).unwrap(), (1, 0));
}

async fn two_fail_at_once(site: &Site) {
    println!("== 3. request 4 gets a 500 and 9 a body that does not parse: `except*` sorts them");
    let client = Client::new(site).failing_together(2);
    let urls = urls(site, &[(4, "/status/500"), (9, "/garbage")]);
    let err = fetch_all(&client, urls).await.unwrap_err();
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
    site.stats.idle().await;
    site.stats.take_answered();
    site.stats.take_hung_up();
}

async fn cached_items_start_eagerly(site: &Site) {
    println!("== 4. the even items are cached: spawn_eager has them before it returns");
    let client = Client::new(site);
    let cache: HashMap<usize, usize> = (0..REQUESTS).step_by(2).map(|i| (i, i)).collect();
    let cache = Arc::new(cache);
    let (c, urls) = (client.clone(), urls(site, &[]));
    let (tasks, ready_at_once) = TaskGroup::<BoxError>::scope(|tg| async move {
        let (mut tasks, mut ready_at_once) = (Vec::with_capacity(REQUESTS), 0);
        for (i, url) in urls.into_iter().enumerate() {
            let (client, cache) = (c.clone(), Arc::clone(&cache));
            let task = tg.spawn_eager_named(format!("fetch-{i}"), async move {
                match cache.get(&i) {
                    Some(&item) => Ok(Item { item }), // no `.await`: done at the first poll
                    None => client.get(i, url).await,
                }
            })?;
            ready_at_once += usize::from(task.is_finished());
            tasks.push(task);
        }
        Ok((tasks, ready_at_once))
    })
    .await
    .expect("no request fails");
    let items: Vec<Item> = tasks.into_iter().map(|t| t.result().unwrap()).collect();
    let answered = client.answered();
    let served = site.stats.take_answered();
    println!(
        "   {ready_at_once} items were ready when spawn_eager returned; {} went to the server: {}",
        answered.len(),
        list(&answered)
    );
    println!("   the server served {}", served.join(" "));
    assert_eq!(ready_at_once, REQUESTS / 2);
    assert_eq!(answered, (1..REQUESTS).step_by(2).collect::<Vec<_>>());
    let odd: Vec<String> = (1..REQUESTS)
        .step_by(2)
        .map(|i| format!("/item/{i}"))
        .collect();
    assert_eq!(served, odd);
    assert_eq!(items[7].item, 7);
    assert_eq!(items[8].item, 8);
}
