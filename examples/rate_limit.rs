//! Rate limiting with a semaphore: twelve simulated requests, at most three in flight.
//!
//! 1. `Semaphore::new(3)`: each request takes a permit with `acquire().await` (asyncio's
//!    `async with sem:`) and gives it back when the permit is dropped. All twelve tasks
//!    start at once and nine of them wait for a permit. The requests count how many are in
//!    flight and record the most ever seen: exactly three. (The first three wait at a gate
//!    until all three hold a permit, so that the limit is reached on every run, however
//!    the machine schedules the tasks; while they wait there, `try_acquire` fails.)
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
//!         return await client.get(f"/api/item/{i}")
//!
//! async with asyncio.TaskGroup() as tg:
//!     tasks = [tg.create_task(fetch(i)) for i in range(12)]
//!
//! pool = asyncio.BoundedSemaphore(2)
//! await pool.acquire()
//! pool.release()
//! pool.release()    # ValueError: BoundedSemaphore released too many times
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aio::{BoundedSemaphore, BoxError, Event, Semaphore, TaskGroup};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

/// How many requests there are.
const REQUESTS: usize = 12;
/// How many may be in flight at once.
const LIMIT: usize = 3;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// How long request `i` takes: 5 to 15 ms, by a fixed formula.
fn latency(i: usize) -> Duration {
    ms(5 + (i as u64 * 7) % 11)
}

/// What the requests share: the semaphore, and the counts they keep.
struct Client {
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
        sleep(latency(i)).await; // the network
        self.in_flight.send_modify(|n| *n -= 1);
        Ok(format!("item {i}"))
        // `_permit` is dropped here: the next waiting request gets it.
    }
}

pub(crate) fn main() {
    aio::run(async {
        three_at_a_time().await;
        a_release_too_many().await;
    });
}

async fn three_at_a_time() {
    println!("== 1. {REQUESTS} requests, a Semaphore({LIMIT})");
    let client = Arc::new(Client {
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
                tasks.push(tg.spawn_named(format!("GET /api/item/{i}"), async move {
                    client.fetch(i).await
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

    let responses: Vec<String> = responses
        .into_iter()
        .map(|t| t.result().expect("every request succeeded"))
        .collect();
    let most = client.most.load(Ordering::SeqCst);
    let one_by_one: Duration = (0..REQUESTS).map(latency).sum();
    println!(
        "   {} responses in {} ms (one after another: {} ms); most in flight at once: {most}",
        responses.len(),
        took.as_millis(),
        one_by_one.as_millis()
    );
    assert_eq!(responses.len(), REQUESTS);
    assert_eq!(responses[7], "item 7");
    assert_eq!(
        most, LIMIT,
        "never more than the limit, and the limit was used"
    );
    // Three at a time can do no better than a third of the time one at a time takes.
    assert!(took >= one_by_one / LIMIT as u32);
    assert_eq!(*client.in_flight.borrow(), 0);
    assert_eq!(client.sem.available_permits(), LIMIT);
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
