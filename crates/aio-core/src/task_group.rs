//! [`TaskGroup`]: asyncio's `TaskGroup`, structured and level-triggered.

mod cell;
mod child;
mod core;
mod error;
mod handle;
mod limit;
mod outcome;
mod reaper;
mod registry;
mod start;
mod tree;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;
use tracing::Span;

pub(crate) use self::cell::{ChildCell, Owner, TaskInfo};
pub(crate) use self::child::{ChildTask, drop_future, end, poll_child};
pub(crate) use self::core::{GroupConfig, GroupCore, group_core};
pub(crate) use self::outcome::{ChildOutput, Outcome, Plain};
pub(crate) use self::reaper::reap;
pub(crate) use crate::spans::Site;
pub use error::{SpawnError, TaskFailure, TaskGroupError};
pub use handle::{TaskError, TaskHandle};
pub use start::{StartError, TaskStatus};
pub use tree::task_tree;

use crate::scope::{self, Node, PinGuard, Scoped};
use crate::{CancelError, CancelReason, GroupSnapshot, JoinPolicy, ScopeId, TaskId};

/// How long a dropped group's tasks get to finish their cleanup before they are dropped.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// A scope that owns tasks: asyncio's `TaskGroup`, Trio's nursery.
///
/// [`TaskGroup::scope`] runs a body that [`spawn`](Self::spawn)s tasks, and returns only
/// after every task has finished; nothing outlives it. The body runs in the calling task;
/// each spawned task is a Tokio task, so tasks run in parallel on a multi-thread runtime.
/// [`spawn_eager`](Self::spawn_eager) runs a task's first step inside the call, and a task
/// that finishes there never becomes a Tokio task.
///
/// # Failure and cancellation
///
/// The first failure (a task returning `Err`, a task panicking, or the body returning
/// `Err`) cancels the group: the body and every other task are cancelled at their next
/// `.await`, structured constructs inside them unwind first (their cleanup runs), and the
/// scope waits for all of them. It then returns a [`TaskGroupError`] with every failure, in
/// the order they happened, including errors raised while unwinding. Tasks that end
/// cancelled add nothing. A panic is re-raised from the scope once every task has finished,
/// like [`std::thread::scope`]. A task's future is dropped before its group or its handle
/// sees it finish. If that drop panics after the future returned (a hand-written future's
/// destructor; an `async` block drops what it holds before it returns), the task has
/// panicked, and the group re-raises a panic that says so: the original message was shown
/// by the panic hook.
///
/// If the scope around the group is cancelled (an enclosing timeout expires, an enclosing
/// group fails), the group unwinds the same way and returns an error for which
/// [`TaskGroupError::is_cancelled`] is true. [`cancel`](Self::cancel) ends the group early
/// with no failure.
///
/// The error type `E` is shared by the body and all tasks; [`BoxError`](crate::BoxError) is
/// the usual choice. It implements [`CancelError`] so the group can tell a cancellation
/// passed up with `?` from a failure.
///
/// # Dropping
///
/// A scope that is dropped before it returns (a `tokio::select!` branch that lost, an
/// aborted task, a runtime shutting down) cannot wait. It cancels its tasks and hands them
/// to a background reaper, which gives them the group's grace period ([`DEFAULT_GRACE`]
/// unless set with [`TaskGroupBuilder::grace`]) to finish their cleanup and then drops the
/// rest, reporting each through `tracing`. Drop never blocks.
///
/// # Handles
///
/// `spawn` returns a [`TaskHandle`]. Inside the scope, `.await` it for the task's value;
/// after the scope, [`TaskHandle::result`] reads it without waiting.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::time::Duration;
/// use aio_core::{BoxError, TaskGroup};
///
/// async fn fetch(id: u32) -> Result<String, BoxError> {
///     tokio::time::sleep(Duration::from_millis(10 * id as u64)).await;
///     Ok(format!("page {id}"))
/// }
///
/// let pages = TaskGroup::scope(|tg| async move {
///     let handles = (1..=3)
///         .map(|id| tg.spawn(fetch(id)))
///         .collect::<Result<Vec<_>, _>>()?;
///     Ok::<_, BoxError>(handles)
/// })
/// .await
/// .unwrap();
///
/// let pages: Vec<String> = pages.into_iter().map(|h| h.result().unwrap()).collect();
/// assert_eq!(pages, ["page 1", "page 2", "page 3"]);
/// # }
/// ```
pub struct TaskGroup<E> {
    pub(crate) core: Arc<GroupCore>,
    _error: PhantomData<fn() -> E>,
}

