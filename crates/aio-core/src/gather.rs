//! [`gather`] and [`gather_settled`]: run futures as tasks and collect every result.

use std::future::Future;
use std::panic::Location;

use crate::scope;
use crate::{
    CancelError, CancelReason, Cancelled, SpawnError, TaskGroup, TaskGroupError, TaskHandle,
};

/// Runs every future as a task of a new group and returns their values in the order the
/// futures were given: `await asyncio.gather(*aws)`, with structure.
///
/// Unlike asyncio's `gather`, which returns the first exception and leaves the other tasks
/// running, the first failure cancels the rest; `gather` waits for them and returns a
/// [`TaskGroupError`] with every failure, each with the
/// [position](crate::TaskFailure::index) of its future. Use [`gather_settled`] to keep going after
/// failures. The tasks run in parallel on a multi-thread runtime, inside the caller's scope:
/// if the caller is cancelled, so are they.
///
/// A task that ends cancelled (it passed a cancellation up, say from a group of its own
/// that was cancelled) ends the gather as asyncio's does, without waiting for the others to
/// finish their work: they are cancelled with [`CancelReason::SiblingCancelled`], awaited,
/// and `gather` returns that task's cancellation.
///
/// # Errors
///
/// Every failure, as for [`TaskGroup::scope`]; a cancellation if the caller's scope is
/// cancelled, or if a task ends cancelled (asyncio's `gather` raises its `CancelledError`).
///
/// # Panics
///
/// Re-raises a task's panic after the other tasks have finished.
///
/// # Cancel safety
///
/// Cancelling the caller's scope unwinds the tasks, cleanup included. Dropping the future
/// reaps them in the background, like a dropped [`TaskGroup`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_core::BoxError;
///
/// async fn square(x: u64) -> Result<u64, BoxError> {
///     Ok(x * x)
/// }
///
/// let squares = aio_core::gather((1..=4).map(square)).await.unwrap();
/// assert_eq!(squares, [1, 4, 9, 16]);
/// # }
/// ```
#[track_caller]
pub fn gather<I, F, T, E>(futures: I) -> impl Future<Output = Result<Vec<T>, TaskGroupError<E>>>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: CancelError + Send + 'static,
{
    gather_at(futures, Location::caller())
}

async fn gather_at<I, F, T, E>(
    futures: I,
    at: &'static Location<'static>,
) -> Result<Vec<T>, TaskGroupError<E>>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: CancelError + Send + 'static,
{
    let mut handles = Vec::new();
    let spawned = &mut handles;
    let mut group = None;
    let kept = &mut group;
    let scoped = TaskGroup::<E>::builder()
        .site("gather", at)
        .cancelled_task_ends_group()
        .scope(|tg| {
            *kept = Some(tg.clone());
            async move {
                for fut in futures {
                    spawned.push(tg.spawn(fut).map_err(refused::<E>)?);
                }
                Ok(())
            }
        })
        .await;
    if let Err(mut error) = scoped {
        // Tell the caller which of its futures failed. Ids grow in spawn order.
        error.index_failures(|id| handles.binary_search_by_key(&id, TaskHandle::id).ok());
        return Err(error);
    }
    // The group did not fail, so a task without a value ended cancelled, and the first one
    // to do so cancelled the others: report its cancellation.
    let first = group.and_then(|group| group.core.node().direct_cancellation());
    let first = match first.as_ref().map(Cancelled::reason) {
        Some(CancelReason::SiblingCancelled { task, .. }) => Some(*task),
        _ => None,
    };
    let mut values = Vec::with_capacity(handles.len());
    let mut cancelled = None;
    for handle in handles {
        let id = handle.id();
        match handle.result() {
            Ok(value) => values.push(value),
            Err(e) if cancelled.is_none() || Some(id) == first => {
                cancelled = Some(task_cancellation(e.as_cancelled()));
            }
            Err(_) => {}
        }
    }
    match cancelled {
        None => Ok(values),
        Some(cancelled) => {
            scope::set_delivered(true);
            Err(TaskGroupError::from_cancelled(cancelled))
        }
    }
}

/// Runs every future as a task of a new group and returns every outcome, value or error, in
/// the order the futures were given: `asyncio.gather(*aws, return_exceptions=True)`.
///
/// A failure does not cancel the other tasks.
///
/// # Errors
///
/// [`Cancelled`] if the caller's scope is cancelled: as in asyncio, `return_exceptions`
/// does not swallow the caller's own cancellation.
///
/// # Panics
///
/// Re-raises a task's panic after the other tasks have finished.
///
/// # Cancel safety
///
/// As for [`gather`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let outcomes = aio_core::gather_settled([
///     Box::pin(async { Ok(1) }) as std::pin::Pin<Box<dyn std::future::Future<Output = Result<i32, &str>> + Send>>,
///     Box::pin(async { Err("bad") }),
///     Box::pin(async { Ok(3) }),
/// ])
/// .await
/// .unwrap();
/// assert_eq!(outcomes, [Ok(1), Err("bad"), Ok(3)]);
/// # }
/// ```
#[track_caller]
pub fn gather_settled<I, F, T, E>(
    futures: I,
) -> impl Future<Output = Result<Vec<Result<T, E>>, Cancelled>>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    gather_settled_at(futures, Location::caller())
}

async fn gather_settled_at<I, F, T, E>(
    futures: I,
    at: &'static Location<'static>,
) -> Result<Vec<Result<T, E>>, Cancelled>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let handles = TaskGroup::<Cancelled>::builder()
        .site("gather_settled", at)
        .scope(|tg| async move {
            futures
                .into_iter()
                .map(|fut| tg.spawn(async move { Ok(fut.await) }).map_err(refused))
                .collect::<Result<Vec<_>, Cancelled>>()
        })
        .await
        .map_err(settled_error)?;
    // Every task returned `Ok`: only a cancellation of the whole group leaves one without.
    handles
        .into_iter()
        .map(|handle| {
            handle
                .result()
                .map_err(|e| task_cancellation(e.as_cancelled()))
        })
        .collect()
}

/// A spawn into a group that was just opened fails only if the scope around it is
/// cancelled.
pub(crate) fn refused<E: From<Cancelled>>(e: SpawnError) -> E {
    E::from(task_cancellation(e.as_cancelled()))
}

fn task_cancellation(cancelled: Option<&Cancelled>) -> Cancelled {
    cancelled
        .cloned()
        .unwrap_or_else(|| Cancelled::new(CancelReason::ParentCancelled))
}

/// A group whose tasks cannot fail ends in error only when cancelled.
pub(crate) fn settled_error(e: TaskGroupError<Cancelled>) -> Cancelled {
    task_cancellation(e.as_cancelled())
}
