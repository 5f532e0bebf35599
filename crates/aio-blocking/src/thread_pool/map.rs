//! [`ThreadPoolMap`]: the lazy, ordered stream [`ThreadPool::map`](crate::ThreadPool::map)
//! returns.

use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;

use super::job::{JobHandle, submit};
use super::worker::Shared;
use crate::JobError;

/// The results of [`ThreadPool::map`](crate::ThreadPool::map), in input order.
///
/// Lazy: nothing is taken from the input or submitted until the stream is polled. Then
/// at most [`buffered`](Self::buffered) jobs are submitted ahead of the result the stream
/// waits for (CPython 3.14's `map(buffersize=)`); each result handed out makes room for
/// the next item. Dropping the stream cancels the submitted jobs that have not started
/// and takes nothing more from the input.
///
/// If the pool is shut down (or broken) while the stream still has input, the stream yields
/// the results of the jobs already submitted, then one [`JobError::Shutdown`] (or
/// [`JobError::Broken`]), and ends.
///
/// # Cancel safety
///
/// Dropping a `next()` future loses nothing: a result leaves the stream only when it is
/// handed out, so the next call returns it.
#[must_use = "streams do nothing unless polled"]
pub struct ThreadPoolMap<I, F, T> {
    shared: Arc<Shared>,
    items: Option<I>,
    f: Arc<F>,
    in_flight: VecDeque<Slot<T>>,
    bound: usize,
}

enum Slot<T> {
    Job(JobHandle<T>),
    /// The pool refused the next item: it is shut down, or broken.
    Refused(JobError),
}

// Nothing in the stream is ever pinned: the items are plain iterators, and the jobs are
// handles that are `Unpin`.
impl<I, F, T> Unpin for ThreadPoolMap<I, F, T> {}

impl<I, F, T> ThreadPoolMap<I, F, T> {
    pub(crate) fn new(shared: Arc<Shared>, items: I, f: F, bound: usize) -> Self {
        ThreadPoolMap {
            shared,
            items: Some(items),
            f: Arc::new(f),
            in_flight: VecDeque::new(),
            bound,
        }
    }

    /// Sets how many jobs may be submitted ahead of the result the stream waits for: the
    /// memory bound of the map. The default is the pool's `max_workers`, enough to keep
    /// every worker busy.
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use futures::StreamExt;
    /// use aio_blocking::ThreadPool;
    ///
    /// let pool = ThreadPool::new(4).unwrap();
    /// let squares: Vec<_> = pool.map(|x: u64| x * x, 0..10).buffered(2).collect().await;
    /// assert_eq!(squares[9], Ok(81));
    /// # }
    /// ```
    #[track_caller]
    pub fn buffered(mut self, n: usize) -> Self {
        assert!(n >= 1, "buffered must be at least 1");
        self.bound = n;
        self
    }
}

impl<I, F, T> Stream for ThreadPoolMap<I, F, T>
where
    I: Iterator,
    I::Item: Send + 'static,
    F: Fn(I::Item) -> T + Send + Sync + 'static,
    T: Send + 'static,
{
    type Item = Result<T, JobError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        while this.in_flight.len() < this.bound {
            let Some(items) = this.items.as_mut() else {
                break;
            };
            let Some(item) = items.next() else {
                this.items = None;
                break;
            };
            let f = Arc::clone(&this.f);
            match submit(&this.shared, move || f(item)) {
                Ok(job) => this.in_flight.push_back(Slot::Job(job)),
                Err(refused) => {
                    this.items = None;
                    let error = match refused.broken_message() {
                        Some(message) => JobError::Broken {
                            message: message.to_owned(),
                        },
                        None => JobError::Shutdown,
                    };
                    this.in_flight.push_back(Slot::Refused(error));
                }
            }
        }
        // The jobs behind the front may call back into the runtime too: serve them all.
        for slot in this.in_flight.iter_mut().skip(1) {
            if let Slot::Job(job) = slot {
                job.serve_calls(cx);
            }
        }
        let Some(front) = this.in_flight.front_mut() else {
            return Poll::Ready(None);
        };
        let out = match front {
            Slot::Job(job) => match Pin::new(job).poll(cx) {
                Poll::Ready(out) => out,
                Poll::Pending => return Poll::Pending,
            },
            Slot::Refused(error) => Err(error.clone()),
        };
        this.in_flight.pop_front();
        Poll::Ready(Some(out))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let (low, high) = self
            .items
            .as_ref()
            .map_or((0, Some(0)), Iterator::size_hint);
        let n = self.in_flight.len();
        (low.saturating_add(n), high.and_then(|h| h.checked_add(n)))
    }
}

impl<I, F, T> fmt::Debug for ThreadPoolMap<I, F, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolMap")
            .field("in_flight", &self.in_flight.len())
            .field("bound", &self.bound)
            .field("exhausted", &self.items.is_none())
            .finish()
    }
}