impl<E> Clone for TaskGroup<E> {
    fn clone(&self) -> Self {
        TaskGroup {
            core: Arc::clone(&self.core),
            _error: PhantomData,
        }
    }
}

impl<E> fmt::Debug for TaskGroup<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("id", &self.core.node.id())
            .field("name", &self.core.name)
            .field("tasks", &self.core.len())
            .finish()
    }
}

impl<E: CancelError + Send + 'static> TaskGroup<E> {
    /// Runs `body` with a new group and waits for every task it spawns.
    ///
    /// This is `async with asyncio.TaskGroup() as tg:`. The body receives a handle to the
    /// group (cheap to clone, and `'static`, so tasks can spawn siblings). Returns the
    /// body's value once every task has finished.
    ///
    /// # Errors
    ///
    /// A [`TaskGroupError`] holding every failure, or, when the group was cancelled from
    /// outside or by [`cancel`](Self::cancel) before the body returned, no failure and the
    /// [`Cancelled`](crate::Cancelled).
    ///
    /// # Panics
    ///
    /// Re-raises the first panic of the body or of a task, after every task has finished.
    /// Panics if called outside a Tokio runtime.
    ///
    /// # Cancel safety
    ///
    /// Cancelling the scope from outside with aio (an enclosing timeout or group) unwinds it
    /// in order, cleanup included. Dropping the future instead (`tokio::select!`) cancels the
    /// tasks and reaps them in the background, see [Dropping](TaskGroup#dropping).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_core::{BoxError, TaskGroup};
    ///
    /// let err = TaskGroup::<BoxError>::scope(|tg| async move {
    ///     tg.spawn(async { std::future::pending::<Result<(), BoxError>>().await })?;
    ///     tg.spawn(async { Err::<(), BoxError>("boom".into()) })?;
    ///     Ok(())
    /// })
    /// .await
    /// .unwrap_err();
    /// // The pending task was cancelled; only the failure is reported.
    /// assert_eq!(err.len(), 1);
    /// assert_eq!(err.first().unwrap().error().to_string(), "boom");
    /// # }
    /// ```
    pub fn scope<F, Fut, R>(body: F) -> impl Future<Output = Result<R, TaskGroupError<E>>>
    where
        F: FnOnce(TaskGroup<E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        TaskGroupBuilder::new().scope(body)
    }

    /// A builder for a group with a name or a grace period.
    pub fn builder() -> TaskGroupBuilder<E> {
        TaskGroupBuilder::new()
    }

    /// Starts `fut` as a task of the group and returns its handle.
    ///
    /// The task runs inside the group's scope: it is cancelled with the group, and it sees
    /// the group's deadlines. Its `Ok` value goes to the handle; its `Err` fails the group.
    ///
    /// # Errors
    ///
    /// [`SpawnError::Finished`] once the scope has returned, and
    /// [`SpawnError::ShuttingDown`] once the group is cancelled; `fut` is dropped unpolled.
    pub fn spawn<F, T>(&self, fut: F) -> Result<TaskHandle<T>, SpawnError>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        self.core.spawn(None, fut, false).map_err(|(e, _)| e)
    }

    /// Like [`spawn`](Self::spawn), with a name that shows up in errors, cancel reasons and
    /// `tracing` spans.
    ///
    /// # Errors
    ///
    /// As for [`spawn`](Self::spawn).
    pub fn spawn_named<F, T>(
        &self,
        name: impl Into<Arc<str>>,
        fut: F,
    ) -> Result<TaskHandle<T>, SpawnError>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        self.core
            .spawn(Some(name.into()), fut, false)
            .map_err(|(e, _)| e)
    }

    /// Starts `fut` as a task of the group and polls it once right away, inside this call:
    /// asyncio's `eager_task_factory`. Returns its handle.
    ///
    /// That first poll runs on the calling thread in the new task's own scope, as the
    /// task's first poll would on a worker: [`current_task`](crate::current_task) is the new
    /// task, [`is_cancelled`](crate::is_cancelled) and
    /// [`current_deadline`](crate::current_deadline) answer for it, and groups and timeouts
    /// opened in it belong to it. A future that is ready at that poll never becomes a Tokio
    /// task: it has finished when `spawn_eager` returns, its handle holds its result, and
    /// its `Err` or its panic has reached the group as any task's would (an `Err` fails the
    /// group, which cancels the other tasks and the body at their next `.await`; a panic is
    /// caught, and re-raised by the scope). A future that suspends goes on as an ordinary
    /// task of the group, as if [`spawn`](Self::spawn) had started it.
    ///
    /// Work that often completes without waiting (a cache hit, data already buffered) then
    /// costs no Tokio task at all, and a task's first step runs before the caller goes on.
    /// The caller pays for that step: synchronous work before the task's first `.await`
    /// delays the caller, and spends the calling task's share of Tokio's cooperative budget.
    /// Prefer `spawn` for tasks that will wait anyway.
    ///
    /// In a group with a [`limit`](TaskGroupBuilder::limit) and no free slot, the task
    /// cannot start now: it is accepted as `spawn` would accept it, waits for its turn in
    /// spawn order, and starts as a Tokio task.
    ///
    /// The first poll runs inside the group's runtime: what the future creates then (a
    /// timer, a socket) belongs to the runtime the task goes on in, even when `spawn_eager`
    /// is called from a plain thread. It also sees the calling task's Tokio task-locals,
    /// which the Tokio task it may become does not.
    ///
    /// # Errors
    ///
    /// As for [`spawn`](Self::spawn): [`SpawnError::Finished`] once the scope has returned,
    /// and [`SpawnError::ShuttingDown`] once the group is cancelled; `fut` is dropped
    /// unpolled.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_core::{BoxError, TaskGroup};
    ///
    /// TaskGroup::<BoxError>::scope(|tg| async move {
    ///     // Ready at its first poll: finished before `spawn_eager` returns.
    ///     let cached = tg.spawn_eager(async { Ok("from the cache") })?;
    ///     assert_eq!(cached.result()?, "from the cache");
    ///
    ///     // Suspends at its first poll: goes on as an ordinary task.
    ///     let fetched = tg.spawn_eager(async {
    ///         tokio::task::yield_now().await;
    ///         Ok("from the network")
    ///     })?;
    ///     assert!(!fetched.is_finished());
    ///     assert_eq!(fetched.await?, "from the network");
    ///     Ok(())
    /// })
    /// .await
    /// .unwrap();
    /// # }
    /// ```
    pub fn spawn_eager<F, T>(&self, fut: F) -> Result<TaskHandle<T>, SpawnError>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        self.core.spawn_eager(None, fut)
    }

    /// Like [`spawn_eager`](Self::spawn_eager), with a name that shows up in errors, cancel
    /// reasons and `tracing` spans; [`current_task`](crate::current_task) sees it from the
    /// first poll on.
    ///
    /// # Errors
    ///
    /// As for [`spawn`](Self::spawn).
    pub fn spawn_eager_named<F, T>(
        &self,
        name: impl Into<Arc<str>>,
        fut: F,
    ) -> Result<TaskHandle<T>, SpawnError>
    where
        F: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
    {
        self.core.spawn_eager(Some(name.into()), fut)
    }
}

