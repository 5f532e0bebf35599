//! A write that must finish even when the task that started it is cancelled: `shield`, a
//! shield with its own timeout, and `shield_detached`.
//!
//! 1. `shield(write)` in place: the task is cancelled while it writes (a sibling failed);
//!    the write completes, and the task stops at its next `.await`.
//! 2. `shield(write).timeout(d)`: the same, for a write that may hang; the shield gives up
//!    after `d` with `Err(Elapsed)`.
//! 3. `shield_detached(write)`: asyncio's behaviour. The caller is cancelled at once and the
//!    write carries on as a task of the nearest group, which waits for it.
//! 4. A hard drop (`tokio::select!` dropping the future): the in-place shield's write is
//!    lost with it; the detached one survives.
//!
//! The difference from asyncio: `asyncio.shield(aw)` wraps `aw` in a task and protects only
//! that task; the caller gets `CancelledError` at once, and the write runs on unobserved
//! (keep a reference to it or it may be garbage collected). aio's `shield` is Trio's
//! shielded cancel scope instead: the caller itself waits for the write, in place (no task,
//! no `'static` bound), so when it moves on the write is known to be done; the cancellation
//! lands at its next `.await`. `shield_detached` is asyncio's form, with an owner.
//!
//! Run it with `cargo run --example shield_critical_write`.
//!
//! It mirrors:
//!
//! ```python
//! async def save_order(db, order):
//!     await asyncio.shield(critical_write(db, order))
//!     await notify_customer(order)
//!
//! async with asyncio.TaskGroup() as tg:
//!     tg.create_task(save_order(db, "order #1"))
//!     tg.create_task(charge_card())  # fails 10 ms into the write
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, TaskGroup, on_cancel, shield, shield_detached};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Milliseconds since `start`, for the printout.
fn at(start: Instant) -> u128 {
    start.elapsed().as_millis()
}

/// One round trip to the database.
const ROUND_TRIP: Duration = Duration::from_millis(60);

/// The pretend database: the records it has committed.
#[derive(Clone)]
struct Db {
    start: Instant,
    committed: Arc<Mutex<Vec<&'static str>>>,
    /// Set once a write has started.
    writing: Arc<watch::Sender<bool>>,
}

impl Db {
    fn new() -> Db {
        Db {
            start: Instant::now(),
            committed: Arc::default(),
            writing: Arc::new(watch::Sender::new(false)),
        }
    }

    fn has(&self, record: &str) -> bool {
        self.committed.lock().unwrap().contains(&record)
    }

    /// Waits until a write has started.
    async fn write_started(&self) {
        let mut writing = self.writing.subscribe();
        writing
            .wait_for(|started| *started)
            .await
            .expect("the db keeps the sender");
    }
}

/// `critical_write(db, record)`: two round trips. The record is committed at the end, so a
/// write dropped half-way is lost.
async fn critical_write(db: Db, record: &'static str) {
    db.writing.send_replace(true);
    sleep(ROUND_TRIP).await; // send the record
    sleep(ROUND_TRIP).await; // wait for the commit
    db.committed.lock().unwrap().push(record);
    println!("   {:>3} ms db: {record} committed", at(db.start));
}

/// The same write to a disk that has stalled: it would take ten seconds.
async fn stalled_write(db: Db, record: &'static str) {
    db.writing.send_replace(true);
    sleep(Duration::from_secs(10)).await;
    db.committed.lock().unwrap().push(record);
}

async fn notify_customer() {
    sleep(ms(5)).await;
}

/// A sibling task that fails 10 ms after the write has started, cancelling the rest of its
/// group while the write is under way.
async fn charge_card(db: Db) -> Result<(), BoxError> {
    db.write_started().await;
    sleep(ms(10)).await;
    println!(
        "   {:>3} ms charge-card: declined, the group cancels save-order",
        at(db.start)
    );
    Err("card declined".into())
}

pub(crate) fn main() {
    aio::run(async {
        shield_in_place().await;
        shield_with_a_timeout().await;
        shield_detached_like_asyncio().await;
        hard_drop().await;
    });
}

