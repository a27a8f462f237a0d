//! The `heartbeat.yml` model: which tasks the heartbeat runs, on which cron schedule, and how
//! much it slows down in low-compute mode.
//!
//! It owns the file's shape and every rule a schedule must meet before the scheduler sees it,
//! so a typo in a hand-edited file is refused at load time with the entry and the fix named,
//! instead of a task silently never running.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{EntryRef, Error, Result};
use crate::schedule::normalize_schedule;

/// The longest entry or task name, in bytes.
const MAX_NAME_LEN: usize = 64;
const DEFAULT_INTERVAL_MS: u64 = 60_000;
const MIN_INTERVAL_MS: u64 = 1_000;
const DEFAULT_LOW_COMPUTE_MULTIPLIER: u32 = 4;
const MAX_LOW_COMPUTE_MULTIPLIER: u32 = 100;

/// The whole `heartbeat.yml`: the scheduled entries and the pacing knobs.
///
/// Built by [`HeartbeatConfig::parse`], [`HeartbeatConfig::load`] or
/// [`HeartbeatConfig::default_schedule`]; it deliberately does not implement `Deserialize`, so
/// no configuration skips validation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HeartbeatConfig {
    /// The scheduled tasks, in file order.
    pub entries: Vec<HeartbeatEntry>,
    /// The scheduler's base tick, in milliseconds (at least 1000).
    pub default_interval_ms: u64,
    /// How many times slower the heartbeat runs in the low-compute tier (1..=100).
    pub low_compute_multiplier: u32,
}

/// One scheduled task in `heartbeat.yml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeartbeatEntry {
    /// Unique name of the entry (`[a-z0-9_]+`, at most 64 characters).
    pub name: String,
    /// Cron expression as written: 5-field standard, or 6/7-field with seconds first.
    /// The scheduler evaluates [`normalize_schedule`] of it.
    pub schedule: String,
    /// The heartbeat task to run (`[a-z0-9_]+`, at most 64 characters).
    pub task: String,
    /// Whether the entry runs; `true` when the key is absent.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// Task-specific parameters; empty when the key is absent.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// `heartbeat.yml` as read, before each entry is checked on its own; keeping the entries as
/// YAML values lets an entry's error name the entry even when the entry itself is malformed.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawConfig {
    entries: Vec<serde_yaml::Value>,
    #[serde(default = "default_interval_ms")]
    default_interval_ms: u64,
    #[serde(default = "default_low_compute_multiplier")]
    low_compute_multiplier: u32,
}

fn enabled_by_default() -> bool {
    true
}

fn default_interval_ms() -> u64 {
    DEFAULT_INTERVAL_MS
}

fn default_low_compute_multiplier() -> u32 {
    DEFAULT_LOW_COMPUTE_MULTIPLIER
}

impl HeartbeatConfig {
    /// The schedule `automaton init` writes.
    ///
    /// `check_credits` runs every 5 minutes so the one-hour dead grace period is measured to
    /// within minutes, not hours.
    pub fn default_schedule() -> Self {
        let entry = |name: &str, schedule: &str| HeartbeatEntry {
            name: name.to_owned(),
            schedule: schedule.to_owned(),
            task: name.to_owned(),
            enabled: true,
            params: serde_json::Map::new(),
        };
        Self {
            entries: vec![
                entry("heartbeat_ping", "*/15 * * * *"),
                entry("check_credits", "*/5 * * * *"),
                entry("health_check", "*/30 * * * *"),
                entry("check_for_updates", "0 */4 * * *"),
                entry("refresh_models", "0 */6 * * *"),
                entry("report_metrics", "*/15 * * * *"),
            ],
            default_interval_ms: DEFAULT_INTERVAL_MS,
            low_compute_multiplier: DEFAULT_LOW_COMPUTE_MULTIPLIER,
        }
    }

