//! Waiting from plain threads: what the primitives' `blocking_*` methods run on, Tokio's
//! convention (`Mutex::blocking_lock`, `Sender::blocking_send`).

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Runs `fut` to completion on this thread, blocking it.
///
/// On a thread that has a Tokio runtime's context (code under `to_thread` or
/// `spawn_blocking`) this is Tokio's `Handle::block_on`; on a thread with none (a plain
/// thread, a worker of aio's `ThreadPool`), a park loop.
///
/// # Panics
///
/// If called inside a Tokio task: blocking there would stall every task of its worker, and
/// Tokio panics with "Cannot start a runtime from within a runtime". Inside another
/// executor's task there is no Tokio context to detect, and the thread simply blocks.
#[track_caller]
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle.block_on(fut),
        Err(_) => park_on(fut),
    }
}

/// Wakes the thread parked in [`park_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

fn park_on<F: Future>(fut: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(output) = fut.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake-up before the park leaves a token, so the park returns at once.
        thread::park();
    }
}
