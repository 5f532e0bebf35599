//! The gather family inside the calling task: [`gather`], [`gather_settled`], [`race`] and
//! [`race_ok`] run their futures concurrently *in the task that awaits them*, as
//! `tokio::try_join!` and `tokio::select!` do, under aio's cancellation rules.
//!
//! Plain [`aio::gather`](crate::gather) and friends spawn every future as a task of a
//! group: the futures run in parallel, have names, can be cancelled one by one and show up in
//! [`task_tree`](crate::task_tree), and so they must be `Send + 'static`. The forms here
//! spawn nothing: the futures may borrow (the request, a `&mut` buffer, a database
//! connection), need not be `Send`, may have different output types (give a tuple), and cost
//! what a `select!` costs. They run concurrently, not in parallel: asyncio's `gather` in a
//! single-threaded event loop.
//!
//! * Give a **tuple** of 1 to 12 futures for outputs of mixed types, or a **`Vec`** of futures
//!   of one type (`iter.collect::<Vec<_>>()`).
//! * A tuple polls its futures in the order given, so of several ready at the same poll the
//!   first given wins a race; a `Vec` polls only those that were woken, in the order they
//!   were woken, and the first it sees finish wins.
//! * The first failure (of [`gather`]) or the winner (of a race) drops every other future at
//!   once, before the combinator returns, as `select!` does: their destructors run, and an
//!   [`on_cancel`](crate::on_cancel) among them is dropped, not cancelled, so its cleanup does
//!   not run. Put cleanup that must run in `Drop`, or use the spawning forms, which cancel
//!   and await their losers.
//! * A cancellation of the scope around the caller reaches every future: they are part of
//!   the caller's task, so they see `is_cancelled()`, stop at `checkpoint()`, and are dropped
//!   with it at its next suspension. While the scope is cancelled and something in it is
//!   unwinding (an `on_cancel` cleanup, a shield), a combinator drops nothing: a failure or a
//!   winner is held until nothing unwinds any more, so that every cleanup runs to its end, as
//!   in a task group. (So do not make such a cleanup, or a shield, wait for the output of a
//!   combinator in the same cancelled scope: it would wait for itself.)
//! * Dropping the combinator drops every future synchronously, and nothing is logged; a task
//!   group inside one of the futures is reaped like any dropped group.
//!
//! Pick the spawning form for CPU work that should use several cores, for children that
//! must outlive an `.await` point's drop (they are reaped, their cleanup awaited), or when
//! you want each child visible and cancellable as a task.
//!
//! # Examples
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), aio_core::BoxError> {
//! use aio_core::{BoxError, in_task};
//!
//! struct Db;
//! impl Db {
//!     async fn user(&self, id: u32) -> Result<String, BoxError> { Ok(format!("user {id}")) }
//!     async fn posts(&self, id: u32) -> Result<usize, BoxError> { Ok(id as usize * 2) }
//! }
//!
//! let db = Db; // borrowed by both futures: nothing is 'static
//! let (user, posts) = in_task::gather((db.user(7), db.posts(7))).await?;
//! assert_eq!((user.as_str(), posts), ("user 7", 14));
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::{MaybeDone, maybe_done};
use futures::stream::{FuturesUnordered, StreamExt};
use pin_project_lite::pin_project;

/// Runs the futures concurrently in the calling task and returns every value, in the order
/// given: `try_join!` with aio's rule that the first failure drops the rest at once.
///
/// A tuple of futures of `Result<Ti, E>` gives `Result<(T1, T2, ..), E>`; a `Vec` of futures
/// of `Result<T, E>` gives `Result<Vec<T>, E>`. See the [module docs](self) for how it
/// differs from the spawning [`aio::gather`](crate::gather).
///
/// # Errors
///
/// The first error returned by a future; the others are dropped before it is returned.
///
/// # Cancel safety
///
/// Dropping the future drops every future it runs; none keeps running.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_core::in_task;
///
/// let ok = in_task::gather((async { Ok::<_, String>(1) }, async { Ok("two") })).await;
/// assert_eq!(ok, Ok((1, "two")));
///
/// let pages = (1..=3).map(|n| async move { if n < 3 { Ok(n) } else { Err(n) } });
/// assert_eq!(in_task::gather(pages.collect::<Vec<_>>()).await, Err(3));
/// # }
/// ```
pub fn gather<B: IntoBranches>(futures: B) -> Gather<B::Branches>
where
    B::Branches: PollGather,
{
    Gather::new(futures.into_branches())
}

/// Runs the futures concurrently in the calling task and returns every output, in the order
/// given, whatever each is: `tokio::join!`, the in-task [`aio::gather_settled`](crate::gather_settled).
///
/// A tuple gives a tuple of outputs, a `Vec` a `Vec`.
///
/// # Cancel safety
///
/// Dropping the future drops every future it runs; none keeps running.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_core::in_task;
///
/// let (a, b) = in_task::gather_settled((async { 1 }, async { Err::<(), _>("no") })).await;
/// assert_eq!((a, b), (1, Err("no")));
/// # }
/// ```
pub fn gather_settled<B: IntoBranches>(futures: B) -> GatherSettled<B::Branches>
where
    B::Branches: PollGatherSettled,
{
    GatherSettled::new(futures.into_branches())
}

/// Runs the futures concurrently in the calling task and returns the output of the first to
/// finish, whatever it is; the others are dropped at once: `tokio::select!` over futures of
/// one output type, the in-task [`aio::race`](crate::race).
///
/// A tuple gives the winner's output; a `Vec` gives `Some(output)`, or `None` if it was
/// empty. Of several futures of a tuple ready at the same poll, the first given wins; a
/// `Vec` takes them in the order they were woken.
///
/// # Cancel safety
///
/// Dropping the future drops every future it runs; none keeps running.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// use std::time::Duration;
/// use aio_core::in_task;
/// use tokio::time::sleep;
///
/// let slow = async { sleep(Duration::from_secs(5)).await; "slow" };
/// let fast = async { sleep(Duration::from_secs(1)).await; "fast" };
/// assert_eq!(in_task::race((slow, fast)).await, "fast");
/// # }
/// ```
pub fn race<B: IntoBranches>(futures: B) -> Race<B::Branches>
where
    B::Branches: PollRace,
{
    Race::new(futures.into_branches())
}

/// Runs the futures concurrently in the calling task and returns the value of the first to
/// succeed; the others are dropped at once. The in-task [`aio::race_ok`](crate::race_ok).
///
/// # Errors
///
/// If every future fails, every error, in the order the futures were given (an empty `Vec`
/// for an empty `Vec` of futures).
///
/// # Cancel safety
///
/// Dropping the future drops every future it runs; none keeps running.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_core::in_task;
///
/// let mirror = |n: u32| async move { if n == 2 { Ok(n) } else { Err(format!("mirror {n} down")) } };
/// assert_eq!(in_task::race_ok(vec![mirror(1), mirror(2), mirror(3)]).await, Ok(2));
/// let down = in_task::race_ok((mirror(1), mirror(3))).await.unwrap_err();
/// assert_eq!(down, ["mirror 1 down", "mirror 3 down"]);
/// # }
/// ```
pub fn race_ok<B: IntoBranches>(futures: B) -> RaceOk<B::Branches>
where
    B::Branches: PollRaceOk,
{
    RaceOk::new(futures.into_branches())
}

mod sealed {
    /// Only aio implements the traits of this module, so that they can grow.
    pub trait Sealed {}
}

/// Futures the in-task combinators accept: tuples of 1 to 12 futures, and `Vec`s of futures.
pub trait IntoBranches: sealed::Sealed {
    /// The futures, ready to be polled side by side.
    type Branches;

    /// Prepares the futures.
    fn into_branches(self) -> Self::Branches;
}

/// How [`gather`] polls a set of branches; implemented for the branches of tuples and
/// `Vec`s whose futures return `Result`s with one error type.
pub trait PollGather: sealed::Sealed {
    /// `Result<(T1, T2, ..), E>` or `Result<Vec<T>, E>`.
    type Output;

    /// Polls every unfinished branch.
    fn poll_gather(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output>;
}

/// How [`gather_settled`] polls a set of branches.
pub trait PollGatherSettled: sealed::Sealed {
    /// `(O1, O2, ..)` or `Vec<O>`.
    type Output;

    /// Polls every unfinished branch.
    fn poll_gather_settled(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output>;
}

/// How [`race`] polls a set of branches; implemented when every future has one output type.
pub trait PollRace: sealed::Sealed {
    /// The winner's output; `Option` of it for a `Vec`.
    type Output;

    /// Polls the branches until one is ready.
    fn poll_race(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output>;
}

/// How [`race_ok`] polls a set of branches; implemented when every future returns
/// `Result<T, E>` with one `T` and one `E`.
pub trait PollRaceOk: sealed::Sealed {
    /// `Result<T, Vec<E>>`.
    type Output;

    /// Polls the unfinished branches until one succeeds or all have failed.
    fn poll_race_ok(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output>;
}

macro_rules! combinator {
    ($(#[$doc:meta])* $name:ident, $poll_trait:ident, $poll:ident) => {
        pin_project! {
            $(#[$doc])*
            #[must_use = "futures do nothing unless you `.await` or poll them"]
            pub struct $name<B> {
                #[pin]
                branches: B,
                done: bool,
            }
        }

        impl<B> $name<B> {
            fn new(branches: B) -> Self {
                $name {
                    branches,
                    done: false,
                }
            }
        }

        impl<B> fmt::Debug for $name<B> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).field("done", &self.done).finish()
            }
        }

        impl<B: $poll_trait> Future for $name<B> {
            type Output = B::Output;

            #[inline]
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<B::Output> {
                let this = self.project();
                assert!(!*this.done, concat!(stringify!($name), " polled after it completed"));
                let polled = this.branches.$poll(cx);
                *this.done = polled.is_ready();
                polled
            }
        }
    };
}

combinator!(
    /// Future returned by [`gather`].
    Gather, PollGather, poll_gather
);
combinator!(
    /// Future returned by [`gather_settled`].
    GatherSettled, PollGatherSettled, poll_gather_settled
);
combinator!(
    /// Future returned by [`race`].
    Race, PollRace, poll_race
);
combinator!(
    /// Future returned by [`race_ok`].
    RaceOk, PollRaceOk, poll_race_ok
);

/// Takes the output of a branch known to be done.
fn output<F: Future>(branch: Pin<&mut MaybeDone<F>>) -> F::Output {
    branch
        .take_output()
        .expect("a finished branch holds its output")
}

/// Polls a running branch; `true` once it is done.
fn poll_branch<F: Future>(branch: Pin<&mut MaybeDone<F>>, cx: &mut Context<'_>) -> bool {
    branch.poll(cx).is_ready()
}

/// Whether a finished branch returned an error.
fn failed<F: Future<Output = Result<T, E>>, T, E>(branch: Pin<&mut MaybeDone<F>>) -> bool {
    matches!(branch.output_mut(), Some(Err(_)))
}

/// The value of a finished branch that succeeded.
fn value<F: Future<Output = Result<T, E>>, T, E>(branch: Pin<&mut MaybeDone<F>>) -> T {
    match output(branch) {
        Ok(value) => value,
        Err(_) => unreachable!("the branch succeeded"),
    }
}

/// The error of a finished branch that failed.
fn error<F: Future<Output = Result<T, E>>, T, E>(branch: Pin<&mut MaybeDone<F>>) -> E {
    match output(branch) {
        Err(error) => error,
        Ok(_) => unreachable!("the branch failed"),
    }
}

/// The first success of futures that have all ended, else every error, in order.
fn first_success<T, E>(outputs: impl IntoIterator<Item = Result<T, E>>) -> Result<T, Vec<E>> {
    let mut errors = Vec::new();
    for output in outputs {
        match output {
            Ok(value) => return Ok(value),
            Err(error) => errors.push(error),
        }
    }
    Err(errors)
}

/// Whether the caller's scope is cancelled while something in it is unwinding (an
/// `on_cancel` or a shield is alive, perhaps in one of our futures). Then no future is
/// dropped: a decision (a failure, a winner) is held until nothing unwinds any more, so that
/// every cleanup runs to its end; once nothing does, the scope drops whatever is left, or
/// the decision is returned. Asked only when a future has ended.
fn unwinding() -> bool {
    crate::scope::is_unwinding()
}

macro_rules! tuple {
    ($Branches:ident { $($F:ident $T:ident $f:ident),+ }) => {
        pin_project! {
            /// The futures of a tuple, polled side by side.
            #[doc(hidden)]
            pub struct $Branches<$($F: Future),+> {
                $(#[pin] $f: MaybeDone<$F>,)+
            }
        }

        impl<$($F: Future),+> fmt::Debug for $Branches<$($F),+> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(stringify!($Branches))
            }
        }

        impl<$($F: Future),+> $Branches<$($F),+> {
            /// Drops every future and output at once.
            fn drop_all(self: Pin<&mut Self>) {
                let mut this = self.project();
                $(this.$f.set(MaybeDone::Gone);)+
            }
        }

        impl<$($F: Future),+> sealed::Sealed for ($($F,)+) {}
        impl<$($F: Future),+> sealed::Sealed for $Branches<$($F),+> {}

        impl<$($F: Future),+> IntoBranches for ($($F,)+) {
            type Branches = $Branches<$($F),+>;

            fn into_branches(self) -> Self::Branches {
                let ($($f,)+) = self;
                $Branches { $($f: maybe_done($f),)+ }
            }
        }

        impl<$($F: Future),+> PollGatherSettled for $Branches<$($F),+> {
            type Output = ($($F::Output,)+);

            fn poll_gather_settled(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
            ) -> Poll<Self::Output> {
                let mut this = self.project();
                let mut all_done = true;
                $(all_done &= poll_branch(this.$f.as_mut(), cx);)+
                if !all_done {
                    return Poll::Pending;
                }
                Poll::Ready(($(output(this.$f.as_mut()),)+))
            }
        }

        impl<E, $($T, $F: Future<Output = Result<$T, E>>),+> PollGather for $Branches<$($F),+> {
            type Output = Result<($($T,)+), E>;

            fn poll_gather(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                let mut this = self.as_mut().project();
                let mut all_done = true;
                let mut held = false;
                $(
                    if poll_branch(this.$f.as_mut(), cx) {
                        if failed(this.$f.as_mut()) {
                            if !unwinding() {
                                let error = error(this.$f.as_mut());
                                self.drop_all();
                                return Poll::Ready(Err(error));
                            }
                            held = true;
                        }
                    } else {
                        all_done = false;
                    }
                )+
                if !all_done && !(held && !unwinding()) {
                    return Poll::Pending;
                }
                // Every future has ended, or a failure was held and nothing unwinds any
                // more: the first error in the order given, else every value.
                $(
                    if failed(this.$f.as_mut()) {
                        let error = error(this.$f.as_mut());
                        self.drop_all();
                        return Poll::Ready(Err(error));
                    }
                )+
                Poll::Ready(Ok(($(value(this.$f.as_mut()),)+)))
            }
        }

        impl<O, $($F: Future<Output = O>),+> PollRace for $Branches<$($F),+> {
            type Output = O;

            fn poll_race(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<O> {
                let mut this = self.as_mut().project();
                let mut all_done = true;
                let mut held = false;
                $(
                    if poll_branch(this.$f.as_mut(), cx) {
                        if !unwinding() {
                            let winner = output(this.$f.as_mut());
                            self.drop_all();
                            return Poll::Ready(winner);
                        }
                        held = true;
                    } else {
                        all_done = false;
                    }
                )+
                if !all_done && !(held && !unwinding()) {
                    return Poll::Pending;
                }
                // A winner was held: the first given of those that ended wins.
                let mut outputs = [$(this.$f.as_mut().take_output(),)+].into_iter().flatten();
                let winner = outputs.next().expect("a future has ended");
                drop(outputs);
                self.drop_all();
                Poll::Ready(winner)
            }
        }

        impl<T, E, $($F: Future<Output = Result<T, E>>),+> PollRaceOk for $Branches<$($F),+> {
            type Output = Result<T, Vec<E>>;

            fn poll_race_ok(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                let mut this = self.as_mut().project();
                let mut all_done = true;
                let mut held = false;
                $(
                    if poll_branch(this.$f.as_mut(), cx) {
                        if !failed(this.$f.as_mut()) {
                            if !unwinding() {
                                let winner = value(this.$f.as_mut());
                                self.drop_all();
                                return Poll::Ready(Ok(winner));
                            }
                            held = true;
                        }
                    } else {
                        all_done = false;
                    }
                )+
                if !all_done && !(held && !unwinding()) {
                    return Poll::Pending;
                }
                // A success was held, or every future has ended: the first success in the
                // order given, else every error.
                let outputs = [$(this.$f.as_mut().take_output(),)+];
                self.drop_all();
                Poll::Ready(first_success(outputs.into_iter().flatten()))
            }
        }
    };
}

tuple!(Branches1 { A TA a });
tuple!(Branches2 { A TA a, B TB b });
tuple!(Branches3 { A TA a, B TB b, C TC c });
tuple!(Branches4 { A TA a, B TB b, C TC c, D TD d });
tuple!(Branches5 { A TA a, B TB b, C TC c, D TD d, E5 TE e });
tuple!(Branches6 { A TA a, B TB b, C TC c, D TD d, E5 TE e, F TF f });
tuple!(Branches7 { A TA a, B TB b, C TC c, D TD d, E5 TE e, F TF f, G TG g });
tuple!(Branches8 { A TA a, B TB b, C TC c, D TD d, E5 TE e, F TF f, G TG g, H TH h });
tuple!(Branches9 { A TA a, B TB b, C TC c, D TD d, E5 TE e, F TF f, G TG g, H TH h, I TI i });
tuple!(Branches10 {
    A TA a, B TB b, C TC c, D TD d, E5 TE e, F TF f, G TG g, H TH h, I TI i, J TJ j
});
tuple!(Branches11 {
    A TA a, B TB b, C TC c, D TD d, E5 TE e, F TF f, G TG g, H TH h, I TI i, J TJ j, K TK k
});
tuple!(Branches12 {
    A TA a, B TB b, C TC c, D TD d, E5 TE e, F TF f, G TG g, H TH h, I TI i, J TJ j, K TK k,
    L TL l
});

pin_project! {
    /// A future that returns its position with its output.
    struct Indexed<F> {
        #[pin]
        fut: F,
        index: usize,
    }
}

impl<F: Future> Future for Indexed<F> {
    type Output = (usize, F::Output);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let index = *this.index;
        this.fut.poll(cx).map(|output| (index, output))
    }
}

/// The futures of a `Vec`: only those that were woken are polled again.
#[doc(hidden)]
pub struct VecBranches<F: Future> {
    running: FuturesUnordered<Indexed<F>>,
    outputs: Vec<Option<F::Output>>,
    /// An output that decides the combinator is kept while the scope unwinds.
    held: bool,
}

impl<F: Future> VecBranches<F> {
    /// Polls the running futures until one ends with an output that `decides`, or all have
    /// ended (`Ready(true)`). Outputs go to their place in `outputs`. A deciding output
    /// while the scope unwinds is held, and decides once nothing unwinds any more.
    fn poll_until(
        &mut self,
        cx: &mut Context<'_>,
        decides: impl Fn(&F::Output) -> bool,
    ) -> Poll<bool> {
        loop {
            if self.held && !unwinding() {
                return Poll::Ready(false);
            }
            let Some((index, output)) = std::task::ready!(self.running.poll_next_unpin(cx)) else {
                return Poll::Ready(true);
            };
            let deciding = decides(&output);
            self.outputs[index] = Some(output);
            if deciding {
                if !unwinding() {
                    return Poll::Ready(false);
                }
                self.held = true;
            }
        }
    }

    /// Takes the first output, in the order given, that `matches`.
    fn take_first(&mut self, matches: impl Fn(&F::Output) -> bool) -> Option<F::Output> {
        let index = self
            .outputs
            .iter()
            .position(|output| output.as_ref().is_some_and(&matches))?;
        self.outputs[index].take()
    }

    /// Drops every future still running, and every output not returned.
    fn drop_all(&mut self) {
        self.running.clear();
        self.outputs.clear();
    }

    /// Every output, in order, once all are in.
    fn outputs(&mut self) -> impl Iterator<Item = F::Output> + '_ {
        self.outputs
            .drain(..)
            .map(|output| output.expect("every future has finished"))
    }
}

// Sound: outputs are never pinned, and `FuturesUnordered` is `Unpin` whatever it holds.
impl<F: Future> Unpin for VecBranches<F> {}

impl<F: Future> fmt::Debug for VecBranches<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VecBranches")
            .field("running", &self.running.len())
            .field("of", &self.outputs.len())
            .finish()
    }
}