impl<E> TaskGroup<E> {
    /// Cancels the body and every task, and ends the group without an error.
    ///
    /// Idempotent; a no-op once the scope has returned. If the body was cut off before it
    /// returned a value, the scope has none to give and returns a [`TaskGroupError`] for
    /// which [`is_cancelled`](TaskGroupError::is_cancelled) is true with
    /// [`CancelReason::Explicit`]; failures raised while unwinding are still reported.
    pub fn cancel(&self) {
        self.core.cancel_explicitly(None);
    }

    /// Like [`cancel`](Self::cancel), with a message: asyncio's `cancel(msg)`. Every
    /// [`Cancelled`](crate::Cancelled) the group's cancellation delivers carries it
    /// ([`Cancelled::message`](crate::Cancelled::message)), and so does its `Display`. A
    /// group that was already cancelled keeps its first reason and message.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_core::{BoxError, TaskGroup};
    ///
    /// let worker = TaskGroup::<BoxError>::scope(|tg| async move {
    ///     let worker = tg.spawn(async { Ok(aio_core::cancelled().await) })?;
    ///     tokio::task::yield_now().await; // let the worker start waiting
    ///     tg.cancel_with("configuration reloaded");
    ///     Ok(worker)
    /// })
    /// .await
    /// .unwrap();
    /// let seen = worker.result().unwrap();
    /// assert_eq!(seen.message(), Some("configuration reloaded"));
    /// # }
    /// ```
    pub fn cancel_with(&self, message: impl Into<Arc<str>>) {
        self.core.cancel_explicitly(Some(message.into()));
    }

