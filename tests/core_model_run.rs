//! Running a scenario: the interpreter that turns a [`Node`] into a future that records
//! what it does in a [`Log`], and the two runtimes it runs on.

use std::error::Error;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use aio::{
    BoxError, CancelError, Cancelled, JoinPolicy, TaskGroup, TaskGroupError, on_cancel, shield,
    timeout,
};
use futures::FutureExt;
use tokio::time::{Instant, sleep};

use crate::core_model_tree::{Id, Leaf, Node, OnElapsed};

/// A failure raised by a leaf (`F<id>`) or an `Elapsed` passed on with `?` (`E<id>`).
#[derive(Debug)]
struct ModelError(String);

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for ModelError {}

/// The payload of a leaf's panic.
pub(crate) struct ModelPanic(Id);

/// An error as the model sees it: failures nested in the task groups they went through.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ErrTree {
    Leaf(String),
    /// A group's failures: the task's name (`n<id>`, or `None` for the body) and its error.
    Group(Vec<(Option<String>, ErrTree)>),
    Other(String),
}

impl ErrTree {
    pub(crate) fn of(e: &(dyn Error + 'static)) -> ErrTree {
        if let Some(group) = e.downcast_ref::<TaskGroupError<BoxError>>() {
            if group.is_cancelled() {
                return ErrTree::Other(format!("cancelled group with failures? {group}"));
            }
            return ErrTree::Group(
                group
                    .iter()
                    .map(|f| (f.name().map(String::from), ErrTree::of(&**f.error())))
                    .collect(),
            );
        }
        if let Some(m) = e.downcast_ref::<ModelError>() {
            return ErrTree::Leaf(m.0.clone());
        }
        ErrTree::Other(format!("{e} ({e:?})"))
    }

    pub(crate) fn leaves(&self, out: &mut Vec<String>) {
        match self {
            ErrTree::Leaf(s) => out.push(s.clone()),
            ErrTree::Group(failures) => failures.iter().for_each(|(_, e)| e.leaves(out)),
            ErrTree::Other(s) => out.push(format!("<unexpected error {s}>")),
        }
    }
}

impl fmt::Display for ErrTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErrTree::Leaf(s) => f.write_str(s),
            ErrTree::Other(s) => write!(f, "<{s}>"),
            ErrTree::Group(failures) => {
                f.write_str("[")?;
                for (i, (name, e)) in failures.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {e}", name.as_deref().unwrap_or("body"))?;
                }
                f.write_str("]")
            }
        }
    }
}

/// How a node's future ended.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Out {
    Ok,
    /// An error that stands for a cancellation.
    Cancel,
    Fail(ErrTree),
    /// A leaf's panic; `None` for a panic that no leaf raised.
    Panic(Option<Id>),
}

impl Out {
    pub(crate) fn of(r: &Result<(), BoxError>) -> Out {
        match r {
            Ok(()) => Out::Ok,
            Err(e) if e.as_cancelled().is_some() => Out::Cancel,
            Err(e) => Out::Fail(ErrTree::of(&**e)),
        }
    }

    pub(crate) fn is_failure(&self) -> bool {
        matches!(self, Out::Fail(_) | Out::Panic(_))
    }

    /// The same outcome with a group's failures in a canonical order, for comparisons that
    /// cannot rely on the order failures happened in (real time).
    pub(crate) fn sorted(&self) -> Out {
        fn sort(e: &ErrTree) -> ErrTree {
            match e {
                ErrTree::Group(failures) => {
                    let mut failures: Vec<_> =
                        failures.iter().map(|(n, e)| (n.clone(), sort(e))).collect();
                    failures.sort_by_key(|(n, e)| format!("{n:?}{e}"));
                    ErrTree::Group(failures)
                }
                e => e.clone(),
            }
        }
        match self {
            Out::Fail(e) => Out::Fail(sort(e)),
            o => o.clone(),
        }
    }
}

impl fmt::Display for Out {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Out::Ok => f.write_str("Ok"),
            Out::Cancel => f.write_str("Cancelled"),
            Out::Fail(e) => write!(f, "Err({e})"),
            Out::Panic(Some(id)) => write!(f, "panic P{id}"),
            Out::Panic(None) => f.write_str("a foreign panic"),
        }
    }
}

fn panic_id(payload: &(dyn std::any::Any + Send)) -> Option<Id> {
    payload.downcast_ref::<ModelPanic>().map(|p| p.0)
}

