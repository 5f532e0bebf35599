//! [`TaskGroup`]: asyncio's `TaskGroup`, structured and level-triggered.

mod child;
mod error;
mod reaper;

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use pin_project_lite::pin_project;
use tokio::runtime::Handle;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span};

pub(crate) use child::{ChildCell, ChildOutput, ChildTask, Owner, Plain};
pub use error::{SpawnError, TaskFailure, TaskGroupError};

use self::child::{ChildEvent, ChildRef};
use crate::scope::{self, Node, NodeKind, Notify, PinGuard, Scoped, note_delivered};
use crate::slab::Slab;
use crate::util::lock;
use crate::{CancelError, CancelReason, Cancelled, ScopeId, TaskHandle, TaskId};

/// How long a dropped group's tasks get to finish their cleanup before they are dropped.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);

/// A scope that owns tasks: asyncio's `TaskGroup`, Trio's nursery.
///
/// [`TaskGroup::scope`] runs a body that [`spawn`](Self::spawn)s tasks, and returns only
/// after every task has finished; nothing outlives it. The body runs in the calling task;
/// each spawned task is a Tokio task, so tasks run in parallel on a multi-thread runtime.
///
/// # Failure and cancellation
///
/// The first failure (a task returning `Err`, a task panicking, or the body returning
/// `Err`) cancels the group: the body and every other task are cancelled at their next
/// `.await`, structured constructs inside them unwind first (their cleanup runs), and the
/// scope waits for all of them. It then returns a [`TaskGroupError`] with every failure, in
/// the order they happened, including errors raised while unwinding. Tasks that end
/// cancelled add nothing. A panic is re-raised from the scope once every task has finished,
/// like [`std::thread::scope`].
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
    core: Arc<GroupCore>,
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
    /// [`Cancelled`].
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
    pub async fn scope<F, Fut, R>(body: F) -> Result<R, TaskGroupError<E>>
    where
        F: FnOnce(TaskGroup<E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        TaskGroupBuilder::new().scope(body).await
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
}

impl<E> TaskGroup<E> {
    /// Cancels the body and every task, and ends the group without an error.
    ///
    /// Idempotent; a no-op once the scope has returned. If the body was cut off before it
    /// returned a value, the scope has none to give and returns a [`TaskGroupError`] for
    /// which [`is_cancelled`](TaskGroupError::is_cancelled) is true with
    /// [`CancelReason::Explicit`]; failures raised while unwinding are still reported.
    pub fn cancel(&self) {
        if self.core.live.load(Ordering::Acquire) & FINISHED == 0 {
            self.core.node.cancel(CancelReason::Explicit);
        }
    }

    /// Whether the group is cancelled (by a failure, by [`cancel`](Self::cancel), or from
    /// outside) and refusing new tasks.
    pub fn is_cancelled(&self) -> bool {
        self.core.node.is_cancelled()
    }

    /// How many tasks are running. Finished tasks leave the group as they finish.
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
}

/// Builds a [`TaskGroup`] with options: `TaskGroup::builder().name("crawler").scope(...)`.
pub struct TaskGroupBuilder<E> {
    name: Option<Arc<str>>,
    grace: Duration,
    _error: PhantomData<fn() -> E>,
}

impl<E> fmt::Debug for TaskGroupBuilder<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroupBuilder")
            .field("name", &self.name)
            .field("grace", &self.grace)
            .finish()
    }
}