    /// Whether the group is cancelled (by a failure, by [`cancel`](Self::cancel), or from
    /// outside) and refusing new tasks.
    pub fn is_cancelled(&self) -> bool {
        self.core.node.is_cancelled()
    }

    /// How many tasks are running. Finished tasks leave the group as they finish; a task
    /// still counts for the moment between its handle seeing its result and the group
    /// counting it out, so use handles, not `len`, to learn that a given task is done.
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether no task is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The group's scope id.
    pub fn id(&self) -> ScopeId {
        self.core.node.id()
    }

    /// The group's name, if it was built with one.
    pub fn name(&self) -> Option<&str> {
        self.core.name.as_deref()
    }

    /// Takes the error of a task that failed out of the group's report, so the caller can
    /// handle it: log it, retry the work, restart a worker. The group then no longer
    /// reports it when the scope ends. `None` if the task has not failed, has not finished,
    /// or its failure was taken already.
    ///
    /// This is how a [`Supervisor`](JoinPolicy::Supervisor) group's body reacts to a
    /// child's failure. In a fail-fast group the failure has already cancelled the group;
    /// taking it does not undo that.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use aio_core::{BoxError, JoinPolicy, TaskGroup};
    ///
    /// let restarts = TaskGroup::<BoxError>::builder()
    ///     .policy(JoinPolicy::Supervisor)
    ///     .scope(|tg| async move {
    ///         let mut restarts = 0;
    ///         for attempt in 0.. {
    ///             let worker = tg.spawn(async move {
    ///                 if attempt < 2 {
    ///                     return Err(format!("crash {attempt}").into());
    ///                 }
    ///                 Ok::<_, BoxError>(())
    ///             })?;
    ///             let id = worker.id();
    ///             if worker.await.is_ok() {
    ///                 break;
    ///             }
    ///             let error = tg.take_failure(id).expect("the worker failed");
    ///             assert!(error.to_string().starts_with("crash"));
    ///             restarts += 1;
    ///         }
    ///         Ok(restarts)
    ///     })
    ///     .await
    ///     .unwrap(); // every failure was handled
    /// assert_eq!(restarts, 2);
    /// # }
    /// ```
    pub fn take_failure(&self, task: TaskId) -> Option<E>
    where
        E: 'static,
    {
        self.core.take_failure(task)
    }

