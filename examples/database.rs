//! A database written by a producer/consumer pipeline: SQLite through `aio::to_thread`, one
//! call at a time under a `CapacityLimiter(1)`.
//!
//! SQLite's driver (rusqlite) is blocking, as many database drivers are, and a connection
//! may be used by one thread at a time. The example opens a real database file in a
//! directory of its own under the system's temporary directory and removes it at the end.
//! Every call goes through one `Db` handle: a `CapacityLimiter::new(1)` in front of the
//! connection, which is asyncpg's pool of one connection: callers wait for their turn
//! asynchronously, first come first served, and only the call holding the token runs, on a
//! thread of Tokio's blocking pool. (The connection sits in a `Mutex` because it is not
//! `Sync`; the limiter lets one call in at a time, so the example takes it with
//! `try_lock`, which would fail if two calls were ever inside at once.)
//!
//! 1. Two shops put twenty-five orders each into a bounded `aio::Queue`; three writers take
//!    them and insert a row each. The queue's `join()` says every order was written, its
//!    `shutdown()` ends the writers, and a query checks that every row landed, once.
//! 2. A batch of a thousand rows in one transaction, under a 20 ms timeout that fires
//!    while it runs. The call is `to_thread_cancellable`: the closure sees its
//!    `CancelToken` between rows and returns without committing, so the transaction rolls
//!    back. The table holds none of the batch: a cancelled write is all or nothing. (A
//!    plain `to_thread` call would run on unseen and commit the whole batch after the
//!    caller had given up.)
//!
//! Run it with `cargo run --example database`.
//!
//! It mirrors (asyncpg):
//!
//! ```python
//! pool = await asyncpg.create_pool("postgresql://localhost/shop", max_size=1)
//! queue = asyncio.Queue(maxsize=8)
//!
//! async def shop(name):
//!     for n in range(25):
//!         await queue.put((name, n, 100 * n + 99))
//!
//! async def writer():
//!     while True:
//!         try:
//!             shop, n, cents = await queue.get()
//!         except asyncio.QueueShutDown:
//!             return
//!         await pool.execute("INSERT INTO orders VALUES ($1, $2, $3)", shop, n, cents)
//!         queue.task_done()
//!
//! async with asyncio.TaskGroup() as tg:
//!     shops = [tg.create_task(shop(name)) for name in ("web", "phone")]
//!     for _ in range(3):
//!         tg.create_task(writer())
//!     await asyncio.gather(*shops)
//!     await queue.join()
//!     queue.shutdown()
//! rows = await pool.fetch("SELECT shop, count(*), sum(cents) FROM orders GROUP BY shop")
//!
//! async with pool.acquire() as conn:
//!     async with asyncio.timeout(0.02):         # the transaction rolls back
//!         async with conn.transaction():
//!             await conn.executemany("INSERT INTO orders VALUES ($1, $2, $3)", batch)
//! ```

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, CancelToken, CapacityLimiter, Queue, TaskGroup};
use rusqlite::{Connection, params};

/// The shops, and how many orders each one takes.
const SHOPS: [&str; 2] = ["web", "phone"];
const ORDERS_PER_SHOP: u32 = 25;
/// How many orders the queue holds.
const MAXSIZE: usize = 8;
/// How many writers insert the orders.
const WRITERS: usize = 3;
/// The rows of the batch in part 2.
const BATCH: u32 = 1_000;

/// An order: the shop, its number there, and its amount in cents.
type Order = (&'static str, u32, u32);

fn order(shop: &'static str, n: u32) -> Order {
    (shop, n, 100 * n + 99)
}

/// A database file in a directory of its own under the temporary directory, removed when
/// dropped.
struct TempDb {
    dir: PathBuf,
}

impl TempDb {
    fn new() -> std::io::Result<Self> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let name = format!("aio-database-{}-{now}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir(&dir)?;
        Ok(TempDb { dir })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("shop.sqlite3")
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A connection that one call at a time may use, from any task.
#[derive(Clone)]
struct Db {
    conn: Arc<Mutex<Connection>>,
    /// One token: the calls run one after another, in the order they asked.
    limiter: CapacityLimiter,
}

impl Db {
    fn open(path: PathBuf) -> rusqlite::Result<Db> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "CREATE TABLE orders (
                shop  TEXT    NOT NULL,
                n     INTEGER NOT NULL,
                cents INTEGER NOT NULL,
                PRIMARY KEY (shop, n)
            )",
        )?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
            limiter: CapacityLimiter::new(1),
        })
    }

    /// Runs `f` with the connection on a thread, once the limiter's token is free.
    async fn call<T, F>(&self, f: F) -> Result<T, BoxError>
    where
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let out = self
            .limiter
            .to_thread(move || f(&mut only_caller(&conn)))
            .await?;
        Ok(out?)
    }

    /// As [`call`](Self::call), and `f` gets a token that is cancelled if the caller is.
    async fn call_cancellable<T, F>(&self, f: F) -> Result<T, BoxError>
    where
        F: FnOnce(&mut Connection, CancelToken) -> rusqlite::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        let out = self
            .limiter
            .to_thread_cancellable(move |token| f(&mut only_caller(&conn), token))
            .await?;
        Ok(out?)
    }

    /// `INSERT` one order.
    async fn insert(&self, (shop, n, cents): Order) -> Result<(), BoxError> {
        self.call(move |conn| {
            conn.execute(
                "INSERT INTO orders (shop, n, cents) VALUES (?1, ?2, ?3)",
                params![shop, n, cents],
            )
        })
        .await?;
        Ok(())
    }

    /// Per shop: how many orders, their total, and their numbers in order.
    async fn summary(&self) -> Result<Vec<(String, u32, u32, Vec<u32>)>, BoxError> {
        self.call(|conn| {
            let mut totals = conn.prepare(
                "SELECT shop, count(*), sum(cents) FROM orders GROUP BY shop ORDER BY shop",
            )?;
            let mut numbers = conn.prepare("SELECT n FROM orders WHERE shop = ?1 ORDER BY n")?;
            let totals: Vec<(String, u32, u32)> = totals
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            let mut summary = Vec::new();
            for (shop, count, cents) in totals {
                let ns = numbers
                    .query_map([&shop], |row| row.get(0))?
                    .collect::<rusqlite::Result<Vec<u32>>>()?;
                summary.push((shop, count, cents, ns));
            }
            Ok(summary)
        })
        .await
    }

    async fn count(&self) -> Result<u32, BoxError> {
        self.call(|conn| conn.query_row("SELECT count(*) FROM orders", [], |row| row.get(0)))
            .await
    }
}