impl<E: CancelError + Send + 'static> TaskGroupBuilder<E> {
    fn new() -> Self {
        TaskGroupBuilder {
            name: None,
            grace: DEFAULT_GRACE,
            _error: PhantomData,
        }
    }

    /// Names the group, for `tracing` and diagnostics.
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How long the tasks of a *dropped* group get to finish cleaning up before they are
    /// dropped. A group that is awaited to the end always waits for its tasks.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
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
    pub async fn scope<F, Fut, R>(self, body: F) -> Result<R, TaskGroupError<E>>
    where
        F: FnOnce(TaskGroup<E>) -> Fut,
        Fut: Future<Output = Result<R, E>>,
    {
        let outer = scope::current();
        let core = GroupCore::new(self.name, self.grace, outer.clone());
        // While the group winds down, the scopes around it must not drop it.
        let _pin = PinGuard::new(outer.clone());
        let exit = ExitGuard(Some(Arc::clone(&core)));
        let group = TaskGroup {
            core: Arc::clone(&core),
            _error: PhantomData,
        };
        let body = body(group).instrument(core.span.clone());
        let outcome = Body {
            core: &core,
            inner: Scoped::new(Arc::clone(&core.node), body),
        }
        .await;
        let mut body_error = None;
        let value = match outcome {
            BodyOutcome::Returned(Ok(value)) => Some(value),
            BodyOutcome::Returned(Err(error)) => {
                if error.as_cancelled().is_none() {
                    core.node.cancel(CancelReason::sibling_failed(None, None));
                    body_error = Some(error);
                }
                None
            }
            BodyOutcome::Panicked(panic) => {
                core.record_panic(panic, None);
                None
            }
            BodyOutcome::Cancelled => None,
        };
        let waited = WaitChildren {
            core: &core,
            waited: false,
        }
        .await;
        exit.disarm();
        core.finalize();

        let (failures, panic) = core.take_outcomes::<E>(body_error);
        if let Some(panic) = panic {
            if !failures.is_empty() {
                tracing::error!(
                    group.id = %core.node.id(),
                    failures = failures.len(),
                    "task group re-raises a panic; its other failures are dropped"
                );
            }
            resume_unwind(panic);
        }
        if !failures.is_empty() {
            return Err(TaskGroupError::failed(failures));
        }
        // An enclosing scope cancelled while we waited for our tasks takes precedence over
        // the body's value, as a `CancelledError` raised in `__aexit__` does.
        let outer_cancel = core
            .node
            .parent()
            .and_then(|parent| parent.cancellation())
            .filter(|_| waited);
        let cancelled = match (value, outer_cancel) {
            (Some(value), None) => return Ok(value),
            (Some(_), Some(outer)) => Cancelled::inherited(outer.origin().clone()),
            (None, _) => core
                .node
                .cancellation()
                .unwrap_or_else(|| Cancelled::new(CancelReason::Explicit)),
        };
        if let Some(outer) = &outer {
            note_delivered(outer);
        }
        Err(TaskGroupError::from_cancelled(cancelled))
    }
}

/// A failure waiting to be handed back, with the error's type erased.
struct RawFailure {
    task: Option<TaskId>,
    name: Option<Arc<str>>,
    error: Box<dyn Any + Send>,
}

struct GroupState {
    /// Tasks that have suspended at least once: the ones a cancellation has to wake. A task
    /// that finishes in its first poll never appears here.
    suspended: Slab<Arc<dyn ChildRef>>,
    failures: Vec<RawFailure>,
    panic: Option<Box<dyn Any + Send>>,
    /// Our key in the node's waiter list.
    node_key: Option<usize>,
}

/// Set in `GroupCore::live` once the group is finished and refuses new tasks.
const FINISHED: usize = 1 << (usize::BITS - 1);

/// How many finished tasks the spawning side lets pile up before it frees them.
const RELEASE_BATCH: usize = 64;

/// How many finished tasks may pile up before a finishing task frees them itself.
const GRAVEYARD_LIMIT: usize = 1024;

/// The part of a group that is independent of its error type: what tasks and the tree
/// hold on to.
pub(crate) struct GroupCore {
    node: Arc<Node>,
    name: Option<Arc<str>>,
    span: Span,
    runtime: Handle,
    tracker: Option<TaskTracker>,
    grace: Duration,
    /// Running tasks, plus [`FINISHED`]. Spawning and finishing a task that never
    /// suspends touch only this counter.
    live: AtomicUsize,
    /// Set by the reaper: every task drops its future at its next poll.
    forced: AtomicBool,
    /// Finished tasks, kept until the spawning side drops them (see [`GroupCore::bury`]);
    /// `None` once the group is finalized.
    graveyard: Mutex<Option<Vec<Arc<dyn ChildRef>>>>,
    buried: AtomicUsize,
    state: Mutex<GroupState>,
    /// The task running the scope (body, then the wait for children).
    waker: AtomicWaker,
}

impl GroupCore {
    fn new(name: Option<Arc<str>>, grace: Duration, outer: Option<Arc<Node>>) -> Arc<GroupCore> {
        let runtime = Handle::try_current()
            .expect("an aio TaskGroup must run inside a Tokio runtime (see aio::run)");
        let tracker = outer.as_ref().and_then(|node| node.root_tracker());
        let core = Arc::new_cyclic(|weak| {
            let node = Node::new(NodeKind::Group { core: weak.clone() }, outer, false);
            let span = tracing::debug_span!(
                "aio.task_group",
                group.id = node.id().as_u64(),
                group.name = name.as_deref()
            );
            GroupCore {
                node,
                name,
                span,
                runtime,
                tracker,
                grace,
                live: AtomicUsize::new(0),
                forced: AtomicBool::new(false),
                graveyard: Mutex::new(Some(Vec::new())),
                buried: AtomicUsize::new(0),
                state: Mutex::new(GroupState {
                    suspended: Slab::new(),
                    failures: Vec::new(),
                    panic: None,
                    node_key: None,
                }),
                waker: AtomicWaker::new(),
            }
        });
        // Our tasks live in other Tokio tasks: the group relays cancellation to them, so it
        // is a waiter of its own node, which is linked into the tree right away.
        let as_waiter: Arc<dyn Notify> = core.clone();
        let key = core.node.register(scope::Waiter::Notify(as_waiter));
        lock(&core.state).node_key = Some(key);
        core
    }

