//! `to_thread` and `ThreadPool` (§14): asyncio's thread offload, with Trio's capacity
//! limiter and cancellation token.
//!
//! Threads are ordered by cause (gates they block on, signals they send), never by sleeps.
//! `to_thread` runs on Tokio's blocking pool, which keeps paused time from jumping ahead
//! while a blocking function runs, so its tests run on both runtimes of `spec!`. A
//! `ThreadPool`'s workers are plain threads the paused clock cannot see: while a test
//! waited for one, the clock would jump to the test's hang guard. Those tests run on a
//! current-thread runtime in real time instead (`threads_spec!`), and on the multi-thread one.
//!
//! Not applicable: §14.3 (keyword arguments: a closure captures what it needs, shown
//! once below). §14.8's `run_coroutine_threadsafe` is `from_thread`, which runs the future
//! in the task that waits for the thread, as Trio's `from_thread.run` does.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use aio::{
    BoxError, CancelReason, CancelToken, CapacityLimiter, FromThreadError, JobError, TaskGroup,
    ThreadPool, ToThreadError, from_thread, to_thread, to_thread_cancellable,
};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio_test::assert_pending;
use tokio_test::task::spawn;
use tracing::Instrument;

use crate::support::*;

/// Like `spec!`, but on a current-thread runtime in real time and the two-worker one: for
/// tests that wait for `ThreadPool` workers, which paused time cannot see.
macro_rules! threads_spec {
    ($(#[$attr:meta])* async fn $name:ident() $body:block) => {
        $(#[$attr])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn body() $body

            #[test]
            fn current_thread_real_time() {
                super::run_real_time(tokio::runtime::Builder::new_current_thread(), body());
            }

            #[test]
            fn multi_thread() {
                let mut builder = tokio::runtime::Builder::new_multi_thread();
                builder.worker_threads(2);
                super::run_real_time(builder, body());
            }
        }
    };
}

fn run_real_time<F: std::future::Future<Output = ()>>(
    mut builder: tokio::runtime::Builder,
    body: F,
) {
    let runtime = builder.enable_all().build().unwrap();
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), body)
            .await
            .expect("test did not finish within a minute: a thread was never released");
    });
}

/// A gate threads block on until the test opens it.
#[derive(Clone, Default)]
struct ThreadGate(Arc<(Mutex<bool>, Condvar)>);

impl ThreadGate {
    fn new() -> Self {
        Self::default()
    }

    /// Blocks the calling thread until `open`.
    fn wait(&self) {
        let (open, cv) = &*self.0;
        let mut open = open.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
    }

    fn open(&self) {
        let (open, cv) = &*self.0;
        *open.lock().unwrap() = true;
        cv.notify_all();
    }
}

/// Signals from threads that the test awaits: "started", "stopped".
#[derive(Clone)]
struct Signals(Arc<Semaphore>);

impl Signals {
    fn new() -> Self {
        Signals(Arc::new(Semaphore::new(0)))
    }

    /// Called from a thread.
    fn send(&self) {
        self.0.add_permits(1);
    }

    /// Waits until `n` more signals were sent.
    fn wait(&self, n: u32) -> impl std::future::Future<Output = ()> + Send + 'static {
        let signals = Arc::clone(&self.0);
        async move { signals.acquire_many_owned(n).await.unwrap().forget() }
    }
}

/// Occupies `limiter`'s only token with a call that blocks until the returned gate opens;
/// returns once the call is running.
async fn occupy(
    limiter: &CapacityLimiter,
) -> (
    tokio::task::JoinHandle<Result<(), ToThreadError>>,
    ThreadGate,
) {
    let (running, gate) = (Signals::new(), ThreadGate::new());
    let (r, g) = (running.clone(), gate.clone());
    let blocker = tokio::spawn(limiter.to_thread(move || {
        r.send();
        g.wait();
    }));
    running.wait(1).await;
    (blocker, gate)
}

/// Occupies the only worker of `pool` with a job that blocks until the returned gate
/// opens; returns once the job is running.
async fn occupy_worker(pool: &ThreadPool) -> (aio::JobHandle<&'static str>, ThreadGate) {
    let (running, gate) = (Signals::new(), ThreadGate::new());
    let (r, g) = (running.clone(), gate.clone());
    let job = pool
        .submit(move || {
            r.send();
            g.wait();
            "finished"
        })
        .unwrap();
    running.wait(1).await;
    (job, gate)
}

/// How many run at once, and the most ever seen.
#[derive(Clone, Default)]
struct Concurrency {
    now: Arc<AtomicUsize>,
    max: Arc<AtomicUsize>,
}

impl Concurrency {
    fn enter(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.max.fetch_max(now, Ordering::SeqCst);
    }

    fn leave(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }

    fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

// ---- to_thread ----------------------------------------------------------------------

spec! {
    async fn to_thread_returns_the_function_result_14_1() {
        // §14.1
        let caller = std::thread::current().id();
        let (value, thread) = to_thread(|| (6 * 7, std::thread::current().id())).await.unwrap();
        assert_eq!(value, 42);
        assert_ne!(thread, caller, "the function ran on another thread");
        // A function's own error is its value: `Result` in, `Result` out.
        let failed = to_thread(|| "x".parse::<u32>()).await.unwrap();
        assert!(failed.is_err());
    }
}

spec! {
    async fn to_thread_returns_a_panic_as_an_error_with_its_message_14_1() {
        // §14.1: the exception propagates; in aio, as a typed error carrying the message.
        let err = to_thread(|| -> u32 { panic!("bad row {}", 7) }).await.unwrap_err();
        assert_eq!(err, ToThreadError::Panicked { message: "bad row 7".into() });
        assert_eq!(err.panic_message(), Some("bad row 7"));
        let err = to_thread(|| std::panic::panic_any(5u8)).await.unwrap_err();
        assert!(err.panic_message().is_some());
        // The limiter's token came back despite the panic.
        let limiter = CapacityLimiter::new(1);
        assert!(limiter.to_thread(|| panic!("again")).await.is_err());
        assert_eq!(limiter.to_thread(|| 1).await, Ok(1));
    }
}

spec! {
    async fn to_thread_calls_the_function_exactly_once_14_2() {
        // §14.2
        let calls = Counter::new();
        let c = calls.clone();
        to_thread(move || c.incr()).await.unwrap();
        assert_eq!(calls.get(), 1);
    }
}

spec! {
    async fn to_thread_takes_arguments_by_capture_14_3() {
        // §14.3: `to_thread(f, *args, **kwargs)` is a closure that moves its arguments in.
        let name = String::from("report");
        let rows: Vec<i32> = (1..=3).collect();
        let out = to_thread(move || format!("{name}: {}", rows.iter().sum::<i32>())).await;
        assert_eq!(out.unwrap(), "report: 6");
    }
}

spec! {
    async fn to_thread_calls_run_concurrently_14_5() {
        // §14.5: four calls that each wait for all four can only finish together.
        let limiter = CapacityLimiter::new(4);
        let barrier = Arc::new(std::sync::Barrier::new(4));
        let calls = (0..4).map(|i| {
            let barrier = Arc::clone(&barrier);
            limiter.to_thread(move || {
                barrier.wait();
                i
            })
        });
        let out = futures::future::join_all(calls).await;
        assert_eq!(out, [Ok(0), Ok(1), Ok(2), Ok(3)]);
    }
}

spec! {
    async fn cancelling_the_caller_leaves_a_running_thread_to_finish_14_6() {
        // §14.6: the caller is cancelled at once; the thread runs to the end, unseen.
        let started = Signals::new();
        let finished = Signals::new();
        let gate = ThreadGate::new();
        let (s, f, g) = (started.clone(), finished.clone(), gate.clone());
        let out = TaskGroup::<BoxError>::scope(|tg| async move {
            let call = tg.spawn(async move {
                to_thread(move || {
                    s.send();
                    g.wait();
                    f.send();
                })
                .await?;
                Ok(())
            })?;
            started.wait(1).await;
            tg.cancel();
            Ok(call)
        })
        .await
        .unwrap();
        assert!(matches!(out.result(), Err(aio::TaskError::Cancelled(_))));
        // The group is done, and the thread is still blocked at the gate.
        gate.open();
        finished.wait(1).await;
    }
}

spec! {
    async fn cancelling_before_the_function_starts_means_it_never_runs_14_7() {
        // §14.7: a call waiting for a limiter token is dropped with its task; it never runs.
        let limiter = CapacityLimiter::new(1);
        let ran = Counter::new();
        let (blocker, gate) = occupy(&limiter).await;
        let r = ran.clone();
        let mut queued = spawn(limiter.to_thread(move || r.incr()));
        assert_pending!(queued.poll());
        drop(queued);
        gate.open();
        blocker.await.unwrap().unwrap();
        // Had it not been dropped, it would have its token now.
        assert_eq!(limiter.to_thread(|| ()).await, Ok(()));
        assert_eq!(limiter.borrowed_tokens(), 0);
        assert_eq!(ran.get(), 0);
    }
}

#[test]
fn run_waits_for_threads_the_caller_left_behind_14_9() {
    // §14.9: `asyncio.run()` waits for the default executor's threads. `aio::run` waits
    // for them too, up to its grace period.
    let finished = Arc::new(AtomicUsize::new(0));
    let f = Arc::clone(&finished);
    aio::run(async move {
        let started = Signals::new();
        let s = started.clone();
        let call = to_thread_cancellable(move |token| {
            s.send();
            token.wait_timeout(FOREVER);
            // Some last work after the caller has gone.
            std::thread::sleep(Duration::from_millis(50));
            f.fetch_add(1, Ordering::SeqCst);
        });
        tokio::select! {
            _ = call => unreachable!("the function waits for its token"),
            () = started.wait(1) => {}
        }
    });
    assert_eq!(finished.load(Ordering::SeqCst), 1);
}

spec! {
    async fn a_cancelled_scope_starts_no_thread_work() {
        // The call is dropped at its `.await` like any other future, and `?` never sees the
        // cancellation: the group reports no failure.
        let (ran, after) = (Counter::new(), Counter::new());
        let (r, a) = (ran.clone(), after.clone());
        let err = TaskGroup::<BoxError>::scope(|tg| async move {
            tg.cancel();
            to_thread(move || r.incr()).await?;
            a.incr();
            Ok(())
        })
        .await
        .unwrap_err();
        assert!(err.is_cancelled());
        assert_eq!(err.len(), 0, "no failure: {err:?}");
        assert_eq!(err.as_cancelled().unwrap().reason(), &CancelReason::Explicit);
        assert_eq!((ran.get(), after.get()), (0, 0));
    }
}

spec! {
    async fn a_call_after_a_shield_in_a_cancelled_task_is_a_cancellation_not_a_failure() {
        // The shielded work completes; the call right after it is where the cancellation
        // lands. The task ends cancelled, not failed.
        let (ran, shielded) = (Counter::new(), Counter::new());
        let (r, s) = (ran.clone(), shielded.clone());
        let started = Signals::new();
        let st = started.clone();
        let (open, gate) = tokio::sync::oneshot::channel::<()>();
        let task = TaskGroup::<BoxError>::scope(|tg| async move {
            let task = tg.spawn(async move {
                aio::shield(async move {
                    st.send();
                    gate.await.unwrap();
                    s.incr();
                })
                .await;
                to_thread(move || r.incr()).await?;
                Ok(())
            })?;
            started.wait(1).await;
            tg.cancel();
            open.send(()).unwrap();
            Ok(task)
        })
        .await
        .unwrap();
        assert!(matches!(task.result(), Err(aio::TaskError::Cancelled(_))));
        assert_eq!((shielded.get(), ran.get()), (1, 0));
    }
}

spec! {
    async fn a_cancelled_group_does_not_start_its_queued_thread_work() {
        // Tasks waiting for a limiter token when their group is cancelled never start.
        let limiter = CapacityLimiter::new(1);
        let ran = Counter::new();
        let (blocker, gate) = occupy(&limiter).await;
        let (l, r) = (limiter.clone(), ran.clone());
        TaskGroup::<BoxError>::scope(|tg| async move {
            for _ in 0..3 {
                let (l, r) = (l.clone(), r.clone());
                tg.spawn(async move { Ok(l.to_thread(move || r.incr()).await?) })?;
            }
            tokio::task::yield_now().await; // every task is waiting for the token
            tg.cancel();
            Ok(())
        })
        .await
        .unwrap();
        gate.open();
        blocker.await.unwrap().unwrap();
        assert_eq!(limiter.to_thread(|| ()).await, Ok(()));
        assert_eq!(ran.get(), 0);
    }
}

spec! {
    async fn the_token_is_cancelled_when_the_scope_is_cancelled() {
        let started = Signals::new();
        let stopped = Signals::new();
        let (s, st) = (started.clone(), stopped.clone());
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(async move {
                to_thread_cancellable(move |token| {
                    s.send();
                    while !token.wait_timeout(FOREVER) {}
                    st.send();
                })
                .await?;
                Ok(())
            })?;
            started.wait(1).await;
            tg.cancel();
            Ok(())
        })
        .await
        .unwrap();
        // Would hang (and trip the test's guard) if the token were never cancelled.
        stopped.wait(1).await;
    }
}

