//! The threads a [`CapacityLimiter`](crate::CapacityLimiter)'s calls run on.
//!
//! A call is handed to its runtime's blocking pool only when no thread is at hand. The
//! thread it lands on becomes a *runner*, which keeps the hand-offs off the path of the
//! calls that follow:
//!
//! * When its call gives the token back and another call of the same runtime waits for
//!   one, the token goes to that call, and the call runs next on the same thread.
//! * When no call waits, the runner stays *idle* for a moment ([`LINGER`]), listed with
//!   the limiter: a call that starts meanwhile, with a free token, is put in the runner's
//!   inbox instead of being handed to the pool. The runner polls its inbox, yielding the
//!   processor between looks, and leaves when the moment is over.
//!
//! A burst of calls thus drains through as many threads as there are tokens, each running
//! call after call, and a call made right after another one returned finds its thread
//! still there, as rayon's workers are, instead of paying a thread wake-up per call. A
//! runner never waits longer than [`LINGER`], so a runtime shutting down, which waits for
//! its blocking threads, is not held up by idle runners.
//!
//! A call only ever runs on a thread of the runtime that made it, and is shut down with
//! that runtime.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::{self, Handle};

use crate::capacity_limiter::{Limiter, Token};

/// How long a runner with nothing to do waits for a call before it leaves.
pub(crate) const LINGER: Duration = Duration::from_micros(50);

/// A call waiting for a token: the closure that runs it on a blocking thread of its
/// caller's runtime, holding the token it is given.
pub(crate) struct Call {
    runtime: Handle,
    run: Box<dyn FnOnce(Token) + Send>,
}

impl Call {
    pub(crate) fn new(run: impl FnOnce(Token) + Send + 'static) -> Self {
        Call {
            runtime: Handle::current(),
            run: Box::new(run),
        }
    }

    /// The runtime the call must run on.
    pub(crate) fn runtime(&self) -> runtime::Id {
        self.runtime.id()
    }

    /// Queues the call, with `token`, to run next on this thread if this thread is a
    /// runner of the call's runtime with nothing queued yet. Otherwise hands both back.
    pub(crate) fn run_next_here(self, token: Token) -> Option<(Call, Token)> {
        NEXT.with(|next| match next.take() {
            Some(Next::Idle(runtime)) if runtime == self.runtime.id() => {
                next.set(Some(Next::Queued(self, token)));
                None
            }
            mine => {
                next.set(mine);
                Some((self, token))
            }
        })
    }

    /// Hands the call to its runtime's blocking pool, with `token`: the thread it lands on
    /// becomes a runner. Returns the token if that runtime is shutting down: it drops the
    /// call at once, unrun.
    pub(crate) fn launch(self, token: Token) -> Option<Token> {
        let runtime = self.runtime.clone();
        let slot = Arc::new(Mutex::new(Some((self, token))));
        let handed = Arc::clone(&slot);
        let thread = runtime.spawn_blocking(move || {
            let first = handed.lock().unwrap_or_else(PoisonError::into_inner).take();
            let (call, token) = first.expect("a call is taken once");
            run_calls(call, token);
        });
        if !thread.is_finished() {
            return None;
        }
        // Finished already: it ran, and took the call, or it was refused, and the call is
        // still here.
        let refused = slot.lock().unwrap_or_else(PoisonError::into_inner).take();
        refused.map(|(call, token)| {
            drop(call);
            token
        })
    }
}

/// An idle runner, as the limiter lists it: where to put a call for it.
pub(crate) struct Idle {
    runtime: runtime::Id,
    inbox: Arc<Inbox>,
}

impl Idle {
    /// Gives the runner `call` and the token it runs with. Called with the limiter's lock
    /// held, which is what makes the runner's [`leave`](Limiter::leave) see it.
    pub(crate) fn give(self, call: Call, token: Token) {
        *self
            .inbox
            .call
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((call, token));
        self.inbox.full.store(true, Ordering::Release);
    }

