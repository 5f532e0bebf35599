//! [`LocalGroup`]: a task group whose tasks run inside the calling task, so they may borrow.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker, ready};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use pin_project_lite::pin_project;
use tracing::Instrument;

use crate::scope::{self, Current, PinGuard, TaskScope};
use crate::task_group::{
    Body, ChildCell, ChildOutput, GroupConfig, GroupCore, Outcome, TaskInfo, drop_future, end,
    poll_child,
};
use crate::util::lock;
use crate::{
    CancelError, JoinPolicy, ScopeId, SpawnError, TaskGroupBuilder, TaskGroupError, TaskHandle,
    TaskId,
};

/// A task group whose tasks run inside the calling task: concurrently, not in parallel, and
/// without `'static` or `Send`, so they may borrow from the caller. moro's scopes and
/// futures-concurrency's groups, with aio's rules.
///
/// Everything else is a [`TaskGroup`](crate::TaskGroup): the scope returns after every task
/// has finished, the first failure cancels the body and the other tasks at their next
/// `.await` (their cleanup runs first), every failure is collected into a
/// [`TaskGroupError`], panics are re-raised after the other tasks finish, and the group is a
/// cancel scope that enclosing timeouts and groups reach. No `unsafe` is involved: the tasks
/// are owned by the scope's future and polled by it.
///
/// One difference follows from that: if the scope's future is dropped before it finishes,
/// its tasks are dropped with it, at once; there is nothing left to give them a grace period.
///
/// A `LocalGroup`'s tasks need not be `Send`, so neither is its scope: it runs where it is
/// awaited (`block_on`, a current-thread runtime, a `LocalSet`). Inside a task spawned on a
/// multi-thread runtime, use [`SendLocalGroup`], whose tasks are `Send` but may still
/// borrow.
///
/// A task may borrow what lives outside the scope, never what the body owns:
///
/// ```compile_fail
/// # async fn demo() {
/// aio_core::LocalGroup::<aio_core::BoxError>::scope(|lg| async move {
///     let owned_by_the_body = String::from("gone when the body returns");
///     lg.spawn(async { Ok(owned_by_the_body.len()) })?; // error: does not live long enough
///     Ok(())
/// })
/// .await
/// .unwrap();
/// # }
/// ```
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::cell::RefCell;
/// use aio_core::{BoxError, LocalGroup};
///
/// let pages = ["a", "bb", "ccc"];
/// let total = RefCell::new(0); // not Send, and borrowed by every task
/// let (pages, counter) = (&pages, &total);
/// LocalGroup::<BoxError>::scope(|lg| async move {
///     for page in pages {
///         let total = counter;
///         lg.spawn(async move {
///             tokio::task::yield_now().await;
///             *total.borrow_mut() += page.len();
///             Ok(())
///         })?;
///     }
///     Ok(())
/// })
/// .await
/// .unwrap();
/// assert_eq!(total.into_inner(), 6);
/// # }
/// ```
pub struct LocalGroup<'env, E, B: ?Sized + 'env = dyn Future<Output = ()> + 'env> {
    inner: Arc<LocalInner<B>>,
    _error: PhantomData<fn() -> E>,
    _env: PhantomData<&'env ()>,
}

/// A [`LocalGroup`] whose tasks must be `Send` (they may still borrow): its scope is then
/// `Send` too, so it can run inside a task spawned on a multi-thread runtime.
///
/// # Examples
///
/// ```
/// # #[tokio::main]
/// # async fn main() {
/// use aio_core::{BoxError, SendLocalGroup};
///
/// let words = vec!["borrowed", "from", "the", "caller"];
/// let lengths = tokio::spawn(async move {
///     let words = &words;
///     SendLocalGroup::<BoxError>::scope(|lg| async move {
///         let handles = words
///             .iter()
///             .map(|word| lg.spawn(async move { Ok(word.len()) }))
///             .collect::<Result<Vec<_>, _>>()?;
///         let mut lengths = Vec::new();
///         for handle in handles {
///             lengths.push(handle.await?);
///         }
///         Ok(lengths)
///     })
///     .await
/// })
/// .await
/// .unwrap()
/// .unwrap();
/// assert_eq!(lengths, [8, 4, 3, 6]);
/// # }
/// ```
pub type SendLocalGroup<'env, E> = LocalGroup<'env, E, dyn Future<Output = ()> + Send + 'env>;