    /// Parses and validates the text of a `heartbeat.yml`.
    ///
    /// `defaultIntervalMs` and `lowComputeMultiplier` default to 60000 and 4 when absent.
    pub fn parse(yaml: &str) -> Result<Self> {
        let raw: RawConfig = serde_yaml::from_str(yaml).map_err(|error| Error::Yaml {
            detail: error.to_string(),
        })?;
        let entries = raw
            .entries
            .into_iter()
            .enumerate()
            .map(|(index, value)| {
                let name = value
                    .get("name")
                    .and_then(serde_yaml::Value::as_str)
                    .filter(|name| !name.is_empty())
                    .map(str::to_owned);
                serde_yaml::from_value(value).map_err(|error| Error::Entry {
                    entry: EntryRef { index, name },
                    source: Box::new(Error::EntryShape {
                        detail: error.to_string(),
                    }),
                })
            })
            .collect::<Result<Vec<HeartbeatEntry>>>()?;
        let config = Self {
            entries,
            default_interval_ms: raw.default_interval_ms,
            low_compute_multiplier: raw.low_compute_multiplier,
        };
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses the `heartbeat.yml` at `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let yaml = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&yaml)
    }

    /// Checks every rule [`HeartbeatConfig::parse`] enforces, for a configuration built or
    /// changed in code (for example by `modify_heartbeat`). Entries are checked in order and
    /// the first problem is returned.
    pub fn validate(&self) -> Result<()> {
        let mut first_index_of: HashMap<&str, usize> = HashMap::new();
        for (index, entry) in self.entries.iter().enumerate() {
            entry.validate().map_err(|source| Error::Entry {
                entry: EntryRef {
                    index,
                    name: Some(entry.name.clone()).filter(|name| !name.is_empty()),
                },
                source: Box::new(source),
            })?;
            if let Some(&first) = first_index_of.get(entry.name.as_str()) {
                return Err(Error::DuplicateName {
                    name: entry.name.clone(),
                    first,
                    second: index,
                });
            }
            first_index_of.insert(&entry.name, index);
        }
        if self.default_interval_ms < MIN_INTERVAL_MS {
            return Err(Error::DefaultIntervalTooShort {
                value_ms: self.default_interval_ms,
            });
        }
        if !(1..=MAX_LOW_COMPUTE_MULTIPLIER).contains(&self.low_compute_multiplier) {
            return Err(Error::LowComputeMultiplierOutOfRange {
                value: self.low_compute_multiplier,
            });
        }
        Ok(())
    }

    /// The configuration as `heartbeat.yml` text; [`HeartbeatConfig::parse`] reads it back
    /// unchanged. Refuses an invalid configuration rather than write a file that will not load.
    pub fn to_yaml(&self) -> Result<String> {
        self.validate()?;
        serde_yaml::to_string(self).map_err(|error| Error::Serialize {
            detail: error.to_string(),
        })
    }
}

impl HeartbeatEntry {
    /// Checks the entry on its own: name and task syntax, and that the schedule is a cron
    /// expression [`normalize_schedule`] accepts. Uniqueness is the config's job.
    pub fn validate(&self) -> Result<()> {
        if let Some(reason) = identifier_problem(&self.name) {
            return Err(Error::InvalidName {
                name: self.name.clone(),
                reason,
            });
        }
        if let Some(reason) = identifier_problem(&self.task) {
            return Err(Error::InvalidTask {
                task: self.task.clone(),
                reason,
            });
        }
        normalize_schedule(&self.schedule)?;
        Ok(())
    }
}

/// Why `text` is not a valid entry or task name, if it is not.
fn identifier_problem(text: &str) -> Option<&'static str> {
    if text.is_empty() {
        Some("it is empty")
    } else if text.len() > MAX_NAME_LEN {
        Some("it is longer than 64 characters")
    } else if !text
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
    {
        Some("only a-z, 0-9 and `_` are allowed")
    } else {
        None
    }
}
