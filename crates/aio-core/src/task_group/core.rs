//! The shared state of a task group: what its tasks, its scope, its reaper and the task tree
//! hold on to. It does not know the group's error type; failures are stored type-erased and
//! typed again when the scope returns.

use std::any::Any;
use std::future::Future;
use std::panic::resume_unwind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;
use tracing::{Instrument, Span};

use super::cell::{ChildCell, ChildRef, Owner, TaskInfo};
use super::child::{self, ChildTask, FirstPoll};
use super::limit::Limit;
use super::outcome::{ChildEvent, ChildOutput};
use super::registry::Registry;
use super::{JoinPolicy, SpawnError, TaskFailure, TaskGroupError};
use crate::model::{self, AtomicUsize, AtomicWaker};
use crate::scope::{self, GroupScope, Node, NodeKind, Notify};
use crate::spans::Site;
use crate::task_tree::{self, Listing};
use crate::util::lock;
use crate::{CancelReason, Cancelled, TaskHandle, TaskId};

/// Set in `GroupCore::live` once the group is finished and refuses new tasks.
pub(super) const FINISHED: usize = 1 << (usize::BITS - 1);

/// How many finished tasks the spawning side lets pile up before it frees them.
const RELEASE_BATCH: usize = 64;

/// How many finished tasks may pile up before a finishing task frees them itself (two under
/// loom, so that its models reach that sweep).
const GRAVEYARD_LIMIT: usize = if cfg!(aio_loom) { 2 } else { 1024 };

/// How a group is set up.
pub(crate) struct GroupConfig {
    pub(crate) name: Option<Arc<str>>,
    pub(crate) site: Option<Site>,
    pub(crate) grace: Duration,
    pub(crate) policy: JoinPolicy,
    pub(crate) limit: Option<usize>,
    /// A task that ends cancelled cancels the group too (`gather`).
    pub(crate) cancelled_task_ends_group: bool,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            name: None,
            site: None,
            grace: super::DEFAULT_GRACE,
            policy: JoinPolicy::FailFast,
            limit: None,
            cancelled_task_ends_group: false,
        }
    }
}

/// A failure waiting to be handed back, with the error's type erased.
struct RawFailure {
    task: Option<TaskId>,
    name: Option<Arc<str>>,
    error: Box<dyn Any + Send>,
}

struct Reports {
    failures: Vec<RawFailure>,
    panic: Option<Box<dyn Any + Send>>,
    /// Our key in the node's waiter list.
    node_key: Option<usize>,
    /// Where the group is listed in the task tree.
    listing: Option<Listing>,
}

pub(crate) struct GroupCore {
    pub(super) node: Arc<Node>,
    pub(super) name: Option<Arc<str>>,
    pub(super) site: Option<Site>,
    pub(crate) span: Span,
    /// Where tasks are spawned; `None` for a local group, whose tasks run in its scope.
    runtime: Option<Handle>,
    pub(super) tracker: Option<TaskTracker>,
    pub(super) grace: Duration,
    pub(super) policy: JoinPolicy,
    pub(super) limit: Option<Limit>,
    cancelled_task_ends_group: bool,
    pub(super) created: Instant,
    /// Running tasks, plus [`FINISHED`]. Spawning a task and finishing it touch only this
    /// counter, the registry lock and, in batches, the graveyard.
    pub(super) live: AtomicUsize,
    /// Set by the reaper: every task drops its future at its next poll.
    forced: AtomicBool,
    registry: Registry,
    /// The registry keys of finished tasks, until the spawning side sweeps them out (see
    /// [`GroupCore::bury`]); `None` once the group is finalized.
    graveyard: model::Mutex<Option<Vec<usize>>>,
    buried: AtomicUsize,
    state: Mutex<Reports>,
    /// The task running the scope (body, then the wait for the tasks).
    pub(crate) waker: AtomicWaker,
}