struct LocalInner<B: ?Sized> {
    core: Arc<GroupCore>,
    /// Spawned, not yet handed to the scope's set of running tasks.
    spawned: Mutex<Vec<Pin<Box<B>>>>,
}

impl<E, B: ?Sized> Clone for LocalGroup<'_, E, B> {
    fn clone(&self) -> Self {
        LocalGroup {
            inner: Arc::clone(&self.inner),
            _error: PhantomData,
            _env: PhantomData,
        }
    }
}

impl<E, B: ?Sized> fmt::Debug for LocalGroup<'_, E, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalGroup")
            .field("id", &self.inner.core.node().id())
            .field("tasks", &self.len())
            .finish()
    }
}

macro_rules! surface {
    ($($send:ident)?) => {
        /// Runs `body` with a new local group and waits for every task it spawns; see
        /// [`TaskGroup::scope`](crate::TaskGroup::scope).
        ///
        /// # Errors
        ///
        /// As for [`TaskGroup::scope`](crate::TaskGroup::scope).
        ///
        /// # Panics
        ///
        /// Re-raises the first panic of the body or of a task, after every task has finished.
        ///
        /// # Cancel safety
        ///
        /// Cancelling the scope from outside with aio unwinds it in order, cleanup included.
        /// Dropping the future drops its tasks at once.
        pub async fn scope<F, Fut, R>(body: F) -> Result<R, TaskGroupError<E>>
        where
            F: FnOnce(Self) -> Fut,
            Fut: Future<Output = Result<R, E>> + 'env,
        {
            Self::scope_with(GroupConfig::default(), body).await
        }

        /// Like [`scope`](Self::scope), with a name and a [`JoinPolicy`].
        ///
        /// # Errors
        ///
        /// As for [`scope`](Self::scope).
        ///
        /// # Panics
        ///
        /// As for [`scope`](Self::scope).
        ///
        /// # Cancel safety
        ///
        /// As for [`scope`](Self::scope).
        pub async fn scope_named<F, Fut, R>(
            name: impl Into<Arc<str>>,
            policy: JoinPolicy,
            body: F,
        ) -> Result<R, TaskGroupError<E>>
        where
            F: FnOnce(Self) -> Fut,
            Fut: Future<Output = Result<R, E>> + 'env,
        {
            let config = GroupConfig {
                name: Some(name.into()),
                policy,
                ..GroupConfig::default()
            };
            Self::scope_with(config, body).await
        }

        /// Starts `fut` as a task of the group, polled by the group's scope in the calling
        /// task.
        ///
        /// # Errors
        ///
        /// As for [`TaskGroup::spawn`](crate::TaskGroup::spawn).
        pub fn spawn<F, T>(&self, fut: F) -> Result<TaskHandle<T>, SpawnError>
        where
            F: Future<Output = Result<T, E>> $(+ $send)? + 'env,
            T: $($send +)? 'env,
        {
            self.spawn_boxed(None, fut, false, |task| Box::pin(task))
        }

        /// Like [`spawn`](Self::spawn), with a name.
        ///
        /// # Errors
        ///
        /// As for [`TaskGroup::spawn`](crate::TaskGroup::spawn).
        pub fn spawn_named<F, T>(
            &self,
            name: impl Into<Arc<str>>,
            fut: F,
        ) -> Result<TaskHandle<T>, SpawnError>
        where
            F: Future<Output = Result<T, E>> $(+ $send)? + 'env,
            T: $($send +)? 'env,
        {
            self.spawn_boxed(Some(name.into()), fut, false, |task| Box::pin(task))
        }

        /// Like [`spawn`](Self::spawn), and polls the task once right away, inside this
        /// call, in the task's own scope: see
        /// [`TaskGroup::spawn_eager`](crate::TaskGroup::spawn_eager). A future that is ready
        /// at that poll has finished when `spawn_eager` returns; one that suspends goes on as
        /// a task of the group, polled by its scope. In a group whose limit is reached the
        /// task waits for its turn, as `spawn`'s would.
        ///
        /// # Errors
        ///
        /// As for [`TaskGroup::spawn`](crate::TaskGroup::spawn).
        ///
        /// # Examples
        ///
        /// ```
        /// # #[tokio::main(flavor = "current_thread")]
        /// # async fn main() {
        /// use aio_core::{BoxError, LocalGroup};
        ///
        /// let words = ["ready", "at", "once"];
        /// let words = &words;
        /// LocalGroup::<BoxError>::scope(|lg| async move {
        ///     let count = lg.spawn_eager(async move { Ok(words.len()) })?;
        ///     assert_eq!(count.result()?, 3);
        ///     Ok(())
        /// })
        /// .await
        /// .unwrap();
        /// # }
        /// ```
        pub fn spawn_eager<F, T>(&self, fut: F) -> Result<TaskHandle<T>, SpawnError>
        where
            F: Future<Output = Result<T, E>> $(+ $send)? + 'env,
            T: $($send +)? 'env,
        {
            self.spawn_boxed(None, fut, true, |task| Box::pin(task))
        }

        /// Like [`spawn_eager`](Self::spawn_eager), with a name.
        ///
        /// # Errors
        ///
        /// As for [`TaskGroup::spawn`](crate::TaskGroup::spawn).
        pub fn spawn_eager_named<F, T>(
            &self,
            name: impl Into<Arc<str>>,
            fut: F,
        ) -> Result<TaskHandle<T>, SpawnError>
        where
            F: Future<Output = Result<T, E>> $(+ $send)? + 'env,
            T: $($send +)? 'env,
        {
            self.spawn_boxed(Some(name.into()), fut, true, |task| Box::pin(task))
        }
    };
}