    /// Whether calls of `runtime` may run on this runner.
    pub(crate) fn runs(&self, runtime: runtime::Id) -> bool {
        self.runtime == runtime
    }

    /// Whether this is the listing of the runner whose inbox is `inbox`.
    pub(crate) fn is(&self, inbox: &Arc<Inbox>) -> bool {
        Arc::ptr_eq(&self.inbox, inbox)
    }
}

/// Where an idle runner finds the call it was given.
pub(crate) struct Inbox {
    full: AtomicBool,
    call: Mutex<Option<(Call, Token)>>,
}

impl Inbox {
    fn new() -> Arc<Self> {
        Arc::new(Inbox {
            full: AtomicBool::new(false),
            call: Mutex::new(None),
        })
    }

    fn take(&self) -> Option<(Call, Token)> {
        if !self.full.load(Ordering::Acquire) {
            return None;
        }
        self.full.store(false, Ordering::Relaxed);
        self.call
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// What a runner thread does after its current call.
enum Next {
    /// Nothing known yet: a call of this runtime may be queued here.
    Idle(runtime::Id),
    /// Runs this call, with the token its predecessor handed on.
    Queued(Call, Token),
    /// Its token went back to this limiter: it may wait there for a call, idle.
    Free(Limiter),
}

thread_local! {
    /// `Some` while this thread is a runner.
    static NEXT: Cell<Option<Next>> = const { Cell::new(None) };
}

/// Tells this thread, if it is a runner with nothing queued, that the token its call held
/// went back to `limiter`, where it may wait for the next call.
pub(crate) fn token_returned(limiter: &Limiter) {
    NEXT.with(|next| match next.take() {
        Some(Next::Idle(_)) => next.set(Some(Next::Free(limiter.clone()))),
        mine => next.set(mine),
    });
}

/// The body of a runner: runs `call`, then each call its token is handed on to, then each
/// call it is given while idle.
fn run_calls(call: Call, token: Token) {
    let runtime = call.runtime.id();
    let runner = Runner {
        previous: NEXT.replace(Some(Next::Idle(runtime))),
    };
    let (mut call, mut token) = (call, token);
    // Made at the first wait, and used for each: no listing holds it once a wait is over.
    let mut inbox = None;
    loop {
        (call.run)(token);
        let next = match NEXT.replace(Some(Next::Idle(runtime))) {
            Some(Next::Queued(next, next_token)) => Some((next, next_token)),
            Some(Next::Free(limiter)) => {
                wait_idle(&limiter, runtime, inbox.get_or_insert_with(Inbox::new))
            }
            _ => None,
        };
        let Some(next) = next else { break };
        (call, token) = next;
    }
    drop(runner);
}

/// Lists this runner as idle with `limiter` for up to [`LINGER`], with `inbox` as where to
/// put a call for it; returns the call it was given, if any. When it returns, the limiter
/// has let go of `inbox` (a call took the listing, or the runner left), and the inbox is
/// empty.
fn wait_idle(limiter: &Limiter, runtime: runtime::Id, inbox: &Arc<Inbox>) -> Option<(Call, Token)> {
    let idle = Idle {
        runtime,
        inbox: Arc::clone(inbox),
    };
    limiter.wait_here(idle);
    let until = Instant::now() + LINGER;
    loop {
        if let Some(next) = inbox.take() {
            return Some(next);
        }
        if Instant::now() >= until {
            limiter.leave(inbox);
            // A call given just before the runner left is still run.
            return inbox.take();
        }
        std::thread::yield_now();
    }
}

/// Ends a runner: the thread stops taking calls. If it unwinds with a call queued, the
/// call goes to the pool as any other.
struct Runner {
    previous: Option<Next>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        if let Some(Next::Queued(call, token)) = NEXT.replace(self.previous.take()) {
            // A token the runtime refused goes on to the next call as it drops.
            drop(call.launch(token));
        }
    }
}
