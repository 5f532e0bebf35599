//! [`LocalGroup`]: a task group whose tasks run inside the calling task, so they may borrow.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use futures::task::AtomicWaker;
use pin_project_lite::pin_project;
use tokio::time::Instant;

use crate::scope::{self, Node, NodeKind, PinGuard, Scoped, TaskScope};
use crate::task_group::{Body, ChildEvent, ChildRef, GroupConfig, GroupCore};
use crate::task_handle::Ending;
use crate::util::lock;
use crate::{
    CancelError, CancelReason, Cancelled, JoinPolicy, ScopeId, SpawnError, TaskError,
    TaskGroupError, TaskId, TaskState,
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
        pub fn spawn<F, T>(&self, fut: F) -> Result<LocalHandle<T>, SpawnError>
        where
            F: Future<Output = Result<T, E>> $(+ $send)? + 'env,
            T: $($send +)? 'env,
        {
            self.spawn_boxed(None, fut, |task| Box::pin(task))
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
        ) -> Result<LocalHandle<T>, SpawnError>
        where
            F: Future<Output = Result<T, E>> $(+ $send)? + 'env,
            T: $($send +)? 'env,
        {
            self.spawn_boxed(Some(name.into()), fut, |task| Box::pin(task))
        }
    };
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

    /// Registers a task, wraps it so it reports to the group, and hands it to the scope,
    /// boxed as `B` by `boxed`.
    fn spawn_boxed<F, T>(
        &self,
        name: Option<Arc<str>>,
        fut: F,
        boxed: impl FnOnce(LocalChild<F, T, E>) -> Pin<Box<B>>,
    ) -> Result<LocalHandle<T>, SpawnError>
    where
        F: Future<Output = Result<T, E>> + 'env,
        T: 'env,
    {
        let core = &self.inner.core;
        let id = TaskId::next();
        let info = Arc::new(LocalInfo {
            id,
            spawned: Instant::now(),
            // Queued until the limit gives it a slot: a slot handed on before `enter`
            // returns finds it waiting.
            state: AtomicU8::new(QUEUED),
            node: Node::new(
                NodeKind::Task { id, name },
                Some(Arc::clone(core.node())),
                false,
            ),
            waker: AtomicWaker::new(),
        });
        let (key, start) = core.admit_local(Arc::clone(&info) as Arc<dyn ChildRef>)?;
        if start {
            info.state.store(SCHEDULED, Ordering::Release);
        }
        let slot = Arc::new(LocalSlot {
            result: Mutex::new(LocalResult::Running),
            waker: Mutex::new(None),
        });
        let task = LocalChild {
            _error: PhantomData,
            core: Arc::clone(core),
            info: Arc::clone(&info),
            key,
            slot: Arc::clone(&slot),
            inner: Scoped::new(Arc::clone(&info.node), fut),
            done: false,
        };
        lock(&self.inner.spawned).push(boxed(task));
        core.waker.wake();
        Ok(LocalHandle { info, slot })
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

const SCHEDULED: u8 = 0;
const RUNNING: u8 = 1;
const SUSPENDED: u8 = 2;
const FINISHED: u8 = 3;
/// Waiting for a slot of the group's limit.
const QUEUED: u8 = 4;

/// What the group and the task tree know of a local task.
struct LocalInfo {
    id: TaskId,
    spawned: Instant,
    state: AtomicU8,
    node: Arc<Node>,
    /// Wakes this task alone, to deliver its own cancellation.
    waker: AtomicWaker,
}

impl TaskScope for LocalInfo {
    fn node(&self) -> &Arc<Node> {
        &self.node
    }

    fn id(&self) -> TaskId {
        self.id
    }

    fn name(&self) -> Option<&Arc<str>> {
        match self.node.kind() {
            NodeKind::Task { name, .. } => name.as_ref(),
            _ => None,
        }
    }

    fn parent(&self) -> Option<&Arc<Node>> {
        self.node.parent()
    }

    fn created_node(&self) -> Option<&Arc<Node>> {
        Some(&self.node)
    }

    fn is_cancelled(&self) -> bool {
        self.node.is_cancelled()
    }

    fn cancellation(&self) -> Option<Cancelled> {
        self.node.cancellation()
    }
}

impl ChildRef for LocalInfo {
    // The waker of the task's place among the scope's tasks: the scope polls it, and it
    // alone, when a cancellation must reach it.
    fn wake(&self) {
        self.waker.wake();
    }

    // The limit hands the task a slot: the scope polls it, and it starts.
    fn admit(&self) -> bool {
        let admitted = self
            .state
            .compare_exchange(QUEUED, SCHEDULED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if admitted {
            self.waker.wake();
        }
        admitted
    }

    fn state(&self) -> TaskState {
        match self.state.load(Ordering::Acquire) {
            QUEUED => TaskState::Queued,
            SCHEDULED => TaskState::Scheduled,
            RUNNING => TaskState::Running,
            SUSPENDED => TaskState::Suspended,
            _ => TaskState::Finished,
        }
    }

    fn spawned(&self) -> Instant {
        self.spawned
    }
}

struct LocalSlot<T> {
    result: Mutex<LocalResult<T>>,
    waker: Mutex<Option<Waker>>,
}

enum LocalResult<T> {
    Running,
    Done(Result<T, TaskError>),
    /// The result was taken; how the task ended stays known.
    Taken(Ending),
}

impl<T> LocalResult<T> {
    /// Takes a finished task's result; [`TaskError::Taken`] if it was taken before.
    fn take(&mut self) -> Option<Result<T, TaskError>> {
        let ending = match self {
            LocalResult::Running => return None,
            LocalResult::Taken(_) => return Some(Err(TaskError::Taken)),
            LocalResult::Done(result) => Ending::of(result),
        };
        match std::mem::replace(self, LocalResult::Taken(ending)) {
            LocalResult::Done(result) => Some(result),
            _ => unreachable!("the result was just seen done"),
        }
    }

    fn ending(&self) -> Option<Ending> {
        match self {
            LocalResult::Running => None,
            LocalResult::Done(result) => Some(Ending::of(result)),
            LocalResult::Taken(ending) => Some(*ending),
        }
    }
}

pin_project! {
    /// A task of a local group, as its scope polls it.
    pub(crate) struct LocalChild<F, T, E> {
        _error: PhantomData<fn() -> E>,
        core: Arc<GroupCore>,
        info: Arc<LocalInfo>,
        key: usize,
        slot: Arc<LocalSlot<T>>,
        #[pin]
        inner: Scoped<F>,
        done: bool,
    }

    impl<F, T, E> PinnedDrop for LocalChild<F, T, E> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if !*this.done {
                *this.done = true;
                // Dropped unstarted while queued, it holds no slot: `admit` now refuses it.
                let held_slot = this.info.state.swap(FINISHED, Ordering::AcqRel) != QUEUED;
                let result = Err(TaskError::Aborted);
                finish(this.core, this.info, *this.key, this.slot, result, None, held_slot);
            }
        }
    }
}