    fn len(&self) -> usize {
        self.live.load(Ordering::Acquire) & !FINISHED
    }

    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// Whether the reaper wants every task gone.
    pub(crate) fn is_forced(&self) -> bool {
        self.forced.load(Ordering::Acquire)
    }

    /// Spawns a task. A `shielded` task (a detached shield) runs in a node that the group's
    /// cancellation does not reach, and is accepted while the group is shutting down. A
    /// refused future is handed back.
    pub(crate) fn spawn<F>(
        self: &Arc<Self>,
        name: Option<Arc<str>>,
        fut: F,
        shielded: bool,
    ) -> Result<TaskHandle<<F::Output as ChildOutput>::Ok>, (SpawnError, F)>
    where
        F: Future + Send + 'static,
        F::Output: ChildOutput,
    {
        if !shielded && self.node.is_cancelled() {
            if let Some(cancelled) = self.node.cancellation() {
                return Err((SpawnError::ShuttingDown(cancelled), fut));
            }
        }
        if self.live.fetch_add(1, Ordering::AcqRel) & FINISHED != 0 {
            self.live.fetch_sub(1, Ordering::AcqRel);
            return Err((SpawnError::Finished, fut));
        }
        let id = TaskId::next();
        let cell = Arc::new(ChildCell::new(
            id,
            name,
            Owner::Group(Arc::clone(self)),
            shielded,
        ));
        let span = tracing::debug_span!(
            parent: &self.span,
            "aio.task",
            task.id = id.as_u64(),
            task.name = cell.name().map(|n| &**n)
        );
        let task = ChildTask::new(Arc::clone(&cell), fut.instrument(span));
        cell.keep(self.runtime.spawn(task));
        if self.buried.load(Ordering::Relaxed) >= RELEASE_BATCH {
            self.release_finished();
        }
        Ok(TaskHandle::new(cell))
    }

    /// A finished task hands its cell (which owns the task's `JoinHandle`) to the group, so
    /// that the side that spawned it frees its memory, in batches: memory freed on the
    /// thread that allocated it is cheap, while frees from another thread contend for the
    /// allocating thread's arena in the system allocator. Past [`GRAVEYARD_LIMIT`] the
    /// finishing task frees the batch itself, so a group that stops spawning keeps little.
    pub(crate) fn bury(&self, child: Arc<dyn ChildRef>) {
        let mut graveyard = lock(&self.graveyard);
        let Some(buried) = graveyard.as_mut() else {
            // The group is gone (its runtime shut down): nothing to hand the cell to.
            drop(graveyard);
            drop(child);
            return;
        };
        buried.push(child);
        let full = buried.len() >= GRAVEYARD_LIMIT;
        self.buried
            .store(if full { 0 } else { buried.len() }, Ordering::Relaxed);
        let batch = full.then(|| std::mem::take(buried));
        drop(graveyard);
        drop(batch);
    }

    /// Frees the cells of finished tasks.
    fn release_finished(&self) {
        let finished = lock(&self.graveyard).as_mut().map(std::mem::take);
        self.buried.store(0, Ordering::Relaxed);
        drop(finished);
    }

    /// A task has suspended for the first time: from now on a cancellation must wake it.
    /// Check for cancellation *after* this, so one that raced with it is not missed.
    pub(crate) fn add_suspended(&self, child: Arc<dyn ChildRef>) -> usize {
        lock(&self.state).suspended.insert(child)
    }

    /// A task has finished: forget it, record what it reported, cancel the rest on a
    /// failure, and wake the scope when the last one is gone.
    pub(crate) fn child_done(
        &self,
        suspended: Option<usize>,
        id: TaskId,
        name: Option<&Arc<str>>,
        event: Option<ChildEvent>,
    ) {
        let mut cancel = false;
        if suspended.is_some() || event.is_some() {
            let mut state = lock(&self.state);
            let removed = suspended.and_then(|key| state.suspended.remove(key));
            match event {
                None => {}
                Some(ChildEvent::Failed(error)) => {
                    state.failures.push(RawFailure {
                        task: Some(id),
                        name: name.cloned(),
                        error,
                    });
                    cancel = true;
                }
                Some(ChildEvent::Panicked(panic)) => {
                    store_panic(&mut state, panic, Some(id));
                    cancel = true;
                }
            }
            drop(state);
            drop(removed);
        }
        if cancel {
            self.node
                .cancel(CancelReason::sibling_failed(Some(id), name.cloned()));
        }
        if self.live.fetch_sub(1, Ordering::AcqRel) & !FINISHED == 1 {
            self.waker.wake();
        }
    }

