//! Workloads of the queues: one producer and one consumer, and many of each, over a bounded
//! queue. Each shape is written once, generic over the channel ([`Channel`]), and run with
//! aio's `Queue`, Tokio's `mpsc` (one consumer only), async-channel, kanal and crossfire.
//! Producers and consumers are Tokio tasks on every side.

use std::future::Future;

use aio::Queue;
use tokio::runtime::Runtime;
use tokio::task::JoinSet;

use super::sync::{join_all, share};
use super::{Sample, time_in_task};

/// A bounded channel of `usize`, as each side spells it.
pub(super) trait Channel: 'static {
    type Tx: Send + 'static;
    type Rx: Send + 'static;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx);
    fn send(tx: &mut Self::Tx, item: usize) -> impl Future<Output = ()> + Send;
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = usize> + Send;
}

/// aio's `Queue`: both ends are the queue.
pub(super) struct AioQueue;

impl Channel for AioQueue {
    type Tx = Queue<usize>;
    type Rx = Queue<usize>;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        let queue = Queue::new(capacity);
        (queue.clone(), queue)
    }
    async fn send(tx: &mut Self::Tx, item: usize) {
        tx.put(item).await.expect("queue shut down");
    }
    async fn recv(rx: &mut Self::Rx) -> usize {
        rx.get().await.expect("queue shut down")
    }
}

/// Tokio's `mpsc`: one consumer.
pub(super) struct TokioMpsc;

impl Channel for TokioMpsc {
    type Tx = tokio::sync::mpsc::Sender<usize>;
    type Rx = tokio::sync::mpsc::Receiver<usize>;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        tokio::sync::mpsc::channel(capacity)
    }
    async fn send(tx: &mut Self::Tx, item: usize) {
        tx.send(item).await.expect("receiver dropped");
    }
    async fn recv(rx: &mut Self::Rx) -> usize {
        rx.recv().await.expect("senders dropped")
    }
}

pub(super) struct AsyncChannel;

impl Channel for AsyncChannel {
    type Tx = async_channel::Sender<usize>;
    type Rx = async_channel::Receiver<usize>;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        async_channel::bounded(capacity)
    }
    async fn send(tx: &mut Self::Tx, item: usize) {
        tx.send(item).await.expect("channel closed");
    }
    async fn recv(rx: &mut Self::Rx) -> usize {
        rx.recv().await.expect("channel closed")
    }
}

pub(super) struct Kanal;

impl Channel for Kanal {
    type Tx = kanal::AsyncSender<usize>;
    type Rx = kanal::AsyncReceiver<usize>;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        kanal::bounded_async(capacity)
    }
    async fn send(tx: &mut Self::Tx, item: usize) {
        tx.send(item).await.expect("channel closed");
    }
    async fn recv(rx: &mut Self::Rx) -> usize {
        rx.recv().await.expect("channel closed")
    }
}

/// crossfire's multi-producer, multi-consumer flavour.
pub(super) struct CrossfireMpmc;

impl Channel for CrossfireMpmc {
    type Tx = crossfire::MAsyncTx<crossfire::mpmc::Array<usize>>;
    type Rx = crossfire::MAsyncRx<crossfire::mpmc::Array<usize>>;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        crossfire::mpmc::bounded_async(capacity)
    }
    async fn send(tx: &mut Self::Tx, item: usize) {
        tx.send(item).await.expect("channel closed");
    }
    async fn recv(rx: &mut Self::Rx) -> usize {
        rx.recv().await.expect("channel closed")
    }
}

/// crossfire's single-producer, single-consumer flavour: what a user who has one of each
/// picks.
pub(super) struct CrossfireSpsc;

impl Channel for CrossfireSpsc {
    type Tx = crossfire::AsyncTx<crossfire::spsc::Array<usize>>;
    type Rx = crossfire::AsyncRx<crossfire::spsc::Array<usize>>;
    fn bounded(capacity: usize) -> (Self::Tx, Self::Rx) {
        crossfire::spsc::bounded_async(capacity)
    }
    async fn send(tx: &mut Self::Tx, item: usize) {
        tx.send(item).await.expect("channel closed");
    }
    async fn recv(rx: &mut Self::Rx) -> usize {
        rx.recv().await.expect("channel closed")
    }
}

// --- queue_spsc_bounded{CAP}: one producer, one consumer, n items in order --------------

pub(super) fn spsc<C: Channel, const CAP: usize>(rt: &Runtime, n: usize) -> Sample {
    let (elapsed, in_order) = time_in_task(rt, async move {
        let (mut tx, mut rx) = C::bounded(CAP);
        let producer = tokio::spawn(async move {
            for i in 0..n {
                C::send(&mut tx, i).await;
            }
        });
        let consumer = tokio::spawn(async move {
            let mut in_order = 0_usize;
            for i in 0..n {
                in_order += usize::from(C::recv(&mut rx).await == i);
            }
            in_order
        });
        producer.await.expect("producer panicked");
        consumer.await.expect("consumer panicked")
    });
    assert_eq!(
        in_order, n,
        "queue_spsc: items lost, repeated or out of order"
    );
    elapsed.into()
}

// --- queue_mpmc_{P}x{C}_bounded{CAP}: P producers put n items, C consumers get them ----

/// Checks that the consumers got every item below `n` exactly once, in any order.
fn check_each_once(got: &[Vec<usize>], n: usize) {
    let mut seen = vec![false; n];
    for &i in got.iter().flatten() {
        assert!(i < n, "queue_mpmc: item {i} out of range");
        assert!(!seen[i], "queue_mpmc: item {i} arrived twice");
        seen[i] = true;
    }
    assert!(seen.iter().all(|&s| s), "queue_mpmc: an item was lost");
}

pub(super) fn mpmc<C, const P: usize, const Q: usize, const CAP: usize>(
    rt: &Runtime,
    n: usize,
) -> Sample
where
    C: Channel<Tx: Clone, Rx: Clone>,
{
    let (elapsed, got) = time_in_task(rt, async move {
        // The first ends stay open until the consumers are done, so that no side sees its
        // channel close early.
        let (tx, rx) = C::bounded(CAP);
        let mut producers = JoinSet::new();
        for k in 0..P {
            let mut tx = tx.clone();
            producers.spawn(async move {
                for i in share(n, k, P) {
                    C::send(&mut tx, i).await;
                }
            });
        }
        let mut consumers = JoinSet::new();
        for k in 0..Q {
            let mut rx = rx.clone();
            let count = share(n, k, Q).len();
            consumers.spawn(async move {
                let mut got = Vec::with_capacity(count);
                for _ in 0..count {
                    got.push(C::recv(&mut rx).await);
                }
                got
            });
        }
        join_all(producers).await;
        let got = join_all(consumers).await;
        drop((tx, rx));
        got
    });
    check_each_once(&got, n);
    elapsed.into()
}
