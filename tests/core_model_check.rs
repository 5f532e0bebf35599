//! The checker: reads a run's log against its tree and lists what the cancellation model
//! forbids. Its messages name the invariant they break:
//!
//! 1. Nothing outlives its construct: no task starts or ends after its group's scope
//!    returned, nothing inside a timeout, shield or `on_cancel` runs after it returned.
//! 2. Every error raised by a leaf or a cleanup (or an `Elapsed` passed on with `?`) is
//!    reported exactly once, in the `TaskGroupError` of each group it went through, and
//!    never lost; in a subtree a `select!` dropped it may be lost (it is logged), never
//!    reported twice.
//! 3. A cleanup runs exactly once when its work was cancelled, and not at all otherwise (at
//!    most once in a dropped subtree, where the reaper's grace decides).
//! 4. `Elapsed` is returned never before the timeout's own deadline, and only for it: (4a)
//!    a timeout turns only a cancellation into `Elapsed`: a value, a group's failures or
//!    any other error is returned as is, even if the deadline passed meanwhile; (4b) when a
//!    scope around it is cancelled too (an outer timeout with the same or an earlier
//!    deadline, a group that failed or was cancelled), the timeout lets the cancellation
//!    through (the code after it never runs) and that scope reports it; a timeout opened in
//!    an already-cancelled scope never reports `Elapsed`.
//! 5. A panic is re-raised from the outermost scope, with a payload that was raised.
//! 6. Nothing hangs, and no task is left once the reapers are done.
//!
//! On paused time the checker also knows when everything must happen ("timing").

use std::collections::BTreeMap;
use std::time::Duration;

use crate::core_model_run::{ErrTree, Ev, HANG, Out, Run, Runtime, SETTLE, elapsed, ms};
use crate::core_model_tree::{Id, Leaf, Node, OnElapsed, Role};

/// What the log says about one node. Times are offsets from the scenario's start.
#[derive(Default)]
struct Facts {
    starts: Vec<Duration>,
    /// Index in the log, time, outcome.
    ends: Vec<(usize, Duration, Out)>,
    freed: Vec<(usize, Duration)>,
    /// Deadline, exact, cancelled at entry.
    enter: Option<(Duration, bool, bool)>,
    /// Index, time, elapsed, cancelled after.
    exit: Option<(usize, Duration, bool, bool)>,
    fired: Option<Duration>,
    cancel: Option<Duration>,
    /// Every record about this node: index and time.
    events: Vec<(usize, Duration)>,
}

impl Facts {
    pub(crate) fn start(&self) -> Option<Duration> {
        self.starts.first().copied()
    }

    pub(crate) fn end(&self) -> Option<&(usize, Duration, Out)> {
        self.ends.first()
    }

    pub(crate) fn out(&self) -> Option<&Out> {
        self.end().map(|(_, _, o)| o)
    }

    /// Freed without having ended: dropped while running.
    pub(crate) fn dropped_at(&self) -> Option<Duration> {
        match (self.ends.is_empty(), self.freed.first()) {
            (true, Some((_, t))) => Some(*t),
            _ => None,
        }
    }
}

struct Flat<'a> {
    node: &'a Node,
    parent: Option<Id>,
    role: Role,
}

/// `None` is never.
type When = Option<Duration>;

fn min_when(a: When, b: When) -> When {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

pub(crate) fn show(t: When) -> String {
    match t {
        Some(t) => {
            let us = t.as_micros();
            if us % 1000 == 0 {
                format!("{}ms", us / 1000)
            } else {
                format!("{}.{:03}ms", us / 1000, us % 1000)
            }
        }
        None => "never".into(),
    }
}

pub(crate) struct Checker<'a> {
    root: &'a Node,
    nodes: BTreeMap<Id, Flat<'a>>,
    facts: BTreeMap<Id, Facts>,
    paused: bool,
    violations: Vec<String>,
}

