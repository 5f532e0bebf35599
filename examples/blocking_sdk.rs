//! A blocking SDK called from many tasks: a shared `CapacityLimiter`, a call that can be
//! told to stop, and a panic that comes back as an error.
//!
//! 1. Twenty tasks call a blocking client (a vendor SDK with no async API; here it sleeps
//!    to stand for the network). The client allows four connections, so every call goes
//!    through one `CapacityLimiter::new(4)`, cloned into two call sites. The calls count
//!    how many are inside the SDK at once and record the most ever seen: exactly four.
//!    (The first four to get in wait for each other, so the bound is reached on every run,
//!    however the machine schedules the threads.)
//! 2. A long export runs with `to_thread_cancellable`: it checks its `CancelToken` between
//!    pages, and a timeout around it cancels the token, so the thread stops early instead
//!    of running on unseen.
//! 3. A call that panics inside the SDK returns `ToThreadError::Panicked` with the message;
//!    the task and the limiter carry on.
//! 4. The SDK calls back for a token it needs: its callback uses `aio::from_thread` to run
//!    async code (a token refresh) in the task that waits for the thread, and a timeout
//!    around that task reaches into the callback, which returns the cancellation.
//!
//! Run it with `cargo run --example blocking_sdk`.
//!
//! It mirrors:
//!
//! ```python
//! limiter = trio.CapacityLimiter(4)              # anyio.CapacityLimiter(4)
//!
//! async def fetch(i):
//!     return await anyio.to_thread.run_sync(client.get, i, limiter=limiter)
//!
//! async with asyncio.TaskGroup() as tg:
//!     for i in range(20):
//!         tg.create_task(fetch(i))
//!
//! with anyio.move_on_after(0.05):               # the export stops when cancelled
//!     await anyio.to_thread.run_sync(export, abandon_on_cancel=True)
//!
//! def on_token_needed():                         # called by the SDK, in its thread
//!     return anyio.from_thread.run(refresh_token)
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use aio::{BoxError, CancelToken, CapacityLimiter, FromThreadError, TaskGroup, ToThreadError};

/// How many tasks call the SDK.
const CALLS: usize = 20;
/// How many connections the SDK allows.
const CONNECTIONS: usize = 4;

/// A client with a blocking API, as many vendor SDKs have.
struct Client {
    inside: AtomicUsize,
    most: AtomicUsize,
    arrivals: AtomicUsize,
    first_in: Barrier,
}

impl Client {
    fn new() -> Self {
        Client {
            inside: AtomicUsize::new(0),
            most: AtomicUsize::new(0),
            arrivals: AtomicUsize::new(0),
            first_in: Barrier::new(CONNECTIONS),
        }
    }

    /// `GET /records/{id}`: blocks its thread for a few milliseconds.
    fn get(&self, id: usize) -> String {
        let now = self.inside.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        if self.arrivals.fetch_add(1, Ordering::SeqCst) < CONNECTIONS {
            self.first_in.wait();
        }
        std::thread::sleep(Duration::from_millis(2 + (id as u64 * 3) % 5));
        self.inside.fetch_sub(1, Ordering::SeqCst);
        format!("record {id}")
    }

    /// Exports page after page until told to stop; returns the pages written.
    fn export(&self, token: &CancelToken) -> usize {
        let mut pages = 0;
        while !token.is_cancelled() && pages < 100_000 {
            pages += 1;
            // Writing a page takes a millisecond, or less if the token is cancelled.
            token.wait_timeout(Duration::from_millis(1));
        }
        pages
    }
}

pub(crate) fn main() {
    aio::run(async {
        many_tasks_one_limiter().await;
        an_export_that_stops().await;
        a_panic_in_the_sdk().await;
        a_callback_into_the_runtime().await;
    });
}

