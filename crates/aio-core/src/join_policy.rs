//! [`JoinPolicy`]: what a task's failure does to its group.

/// What a task's failure does to its group, chosen when the group is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum JoinPolicy {
    /// The first failure cancels the body and every other task: asyncio's `TaskGroup`.
    #[default]
    FailFast,
    /// A task's failure (or panic) does not cancel its siblings; every failure is still
    /// reported when the group ends, and the first panic re-raised. The body's own failure
    /// still cancels the group. Kotlin's `supervisorScope`.
    Supervisor,
}