    fn record_panic(&self, panic: Box<dyn Any + Send>, task: Option<TaskId>) {
        store_panic(&mut lock(&self.state), panic, task);
        self.node.cancel(CancelReason::sibling_failed(task, None));
    }

    /// Marks the group finished if no task is left; registers `cx` otherwise.
    fn poll_finish(&self, cx: &mut Context<'_>) -> Poll<()> {
        self.release_finished();
        self.waker.register(cx.waker());
        match self
            .live
            .compare_exchange(0, FINISHED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Poll::Ready(()),
            Err(live) if live == FINISHED => Poll::Ready(()),
            Err(_) => Poll::Pending,
        }
    }

    /// Leaves the scope tree once the group is finished, and frees what it kept.
    fn finalize(&self) {
        let finished = lock(&self.graveyard).take();
        drop(finished);
        let key = lock(&self.state).node_key.take();
        if let Some(key) = key {
            self.node.unregister(key);
        }
        self.node.detach();
    }

    /// The collected failures, typed again, with the body's error last; and the panic.
    fn take_outcomes<E: 'static>(
        &self,
        body_error: Option<E>,
    ) -> (Vec<TaskFailure<E>>, Option<Box<dyn Any + Send>>) {
        let (raw, panic) = {
            let mut state = lock(&self.state);
            (std::mem::take(&mut state.failures), state.panic.take())
        };
        let mut failures: Vec<TaskFailure<E>> = raw
            .into_iter()
            .map(|f| {
                let error = f
                    .error
                    .downcast::<E>()
                    .expect("a task group only collects errors of its own type");
                TaskFailure::new(f.task, f.name, *error)
            })
            .collect();
        failures.extend(body_error.map(|error| TaskFailure::new(None, None, error)));
        (failures, panic)
    }

    /// The tasks that are suspended now.
    fn suspended(&self) -> Vec<Arc<dyn ChildRef>> {
        lock(&self.state).suspended.iter().cloned().collect()
    }

    /// Wakes every suspended task so it notices a cancellation or a forced drop. Tasks that
    /// never suspended check for both before and after their first poll.
    fn wake_children(&self) {
        for child in self.suspended() {
            child.wake();
        }
    }

    /// Makes every task drop its future at its next poll, and wakes them.
    fn force(&self) -> Vec<Arc<dyn ChildRef>> {
        self.forced.store(true, Ordering::Release);
        let stragglers = self.suspended();
        for child in &stragglers {
            child.wake();
        }
        stragglers
    }
}

fn store_panic(state: &mut GroupState, panic: Box<dyn Any + Send>, task: Option<TaskId>) {
    if state.panic.is_none() {
        state.panic = Some(panic);
    } else {
        tracing::error!(
            task.id = task.map(TaskId::as_u64),
            "a second panic in a task group was dropped; the first is re-raised"
        );
    }
}

impl Notify for GroupCore {
    fn notify(&self) {
        self.wake_children();
        self.waker.wake();
    }
}

enum BodyOutcome<T> {
    Returned(T),
    Cancelled,
    Panicked(Box<dyn Any + Send>),
}

pin_project! {
    /// The body of a group, running in the group's node in the calling task.
    struct Body<'a, F> {
        core: &'a GroupCore,
        #[pin]
        inner: Scoped<F>,
    }
}

impl<F: Future> Future for Body<'_, F> {
    type Output = BodyOutcome<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        this.core.waker.register(cx.waker());
        let inner = this.inner.as_mut();
        let node = &this.core.node;
        match catch_unwind(AssertUnwindSafe(|| {
            inner.poll_scoped(cx, || node.is_cancelled())
        })) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Some(output))) => Poll::Ready(BodyOutcome::Returned(output)),
            Ok(Poll::Ready(None)) => Poll::Ready(BodyOutcome::Cancelled),
            Err(panic) => {
                let inner = this.inner.as_mut();
                let _ = catch_unwind(AssertUnwindSafe(|| inner.drop_future()));
                Poll::Ready(BodyOutcome::Panicked(panic))
            }
        }
    }
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
