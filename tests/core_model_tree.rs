//! The model's scenarios: a tree of constructs ([`Node`]) and the seeded generator that
//! draws one ([`Gen`]).

use std::fmt::{self, Write as _};

/// splitmix64: small, seedable, good enough to draw scenarios.
struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5eed_a10c_0de5_1234)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub(crate) fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub(crate) fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len() as u64) as usize]
    }
}

pub(crate) type Id = u32;

/// Durations are in milliseconds, virtual on paused time and real otherwise. The sets are
/// small so that deadlines and wake-ups often coincide.
const TICKS: &[u64] = &[1, 2, 3, 5, 8];
const DEADLINES: &[u64] = &[0, 1, 2, 3, 5, 8];
const GRACES: &[u64] = &[0, 1, 3, 10];
const MAX_DEPTH: u32 = 5;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Leaf {
    /// Succeeds after the delay (at once, without suspending, for 0).
    Ok(u64),
    /// Fails with the error `F<id>` after the delay.
    Fail(u64),
    /// Panics with `ModelPanic(id)` after the delay.
    Panic(u64),
    /// Never finishes on its own.
    Forever,
}

/// What the code after a timeout does with `Elapsed`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum OnElapsed {
    /// `?`: the error `E<id>` fails whatever is around.
    Propagate,
    /// `.ok()`: carry on (Trio's `move_on_after`).
    CarryOn,
}

/// A scenario: a tree of constructs. Every node has an id unique in its tree.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    Leaf {
        id: Id,
        kind: Leaf,
    },
    /// Runs its steps in order, stopping at the first error (`?`).
    Seq {
        id: Id,
        steps: Vec<Node>,
    },
    /// `TaskGroup::builder()...scope(..)`: the body spawns the canceller (first, so that a
    /// limit cannot hold it back) and the tasks, then runs `body`.
    Group {
        id: Id,
        supervisor: bool,
        limit: Option<usize>,
        grace: Option<u64>,
        canceller: Option<Box<Node>>,
        tasks: Vec<Node>,
        body: Box<Node>,
    },
    /// A task of its group that calls `tg.cancel()` after a delay.
    Canceller {
        id: Id,
        after: u64,
    },
    Timeout {
        id: Id,
        after: u64,
        on_elapsed: OnElapsed,
        inner: Box<Node>,
    },
    /// `shield(inner)`, or `shield(inner).timeout(d)`.
    Shield {
        id: Id,
        timeout: Option<(u64, OnElapsed)>,
        inner: Box<Node>,
    },
    OnCancel {
        id: Id,
        work: Box<Node>,
        cleanup: Box<Node>,
    },
    /// `tokio::select! { biased; r = inner => r, _ = sleep(after) => Ok(()) }`: a hard
    /// drop.
    Select {
        id: Id,
        after: u64,
        inner: Box<Node>,
    },
}

/// Where a node sits in its parent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Role {
    Root,
    Step,
    Canceller,
    Task,
    Body,
    Inner,
    Work,
    Cleanup,
}

impl Node {
    pub(crate) fn id(&self) -> Id {
        match self {
            Node::Leaf { id, .. }
            | Node::Seq { id, .. }
            | Node::Group { id, .. }
            | Node::Canceller { id, .. }
            | Node::Timeout { id, .. }
            | Node::Shield { id, .. }
            | Node::OnCancel { id, .. }
            | Node::Select { id, .. } => *id,
        }
    }

    pub(crate) fn children(&self) -> Vec<(Role, &Node)> {
        match self {
            Node::Leaf { .. } | Node::Canceller { .. } => Vec::new(),
            Node::Seq { steps, .. } => steps.iter().map(|s| (Role::Step, s)).collect(),
            Node::Group {
                canceller,
                tasks,
                body,
                ..
            } => canceller
                .iter()
                .map(|c| (Role::Canceller, &**c))
                .chain(tasks.iter().map(|t| (Role::Task, t)))
                .chain([(Role::Body, &**body)])
                .collect(),
            Node::Timeout { inner, .. }
            | Node::Shield { inner, .. }
            | Node::Select { inner, .. } => {
                vec![(Role::Inner, &**inner)]
            }
            Node::OnCancel { work, cleanup, .. } => {
                vec![(Role::Work, &**work), (Role::Cleanup, &**cleanup)]
            }
        }
    }

    pub(crate) fn label(&self) -> String {
        let elapsed = |mode: OnElapsed| match mode {
            OnElapsed::Propagate => "Elapsed?",
            OnElapsed::CarryOn => "Elapsed.ok()",
        };
        match self {
            Node::Leaf { id, kind } => match kind {
                Leaf::Ok(0) => "ok at once".into(),
                Leaf::Ok(d) => format!("ok after {d}ms"),
                Leaf::Fail(d) => format!("fail F{id} after {d}ms"),
                Leaf::Panic(d) => format!("panic P{id} after {d}ms"),
                Leaf::Forever => "pending forever".into(),
            },
            Node::Seq { .. } => "seq".into(),
            Node::Group {
                supervisor,
                limit,
                grace,
                ..
            } => {
                let mut s = String::from(if *supervisor {
                    "group supervisor"
                } else {
                    "group fail-fast"
                });
                if let Some(n) = limit {
                    let _ = write!(s, " limit={n}");
                }
                if let Some(g) = grace {
                    let _ = write!(s, " grace={g}ms");
                }
                s
            }
            Node::Canceller { after, .. } => format!("tg.cancel() after {after}ms"),
            Node::Timeout {
                after, on_elapsed, ..
            } => format!("timeout({after}ms) {}", elapsed(*on_elapsed)),
            Node::Shield { timeout: None, .. } => "shield".into(),
            Node::Shield {
                timeout: Some((after, mode)),
                ..
            } => format!("shield.timeout({after}ms) {}", elapsed(*mode)),
            Node::OnCancel { .. } => "on_cancel".into(),
            Node::Select { after, .. } => format!("select! against sleep({after}ms)"),
        }
    }

