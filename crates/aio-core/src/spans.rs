//! The `tracing` spans aio opens: `aio.task_group` for every group, `aio.task` for every
//! task, at the level [`set_span_level`] chose (DEBUG unless told otherwise).

use std::fmt;
use std::panic::Location;
use std::sync::atomic::{AtomicU8, Ordering};

use tracing::{Level, Span};

use crate::{ScopeId, TaskId};

/// Where a group without a name was opened: the aio function that opened it (`gather`,
/// `race`, ...) and where it was called from. It stands in for the name in logs and in
/// `task_tree()`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Site {
    pub(crate) what: &'static str,
    pub(crate) at: &'static Location<'static>,
}

impl fmt::Display for Site {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", self.what, self.at)
    }
}

/// The level of the spans, as an index into `LEVELS`.
static SPAN_LEVEL: AtomicU8 = AtomicU8::new(1);

const LEVELS: [Level; 5] = [
    Level::TRACE,
    Level::DEBUG,
    Level::INFO,
    Level::WARN,
    Level::ERROR,
];

/// Sets the level of the spans aio opens for task groups (`aio.task_group`) and their tasks
/// (`aio.task`). They are DEBUG by default, so a subscriber with the usual INFO filter
/// shows none; call `aio::set_span_level(tracing::Level::INFO)` once at startup to see
/// every event of your code inside a task under its group's and task's names. Spans opened
/// before the call keep their level.
///
/// # Examples
///
/// ```
/// aio_core::set_span_level(tracing::Level::INFO);
/// # aio_core::set_span_level(tracing::Level::DEBUG);
/// ```
pub fn set_span_level(level: Level) {
    let index = LEVELS.iter().position(|l| *l == level).unwrap_or(1);
    SPAN_LEVEL.store(index as u8, Ordering::Relaxed);
}

/// `tracing`'s span macros take the level as a constant: one call site per level.
macro_rules! span_at_level {
    (parent: $parent:expr, $($args:tt)*) => {
        match SPAN_LEVEL.load(Ordering::Relaxed) {
            0 => tracing::span!(parent: $parent, Level::TRACE, $($args)*),
            1 => tracing::span!(parent: $parent, Level::DEBUG, $($args)*),
            2 => tracing::span!(parent: $parent, Level::INFO, $($args)*),
            3 => tracing::span!(parent: $parent, Level::WARN, $($args)*),
            _ => tracing::span!(parent: $parent, Level::ERROR, $($args)*),
        }
    };
    ($($args:tt)*) => {
        match SPAN_LEVEL.load(Ordering::Relaxed) {
            0 => tracing::span!(Level::TRACE, $($args)*),
            1 => tracing::span!(Level::DEBUG, $($args)*),
            2 => tracing::span!(Level::INFO, $($args)*),
            3 => tracing::span!(Level::WARN, $($args)*),
            _ => tracing::span!(Level::ERROR, $($args)*),
        }
    };
}

/// The span of a task group; `site` is where a group without a name was opened.
pub(crate) fn group_span(id: ScopeId, name: Option<&str>, site: Option<Site>) -> Span {
    let site = site.map(tracing::field::display);
    span_at_level!("aio.task_group", group.id = %id, group.name = name, group.site = site)
}

/// The span of a task of the group whose span is `group`.
pub(crate) fn task_span(group: &Span, id: TaskId, name: Option<&str>) -> Span {
    span_at_level!(parent: group, "aio.task", task.id = %id, task.name = name)
}
