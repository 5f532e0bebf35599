//! [`race`] and [`race_ok`]: the first to finish wins, the losers are cancelled and awaited.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::panic::Location;
use std::sync::{Arc, Mutex};

use crate::gather::{refused, settled_error};
use crate::util::lock;
use crate::{Cancelled, TaskFailure, TaskGroup, TaskGroupError, TaskId};

/// Why [`race`] or [`race_ok`] has no winner.
#[derive(Debug)]
#[non_exhaustive]
pub enum RaceError<E = Infallible> {
    /// There was nothing to race.
    Empty,
    /// The scope around the race was cancelled before a winner finished.
    Cancelled(Cancelled),
    /// Every future failed ([`race_ok`]): every failure, in the order they happened, each
    /// with the [position](TaskFailure::index) of its future.
    AllFailed(TaskGroupError<E>),
}

impl<E: fmt::Display> fmt::Display for RaceError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RaceError::Empty => f.write_str("nothing to race: no futures were given"),
            RaceError::Cancelled(cancelled) => write!(f, "the race was {cancelled}"),
            RaceError::AllFailed(failures) => match failures.iter().as_slice() {
                [first, _, ..] => write!(
                    f,
                    "every future of the race failed ({} failures); first: {first}",
                    failures.len()
                ),
                [only] => write!(f, "every future of the race failed: {only}"),
                [] => f.write_str("every future of the race failed"),
            },
        }
    }
}

// `source()` is the `Cancelled` the error carries, if any.
crate::cancelled::carrier_error!(RaceError);

impl<E> RaceError<E> {
    /// The cancellation, for [`RaceError::Cancelled`].
    pub fn as_cancelled(&self) -> Option<&Cancelled> {
        match self {
            RaceError::Cancelled(c) => Some(c),
            _ => None,
        }
    }
}

impl<E> From<Cancelled> for RaceError<E> {
    fn from(c: Cancelled) -> Self {
        RaceError::Cancelled(c)
    }
}

/// Runs every future as a task and returns the output of the first to finish, whatever it
/// is; the others are cancelled, and awaited (their cleanup runs) before `race` returns.
/// `asyncio.wait(aws, return_when=FIRST_COMPLETED)` followed by cancelling the rest, in one
/// structured call. For fallible futures the output is their `Result`: the first to finish
/// wins even if it failed. [`race_ok`] waits for the first success instead.
///
/// # Errors
///
/// [`RaceError::Empty`] with no futures; [`RaceError::Cancelled`] if the caller's scope is
/// cancelled before any future finished.
///
/// # Panics
///
/// Re-raises a task's panic after the other tasks have finished.
///
/// # Cancel safety
///
/// As for [`gather`](crate::gather).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use tokio::time::sleep;
///
/// let mirrors = [("eu", 30), ("us", 10), ("ap", 20)].map(|(name, ms)| async move {
///     sleep(Duration::from_millis(ms)).await;
///     name
/// });
/// assert_eq!(aio_core::race(mirrors).await.unwrap(), "us");
/// # }
/// ```
#[track_caller]
pub fn race<I, F>(futures: I) -> impl Future<Output = Result<F::Output, RaceError>>
where
    I: IntoIterator<Item = F>,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    race_at(futures, Location::caller())
}

async fn race_at<I, F>(futures: I, at: &'static Location<'static>) -> Result<F::Output, RaceError>
where
    I: IntoIterator<Item = F>,
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let winner = Arc::new(Mutex::new(None));
    let w = Arc::clone(&winner);
    let raced = TaskGroup::<Cancelled>::builder()
        .site("race", at)
        .scope(|tg| async move {
            let mut any = false;
            for fut in futures {
                any = true;
                let (w, group) = (Arc::clone(&w), tg.clone());
                tg.spawn(async move {
                    let output = fut.await;
                    claim(&w, output, &group);
                    Ok(())
                })
                .map_err(refused::<Cancelled>)?;
            }
            Ok(any)
        })
        .await;
    if let Some(output) = lock(&winner).take() {
        return Ok(output);
    }
    match raced {
        Ok(false) => Err(RaceError::Empty),
        Ok(true) => unreachable!("a race whose tasks all finished has a winner"),
        Err(e) => Err(RaceError::Cancelled(settled_error(e))),
    }
}

