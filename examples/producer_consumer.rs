//! Producers and consumers around a bounded queue: two shops take thirty orders, three
//! packers process them through an `aio::Queue` of at most ten, and the queue's `join()`
//! and `shutdown()` end the work without a sentinel.
//!
//! 1. The queue holds at most ten orders. The producers start first: they fill the queue,
//!    and then a put waits for room (backpressure) until the consumers start. Each consumer
//!    calls `task_done()` for every order it has processed. The producer side waits for
//!    both producers, then `join()`s the queue, which returns once every order is done, and
//!    calls `shutdown(false)`. That is what ends the consumers: the `get()` each one waits
//!    in returns `Err(GetError::ShutDown)`, and the consumer returns. Every order was
//!    processed exactly once, and the queue takes no more.
//! 2. `shutdown(true)`, immediate: ten orders queued, a consumer busy with the first. The
//!    nine others are dropped at once, puts are refused with the order handed back, and
//!    `join()` waits only for the order in progress: the dropped ones count as done. (The
//!    consumer finishes its order once the queue is shut down, so that the shutdown comes
//!    in the middle of it on every run.)
//! 3. A producer that is not async: a plain thread (a vendor SDK's callback thread, say)
//!    puts with `blocking_put`, which blocks the thread, not the runtime, while the queue is
//!    full; `n_waiting_putters()` shows it waiting. And an async put cut short by a timeout
//!    has put nothing (asyncio's rule, and Tokio's), so retrying it cannot duplicate the
//!    order.
//!
//! Why not asyncio's `None` sentinel: the queue would carry `Option<Order>`, and with
//! several consumers each one must put the sentinel back for the next (the producer puts
//! one, the first consumer to get it puts it back, and so on), or the producer must know
//! how many consumers there are. A shutdown reaches every consumer, waiting or not, once
//! the orders left in the queue have been handed out.
//!
//! Run it with `cargo run --example producer_consumer`.
//!
//! It mirrors (with asyncio 3.13's `Queue.shutdown` in place of the sentinel):
//!
//! ```python
//! queue = asyncio.Queue(maxsize=10)
//!
//! async def producer(shop):
//!     for n in range(15):
//!         await queue.put(f"{shop}-{n:02}")
//!
//! async def consumer():
//!     while True:
//!         try:
//!             order = await queue.get()
//!         except asyncio.QueueShutDown:          # instead of `if order is None: break`
//!             return
//!         await process(order)
//!         queue.task_done()
//!
//! async with asyncio.TaskGroup() as tg:
//!     producers = [tg.create_task(producer(shop)) for shop in ("web", "phone")]
//!     for _ in range(3):
//!         tg.create_task(consumer())
//!     await asyncio.gather(*producers)
//!     await queue.join()                          # every order processed
//!     queue.shutdown()                            # ends the consumers
//! ```

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aio::{BoxError, Event, GetError, PutError, Queue, TaskGroup};
use tokio::sync::{oneshot, watch};
use tokio::time::sleep;

/// The most orders the queue holds.
const MAXSIZE: usize = 10;
/// The producers, and how many orders each one puts.
const SHOPS: [&str; 2] = ["web", "phone"];
const ORDERS_PER_SHOP: usize = 15;
/// How many consumers process the orders.
const CONSUMERS: usize = 3;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn order(shop: &str, n: usize) -> String {
    format!("{shop}-{n:02}")
}

/// How long a consumer takes for its `n`th order: 1 to 3 ms.
fn work(n: usize) -> Duration {
    ms(1 + (n % 3) as u64)
}

pub(crate) fn main() {
    aio::run(async {
        join_then_shutdown().await;
        immediate_shutdown().await;
        thread_producer_and_retried_put().await;
    });
}