spec! {
    async fn the_token_is_cancelled_before_the_scope_drops_the_call() {
        // The scope waits for a cleanup that waits for the thread to see its token: the
        // token is cancelled while the call is still alive, not only when it is dropped.
        let started = Signals::new();
        let s = started.clone();
        // A oneshot: the cleanup's future must be a plain named one to be `Send` here.
        let (stopped, thread_stopped) = tokio::sync::oneshot::channel::<()>();
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(async move {
                let call = to_thread_cancellable(move |token| {
                    s.send();
                    while !token.wait_timeout(FOREVER) {}
                    stopped.send(()).unwrap();
                });
                // Hangs (and trips the test's guard) if the token waited for the drop.
                let work = std::future::pending::<Result<(), aio::Cancelled>>();
                let cleanup = aio::on_cancel(work, move |_| async move {
                    thread_stopped.await.unwrap();
                    Ok(())
                });
                let _ = futures::future::join(call, cleanup).await;
                Ok(())
            })?;
            started.wait(1).await;
            tg.cancel();
            Ok(())
        })
        .await
        .unwrap();
    }
}

spec! {
    async fn the_token_is_cancelled_when_the_call_is_dropped() {
        let started = Signals::new();
        let stopped = Signals::new();
        let (s, st) = (started.clone(), stopped.clone());
        let mut call = spawn(to_thread_cancellable(move |token: CancelToken| {
            s.send();
            while !token.wait_timeout(FOREVER) {}
            st.send();
        }));
        assert_pending!(call.poll());
        started.wait(1).await;
        drop(call);
        stopped.wait(1).await;
    }
}

threads_spec! {
    async fn the_callers_span_is_entered_in_the_thread_14_4() {
        // §14.4: asyncio copies the contextvars into the thread; aio, the tracing span and
        // subscriber. The subscriber is set for this thread only (set_default); the event
        // logged on the blocking thread still reaches it, inside the caller's span.
        let recorder = Recorder::leaked();
        let _default = tracing::subscriber::set_default(recorder);
        let span = tracing::info_span!("request", id = 7);
        let caller = std::thread::current().id();
        // The span is the one current where the call is polled: `.instrument` or an
        // instrumented async fn.
        let thread = to_thread(|| {
            tracing::info!("reading the file");
            std::thread::current().id()
        })
        .instrument(span)
        .await
        .unwrap();
        let pool = ThreadPool::new(1).unwrap();
        let job = {
            let _entered = tracing::info_span!("batch").entered();
            pool.submit(|| tracing::info!("decoding")).unwrap()
        };
        job.await.unwrap();
        let events = recorder.events();
        assert!(
            events.contains(&("reading the file".into(), Some("request".into()), thread)),
            "{events:?}"
        );
        assert_ne!(thread, caller);
        assert!(
            events
                .iter()
                .any(|(m, span, _)| m == "decoding" && span.as_deref() == Some("batch")),
            "{events:?}"
        );
    }
}

// ---- from_thread ----------------------------------------------------------------------

threads_spec! {
    /// §14.8: a thread runs async code through `from_thread` and gets its value. The code
    /// runs as the task that awaits the thread, so it sees that task, as Trio's
    /// `from_thread.run` reuses its host task.
    async fn from_thread_runs_its_future_in_the_task_that_awaits_the_thread_14_8() {
        TaskGroup::<BoxError>::scope(|tg| async move {
            let call = tg.spawn_named("parser", async move {
                let me = aio::current_task().unwrap().id();
                let (seen, pages) = to_thread(|| {
                    let mut pages = Vec::new();
                    for page in 1..=3 {
                        pages.push(from_thread(async move {
                            tokio::task::yield_now().await;
                            page * 10
                        })?);
                    }
                    let seen = from_thread(async { aio::current_task().map(|t| t.id()) })?;
                    Ok::<_, FromThreadError>((seen, pages))
                })
                .await??;
                assert_eq!(seen, Some(me));
                Ok(pages)
            })?;
            assert_eq!(call.await?, vec![10, 20, 30]);
            Ok(())
        })
        .await
        .unwrap();
    }
}

threads_spec! {
    /// A thread that aio did not hand work to has nobody to call back into: a typed
    /// error, on a plain thread and on a runtime's own worker alike.
    async fn from_thread_on_a_thread_that_runs_no_offloaded_call_is_an_error() {
        let plain = std::thread::spawn(|| from_thread(async { 1 })).join().unwrap();
        assert_eq!(plain, Err(FromThreadError::NotOffloaded));
        assert_eq!(from_thread(async { 1 }), Err(FromThreadError::NotOffloaded));
    }
}