impl<F, T, E> Future for LocalChild<F, T, E>
where
    F: Future<Output = Result<T, E>>,
    E: CancelError + Send + 'static,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        if *this.done {
            return Poll::Ready(());
        }
        this.info.waker.register(cx.waker());
        let node = &this.info.node;
        if this.info.state.load(Ordering::Acquire) == QUEUED {
            if !node.is_cancelled() {
                return Poll::Pending;
            }
            // A queued task of a cancelled group never starts, and never held a slot.
            let left = this.info.state.compare_exchange(
                QUEUED,
                FINISHED,
                Ordering::AcqRel,
                Ordering::Acquire,
            );
            if left.is_ok() {
                *this.done = true;
                let inner = this.inner.as_mut();
                let dropped = catch_unwind(AssertUnwindSafe(|| inner.drop_future()));
                let (result, event) = match dropped {
                    Ok(()) => (Err(TaskError::Cancelled(cancellation(node))), None),
                    Err(panic) => (
                        Err(TaskError::Panicked(failure(this.info))),
                        Some(ChildEvent::Panicked(panic)),
                    ),
                };
                finish(
                    this.core, this.info, *this.key, this.slot, result, event, false,
                );
                return Poll::Ready(());
            }
        }
        this.info.state.store(RUNNING, Ordering::Release);
        let inner = this.inner.as_mut();
        let (result, event) = match catch_unwind(AssertUnwindSafe(|| {
            inner.poll_scoped(cx, || node.is_cancelled())
        })) {
            Ok(Poll::Pending) => {
                this.info.state.store(SUSPENDED, Ordering::Release);
                return Poll::Pending;
            }
            Ok(Poll::Ready(Some(Ok(value)))) => (Ok(value), None),
            Ok(Poll::Ready(Some(Err(error)))) => match error.as_cancelled() {
                Some(cancelled) => (Err(TaskError::Cancelled(cancelled.clone())), None),
                None => (
                    Err(TaskError::Failed(failure(this.info))),
                    Some(ChildEvent::Failed(Box::new(error) as Box<dyn Any + Send>)),
                ),
            },
            Ok(Poll::Ready(None)) => (Err(TaskError::Cancelled(cancellation(node))), None),
            Err(panic) => {
                let _ = catch_unwind(AssertUnwindSafe(|| this.inner.as_mut().drop_future()));
                (
                    Err(TaskError::Panicked(failure(this.info))),
                    Some(ChildEvent::Panicked(panic)),
                )
            }
        };
        *this.done = true;
        finish(
            this.core, this.info, *this.key, this.slot, result, event, true,
        );
        Poll::Ready(())
    }
}

