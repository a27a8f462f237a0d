//! What the scheduler tells its callers: the state of a run ([`RunStatus`]), one run's record
//! ([`RunReport`]), one tick's ([`TickReport`]), one sync's ([`SyncReport`]) and one schedule
//! as `automaton heartbeat list` shows it ([`ScheduleView`]). All serialise to the JSON the
//! CLI prints; times are epoch ms.

use serde::Serialize;

use crate::error::{Error, Result};

/// The state of one run, as stored in `heartbeat_runs.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Claimed and in flight; its lease says until when.
    Running,
    /// The task returned a result.
    Ok,
    /// The task returned an error (or was interrupted by shutdown).
    Failed,
    /// The task ran past its timeout and was cancelled.
    TimedOut,
    /// The run's lease expired with its retries spent (the process kept dying mid-run), or
    /// its task or schedule disappeared before it could be retried.
    Abandoned,
    /// Not run: the tier was below the task's minimum, or the task is not registered.
    Skipped,
}

impl RunStatus {
    /// The name stored in state.db.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Ok => "ok",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Abandoned => "abandoned",
            Self::Skipped => "skipped",
        }
    }

    /// Reads a stored name; `key` names the row when it is not one of ours.
    pub(crate) fn parse(text: &str, table: &'static str, key: &str) -> Result<Self> {
        [
            Self::Running,
            Self::Ok,
            Self::Failed,
            Self::TimedOut,
            Self::Abandoned,
            Self::Skipped,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
        .ok_or_else(|| Error::CorruptRow {
            table,
            key: key.to_owned(),
            detail: format!("unknown run status {text:?}"),
        })
    }
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    /// A firing of the schedule (or a retry of one).
    Schedule,
    /// `automaton heartbeat run NAME`.
    Manual,
}

impl RunTrigger {
    /// The name stored in state.db.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Manual => "manual",
        }
    }
}

/// One run, as the scheduler recorded it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// `heartbeat_runs.id`.
    pub run_id: i64,
    /// The schedule (entry name).
    pub schedule: String,
    /// The task it ran.
    pub task: String,
    /// What started it.
    pub trigger: RunTrigger,
    /// The firing it served.
    pub scheduled_for: i64,
    /// Which attempt this was, from 1.
    pub attempt: u32,
    /// Earlier firings coalesced into this run after a sleep.
    pub missed: u32,
    /// How it ended.
    pub status: RunStatus,
    /// The task's summary, for `ok`.
    pub result: Option<serde_json::Value>,
    /// Why it failed, timed out, was abandoned or skipped.
    pub error: Option<String>,
    /// When it will be attempted again, if it will.
    pub retry_at: Option<i64>,
}

/// What one tick did: every run it settled (finished, skipped or abandoned).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TickReport {
    /// The runs, in the order they were settled.
    pub runs: Vec<RunReport>,
}

impl TickReport {
    /// The runs that ended with `status`.
    pub fn with_status(&self, status: RunStatus) -> impl Iterator<Item = &RunReport> {
        self.runs.iter().filter(move |run| run.status == status)
    }
}

/// How [`crate::Scheduler::sync`] changed the table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    /// Entries new to the table.
    pub added: Vec<String>,
    /// Entries whose schedule, task, params or enabled state changed.
    pub updated: Vec<String>,
    /// Entries no longer in the file (their run history stays).
    pub removed: Vec<String>,
    /// How many entries were already as the file says.
    pub unchanged: usize,
}

impl SyncReport {
    /// Whether the table changed.
    pub fn changed(&self) -> bool {
        !(self.added.is_empty() && self.updated.is_empty() && self.removed.is_empty())
    }
}

/// A held lease: a run of the schedule is in flight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lease {
    /// The scheduler that holds it.
    pub owner: String,
    /// When it lapses if the run never finishes (the process died), epoch ms.
    pub expires_at: i64,
}

/// One schedule, as `automaton heartbeat list` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScheduleView {
    /// The entry's name.
    pub name: String,
    /// The schedule as written in heartbeat.yml.
    pub schedule: String,
    /// The same in the `cron` crate's form (what is evaluated, in UTC).
    pub cron: String,
    /// The task it runs.
    pub task: String,
    /// Whether it runs.
    pub enabled: bool,
    /// The task's parameters.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// When it next fires; `None` when it never will again.
    pub next_run_at: Option<i64>,
    /// When its last run ended (or was skipped or abandoned).
    pub last_run_at: Option<i64>,
    /// How its last run ended.
    pub last_status: Option<RunStatus>,
    /// Its last run's error.
    pub last_error: Option<String>,
    /// Its last successful run's summary.
    pub last_result: Option<serde_json::Value>,
    /// Set while a run is in flight.
    pub lease: Option<Lease>,
}