// A builder's options open a local group too: `TaskGroup::builder().local_scope(..)`.
impl<E: CancelError + Send + 'static> TaskGroupBuilder<E> {
    /// Runs a [`LocalGroup`](LocalGroup) with these options: its tasks run inside
    /// the calling task, may borrow and need not be `Send`; see
    /// [`LocalGroup::scope`](LocalGroup::scope). The name, the policy and the limit
    /// apply as to a `TaskGroup`. The grace period does not: a local group that is dropped
    /// drops its tasks at once, having no other task to give them time in.
    ///
    /// # Errors
    ///
    /// As for [`TaskGroup::scope`](crate::TaskGroup::scope).
    ///
    /// # Panics
    ///
    /// Re-raises the first panic of the body or of a task, after every task has finished.
    ///
    /// # Cancel safety
    ///
    /// As for [`LocalGroup::scope`](LocalGroup::scope).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::cell::Cell;
    /// use aio_core::{BoxError, TaskGroup};
    ///
    /// let running = Cell::new(0); // borrowed by every task, and not Sync
    /// let (running, peak) = (&running, &Cell::new(0));
    /// TaskGroup::<BoxError>::builder()
    ///     .name("fetchers")
    ///     .limit(2)
    ///     .local_scope(|lg| async move {
    ///         for _ in 0..5 {
    ///             lg.spawn(async move {
    ///                 running.set(running.get() + 1);
    ///                 peak.set(peak.get().max(running.get()));
    ///                 tokio::task::yield_now().await;
    ///                 running.set(running.get() - 1);
    ///                 Ok(())
    ///             })?;
    ///         }
    ///         Ok(())
    ///     })
    ///     .await
    ///     .unwrap();
    /// assert_eq!(peak.get(), 2);
    /// # }
    /// ```
    pub async fn local_scope<'env, F, Fut, R>(self, body: F) -> Result<R, TaskGroupError<E>>
    where
        F: FnOnce(LocalGroup<'env, E>) -> Fut,
        Fut: Future<Output = Result<R, E>> + 'env,
    {
        LocalGroup::scope_with(self.config(), body).await
    }

    /// Like [`local_scope`](Self::local_scope), for a
    /// [`SendLocalGroup`](SendLocalGroup), whose tasks must be `Send`.
    ///
    /// # Errors
    ///
    /// As for [`TaskGroup::scope`](crate::TaskGroup::scope).
    ///
    /// # Panics
    ///
    /// As for [`local_scope`](Self::local_scope).
    ///
    /// # Cancel safety
    ///
    /// As for [`local_scope`](Self::local_scope).
    pub async fn send_local_scope<'env, F, Fut, R>(self, body: F) -> Result<R, TaskGroupError<E>>
    where
        F: FnOnce(SendLocalGroup<'env, E>) -> Fut,
        Fut: Future<Output = Result<R, E>> + 'env,
    {
        SendLocalGroup::scope_with(self.config(), body).await
    }
}

impl<'env, E: CancelError + Send + 'static> LocalGroup<'env, E> {
    surface!();
}