impl<F: Future> sealed::Sealed for Vec<F> {}
impl<F: Future> sealed::Sealed for VecBranches<F> {}

impl<F: Future> IntoBranches for Vec<F> {
    type Branches = VecBranches<F>;

    fn into_branches(self) -> VecBranches<F> {
        let outputs = self.iter().map(|_| None).collect();
        let running = self
            .into_iter()
            .enumerate()
            .map(|(index, fut)| Indexed { fut, index })
            .collect();
        VecBranches {
            running,
            outputs,
            held: false,
        }
    }
}

impl<F: Future> PollGatherSettled for VecBranches<F> {
    type Output = Vec<F::Output>;

    fn poll_gather_settled(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        std::task::ready!(this.poll_until(cx, |_| false));
        Poll::Ready(this.outputs().collect())
    }
}

impl<T, E, F: Future<Output = Result<T, E>>> PollGather for VecBranches<F> {
    type Output = Result<Vec<T>, E>;

    fn poll_gather(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        std::task::ready!(this.poll_until(cx, Result::is_err));
        // A failure, the first in the order given if several were held; else every value.
        if let Some(failure) = this.take_first(Result::is_err) {
            this.drop_all();
            return Poll::Ready(failure.map(|_| Vec::new()));
        }
        Poll::Ready(this.outputs().collect())
    }
}

impl<F: Future> PollRace for VecBranches<F> {
    type Output = Option<F::Output>;

    fn poll_race(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        std::task::ready!(this.poll_until(cx, |_| true));
        let winner = this.take_first(|_| true);
        this.drop_all();
        Poll::Ready(winner)
    }
}

impl<T, E, F: Future<Output = Result<T, E>>> PollRaceOk for VecBranches<F> {
    type Output = Result<T, Vec<E>>;

    fn poll_race_ok(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let all_done = std::task::ready!(this.poll_until(cx, Result::is_ok));
        let first = if all_done {
            first_success(this.outputs())
        } else {
            let winner = this.take_first(Result::is_ok).expect("a success decided");
            Ok(winner.unwrap_or_else(|_| unreachable!("a success decided")))
        };
        this.drop_all();
        Poll::Ready(first)
    }
}