async fn join_then_shutdown() {
    println!("== 1. two producers, three consumers, a queue of at most {MAXSIZE}");
    let queue = Queue::new(MAXSIZE);
    // Every order processed, by whom.
    let processed: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    // How many orders the queue has accepted so far.
    let accepted = watch::Sender::new(0);
    let consumers = TaskGroup::<BoxError>::scope(|tg| {
        let (queue, processed, accepted) = (&queue, &processed, &accepted);
        async move {
            let mut producers = Vec::new();
            for shop in SHOPS {
                let (queue, accepted) = (queue.clone(), accepted.clone());
                producers.push(tg.spawn_named(shop, async move {
                    for n in 0..ORDERS_PER_SHOP {
                        queue.put(order(shop, n)).await?;
                        accepted.send_modify(|a| *a += 1);
                    }
                    Ok(())
                })?);
            }

            // No consumer yet: the producers fill the queue, and their next put waits.
            accepted.subscribe().wait_for(|a| *a == MAXSIZE).await?;
            let refused = queue.put_nowait("extra".to_string()).unwrap_err();
            println!(
                "   the producers filled the queue ({} orders, full() = {}); a put now waits \
                 for room, and put_nowait fails: {refused}",
                queue.qsize(),
                queue.full()
            );
            assert!(queue.full() && queue.qsize() == MAXSIZE);
            assert!(matches!(refused, PutError::Full(_)));

            let mut consumers = Vec::new();
            for c in 1..=CONSUMERS {
                let (queue, processed) = (queue.clone(), Arc::clone(processed));
                consumers.push(tg.spawn_named(format!("consumer-{c}"), async move {
                    let mut done = 0;
                    loop {
                        let order = match queue.get().await {
                            Ok(order) => order,
                            Err(shut_down) => {
                                println!(
                                    "   consumer {c}: get() -> Err({shut_down}); it returns, \
                                     after {done} orders"
                                );
                                assert_eq!(shut_down, GetError::ShutDown);
                                return Ok(done);
                            }
                        };
                        sleep(work(done)).await;
                        processed.lock().unwrap().push((c, order));
                        done += 1;
                        queue.task_done()?;
                    }
                })?);
            }

            for producer in producers {
                producer.await?;
            }
            queue.join().await;
            let done = processed.lock().unwrap().len();
            println!(
                "   both producers returned, and join() returned with {done} orders processed: \
                 shutdown(false)"
            );
            assert_eq!(done, SHOPS.len() * ORDERS_PER_SHOP);
            queue.shutdown(false);
            Ok(consumers)
        }
    })
    .await
    .expect("no task fails");

    // Each consumer ended on the shutdown, and together they processed every order once.
    let counts: Vec<usize> = consumers
        .into_iter()
        .map(|c| c.result().expect("a consumer returns on the shutdown"))
        .collect();
    let processed = processed.lock().unwrap().clone();
    let mut orders: Vec<String> = processed.iter().map(|(_, o)| o.clone()).collect();
    orders.sort();
    let mut expected: Vec<String> = SHOPS
        .iter()
        .flat_map(|shop| (0..ORDERS_PER_SHOP).map(move |n| order(shop, n)))
        .collect();
    expected.sort();
    let distinct: HashSet<&String> = orders.iter().collect();
    println!(
        "   every order processed exactly once: {} orders, {} distinct, {} expected \
         (consumers: {})",
        orders.len(),
        distinct.len(),
        expected.len(),
        counts
            .iter()
            .map(usize::to_string)
            .collect::<Vec<_>>()
            .join(" + ")
    );
    assert_eq!(orders, expected);
    assert_eq!(distinct.len(), expected.len());
    assert_eq!(counts.iter().sum::<usize>(), expected.len());
    for c in 1..=CONSUMERS {
        let by_c = processed.iter().filter(|(by, _)| *by == c).count();
        assert_eq!(by_c, counts[c - 1]);
    }

    let refused = queue.put_nowait("late".to_string()).unwrap_err();
    println!("   a put after the shutdown: {refused}");
    assert!(refused.is_shut_down());
    assert_eq!(refused.into_inner(), "late");
}