impl<'env, E: CancelError + Send + 'static> SendLocalGroup<'env, E> {
    surface!(Send);
}

impl<'env, E, B> LocalGroup<'env, E, B>
where
    E: CancelError + Send + 'static,
    B: ?Sized + Future<Output = ()> + 'env,
{
    pub(crate) async fn scope_with<F, Fut, R>(
        config: GroupConfig,
        body: F,
    ) -> Result<R, TaskGroupError<E>>
    where
        F: FnOnce(Self) -> Fut,
        Fut: Future<Output = Result<R, E>> + 'env,
    {
        let outer = scope::current();
        let core = GroupCore::new(config, outer.clone(), true);
        let _pin = PinGuard::new(outer.clone());
        let _finalize = Finalize(Arc::clone(&core));
        let inner = Arc::new(LocalInner {
            core: Arc::clone(&core),
            spawned: Mutex::new(Vec::new()),
        });
        let body = body(LocalGroup {
            inner: Arc::clone(&inner),
            _error: PhantomData,
            _env: PhantomData,
        });
        let (outcome, waited) = Run {
            inner: &inner,
            body: Box::pin(Body::new(&core, body)),
            outcome: None,
            tasks: FuturesUnordered::new(),
            waited: false,
        }
        .await;
        let (value, body_error) = outcome;
        core.conclude(value, body_error, waited, outer.as_deref())
    }

    /// Registers a task and hands it to the scope, boxed as `B` by `boxed`; if `eager`,
    /// polls it once first, and keeps it only if it did not end.
    fn spawn_boxed<F, T>(
        &self,
        name: Option<Arc<str>>,
        fut: F,
        eager: bool,
        boxed: impl FnOnce(LocalTask<tracing::instrument::Instrumented<F>, T>) -> Pin<Box<B>>,
    ) -> Result<TaskHandle<T>, SpawnError>
    where
        F: Future<Output = Result<T, E>> + 'env,
        T: 'env,
    {
        let core = &self.inner.core;
        let info = core.admit_local(name)?;
        let cell = Arc::new(ChildCell::shared(Arc::clone(&info)));
        let span = crate::spans::task_span(&core.span, info.id(), info.name().map(|n| &**n));
        let task = LocalTask {
            fut: Some(fut.instrument(span)),
            info,
            cell: Arc::clone(&cell),
        };
        let mut task = boxed(task);
        // The task's own poll, which reports its end. Its waker does nothing: the scope polls
        // a task it has just been handed, so a wake-up before then is not needed.
        if eager
            && task
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
                .is_ready()
        {
            return Ok(TaskHandle::new(cell));
        }
        lock(&self.inner.spawned).push(task);
        core.waker.wake();
        Ok(TaskHandle::new(cell))
    }
}

impl<E, B: ?Sized> LocalGroup<'_, E, B> {
    /// Cancels the body and every task; see [`TaskGroup::cancel`](crate::TaskGroup::cancel).
    pub fn cancel(&self) {
        self.inner.core.cancel_explicitly(None);
    }

    /// Like [`cancel`](Self::cancel), with a message; see
    /// [`TaskGroup::cancel_with`](crate::TaskGroup::cancel_with).
    pub fn cancel_with(&self, message: impl Into<Arc<str>>) {
        self.inner.core.cancel_explicitly(Some(message.into()));
    }

    /// Whether the group is cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.inner.core.node().is_cancelled()
    }

    /// How many tasks are running.
    pub fn len(&self) -> usize {
        self.inner.core.len()
    }

    /// Whether no task is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The group's scope id.
    pub fn id(&self) -> ScopeId {
        self.inner.core.node().id()
    }

    /// Takes a failed task's error out of the group's report; see
    /// [`TaskGroup::take_failure`](crate::TaskGroup::take_failure).
    pub fn take_failure(&self, task: TaskId) -> Option<E>
    where
        E: 'static,
    {
        self.inner.core.take_failure(task)
    }
}