threads_spec! {
    /// A cancelled scope around the waiting task drops the future where it stands, and
    /// the thread's `from_thread` returns the cancellation, so the thread can wind down.
    async fn a_cancelled_scope_makes_from_thread_return_a_cancellation_in_the_thread() {
        let (running, (report, reported)) = (Signals::new(), std::sync::mpsc::channel());
        let r = running.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            tg.spawn(async move {
                to_thread(move || {
                    let out = from_thread(async move {
                        r.send();
                        std::future::pending::<()>().await;
                    });
                    report.send(out).unwrap();
                })
                .await?;
                Ok(())
            })?;
            running.wait(1).await;
            tg.cancel();
            Ok(())
        })
        .await
        .unwrap();
        let out = tokio::task::spawn_blocking(move || reported.recv().unwrap())
            .await
            .unwrap();
        assert!(matches!(out, Err(FromThreadError::Cancelled(_))), "{out:?}");
    }
}

threads_spec! {
    /// A deadline around the waiting task bounds the code the thread runs through it: the
    /// thread hears the deadline as the reason. (The deadline is moved to now once that
    /// code runs, so it cannot fire before the thread has called back.)
    async fn a_deadline_around_the_waiting_task_ends_the_code_the_thread_runs() {
        let (running, (report, reported)) = (Signals::new(), std::sync::mpsc::channel());
        let r = running.clone();
        let call = aio::timeout(
            Duration::from_secs(3600),
            to_thread(move || {
                let out = from_thread(async move {
                    r.send();
                    std::future::pending::<()>().await;
                });
                report.send(out).unwrap();
            }),
        );
        let deadline = call.handle();
        let (out, ()) = tokio::join!(call, async move {
            running.wait(1).await;
            deadline.reschedule(tokio::time::Instant::now()).unwrap();
        });
        assert!(out.is_err(), "the timeout fired");
        let out = tokio::task::spawn_blocking(move || reported.recv().unwrap())
            .await
            .unwrap();
        match out {
            Err(FromThreadError::Cancelled(c)) => assert_eq!(c.reason(), &CancelReason::Deadline),
            other => panic!("{other:?}"),
        }
    }
}

threads_spec! {
    /// A thread that calls back after its caller stopped waiting (here the `to_thread`
    /// future was dropped before the thread asked) hears a cancellation.
    async fn from_thread_after_the_caller_stopped_waiting_is_a_cancellation() {
        let limiter = CapacityLimiter::new(1);
        let (gate, running) = (ThreadGate::new(), Signals::new());
        let (report, reported) = std::sync::mpsc::channel();
        let (g, r) = (gate.clone(), running.clone());
        let call = tokio::spawn(limiter.to_thread(move || {
            r.send();
            g.wait();
            report.send(from_thread(async { 1 })).unwrap();
        }));
        running.wait(1).await;
        call.abort();
        assert!(call.await.unwrap_err().is_cancelled());
        gate.open();
        let out = tokio::task::spawn_blocking(move || reported.recv().unwrap())
            .await
            .unwrap();
        match out {
            Err(FromThreadError::Cancelled(c)) => {
                assert_eq!(c.reason(), &CancelReason::ParentCancelled);
            }
            other => panic!("{other:?}"),
        }
    }
}

threads_spec! {
    /// A deadline that ends the wait before the thread calls back still gives the thread
    /// its reason: the scope is watched from the first poll of the waiting future.
    async fn from_thread_after_a_deadline_ended_the_wait_hears_the_deadline() {
        let (gate, (report, reported)) = (ThreadGate::new(), std::sync::mpsc::channel());
        let g = gate.clone();
        let out = aio::timeout(
            Duration::from_millis(10),
            to_thread(move || {
                g.wait();
                report.send(from_thread(async { 1 })).unwrap();
            }),
        )
        .await;
        assert!(out.is_err(), "the timeout fired");
        gate.open();
        let out = tokio::task::spawn_blocking(move || reported.recv().unwrap())
            .await
            .unwrap();
        match out {
            Err(FromThreadError::Cancelled(c)) => assert_eq!(c.reason(), &CancelReason::Deadline),
            other => panic!("{other:?}"),
        }
    }
}

threads_spec! {
    /// A pool's `map` runs the calls back of every job it has in flight, not only the one
    /// whose result it waits for: here the first job waits for the last one's call back.
    async fn a_map_runs_the_calls_back_of_every_job_in_flight() {
        let pool = ThreadPool::new(3).unwrap();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(Mutex::new(wait));
        let out: Vec<_> = pool
            .map(
                move |i: u32| {
                    if i == 0 {
                        wait.lock().unwrap().recv().unwrap();
                        return 0;
                    }
                    let done = done.clone();
                    from_thread(async move {
                        if i == 2 {
                            done.send(()).unwrap();
                        }
                        i * 10
                    })
                    .unwrap()
                },
                0..3,
            )
            .buffered(3)
            .collect()
            .await;
        assert_eq!(out, [Ok(0), Ok(10), Ok(20)]);
    }
}

threads_spec! {
    /// A panic in the code the thread runs through `from_thread` unwinds in the thread, as
    /// if the code had run there: `to_thread` returns it, and the waiting task goes on.
    async fn a_panic_in_from_thread_code_unwinds_in_the_thread() {
        let out = to_thread(|| from_thread(async { panic!("no such page") })).await;
        let message = out.unwrap_err().panic_message().map(str::to_owned);
        assert_eq!(message.as_deref(), Some("no such page"));
    }
}

threads_spec! {
    /// A pool job's call back runs in the task awaiting its handle. A detached job has no
    /// task waiting for it: its call back is refused, not left hanging.
    async fn a_pool_job_calls_back_through_its_awaited_handle_and_not_once_detached() {
        let pool = ThreadPool::new(1).unwrap();
        let job = pool.submit(|| from_thread(async { 5 })).unwrap();
        assert_eq!(job.await.unwrap(), Ok(5));
        let (report, reported) = std::sync::mpsc::channel();
        pool.submit(move || report.send(from_thread(async { 1 })).unwrap())
            .unwrap()
            .detach();
        pool.shutdown(false).await;
        assert_eq!(reported.recv().unwrap(), Err(FromThreadError::Abandoned));
    }
}

// ---- CapacityLimiter ----------------------------------------------------------------