impl GroupCore {
    /// A group under `outer`. Tasks are spawned on the current Tokio runtime unless `local`.
    pub(crate) fn new(
        config: GroupConfig,
        outer: Option<Arc<Node>>,
        local: bool,
    ) -> Arc<GroupCore> {
        let runtime = (!local).then(|| {
            Handle::try_current()
                .expect("an aio TaskGroup must run inside a Tokio runtime (see aio::run)")
        });
        let tracker = outer.as_ref().and_then(|node| node.root_tracker());
        let GroupConfig {
            name,
            site,
            grace,
            policy,
            limit,
            cancelled_task_ends_group,
        } = config;
        let core = Arc::new_cyclic(|weak: &Weak<GroupCore>| {
            let group: Weak<dyn GroupScope> = weak.clone();
            let node = Node::new(NodeKind::Group { group }, outer, false);
            let span = crate::spans::group_span(node.id(), name.as_deref(), site);
            GroupCore {
                node,
                name,
                site,
                span,
                runtime,
                tracker,
                grace,
                policy,
                limit: limit.map(Limit::new),
                cancelled_task_ends_group,
                created: Instant::now(),
                live: AtomicUsize::new(0),
                forced: AtomicBool::new(false),
                registry: Registry::new(),
                graveyard: model::Mutex::new(Some(Vec::new())),
                buried: AtomicUsize::new(0),
                state: Mutex::new(Reports {
                    failures: Vec::new(),
                    panic: None,
                    node_key: None,
                    listing: None,
                }),
                waker: AtomicWaker::new(),
            }
        });
        // Our tasks live in other Tokio tasks: the group relays cancellation to them, so it
        // is a waiter of its own node, which is linked into the tree right away.
        let as_waiter: Arc<dyn Notify> = core.clone();
        let key = core.node.register(scope::Waiter::Notify(as_waiter));
        lock(&core.state).node_key = Some(key);
        let listed: Weak<dyn GroupScope> = Arc::downgrade(&core) as Weak<GroupCore>;
        lock(&core.state).listing = Some(task_tree::list(&core.node, listed));
        core
    }

    pub(crate) fn len(&self) -> usize {
        self.live.load(Ordering::Acquire) & !FINISHED
    }

    pub(crate) fn node(&self) -> &Arc<Node> {
        &self.node
    }

    /// The name for logs and the task tree: the group's own, else where it was opened.
    pub(crate) fn label(&self) -> Option<String> {
        match (&self.name, &self.site) {
            (Some(name), _) => Some(name.to_string()),
            (None, Some(site)) => Some(site.to_string()),
            (None, None) => None,
        }
    }

    /// Whether the reaper wants every task gone.
    pub(crate) fn is_forced(&self) -> bool {
        self.forced.load(Ordering::Acquire)
    }

    /// Counts a new task in, unless the group is finished or (for a task the group's
    /// cancellation would reach) shutting down.
    fn check_open(&self, shielded: bool) -> Result<(), SpawnError> {
        if self.live.load(Ordering::Acquire) & FINISHED == 0 && !shielded {
            if let Some(cancelled) = self.node.cancellation() {
                return Err(SpawnError::ShuttingDown(cancelled));
            }
        }
        if self.live.fetch_add(1, Ordering::AcqRel) & FINISHED != 0 {
            self.live.fetch_sub(1, Ordering::AcqRel);
            return Err(SpawnError::Finished);
        }
        Ok(())
    }

    /// Spawns a task on the runtime. A `shielded` task (a detached shield) runs in a node
    /// that the group's cancellation does not reach, is accepted while the group is shutting
    /// down, and does not count against the group's limit. A refused future is handed back.
    pub(crate) fn spawn<F>(
        self: &Arc<Self>,
        name: Option<Arc<str>>,
        fut: F,
        shielded: bool,
    ) -> Result<TaskHandle<<F::Output as ChildOutput>::Ok>, (SpawnError, F)>
    where
        F: Future + Send + 'static,
        F::Output: ChildOutput<Ok: Send + 'static>,
    {
        let cell = match self.admit(name, shielded) {
            Ok(cell) => cell,
            Err(e) => return Err((e, fut)),
        };
        let span = crate::spans::task_span(&self.span, cell.id(), cell.name().map(|n| &**n));
        // The task's memory goes when the task ends; its cell keeps the result. Without a
        // subscriber the span would only make the task bigger: leave it out.
        if span.is_disabled() {
            self.launch(&cell, fut);
        } else {
            self.launch(&cell, fut.instrument(span));
        }
        self.release_finished_in_batches();
        Ok(TaskHandle::new(cell))
    }