#[derive(Clone, Debug)]
pub(crate) enum Ev {
    /// The node's future was polled for the first time.
    Start(Id),
    End(Id, Out),
    /// The node's future was dropped (after `End`, or without one: it was cancelled).
    Freed(Id),
    /// A timeout (or a shield's timeout) is about to be awaited. `exact` is false when the
    /// deadline is a lower bound (a shield's, in real time).
    TimeoutEnter {
        id: Id,
        deadline: Instant,
        exact: bool,
        cancelled: bool,
    },
    /// The timeout returned to the code after it, which saw `cancelled`.
    TimeoutExit {
        id: Id,
        elapsed: bool,
        cancelled: bool,
    },
    SelectFired(Id),
    /// A canceller is about to call `cancel()`.
    Cancel(Id),
    PanicRaised(Id),
}

pub(crate) struct Record {
    pub(crate) at: Instant,
    pub(crate) ev: Ev,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Record>>>);

impl Log {
    pub(crate) fn push(&self, ev: Ev) {
        let at = Instant::now();
        self.0.lock().unwrap().push(Record { at, ev });
    }
}

// ---------------------------------------------------------------------------------------
// The interpreter
// ---------------------------------------------------------------------------------------

type Res = Result<(), BoxError>;
type BoxFut = Pin<Box<dyn Future<Output = Res> + Send>>;

pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Logs `Freed` when the future holding it goes, after everything it held.
pub(crate) struct Freed {
    log: Log,
    id: Id,
}

impl Drop for Freed {
    fn drop(&mut self) {
        self.log.push(Ev::Freed(self.id));
    }
}

/// Wraps a node's future so that it logs its start, its end and its drop.
fn traced(log: &Log, id: Id, fut: BoxFut) -> BoxFut {
    let log = log.clone();
    Box::pin(async move {
        let _freed = Freed {
            log: log.clone(),
            id,
        };
        log.push(Ev::Start(id));
        match AssertUnwindSafe(fut).catch_unwind().await {
            Ok(r) => {
                log.push(Ev::End(id, Out::of(&r)));
                r
            }
            Err(panic) => {
                log.push(Ev::End(id, Out::Panic(panic_id(&*panic))));
                std::panic::resume_unwind(panic)
            }
        }
    })
}

async fn wait(d: u64) {
    if d > 0 {
        sleep(ms(d)).await;
    }
}

pub(crate) fn elapsed(id: Id, mode: OnElapsed) -> Res {
    match mode {
        OnElapsed::Propagate => Err(ModelError(format!("E{id}")).into()),
        OnElapsed::CarryOn => Ok(()),
    }
}