spec! {
    async fn the_limiter_bound_is_never_exceeded() {
        // Twenty calls from two call sites share a limiter of three. The first three to get
        // a token wait for each other, so the bound is reached on every run; the record of
        // the most at once shows it is never passed.
        let limiter = CapacityLimiter::new(3);
        let seen = Concurrency::default();
        let arrivals = Arc::new(AtomicUsize::new(0));
        let first_three = Arc::new(std::sync::Barrier::new(3));
        let work = {
            let (seen, arrivals, first_three) = (seen.clone(), arrivals, first_three);
            move || {
                seen.enter();
                if arrivals.fetch_add(1, Ordering::SeqCst) < 3 {
                    first_three.wait();
                }
                std::thread::yield_now();
                seen.leave();
            }
        };
        let other_site = limiter.clone();
        TaskGroup::<BoxError>::scope(|tg| async move {
            for i in 0..20 {
                let work = work.clone();
                if i % 2 == 0 {
                    let call = limiter.to_thread(work);
                    tg.spawn(async move { Ok(call.await?) })?;
                } else {
                    let call = other_site.to_thread_cancellable(move |_| work());
                    tg.spawn(async move { Ok(call.await?) })?;
                }
            }
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(seen.max(), 3);
    }
}

#[test]
fn the_default_limiter_has_min_32_cpus_plus_4_tokens() {
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(CapacityLimiter::default_tokens(), (cpus + 4).min(32));
    assert!(CapacityLimiter::default_limiter().total_tokens() >= 1);
}

spec! {
    async fn a_shrunk_limiter_keeps_borrowed_tokens_until_they_come_back() {
        let limiter = CapacityLimiter::new(2);
        let running = Signals::new();
        let gates = [ThreadGate::new(), ThreadGate::new()];
        let calls: Vec<_> = gates
            .iter()
            .map(|g| {
                let (r, g) = (running.clone(), g.clone());
                tokio::spawn(limiter.to_thread(move || {
                    r.send();
                    g.wait();
                }))
            })
            .collect();
        running.wait(2).await;
        assert_eq!(limiter.borrowed_tokens(), 2);
        limiter.set_total_tokens(1);
        assert_eq!((limiter.total_tokens(), limiter.available_tokens()), (1, 0));
        let mut calls = calls.into_iter();
        gates[0].open();
        calls.next().unwrap().await.unwrap().unwrap();
        // The first token back paid the shrink: still none free.
        assert_eq!((limiter.borrowed_tokens(), limiter.available_tokens()), (1, 0));
        gates[1].open();
        calls.next().unwrap().await.unwrap().unwrap();
        assert_eq!((limiter.borrowed_tokens(), limiter.available_tokens()), (0, 1));
        limiter.set_total_tokens(3);
        assert_eq!(limiter.available_tokens(), 3);
    }
}

spec! {
    /// A call dropped while it waits for a token lets go of its closure at once, and of
    /// all the closure holds: here the sender whose end the running call waits for.
    async fn a_waiting_call_dropped_drops_its_closure_at_once() {
        let limiter = CapacityLimiter::new(1);
        let (tx, rx) = std::sync::mpsc::channel::<u8>();
        let running = Signals::new();
        let consumer = tokio::spawn(limiter.to_thread({
            let running = running.clone();
            move || {
                running.send();
                rx.iter().count()
            }
        }));
        running.wait(1).await;
        let mut producer = spawn(limiter.to_thread(move || tx.send(1)));
        assert_pending!(producer.poll());
        drop(producer);
        // The sender went with the waiting call: the consumer sees the end of the channel.
        assert_eq!(consumer.await.unwrap().unwrap(), 0);
        assert_eq!(limiter.available_tokens(), 1);
    }
}

spec! {
    /// A plain `to_thread` waiting for a token in a group that is cancelled never starts,
    /// even while its task is held up by a cleanup, so not yet dropped.
    async fn a_waiting_call_of_a_cancelled_group_never_starts() {
        let limiter = CapacityLimiter::new(1);
        let (blocker, gate) = occupy(&limiter).await;
        let (queued, cleaning) = (Signals::new(), Signals::new());
        let ran = Counter::new();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let group = tokio::spawn({
            let (limiter, cleaning, ran) = (limiter.clone(), cleaning.clone(), ran.clone());
            let queued = queued.clone();
            TaskGroup::<BoxError>::scope(|tg| async move {
                let in_queue = queued.clone();
                let call = limiter.to_thread(move || ran.incr());
                // Boxed: the compiler cannot prove an unboxed one `Send` here.
                let held: futures::future::BoxFuture<'static, Result<(), BoxError>> =
                    Box::pin(aio::on_cancel(
                    async move {
                        // `join` polled the call first: it waits in the queue now.
                        in_queue.send();
                        std::future::pending::<Result<(), BoxError>>().await
                    },
                    move |_| async move {
                        cleaning.send();
                        let _ = released.await;
                        Ok(())
                    },
                ));
                tg.spawn(async move { futures::future::join(call, held).await.1 })?;
                queued.wait(1).await;
                tg.cancel();
                Ok(())
            })
        });
        // The cleanup runs once the task was polled after the cancel, and that poll
        // polled the call first: it has seen the cancel.
        cleaning.wait(1).await;
        gate.open();
        blocker.await.unwrap().unwrap();
        assert_eq!(ran.get(), 0, "the queued call started after its group was cancelled");
        assert_eq!(limiter.available_tokens(), 1);
        release.send(()).unwrap();
        let _ = group.await.unwrap();
        assert_eq!(ran.get(), 0);
    }
}

/// A waiting call is started by the thread that gives a token back, on its caller's own
/// runtime. Calls left waiting by a runtime that has gone are passed over: the token goes on
/// to the next call, and in the end back to the limiter.
#[test]
fn calls_left_waiting_by_a_dropped_runtime_do_not_hold_a_token() {
    let limiter = CapacityLimiter::new(1);
    let here = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (gate, running) = (ThreadGate::new(), Signals::new());
    let holder = here.spawn(limiter.to_thread({
        let (gate, running) = (gate.clone(), running.clone());
        move || {
            running.send();
            gate.wait();
        }
    }));
    here.block_on(running.wait(1));
    // Another runtime queues a thousand calls behind it, and goes away.
    let gone = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ran = Counter::new();
    gone.block_on(async {
        let calls: Vec<_> = (0..1000)
            .map(|_| {
                let ran = ran.clone();
                tokio::spawn(limiter.to_thread(move || ran.incr()))
            })
            .collect();
        tokio::task::yield_now().await;
        assert!(calls.iter().all(|call| !call.is_finished()));
    });
    drop(gone);
    gate.open();
    here.block_on(holder).unwrap().unwrap();
    // Every call of the runtime that went away was passed over, not run.
    assert_eq!(ran.get(), 0);
    assert_eq!(
        (limiter.borrowed_tokens(), limiter.available_tokens()),
        (0, 1)
    );
    assert_eq!(here.block_on(limiter.to_thread(|| 7)).unwrap(), 7);
}

/// Polls `fut` once, with a waker that does nothing.
fn poll_once<F: std::future::Future + Unpin>(fut: &mut F) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(fut).poll(&mut cx)
}

threads_spec! {
    /// A thread that finishes a call runs the next waiting one itself, with the token it
    /// holds: a queue of calls drains through the threads holding the tokens, without a
    /// hand-off to the blocking pool per call, and a call that panics does not stop its
    /// thread from running the next.
    async fn queued_calls_run_on_the_threads_that_hold_the_tokens() {
        let limiter = CapacityLimiter::new(2);
        let (gate, running) = (ThreadGate::new(), Signals::new());
        let holders: Vec<_> = (0..2)
            .map(|_| {
                let (gate, running) = (gate.clone(), running.clone());
                tokio::spawn(limiter.to_thread(move || {
                    running.send();
                    gate.wait();
                    std::thread::current().id()
                }))
            })
            .collect();
        running.wait(2).await;
        // A hundred calls wait for the two tokens; polled once, each is in the queue.
        let mut calls: Vec<_> = (0..100)
            .map(|i| {
                Box::pin(limiter.to_thread(move || {
                    assert_ne!(i, 50, "call 50 fails");
                    std::thread::current().id()
                }))
            })
            .collect();
        for call in &mut calls {
            assert!(poll_once(call).is_pending());
        }
        gate.open();
        let mut threads = HashSet::new();
        for holder in holders {
            threads.insert(holder.await.unwrap().unwrap());
        }
        let results = futures::future::join_all(calls).await;
        for (i, result) in results.into_iter().enumerate() {
            match result {
                Ok(thread) => assert!(threads.contains(&thread), "call {i} ran elsewhere"),
                Err(ToThreadError::Panicked { message }) if i == 50 => {
                    assert!(message.contains("call 50 fails"), "{message}");
                }
                Err(e) => panic!("call {i}: {e}"),
            }
        }
        assert_eq!(limiter.borrowed_tokens(), 0);
    }
}

/// A call waiting behind a call of another runtime runs on a thread of its own runtime:
/// the thread that gives the token back hands it to that runtime's blocking pool rather
/// than running it itself, so every call is shut down with the runtime that made it.
#[test]
fn a_waiting_call_runs_on_the_runtime_that_made_it() {
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    };
    let (here, there) = (runtime(), runtime());
    let limiter = CapacityLimiter::new(1);
    let (gate, running) = (ThreadGate::new(), Signals::new());
    let current = || tokio::runtime::Handle::current().id();
    let holder = here.spawn(limiter.to_thread({
        let (gate, running) = (gate.clone(), running.clone());
        move || {
            running.send();
            gate.wait();
            current()
        }
    }));
    here.block_on(running.wait(1));
    // Behind it, a call of the other runtime, then one of this runtime again.
    let theirs = there.spawn(limiter.to_thread(current));
    there.block_on(async {
        while limiter.available_tokens() != 0 || theirs.is_finished() {
            tokio::task::yield_now().await;
        }
    });
    let mut ours = Box::pin(limiter.to_thread(current));
    here.block_on(async { assert!(poll_once(&mut ours).is_pending()) });
    gate.open();
    assert_eq!(here.block_on(holder).unwrap().unwrap(), here.handle().id());
    assert_eq!(
        there.block_on(theirs).unwrap().unwrap(),
        there.handle().id()
    );
    assert_eq!(here.block_on(ours).unwrap(), here.handle().id());
}

