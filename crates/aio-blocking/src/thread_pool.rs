//! [`ThreadPool`]: `concurrent.futures.ThreadPoolExecutor` for aio.

mod job;
mod map;
mod worker;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

pub use job::JobHandle;
pub use map::ThreadPoolMap;
use worker::{Initializer, Shared};

use crate::{BuildError, CapacityLimiter, SubmitError};

/// A fixed set of at most `max_workers` threads that run submitted jobs in FIFO order:
/// `concurrent.futures.ThreadPoolExecutor`.
///
/// Use it rather than [`to_thread`](crate::to_thread) when the threads themselves matter:
/// thread-local state set up once per thread by an
/// [`initializer`](ThreadPoolBuilder::initializer) (a connection, a model), named threads,
/// a pool you shut down and wait for. Threads start on demand, one per submit while none
/// is idle, up to `max_workers`, and live until the pool is shut down.
///
/// * [`submit`](Self::submit) queues a closure and returns a [`JobHandle`] to `.await`;
///   a job that has not started can be cancelled, and dropping its handle cancels it.
/// * [`map`](Self::map) runs a function over an iterator, lazily, with a bounded number of
///   jobs in flight, and yields the results in input order.
/// * [`shutdown`](Self::shutdown) stops taking jobs, runs or cancels the queued ones, and
///   waits for the threads to exit.
///
/// As with [`to_thread`](crate::to_thread), each job runs inside the `tracing` span (and
/// under the subscriber) that was current at submit, and a panic is caught and returned as
/// [`JobError::Panicked`](crate::JobError::Panicked).
///
/// Dropping the pool shuts it down without waiting, like a garbage-collected executor:
/// queued jobs still run, then the threads exit.
///
/// # Fairness
///
/// Jobs start in submission order.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_blocking::ThreadPool;
///
/// let pool = ThreadPool::new(4).unwrap();
/// let jobs: Vec<_> = (1..=3u64).map(|n| pool.submit(move || n * 100).unwrap()).collect();
/// let mut total = 0;
/// for job in jobs {
///     total += job.await.unwrap();
/// }
/// assert_eq!(total, 600);
/// pool.shutdown(false).await;
/// # }
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
}

impl ThreadPool {
    /// A pool of at most `max_workers` threads, named `aio-thread-pool-<n>`, with no
    /// initializer. See [`builder`](Self::builder) for the rest.
    ///
    /// # Errors
    ///
    /// [`BuildError::NoWorkers`] if `max_workers` is 0.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aio_blocking::ThreadPool::new(4).unwrap();
    /// assert_eq!(pool.max_workers(), 4);
    /// assert_eq!(pool.threads(), 0); // threads start with the first jobs
    /// ```
    pub fn new(max_workers: usize) -> Result<Self, BuildError> {
        Self::builder().max_workers(max_workers).build()
    }

