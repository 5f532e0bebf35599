//! Shrinking: the smallest tree found that still fails the same way, on paused time.

use crate::core_model_check::Checker;
use crate::core_model_run::{Runtime, run};
use crate::core_model_tree::{Leaf, Node, Role};

/// A violation with its ids, names and numbers left out, to tell whether a smaller scenario
/// still fails the same way.
pub(crate) fn category(violation: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in violation.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth > 0 || c.is_ascii_digit() => {}
            _ => out.push(c),
        }
    }
    out
}

/// The trees one step simpler than `n`: a construct replaced by one of its children or by a
/// leaf, a step, a task or an option removed, a leaf made tamer.
fn simpler(n: &Node) -> Vec<Node> {
    let mut out = Vec::new();
    let id = n.id();
    match n {
        Node::Leaf { kind, .. } => {
            let tamer: &[Leaf] = match *kind {
                Leaf::Panic(d) => &[Leaf::Fail(d)],
                Leaf::Fail(d) if d > 1 => &[Leaf::Ok(d), Leaf::Fail(1)],
                Leaf::Fail(d) => &[Leaf::Ok(d)],
                Leaf::Ok(d) if d > 1 => &[Leaf::Ok(0), Leaf::Ok(1)],
                Leaf::Ok(1) => &[Leaf::Ok(0)],
                _ => &[],
            };
            for &kind in tamer {
                out.push(Node::Leaf { id, kind });
            }
        }
        Node::Canceller { .. } => {}
        _ => {
            out.push(Node::Leaf {
                id,
                kind: Leaf::Ok(0),
            });
            for (role, child) in n.children() {
                if role != Role::Canceller {
                    out.push(child.clone());
                }
            }
        }
    }
    match n {
        Node::Seq { steps, .. } => {
            for i in 0..steps.len() {
                let mut steps = steps.clone();
                steps.remove(i);
                out.push(Node::Seq { id, steps });
            }
        }
        Node::Group {
            supervisor,
            limit,
            grace,
            canceller,
            tasks,
            body,
            ..
        } => {
            let group =
                |supervisor, limit, grace, canceller: &Option<Box<Node>>, tasks: Vec<Node>| {
                    Node::Group {
                        id,
                        supervisor,
                        limit,
                        grace,
                        canceller: canceller.clone(),
                        tasks,
                        body: body.clone(),
                    }
                };
            for i in 0..tasks.len() {
                let mut fewer = tasks.clone();
                fewer.remove(i);
                out.push(group(*supervisor, *limit, *grace, canceller, fewer));
            }
            if canceller.is_some() {
                out.push(group(*supervisor, *limit, *grace, &None, tasks.clone()));
            }
            if *supervisor {
                out.push(group(false, *limit, *grace, canceller, tasks.clone()));
            }
            if limit.is_some() {
                out.push(group(*supervisor, None, *grace, canceller, tasks.clone()));
            }
            if grace.is_some() {
                out.push(group(*supervisor, *limit, None, canceller, tasks.clone()));
            }
        }
        Node::Shield {
            timeout: Some(_),
            inner,
            ..
        } => out.push(Node::Shield {
            id,
            timeout: None,
            inner: inner.clone(),
        }),
        _ => {}
    }
    // The same, one level down.
    let children = n.children();
    for (i, (_, child)) in children.iter().enumerate() {
        for simpler_child in simpler(child) {
            out.push(replace_child(n, i, simpler_child));
        }
    }
    out
}

/// `n` with its `i`-th child (in `children()` order) replaced.
fn replace_child(n: &Node, i: usize, child: Node) -> Node {
    let mut n = n.clone();
    let mut slots: Vec<&mut Node> = match &mut n {
        Node::Leaf { .. } | Node::Canceller { .. } => Vec::new(),
        Node::Seq { steps, .. } => steps.iter_mut().collect(),
        Node::Group {
            canceller,
            tasks,
            body,
            ..
        } => canceller
            .iter_mut()
            .map(|c| &mut **c)
            .chain(tasks.iter_mut())
            .chain([&mut **body])
            .collect(),
        Node::Timeout { inner, .. } | Node::Shield { inner, .. } | Node::Select { inner, .. } => {
            vec![&mut **inner]
        }
        Node::OnCancel { work, cleanup, .. } => vec![&mut **work, &mut **cleanup],
    };
    *slots[i] = child;
    n
}

/// Simplifies `tree` while, on paused time, it still shows a violation of the same kind as
/// `violation`.
pub(crate) fn shrink(tree: &Node, violation: &str) -> Node {
    let wanted = category(violation);
    let fails = |t: &Node| {
        let run = run(u64::MAX, t, Runtime::Paused);
        Checker::new(t, &run, Runtime::Paused)
            .check(&run)
            .iter()
            .any(|v| category(v) == wanted)
    };
    let mut best = tree.clone();
    'outer: for _ in 0..500 {
        for candidate in simpler(&best) {
            if fails(&candidate) {
                best = candidate;
                continue 'outer;
            }
        }
        break;
    }
    best
}