#[test]
#[should_panic(expected = "at least one token")]
fn a_limiter_of_zero_tokens_is_refused() {
    let _ = CapacityLimiter::new(0);
}

// ---- ThreadPool ---------------------------------------------------------------------

/// A value whose drop panics: what a job returns when nobody takes its result.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("a result's destructor panicked");
    }
}

threads_spec! {
    async fn a_worker_survives_a_panic_around_its_job() {
        // The job's result is dropped on the worker, unreceived, and its destructor panics:
        // the worker must go on, counted right, and the pool must still shut down.
        let pool = ThreadPool::new(1).unwrap();
        let (running, gate) = (Signals::new(), ThreadGate::new());
        let job = pool
            .submit({
                let (running, gate) = (running.clone(), gate.clone());
                move || {
                    running.send();
                    gate.wait();
                    PanicsOnDrop
                }
            })
            .unwrap();
        running.wait(1).await;
        job.detach();
        gate.open();
        assert_eq!(pool.submit(|| 2).unwrap().await, Ok(2));
        pool.shutdown(false).await;
        assert_eq!(pool.threads(), 0);
    }
}

threads_spec! {
    async fn a_pool_job_returns_its_result_or_its_panic_14_1() {
        // §14.1, through `run_in_executor(pool, f)`.
        let pool = ThreadPool::new(2).unwrap();
        assert_eq!(pool.submit(|| 6 * 7).unwrap().await, Ok(42));
        let err = pool.submit(|| -> u8 { panic!("bad input") }).unwrap().await;
        assert_eq!(err, Err(JobError::Panicked { message: "bad input".into() }));
        // The worker survived the panic.
        assert_eq!(pool.submit(|| 1).unwrap().await, Ok(1));
        pool.shutdown(false).await;
    }
}

