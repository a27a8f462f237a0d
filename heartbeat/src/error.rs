//! The error type of `automaton-heartbeat`: why a `heartbeat.yml` or a schedule was refused,
//! and why the scheduler or the wake-event queue could not do what was asked.
//!
//! Every variant says what is wrong; [`Error::hint`] says what to do about it, so the CLI, the
//! `modify_heartbeat` tool and the logs can all show the fix next to the fault.

use std::fmt;
use std::path::PathBuf;

/// Errors from reading, validating or writing the heartbeat configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `heartbeat.yml` could not be read or written.
    #[error("heartbeat.yml at {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The text is not YAML, or its top level is not the `heartbeat.yml` shape.
    #[error("heartbeat.yml: {detail}")]
    Yaml {
        /// What the YAML parser said, with the line and column.
        detail: String,
    },
    /// The configuration could not be turned into YAML.
    #[error("heartbeat.yml could not be written as YAML: {detail}")]
    Serialize {
        /// What the YAML writer said.
        detail: String,
    },
    /// One entry of `entries` is wrong; `source` says how.
    #[error("heartbeat.yml {entry}: {source}")]
    Entry {
        /// Which entry.
        entry: EntryRef,
        /// What is wrong with it.
        source: Box<Error>,
    },
    /// An entry has an unknown key, lacks a required key, or has a value of the wrong type.
    #[error("{detail}")]
    EntryShape {
        /// What the YAML parser said (it names the key).
        detail: String,
    },
    /// An entry's name is empty, too long, or uses characters outside `[a-z0-9_]`.
    #[error("name {name:?} is invalid: {reason}")]
    InvalidName {
        /// The name as written.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Two entries share a name.
    #[error("entries[{first}] and entries[{second}] are both named {name:?}")]
    DuplicateName {
        /// The shared name.
        name: String,
        /// Index of the first entry with it.
        first: usize,
        /// Index of the second entry with it.
        second: usize,
    },
    /// An entry's task name is empty, too long, or uses characters outside `[a-z0-9_]`.
    #[error("task {task:?} is invalid: {reason}")]
    InvalidTask {
        /// The task as written.
        task: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A schedule is not a cron expression this runtime accepts.
    #[error("schedule {schedule:?} is not a valid cron expression: {reason}")]
    InvalidSchedule {
        /// The schedule as written.
        schedule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `defaultIntervalMs` is below one second.
    #[error("heartbeat.yml: defaultIntervalMs is {value_ms}, below the minimum of 1000")]
    DefaultIntervalTooShort {
        /// The value as written.
        value_ms: u64,
    },
    /// `lowComputeMultiplier` is outside 1..=100.
    #[error("heartbeat.yml: lowComputeMultiplier is {value}, outside 1..=100")]
    LowComputeMultiplierOutOfRange {
        /// The value as written.
        value: u32,
    },
    /// An entry names a task this runtime has not registered.
    #[error("heartbeat.yml entry {entry:?}: no heartbeat task named {task:?} is registered")]
    UnknownTask {
        /// The entry's name.
        entry: String,
        /// The task as written.
        task: String,
        /// The tasks that are registered, sorted.
        known: Vec<String>,
    },
    /// Two tasks were registered under one name.
    #[error("a heartbeat task named {task:?} is already registered")]
    DuplicateTask {
        /// The shared name.
        task: String,
    },
    /// No schedule has that name in `heartbeat_schedules`.
    #[error("no heartbeat schedule is named {name:?}")]
    UnknownSchedule {
        /// The name asked for.
        name: String,
        /// The schedules that exist, sorted.
        known: Vec<String>,
    },
    /// A run of the schedule is in flight (its lease is held and has not expired).
    #[error(
        "heartbeat schedule {name:?} is running now (lease held by {owner:?} until {lease_expires_at})"
    )]
    ScheduleBusy {
        /// The schedule.
        name: String,
        /// Who holds the lease.
        owner: String,
        /// When the lease expires, epoch ms.
        lease_expires_at: i64,
    },
    /// A run of the schedule is already recorded for this exact instant.
    #[error("heartbeat schedule {name:?} already has a run recorded for {scheduled_for}")]
    RunExists {
        /// The schedule.
        name: String,
        /// The instant, epoch ms.
        scheduled_for: i64,
    },
    /// A wake event's cause, reason or source breaks a rule.
    #[error("wake event {field} is invalid: {reason}")]
    InvalidWake {
        /// Which field: `cause`, `reason` or `source`.
        field: &'static str,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A stored row could not be read back (a value outside its domain or malformed JSON).
    #[error("state.db table {table}, row {key:?}: {detail}")]
    CorruptRow {
        /// The table.
        table: &'static str,
        /// The row's key.
        key: String,
        /// What is wrong with it.
        detail: String,
    },
    /// SQLite refused an operation on the heartbeat's tables.
    #[error("state.db: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A blocking database task did not finish (it panicked or the runtime is shutting down).
    #[error("the heartbeat's database task did not finish: {detail}")]
    DatabaseTask {
        /// What tokio said.
        detail: String,
    },
}

impl Error {
    /// Whether the failure is the database's (the same request may succeed later) rather
    /// than the request's or the file's (it will fail the same way until they change).
    pub fn is_storage(&self) -> bool {
        match self {
            Self::Sqlite(_) | Self::DatabaseTask { .. } => true,
            Self::Io { .. }
            | Self::Yaml { .. }
            | Self::Serialize { .. }
            | Self::Entry { .. }
            | Self::EntryShape { .. }
            | Self::InvalidName { .. }
            | Self::DuplicateName { .. }
            | Self::InvalidTask { .. }
            | Self::InvalidSchedule { .. }
            | Self::DefaultIntervalTooShort { .. }
            | Self::LowComputeMultiplierOutOfRange { .. }
            | Self::UnknownTask { .. }
            | Self::DuplicateTask { .. }
            | Self::UnknownSchedule { .. }
            | Self::ScheduleBusy { .. }
            | Self::RunExists { .. }
            | Self::InvalidWake { .. }
            | Self::CorruptRow { .. } => false,
        }
    }

    /// The next action for whoever sees this error.
    pub fn hint(&self) -> String {
        match self {
            Self::Io { path, .. } => format!(
                "check that {} exists and is readable and writable by the automaton; \
                 `automaton init` writes the default schedule",
                path.display()
            ),
            Self::Yaml { .. } => "fix the YAML at the line named above; the top-level keys are \
                 `entries`, `defaultIntervalMs` and `lowComputeMultiplier`"
                .to_owned(),
            Self::Serialize { .. } => {
                "this is a bug in the automaton; report it with the entry's params".to_owned()
            }
            Self::Entry { source, .. } => source.hint(),
            Self::EntryShape { .. } => "fix the key named above; an entry has `name`, `schedule` \
                 and `task`, and optionally `enabled` and `params`"
                .to_owned(),
            Self::InvalidName { .. } => {
                "use 1 to 64 characters from a-z, 0-9 and `_`, e.g. `check_credits`".to_owned()
            }
            Self::DuplicateName { name, .. } => {
                format!("rename or remove one of the entries named {name:?}; names must be unique")
            }
            Self::InvalidTask { .. } => "use the name of a heartbeat task (1 to 64 characters \
                 from a-z, 0-9 and `_`), e.g. `heartbeat_ping`"
                .to_owned(),
            Self::InvalidSchedule { .. } => "use a 5-field cron expression \
                 (minute hour day-of-month month day-of-week), e.g. `*/15 * * * *` for every \
                 15 minutes, or a 6/7-field one with seconds first"
                .to_owned(),
            Self::DefaultIntervalTooShort { .. } => {
                "set defaultIntervalMs to 1000 or more (60000 is the default)".to_owned()
            }
            Self::LowComputeMultiplierOutOfRange { .. } => {
                "set lowComputeMultiplier between 1 and 100 (4 is the default)".to_owned()
            }
            Self::UnknownTask { known, .. } => {
                format!("set the entry's `task` to one of: {}", list_or_none(known))
            }
            Self::DuplicateTask { .. } => {
                "this is a bug in the automaton: each heartbeat task is registered once".to_owned()
            }
            Self::UnknownSchedule { known, .. } => format!(
                "use one of the schedule names in `automaton heartbeat list`: {}",
                list_or_none(known)
            ),
            Self::ScheduleBusy { .. } => {
                "wait for the running run to finish (see `automaton heartbeat list`), then retry"
                    .to_owned()
            }
            Self::RunExists { .. } => {
                "retry in a moment; each run of a schedule needs its own instant".to_owned()
            }
            Self::InvalidWake { .. } => "use a cause of 1 to 64 characters from a-z, 0-9, `_`, \
                 `.`, `:` and `-` (e.g. `credits_low`), and a non-empty reason and source"
                .to_owned(),
            Self::CorruptRow { .. } => "the row was edited outside the automaton; fix or delete \
                 it, or re-sync heartbeat.yml by saving it again"
                .to_owned(),
            Self::Sqlite(_) => "check that the home is writable and no other process holds \
                 state.db for long; run `automaton doctor`"
                .to_owned(),
            Self::DatabaseTask { .. } => {
                "the runtime is shutting down or hit a bug; restart it and check its log".to_owned()
            }
        }
    }
}

/// `names` joined for a hint, or a note that there are none.
fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

/// Which entry of `entries` an error is about: its index, and its name when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRef {
    /// Zero-based position in `entries`.
    pub index: usize,
    /// The entry's `name`, if it has a non-empty one (even an invalid one, to help find it).
    pub name: Option<String>,
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "entries[{}] ({name:?})", self.index),
            None => write!(f, "entries[{}]", self.index),
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
