//! A snapshot of the live task tree: what `python -m asyncio pstree` shows for asyncio.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::scope::top_groups;
use crate::{Cancelled, JoinPolicy, ScopeId, TaskId};

/// What a task is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskState {
    /// Waiting for a slot of its group's concurrency limit.
    Queued,
    /// Spawned, not polled yet.
    Scheduled,
    /// Being polled right now.
    Running,
    /// Suspended at an `.await`.
    Suspended,
    /// Done; its group has not dropped it yet.
    Finished,
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskState::Queued => "queued",
            TaskState::Scheduled => "scheduled",
            TaskState::Running => "running",
            TaskState::Suspended => "suspended",
            TaskState::Finished => "finished",
        })
    }
}

/// What a group is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GroupState {
    /// Running its body or waiting for its tasks.
    Running,
    /// Cancelled, and unwinding.
    Cancelled(Cancelled),
    /// Every task is done; the scope is about to return.
    Finishing,
}

impl fmt::Display for GroupState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupState::Running => f.write_str("running"),
            GroupState::Cancelled(cancelled) => write!(f, "{cancelled}"),
            GroupState::Finishing => f.write_str("finishing"),
        }
    }
}

/// One task in a [`TaskTree`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskSnapshot {
    /// The task's id.
    pub id: TaskId,
    /// The task's name, if it was spawned with one.
    pub name: Option<String>,
    /// What it is doing.
    pub state: TaskState,
    /// How long ago it was spawned.
    pub age: Duration,
    /// The groups opened inside it.
    pub groups: Vec<GroupSnapshot>,
}

/// One task group in a [`TaskTree`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GroupSnapshot {
    /// The group's scope id.
    pub id: ScopeId,
    /// The group's name, if it was built with one.
    pub name: Option<String>,
    /// What it is doing.
    pub state: GroupState,
    /// How long ago it was opened.
    pub age: Duration,
    /// What a failure does to it.
    pub policy: JoinPolicy,
    /// Its concurrency limit, if it has one.
    pub limit: Option<usize>,
    /// How many of its tasks wait for a slot of the limit.
    pub queued: usize,
    /// Its running tasks, oldest first.
    pub tasks: Vec<TaskSnapshot>,
    /// The groups opened in its body.
    pub groups: Vec<GroupSnapshot>,
}

/// A snapshot of every task group of the process and everything running in them.
///
/// `Display` draws it as a tree, like `python -m asyncio pstree`:
///
/// ```text
/// task_group scope#3 'crawler' (running, 1.20s, limit 2, 1 queued)
/// ├── task#12 'fetch-1' (suspended, 1.10s)
/// │   └── task_group scope#9 (cancelled: deadline elapsed, 500ms)
/// │       └── task#30 (running, 498ms)
/// ├── task#13 'fetch-2' (suspended, 1.00s)
/// └── task#14 'fetch-3' (queued, 1.00s)
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TaskTree {
    /// The outermost groups, oldest first.
    pub groups: Vec<GroupSnapshot>,
}

/// A snapshot of every live task group in the process: the groups not opened inside
/// another group's task or body, and everything inside them, however deep.
///
/// One clock reading gives every age. Groups and tasks are read one at a time, each under its
/// own lock for a moment and with no lock held in between: the snapshot is not taken at one
/// instant, and a group opened or closed while it is taken may or may not be in it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_core::{BoxError, TaskGroup};
///
/// TaskGroup::<BoxError>::builder().name("workers").scope(|tg| async move {
///     tg.spawn_named("worker-1", async {
///         tokio::time::sleep(std::time::Duration::from_millis(10)).await;
///         Ok(())
///     })?;
///     tokio::task::yield_now().await;
///     let tree = aio_core::task_tree().to_string();
///     assert!(tree.contains("'workers'") && tree.contains("'worker-1' (suspended"));
///     Ok(())
/// })
/// .await
/// .unwrap();
/// # }
/// ```
pub fn task_tree() -> TaskTree {
    // One clock reading for the whole tree, so ages compare across it.
    let now = Instant::now();
    TaskTree {
        groups: top_groups()
            .iter()
            .map(|group| group.snapshot_at(now))
            .collect(),
    }
}

/// Where a snapshot is built from: the live groups, or another snapshot when cloning.
/// [`grow`] asks it for one group or task at a time and keeps the path down the tree on the
/// heap.
pub(crate) trait Unfold {
    type Group;
    type Task;
    type Tasks: Iterator<Item = Self::Task>;
    type Groups: Iterator<Item = Self::Group>;

    /// The group's own fields, with `tasks` and `groups` empty, and what goes in them.
    fn group(&mut self, group: Self::Group) -> (GroupSnapshot, Self::Tasks, Self::Groups);

    /// The task's own fields, with `groups` empty, and what goes in it.
    fn task(&mut self, task: Self::Task) -> (TaskSnapshot, Self::Groups);
}

/// A snapshot being built: its own fields, and the children still to visit.
enum Growing<U: Unfold> {
    Group(GroupSnapshot, U::Tasks, U::Groups),
    Task(TaskSnapshot, U::Groups),
}

impl<U: Unfold> Growing<U> {
    fn group(source: &mut U, group: U::Group) -> Self {
        let (snapshot, tasks, groups) = source.group(group);
        Growing::Group(snapshot, tasks, groups)
    }