    /// Spawns a task whose first poll happens here and now, in the task's own scope. A task
    /// that ends at that poll never becomes a Tokio task: it is reported at once, as a Tokio
    /// task that ended would be. One that suspends goes on as a Tokio task. A task that must
    /// wait for a slot of the group's limit is not polled here: it is spawned as it is, and
    /// starts when the limit hands it a slot.
    pub(crate) fn spawn_eager<F>(
        self: &Arc<Self>,
        name: Option<Arc<str>>,
        fut: F,
    ) -> Result<TaskHandle<<F::Output as ChildOutput>::Ok>, SpawnError>
    where
        F: Future + Send + 'static,
        F::Output: ChildOutput<Ok: Send + 'static>,
    {
        let cell = self.admit(name, false)?;
        let span = crate::spans::task_span(&self.span, cell.id(), cell.name().map(|n| &**n));
        match (cell.info().is_queued(), span.is_disabled()) {
            (true, true) => self.launch(&cell, fut),
            (true, false) => self.launch(&cell, fut.instrument(span)),
            (false, true) => self.start_now(&cell, fut),
            (false, false) => self.start_now(&cell, fut.instrument(span)),
        }
        self.release_finished_in_batches();
        Ok(TaskHandle::new(cell))
    }

    /// Hands a registered task to Tokio.
    #[inline]
    fn launch<F>(&self, cell: &Arc<ChildCell<<F::Output as ChildOutput>::Ok>>, fut: F)
    where
        F: Future + Send + 'static,
        F::Output: ChildOutput<Ok: Send + 'static>,
    {
        drop(self.runtime().spawn(ChildTask::new(Arc::clone(cell), fut)));
    }

    /// Polls a registered task once, inside the group's runtime so that what the future
    /// creates binds to it wherever the caller runs, and hands it to Tokio if it suspended.
    fn start_now<F>(&self, cell: &Arc<ChildCell<<F::Output as ChildOutput>::Ok>>, fut: F)
    where
        F: Future + Send + 'static,
        F::Output: ChildOutput<Ok: Send + 'static>,
    {
        let runtime = self.runtime();
        let first = {
            let _runtime = runtime.enter();
            child::poll_eagerly(cell, fut)
        };
        match first {
            FirstPoll::Suspended(fut) => {
                drop(runtime.spawn(ChildTask::new(Arc::clone(cell), fut)));
            }
            FirstPoll::Ended(outcome) => {
                // The task ends on the thread that registered it: it leaves the registry now
                // rather than through the graveyard, which exists to bring cells back to
                // that thread.
                if let Some(key) = cell.info().take_registry_key() {
                    drop(self.registry.remove_one(key));
                }
                child::end(cell, outcome);
            }
        }
    }

    fn runtime(&self) -> &Handle {
        self.runtime
            .as_ref()
            .expect("only task groups, not local groups, spawn Tokio tasks")
    }

