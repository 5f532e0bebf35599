//! The mutex, atomics, fence, once-cell and waker slot that the scope tree and the task
//! groups synchronise with: std's, or loom's when the crate is built with `--cfg aio_loom`, so that
//! their protocols can be model checked (the `#[cfg(all(test, aio_loom))]` models next to the
//! code they check):
//!
//! ```text
//! RUSTFLAGS="--cfg aio_loom" LOOM_MAX_PREEMPTIONS=3 \
//!     cargo test -p aio-core --release --lib
//! ```
//!
//! Only the state those protocols share is swapped: a node's flags and lock, a task's node
//! and cancel request, a group's live count, graveyard, registry and waker. The rest of the crate
//! keeps std's types under loom too (a `static` cannot hold loom's), and cannot run outside
//! a loom model there: under loom, only the models and the tests that make no node run.

#[cfg(not(aio_loom))]
pub(crate) use futures::task::AtomicWaker;
#[cfg(aio_loom)]
pub(crate) use loom::sync::Mutex;
#[cfg(aio_loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicUsize, fence};
#[cfg(not(aio_loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicUsize, fence};
#[cfg(not(aio_loom))]
pub(crate) use std::sync::{Mutex, OnceLock};

/// std's `OnceLock`, as loom sees it: loom has no once-cell of its own, and a task's node is
/// published through one (see `TaskInfo::own_node`).
///
/// Faithful to std's cell in what the protocols built on it rely on: [`get`](Self::get) is
/// an `Acquire` load of whether the cell is set, and sees the value exactly when that load
/// sees the `Release` store that set it, so loom may show a thread an unset cell until
/// something orders the store before it, as the hardware may; and
/// [`get_or_init`](Self::get_or_init) runs its initializer at most once, a caller that
/// comes second waiting for the first and then seeing its value, as std's cell does under
/// its own lock. The value itself sits in a std cell, which loom does not see: loom runs
/// one thread at a time, so that cell is set by the time the flag says so.
#[cfg(aio_loom)]
pub(crate) struct OnceLock<T> {
    /// Held while the cell is being set.
    init: Mutex<()>,
    /// Set, with `Release`, once `value` is.
    ready: AtomicBool,
    value: std::sync::OnceLock<T>,
}

#[cfg(aio_loom)]
impl<T> OnceLock<T> {
    pub(crate) fn new() -> Self {
        OnceLock {
            init: Mutex::new(()),
            ready: AtomicBool::new(false),
            value: std::sync::OnceLock::new(),
        }
    }

    pub(crate) fn get(&self) -> Option<&T> {
        if self.ready.load(std::sync::atomic::Ordering::Acquire) {
            self.value.get()
        } else {
            None
        }
    }

    pub(crate) fn get_or_init(&self, f: impl FnOnce() -> T) -> &T {
        if let Some(value) = self.get() {
            return value;
        }
        let _init = self.init.lock().unwrap_or_else(|p| p.into_inner());
        if !self.ready.load(std::sync::atomic::Ordering::Acquire) {
            let _ = self.value.set(f());
            self.ready.store(true, std::sync::atomic::Ordering::Release);
        }
        self.value.get().expect("the cell was set under its lock")
    }
}

/// futures' `AtomicWaker`, as loom sees it: a slot for one waker, behind a lock.
///
/// futures' slot is a lock in disguise: [`register`](Self::register) and
/// [`wake`](Self::wake) each hold it (taken and given back with `AcqRel`), a `wake` takes the
/// waker out and wakes it, and a `wake` that comes while a `register` holds the slot is not
/// lost (the registering side wakes the new waker itself). Loom's mutex gives the same
/// outcomes, the `wake` waiting for the `register` instead, and makes each of them a point
/// where loom may switch threads: a wake-up can fall between a wait's `register` and the
/// read of the state after it, as it can on the hardware.
#[cfg(aio_loom)]
pub(crate) struct AtomicWaker {
    waker: Mutex<Option<std::task::Waker>>,
}

#[cfg(aio_loom)]
impl AtomicWaker {
    pub(crate) fn new() -> Self {
        AtomicWaker {
            waker: Mutex::new(None),
        }
    }

    pub(crate) fn register(&self, waker: &std::task::Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(|p| p.into_inner());
        if !slot.as_ref().is_some_and(|old| old.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    pub(crate) fn wake(&self) {
        let waker = self.waker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// What the models share: a thread that waits for a waker, as a task waits for its.
#[cfg(all(test, aio_loom))]
pub(crate) mod harness {
    use std::future::Future;
    use std::pin::pin;
    use std::sync::Arc as StdArc;
    use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
    use std::task::{Context, Poll, Wake, Waker};

    use loom::sync::Notify;
    use loom::sync::atomic::AtomicBool;

    /// Wakes a thread parked on it.
    ///
    /// Its `Arc` is std's, not loom's: a waker is cloned and dropped inside the critical
    /// sections of the code under test, and a loom `Arc` there would give loom a switch
    /// point of its own that none of that code has.
    pub(crate) struct Parker {
        /// Loom lets a wait on it return spuriously...
        notify: Notify,
        /// ...so this says whether the waker was woken.
        woken: AtomicBool,
    }

    impl Wake for Parker {
        fn wake(self: StdArc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &StdArc<Self>) {
            self.woken.store(true, Release);
            self.notify.notify();
        }
    }

    impl Parker {
        /// A parker, and a waker that unparks it.
        pub(crate) fn new() -> (StdArc<Parker>, Waker) {
            let parker = StdArc::new(Parker {
                notify: Notify::new(),
                woken: AtomicBool::new(false),
            });
            let waker = Waker::from(StdArc::clone(&parker));
            (parker, waker)
        }

        /// Parks the thread until the waker is woken (at once if it was woken since the
        /// last park). A thread that parks for a wake-up that never comes is a deadlock,
        /// which loom reports.
        pub(crate) fn park(&self) {
            // A compare-and-swap, not a swap: loom 0.7 may let a store fall between a swap's
            // read and its write (tokio-rs/loom#254), and a swap to `false` would then
            // hide the wake-up. A compare-and-swap that fails writes nothing.
            while self
                .woken
                .compare_exchange(true, false, Acquire, Relaxed)
                .is_err()
            {
                self.notify.wait();
            }
        }
    }

    /// Polls `future` to completion, parking the loom thread while it is pending.
    pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
        let (parker, waker) = Parker::new();
        let mut cx = Context::from_waker(&waker);
        let mut future = pin!(future);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            parker.park();
        }
    }
}
