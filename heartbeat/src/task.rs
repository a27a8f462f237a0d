//! The contract between the scheduler and the work it runs: a [`HeartbeatTask`] declares its
//! name, the lowest survival tier it runs in, its timeout and retry budget, and runs with a
//! [`TaskContext`]. The [`TaskRegistry`] is the set of tasks this runtime can run; an entry of
//! `heartbeat.yml` naming any other task is refused when the table is synced.
//!
//! The concrete tasks (`heartbeat_ping`, `check_credits`, …) live with the capability they
//! check, in the runtime; this crate only runs them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use automaton_tools::clock::Clock;
use automaton_tools::survival::SurvivalTier;
pub use automaton_tools::tool::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::wake::{WakeEvents, WakeRequest};

/// How long a task may run unless it says otherwise.
pub const DEFAULT_TASK_TIMEOUT: Duration = Duration::from_secs(60);

/// How many times a failed, timed-out or lost run is attempted again unless the task says
/// otherwise.
pub const DEFAULT_MAX_RETRIES: u32 = 1;

/// One kind of heartbeat work. Object-safe: the registry holds `Arc<dyn HeartbeatTask>`.
pub trait HeartbeatTask: Send + Sync + 'static {
    /// The name `heartbeat.yml` entries use in `task` (`[a-z0-9_]`, 1 to 64 characters).
    fn name(&self) -> &str;

    /// The lowest tier the task runs in; below it a firing is recorded as `skipped`.
    /// [`SurvivalTier::Dead`] (the default) means it always runs.
    fn min_tier(&self) -> SurvivalTier {
        SurvivalTier::Dead
    }

    /// How long one attempt may run before it is cancelled and recorded as `timed_out`.
    fn timeout(&self) -> Duration {
        DEFAULT_TASK_TIMEOUT
    }

    /// How many more attempts a run gets after its first one fails, times out, or is lost
    /// with its process. `0` means one attempt only.
    fn max_retries(&self) -> u32 {
        DEFAULT_MAX_RETRIES
    }

    /// Runs one attempt. The task must stop promptly once `ctx.cancel` fires (timeout or
    /// shutdown); its future is dropped at that point anyway.
    fn run(&self, ctx: TaskContext) -> BoxFuture<'_, Result<TaskOutcome, TaskFailure>>;
}

/// What a running task receives.
#[derive(Debug, Clone)]
pub struct TaskContext {
    /// The schedule (entry name) this run belongs to.
    pub schedule: String,
    /// The entry's `params` from `heartbeat.yml`.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// The firing this run serves, epoch ms (for a manual run, the moment it was asked for).
    pub scheduled_for: i64,
    /// Which attempt this is, from 1.
    pub attempt: u32,
    /// The survival tier when the run was claimed.
    pub tier: SurvivalTier,
    /// Fires on timeout and on shutdown.
    pub cancel: CancellationToken,
    /// Raises wake events (also possible through [`TaskOutcome::wake`]).
    pub wake: WakeEvents,
    /// The clock the scheduler runs on.
    pub clock: Arc<dyn Clock>,
}

/// A successful run's result.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskOutcome {
    /// A short JSON summary, stored as the run's `result_json` and shown by
    /// `automaton heartbeat list`.
    pub summary: serde_json::Value,
    /// A wake event to raise, committed together with the run's result.
    pub wake: Option<WakeRequest>,
}

impl TaskOutcome {
    /// A result with `summary` and no wake event.
    pub fn new(summary: serde_json::Value) -> Self {
        Self {
            summary,
            wake: None,
        }
    }

    /// The same result, also waking the agent loop.
    pub fn with_wake(mut self, wake: WakeRequest) -> Self {
        self.wake = Some(wake);
        self
    }
}

/// Why a run failed. Transient failures are retried per the task's `max_retries`;
/// permanent ones wait for the next firing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskFailure {
    /// What went wrong, for the run's `error` and the schedule's `last_error`.
    pub message: String,
    /// Whether another attempt may succeed.
    pub retryable: bool,
}

impl TaskFailure {
    /// A failure another attempt may fix (a network error, a busy service).
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure another attempt will not fix (bad params, a missing capability).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

/// The tasks this runtime can run, by name.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    tasks: BTreeMap<String, Arc<dyn HeartbeatTask>>,
}

impl std::fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tasks.keys()).finish()
    }
}

impl TaskRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `task`; a second task with the same name is refused.
    pub fn register(&mut self, task: Arc<dyn HeartbeatTask>) -> Result<()> {
        let name = task.name().to_owned();
        if self.tasks.contains_key(&name) {
            return Err(Error::DuplicateTask { task: name });
        }
        self.tasks.insert(name, task);
        Ok(())
    }

    /// The task called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn HeartbeatTask>> {
        self.tasks.get(name).cloned()
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> Vec<String> {
        self.tasks.keys().cloned().collect()
    }
}