    /// A builder for a pool with a name prefix or a per-thread initializer.
    ///
    /// # Examples
    ///
    /// ```
    /// use aio_blocking::ThreadPool;
    ///
    /// let pool = ThreadPool::builder()
    ///     .max_workers(2)
    ///     .thread_name_prefix("decoder")
    ///     .initializer(|| println!("decoder thread ready"))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(pool.max_workers(), 2);
    /// ```
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder {
            max_workers: None,
            name_prefix: None,
            initializer: None,
        }
    }

    /// The most threads the pool runs.
    pub fn max_workers(&self) -> usize {
        self.shared.max_workers()
    }

    /// Threads alive now.
    pub fn threads(&self) -> usize {
        self.shared.threads()
    }

    /// Jobs waiting for a thread (cancelled ones included until a thread discards them).
    pub fn queued(&self) -> usize {
        self.shared.queued()
    }

    /// Whether the pool stopped taking jobs (it was shut down, or it is broken).
    pub fn is_shut_down(&self) -> bool {
        self.shared.is_closed()
    }

    /// Queues `f` and returns a handle to its result: `executor.submit(f)`.
    ///
    /// Does not wait: the job starts on an idle thread, on a new thread if fewer than
    /// `max_workers` run, or once a thread is free.
    ///
    /// # Errors
    ///
    /// [`SubmitError`], with `f` inside, if the pool is shut down or broken.
    ///
    /// # Panics
    ///
    /// Never; the job's own panic is returned by its handle.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let pool = aio_blocking::ThreadPool::new(2).unwrap();
    /// let job = pool.submit(|| "done").unwrap();
    /// assert_eq!(job.await, Ok("done"));
    /// # }
    /// ```
    pub fn submit<F, T>(&self, f: F) -> Result<JobHandle<T>, SubmitError<F>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        job::submit(&self.shared, f)
    }

    /// Runs `f` on every item, on the pool, and streams the results in input order:
    /// `executor.map(f, items, buffersize=max_workers)`.
    ///
    /// Lazy and bounded, see [`ThreadPoolMap`]: items are taken and submitted only as the
    /// stream is polled, at most [`max_workers`](Self::max_workers) ahead by default
    /// (change it with [`ThreadPoolMap::buffered`]). The input iterator is advanced on the
    /// task that polls the stream, so it should not block.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use futures::StreamExt;
    /// use aio_blocking::ThreadPool;
    ///
    /// let pool = ThreadPool::new(3).unwrap();
    /// let lengths: Vec<usize> = pool
    ///     .map(|s: &str| s.len(), ["a", "bb", "ccc"])
    ///     .map(|r| r.unwrap())
    ///     .collect()
    ///     .await;
    /// assert_eq!(lengths, [1, 2, 3]);
    /// # }
    /// ```
    pub fn map<F, I, T>(&self, f: F, items: I) -> ThreadPoolMap<I::IntoIter, F, T>
    where
        I: IntoIterator,
        I::Item: Send + 'static,
        F: Fn(I::Item) -> T + Send + Sync + 'static,
        T: Send + 'static,
    {
        ThreadPoolMap::new(
            Arc::clone(&self.shared),
            items.into_iter(),
            f,
            self.max_workers(),
        )
    }

    /// Shuts the pool down and waits until every thread has exited:
    /// `executor.shutdown(wait=True, cancel_futures=cancel_pending)`.
    ///
    /// New submits fail from the moment of the call. With `cancel_pending`, the queued
    /// jobs are cancelled (their handles return
    /// [`JobError::Cancelled`](crate::JobError::Cancelled)); otherwise they all run first.
    /// Running jobs always finish: threads cannot be interrupted. Calling it again, or on a
    /// broken pool, just waits.
    ///
    /// # Cancel safety
    ///
    /// The shutdown happens when this is called, not when it is awaited; dropping the
    /// future only stops waiting for the threads. So `drop(pool.shutdown(false))` is
    /// `shutdown(wait=False)`; [`close`](Self::close) says it more plainly.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_blocking::ThreadPool;
    ///
    /// let pool = ThreadPool::new(1).unwrap();
    /// let job = pool.submit(|| 1).unwrap();
    /// pool.shutdown(false).await; // runs the queued job first
    /// assert_eq!(job.await, Ok(1));
    /// assert_eq!(pool.threads(), 0);
    /// assert!(pool.submit(|| 2).is_err());
    /// # }
    /// ```
    pub fn shutdown(&self, cancel_pending: bool) -> Shutdown {
        self.close(cancel_pending);
        let shared = Arc::clone(&self.shared);
        Shutdown {
            wait: Box::pin(async move { shared.wait_exited().await }),
        }
    }

    /// Shuts the pool down without waiting: `executor.shutdown(wait=False,
    /// cancel_futures=cancel_pending)`. Returns how many queued jobs it cancelled.
    ///
    /// # Examples
    ///
    /// ```
    /// let pool = aio_blocking::ThreadPool::new(1).unwrap();
    /// assert_eq!(pool.close(true), 0);
    /// assert!(pool.is_shut_down());
    /// ```
    pub fn close(&self, cancel_pending: bool) -> usize {
        self.shared.close(cancel_pending)
    }
}

/// Future returned by [`ThreadPool::shutdown`]: waits until every thread of the pool has
/// exited. The shutdown itself has already happened when this exists.
#[must_use = "the pool is already shut down; await this to wait for its threads"]
pub struct Shutdown {
    wait: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Future for Shutdown {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.wait.as_mut().poll(cx)
    }
}

impl fmt::Debug for Shutdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shutdown").finish_non_exhaustive()
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.close(false);
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("max_workers", &self.max_workers())
            .field("threads", &self.threads())
            .field("queued", &self.queued())
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}

/// Configures a [`ThreadPool`]: [`ThreadPool::builder`].
#[must_use = "a builder does nothing until build() is called"]
pub struct ThreadPoolBuilder {
    max_workers: Option<usize>,
    name_prefix: Option<String>,
    initializer: Option<Initializer>,
}

impl ThreadPoolBuilder {
    /// The most threads the pool runs. Default: `min(32, cpus + 4)`, as
    /// ThreadPoolExecutor ([`CapacityLimiter::default_tokens`]). 0 is refused by
    /// [`build`](Self::build) ([`BuildError::NoWorkers`]).
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = Some(n);
        self
    }

    /// Names the threads `<prefix>-0`, `<prefix>-1`, ... Default: `aio-thread-pool`.
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.name_prefix = Some(prefix.into());
        self
    }

    /// Runs `init` once on each thread when it starts, before its first job: set up
    /// thread-local state there.
    ///
    /// If `init` panics, the pool is broken, as in CPython: queued jobs fail with
    /// [`JobError::Broken`](crate::JobError::Broken), the pool takes no more, and jobs
    /// running on other threads finish.
    pub fn initializer(mut self, init: impl Fn() + Send + Sync + 'static) -> Self {
        self.initializer = Some(Arc::new(init));
        self
    }

    /// The pool. No thread starts until the first submit.
    ///
    /// # Errors
    ///
    /// [`BuildError::NoWorkers`] if `max_workers` is 0.
    pub fn build(self) -> Result<ThreadPool, BuildError> {
        let max_workers = self
            .max_workers
            .unwrap_or_else(CapacityLimiter::default_tokens);
        if max_workers == 0 {
            return Err(BuildError::NoWorkers);
        }
        Ok(ThreadPool {
            shared: Arc::new(Shared::new(
                max_workers,
                self.name_prefix
                    .unwrap_or_else(|| "aio-thread-pool".to_owned()),
                self.initializer,
            )),
        })
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("name_prefix", &self.name_prefix)
            .field("initializer", &self.initializer.is_some())
            .finish()
    }
}