/// The connection, for the one call the limiter lets in.
fn only_caller(conn: &Mutex<Connection>) -> std::sync::MutexGuard<'_, Connection> {
    conn.try_lock()
        .expect("the limiter lets one call at a time use the connection")
}

pub(crate) fn main() {
    let db_file = TempDb::new().expect("a temporary directory");
    let path = db_file.path();
    let db = Db::open(path.clone()).expect("a new database");
    println!("   opened {}", path.display());
    aio::run(async {
        a_pipeline_of_writers(&db).await;
        a_batch_cut_off(&db).await;
    });
    drop(db);
    drop(db_file);
    assert!(!path.exists());
    println!("   removed {}", path.display());
}

async fn a_pipeline_of_writers(db: &Db) {
    println!(
        "== 1. {} shops, {WRITERS} writers, a queue of {MAXSIZE}, one connection",
        SHOPS.len()
    );
    let queue = Queue::new(MAXSIZE);
    let written = TaskGroup::<BoxError>::scope(|tg| {
        let queue = &queue;
        async move {
            let mut shops = Vec::new();
            for shop in SHOPS {
                let queue = queue.clone();
                shops.push(tg.spawn_named(shop, async move {
                    for n in 0..ORDERS_PER_SHOP {
                        queue.put(order(shop, n)).await?;
                    }
                    Ok(())
                })?);
            }
            let mut writers = Vec::new();
            for w in 1..=WRITERS {
                let (queue, db) = (queue.clone(), db.clone());
                writers.push(tg.spawn_named(format!("writer-{w}"), async move {
                    let mut written = 0;
                    // `get` fails once the queue is shut down and empty: the writer returns.
                    while let Ok(order) = queue.get().await {
                        db.insert(order).await?;
                        written += 1;
                        queue.task_done()?;
                    }
                    Ok(written)
                })?);
            }
            for shop in shops {
                shop.await?;
            }
            queue.join().await; // every order taken was written
            queue.shutdown(false); // ends the writers
            let mut written = Vec::new();
            for writer in writers {
                written.push(writer.await?);
            }
            Ok(written)
        }
    })
    .await
    .expect("every order is written");
    println!(
        "   the writers inserted {} rows ({}); the queue is shut down",
        written.iter().sum::<u32>(),
        written
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" + ")
    );

    // The check: every order landed, once, with its amount.
    let summary = db.summary().await.expect("the query");
    for (shop, count, cents, numbers) in &summary {
        println!("   SELECT ... GROUP BY shop: {shop}: {count} orders, {cents} cents");
        assert_eq!(*count, ORDERS_PER_SHOP);
        assert_eq!(*numbers, (0..ORDERS_PER_SHOP).collect::<Vec<_>>());
        let expected: u32 = (0..ORDERS_PER_SHOP).map(|n| order("", n).2).sum();
        assert_eq!(*cents, expected);
    }
    let mut shops: Vec<&str> = summary.iter().map(|s| s.0.as_str()).collect();
    shops.sort_unstable();
    assert_eq!(shops, ["phone", "web"]);
    assert_eq!(
        written.iter().sum::<u32>(),
        ORDERS_PER_SHOP * SHOPS.len() as u32
    );
    assert!(queue.is_shut_down() && queue.empty());
    assert_eq!(db.limiter.borrowed_tokens(), 0);
}

async fn a_batch_cut_off(db: &Db) {
    println!("== 2. a batch of {BATCH} rows in one transaction, under a 20 ms timeout");
    let before = db.count().await.expect("the count");
    let batch = db.call_cancellable(|conn, token| {
        let tx = conn.transaction()?;
        for n in 0..BATCH {
            if token.is_cancelled() {
                return Ok(None); // dropping `tx` rolls it back
            }
            tx.execute(
                "INSERT INTO orders (shop, n, cents) VALUES ('batch', ?1, 0)",
                [n],
            )?;
            // A slow disk: a millisecond a row, or less once the token is cancelled.
            token.wait_timeout(Duration::from_millis(1));
        }
        tx.commit()?;
        Ok(Some(BATCH))
    });
    let out = aio::timeout(Duration::from_millis(20), batch).await;
    println!(
        "   the batch: {}",
        match &out {
            Ok(_) => "committed".to_string(),
            Err(elapsed) => format!("{elapsed}"),
        }
    );
    assert!(out.is_err(), "a thousand rows take a second at least");
    // The next call waits for the limiter's token, which the batch's thread holds until its
    // closure returns: the count sees the transaction's end, whichever it was.
    let after = db.count().await.expect("the count");
    println!("   rows before: {before}, after: {after}: the transaction rolled back whole");
    assert_eq!(after, before);
}