/// Runs every future as a task and returns the value of the first to *succeed*; the others
/// are cancelled and awaited. Failures before that do not stop the race. Trio users know it
/// as a happy-eyeballs race; futures-concurrency calls it `race_ok`.
///
/// # Errors
///
/// [`RaceError::AllFailed`] with every failure when no future succeeded;
/// [`RaceError::Empty`] with no futures; [`RaceError::Cancelled`] if the caller's scope is
/// cancelled before a future succeeded.
///
/// # Panics
///
/// Re-raises a task's panic after the other tasks have finished.
///
/// # Cancel safety
///
/// As for [`gather`](crate::gather).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use tokio::time::sleep;
///
/// let attempts = [(10, Err("refused")), (20, Ok("connected")), (30, Ok("too late"))]
///     .map(|(ms, outcome)| async move {
///         sleep(Duration::from_millis(ms)).await;
///         outcome
///     });
/// assert_eq!(aio_core::race_ok(attempts).await.unwrap(), "connected");
/// # }
/// ```
#[track_caller]
pub fn race_ok<I, F, T, E>(futures: I) -> impl Future<Output = Result<T, RaceError<E>>>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    race_ok_at(futures, Location::caller())
}

async fn race_ok_at<I, F, T, E>(
    futures: I,
    at: &'static Location<'static>,
) -> Result<T, RaceError<E>>
where
    I: IntoIterator<Item = F>,
    F: Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
{
    let winner = Arc::new(Mutex::new(None));
    let failures: Arc<Mutex<Vec<(usize, E)>>> = Arc::new(Mutex::new(Vec::new()));
    let (w, f) = (Arc::clone(&winner), Arc::clone(&failures));
    let raced = TaskGroup::<Cancelled>::builder()
        .site("race_ok", at)
        .scope(|tg| async move {
            let mut ids = Vec::new();
            for (i, fut) in futures.into_iter().enumerate() {
                let (w, f, group) = (Arc::clone(&w), Arc::clone(&f), tg.clone());
                let handle = tg
                    .spawn(async move {
                        match fut.await {
                            Ok(value) => claim(&w, value, &group),
                            Err(error) => lock(&f).push((i, error)),
                        }
                        Ok(())
                    })
                    .map_err(refused::<Cancelled>)?;
                ids.push(handle.id());
            }
            Ok(ids)
        })
        .await;
    if let Some(value) = lock(&winner).take() {
        return Ok(value);
    }
    let ids: Vec<TaskId> = match raced {
        Ok(ids) => ids,
        Err(e) => return Err(RaceError::Cancelled(settled_error(e))),
    };
    if ids.is_empty() {
        return Err(RaceError::Empty);
    }
    let failures = std::mem::take(&mut *lock(&failures))
        .into_iter()
        .map(|(i, error)| TaskFailure::new(Some(ids[i]), None, error).with_index(i))
        .collect();
    Err(RaceError::AllFailed(TaskGroupError::failed(failures)))
}

/// The first output to arrive wins, and cancels the rest of the race.
fn claim<T>(winner: &Mutex<Option<T>>, output: T, group: &TaskGroup<Cancelled>) {
    let mut slot = lock(winner);
    if slot.is_none() {
        *slot = Some(output);
        drop(slot);
        group.cancel();
    }
}

impl<E: fmt::Debug> RaceError<E> {
    /// The failures, for [`RaceError::AllFailed`].
    pub fn failures(&self) -> Option<&TaskGroupError<E>> {
        match self {
            RaceError::AllFailed(failures) => Some(failures),
            _ => None,
        }
    }
}