    /// Checks that the group takes a new task, and registers the task's cell: in the
    /// registry, and with the limit, which may queue it.
    pub(crate) fn admit<T: Send + 'static>(
        self: &Arc<Self>,
        name: Option<Arc<str>>,
        shielded: bool,
    ) -> Result<Arc<ChildCell<T>>, SpawnError> {
        self.check_open(shielded)?;
        let cell = Arc::new(ChildCell::inline(self.task_info(name, shielded)));
        self.register(cell.clone(), cell.info());
        Ok(cell)
    }

    /// Like [`admit`](Self::admit), for a task of a local group, which runs inside the
    /// group's scope: its output may borrow, so the registry gets its info alone.
    pub(crate) fn admit_local(
        self: &Arc<Self>,
        name: Option<Arc<str>>,
    ) -> Result<Arc<TaskInfo>, SpawnError> {
        self.check_open(false)?;
        self.release_finished_in_batches();
        let info = Arc::new(self.task_info(name, false));
        self.register(info.clone(), &info);
        Ok(info)
    }

    #[inline]
    fn task_info(self: &Arc<Self>, name: Option<Arc<str>>, shielded: bool) -> TaskInfo {
        let limited = self.limit.is_some() && !shielded;
        let owner = Owner::Group(Arc::clone(self));
        TaskInfo::new(TaskId::next(), name, owner, shielded, limited)
    }

    /// Puts a new task in the registry, and in the limit's queue if it counts against the
    /// limit: it is queued until the limit hands it a slot, which may be at once.
    #[inline]
    fn register(&self, child: Arc<dyn ChildRef>, info: &TaskInfo) {
        info.registered(self.registry.insert(Arc::clone(&child)));
        if let Some(limit) = self.limit.as_ref().filter(|_| info.limited()) {
            if limit.enter(&child) {
                info.admit_now();
            }
        }
    }

    /// `cancel()` and `cancel_with(message)`: cancels the group unless it has finished.
    pub(crate) fn cancel_explicitly(&self, message: Option<Arc<str>>) {
        if self.live.load(Ordering::Acquire) & FINISHED == 0 {
            self.node.cancel_with(CancelReason::Explicit, message);
        }
    }

    /// A task ended cancelled, by itself or by its handle. In a group that `gather` runs,
    /// that ends the group: the other tasks are cancelled. A task cancelled along with its
    /// group changes nothing.
    pub(crate) fn child_cancelled(&self, id: TaskId, name: Option<&Arc<str>>) {
        if self.cancelled_task_ends_group && !self.node.is_cancelled() {
            self.node
                .cancel(CancelReason::sibling_cancelled(id, name.cloned()));
        }
    }

    /// The scope is going away before the group finished: cancel it.
    pub(crate) fn cancel_if_unfinished(&self) {
        if self.live.load(Ordering::Acquire) & FINISHED == 0 {
            self.node.cancel(CancelReason::ParentCancelled);
        }
    }

    /// A finished task leaves its registry key in the graveyard. The side that spawns tasks
    /// sweeps the graveyard in batches and removes those tasks from the registry, which drops
    /// their cells, mostly on the thread that allocated them: the system allocator frees
    /// memory cheaply there, while a free from another thread contends for the allocating
    /// thread's arena. Each lock stays mostly with one side: the registry with the spawner,
    /// the graveyard with the finishing tasks. Past [`GRAVEYARD_LIMIT`] a finishing task
    /// sweeps itself, so a group that stops spawning keeps little.
    pub(crate) fn bury(&self, key: Option<usize>) {
        let Some(key) = key else {
            return;
        };
        let mut graveyard = lock(&self.graveyard);
        let Some(buried) = graveyard.as_mut() else {
            // The group is gone (its runtime shut down): remove the task at once.
            drop(graveyard);
            drop(self.registry.remove(&[key]));
            return;
        };
        buried.push(key);
        let full = buried.len() >= GRAVEYARD_LIMIT;
        self.buried
            .store(if full { 0 } else { buried.len() }, Ordering::Relaxed);
        let batch = full.then(|| std::mem::take(buried));
        drop(graveyard);
        if let Some(batch) = batch {
            drop(self.registry.remove(&batch));
        }
    }

    /// The spawning side's sweep: once a batch of finished tasks has piled up, sweeps them
    /// out of the registry.
    #[inline]
    fn release_finished_in_batches(&self) {
        if self.buried.load(Ordering::Relaxed) >= RELEASE_BATCH {
            self.release_finished();
        }
    }

    /// Sweeps finished tasks out of the registry.
    pub(super) fn release_finished(&self) {
        let keys = lock(&self.graveyard).as_mut().map(std::mem::take);
        self.buried.store(0, Ordering::Relaxed);
        if let Some(keys) = keys {
            drop(self.registry.remove(&keys));
        }
    }

    /// A task has finished with a failure or a panic: record it, and cancel the rest unless
    /// the group supervises (a supervisor keeps going even after a panic; the panic is
    /// re-raised at the end). Called before the task's handle sees the result, so that the
    /// failure is there to [take](Self::take_failure) once it does.
    pub(crate) fn child_failed(&self, id: TaskId, name: Option<&Arc<str>>, event: ChildEvent) {
        {
            let mut state = lock(&self.state);
            match event {
                ChildEvent::Failed(error) => state.failures.push(RawFailure {
                    task: Some(id),
                    name: name.cloned(),
                    error,
                }),
                ChildEvent::Panicked(panic) => store_panic(&mut state, panic, Some(id)),
            }
        }
        if self.policy == JoinPolicy::FailFast {
            self.node
                .cancel(CancelReason::sibling_failed(Some(id), name.cloned()));
        }
    }

    /// A task has finished and its handle has its result: give back its slot, and wake the
    /// scope when the last one is gone.
    pub(crate) fn child_done(&self, held_slot: bool) {
        if held_slot {
            if let Some(limit) = &self.limit {
                limit.release();
            }
        }
        if self.live.fetch_sub(1, Ordering::AcqRel) & !FINISHED == 1 {
            self.waker.wake();
        }
    }

    /// Takes a task's failure out of the group's report, typed again as `E`.
    pub(crate) fn take_failure<E: 'static>(&self, task: TaskId) -> Option<E> {
        let mut state = lock(&self.state);
        let at = state.failures.iter().position(|f| f.task == Some(task))?;
        let error = state.failures.remove(at).error.downcast::<E>();
        Some(*error.expect("a task group only collects errors of its own type"))
    }

    /// The body panicked: the group is cancelled whatever its policy, and the panic is
    /// re-raised once the tasks are done.
    pub(super) fn record_panic(&self, panic: Box<dyn Any + Send>) {
        store_panic(&mut lock(&self.state), panic, None);
        self.node.cancel(CancelReason::sibling_failed(None, None));
    }

    /// Marks the group finished if no task is left; registers `cx` otherwise.
    pub(crate) fn poll_finish(&self, cx: &mut Context<'_>) -> Poll<()> {
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
    pub(crate) fn finalize(&self) {
        let keys = lock(&self.graveyard).take();
        if let Some(keys) = keys {
            drop(self.registry.remove(&keys));
        }
        let key = lock(&self.state).node_key.take();
        if let Some(key) = key {
            self.node.unregister(key);
        }
        self.node.detach();
        let listing = lock(&self.state).listing.take();
        if let Some(listing) = listing {
            task_tree::unlist(listing);
        }
    }

    /// The group's result once every task is done: the first panic is re-raised; else the
    /// failures, the body's error last; else the cancellation, if the body was cut off or an
    /// enclosing scope was cancelled while the group waited; else the body's value.
    pub(crate) fn conclude<R, E: 'static>(
        &self,
        value: Option<R>,
        body_error: Option<E>,
        waited: bool,
        outer: Option<&Node>,
    ) -> Result<R, TaskGroupError<E>> {
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
        if let Some(panic) = panic {
            if !failures.is_empty() {
                tracing::error!(
                    group.id = %self.node.id(),
                    failures = failures.len(),
                    "task group re-raises a panic; its other failures are dropped"
                );
            }
            resume_unwind(panic);
        }
        if !failures.is_empty() {
            if let Some(outer) = outer {
                outer.set_delivered(false);
            }
            return Err(TaskGroupError::failed(failures));
        }
        // An enclosing scope cancelled while we waited for our tasks takes precedence over
        // the body's value, as a `CancelledError` raised in `__aexit__` does.
        let outer_cancel = self
            .node
            .parent()
            .and_then(|parent| parent.cancellation())
            .filter(|_| waited);
        let cancelled = match (value, outer_cancel) {
            (Some(value), None) => {
                if let Some(outer) = outer {
                    outer.set_delivered(false);
                }
                return Ok(value);
            }
            (Some(_), Some(outer)) => outer.into_inherited(),
            (None, _) => self
                .node
                .cancellation()
                .unwrap_or_else(|| Cancelled::new(CancelReason::Explicit)),
        };
        if let Some(outer) = outer {
            outer.set_delivered(true);
        }
        Err(TaskGroupError::from_cancelled(cancelled))
    }

    /// Failures and panics of a dropped group have nobody to go to: say so.
    pub(super) fn report_lost(&self) {
        let mut state = lock(&self.state);
        for failure in state.failures.drain(..) {
            tracing::error!(
                group.id = %self.node.id(),
                task.id = failure.task.map(tracing::field::display),
                task.name = failure.name.as_deref(),
                "task of a dropped task group failed; nobody is left to receive the error"
            );
        }
        if state.panic.take().is_some() {
            tracing::error!(
                group.id = %self.node.id(),
                "task of a dropped task group panicked; nobody is left to re-raise it"
            );
        }
    }

    /// Runs `fut` as a task of its own on the group's runtime, tracked by `run` if the group
    /// lives under it.
    pub(super) fn spawn_tracked(&self, fut: impl Future<Output = ()> + Send + 'static) {
        let Some(runtime) = &self.runtime else {
            return;
        };
        crate::background::spawn_background(runtime, self.tracker.as_ref(), fut);
    }

    /// Every task that has not finished, oldest first.
    pub(super) fn tasks(&self) -> Vec<Arc<dyn ChildRef>> {
        self.registry.running()
    }

    /// Makes every task drop its future at its next poll, and wakes them.
    pub(super) fn force(&self) -> Vec<Arc<dyn ChildRef>> {
        self.forced.store(true, Ordering::Release);
        let stragglers = self.tasks();
        for child in &stragglers {
            child.wake();
        }
        stragglers
    }
}

