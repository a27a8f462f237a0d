//! Making `heartbeat_schedules` match a `heartbeat.yml`, in one transaction.
//!
//! New entries get their next firing after now; changed entries are updated, and their next
//! firing is recomputed only when the expression changed or the entry was re-enabled (a
//! disabled week must not come due all at once); unchanged entries keep their next and last
//! run, so a restart keeps history and does not make everything due at once; entries no
//! longer in the file are deleted (their runs stay in `heartbeat_runs`).

use std::collections::HashMap;

use rusqlite::{Transaction, params};

use super::{Pacing, Scheduler};
use crate::config::{HeartbeatConfig, HeartbeatEntry};
use crate::error::{Error, Result};
use crate::report::SyncReport;
use crate::schedule::CronSchedule;
use crate::store::on_db;

/// A schedule row's configured columns, as stored.
struct StoredEntry {
    schedule: String,
    cron: String,
    task: String,
    enabled: bool,
    params_json: String,
}

/// An entry ready to store.
struct NewEntry {
    name: String,
    schedule: String,
    cron: CronSchedule,
    task: String,
    enabled: bool,
    params_json: String,
}

impl NewEntry {
    fn of(entry: &HeartbeatEntry) -> Result<Self> {
        Ok(Self {
            name: entry.name.clone(),
            schedule: entry.schedule.clone(),
            cron: CronSchedule::parse(&entry.schedule)?,
            task: entry.task.clone(),
            enabled: entry.enabled,
            params_json: serde_json::Value::Object(entry.params.clone()).to_string(),
        })
    }
}

impl Scheduler {
    /// Makes the table match `config` (validated again here, and every entry's task checked
    /// against the registry) and adopts its pacing. Nothing changes when anything is refused.
    pub async fn sync(&self, config: &HeartbeatConfig) -> Result<SyncReport> {
        config.validate()?;
        self.check_tasks(config)?;
        let entries = config
            .entries
            .iter()
            .map(NewEntry::of)
            .collect::<Result<Vec<_>>>()?;
        let clock = std::sync::Arc::clone(&self.inner.clock);
        let report = on_db(&self.inner.db, move |db| {
            let now = clock.now_ms();
            db.write(|tx| sync_table(tx, &entries, now))
        })
        .await?;
        *self
            .inner
            .pacing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Pacing::of(config);
        if report.changed() {
            self.inner.changed.notify_one();
        }
        Ok(report)
    }

    /// Refuses the first entry whose task is not registered, naming the entry and the tasks
    /// that are.
    pub fn check_tasks(&self, config: &HeartbeatConfig) -> Result<()> {
        match config
            .entries
            .iter()
            .find(|entry| self.inner.tasks.get(&entry.task).is_none())
        {
            Some(entry) => Err(Error::UnknownTask {
                entry: entry.name.clone(),
                task: entry.task.clone(),
                known: self.inner.tasks.names(),
            }),
            None => Ok(()),
        }
    }
}

fn sync_table(tx: &Transaction<'_>, entries: &[NewEntry], now: i64) -> Result<SyncReport> {
    let mut stored: HashMap<String, StoredEntry> = {
        let mut statement = tx.prepare_cached(
            "SELECT name, schedule, cron, task, enabled, params_json FROM heartbeat_schedules",
        )?;
        statement
            .query_map([], |row| {
                Ok((
                    row.get(0)?,
                    StoredEntry {
                        schedule: row.get(1)?,
                        cron: row.get(2)?,
                        task: row.get(3)?,
                        enabled: row.get(4)?,
                        params_json: row.get(5)?,
                    },
                ))
            })?
            .collect::<rusqlite::Result<_>>()?
    };
    let mut report = SyncReport::default();
    for entry in entries {
        let first_firing = entry.cron.next_after(now);
        match stored.remove(&entry.name) {
            None => {
                tx.prepare_cached(
                    "INSERT INTO heartbeat_schedules (name, schedule, cron, task, enabled,
                         params_json, next_run_at, created_at, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
                )?
                .execute(params![
                    entry.name,
                    entry.schedule,
                    entry.cron.normalized(),
                    entry.task,
                    entry.enabled,
                    entry.params_json,
                    first_firing,
                    now,
                ])?;
                report.added.push(entry.name.clone());
            }
            Some(old)
                if old.schedule == entry.schedule
                    && old.task == entry.task
                    && old.enabled == entry.enabled
                    && old.params_json == entry.params_json =>
            {
                report.unchanged += 1;
            }
            Some(old) => {
                let reschedule =
                    old.cron != entry.cron.normalized() || (!old.enabled && entry.enabled);
                tx.prepare_cached(
                    "UPDATE heartbeat_schedules SET schedule = ?2, cron = ?3, task = ?4,
                         enabled = ?5, params_json = ?6, updated_at = ?7,
                         next_run_at = CASE WHEN ?8 THEN ?9 ELSE next_run_at END
                     WHERE name = ?1",
                )?
                .execute(params![
                    entry.name,
                    entry.schedule,
                    entry.cron.normalized(),
                    entry.task,
                    entry.enabled,
                    entry.params_json,
                    now,
                    reschedule,
                    first_firing,
                ])?;
                report.updated.push(entry.name.clone());
            }
        }
    }
    let mut removed: Vec<String> = stored.into_keys().collect();
    removed.sort();
    for name in &removed {
        tx.prepare_cached("DELETE FROM heartbeat_schedules WHERE name = ?1")?
            .execute([name])?;
    }
    report.removed = removed;
    Ok(report)
}