threads_spec! {
    async fn a_pending_job_that_is_cancelled_never_runs_14_7() {
        // §14.7: cancel() works until the job starts; a running job cannot be cancelled.
        let pool = ThreadPool::new(1).unwrap();
        let ran = Counter::new();
        let (first, gate) = occupy_worker(&pool).await;
        let r = ran.clone();
        let second = pool.submit(move || r.incr()).unwrap();
        assert!(!first.cancel(), "a running job cannot be cancelled");
        assert!(second.cancel());
        assert!(second.cancel(), "cancel() stays true");
        assert!(second.is_cancelled());
        // Awaiting a cancelled job does not wait for the worker to reach it.
        assert_eq!(second.await, Err(JobError::Cancelled));
        gate.open();
        assert_eq!(first.await, Ok("finished"));
        pool.shutdown(false).await;
        assert_eq!(ran.get(), 0);
    }
}

threads_spec! {
    async fn dropping_the_handle_of_a_pending_job_cancels_it_and_detach_does_not() {
        // Cancelling the task that awaits `run_in_executor` cancels a job not yet started.
        let pool = ThreadPool::new(1).unwrap();
        let ran = Log::new();
        let (first, gate) = occupy_worker(&pool).await;
        let (dropped, detached) = (ran.clone(), ran.clone());
        let caller = tokio::spawn(pool.submit(move || dropped.push("dropped")).unwrap());
        caller.abort();
        assert!(caller.await.unwrap_err().is_cancelled());
        pool.submit(move || detached.push("detached")).unwrap().detach();
        gate.open();
        first.await.unwrap();
        pool.shutdown(false).await;
        assert_eq!(ran.events(), ["detached"]);
    }
}

threads_spec! {
    async fn shutdown_runs_the_queued_jobs_then_waits_for_the_threads() {
        let pool = ThreadPool::new(1).unwrap();
        let ran = Counter::new();
        let (first, gate) = occupy_worker(&pool).await;
        let queued: Vec<_> = (0..3)
            .map(|_| {
                let r = ran.clone();
                pool.submit(move || r.incr()).unwrap()
            })
            .collect();
        let mut shutdown = spawn(pool.shutdown(false));
        assert_pending!(shutdown.poll());
        assert!(pool.is_shut_down());
        gate.open();
        shutdown.await;
        assert_eq!(ran.get(), 3);
        assert_eq!(pool.threads(), 0);
        first.await.unwrap();
        for job in queued {
            job.await.unwrap();
        }
    }
}

threads_spec! {
    async fn shutdown_with_cancel_pending_cancels_the_queued_jobs() {
        // `shutdown(cancel_futures=True)`: the running job finishes, the queued ones never run.
        let pool = ThreadPool::new(1).unwrap();
        let ran = Counter::new();
        let (first, gate) = occupy_worker(&pool).await;
        let queued: Vec<_> = (0..3)
            .map(|_| {
                let r = ran.clone();
                pool.submit(move || r.incr()).unwrap()
            })
            .collect();
        assert_eq!(pool.close(true), 3);
        for job in queued {
            // As asyncio's `fut.cancelled()` is.
            assert!(job.is_cancelled(), "a job cancelled by close(true) says so");
            assert!(!job.is_started());
            assert_eq!(job.await, Err(JobError::Cancelled));
        }
        gate.open();
        pool.shutdown(true).await;
        assert_eq!(first.await, Ok("finished"));
        assert_eq!(ran.get(), 0);
    }
}

threads_spec! {
    async fn submitting_after_shutdown_is_refused_with_the_closure() {
        let pool = ThreadPool::new(2).unwrap();
        pool.shutdown(false).await;
        let err = pool.submit(|| 5).unwrap_err();
        assert!(err.is_shutdown());
        assert_eq!(
            err.to_string(),
            "cannot submit new jobs after the thread pool is shut down"
        );
        assert_eq!(err.into_inner()(), 5);
        // Dropping a pool shuts it down too; a map over it ends with an error.
        let dropped = ThreadPool::new(1).unwrap();
        let map = dropped.map(|x| x, 0..3);
        drop(dropped);
        let out: Vec<_> = map.collect().await;
        assert_eq!(out, [Err(JobError::Shutdown)]);
    }
}

threads_spec! {
    async fn map_yields_results_in_input_order() {
        // Item 0 waits for item 1 to finish, so the results arrive out of order.
        let pool = ThreadPool::new(2).unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let rx = Mutex::new(rx);
        let tx = Mutex::new(tx);
        let out: Vec<_> = pool
            .map(move |i| {
                if i == 0 {
                    rx.lock().unwrap().recv().unwrap();
                } else {
                    tx.lock().unwrap().send(()).unwrap();
                }
                i * 10
            }, 0..2)
            .collect()
            .await;
        assert_eq!(out, [Ok(0), Ok(10)]);
        let squares: Vec<_> = pool.map(|x| x * x, 0..50u64).collect().await;
        assert_eq!(squares, (0..50u64).map(|x| Ok(x * x)).collect::<Vec<_>>());
    }
}

threads_spec! {
    async fn map_is_lazy_and_bounds_the_jobs_in_flight() {
        let pool = ThreadPool::new(4).unwrap();
        let taken = Arc::new(AtomicUsize::new(0));
        let seen = Concurrency::default();
        let gate = ThreadGate::new();
        let items = {
            let taken = Arc::clone(&taken);
            (0..10).inspect(move |_| {
                taken.fetch_add(1, Ordering::SeqCst);
            })
        };
        let (s, g) = (seen.clone(), gate.clone());
        let mut map = pool
            .map(move |i| {
                s.enter();
                g.wait();
                s.leave();
                i
            }, items)
            .buffered(2);
        assert_eq!(taken.load(Ordering::SeqCst), 0, "nothing is taken before a poll");
        {
            let mut next = spawn(map.next());
            assert_pending!(next.poll());
        }
        assert_eq!(taken.load(Ordering::SeqCst), 2, "two jobs ahead, no more");
        gate.open();
        let rest: Vec<_> = map.collect().await;
        assert_eq!(rest, (0..10).map(Ok).collect::<Vec<_>>());
        assert_eq!(taken.load(Ordering::SeqCst), 10);
        assert!(seen.max() <= 2, "at most two jobs ran at once: {}", seen.max());
    }
}