    fn task(source: &mut U, task: U::Task) -> Self {
        let (snapshot, groups) = source.task(task);
        Growing::Task(snapshot, groups)
    }
}

/// A finished snapshot, on its way into its parent.
enum Grown {
    Group(GroupSnapshot),
    Task(TaskSnapshot),
}

/// Builds the snapshot that `root` starts, depth first, each group's tasks before the groups
/// of its body, each list in the order the source gives it.
fn grow<U: Unfold>(source: &mut U, root: Growing<U>) -> Grown {
    let mut path = vec![root];
    loop {
        let next = match path.last_mut().expect("the root is popped last") {
            Growing::Group(_, tasks, groups) => match tasks.next() {
                Some(task) => Some(Growing::task(source, task)),
                None => groups.next().map(|group| Growing::group(source, group)),
            },
            Growing::Task(_, groups) => groups.next().map(|group| Growing::group(source, group)),
        };
        if let Some(child) = next {
            path.push(child);
            continue;
        }
        let grown = match path.pop().expect("the root is popped last") {
            Growing::Group(group, ..) => Grown::Group(group),
            Growing::Task(task, _) => Grown::Task(task),
        };
        match (path.last_mut(), grown) {
            (None, grown) => return grown,
            (Some(Growing::Group(parent, ..)), Grown::Task(task)) => parent.tasks.push(task),
            (Some(Growing::Group(parent, ..)), Grown::Group(group)) => parent.groups.push(group),
            (Some(Growing::Task(parent, _)), Grown::Group(group)) => parent.groups.push(group),
            (Some(Growing::Task(..)), Grown::Task(_)) => unreachable!("tasks hold only groups"),
        }
    }
}

/// Builds a group's snapshot from its own fields and what goes in them.
pub(crate) fn grow_group<U: Unfold>(
    source: &mut U,
    (group, tasks, groups): (GroupSnapshot, U::Tasks, U::Groups),
) -> GroupSnapshot {
    match grow(source, Growing::Group(group, tasks, groups)) {
        Grown::Group(group) => group,
        Grown::Task(_) => unreachable!("a group grows into a group"),
    }
}

impl fmt::Display for TaskTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.groups.is_empty() {
            return writeln!(f, "(no task groups)");
        }
        for group in &self.groups {
            group.fmt(f)?;
        }
        Ok(())
    }
}

impl fmt::Display for GroupSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.draw(f, "", "")
    }
}

impl GroupSnapshot {
    fn draw(&self, f: &mut fmt::Formatter<'_>, first: &str, rest: &str) -> fmt::Result {
        write!(f, "{first}task_group {}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " '{name}'")?;
        }
        write!(f, " ({}, {}", self.state, Age(self.age))?;
        if self.policy == JoinPolicy::Supervisor {
            f.write_str(", supervisor")?;
        }
        if let Some(limit) = self.limit {
            write!(f, ", limit {limit}")?;
            if self.queued > 0 {
                write!(f, ", {} queued", self.queued)?;
            }
        }
        writeln!(f, ")")?;
        let count = self.groups.len() + self.tasks.len();
        let children = self
            .groups
            .iter()
            .map(Child::Group)
            .chain(self.tasks.iter().map(Child::Task));
        for (i, child) in children.enumerate() {
            let last = i + 1 == count;
            let (branch, indent) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            let first = format!("{rest}{branch}");
            let rest = format!("{rest}{indent}");
            match child {
                Child::Group(group) => {
                    group.draw(f, &format!("{first}(body) "), &rest)?;
                }
                Child::Task(task) => task.draw(f, &first, &rest)?,
            }
        }
        Ok(())
    }
}

impl TaskSnapshot {
    fn draw(&self, f: &mut fmt::Formatter<'_>, first: &str, rest: &str) -> fmt::Result {
        write!(f, "{first}{}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " '{name}'")?;
        }
        writeln!(f, " ({}, {})", self.state, Age(self.age))?;
        let count = self.groups.len();
        for (i, group) in self.groups.iter().enumerate() {
            let (branch, indent) = if i + 1 == count {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            group.draw(f, &format!("{rest}{branch}"), &format!("{rest}{indent}"))?;
        }
        Ok(())
    }
}

enum Child<'a> {
    Group(&'a GroupSnapshot),
    Task(&'a TaskSnapshot),
}

/// An age as a person reads it: `850µs`, `12ms`, `3.25s`, `2m05s`.
struct Age(Duration);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let age = self.0;
        if age < Duration::from_millis(1) {
            write!(f, "{}µs", age.as_micros())
        } else if age < Duration::from_secs(1) {
            write!(f, "{}ms", age.as_millis())
        } else if age < Duration::from_secs(60) {
            write!(f, "{:.2}s", age.as_secs_f64())
        } else {
            let secs = age.as_secs();
            write!(f, "{}m{:02}s", secs / 60, secs % 60)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_at_the_scale_they_are_at() {
        let age = |d: Duration| Age(d).to_string();
        assert_eq!(age(Duration::from_micros(850)), "850µs");
        assert_eq!(age(Duration::from_millis(12)), "12ms");
        assert_eq!(age(Duration::from_millis(3250)), "3.25s");
        assert_eq!(age(Duration::from_secs(125)), "2m05s");
    }
}
