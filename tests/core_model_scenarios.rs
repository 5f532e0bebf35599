//! Scenarios the model found, minimised by hand, each checked on both runtimes. Each one
//! names the invariant of `core_model_check` it holds the core to.

use crate::check_tree;
use crate::core_model_run::Runtime;
use crate::core_model_tree::Node;

/// Builders for hand-written trees; [`numbered`] gives them ids.
mod dsl {
    use crate::core_model_tree::{Leaf, Node, OnElapsed};

    pub(super) fn ok(d: u64) -> Node {
        Node::Leaf {
            id: 0,
            kind: Leaf::Ok(d),
        }
    }

    pub(super) fn fail(d: u64) -> Node {
        Node::Leaf {
            id: 0,
            kind: Leaf::Fail(d),
        }
    }

    pub(super) fn forever() -> Node {
        Node::Leaf {
            id: 0,
            kind: Leaf::Forever,
        }
    }

    pub(super) fn seq(steps: Vec<Node>) -> Node {
        Node::Seq { id: 0, steps }
    }

    pub(super) fn group(tasks: Vec<Node>, body: Node) -> Node {
        Node::Group {
            id: 0,
            supervisor: false,
            limit: None,
            grace: None,
            canceller: None,
            tasks,
            body: Box::new(body),
        }
    }

    pub(super) fn supervisor(tasks: Vec<Node>, body: Node) -> Node {
        Node::Group {
            id: 0,
            supervisor: true,
            limit: None,
            grace: None,
            canceller: None,
            tasks,
            body: Box::new(body),
        }
    }

    /// A fail-fast group that calls `cancel()` after `after` ms.
    pub(super) fn cancelled_group(after: u64, tasks: Vec<Node>, body: Node) -> Node {
        Node::Group {
            id: 0,
            supervisor: false,
            limit: None,
            grace: None,
            canceller: Some(Box::new(Node::Canceller { id: 0, after })),
            tasks,
            body: Box::new(body),
        }
    }

    /// `timeout(after, inner).await?`
    pub(super) fn timeout(after: u64, inner: Node) -> Node {
        Node::Timeout {
            id: 0,
            after,
            on_elapsed: OnElapsed::Propagate,
            inner: Box::new(inner),
        }
    }

    /// `timeout(after, inner).await.ok()`
    pub(super) fn move_on(after: u64, inner: Node) -> Node {
        Node::Timeout {
            id: 0,
            after,
            on_elapsed: OnElapsed::CarryOn,
            inner: Box::new(inner),
        }
    }

    pub(super) fn shield(inner: Node) -> Node {
        Node::Shield {
            id: 0,
            timeout: None,
            inner: Box::new(inner),
        }
    }

    pub(super) fn on_cancel(work: Node, cleanup: Node) -> Node {
        Node::OnCancel {
            id: 0,
            work: Box::new(work),
            cleanup: Box::new(cleanup),
        }
    }

    /// Gives the nodes of `tree` ids in preorder.
    pub(super) fn numbered(mut tree: Node) -> Node {
        fn walk(n: &mut Node, next: &mut u32) {
            let id = match n {
                Node::Leaf { id, .. }
                | Node::Seq { id, .. }
                | Node::Group { id, .. }
                | Node::Canceller { id, .. }
                | Node::Timeout { id, .. }
                | Node::Shield { id, .. }
                | Node::OnCancel { id, .. }
                | Node::Select { id, .. } => id,
            };
            *id = *next;
            *next += 1;
            match n {
                Node::Leaf { .. } | Node::Canceller { .. } => {}
                Node::Seq { steps, .. } => steps.iter_mut().for_each(|s| walk(s, next)),
                Node::Group {
                    canceller,
                    tasks,
                    body,
                    ..
                } => {
                    if let Some(c) = canceller {
                        walk(c, next);
                    }
                    tasks.iter_mut().for_each(|t| walk(t, next));
                    walk(body, next);
                }
                Node::Timeout { inner, .. }
                | Node::Shield { inner, .. }
                | Node::Select { inner, .. } => walk(inner, next),
                Node::OnCancel { work, cleanup, .. } => {
                    walk(work, next);
                    walk(cleanup, next);
                }
            }
        }
        walk(&mut tree, &mut 0);
        tree
    }
}

/// Checks a hand-written scenario on both runtimes.
fn check_scenario(tree: Node) {
    let tree = dsl::numbered(tree);
    let reports: Vec<String> = [Runtime::Paused, Runtime::RealTime]
        .into_iter()
        .filter_map(|runtime| check_tree("scenario", 0, &tree, runtime, false, true))
        .collect();
    assert!(reports.is_empty(), "{}", reports.join("\n"));
}