async fn shield_in_place() {
    println!("== 1. shield(write): the write completes, then the cancelled task stops");
    let db = Db::new();
    let start = db.start;
    let notified = Arc::new(AtomicBool::new(false));
    let (d, d2, n) = (db.clone(), db.clone(), Arc::clone(&notified));
    let err = TaskGroup::<BoxError>::scope(|tg| async move {
        tg.spawn_named("save-order", async move {
            shield(critical_write(d, "order #1")).await;
            println!(
                "   {:>3} ms save-order: the write is done; next await is cancelled",
                at(start)
            );
            notify_customer().await; // the cancellation lands here
            n.store(true, Ordering::SeqCst);
            Ok(())
        })?;
        tg.spawn_named("charge-card", charge_card(d2))?;
        Ok(())
    })
    .await
    .unwrap_err();
    println!("   {:>3} ms the group returned: {err}", at(start));
    assert!(db.has("order #1"));
    assert!(
        !notified.load(Ordering::SeqCst),
        "cancelled at the await after the shield"
    );
    assert_eq!(err.first().unwrap().name(), Some("charge-card"));
    assert!(
        start.elapsed() >= ROUND_TRIP * 2,
        "the group waited for the shielded write"
    );
}

async fn shield_with_a_timeout() {
    println!("== 2. shield(write).timeout(50 ms): a shielded write that may hang");
    let db = Db::new();
    let start = db.start;
    let (d, d2) = (db.clone(), db.clone());
    let err = TaskGroup::<BoxError>::scope(|tg| async move {
        tg.spawn_named("save-order", async move {
            match shield(stalled_write(d, "order #2")).timeout(ms(50)).await {
                Ok(()) => println!("   the write finished"),
                Err(elapsed) => {
                    println!(
                        "   {:>3} ms save-order: gave up on the write: {elapsed}",
                        at(start)
                    );
                }
            }
            notify_customer().await; // cancelled here
            Ok(())
        })?;
        tg.spawn_named("charge-card", charge_card(d2))?;
        Ok(())
    })
    .await
    .unwrap_err();
    println!("   {:>3} ms the group returned: {err}", at(start));
    // The shield gave up on the write, which never committed: the group did not wait ten
    // seconds for it.
    assert!(!db.has("order #2"));
    assert!(start.elapsed() >= ms(50));
}

async fn shield_detached_like_asyncio() {
    println!("== 3. shield_detached(write): the caller is cancelled at once, the write runs on");
    let db = Db::new();
    let start = db.start;
    let (d, d2, d3) = (db.clone(), db.clone(), db.clone());
    let caller_waited = Arc::new(AtomicBool::new(true));
    let waited = Arc::clone(&caller_waited);
    let err = TaskGroup::<BoxError>::scope(|tg| async move {
        tg.spawn_named(
            "save-order",
            on_cancel(
                async move {
                    // The write becomes a task of this group, out of reach of its cancellation.
                    let write = shield_detached(critical_write(d, "order #3"));
                    write.await?; // the caller is cancelled here, 10 ms into the write
                    notify_customer().await;
                    Ok(())
                },
                move |_| async move {
                    println!(
                        "   {:>3} ms save-order: cancelled while waiting; the write runs on",
                        at(start)
                    );
                    waited.store(d2.has("order #3"), Ordering::SeqCst);
                    Ok(())
                },
            ),
        )?;
        tg.spawn_named("charge-card", charge_card(d3))?;
        Ok(())
    })
    .await
    .unwrap_err();
    println!(
        "   {:>3} ms the group returned, after the write: {err}",
        at(start)
    );
    assert!(db.has("order #3"));
    assert!(
        !caller_waited.load(Ordering::SeqCst),
        "the caller was cancelled before the write committed"
    );
    assert!(
        start.elapsed() >= ROUND_TRIP * 2,
        "the group waited for the detached write"
    );
}

async fn hard_drop() {
    println!("== 4. dropped by tokio::select!: shield's write is lost, shield_detached's is not");
    let db = Db::new();
    let start = db.start;
    let write = shield(critical_write(db.clone(), "order #4"));
    tokio::select! {
        // The timer is polled first: it is due long before the write can end.
        biased;
        () = sleep(ms(10)) => {
            println!("   {:>3} ms select!: timer won; shield and write are dropped", at(start));
        }
        () = write => unreachable!("the write takes two round trips"),
    }
    sleep(ROUND_TRIP * 3).await; // long after the write would have committed
    println!(
        "   {:>3} ms order #4 committed: {}",
        at(start),
        db.has("order #4")
    );
    assert!(!db.has("order #4"), "a shield cannot survive a hard drop");

    TaskGroup::<BoxError>::scope(|_tg| async {
        // The timer starts before the write, and is polled first.
        let timer = sleep(ms(10));
        let write = shield_detached(critical_write(db.clone(), "order #5"));
        tokio::select! {
            biased;
            () = timer => {
                println!("   {:>3} ms select!: timer won; only the handle is dropped", at(start));
            }
            _ = write => unreachable!("the write takes two round trips"),
        }
        Ok(())
    })
    .await
    .expect("nothing fails");
    println!("   {:>3} ms the group returned, after the write", at(start));
    assert!(db.has("order #5"));
}
