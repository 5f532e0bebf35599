//! An async generator on aio: `async for page in fetch_pages(url)` as a `Stream` fed by a
//! task of a group, from a real HTTP server on loopback.
//!
//! asyncio's async generator runs its body in the task that iterates it, one step per
//! `async for`. Here the generator's body is a task of the caller's group that fetches page
//! after page (reqwest, against an axum server on a loopback port,
//! `examples/support/http.rs`) and puts each into an `aio::Queue` of one; the caller reads
//! the queue as a `Stream`. The producer stays one page ahead, so the next request is in
//! flight while the reader works on a page. And because it is a task of the group, it
//! cannot outlive the reader's scope:
//!
//! 1. Reading every page: ten pages of ten items; the eleventh is empty, which ends the
//!    generator (it shuts the queue down), and with it the stream.
//! 2. Leaving early: the reader finds what it looks for on page 3 and leaves the loop.
//!    Dropping the stream cancels the producer, whose `on_cancel` cleanup runs, and the
//!    group waits for it before it returns: no request goes on behind the reader's back,
//!    and the server has served at most two pages past the last one read. (Were the
//!    producer left running, the scope would wait for ever for it, stuck in `put`: what a
//!    group starts, something must end. Python closes an abandoned generator only when it
//!    is collected, unless it is iterated inside `contextlib.aclosing`.)
//! 3. A page that fails: the server answers page 3 of another feed with a 500. The
//!    producer's error fails the group, which cancels the reader at its next `.await`; the
//!    scope returns the error, with the producer's name, as the generator's exception comes
//!    out of the `async for`.
//!
//! Run it with `cargo run --example paginated`.
//!
//! It mirrors:
//!
//! ```python
//! async def fetch_pages(url: str) -> AsyncIterator[dict]:
//!     """Async generator for a paginated API."""
//!     page = 1
//!     while True:
//!         r = await client.get(f"{url}/{page}")
//!         r.raise_for_status()
//!         data = r.json()
//!         if not data["items"]:
//!             break
//!         yield data
//!         page += 1
//!
//! async for page_data in fetch_pages(f"{base}/feed"):
//!     print(f"Processing page {page_data['page']}")
//!     for item in page_data["items"]:
//!         process(item)
//!
//! async with contextlib.aclosing(fetch_pages(f"{base}/feed")) as pages:
//!     async for page_data in pages:
//!         if "item_23" in page_data["items"]:
//!             break                               # closes the generator
//! ```

#[path = "support/http.rs"]
mod http;

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use aio::sync::QueueStream;
use aio::{BoxError, Queue, SpawnError, TaskGroup, TaskHandle, on_cancel};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::time::sleep;

use http::{Site, Stats, with_server};

/// How many pages a feed has, and how many items each.
const PAGES: u32 = 10;
const PER_PAGE: u32 = 10;

/// One page of a feed, as the server sends it.
#[derive(Debug, Serialize, Deserialize)]
struct Page {
    page: u32,
    items: Vec<String>,
}

// The server.

/// Page `n`: ten items, or none past the last page.
fn page(n: u32) -> Page {
    let items = match n {
        1..=PAGES => {
            let first = (n - 1) * PER_PAGE;
            (first..first + PER_PAGE)
                .map(|i| format!("item_{i}"))
                .collect()
        }
        _ => Vec::new(),
    };
    Page { page: n, items }
}

fn routes(stats: Stats) -> Router {
    Router::new()
        .route("/feed/{n}", get(feed))
        .route("/flaky/{n}", get(flaky))
        .with_state(stats)
}

async fn feed(State(stats): State<Stats>, Path(n): Path<u32>) -> Json<Page> {
    let handling = stats.enter(format!("/feed/{n}"));
    sleep(Duration::from_millis(5)).await; // the database behind the API
    handling.answered();
    Json(page(n))
}

/// The same feed, but page 3 fails.
async fn flaky(State(stats): State<Stats>, Path(n): Path<u32>) -> Result<Json<Page>, StatusCode> {
    let handling = stats.enter(format!("/flaky/{n}"));
    sleep(Duration::from_millis(5)).await;
    handling.answered();
    match n {
        3 => Err(StatusCode::INTERNAL_SERVER_ERROR),
        _ => Ok(Json(page(n))),
    }
}

// The generator.

/// The pages of a feed, read by the caller while a task of its group fetches them.
/// Dropping it cancels that task.
struct Pages {
    queue: QueueStream<Page>,
    producer: TaskHandle<()>,
}

impl Stream for Pages {
    type Item = Page;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Page>> {
        self.get_mut().queue.poll_next_unpin(cx)
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        // The reader is gone: the producer stops at its next `.await`, and its group, which
        // waits for it, returns once it has cleaned up.
        self.producer.cancel();
    }
}