fn store_panic(state: &mut Reports, panic: Box<dyn Any + Send>, task: Option<TaskId>) {
    if state.panic.is_none() {
        state.panic = Some(panic);
    } else {
        tracing::error!(
            task.id = task.map(TaskId::as_u64),
            "a second panic in a task group was dropped; the first is re-raised"
        );
    }
}

// What the scope tree knows of a group.
impl GroupScope for GroupCore {
    fn tracker(&self) -> Option<&TaskTracker> {
        self.tracker.as_ref()
    }

    fn name(&self) -> Option<&Arc<str>> {
        self.name.as_ref()
    }

    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// The group behind the scope tree's view of it.
pub(crate) fn group_core(group: Arc<dyn GroupScope>) -> Arc<GroupCore> {
    group
        .into_any()
        .downcast()
        .unwrap_or_else(|_| unreachable!("every group node is owned by a GroupCore"))
}

impl Notify for GroupCore {
    /// The group is cancelled: wake every task so it sees it, then the scope.
    ///
    /// The wakers are taken out under the registry's lock and woken after it is released.
    /// Waking them under the lock would be a deadlock risk: a waker may run code inline,
    /// and that code may come back to the registry (which takes the lock again, on the same
    /// thread). A task of a [`TaskGroup`](crate::TaskGroup) registers a Tokio task's waker,
    /// which only schedules the task, but a local group's task registers the waker of the
    /// `FuturesUnordered` its scope polls it in, and waking that wakes whatever task polls
    /// the scope: any executor's waker, which may poll the scope on the spot, and the
    /// scope's poll sweeps finished tasks out of the registry. Taking a waker is what
    /// `ChildRef::wake` does first anyway, so a task that registers a new waker in between
    /// is being polled, and sees the cancellation then.
    fn notify(&self) {
        let mut wakers = Vec::with_capacity(self.len());
        self.registry.take_wakers(&mut wakers);
        wakers.into_iter().for_each(Waker::wake);
        self.waker.wake();
    }
}

/// Loom models of a group's count of live tasks and of its graveyard.
///
/// The count: a spawn enters it with one `fetch_add` and backs out if the group has finished
/// (`check_open`), a finishing task leaves it (`child_done`), and the group's wait closes it
/// with one compare-and-swap to [`FINISHED`] once it is zero (`poll_finish`). The graveyard:
/// a finishing task leaves its registry key there (`bury`), the spawning side sweeps it
/// (`release_finished`), a task that finds it full sweeps it itself, and `finalize` takes it
/// for good.
///
/// The group is a local one, which needs no runtime; its tasks are admitted as a
/// [`TaskGroup`](crate::TaskGroup)'s are, and end through the same report (`child::end`),
/// without a Tokio task around them.
#[cfg(all(test, aio_loom))]
mod models {
    use std::future::poll_fn;
    use std::sync::Arc;
    use std::sync::atomic::Ordering::{Acquire, Relaxed};

