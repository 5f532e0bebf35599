//! [`current_task`]: which task the caller runs in, asyncio's `asyncio.current_task()`.

use std::fmt;
use std::sync::Arc;

use crate::scope::{self, NodeKind};
use crate::{ScopeId, TaskId};

/// The task the caller runs in: asyncio's `asyncio.current_task()`, for its id and name.
///
/// `None` outside a task spawned into an aio group: in the main future of
/// [`run`](crate::run) or `#[tokio::main]`, and in a task started with `tokio::spawn`. The
/// body of a [`TaskGroup`](crate::TaskGroup) runs in the task that opened the group, so it
/// sees that task, as in asyncio.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use aio_core::{BoxError, TaskGroup};
///
/// let name = TaskGroup::<BoxError>::builder()
///     .name("fetchers")
///     .scope(|tg| async move {
///         let me = tg.spawn_named("fetch-1", async {
///             let me = aio_core::current_task().expect("a task of the group");
///             Ok(format!("{} in {}", me.name().unwrap(), me.group_name().unwrap()))
///         })?;
///         Ok(me.await?)
///     })
///     .await
///     .unwrap();
/// assert_eq!(name, "fetch-1 in fetchers");
/// assert!(aio_core::current_task().is_none());
/// # }
/// ```
pub fn current_task() -> Option<CurrentTask> {
    let task = scope::current_task()?;
    let group = task.parent.and_then(|node| match node.kind() {
        NodeKind::Group { group } => {
            let name = group.upgrade().and_then(|group| group.name().cloned());
            Some((node.id(), name))
        }
        _ => None,
    });
    Some(CurrentTask {
        id: task.id,
        name: task.name,
        group,
    })
}

/// What [`current_task`] returns: the running task's id, name and group.
#[derive(Clone)]
pub struct CurrentTask {
    id: TaskId,
    name: Option<Arc<str>>,
    group: Option<(ScopeId, Option<Arc<str>>)>,
}

impl CurrentTask {
    /// The task's id, the one its [`TaskHandle`](crate::TaskHandle) and failures report.
    pub fn id(&self) -> TaskId {
        self.id
    }

    /// The task's name, if it was spawned with one: asyncio's `get_name()`.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The id of the group the task belongs to; `None` for a
    /// [`shield_detached`](crate::shield_detached) task started outside any group.
    pub fn group_id(&self) -> Option<ScopeId> {
        self.group.as_ref().map(|(id, _)| *id)
    }

    /// The name of the group the task belongs to, if it was built with one.
    pub fn group_name(&self) -> Option<&str> {
        self.group.as_ref().and_then(|(_, name)| name.as_deref())
    }
}

impl fmt::Debug for CurrentTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CurrentTask")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("group", &self.group_id())
            .field("group_name", &self.group_name())
            .finish()
    }
}