async fn immediate_shutdown() {
    println!("== 2. shutdown(true): the backlog is dropped at once");
    let queue = Queue::new(MAXSIZE);
    for n in 0..MAXSIZE {
        queue.put_nowait(order("batch", n)).unwrap();
    }
    let processed = Arc::new(Mutex::new(Vec::new()));
    // Set once the queue is shut down: the consumer finishes its order then.
    let stopped = Arc::new(Event::new());
    TaskGroup::<BoxError>::scope(|tg| {
        let (queue, processed, stopped) = (&queue, &processed, &stopped);
        async move {
            let (started, working_on) = oneshot::channel();
            {
                let (queue, processed, stopped) =
                    (queue.clone(), Arc::clone(processed), Arc::clone(stopped));
                tg.spawn_named("consumer", async move {
                    let order = queue.get().await?;
                    started.send(order.clone()).unwrap();
                    stopped.wait().await;
                    processed.lock().unwrap().push(order);
                    queue.task_done()?;
                    let next = queue.get().await;
                    println!("   the consumer's next get() -> {next:?}: it returns");
                    assert_eq!(next, Err(GetError::ShutDown));
                    Ok(())
                })?;
            }

            let working_on = working_on.await?;
            println!(
                "   the consumer is working on {working_on}; {} orders wait behind it",
                queue.qsize()
            );
            assert_eq!((working_on.as_str(), queue.qsize()), ("batch-00", 9));

            queue.shutdown(true);
            let refused = queue.put_nowait(order("batch", MAXSIZE)).unwrap_err();
            println!(
                "   shutdown(true): {} orders left in the queue; a put is refused ({refused}) and \
                 hands back {}",
                queue.qsize(),
                refused.clone().into_inner()
            );
            assert!(queue.empty() && refused.is_shut_down());

            stopped.set();
            queue.join().await;
            let processed = processed.lock().unwrap().clone();
            println!(
                "   join() returned once the order in progress was done ({processed:?}); the \
                 dropped ones count as done"
            );
            assert_eq!(processed, ["batch-00"]);
            Ok(())
        }
    })
    .await
    .expect("no task fails");
}

async fn thread_producer_and_retried_put() {
    println!("== 3. a producer on a plain thread, and a put retried after a timeout");
    let queue = Queue::new(2);
    let producer = std::thread::spawn({
        let queue = queue.clone();
        move || {
            for n in 0..4 {
                queue.blocking_put(order("sdk", n)).expect("open");
            }
        }
    });
    // The thread fills the queue, and its third put waits for room.
    while queue.n_waiting_putters() == 0 {
        sleep(ms(1)).await;
    }
    println!(
        "   the thread filled the queue ({} orders) and waits in blocking_put: \
         n_waiting_putters() = {}",
        queue.qsize(),
        queue.n_waiting_putters()
    );
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(queue.get().await.expect("open"));
    }
    producer.join().expect("the producer thread");

    // The queue is full again; a put that times out has put nothing, so it is retried as is.
    queue.put_nowait(order("web", 0)).unwrap();
    queue.put_nowait(order("web", 1)).unwrap();
    let retried = order("web", 2);
    let mut attempts = 0;
    let consumer = tokio::spawn({
        let queue = queue.clone();
        async move {
            sleep(ms(5)).await;
            queue.get().await
        }
    });
    loop {
        attempts += 1;
        match aio::timeout(ms(2), queue.put(retried.clone())).await {
            Ok(put) => break put.expect("open"),
            Err(_elapsed) => continue,
        }
    }
    got.push(consumer.await.expect("the consumer").expect("open"));
    while let Ok(order) = queue.get_nowait() {
        got.push(order);
    }
    println!("   the put of {retried} went in after {attempts} attempts; the queue gave {got:?}");
    assert_eq!(got.iter().filter(|o| **o == retried).count(), 1);
    assert_eq!(got.len(), 7);
}