fn failure(info: &LocalInfo) -> Cancelled {
    Cancelled::new(CancelReason::sibling_failed(
        Some(info.id),
        info.name().cloned(),
    ))
}

fn cancellation(node: &Node) -> Cancelled {
    node.cancellation()
        .unwrap_or_else(|| Cancelled::new(CancelReason::ParentCancelled))
}

fn finish<T>(
    core: &GroupCore,
    info: &LocalInfo,
    key: usize,
    slot: &LocalSlot<T>,
    result: Result<T, TaskError>,
    event: Option<ChildEvent>,
    held_slot: bool,
) {
    info.state.store(FINISHED, Ordering::Release);
    info.node.detach();
    if let Some(event) = event {
        core.child_failed(info.id, info.name(), event);
    }
    *lock(&slot.result) = LocalResult::Done(result);
    if let Some(waker) = lock(&slot.waker).take() {
        waker.wake();
    }
    core.bury(Some(key));
    core.child_done(held_slot);
}

/// A handle to a task of a [`LocalGroup`]: `.await` it inside the scope, or read
/// [`result`](Self::result) after it. See [`TaskHandle`](crate::TaskHandle).
pub struct LocalHandle<T> {
    info: Arc<LocalInfo>,
    slot: Arc<LocalSlot<T>>,
}

impl<T> LocalHandle<T> {
    /// The task's id.
    pub fn id(&self) -> TaskId {
        self.info.id
    }

    /// The task's name, if it was spawned with one.
    pub fn name(&self) -> Option<&str> {
        self.info.name().map(|name| &**name)
    }

    /// Whether the task has finished.
    pub fn is_finished(&self) -> bool {
        lock(&self.slot.result).ending().is_some()
    }

    /// Whether the task has finished with a failure or a panic. See
    /// [`TaskHandle::has_failed`](crate::TaskHandle::has_failed).
    pub fn has_failed(&self) -> bool {
        lock(&self.slot.result).ending() == Some(Ending::Failed)
    }

    /// Whether the task has finished cancelled. See
    /// [`TaskHandle::is_cancelled`](crate::TaskHandle::is_cancelled).
    pub fn is_cancelled(&self) -> bool {
        lock(&self.slot.result).ending() == Some(Ending::Cancelled)
    }

    /// Cancels this task alone; `false` if it has already finished. See
    /// [`TaskHandle::cancel`](crate::TaskHandle::cancel).
    pub fn cancel(&self) -> bool {
        self.cancel_inner(None)
    }

    /// Like [`cancel`](Self::cancel), with a message that the task's
    /// [`Cancelled`] carries. See [`TaskHandle::cancel_with`](crate::TaskHandle::cancel_with).
    pub fn cancel_with(&self, message: impl Into<Arc<str>>) -> bool {
        self.cancel_inner(Some(message.into()))
    }

    fn cancel_inner(&self, message: Option<Arc<str>>) -> bool {
        if self.is_finished() {
            return false;
        }
        self.info.node.cancel_with(CancelReason::Explicit, message);
        self.info.waker.wake();
        true
    }

    /// The task's result, without waiting.
    ///
    /// # Errors
    ///
    /// [`TaskError::NotFinished`] while the task runs, [`TaskError::Taken`] if an `.await`
    /// took the result already; otherwise how the task ended.
    pub fn result(self) -> Result<T, TaskError> {
        lock(&self.slot.result)
            .take()
            .unwrap_or(Err(TaskError::NotFinished))
    }
}

impl<T> fmt::Debug for LocalHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalHandle")
            .field("id", &self.info.id)
            .field("name", &self.name())
            .field("finished", &self.is_finished())
            .finish()
    }
}

/// Waits for the task's result. Like a [`TaskHandle`](crate::TaskHandle), a local handle is
/// an `Unpin` future: await `&mut handle` to keep it.
///
/// # Cancel safety
///
/// Cancel safe: the task keeps running in its group, and the result stays in the handle
/// until a poll returns it.
impl<T> Future for LocalHandle<T> {
    type Output = Result<T, TaskError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut result = lock(&self.slot.result);
        if let Some(taken) = result.take() {
            return Poll::Ready(taken);
        }
        let mut waker = lock(&self.slot.waker);
        if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}