/// The future a node stands for.
fn build(node: Node, log: &Log) -> BoxFut {
    let id = node.id();
    let l = log.clone();
    let fut: BoxFut = match node {
        Node::Leaf { kind, .. } => Box::pin(async move {
            match kind {
                Leaf::Ok(d) => {
                    wait(d).await;
                    Ok(())
                }
                Leaf::Fail(d) => {
                    wait(d).await;
                    Err(ModelError(format!("F{id}")).into())
                }
                Leaf::Panic(d) => {
                    wait(d).await;
                    l.push(Ev::PanicRaised(id));
                    std::panic::panic_any(ModelPanic(id))
                }
                Leaf::Forever => std::future::pending().await,
            }
        }),
        Node::Seq { steps, .. } => Box::pin(async move {
            for step in steps {
                build(step, &l).await?;
            }
            Ok(())
        }),
        Node::Group {
            supervisor,
            limit,
            grace,
            canceller,
            tasks,
            body,
            ..
        } => Box::pin(async move {
            let mut builder = TaskGroup::<BoxError>::builder();
            if supervisor {
                builder = builder.policy(JoinPolicy::Supervisor);
            }
            if let Some(n) = limit {
                builder = builder.limit(n);
            }
            if let Some(g) = grace {
                builder = builder.grace(ms(g));
            }
            builder
                .scope(move |tg| async move {
                    if let Some(c) = canceller {
                        let Node::Canceller { id: cid, after } = *c else {
                            unreachable!("a group's canceller is a canceller")
                        };
                        let (tg2, l2) = (tg.clone(), l.clone());
                        let cancel = Box::pin(async move {
                            wait(after).await;
                            l2.push(Ev::Cancel(cid));
                            tg2.cancel();
                            Ok(())
                        });
                        tg.spawn_named("canceller", traced(&l, cid, cancel))?;
                    }
                    for task in tasks {
                        let name = format!("n{}", task.id());
                        tg.spawn_named(name, build(task, &l))?;
                    }
                    build(*body, &l).await
                })
                .await
                .map_err(|e| Box::new(e) as BoxError)
        }),
        Node::Canceller { .. } => unreachable!("a canceller is built by its group"),
        Node::Timeout {
            after,
            on_elapsed,
            inner,
            ..
        } => Box::pin(async move {
            let fut = timeout(ms(after), build(*inner, &l));
            let deadline = fut.handle().deadline().expect("a finite deadline");
            l.push(Ev::TimeoutEnter {
                id,
                deadline,
                exact: true,
                cancelled: aio::is_cancelled(),
            });
            let r = fut.await;
            l.push(Ev::TimeoutExit {
                id,
                elapsed: r.is_err(),
                cancelled: aio::is_cancelled(),
            });
            r.unwrap_or_else(|_| elapsed(id, on_elapsed))
        }),
        Node::Shield {
            timeout: None,
            inner,
            ..
        } => Box::pin(async move { shield(build(*inner, &l)).await }),
        Node::Shield {
            timeout: Some((after, mode)),
            inner,
            ..
        } => Box::pin(async move {
            let deadline = Instant::now() + ms(after);
            let fut = shield(build(*inner, &l)).timeout(ms(after));
            l.push(Ev::TimeoutEnter {
                id,
                deadline,
                exact: false,
                cancelled: false,
            });
            let r = fut.await;
            l.push(Ev::TimeoutExit {
                id,
                elapsed: r.is_err(),
                cancelled: false,
            });
            r.unwrap_or_else(|_| elapsed(id, mode))
        }),
        Node::OnCancel { work, cleanup, .. } => Box::pin(async move {
            let l2 = l.clone();
            on_cancel(build(*work, &l), move |_: Cancelled| build(*cleanup, &l2)).await
        }),
        Node::Select { after, inner, .. } => Box::pin(async move {
            let inner = build(*inner, &l);
            tokio::select! {
                biased;
                r = inner => r,
                () = sleep(ms(after)) => {
                    l.push(Ev::SelectFired(id));
                    Ok(())
                }
            }
        }),
    };
    traced(log, id, fut)
}

// ---------------------------------------------------------------------------------------
// Running a scenario
// ---------------------------------------------------------------------------------------

/// How long a scenario may take before it is declared hung: virtual time on the paused
/// runtime, real time otherwise (scenarios take milliseconds there).
pub(crate) const HANG: Duration = Duration::from_secs(60);
/// How long reapers may keep tasks alive after the root returned (the default grace is 5
/// s).
pub(crate) const SETTLE: Duration = Duration::from_secs(20);

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Runtime {
    Paused,
    RealTime,
}

pub(crate) struct Run {
    pub(crate) t0: Instant,
    pub(crate) records: Vec<Record>,
    pub(crate) hung: bool,
    /// Tasks still alive once the reapers' time was up.
    pub(crate) leaked: usize,
}

fn quiet_model_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<ModelPanic>().is_none() {
                default(info);
            }
        }));
    });
}

/// Aborts the process if a scenario spins without finishing: a busy loop stops paused time,
/// so the virtual hang guard would never fire.
struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    pub(crate) fn start(seed: u64, runtime: Runtime) -> Self {
        let (done, wait) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                wait.recv_timeout(Duration::from_secs(120))
            {
                eprintln!("seed {seed} ({runtime:?}) spun for two minutes; aborting");
                std::process::abort();
            }
        });
        Watchdog(Some(done))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.take();
    }
}

pub(crate) fn run(seed: u64, tree: &Node, runtime: Runtime) -> Run {
    quiet_model_panics();
    let rt = match runtime {
        Runtime::Paused => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build(),
        Runtime::RealTime => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
    }
    .unwrap();
    let _watchdog = Watchdog::start(seed, runtime);
    let log = Log::default();
    let (t0, hung, leaked) = rt.block_on(async {
        let t0 = Instant::now();
        let root = build(tree.clone(), &log);
        // The root's end (or panic) is in the log.
        let hung = tokio::time::timeout(HANG, AssertUnwindSafe(root).catch_unwind())
            .await
            .is_err();
        let settle = Instant::now();
        let alive = || {
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        };
        while alive() > 0 && settle.elapsed() < SETTLE {
            sleep(ms(1)).await;
        }
        (t0, hung, alive())
    });
    drop(rt);
    let records = std::mem::take(&mut *log.0.lock().unwrap());
    Run {
        t0,
        records,
        hung,
        leaked,
    }
}