macro_rules! scenario {
    ($(#[$attr:meta])* fn $name:ident() $tree:block) => {
        $(#[$attr])*
        #[test]
        fn $name() {
            #[allow(unused_imports)]
            use dsl::*;
            check_scenario($tree);
        }
    };
}

scenario! {
    /// 4a: a group that fails on its own while its body's cleanup runs past the deadline
    /// returns its failures; the timeout must pass them on, not `Elapsed`.
    fn a_group_failing_while_it_cleans_up_past_the_deadline_keeps_its_failure() {
        timeout(5, group(vec![fail(1)], on_cancel(forever(), ok(10))))
    }
}

scenario! {
    /// 4a: a task that fails at the very instant of the deadline has its failure collected
    /// (its await had completed); a nested group that ends cancelled must not make the
    /// timeout swallow it.
    fn a_failure_at_the_deadline_instant_is_returned_as_is() {
        timeout(3, group(vec![fail(3)], group(vec![ok(3)], ok(0))))
    }
}

scenario! {
    /// 4a, in a supervisor: the task's failure (1 ms) cancels nothing; the deadline (2 ms)
    /// then cancels the group, which returns the failure it collected. A nested group
    /// ending cancelled must not make the timeout swallow it.
    fn a_supervisors_collected_failure_survives_its_timeout() {
        timeout(2, supervisor(vec![fail(1)], group(vec![], forever())))
    }
}

scenario! {
    /// 4a, with no failing group: the deadline cancels a group, whose `on_cancel` cleanup
    /// then fails; the cleanup's error is the outcome (as with a plain future for work),
    /// not `Elapsed`.
    fn a_cleanup_failure_around_a_group_cancelled_by_the_deadline_is_returned() {
        timeout(2, on_cancel(group(vec![], forever()), fail(1)))
    }
}

scenario! {
    /// 4a, with no group: the timeout's own deadline cancels the work and the cleanup
    /// fails, so the cleanup's error is returned (as it is with a single `on_cancel`); a
    /// nested `on_cancel` that passed the cancellation up first must not turn that error
    /// into `Elapsed`.
    fn a_cleanup_failure_after_the_deadline_is_returned_around_a_nested_on_cancel() {
        timeout(5, on_cancel(on_cancel(forever(), ok(0)), fail(1)))
    }
}

scenario! {
    /// 4b: nested timeouts with one deadline; the inner lets the cancellation through (the
    /// step after it never runs) and the outer reports `Elapsed`.
    fn nested_timeouts_with_one_deadline_report_only_the_outer() {
        timeout(1, seq(vec![move_on(1, forever()), ok(1)]))
    }
}

scenario! {
    /// 4b, across tasks: the inner timeout runs in a task of a group inside the outer one,
    /// and may be polled before the outer at their common deadline.
    fn nested_timeouts_with_one_deadline_across_a_task_report_only_the_outer() {
        timeout(1, group(vec![seq(vec![move_on(1, forever()), ok(1)])], forever()))
    }
}

scenario! {
    /// 4b: a zero timeout opened by code that runs on after a shield, in a scope cancelled
    /// meanwhile, lets the cancellation through.
    fn a_zero_timeout_opened_in_a_cancelled_scope_lets_the_cancellation_through() {
        cancelled_group(1, vec![], seq(vec![shield(ok(2)), move_on(0, ok(1)), ok(1)]))
    }
}

scenario! {
    /// 4b, with a group: the group is cancelled at the instant the timeout inside its task
    /// is due, and first; the timeout lets the cancellation through.
    fn a_timeout_due_as_its_group_is_cancelled_lets_the_cancellation_through() {
        cancelled_group(1, vec![seq(vec![move_on(1, forever()), ok(1)])], ok(0))
    }
}

scenario! {
    /// 4b: the outer timeout (5 ms) cancels the inner one's work; while the work's cleanup
    /// runs, the inner timeout's own, later deadline (8 ms) passes. The inner deadline
    /// cancelled nothing: the inner timeout must let the outer cancellation through instead
    /// of firing and returning `Elapsed` to the next step.
    fn an_inner_deadline_passing_while_an_outer_cancellation_unwinds_is_not_elapsed() {
        timeout(5, seq(vec![move_on(8, on_cancel(forever(), ok(5))), ok(1)]))
    }
}

scenario! {
    /// The same with a failing group as the enclosing scope: the group fails at 1 ms, the
    /// timeout in its body (3 ms) becomes due while the body's cleanup runs.
    fn an_inner_deadline_passing_while_a_failed_group_unwinds_is_not_elapsed() {
        group(vec![fail(1)], seq(vec![move_on(3, on_cancel(forever(), ok(5))), ok(1)]))
    }
}