async fn many_tasks_one_limiter() {
    println!("== 1. {CALLS} tasks, one CapacityLimiter({CONNECTIONS}) in front of the SDK");
    let client = Arc::new(Client::new());
    let limiter = CapacityLimiter::new(CONNECTIONS);
    let records = TaskGroup::<BoxError>::scope(|tg| {
        let (client, limiter) = (&client, &limiter);
        async move {
            let mut calls = Vec::new();
            for id in 0..CALLS {
                let client = Arc::clone(client);
                // Two call sites, one limiter: a clone shares the tokens.
                let limiter = limiter.clone();
                calls.push(
                    tg.spawn(async move { Ok(limiter.to_thread(move || client.get(id)).await?) })?,
                );
            }
            let mut records = Vec::new();
            for call in calls {
                records.push(call.await?);
            }
            Ok(records)
        }
    })
    .await
    .expect("no call fails");
    assert_eq!(records.len(), CALLS);
    assert_eq!(records[7], "record 7");
    let most = client.most.load(Ordering::SeqCst);
    assert_eq!(most, CONNECTIONS);
    assert_eq!(limiter.borrowed_tokens(), 0);
    println!(
        "   {} records; the most calls inside the SDK at once: {most} (the limiter's {})",
        records.len(),
        limiter.total_tokens()
    );
}

async fn an_export_that_stops() {
    println!("== 2. A long export, cancelled by a timeout, sees its token and stops");
    let client = Arc::new(Client::new());
    let (stopped, pages) = std::sync::mpsc::channel();
    let c = Arc::clone(&client);
    let out = aio::timeout(
        Duration::from_millis(50),
        aio::to_thread_cancellable(move |token| {
            let written = c.export(&token);
            stopped.send(written).expect("the example waits for it");
            written
        }),
    )
    .await;
    assert!(
        out.is_err(),
        "the export is still running when the timeout fires"
    );
    let written = aio::to_thread(move || pages.recv().expect("the export reports"))
        .await
        .expect("waiting for the report");
    assert!(written < 100_000, "the export stopped early");
    println!("   the timeout fired; the export thread stopped after {written} page(s)");
}

async fn a_panic_in_the_sdk() {
    println!("== 3. A panic inside the SDK comes back as an error");
    // The default hook would print a backtrace hint from the blocking thread; print one
    // line instead, and put the default back afterwards.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| println!("   [panic hook] a thread panicked")));
    let limiter = CapacityLimiter::new(1);
    let err = limiter
        .to_thread(|| -> String { panic!("SDK invariant violated: empty token") })
        .await
        .unwrap_err();
    std::panic::set_hook(default_hook);
    assert!(matches!(err, ToThreadError::Panicked { .. }));
    println!("   {err}");
    let after = limiter
        .to_thread(|| "still working")
        .await
        .expect("no panic");
    assert_eq!(after, "still working");
    println!("   the next call through the same limiter: {after}");
}

/// The async side of the SDK's token callback: an HTTP call to the auth server in real
/// code.
async fn refresh_token(delay: Duration) -> String {
    tokio::time::sleep(delay).await;
    "token-42".to_owned()
}

/// The SDK's login: blocks, and calls back for a token, which `from_thread` fetches by
/// running async code in the task that waits for this thread.
fn login(refresh_delay: Duration) -> Result<String, FromThreadError> {
    let token = aio::from_thread(refresh_token(refresh_delay))?;
    Ok(format!("session for {token}"))
}

async fn a_callback_into_the_runtime() {
    println!("== 4. The SDK calls back into the runtime with from_thread");
    let session = aio::to_thread(|| login(Duration::from_millis(1)))
        .await
        .expect("no panic")
        .expect("the caller waits for the thread");
    assert_eq!(session, "session for token-42");
    println!("   {session}");
    // The refresh runs in the waiting task, so a timeout around that task reaches it: the
    // callback returns the cancellation in the thread, which reports it.
    let (report, reported) = std::sync::mpsc::channel();
    let out = aio::timeout(
        Duration::from_millis(20),
        aio::to_thread(move || report.send(login(Duration::from_secs(3600))).unwrap()),
    )
    .await;
    assert!(out.is_err(), "the timeout fired during the refresh");
    let login = aio::to_thread(move || reported.recv().expect("the thread reports"))
        .await
        .expect("no panic");
    assert!(matches!(login, Err(FromThreadError::Cancelled(_))));
    println!("   with a 20 ms timeout around it: {}", login.unwrap_err());
}
