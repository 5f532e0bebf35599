//! A snapshot of the live task tree: what `python -m asyncio pstree` shows for asyncio.

use std::fmt::{self, Write as _};
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use std::{mem, slice};

use crate::scope::{GroupScope, Node, NodeKind};
use crate::slab::Slab;
use crate::util::lock;
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
///
/// However deep the groups inside it nest, building, drawing, formatting (`Debug` writes
/// what a derived one would), cloning and dropping a snapshot walk it with a stack on the
/// heap, never by recursion: a snapshot of a deep tree cannot overflow the stack of the
/// thread that handles it. Dropping is why it implements `Drop`: take its `groups` out with
/// [`std::mem::take`] rather than by moving the field.
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
///
/// Like a [`TaskSnapshot`], it is handled without recursion however deep it is, and its
/// `tasks` and `groups` are taken out with [`std::mem::take`].
#[non_exhaustive]
pub struct GroupSnapshot {
    /// The group's scope id.
    pub id: ScopeId,
    /// The group's name, if it was built with one; for the group of a `gather`, `race` or
    /// the like, the function and the place it was called from (`gather at src/api.rs:42:17`).
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

// --- Where groups are listed ---------------------------------------------------------

/// Where a group is listed in the task tree: in the node of the task or group it was opened
/// in, or, for an outermost group, in a shard of [`TOP_GROUPS`].
pub(crate) enum Listing {
    In(Arc<Node>, usize),
    Top(usize, usize),
}

const TOP_SHARDS: usize = 8;

/// The outermost groups of the process: those not opened inside a task or group of aio.
static TOP_GROUPS: [Mutex<Slab<Weak<dyn GroupScope>>>; TOP_SHARDS] =
    [const { Mutex::new(Slab::new()) }; TOP_SHARDS];

/// Lists the group whose node is `node` under the task or group it was opened in.
pub(crate) fn list(node: &Node, group: Weak<dyn GroupScope>) -> Listing {
    match container(node) {
        Some(container) => {
            let key = container.list_group(group);
            Listing::In(container, key)
        }
        None => {
            let shard = (node.id().as_u64() % TOP_SHARDS as u64) as usize;
            Listing::Top(shard, lock(&TOP_GROUPS[shard]).insert(group))
        }
    }
}

/// Takes a group off the task tree.
pub(crate) fn unlist(listing: Listing) {
    match listing {
        Listing::In(container, key) => container.unlist_group(key),
        Listing::Top(shard, key) => {
            let removed = lock(&TOP_GROUPS[shard]).remove(key);
            drop(removed);
        }
    }
}

/// The nearest task or group node above `node`.
fn container(node: &Node) -> Option<Arc<Node>> {
    let mut next = node.parent();
    while let Some(node) = next {
        if matches!(node.kind(), NodeKind::Task { .. } | NodeKind::Group { .. }) {
            return Some(Arc::clone(node));
        }
        next = node.parent();
    }
    None
}

/// The outermost groups of the process, in no particular order.
pub(crate) fn top_groups() -> Vec<Arc<dyn GroupScope>> {
    TOP_GROUPS
        .iter()
        .flat_map(|shard| {
            lock(shard)
                .iter()
                .filter_map(Weak::upgrade)
                .collect::<Vec<_>>()
        })
        .collect()
}

// --- Snapshots -------------------------------------------------------------------------

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

/// Copies a snapshot, for `Clone`.
struct Copying<'a>(PhantomData<&'a ()>);

impl<'a> Unfold for Copying<'a> {
    type Group = &'a GroupSnapshot;
    type Task = &'a TaskSnapshot;
    type Tasks = slice::Iter<'a, TaskSnapshot>;
    type Groups = slice::Iter<'a, GroupSnapshot>;