/// asyncio's `fetch_pages`: starts a task in `tg` that fetches the pages of `feed` one
/// after another, one ahead of the reader, and returns the stream of them. `log` hears how
/// the task ended.
fn fetch_pages(
    tg: &TaskGroup<BoxError>,
    site: &Site,
    feed: &str,
    log: Log,
) -> Result<Pages, SpawnError> {
    let queue = Queue::new(1);
    let (pages, site, feed) = (queue.clone(), site.clone(), feed.to_owned());
    let (fetched, cancelled) = (Arc::new(Mutex::new(0)), log.clone());
    let fetching = Arc::clone(&fetched);
    let name = format!("fetch_pages({feed})");
    let producer = tg.spawn_named(
        name,
        on_cancel(
            async move {
                for n in 1u32.. {
                    let url = site.url(&format!("{feed}/{n}"));
                    let response = site.client.get(url).send().await?;
                    let page: Page = response.error_for_status()?.json().await?;
                    if page.items.is_empty() {
                        break;
                    }
                    *fetching.lock().unwrap() = n;
                    pages.put(page).await?; // `yield`: waits while the reader has a page to read
                }
                // The generator returns: the stream ends once the reader has every page.
                pages.shutdown(false);
                log.note("the producer returned after the last page");
                Ok(())
            },
            // A cancelled producer: the request in flight, or the page it waited to hand
            // over, is dropped.
            move |why| async move {
                let fetched = *fetched.lock().unwrap();
                cancelled.note(format!(
                    "the producer was cancelled after page {fetched} ({why})"
                ));
                Ok(())
            },
        ),
    )?;
    Ok(Pages {
        queue: queue.stream(),
        producer,
    })
}

/// What happened to a producer, in order.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn note(&self, event: impl Into<String>) {
        let event = event.into();
        println!("   {event}");
        self.0.lock().unwrap().push(event);
    }

    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

pub(crate) fn main() {
    aio::run(with_server(routes, |site| async move {
        every_page(&site).await;
        leaving_early(&site).await;
        a_page_that_fails(&site).await;
    }));
}

async fn every_page(site: &Site) {
    println!("== 1. async for page in fetch_pages(\"/feed\"): every page");
    let log = Log::default();
    let l = log.clone();
    let (pages, items) = TaskGroup::<BoxError>::scope(|tg| async move {
        let mut pages = fetch_pages(&tg, site, "/feed", l)?;
        let (mut read, mut items) = (Vec::new(), Vec::new());
        while let Some(page) = pages.next().await {
            read.push(page.page);
            items.extend(page.items); // process(item)
        }
        Ok((read, items))
    })
    .await
    .expect("every page is there");
    println!(
        "   processed pages {pages:?}: {} items, {} ... {}",
        items.len(),
        items[0],
        items[items.len() - 1]
    );
    assert_eq!(pages, (1..=PAGES).collect::<Vec<_>>());
    assert_eq!(items.len(), (PAGES * PER_PAGE) as usize);
    assert_eq!(log.events(), ["the producer returned after the last page"]);
    // Every page and the empty one after them, each once.
    assert_eq!(site.stats.take_answered().len(), PAGES as usize + 1);
}

async fn leaving_early(site: &Site) {
    println!("== 2. leaving the loop at page 3: the producer is cancelled with the stream");
    let log = Log::default();
    let l = log.clone();
    let (found, read) = TaskGroup::<BoxError>::scope(|tg| async move {
        let mut pages = fetch_pages(&tg, site, "/feed", l)?;
        let mut read = Vec::new();
        while let Some(page) = pages.next().await {
            read.push(page.page);
            if let Some(item) = page.items.into_iter().find(|item| item == "item_23") {
                return Ok((Some(item), read)); // `break`: drops `pages`
            }
        }
        Ok((None, read))
    })
    .await
    .expect("the reader found its item");
    // The scope returned: the producer has ended, and its cleanup has run.
    let served = site.stats.take_answered();
    println!(
        "   found {} on page {}; the server served {} pages: {}",
        found.as_deref().unwrap_or("nothing"),
        read.last().unwrap(),
        served.len(),
        served.join(" ")
    );
    assert_eq!(found.as_deref(), Some("item_23"));
    assert_eq!(read, [1, 2, 3]);
    let events = log.events();
    assert_eq!(events.len(), 1);
    assert!(events[0].starts_with("the producer was cancelled"));
    // One page in the queue and one waiting to go in, at most.
    assert!(served.len() <= read.len() + 2 && served.len() < PAGES as usize);
    site.stats.idle().await;
    site.stats.take_hung_up();
}

async fn a_page_that_fails(site: &Site) {
    println!("== 3. page 3 of /flaky answers 500: the producer's error ends the reader");
    let read = Arc::new(Mutex::new(Vec::new()));
    let r = Arc::clone(&read);
    let err = TaskGroup::<BoxError>::scope(|tg| async move {
        let mut pages = fetch_pages(&tg, site, "/flaky", Log::default())?;
        while let Some(page) = pages.next().await {
            r.lock().unwrap().push(page.page);
        }
        Ok(())
    })
    .await
    .unwrap_err();
    let read = read.lock().unwrap().clone();
    println!("   the reader processed pages {read:?}, then the group failed: {err}");
    assert_eq!(err.len(), 1);
    let failure = err.first().unwrap();
    assert_eq!(failure.name(), Some("fetch_pages(/flaky)"));
    let status = failure
        .error()
        .downcast_ref::<reqwest::Error>()
        .and_then(reqwest::Error::status);
    assert_eq!(status, Some(StatusCode::INTERNAL_SERVER_ERROR));
    // Page 1 was read before the producer asked for page 3; page 2 may have been.
    assert!(read == [1] || read == [1, 2], "read {read:?}");
    site.stats.take_answered();
}
