//! Fetch twenty URLs at once with a [`TaskGroup`], and handle failures the way `except*`
//! does.
//!
//! Each request is a named task of one group; the simulated network is a
//! `tokio::time::sleep`, so every request takes its own time (10 to 202 ms). Its replies
//! come in the order they are due, however busy the machine is.
//!
//! 1. All requests succeed: the group takes as long as the slowest one, not the sum, and
//!    the pages are read from the task handles after the scope, in order.
//! 2. One request fails: the group cancels the requests still in flight at their next
//!    `.await` (each one's `on_cancel` cleanup notes it) and returns a `TaskGroupError`
//!    naming the task that failed.
//! 3. Two requests fail in the same instant, differently: both failures are collected,
//!    and `split_by` sorts them by type, as `except* HttpError` / `except* ParseError` do.
//! 4. Half the pages are cached: `spawn_eager` polls each task once inside the call, as
//!    `asyncio.eager_task_factory` does, so a cached page is ready before the call returns,
//!    without a Tokio task, and only the others go to the network.
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
use tokio::sync::{Barrier, watch};
use tokio::time::{Instant, sleep};

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

/// A bad reply from the simulated server.
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    Garbage,
}

/// A request that gets a bad reply, and when.
struct Fault {
    reply: Reply,
    /// How long after the request the reply comes.
    after: Duration,
    /// Shared by the bad replies due at the same time: the network delivers them together.
    together: Arc<Barrier>,
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
    /// The requests that get a bad reply.
    faults: Arc<HashMap<usize, Fault>>,
    /// The requests answered so far.
    answered: Arc<watch::Sender<Vec<usize>>>,
    cancelled: Arc<Mutex<Vec<usize>>>,
    /// How long the answered requests were in flight, added up.
    busy: Arc<Mutex<Duration>>,
}

impl Client {
    fn new(faults: &[(usize, Reply, Duration)]) -> Client {
        let due_together = |after| faults.iter().filter(|f| f.2 == after).count();
        let mut together: HashMap<Duration, Arc<Barrier>> = HashMap::new();
        let faults = faults.iter().map(|&(i, reply, after)| {
            let together = together
                .entry(after)
                .or_insert_with(|| Arc::new(Barrier::new(due_together(after))));
            let together = Arc::clone(together);
            let fault = Fault {
                reply,
                after,
                together,
            };
            (i, fault)
        });
        Client {
            start: Instant::now(),
            faults: Arc::new(faults.collect()),
            answered: Arc::new(watch::Sender::new(Vec::new())),
            cancelled: Arc::default(),
            busy: Arc::default(),
        }
    }

    /// `GET url(i)`.
    async fn get(&self, i: usize) -> Result<String, BoxError> {
        let client = self.clone();
        let cancelled = Arc::clone(&self.cancelled);
        on_cancel(
            // try: the request itself.
            async move {
                let sent = Instant::now();
                let Some(fault) = client.faults.get(&i) else {
                    sleep(latency(i)).await; // the network
                    client.answered.send_modify(|answered| answered.push(i));
                    *client.busy.lock().unwrap() += sent.elapsed();
                    return Ok(format!("{{\"item\": {i}}}"));
                };
                sleep(fault.after).await; // the network
                // Replies come in the order they are due: a bad reply comes after every page
                // due before it, and together with the other bad replies due with it.
                client.pages_due_before(fault.after).await;
                fault.together.wait().await;
                Err(match fault.reply {
                    Reply::Status(status) => HttpError {
                        url: url(i),
                        status,
                    }
                    .into(),
                    Reply::Garbage => ParseError { url: url(i) }.into(),
                })
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

    /// Waits until every page due less than `after` after its request has been answered.
    async fn pages_due_before(&self, after: Duration) {
        let due: Vec<usize> = (0..REQUESTS)
            .filter(|i| !self.faults.contains_key(i) && latency(*i) < after)
            .collect();
        let mut answered = self.answered.subscribe();
        answered
            .wait_for(|answered| due.iter().all(|i| answered.contains(i)))
            .await
            .expect("the client keeps the sender");
    }

    fn answered(&self) -> Vec<usize> {
        sorted(self.answered.borrow().clone())
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
        cached_pages_start_eagerly().await;
    });
}

async fn all_succeed() {
    println!("== 1. {REQUESTS} requests, all succeed");
    let client = Client::new(&[]);
    let pages = fetch_all(&client, REQUESTS)
        .await
        .expect("no request fails");
    let took = client.start.elapsed();
    let busy = client.busy();
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
    println!(
        "   the requests were in flight for {} ms in all, within those {} ms: they overlapped",
        busy.as_millis(),
        took.as_millis()
    );
    assert_eq!(pages.len(), REQUESTS);
    assert_eq!(pages[7], "{\"item\": 7}");
    assert!(took >= latency(8), "request 8 is the slowest");
    // Requests made one after another would spend at most the whole time in flight, in all.
    assert!(busy > took, "the requests ran concurrently");
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
    assert!(cancelled.contains(&8), "the slowest request was cut short");
    // `except* HttpError` handles it.
    assert_eq!(handle_failures(err).unwrap(), (1, 0));
}

async fn two_fail_at_once() {
    println!("== 3. requests 4 and 9 both fail at 40 ms: `except*` sorts the failures");
    // Both bad replies are due at 40 ms and arrive together, so each fails before the
    // other's failure can cancel it: the group collects both.
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

async fn cached_pages_start_eagerly() {
    println!("== 4. the even pages are cached: spawn_eager has them before it returns");
    let client = Client::new(&[]);
    let cache: HashMap<usize, String> = (0..REQUESTS)
        .step_by(2)
        .map(|i| (i, format!("{{\"item\": {i}}}")))
        .collect();
    let cache = Arc::new(cache);
    let c = client.clone();
    let (tasks, ready_at_once) = TaskGroup::<BoxError>::scope(|tg| async move {
        let (mut tasks, mut ready_at_once) = (Vec::with_capacity(REQUESTS), 0);
        for i in 0..REQUESTS {
            let (client, cache) = (c.clone(), Arc::clone(&cache));
            let task = tg.spawn_eager_named(format!("fetch-{i}"), async move {
                match cache.get(&i) {
                    Some(page) => Ok(page.clone()), // no `.await`: done at the first poll
                    None => client.get(i).await,
                }
            })?;
            ready_at_once += usize::from(task.is_finished());
            tasks.push(task);
        }
        Ok((tasks, ready_at_once))
    })
    .await
    .expect("no request fails");
    let pages: Vec<String> = tasks.into_iter().map(|t| t.result().unwrap()).collect();
    let answered = client.answered();
    println!(
        "   {ready_at_once} pages were ready when spawn_eager returned; {} went to the network: {}",
        answered.len(),
        list(&answered)
    );
    assert_eq!(ready_at_once, REQUESTS / 2);
    assert_eq!(answered, (1..REQUESTS).step_by(2).collect::<Vec<_>>());
    assert_eq!(pages[7], "{\"item\": 7}");
    assert_eq!(pages[8], "{\"item\": 8}");
}