    use loom::sync::atomic::AtomicUsize;
    use loom::thread;

    use super::super::cell::ChildCell;
    use super::super::child;
    use super::super::outcome::Outcome;
    use super::{FINISHED, GroupConfig, GroupCore};
    use crate::SpawnError;
    use crate::model::harness::block_on;

    fn group() -> Arc<GroupCore> {
        GroupCore::new(GroupConfig::default(), None, true)
    }

    /// The scope's wait for the group's tasks, to the end.
    fn wait_for_tasks(core: &GroupCore) {
        block_on(poll_fn(|cx| core.poll_finish(cx)));
    }

    #[test]
    fn a_spawn_racing_the_groups_finish_is_refused_or_waited_for() {
        loom::model(|| {
            let core = group();
            // What the task did, for the group to see once it has finished.
            let work = Arc::new(AtomicUsize::new(0));
            let spawner = thread::spawn({
                let (core, work) = (Arc::clone(&core), Arc::clone(&work));
                move || match core.admit::<()>(None, false) {
                    Ok(cell) => {
                        let live = core.live.load(Acquire);
                        assert_eq!(live & FINISHED, 0, "a counted task's group finished");
                        work.store(1, Relaxed);
                        child::end(&cell, Outcome::Ok(()));
                        Some(cell)
                    }
                    Err(SpawnError::Finished) => None,
                    Err(error) => panic!("{error}"),
                }
            });
            wait_for_tasks(&core);
            let seen = work.load(Relaxed);
            let spawned = spawner.join().unwrap();
            // A counted task was waited for, and all it did is seen; a refused one left
            // nothing behind.
            assert_eq!(seen, usize::from(spawned.is_some()));
            assert_eq!(core.live.load(Relaxed), FINISHED);
            core.finalize();
            if let Some(cell) = spawned {
                assert_eq!(
                    Arc::strong_count(&cell),
                    1,
                    "the task stayed in the registry"
                );
            }
        });
    }