    fn group(&mut self, group: &'a GroupSnapshot) -> (GroupSnapshot, Self::Tasks, Self::Groups) {
        let copy = GroupSnapshot {
            id: group.id,
            name: group.name.clone(),
            state: group.state.clone(),
            age: group.age,
            policy: group.policy,
            limit: group.limit,
            queued: group.queued,
            tasks: Vec::with_capacity(group.tasks.len()),
            groups: Vec::with_capacity(group.groups.len()),
        };
        (copy, group.tasks.iter(), group.groups.iter())
    }

    fn task(&mut self, task: &'a TaskSnapshot) -> (TaskSnapshot, Self::Groups) {
        let copy = TaskSnapshot {
            id: task.id,
            name: task.name.clone(),
            state: task.state,
            age: task.age,
            groups: Vec::with_capacity(task.groups.len()),
        };
        (copy, task.groups.iter())
    }
}

impl Clone for GroupSnapshot {
    fn clone(&self) -> Self {
        let mut source = Copying(PhantomData);
        let root = source.group(self);
        grow_group(&mut source, root)
    }
}

impl Clone for TaskSnapshot {
    fn clone(&self) -> Self {
        let mut source = Copying(PhantomData);
        let root = Growing::task(&mut source, self);
        match grow(&mut source, root) {
            Grown::Task(task) => task,
            Grown::Group(_) => unreachable!("a task grows into a task"),
        }
    }
}

// Dropping takes the children out of each snapshot before the snapshot itself goes, so
// every drop is shallow. Moving a list out of a snapshot needs `std::mem::take`.

impl Drop for GroupSnapshot {
    fn drop(&mut self) {
        if !self.groups.is_empty() || self.tasks.iter().any(|task| !task.groups.is_empty()) {
            dismantle(mem::take(&mut self.groups), mem::take(&mut self.tasks));
        }
    }
}

impl Drop for TaskSnapshot {
    fn drop(&mut self) {
        if !self.groups.is_empty() {
            dismantle(mem::take(&mut self.groups), Vec::new());
        }
    }
}

/// Drops a forest of snapshots one node at a time.
fn dismantle(mut groups: Vec<GroupSnapshot>, mut tasks: Vec<TaskSnapshot>) {
    loop {
        if let Some(mut group) = groups.pop() {
            groups.append(&mut group.groups);
            tasks.append(&mut group.tasks);
        } else if let Some(mut task) = tasks.pop() {
            groups.append(&mut task.groups);
        } else {
            return;
        }
    }
}

impl fmt::Debug for GroupSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug(f, Debugging::Group(self))
    }
}

impl fmt::Debug for TaskSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug(f, Debugging::Task(self))
    }
}