    /// A snapshot of the group: its tasks, with their names, states and ages, and the groups
    /// opened inside them. See [`task_tree`](crate::task_tree) for every group at once.
    pub fn snapshot(&self) -> GroupSnapshot {
        self.core.snapshot()
    }
}

/// Builds a [`TaskGroup`] with options: `TaskGroup::builder().name("crawler").scope(...)`.
pub struct TaskGroupBuilder<E> {
    name: Option<Arc<str>>,
    site: Option<Site>,
    grace: Duration,
    policy: JoinPolicy,
    limit: Option<usize>,
    cancelled_task_ends_group: bool,
    _error: PhantomData<fn() -> E>,
}

impl<E> fmt::Debug for TaskGroupBuilder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroupBuilder")
            .field("name", &self.name)
            .field("grace", &self.grace)
            .field("policy", &self.policy)
            .field("limit", &self.limit)
            .finish()
    }
}

impl<E: CancelError + Send + 'static> TaskGroupBuilder<E> {
    fn new() -> Self {
        TaskGroupBuilder {
            name: None,
            site: None,
            grace: DEFAULT_GRACE,
            policy: JoinPolicy::FailFast,
            limit: None,
            cancelled_task_ends_group: false,
            _error: PhantomData,
        }
    }

    /// For the groups aio opens on its callers' behalf (`gather`, `race`, ...): where, in
    /// place of a name.
    pub(crate) fn site(
        mut self,
        what: &'static str,
        at: &'static std::panic::Location<'static>,
    ) -> Self {
        self.site = Some(Site { what, at });
        self
    }

    /// For `gather`: a task that ends cancelled cancels the group.
    pub(crate) fn cancelled_task_ends_group(mut self) -> Self {
        self.cancelled_task_ends_group = true;
        self
    }

    /// Names the group, for `tracing` and diagnostics.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How long the tasks of a *dropped* group get to finish cleaning up before they are
    /// dropped. A group that is awaited to the end always waits for its tasks. A local
    /// group ([`local_scope`](Self::local_scope)) has no grace period: dropped, it drops its
    /// tasks at once.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// What a task's failure does to the group: [`JoinPolicy::FailFast`] (the default) or
    /// [`JoinPolicy::Supervisor`].
    pub fn policy(mut self, policy: JoinPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Runs at most `limit` tasks at once. Tasks spawned beyond it are accepted at once
    /// (`spawn` never waits) and start in the order they were spawned as running tasks
    /// finish. Tasks still waiting when the group is cancelled never start.
    ///
    /// # Panics
    ///
    /// Panics if `limit` is zero.
    #[track_caller]
    pub fn limit(mut self, limit: usize) -> Self {
        assert!(limit > 0, "a task group's limit must be at least 1");
        self.limit = Some(limit);
        self
    }

    /// Runs the group; see [`TaskGroup::scope`].
    ///
    /// # Errors
    ///
    /// As for [`TaskGroup::scope`].
    ///
    /// # Panics
    ///
    /// As for [`TaskGroup::scope`].
    ///
    /// # Cancel safety
    ///
    /// As for [`TaskGroup::scope`].
    pub fn scope<F, Fut, R>(self, body: F) -> impl Future<Output = Result<R, TaskGroupError<E>>>
    where
        F: FnOnce(TaskGroup<E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        GroupScope {
            body: None,
            settled: None,
            group: None,
            start: Some((self, body)),
            waited: false,
        }
    }

    /// The options, for the group's core.
    pub(crate) fn config(self) -> GroupConfig {
        GroupConfig {
            name: self.name,
            site: self.site,
            grace: self.grace,
            policy: self.policy,
            limit: self.limit,
            cancelled_task_ends_group: self.cancelled_task_ends_group,
        }
    }
}