impl<'a> Checker<'a> {
    pub(crate) fn new(root: &'a Node, run: &Run, runtime: Runtime) -> Self {
        let mut nodes = BTreeMap::new();
        fn flatten<'a>(
            n: &'a Node,
            parent: Option<Id>,
            role: Role,
            out: &mut BTreeMap<Id, Flat<'a>>,
        ) {
            out.insert(
                n.id(),
                Flat {
                    node: n,
                    parent,
                    role,
                },
            );
            for (role, child) in n.children() {
                flatten(child, Some(n.id()), role, out);
            }
        }
        flatten(root, None, Role::Root, &mut nodes);
        let mut facts: BTreeMap<Id, Facts> =
            nodes.keys().map(|&id| (id, Facts::default())).collect();
        for (i, r) in run.records.iter().enumerate() {
            let at = r.at.saturating_duration_since(run.t0);
            let (Ev::Start(id)
            | Ev::End(id, _)
            | Ev::Freed(id)
            | Ev::TimeoutEnter { id, .. }
            | Ev::TimeoutExit { id, .. }
            | Ev::SelectFired(id)
            | Ev::Cancel(id)
            | Ev::PanicRaised(id)) = &r.ev;
            let f = facts.get_mut(id).expect("a node of the tree");
            f.events.push((i, at));
            match &r.ev {
                Ev::Start(_) => f.starts.push(at),
                Ev::End(_, out) => f.ends.push((i, at, out.clone())),
                Ev::Freed(_) => f.freed.push((i, at)),
                Ev::TimeoutEnter {
                    deadline,
                    exact,
                    cancelled,
                    ..
                } => {
                    f.enter = Some((
                        deadline.saturating_duration_since(run.t0),
                        *exact,
                        *cancelled,
                    ))
                }
                Ev::TimeoutExit {
                    elapsed, cancelled, ..
                } => f.exit = Some((i, at, *elapsed, *cancelled)),
                Ev::SelectFired(_) => f.fired = Some(at),
                Ev::Cancel(_) => f.cancel = Some(at),
                Ev::PanicRaised(_) => {}
            }
        }
        Checker {
            root,
            nodes,
            facts,
            paused: runtime == Runtime::Paused,
            violations: Vec::new(),
        }
    }

    fn fact(&self, id: Id) -> &Facts {
        &self.facts[&id]
    }

    pub(crate) fn node(&self, id: Id) -> &'a Node {
        self.nodes[&id].node
    }

    pub(crate) fn fail(&mut self, msg: String) {
        self.violations.push(msg);
    }

    /// The strict ancestors of `id`, nearest first, each with the role of the child on the
    /// path.
    pub(crate) fn ancestors(&self, id: Id) -> Vec<(Id, Role)> {
        let mut out = Vec::new();
        let mut cur = id;
        while let Some(parent) = self.nodes[&cur].parent {
            out.push((parent, self.nodes[&cur].role));
            cur = parent;
        }
        out
    }

    pub(crate) fn is_fired_select(&self, id: Id) -> bool {
        matches!(self.node(id), Node::Select { .. }) && self.fact(id).fired.is_some()
    }

    /// Whether `id` is inside a subtree that a `select!` dropped.
    pub(crate) fn hard_dropped(&self, id: Id) -> bool {
        self.ancestors(id)
            .iter()
            .any(|&(a, _)| self.is_fired_select(a))
    }

    /// Whether a `select!` that fired lies on the path from `top` (included) down to `id`
    /// (excluded): then `id` may outlive `top`, reaped in the background.
    pub(crate) fn reaped_below(&self, top: Id, id: Id) -> bool {
        for (a, _) in self.ancestors(id) {
            if self.is_fired_select(a) {
                return true;
            }
            if a == top {
                break;
            }
        }
        false
    }

    /// Whether `id` is in a hard-dropped subtree and shielded from the drop (a shield or a
    /// cleanup between it and the `select!`): the reaper's grace decides when it goes.
    pub(crate) fn shielded_from_drop(&self, id: Id) -> bool {
        let mut shielded = false;
        for (a, role) in self.ancestors(id) {
            if self.is_fired_select(a) {
                return shielded;
            }
            if role == Role::Cleanup
                || (role == Role::Inner && matches!(self.node(a), Node::Shield { .. }))
            {
                shielded = true;
            }
        }
        false
    }

    pub(crate) fn descendants(&self, id: Id) -> Vec<Id> {
        self.nodes
            .keys()
            .copied()
            .filter(|&m| self.ancestors(m).iter().any(|&(a, _)| a == id))
            .collect()
    }

    pub(crate) fn describe(&self, id: Id) -> String {
        format!("#{id} ({})", self.node(id).label())
    }

    pub(crate) fn check(mut self, run: &Run) -> Vec<String> {
        if run.hung {
            self.fail(format!(
                "invariant 6: the scenario did not finish within {HANG:?}"
            ));
            return self.violations;
        }
        if run.leaked > 0 {
            self.fail(format!(
                "invariant 6: {} tasks still alive {SETTLE:?} after the scenario returned",
                run.leaked
            ));
        }
        self.check_sanity();
        self.check_nothing_outlives();
        let ids: Vec<Id> = self.nodes.keys().copied().collect();
        for &id in &ids {
            self.check_outcome(id);
        }
        self.check_exactly_once();
        self.check_panics();
        for &id in &ids {
            self.check_timeout(id);
        }
        if self.paused {
            self.check_timing();
        }
        self.violations
    }

    /// Each future starts, ends and is dropped at most once.
    pub(crate) fn check_sanity(&mut self) {
        let mut v = Vec::new();
        for (&id, f) in &self.facts {
            if f.starts.len() > 1 || f.ends.len() > 1 || f.freed.len() > 1 {
                v.push(format!(
                    "{} started {} times, ended {} times, was dropped {} times",
                    self.describe(id),
                    f.starts.len(),
                    f.ends.len(),
                    f.freed.len()
                ));
            }
            if (!f.ends.is_empty() || !f.freed.is_empty()) && f.starts.is_empty() {
                v.push(format!("{} ended without starting", self.describe(id)));
            }
        }
        self.violations.extend(v);
    }

    /// Invariant 1, and its generalisation to every construct: once a construct has
    /// returned (or was dropped), nothing inside it happens any more, except in a subtree
    /// that a `select!` dropped, which the reaper may still be winding down.
    pub(crate) fn check_nothing_outlives(&mut self) {
        let mut v = Vec::new();
        for &n in self.nodes.keys() {
            let f = self.fact(n);
            // A construct a `select!` dropped hands its tasks to the reaper.
            if f.end().is_none() && self.hard_dropped(n) {
                continue;
            }
            let Some(&(end_index, end_at)) = f
                .end()
                .map(|(i, t, _)| (*i, *t))
                .or(f.freed.first().copied())
                .as_ref()
            else {
                continue;
            };
            for m in self.descendants(n) {
                if self.reaped_below(n, m) {
                    continue;
                }
                if let Some(&(i, at)) = self.fact(m).events.iter().find(|(i, _)| *i > end_index) {
                    let what = if matches!(self.node(n), Node::Group { .. }) {
                        "its group's scope returned"
                    } else {
                        "the construct around it returned or was dropped"
                    };
                    v.push(format!(
                        "invariant 1: {} was still active at {} (log #{i}) after {what}: {} at \
                        {} (log #{end_index})",
                        self.describe(m),
                        show(Some(at)),
                        self.describe(n),
                        show(Some(end_at)),
                    ));
                    break;
                }
            }
        }
        self.violations.extend(v);
    }

    /// How each construct's outcome follows from its children's (invariants 2, 3, 4a, 5).
    pub(crate) fn check_outcome(&mut self, id: Id) {
        let node = self.node(id);
        let f = self.fact(id);
        let Some(out) = f.out().cloned() else {
            // Structured constructs wait for what is inside them: once started, they end,
            // unless something outside aio dropped them.
            if f.start().is_some()
                && matches!(
                    node,
                    Node::Group { .. } | Node::Shield { .. } | Node::OnCancel { .. }
                )
                && !self.hard_dropped(id)
                && !self.unwound_by_panic(id)
            {
                let msg = format!("{} started but never returned", self.describe(id));
                self.fail(msg);
            }
            return;
        };
        let expected: Option<Out> = match node {
            Node::Leaf { kind, .. } => Some(match kind {
                Leaf::Ok(_) => Out::Ok,
                Leaf::Fail(_) => Out::Fail(ErrTree::Leaf(format!("F{id}"))),
                Leaf::Panic(_) => Out::Panic(Some(id)),
                Leaf::Forever => {
                    self.fail(format!("{} returned {out}", self.describe(id)));
                    return;
                }
            }),
            Node::Canceller { .. } => Some(Out::Ok),
            Node::Seq { steps, .. } => {
                let mut expected = Some(Out::Ok);
                let mut stopped = false;
                for step in steps {
                    let sf = self.fact(step.id());
                    if stopped {
                        if sf.start().is_some() {
                            let msg = format!(
                                "{} ran after an earlier step of {} ended with an error",
                                self.describe(step.id()),
                                self.describe(id)
                            );
                            self.fail(msg);
                        }
                        continue;
                    }
                    match sf.out() {
                        Some(Out::Ok) => {}
                        Some(o) => {
                            expected = Some(o.clone());
                            stopped = true;
                        }
                        None => {
                            expected = None;
                            stopped = true;
                        }
                    }
                }
                if expected.is_none() {
                    let msg = format!(
                        "{} returned {out} though one of its steps never ended",
                        self.describe(id)
                    );
                    self.fail(msg);
                    return;
                }
                expected
            }
            Node::Group { .. } => self.expected_group(id, &out),
            Node::Timeout {
                on_elapsed, inner, ..
            }
            | Node::Shield {
                timeout: Some((_, on_elapsed)),
                inner,
                ..
            } => {
                let inner_out = self.fact(inner.id()).out().cloned();
                match (f.exit, inner_out) {
                    (Some((_, _, true, _)), Some(inner_out))
                        if !matches!(inner_out, Out::Cancel) =>
                    {
                        let msg = format!(
                            "invariant 4a: {} returned Elapsed, but the future it wraps had \
                            ended with {inner_out}, which must be returned as is",
                            self.describe(id)
                        );
                        self.fail(msg);
                        return;
                    }
                    (Some((_, _, true, _)), _) => Some(Out::of(&elapsed(id, *on_elapsed))),
                    (_, Some(inner_out)) => Some(inner_out),
                    (_, None) => {
                        let msg = format!(
                            "{} returned {out} without Elapsed, though the future it wraps never \
                            ended",
                            self.describe(id)
                        );
                        self.fail(msg);
                        return;
                    }
                }
            }
            Node::Shield { inner, .. } => self.fact(inner.id()).out().cloned(),
            Node::Select { inner, .. } => {
                if f.fired.is_some() {
                    if self.fact(inner.id()).out().is_some() {
                        let msg = format!(
                            "{}: the branch ended, yet the select! took the timer",
                            self.describe(id)
                        );
                        self.fail(msg);
                    }
                    Some(Out::Ok)
                } else {
                    self.fact(inner.id()).out().cloned()
                }
            }
            Node::OnCancel { work, cleanup, .. } => {
                self.expected_on_cancel(id, work.id(), cleanup.id())
            }
        };
        match expected {
            Some(expected) if !self.same_out(&expected, &out) => {
                let msg = format!("{} returned {out}; expected {expected}", self.describe(id));
                self.fail(msg);
            }
            Some(_) => {}
            None => {
                let msg = format!(
                    "{} returned {out} though what it wraps never ended",
                    self.describe(id)
                );
                self.fail(msg);
            }
        }
    }

    pub(crate) fn same_out(&self, a: &Out, b: &Out) -> bool {
        if self.paused {
            a == b
        } else {
            a.sorted() == b.sorted()
        }
    }

    /// Whether a panic unwound through `id`: a panic raised inside it.
    pub(crate) fn unwound_by_panic(&self, id: Id) -> bool {
        self.descendants(id)
            .iter()
            .any(|&m| matches!(self.fact(m).out(), Some(Out::Panic(_))))
    }

    /// A group's outcome: the first panic of the body or a task; else every failure, in the
    /// order they happened, the body's last; else the body's value, or a cancellation.
    pub(crate) fn expected_group(&mut self, id: Id, out: &Out) -> Option<Out> {
        let Node::Group { tasks, body, .. } = self.node(id) else {
            unreachable!()
        };
        let mut ended: Vec<(usize, Option<Id>, Out)> = Vec::new();
        for task in tasks {
            if let Some((i, _, o)) = self.fact(task.id()).end() {
                ended.push((*i, Some(task.id()), o.clone()));
            }
        }
        ended.sort_by_key(|(i, _, _)| *i);
        let body_out = self.fact(body.id()).out().cloned();
        if let Some((i, _, o)) = self.fact(body.id()).end() {
            // The body's failure comes last, whenever it happened.
            ended.push((*i, None, o.clone()));
        }
        // Panics count in the order they happened, the body's included.
        let mut panics: Vec<(usize, Option<Id>)> = ended
            .iter()
            .filter_map(|(i, _, o)| match o {
                Out::Panic(p) => Some((*i, *p)),
                _ => None,
            })
            .collect();
        panics.sort_by_key(|(i, _)| *i);
        let panics: Vec<Option<Id>> = panics.into_iter().map(|(_, p)| p).collect();
        if let Some(first) = panics.first() {
            // Which panic is first is a race in real time; any raised one will do there.
            return match out {
                Out::Panic(p) if !self.paused && panics.contains(p) => Some(out.clone()),
                _ => Some(Out::Panic(*first)),
            };
        }
        let failures: Vec<(Option<String>, ErrTree)> = ended
            .iter()
            .filter_map(|(_, task, o)| match o {
                Out::Fail(e) => Some((task.map(|t| format!("n{t}")), e.clone())),
                _ => None,
            })
            .collect();
        if !failures.is_empty() {
            return Some(Out::Fail(ErrTree::Group(failures)));
        }
        match body_out {
            // A body that returned its value gives it, unless the scope around the group
            // was cancelled while it waited for its tasks.
            Some(Out::Ok) if *out == Out::Cancel => {
                if self.paused {
                    let end = self.fact(id).end().map(|(_, t, _)| *t);
                    let ctime = self.ctimes()[&id];
                    if ctime.is_none_or(|c| Some(c) > end) {
                        let msg = format!(
                            "{} returned Cancelled though its body returned Ok and nothing \
                            around it was cancelled",
                            self.describe(id)
                        );
                        self.fail(msg);
                    }
                }
                Some(Out::Cancel)
            }
            Some(Out::Ok) => Some(Out::Ok),
            _ => Some(Out::Cancel),
        }
    }

    /// Invariant 3: the cleanup runs exactly when the work was cancelled; then its failure,
    /// or else the cancellation, is the outcome.
    pub(crate) fn expected_on_cancel(&mut self, id: Id, work: Id, cleanup: Id) -> Option<Out> {
        let work_out = self.fact(work).out().cloned();
        let cleanup_ran = self.fact(cleanup).start().is_some();
        match work_out {
            Some(o @ (Out::Ok | Out::Fail(_) | Out::Panic(_))) => {
                if cleanup_ran {
                    let msg = format!(
                        "invariant 3: the cleanup of {} ran though its work ended with {o}",
                        self.describe(id)
                    );
                    self.fail(msg);
                }
                Some(o)
            }
            _ => {
                if !cleanup_ran {
                    let msg = format!(
                        "invariant 3: the work of {} was cancelled but its cleanup never ran",
                        self.describe(id)
                    );
                    self.fail(msg);
                    return Some(Out::Cancel);
                }
                match self.fact(cleanup).out() {
                    Some(Out::Ok) => Some(Out::Cancel),
                    Some(o) => Some(o.clone()),
                    None => None,
                }
            }
        }
    }

    /// The errors that were raised (a failing leaf, an `Elapsed` passed on with `?`), each
    /// with the node that raised it.
    pub(crate) fn raised(&self) -> Vec<(String, Id)> {
        let mut raised = Vec::new();
        for (&id, flat) in &self.nodes {
            let f = self.fact(id);
            match flat.node {
                Node::Leaf {
                    kind: Leaf::Fail(_),
                    ..
                } if matches!(f.out(), Some(Out::Fail(_))) => raised.push((format!("F{id}"), id)),
                Node::Timeout {
                    on_elapsed: OnElapsed::Propagate,
                    ..
                }
                | Node::Shield {
                    timeout: Some((_, OnElapsed::Propagate)),
                    ..
                } if matches!(f.exit, Some((_, _, true, _))) => raised.push((format!("E{id}"), id)),
                _ => {}
            }
        }
        raised
    }

    /// Invariant 2: every error raised outside a hard-dropped subtree is reported exactly
    /// once by the root; none is ever reported twice.
    pub(crate) fn check_exactly_once(&mut self) {
        let root = self.root.id();
        let reported = match self.fact(root).out() {
            Some(Out::Panic(_)) | None => return,
            Some(Out::Fail(e)) => {
                let mut leaves = Vec::new();
                e.leaves(&mut leaves);
                leaves
            }
            Some(_) => Vec::new(),
        };
        let raised = self.raised();
        for (error, id) in &raised {
            let count = reported.iter().filter(|r| *r == error).count();
            let dropped = self.hard_dropped(*id);
            if count > 1 {
                self.fail(format!(
                    "invariant 2: {error} raised by {} is reported {count} times",
                    self.describe(*id)
                ));
            } else if count == 0 && !dropped {
                self.fail(format!(
                    "invariant 2: {error} raised by {} was lost: the scenario returned {}",
                    self.describe(*id),
                    self.fact(root).out().unwrap()
                ));
            }
        }
        for r in &reported {
            if !raised.iter().any(|(e, _)| e == r) {
                self.fail(format!("invariant 2: {r} is reported but was never raised"));
            }
        }
    }

    /// Invariant 5: a panic raised outside a hard-dropped subtree is re-raised from the
    /// root, with a payload that was raised; no panic, no re-raise.
    pub(crate) fn check_panics(&mut self) {
        let raised: Vec<Id> = self
            .nodes
            .keys()
            .copied()
            .filter(|&id| {
                matches!(
                    self.node(id),
                    Node::Leaf {
                        kind: Leaf::Panic(_),
                        ..
                    }
                ) && matches!(self.fact(id).out(), Some(Out::Panic(_)))
            })
            .collect();
        let live: Vec<Id> = raised
            .iter()
            .copied()
            .filter(|&id| !self.hard_dropped(id))
            .collect();
        let root = self.root.id();
        match self.fact(root).out() {
            Some(Out::Panic(Some(p))) if !live.contains(p) => self.fail(format!(
                "invariant 5: the scenario panicked with P{p}, which is not a live raised panic \
                ({live:?})"
            )),
            Some(Out::Panic(Some(_))) => {}
            Some(Out::Panic(None)) => self.fail("a panic that no leaf raised escaped".into()),
            Some(out) if !live.is_empty() => self.fail(format!(
                "invariant 5: panics {live:?} were raised but the scenario returned {out}"
            )),
            _ => {}
        }
    }

    /// Invariant 4: `Elapsed` only for a timeout's own deadline, never before it, never
    /// when a scope around it is cancelled too.
    pub(crate) fn check_timeout(&mut self, id: Id) {
        let (shielded, inner) = match self.node(id) {
            Node::Timeout { inner, .. } => (false, inner.id()),
            Node::Shield {
                timeout: Some(_),
                inner,
                ..
            } => (true, inner.id()),
            _ => return,
        };
        let f = self.fact(id);
        let (Some((deadline, exact, entered_cancelled)), Some((_, at, elapsed, cancelled_after))) =
            (f.enter, f.exit)
        else {
            return;
        };
        if !elapsed {
            // (a), conversely: a cancellation by its own deadline alone is `Elapsed`.
            if self.paused
                && at >= deadline
                && self.fact(inner).out() == Some(&Out::Cancel)
                && !cancelled_after
                && !self.explicitly_cancelled_inside(inner)
            {
                let msg = format!(
                    "invariant 4a: {} let its own deadline's cancellation through as Cancelled \
                    instead of Elapsed (deadline {}, returned at {})",
                    self.describe(id),
                    show(Some(deadline)),
                    show(Some(at))
                );
                self.fail(msg);
            }
            return;
        }
        if at < deadline && exact {
            let msg = format!(
                "{} returned Elapsed at {}, before its deadline {}",
                self.describe(id),
                show(Some(at)),
                show(Some(deadline))
            );
            self.fail(msg);
        }
        if shielded {
            return;
        }
        if entered_cancelled {
            let msg = format!(
                "invariant 4b: {} was opened inside an already-cancelled scope, yet returned \
                Elapsed",
                self.describe(id)
            );
            self.fail(msg);
        }
        // An enclosing deadline as early or earlier fired too: it reports, not this one.
        for (a, role) in self.ancestors(id) {
            let crossing_shield =
                role == Role::Inner && matches!(self.node(a), Node::Shield { .. });
            if role == Role::Cleanup
                || (crossing_shield
                    && !matches!(
                        self.node(a),
                        Node::Shield {
                            timeout: Some(_),
                            ..
                        }
                    ))
            {
                break;
            }
            if let Some((outer, outer_exact, _)) = self.fact(a).enter {
                let comparable = self.paused || (exact && outer_exact);
                if comparable && outer <= deadline {
                    let msg = format!(
                        "invariant 4b: {} returned Elapsed though the enclosing {} has the same \
                        or an earlier deadline ({} <= {})",
                        self.describe(id),
                        self.describe(a),
                        show(Some(outer)),
                        show(Some(deadline))
                    );
                    self.fail(msg);
                    break;
                }
            }
            if crossing_shield {
                break;
            }
        }
        if self.paused && cancelled_after {
            let msg = format!(
                "invariant 4b: {} returned Elapsed to code whose scope is cancelled (the code \
                after it ran)",
                self.describe(id)
            );
            self.fail(msg);
        }
    }

    pub(crate) fn explicitly_cancelled_inside(&self, id: Id) -> bool {
        self.descendants(id)
            .iter()
            .chain([&id])
            .any(|&m| self.fact(m).cancel.is_some())
    }

    /// The instant at which the scope each node runs in is cancelled, as far as the log
    /// says: deadlines, `cancel()` calls, failures of fail-fast groups, hard drops; up to
    /// the nearest shield.
    pub(crate) fn ctimes(&self) -> BTreeMap<Id, When> {
        let mut out = BTreeMap::new();
        self.ctime_rec(self.root, None, &mut out);
        out
    }

    pub(crate) fn ctime_rec(&self, n: &Node, c: When, out: &mut BTreeMap<Id, When>) {
        out.insert(n.id(), c);
        let f = self.fact(n.id());
        for (role, child) in n.children() {
            let cc = match n {
                Node::Group { .. } => min_when(c, self.group_cause(n)),
                Node::Timeout { .. } => min_when(c, f.enter.map(|(d, _, _)| d)),
                Node::Shield { timeout, .. } => timeout.and(f.enter.map(|(d, _, _)| d)),
                Node::OnCancel { .. } if role == Role::Cleanup => None,
                Node::Select { .. } => min_when(c, f.fired),
                _ => c,
            };
            self.ctime_rec(child, cc, out);
        }
    }

    pub(crate) fn group_cause(&self, g: &Node) -> When {
        let Node::Group {
            supervisor,
            canceller,
            tasks,
            body,
            ..
        } = g
        else {
            unreachable!()
        };
        let failed_at = |id: Id| match self.fact(id).end() {
            Some((_, t, o)) if o.is_failure() => Some(*t),
            _ => None,
        };
        let mut cause = canceller.as_ref().and_then(|c| self.fact(c.id()).cancel);
        cause = min_when(cause, failed_at(body.id()));
        if !supervisor {
            for task in tasks {
                cause = min_when(cause, failed_at(task.id()));
            }
        }
        cause
    }

    /// Paused time makes the model exact: check when things happened.
    pub(crate) fn check_timing(&mut self) {
        let ctimes = self.ctimes();
        let mut v = Vec::new();
        for (&id, flat) in &self.nodes {
            let f = self.fact(id);
            let Some(start) = f.start() else {
                continue;
            };
            let c = ctimes[&id];
            let dropped = self.hard_dropped(id);
            // A task, a group's body and an `on_cancel`'s work never start in a cancelled
            // scope (at the very instant it is cancelled, either may happen first).
            if matches!(
                flat.role,
                Role::Task | Role::Canceller | Role::Body | Role::Work
            ) && c.is_some_and(|c| start > c)
                && !dropped
            {
                v.push(format!(
                    "timing: {} started at {} though its scope was cancelled at {}",
                    self.describe(id),
                    show(Some(start)),
                    show(c)
                ));
            }
            // A leaf completes if it was due no later than its cancellation; otherwise it
            // is dropped at the instant it is cancelled, or at its first suspension if it
            // started in a cancelled scope.
            if let Node::Leaf { kind, .. } = flat.node {
                if self.shielded_from_drop(id) {
                    continue;
                }
                let due = match kind {
                    Leaf::Ok(d) | Leaf::Fail(d) | Leaf::Panic(d) => Some(start + ms(*d)),
                    Leaf::Forever => None,
                };
                let cut = c.map(|c| c.max(start));
                let completes = match (due, cut) {
                    (Some(due), Some(cut)) => due <= cut,
                    (Some(_), None) => true,
                    (None, _) => false,
                };
                let ended = f.end().map(|(_, t, _)| *t);
                if completes {
                    if ended != due {
                        v.push(format!(
                            "timing: {} started at {}, due at {}, cancelled at {}: it should \
                            have completed at {}, but ended at {} and was dropped at {}",
                            self.describe(id),
                            show(Some(start)),
                            show(due),
                            show(c),
                            show(due),
                            show(ended),
                            show(f.dropped_at())
                        ));
                    }
                } else if let Some(cut) = cut {
                    if ended.is_some() || f.dropped_at() != Some(cut) {
                        v.push(format!(
                            "timing: {} started at {}, due at {}: its scope was cancelled at {}, \
                            so it should have been dropped at {}, but it ended at {} and was \
                            dropped at {}",
                            self.describe(id),
                            show(Some(start)),
                            show(due),
                            show(c),
                            show(Some(cut)),
                            show(ended),
                            show(f.dropped_at())
                        ));
                    }
                }
                continue;
            }
            // aio drops a running construct only when its scope is cancelled.
            if let Some(at) = f.dropped_at() {
                if !dropped && c.is_none_or(|c| c > at) {
                    v.push(format!(
                        "timing: {} was dropped at {}, but its scope was cancelled at {}",
                        self.describe(id),
                        show(Some(at)),
                        show(c)
                    ));
                }
            }
            // A construct returns at the instant the last thing inside it ended.
            if let (Some(&(_, end, _)), false) = (f.end(), flat.node.children().is_empty()) {
                let expected = if let Some(fired) = f.fired {
                    fired
                } else {
                    self.descendants(id)
                        .into_iter()
                        .filter(|&m| !self.reaped_below(id, m))
                        .flat_map(|m| self.fact(m).events.iter().map(|(_, t)| *t))
                        .fold(start, Duration::max)
                };
                if end != expected {
                    v.push(format!(
                        "timing: {} returned at {}; the last thing inside it happened at {}",
                        self.describe(id),
                        show(Some(end)),
                        show(Some(expected))
                    ));
                }
            }
        }
        self.violations.extend(v);
    }
}