/// What is left to write of a snapshot's `Debug` output.
enum Debugging<'a> {
    /// A whole group.
    Group(&'a GroupSnapshot),
    /// A whole task.
    Task(&'a TaskSnapshot),
    /// A list field, `written` of its items done.
    Tasks(&'static str, slice::Iter<'a, TaskSnapshot>, usize),
    Groups(&'static str, slice::Iter<'a, GroupSnapshot>, usize),
    /// The closing brace of a struct.
    End,
}

/// Writes what the derived `Debug` writes, `{:?}` and `{:#?}`, with the path down the tree
/// on the heap.
fn debug(f: &mut fmt::Formatter<'_>, root: Debugging<'_>) -> fmt::Result {
    let mut out = DebugOut {
        pretty: f.alternate(),
        width: f.width(),
        precision: f.precision(),
        depth: 0,
        first: true,
        f,
    };
    let mut todo = vec![root];
    while let Some(next) = todo.pop() {
        match next {
            Debugging::Group(group) => {
                out.open("GroupSnapshot")?;
                out.field("id", &group.id)?;
                out.field("name", &group.name)?;
                out.field("state", &group.state)?;
                out.field("age", &group.age)?;
                out.field("policy", &group.policy)?;
                out.field("limit", &group.limit)?;
                out.field("queued", &group.queued)?;
                todo.push(Debugging::End);
                todo.push(Debugging::Groups("groups", group.groups.iter(), 0));
                todo.push(Debugging::Tasks("tasks", group.tasks.iter(), 0));
            }
            Debugging::Task(task) => {
                out.open("TaskSnapshot")?;
                out.field("id", &task.id)?;
                out.field("name", &task.name)?;
                out.field("state", &task.state)?;
                out.field("age", &task.age)?;
                todo.push(Debugging::End);
                todo.push(Debugging::Groups("groups", task.groups.iter(), 0));
            }
            Debugging::Tasks(name, mut tasks, written) => {
                out.list_step(name, tasks.len(), written)?;
                if let Some(task) = tasks.next() {
                    todo.push(Debugging::Tasks(name, tasks, written + 1));
                    todo.push(Debugging::Task(task));
                }
            }
            Debugging::Groups(name, mut groups, written) => {
                out.list_step(name, groups.len(), written)?;
                if let Some(group) = groups.next() {
                    todo.push(Debugging::Groups(name, groups, written + 1));
                    todo.push(Debugging::Group(group));
                }
            }
            Debugging::End => out.close()?,
        }
    }
    Ok(())
}

/// The writing end of [`debug`]: how `DebugStruct` and `DebugList` lay out a struct.
struct DebugOut<'a, 'f> {
    f: &'a mut fmt::Formatter<'f>,
    pretty: bool,
    width: Option<usize>,
    precision: Option<usize>,
    /// How many structs and lists are open.
    depth: usize,
    /// No field of the struct opened last is written yet.
    first: bool,
}

impl DebugOut<'_, '_> {
    fn open(&mut self, name: &str) -> fmt::Result {
        self.f.write_str(name)?;
        self.first = true;
        if self.pretty {
            self.depth += 1;
            self.f.write_str(" {\n")
        } else {
            self.f.write_str(" { ")
        }
    }

    fn close(&mut self) -> fmt::Result {
        if self.pretty {
            self.depth -= 1;
            self.indent()?;
            self.f.write_str("}")
        } else {
            self.f.write_str(" }")
        }
    }

    /// Writes a field whose value is a leaf of the tree.
    fn field(&mut self, name: &str, value: &dyn fmt::Debug) -> fmt::Result {
        self.field_name(name)?;
        if self.pretty {
            // The value's own line breaks are indented as deep as the field.
            let mut indented = Indented {
                f: &mut *self.f,
                depth: self.depth,
                on_newline: false,
            };
            match (self.width, self.precision) {
                (None, None) => write!(indented, "{value:#?}")?,
                (Some(width), None) => write!(indented, "{value:#width$?}")?,
                (None, Some(precision)) => write!(indented, "{value:#.precision$?}")?,
                (Some(width), Some(precision)) => {
                    write!(indented, "{value:#width$.precision$?}")?;
                }
            }
            self.f.write_str(",\n")
        } else {
            value.fmt(self.f)
        }
    }

    fn field_name(&mut self, name: &str) -> fmt::Result {
        if self.pretty {
            self.indent()?;
        } else if !self.first {
            self.f.write_str(", ")?;
        }
        self.first = false;
        self.f.write_str(name)?;
        self.f.write_str(": ")
    }

    /// One step through a list field with `left` items to go after `written`: opens it,
    /// ends the item written last, starts the next item, or closes it.
    fn list_step(&mut self, name: &str, left: usize, written: usize) -> fmt::Result {
        let empty = written == 0 && left == 0;
        if written == 0 {
            self.field_name(name)?;
            self.f.write_str("[")?;
            if self.pretty && !empty {
                self.depth += 1;
                self.f.write_str("\n")?;
            }
        } else if self.pretty {
            self.f.write_str(",\n")?;
        }
        if left > 0 {
            if self.pretty {
                self.indent()?;
            } else if written > 0 {
                self.f.write_str(", ")?;
            }
            return Ok(());
        }
        if self.pretty && !empty {
            self.depth -= 1;
            self.indent()?;
        }
        self.f.write_str("]")?;
        if self.pretty {
            self.f.write_str(",\n")?;
        }
        Ok(())
    }

    fn indent(&mut self) -> fmt::Result {
        write_indent(self.f, self.depth)
    }
}

/// Four spaces a level, as `{:#?}` indents.
fn write_indent(f: &mut dyn fmt::Write, depth: usize) -> fmt::Result {
    const SPACES: &str = "                                                                ";
    let mut left = depth * 4;
    while left > 0 {
        let n = left.min(SPACES.len());
        f.write_str(&SPACES[..n])?;
        left -= n;
    }
    Ok(())
}

/// Indents every line but the first `depth` levels, as `{:#?}` does a nested value's lines.
struct Indented<'a, 'f> {
    f: &'a mut fmt::Formatter<'f>,
    depth: usize,
    on_newline: bool,
}

impl fmt::Write for Indented<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for line in s.split_inclusive('\n') {
            if self.on_newline {
                write_indent(self.f, self.depth)?;
            }
            self.on_newline = line.ends_with('\n');
            self.f.write_str(line)?;
        }
        Ok(())
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
        self.draw_line(f)?;
        // What starts the lines of the children of each node on `path`, one after another.
        let mut margin = String::new();
        let mut path = vec![(Children::of_group(self), 0)];
        while let Some((children, depth)) = path.last_mut() {
            let depth = *depth;
            let Some((child, last)) = children.next() else {
                path.pop();
                continue;
            };
            margin.truncate(depth);
            let (branch, indent) = if last {
                ("└── ", "    ")
            } else {
                ("├── ", "│   ")
            };
            f.write_str(&margin)?;
            f.write_str(branch)?;
            let grandchildren = match child {
                Child::Body(group) => {
                    f.write_str("(body) ")?;
                    group.draw_line(f)?;
                    Children::of_group(group)
                }
                Child::Task(task) => {
                    task.draw_line(f)?;
                    Children::of_task(task)
                }
                Child::InTask(group) => {
                    group.draw_line(f)?;
                    Children::of_group(group)
                }
            };
            margin.push_str(indent);
            path.push((grandchildren, margin.len()));
        }
        Ok(())
    }
}