pin_project! {
    /// The future of [`TaskGroupBuilder::scope`]: opens the group on its first poll, runs
    /// the body, waits for the tasks and concludes.
    ///
    /// Written out by hand rather than as an `async fn`: groups nested in one task poll each
    /// other recursively, so the frame that polls the body is on the stack once per level,
    /// and it holds only that poll. Opening, settling and concluding happen in functions of
    /// their own.
    struct GroupScope<E, F, Fut, R> {
        // Fields drop in this order: the body first, then the group, which hands its tasks
        // to the reaper if it had not finished.
        #[pin]
        body: Option<Body<Fut>>,
        // The body's value or error, once it has ended.
        settled: Option<(Option<R>, Option<E>)>,
        group: Option<Running>,
        start: Option<(TaskGroupBuilder<E>, F)>,
        waited: bool,
    }
}

/// A group that has been opened, and what keeps it structured while it runs.
struct Running {
    /// Hands the group to the reaper if the scope's future is dropped before it finished.
    exit: ExitGuard,
    /// While the group winds down, the scopes around it must not drop it.
    _pin: PinGuard,
    core: Arc<GroupCore>,
    outer: Option<Arc<Node>>,
}

impl<E, F, Fut, R> Future for GroupScope<E, F, Fut, R>
where
    E: CancelError + Send + 'static,
    F: FnOnce(TaskGroup<E>) -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    type Output = Result<R, TaskGroupError<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.start.is_some() {
            open(this.start, this.group, this.body.as_mut());
        }
        let core = &this
            .group
            .as_ref()
            .expect("the group opens on the first poll")
            .core;
        if let Some(body) = this.body.as_mut().as_pin_mut() {
            let Poll::Ready(outcome) = body.poll_body(core, cx) else {
                return Poll::Pending;
            };
            this.body.set(None);
            settle(outcome, core, this.settled);
        }
        finish(this.group, this.settled, this.waited, cx)
    }
}

/// The body has ended: wait for the tasks, then leave the tree and give the group's result.
#[inline(never)]
fn finish<R, E: 'static>(
    group: &mut Option<Running>,
    settled: &mut Option<(Option<R>, Option<E>)>,
    waited: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Result<R, TaskGroupError<E>>> {
    let core = &group.as_ref().expect("the group is open").core;
    if core.poll_finish(cx).is_pending() {
        *waited = true;
        return Poll::Pending;
    }
    let Running {
        exit, core, outer, ..
    } = group.take().expect("the group concludes once");
    let (value, body_error) = settled.take().expect("the body has ended");
    exit.disarm();
    core.finalize();
    Poll::Ready(core.conclude(value, body_error, *waited, outer.as_deref()))
}

/// Opens the group in the scope the caller runs in, and starts its body. Everything is
/// built in place, so that none of it takes room in the frame of `poll`.
#[inline(never)]
fn open<E, F, Fut>(
    start: &mut Option<(TaskGroupBuilder<E>, F)>,
    group: &mut Option<Running>,
    mut body: Pin<&mut Option<Body<Fut>>>,
) where
    E: CancelError + Send + 'static,
    F: FnOnce(TaskGroup<E>) -> Fut,
    Fut: Future,
{
    let (builder, make_body) = start.take().expect("a group opens once");
    let outer = scope::current();
    let config = builder.config();
    let core = GroupCore::new(config, outer.clone(), false);
    let running = group.insert(Running {
        exit: ExitGuard(Some(Arc::clone(&core))),
        _pin: PinGuard::new(outer.clone()),
        core,
        outer,
    });
    let fut = make_body(TaskGroup {
        core: Arc::clone(&running.core),
        _error: PhantomData,
    });
    body.set(Some(Body::new(&running.core, fut)));
}

/// The body has ended: keep what its ending means for the group.
#[inline(never)]
fn settle<R, E: CancelError>(
    outcome: BodyOutcome<Result<R, E>>,
    core: &GroupCore,
    settled: &mut Option<(Option<R>, Option<E>)>,
) {
    *settled = Some(outcome.settle(core));
}

