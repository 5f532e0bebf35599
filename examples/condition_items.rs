//! A condition variable around a shared list: consumers wait for items, a producer adds
//! them and wakes one consumer or all of them.
//!
//! 1. Three consumers take the condition's lock and `wait_for` the list to hold an item
//!    (or the shop to close); `wait_for` releases the lock while it waits. They start
//!    waiting one after another, so `c1` has waited longest. The producer adds an item
//!    under the lock and calls `notify(1)`: it wakes exactly one consumer, the one that has
//!    waited longest. Then it adds three items and calls `notify_all()`: all three wake, and
//!    each checks the list again with the lock held; the first to get the lock may well
//!    take all three, and the others find the list empty and wait again. Last, it closes
//!    the shop and calls `notify_all()`: each consumer finds the list empty and the shop
//!    closed, and returns.
//! 2. A notification that finds nobody waiting is not stored: `notify(1)` returns 0, and a
//!    `wait()` that starts after it is not woken by it. (Unlike `tokio::sync::Notify`,
//!    whose `notify_one` keeps a permit for the next waiter; asyncio's `Condition` keeps
//!    none either.)
//!
//! The condition's lock guards no data: the list lives in a `std::sync::Mutex` next to
//! it, changed only while the condition's lock is held, so no change can fall between a
//! consumer's check and its wait.
//!
//! Run it with `cargo run --example condition_items`.
//!
//! It mirrors:
//!
//! ```python
//! condition = asyncio.Condition()
//! items, closed = [], False
//!
//! async def consumer(name):
//!     while True:
//!         async with condition:
//!             await condition.wait_for(lambda: items or closed)
//!             if not items:
//!                 return
//!             item = items.pop()
//!         print(f"{name} took {item}")
//!
//! async def add(*new, everyone):
//!     async with condition:
//!         items.extend(new)
//!         if everyone:
//!             condition.notify_all()
//!         else:
//!             condition.notify(1)
//! ```

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aio::{BoxError, Condition, TaskGroup, timeout};
use tokio::task::yield_now;

const CONSUMERS: [&str; 3] = ["c1", "c2", "c3"];

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What the consumers wait on.
#[derive(Default)]
struct Shelf {
    items: Vec<&'static str>,
    closed: bool,
}

/// The condition, and the state it is about.
#[derive(Default)]
struct Shop {
    cond: Condition,
    shelf: Mutex<Shelf>,
    /// Who took what, in order.
    taken: Mutex<Vec<(&'static str, &'static str)>>,
}

impl Shop {
    fn shelf(&self) -> MutexGuard<'_, Shelf> {
        self.shelf.lock().unwrap()
    }

    fn taken(&self) -> Vec<(&'static str, &'static str)> {
        self.taken.lock().unwrap().clone()
    }

    /// Takes items until the shop closes; returns how many it took.
    async fn consumer(&self, name: &'static str) -> usize {
        let mut took = 0;
        loop {
            let guard = self.cond.lock().await;
            let guard = self
                .cond
                .wait_for(guard, || {
                    let shelf = self.shelf();
                    !shelf.items.is_empty() || shelf.closed
                })
                .await;
            let item = self.shelf().items.pop();
            drop(guard);
            let Some(item) = item else {
                println!("   {name}: the shop is closed; it returns (it took {took})");
                return took;
            };
            println!("   {name} took {item}");
            self.taken.lock().unwrap().push((name, item));
            took += 1;
        }
    }

    /// Adds `items` under the lock, then wakes one consumer or all of them; returns how
    /// many were woken. It prints while it holds the lock: no woken consumer can return
    /// from its wait before that.
    async fn add(&self, items: &[&'static str], everyone: bool) -> usize {
        let _guard = self.cond.lock().await;
        self.shelf().items.extend(items);
        let (call, woken) = if everyone {
            ("notify_all()", self.cond.notify_all())
        } else {
            ("notify(1)", self.cond.notify(1))
        };
        println!("   added {}; {call} woke {woken}", items.join(", "));
        woken
    }

    /// Closes the shop under the lock, and wakes every consumer; returns how many.
    async fn close(&self) -> usize {
        let _guard = self.cond.lock().await;
        self.shelf().closed = true;
        let woken = self.cond.notify_all();
        println!("   closed the shop; notify_all() woke {woken}");
        woken
    }

    /// Waits until `n` tasks wait on the condition. (`n_waiting` is a snapshot: yield to
    /// let them get there.)
    async fn until_waiting(&self, n: usize) {
        while self.cond.n_waiting() != n {
            yield_now().await;
        }
    }

    /// Waits until the shelf is empty and every consumer waits again.
    async fn until_idle(&self) {
        while !(self.shelf().items.is_empty() && self.cond.n_waiting() == CONSUMERS.len()) {
            yield_now().await;
        }
    }
}

pub(crate) fn main() {
    aio::run(async {
        notify_one_or_all().await;
        nobody_waiting().await;
    });
}

async fn notify_one_or_all() {
    println!("== 1. three consumers wait for items: notify(1), then notify_all()");
    let shop = Arc::new(Shop::default());
    let counts = TaskGroup::<BoxError>::scope(|tg| {
        let shop = &shop;
        async move {
            let mut consumers = Vec::new();
            for (i, name) in CONSUMERS.into_iter().enumerate() {
                let consumer = Arc::clone(shop);
                consumers
                    .push(tg.spawn_named(name, async move { Ok(consumer.consumer(name).await) })?);
                // One after another: `c1` waits longest.
                shop.until_waiting(i + 1).await;
            }
            println!("   {} consumers wait", shop.cond.n_waiting());

            let woken = shop.add(&["apple"], false).await;
            assert_eq!(woken, 1);
            shop.until_idle().await;
            assert_eq!(shop.taken(), [("c1", "apple")], "the longest waiter");

            let woken = shop.add(&["bread", "cheese", "dates"], true).await;
            assert_eq!(woken, CONSUMERS.len());
            shop.until_idle().await;
            let mut items: Vec<&str> = shop.taken().into_iter().map(|(_, item)| item).collect();
            items.sort_unstable();
            assert_eq!(items, ["apple", "bread", "cheese", "dates"]);

            let woken = shop.close().await;
            assert_eq!(woken, CONSUMERS.len());
            Ok(consumers)
        }
    })
    .await
    .expect("no consumer fails");

    let counts: Vec<usize> = counts.into_iter().map(|c| c.result().unwrap()).collect();
    let by_whom: Vec<String> = (CONSUMERS.iter().zip(&counts))
        .map(|(name, n)| format!("{name} {n}"))
        .collect();
    println!(
        "   every item taken once: {} items ({})",
        counts.iter().sum::<usize>(),
        by_whom.join(", ")
    );
    assert_eq!(counts.iter().sum::<usize>(), 4);
    assert!(counts[0] >= 1, "c1 took the apple");
}

async fn nobody_waiting() {
    println!("== 2. a notification with nobody waiting is not stored");
    let cond = Condition::new();
    let woken = {
        let _guard = cond.lock().await;
        cond.notify(1)
    };
    println!("   notify(1) with nobody waiting woke {woken}");
    assert_eq!(woken, 0);
    // A wait that starts afterwards finds no notification waiting for it: it waits until
    // the timeout gives up on it.
    let guard = cond.lock().await;
    let Err(elapsed) = timeout(ms(20), cond.wait(guard)).await else {
        panic!("the wait was woken by a notification sent before it started");
    };
    println!("   a wait() that started afterwards was not woken by it: {elapsed}");
    assert!(!cond.locked(), "the timed-out wait holds no lock");
}