    #[test]
    fn the_last_task_to_finish_wakes_the_groups_wait() {
        loom::model(|| {
            let core = group();
            let work = Arc::new(AtomicUsize::new(0));
            let tasks: Vec<_> = (0..2)
                .map(|_| {
                    let cell = core.admit::<()>(None, false).unwrap();
                    let work = Arc::clone(&work);
                    thread::spawn(move || {
                        work.fetch_add(1, Relaxed);
                        child::end(&cell, Outcome::Ok(()));
                    })
                })
                .collect();
            wait_for_tasks(&core);
            assert_eq!(work.load(Relaxed), 2, "the group finished before its tasks");
            for task in tasks {
                task.join().unwrap();
            }
            assert_eq!(core.live.load(Relaxed), FINISHED);
            core.finalize();
        });
    }

    /// Ends a task of the group on a thread of its own.
    fn end_on_a_thread(cell: &Arc<ChildCell<()>>) -> thread::JoinHandle<()> {
        let cell = Arc::clone(cell);
        thread::spawn(move || child::end(&cell, Outcome::Ok(())))
    }

    /// Whether the registry holds the task: its cell's one other reference.
    fn registered(cell: &Arc<ChildCell<()>>) -> bool {
        Arc::strong_count(cell) == 2
    }

    #[test]
    fn every_finished_task_leaves_the_registry_once_whoever_sweeps_it() {
        loom::model(|| {
            let core = group();
            let finished: Vec<_> = (0..2)
                .map(|_| core.admit::<()>(None, false).unwrap())
                .collect();
            // Two tasks finish: the second to bury its key finds the graveyard full and
            // sweeps it, unless the spawning side got there first.
            let ending: Vec<_> = finished.iter().map(end_on_a_thread).collect();
            // Meanwhile the spawning side sweeps, spawns a task (which may get a key freed
            // by a sweep), and sweeps again: a key removed twice would take that task out.
            core.release_finished();
            let running = core.admit::<()>(None, false).unwrap();
            core.release_finished();
            for thread in ending {
                thread.join().unwrap();
            }
            assert!(registered(&running), "a running task left the registry");
            child::end(&running, Outcome::Ok(()));
            wait_for_tasks(&core);
            core.finalize();
            for cell in finished.iter().chain([&running]) {
                assert!(!registered(cell), "a finished task stayed in the registry");
            }
        });
    }

    #[test]
    fn a_task_finishing_while_its_group_is_finalized_leaves_the_registry() {
        loom::model(|| {
            let core = group();
            let tasks: Vec<_> = (0..2)
                .map(|_| core.admit::<()>(None, false).unwrap())
                .collect();
            // The runtime shuts down while a dropped group's tasks wind down: the reaper's
            // guard finalizes the group, and the tasks are dropped where they stand, one here
            // and one on another thread.
            let ending = end_on_a_thread(&tasks[1]);
            child::end(&tasks[0], Outcome::Ok(()));
            core.finalize();
            ending.join().unwrap();
            for cell in &tasks {
                assert!(!registered(cell), "a finished task stayed in the registry");
            }
        });
    }
}