pub(crate) enum BodyOutcome<T> {
    Returned(T),
    Cancelled,
    Panicked(Box<dyn Any + Send>),
}

impl<R, E: CancelError> BodyOutcome<Result<R, E>> {
    /// What the body's ending means for its group: a value to return, or an error that
    /// fails the group (and cancels it, whatever its policy), or nothing (the body was cut
    /// off, or passed a cancellation up).
    pub(crate) fn settle(self, core: &GroupCore) -> (Option<R>, Option<E>) {
        match self {
            BodyOutcome::Returned(Ok(value)) => (Some(value), None),
            BodyOutcome::Returned(Err(error)) => {
                if error.as_cancelled().is_some() {
                    return (None, None);
                }
                core.node.cancel(CancelReason::sibling_failed(None, None));
                (None, Some(error))
            }
            BodyOutcome::Panicked(panic) => {
                core.record_panic(panic);
                (None, None)
            }
            BodyOutcome::Cancelled => (None, None),
        }
    }
}

pin_project! {
    /// The body of a group, running in the group's node in the calling task, inside the
    /// group's span.
    pub(crate) struct Body<F> {
        span: Span,
        #[pin]
        inner: Scoped<F>,
    }

    impl<F> PinnedDrop for Body<F> {
        fn drop(this: Pin<&mut Self>) {
            // A body dropped before it ended is dropped inside its span, as `Instrument`
            // does.
            let this = this.project();
            if this.inner.holds_future() {
                let _entered = this.span.enter();
                this.inner.drop_future();
            }
        }
    }
}

impl<F: Future> Body<F> {
    pub(crate) fn new(core: &GroupCore, body: F) -> Self {
        Body {
            span: core.span.clone(),
            inner: Scoped::new(Arc::clone(&core.node), body),
        }
    }

    /// Polls the body for `core`'s group; its ending once it has ended.
    pub(crate) fn poll_body(
        self: Pin<&mut Self>,
        core: &GroupCore,
        cx: &mut Context<'_>,
    ) -> Poll<BodyOutcome<F::Output>> {
        let mut this = self.project();
        core.waker.register(cx.waker());
        let _entered = this.span.enter();
        let inner = this.inner.as_mut();
        let node = &core.node;
        match catch_unwind(AssertUnwindSafe(|| {
            inner.poll_scoped(cx, || node.is_cancelled())
        })) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Some(output))) => Poll::Ready(BodyOutcome::Returned(output)),
            Ok(Poll::Ready(None)) => Poll::Ready(BodyOutcome::Cancelled),
            Err(panic) => Poll::Ready(panicked(this.inner, panic)),
        }
    }
}

/// The body panicked: drop what is left of it, catching a second panic, and keep the first.
#[cold]
#[inline(never)]
fn panicked<F: Future, T>(
    inner: Pin<&mut Scoped<F>>,
    panic: Box<dyn Any + Send>,
) -> BodyOutcome<T> {
    let _ = catch_unwind(AssertUnwindSafe(|| inner.drop_future()));
    BodyOutcome::Panicked(panic)
}

/// Waits until the group has no task left, then marks it finished. Returns whether it had
/// to wait.
struct WaitChildren<'a> {
    core: &'a GroupCore,
    waited: bool,
}

impl Future for WaitChildren<'_> {
    type Output = bool;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<bool> {
        match self.core.poll_finish(cx) {
            Poll::Ready(()) => Poll::Ready(self.waited),
            Poll::Pending => {
                self.waited = true;
                Poll::Pending
            }
        }
    }
}

/// Hands the group to the reaper if the scope future is dropped before it finished.
struct ExitGuard(Option<Arc<GroupCore>>);

impl ExitGuard {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for ExitGuard {
    fn drop(&mut self) {
        if let Some(core) = self.0.take() {
            reaper::reap(core);
        }
    }
}