/// Polls the body and the tasks together until all are done.
struct Run<'a, F, R, E, B: ?Sized> {
    inner: &'a LocalInner<B>,
    body: Pin<Box<Body<F>>>,
    /// The body's value or error, once it has ended.
    outcome: Option<(Option<R>, Option<E>)>,
    tasks: FuturesUnordered<Pin<Box<B>>>,
    waited: bool,
}

// The body is boxed and the tasks are boxed: nothing in `Run` is pinned in place.
impl<F, R, E, B: ?Sized> Unpin for Run<'_, F, R, E, B> {}

impl<F, R, E, B> Future for Run<'_, F, R, E, B>
where
    F: Future<Output = Result<R, E>>,
    E: CancelError,
    B: ?Sized + Future<Output = ()>,
{
    type Output = ((Option<R>, Option<E>), bool);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let core = &this.inner.core;
        loop {
            core.waker.register(cx.waker());
            if this.outcome.is_none() {
                if let Poll::Ready(outcome) = this.body.as_mut().poll_body(core, cx) {
                    this.outcome = Some(outcome.settle(core));
                }
            }
            this.tasks.extend(lock(&this.inner.spawned).drain(..));
            // Only the tasks that were woken are polled: a cancellation of the group wakes
            // each task once, through its own waker (`ChildRef::wake`).
            while let Poll::Ready(Some(())) = this.tasks.poll_next_unpin(cx) {}
            if !lock(&this.inner.spawned).is_empty() {
                continue;
            }
            // A task that finished when it was given a poll above stays in the set until the
            // set polls it again, which it may never do: the group's count is what says
            // whether every task is done.
            if core.len() == 0 {
                this.tasks.clear();
                if let Some(outcome) = this.outcome.take() {
                    if core.poll_finish(cx).is_ready() {
                        return Poll::Ready((outcome, this.waited));
                    }
                    this.outcome = Some(outcome);
                }
            } else if this.outcome.is_some() {
                this.waited = true;
            }
            return Poll::Pending;
        }
    }
}

/// Leaves the scope tree however the scope ends.
struct Finalize(Arc<GroupCore>);

impl Drop for Finalize {
    fn drop(&mut self) {
        self.0.cancel_if_unfinished();
        self.0.finalize();
    }
}

pin_project! {
    /// A task of a local group, as its scope polls it: the cell, the handle and the poll are
    /// those of a [`TaskGroup`](crate::TaskGroup)'s task. The one difference is who drops
    /// the future once it has ended: the scope does, here, so that a panic while dropping it
    /// is caught and re-raised by the group like any other.
    pub(crate) struct LocalTask<F, T> {
        #[pin]
        fut: Option<F>,
        // The registry's and the scope's view of the task, which `cell` shares.
        info: Arc<TaskInfo>,
        cell: Arc<ChildCell<T>>,
    }

    impl<F, T> PinnedDrop for LocalTask<F, T> {
        // Dropped unfinished, with its scope: it is aborted, like a task of a group dropped
        // without a grace period.
        fn drop(this: Pin<&mut Self>) {
            let mut this = this.project();
            if this.fut.is_some() {
                let dropped = catch_unwind(AssertUnwindSafe(|| this.fut.set(None)));
                end(this.cell, Outcome::Aborted);
                if let Err(panic) = dropped {
                    resume_unwind(panic);
                }
            }
        }
    }
}

impl<F, T> Future for LocalTask<F, T>
where
    F: Future,
    F::Output: ChildOutput<Ok = T>,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            return Poll::Ready(());
        };
        let info = &*this.info;
        let scope = || Current::Task(Arc::clone(info) as Arc<dyn TaskScope>);
        let outcome = ready!(poll_child(fut, info, scope, cx));
        let outcome = drop_future(outcome, || this.fut.set(None));
        end(this.cell, outcome);
        Poll::Ready(())
    }
}