    pub(crate) fn render(&self, role: Role, depth: usize, out: &mut String) {
        let role = match role {
            Role::Root | Role::Step | Role::Inner => "",
            Role::Canceller => "canceller ",
            Role::Task => "task ",
            Role::Body => "body ",
            Role::Work => "work ",
            Role::Cleanup => "cleanup ",
        };
        let _ = writeln!(
            out,
            "{:indent$}{role}#{} {}",
            "",
            self.id(),
            self.label(),
            indent = depth * 2
        );
        for (role, child) in self.children() {
            child.render(role, depth + 1, out);
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.render(Role::Root, 0, &mut s);
        f.write_str(&s)
    }
}

/// Draws a scenario. `bounded` says whether something is sure to cancel the code being
/// drawn (a timeout, a hard drop, a `cancel()`, up to the nearest shield): only then may it
/// hold a leaf that never finishes.
pub(crate) struct Gen {
    rng: Rng,
    next_id: Id,
    budget: u32,
}

impl Gen {
    pub(crate) fn scenario(seed: u64) -> Node {
        let mut rng = Rng::new(seed);
        let budget = 8 + rng.below(14) as u32;
        let mut g = Gen {
            rng,
            next_id: 0,
            budget,
        };
        g.node(0, false)
    }

    pub(crate) fn id(&mut self) -> Id {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    pub(crate) fn node(&mut self, depth: u32, bounded: bool) -> Node {
        if depth >= MAX_DEPTH || self.budget == 0 {
            return self.leaf(bounded);
        }
        self.budget -= 1;
        let roll = self.rng.below(100);
        // The root is always a construct.
        let roll = if depth == 0 { 30 + roll % 70 } else { roll };
        match roll {
            0..30 => self.leaf(bounded),
            30..40 => {
                let id = self.id();
                let n = 2 + self.rng.below(2);
                let mut steps = Vec::new();
                // Code that runs on after a shield, in a scope that may have been cancelled
                // meanwhile: it opens constructs in an already-cancelled scope.
                if self.rng.chance(30) {
                    let shield = self.id();
                    let kind = Leaf::Ok(self.rng.pick(TICKS));
                    let inner = Box::new(Node::Leaf {
                        id: self.id(),
                        kind,
                    });
                    steps.push(Node::Shield {
                        id: shield,
                        timeout: None,
                        inner,
                    });
                }
                steps.extend((0..n).map(|_| self.node(depth + 1, bounded)));
                Node::Seq { id, steps }
            }
            40..62 => self.group(depth, bounded),
            62..77 => {
                let id = self.id();
                let after = self.rng.pick(DEADLINES);
                let on_elapsed = self.on_elapsed();
                let inner = Box::new(self.node(depth + 1, true));
                Node::Timeout {
                    id,
                    after,
                    on_elapsed,
                    inner,
                }
            }
            77..84 => {
                let id = self.id();
                let timeout = self
                    .rng
                    .chance(50)
                    .then(|| (self.rng.pick(DEADLINES), self.on_elapsed()));
                let inner = Box::new(self.node(depth + 1, timeout.is_some()));
                Node::Shield { id, timeout, inner }
            }
            84..94 => {
                let id = self.id();
                let work = Box::new(self.node(depth + 1, bounded));
                // Cleanup runs shielded: nothing outside cancels it.
                let cleanup = Box::new(self.node(depth + 2, false));
                Node::OnCancel { id, work, cleanup }
            }
            _ => {
                let id = self.id();
                let after = self.rng.pick(TICKS);
                let inner = Box::new(self.node(depth + 1, true));
                Node::Select { id, after, inner }
            }
        }
    }

    pub(crate) fn group(&mut self, depth: u32, bounded: bool) -> Node {
        let id = self.id();
        let supervisor = self.rng.chance(25);
        let limit = self.rng.chance(25).then(|| 1 + self.rng.below(2) as usize);
        let grace = self.rng.chance(30).then(|| self.rng.pick(GRACES));
        let canceller = self.rng.chance(25).then(|| {
            Box::new(Node::Canceller {
                id: self.id(),
                after: self.rng.pick(TICKS),
            })
        });
        let bounded = bounded || canceller.is_some();
        let n = self.rng.below(4);
        let tasks = (0..n).map(|_| self.node(depth + 1, bounded)).collect();
        let body = Box::new(self.node(depth + 1, bounded));
        Node::Group {
            id,
            supervisor,
            limit,
            grace,
            canceller,
            tasks,
            body,
        }
    }

    pub(crate) fn leaf(&mut self, bounded: bool) -> Node {
        let id = self.id();
        let d = self.rng.pick(TICKS);
        let kind = match self.rng.below(100) {
            0..3 => Leaf::Panic(d),
            3..33 => Leaf::Fail(d),
            33..40 => Leaf::Ok(0),
            40..70 => Leaf::Ok(d),
            _ if bounded => Leaf::Forever,
            _ => Leaf::Ok(d),
        };
        Node::Leaf { id, kind }
    }

    pub(crate) fn on_elapsed(&mut self) -> OnElapsed {
        if self.rng.chance(50) {
            OnElapsed::Propagate
        } else {
            OnElapsed::CarryOn
        }
    }
}