impl GroupSnapshot {
    fn draw_line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task_group {}", self.id)?;
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
        writeln!(f, ")")
    }
}

impl TaskSnapshot {
    fn draw_line(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.id)?;
        if let Some(name) = &self.name {
            write!(f, " '{name}'")?;
        }
        writeln!(f, " ({}, {})", self.state, Age(self.age))
    }
}

/// The children of a node in the drawing: a group's body groups, then its tasks; a task's
/// groups.
struct Children<'a> {
    groups: slice::Iter<'a, GroupSnapshot>,
    tasks: slice::Iter<'a, TaskSnapshot>,
    body: bool,
}

impl<'a> Children<'a> {
    fn of_group(group: &'a GroupSnapshot) -> Self {
        Children {
            groups: group.groups.iter(),
            tasks: group.tasks.iter(),
            body: true,
        }
    }

    fn of_task(task: &'a TaskSnapshot) -> Self {
        Children {
            groups: task.groups.iter(),
            tasks: [].iter(),
            body: false,
        }
    }
}

impl<'a> Iterator for Children<'a> {
    /// The child, and whether it is the last one.
    type Item = (Child<'a>, bool);

    fn next(&mut self) -> Option<Self::Item> {
        let child = match self.groups.next() {
            Some(group) if self.body => Child::Body(group),
            Some(group) => Child::InTask(group),
            None => Child::Task(self.tasks.next()?),
        };
        Some((child, self.groups.len() + self.tasks.len() == 0))
    }
}

enum Child<'a> {
    /// A group opened in a group's body.
    Body(&'a GroupSnapshot),
    /// A group opened in a task.
    InTask(&'a GroupSnapshot),
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
    use crate::CancelReason;

    /// The same shapes with the derived `Debug`, and the drawing as it was written
    /// recursively: what the hand-written walks must reproduce.
    mod derived {
        use std::time::Duration;

        use crate::{GroupState, JoinPolicy, ScopeId, TaskId, TaskState};

        #[derive(Debug)]
        #[allow(dead_code, unreachable_pub)]
        pub struct TaskTree {
            pub groups: Vec<GroupSnapshot>,
        }

        #[derive(Debug)]
        #[allow(dead_code, unreachable_pub)]
        pub struct TaskSnapshot {
            pub id: TaskId,
            pub name: Option<String>,
            pub state: TaskState,
            pub age: Duration,
            pub groups: Vec<GroupSnapshot>,
        }

        #[derive(Debug)]
        #[allow(dead_code, unreachable_pub)]
        pub struct GroupSnapshot {
            pub id: ScopeId,
            pub name: Option<String>,
            pub state: GroupState,
            pub age: Duration,
            pub policy: JoinPolicy,
            pub limit: Option<usize>,
            pub queued: usize,
            pub tasks: Vec<TaskSnapshot>,
            pub groups: Vec<GroupSnapshot>,
        }
    }

    fn derived_group(group: &GroupSnapshot) -> derived::GroupSnapshot {
        derived::GroupSnapshot {
            id: group.id,
            name: group.name.clone(),
            state: group.state.clone(),
            age: group.age,
            policy: group.policy,
            limit: group.limit,
            queued: group.queued,
            tasks: group.tasks.iter().map(derived_task).collect(),
            groups: group.groups.iter().map(derived_group).collect(),
        }
    }

    fn derived_task(task: &TaskSnapshot) -> derived::TaskSnapshot {
        derived::TaskSnapshot {
            id: task.id,
            name: task.name.clone(),
            state: task.state,
            age: task.age,
            groups: task.groups.iter().map(derived_group).collect(),
        }
    }

    /// The drawing as it was made before, one call a node.
    fn draw_group(group: &GroupSnapshot, out: &mut String, first: &str, rest: &str) {
        write!(out, "{first}task_group {}", group.id).unwrap();
        if let Some(name) = &group.name {
            write!(out, " '{name}'").unwrap();
        }
        write!(out, " ({}, {}", group.state, Age(group.age)).unwrap();
        if group.policy == JoinPolicy::Supervisor {
            out.push_str(", supervisor");
        }
        if let Some(limit) = group.limit {
            write!(out, ", limit {limit}").unwrap();
            if group.queued > 0 {
                write!(out, ", {} queued", group.queued).unwrap();
            }
        }
        out.push_str(")\n");
        let count = group.groups.len() + group.tasks.len();
        let children = (group.groups.iter().map(Ok)).chain(group.tasks.iter().map(Err));
        for (i, child) in children.enumerate() {
            let (branch, indent) = branch(i + 1 == count);
            let first = format!("{rest}{branch}");
            let rest = format!("{rest}{indent}");
            match child {
                Ok(body) => draw_group(body, out, &format!("{first}(body) "), &rest),
                Err(task) => draw_task(task, out, &first, &rest),
            }
        }
    }

    fn draw_task(task: &TaskSnapshot, out: &mut String, first: &str, rest: &str) {
        write!(out, "{first}{}", task.id).unwrap();
        if let Some(name) = &task.name {
            write!(out, " '{name}'").unwrap();
        }
        writeln!(out, " ({}, {})", task.state, Age(task.age)).unwrap();
        let count = task.groups.len();
        for (i, group) in task.groups.iter().enumerate() {
            let (branch, indent) = branch(i + 1 == count);
            draw_group(
                group,
                out,
                &format!("{rest}{branch}"),
                &format!("{rest}{indent}"),
            );
        }
    }

    fn branch(last: bool) -> (&'static str, &'static str) {
        if last {
            ("└── ", "    ")
        } else {
            ("├── ", "│   ")
        }
    }

    fn group(
        name: Option<&str>,
        tasks: Vec<TaskSnapshot>,
        groups: Vec<GroupSnapshot>,
    ) -> GroupSnapshot {
        GroupSnapshot {
            id: ScopeId::next(),
            name: name.map(str::to_string),
            state: GroupState::Running,
            age: Duration::from_micros(1_234_567),
            policy: JoinPolicy::FailFast,
            limit: None,
            queued: 0,
            tasks,
            groups,
        }
    }

    fn task(name: Option<&str>, groups: Vec<GroupSnapshot>) -> TaskSnapshot {
        TaskSnapshot {
            id: TaskId::next(),
            name: name.map(str::to_string),
            state: TaskState::Suspended,
            age: Duration::from_micros(850),
            groups,
        }
    }

    /// Two roots with every kind of child: tasks with and without groups, body groups, empty
    /// lists, names and no names, a limit, a supervisor, a cancellation.
    fn sample() -> TaskTree {
        let mut crawler = group(
            Some("crawler"),
            vec![
                task(
                    Some("fetch-1"),
                    vec![
                        group(None, vec![task(None, vec![])], vec![]),
                        group(Some("retry"), vec![], vec![]),
                    ],
                ),
                task(Some("fetch-2"), vec![]),
            ],
            vec![group(
                Some("body"),
                vec![task(None, vec![group(None, vec![], vec![])])],
                vec![group(None, vec![], vec![])],
            )],
        );
        crawler.limit = Some(2);
        crawler.queued = 1;
        crawler.policy = JoinPolicy::Supervisor;
        crawler.tasks[0].groups[0].state =
            GroupState::Cancelled(Cancelled::new(CancelReason::Deadline));
        TaskTree {
            groups: vec![crawler, group(None, vec![], vec![])],
        }
    }

    #[test]
    fn debug_writes_what_the_derived_debug_writes() {
        let tree = sample();
        let mirror = derived::TaskTree {
            groups: tree.groups.iter().map(derived_group).collect(),
        };
        assert_eq!(format!("{tree:?}"), format!("{mirror:?}"));
        assert_eq!(format!("{tree:#?}"), format!("{mirror:#?}"));
        assert_eq!(format!("{tree:.1?}"), format!("{mirror:.1?}"));
        assert_eq!(format!("{tree:#5.1?}"), format!("{mirror:#5.1?}"));
        let task = &tree.groups[0].tasks[0];
        assert_eq!(format!("{task:#?}"), format!("{:#?}", derived_task(task)));
        let empty = TaskTree { groups: vec![] };
        assert_eq!(format!("{empty:#?}"), "TaskTree {\n    groups: [],\n}");
    }

    #[test]
    fn the_drawing_is_the_recursive_drawing() {
        let tree = sample();
        let mut expected = String::new();
        for group in &tree.groups {
            draw_group(group, &mut expected, "", "");
        }
        assert_eq!(tree.to_string(), expected);
        assert!(expected.contains("│   ├── task_group scope#"), "{expected}");
        assert!(expected.contains("(body) task_group"), "{expected}");
    }

    #[test]
    fn a_clone_is_the_same_tree() {
        let tree = sample();
        let copy = tree.clone();
        assert_eq!(format!("{copy:#?}"), format!("{tree:#?}"));
        let task = tree.groups[0].tasks[0].clone();
        assert_eq!(
            format!("{task:?}"),
            format!("{:?}", tree.groups[0].tasks[0])
        );
    }

    #[test]
    fn ages_read_at_the_scale_they_are_at() {
        let age = |d: Duration| Age(d).to_string();
        assert_eq!(age(Duration::from_micros(850)), "850µs");
        assert_eq!(age(Duration::from_millis(12)), "12ms");
        assert_eq!(age(Duration::from_millis(3250)), "3.25s");
        assert_eq!(age(Duration::from_secs(125)), "2m05s");
    }
}