threads_spec! {
    async fn the_initializer_runs_once_on_each_thread() {
        // Three jobs that wait for each other force three threads; the rest reuse them.
        let inits: Arc<Mutex<HashMap<ThreadId, usize>>> = Arc::default();
        let i = Arc::clone(&inits);
        let pool = ThreadPool::builder()
            .max_workers(3)
            .thread_name_prefix("decoder")
            .initializer(move || {
                *i.lock().unwrap().entry(std::thread::current().id()).or_default() += 1;
            })
            .build().unwrap();
        let barrier = Arc::new(std::sync::Barrier::new(3));
        let mut jobs = Vec::new();
        for n in 0..12 {
            let barrier = Arc::clone(&barrier);
            jobs.push(pool.submit(move || {
                if n < 3 {
                    barrier.wait();
                }
                let me = std::thread::current();
                (me.id(), me.name().unwrap().to_owned())
            }).unwrap());
        }
        let mut threads = HashSet::new();
        for job in jobs {
            let (id, name) = job.await.unwrap();
            assert!(name.starts_with("decoder-"), "{name}");
            threads.insert(id);
        }
        pool.shutdown(false).await;
        let inits = inits.lock().unwrap();
        assert_eq!(threads.len(), 3);
        assert_eq!(inits.len(), 3);
        assert!(inits.values().all(|&n| n == 1));
        assert!(threads.iter().all(|t| inits.contains_key(t)));
    }
}

threads_spec! {
    async fn a_panicking_initializer_breaks_the_pool() {
        // CPython's BrokenThreadPool: queued jobs fail, later submits are refused.
        let pool = ThreadPool::builder()
            .max_workers(1)
            .initializer(|| panic!("no licence"))
            .build().unwrap();
        let err = pool.submit(|| 1).unwrap().await.unwrap_err();
        let JobError::Broken { message } = err else {
            panic!("expected a broken pool, got {err:?}");
        };
        assert!(message.contains("no licence"), "{message}");
        let refused = pool.submit(|| 2).unwrap_err();
        assert!(!refused.is_shutdown());
        assert!(refused.broken_message().unwrap().contains("no licence"));
        pool.shutdown(false).await;
    }
}

// ---- a recording subscriber ---------------------------------------------------------

/// Records each event with the name of the span current on its thread and the thread, and
/// answers `Span::current()` from the spans entered on each thread.
#[derive(Default)]
struct Recorder {
    spans: Mutex<HashMap<u64, &'static tracing::Metadata<'static>>>,
    stacks: Mutex<HashMap<ThreadId, Vec<u64>>>,
    events: Mutex<Vec<(String, Option<String>, ThreadId)>>,
    next_id: AtomicUsize,
}

impl Recorder {
    fn leaked() -> &'static Recorder {
        Box::leak(Box::default())
    }

    fn events(&self) -> Vec<(String, Option<String>, ThreadId)> {
        self.events.lock().unwrap().clone()
    }
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for &'static Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }

    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst) as u64 + 1;
        self.spans.lock().unwrap().insert(id, attrs.metadata());
        tracing::span::Id::from_u64(id)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let span = self.current_span().metadata().map(|m| m.name().to_owned());
        let thread = std::thread::current().id();
        self.events.lock().unwrap().push((message.0, span, thread));
    }

    /// The innermost span entered on the calling thread: what `Span::current()` asks.
    fn current_span(&self) -> tracing_core::span::Current {
        let thread = std::thread::current().id();
        let top = self
            .stacks
            .lock()
            .unwrap()
            .get(&thread)
            .and_then(|stack| stack.last().copied());
        match top.and_then(|id| Some((id, *self.spans.lock().unwrap().get(&id)?))) {
            Some((id, metadata)) => {
                tracing_core::span::Current::new(tracing::span::Id::from_u64(id), metadata)
            }
            None => tracing_core::span::Current::none(),
        }
    }

    fn enter(&self, span: &tracing::span::Id) {
        let thread = std::thread::current().id();
        let mut stacks = self.stacks.lock().unwrap();
        stacks.entry(thread).or_default().push(span.into_u64());
    }

    fn exit(&self, _: &tracing::span::Id) {
        let thread = std::thread::current().id();
        if let Some(stack) = self.stacks.lock().unwrap().get_mut(&thread) {
            stack.pop();
        }
    }
}

threads_spec! {
    /// `wait` takes a thread pool's job handles as it takes a group's tasks, and leaves
    /// the unfinished ones running, in the handles it was given.
    async fn wait_takes_job_handles_and_returns_the_finished_ones() {
        let pool = ThreadPool::new(2).unwrap();
        let gate = ThreadGate::new();
        let g = gate.clone();
        let mut pending = vec![
            pool.submit(move || {
                g.wait();
                "slow"
            })
            .unwrap(),
            pool.submit(|| -> &'static str { panic!("bad frame") }).unwrap(),
        ];
        let done = aio::wait(&mut pending, aio::ReturnWhen::FirstError).await;
        assert_eq!(done.len(), 1);
        let err = done.into_iter().next().unwrap().await.unwrap_err();
        assert!(matches!(err, JobError::Panicked { .. }), "{err:?}");
        gate.open();
        let rest = aio::wait(&mut pending, aio::ReturnWhen::AllCompleted).await;
        assert!(pending.is_empty());
        assert_eq!(rest.into_iter().next().unwrap().await, Ok("slow"));
    }
}

#[test]
fn a_thread_pool_of_no_workers_is_a_build_error_not_a_panic() {
    assert_eq!(ThreadPool::new(0).unwrap_err(), aio::BuildError::NoWorkers);
    assert_eq!(
        ThreadPool::builder().max_workers(0).build().unwrap_err(),
        aio::BuildError::NoWorkers
    );
}
