//! The durable scheduler: `heartbeat_schedules` is the one table of what runs, and every
//! firing is a row of `heartbeat_runs` under UNIQUE (schedule, scheduled_for).
//!
//! One [`Scheduler::tick`] claims, in one `BEGIN IMMEDIATE` transaction, every run that is
//! due (crashed runs whose lease lapsed, failed runs whose retry time came, schedules whose
//! next firing passed), then runs them concurrently, each under its task's timeout, and
//! records their results. Claiming inside the write lock, re-reading the rows there, and the
//! unique key together mean a firing runs at most once even with two schedulers on one
//! database. The parts live in:
//!
//! - `sync`: making the table match `heartbeat.yml`;
//! - `claim`: what is due and the claim transaction (coalescing, tiers, crash recovery);
//! - `execute`: running claimed tasks (timeout, cancellation) and recording their results
//!   (retry policy);
//! - `driver`: the long-running loop (reload, tick, sleep until the next due time).

mod claim;
mod driver;
mod execute;
mod sync;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use automaton_tools::clock::Clock;
use automaton_tools::dispatch::SharedDb;
use automaton_tools::survival::SurvivalTier;
use rusqlite::params;
use tokio::sync::Notify;

use crate::config::HeartbeatConfig;
use crate::error::{Error, Result};
use crate::report::{Lease, RunReport, RunStatus, ScheduleView, TickReport};
use crate::schedule::CronSchedule;
use crate::store::{on_db, parse_json};
use crate::task::TaskRegistry;
use crate::wake::WakeEvents;

use claim::ClaimRequest;

/// How long past a run's timeout its lease lasts. The run is cancelled at its timeout, so a
/// lease only lapses when the process running it died (or hung past this grace).
pub const LEASE_GRACE: Duration = Duration::from_secs(30);

/// The wait before the first retry of a failed or timed-out run; each further retry waits
/// twice as long, up to [`RETRY_BACKOFF_CAP`]. A retry that would come at or after the
/// schedule's next firing is not made: that firing is the retry.
pub const RETRY_BACKOFF_BASE: Duration = Duration::from_secs(30);

/// The longest wait before a retry.
pub const RETRY_BACKOFF_CAP: Duration = Duration::from_secs(10 * 60);

/// `missed` is counted exactly up to this many coalesced firings, then saturates (an
/// every-second schedule asleep for days would otherwise cost a long count).
pub const MAX_COUNTED_MISSED: u32 = 100_000;

/// The pacing knobs of `heartbeat.yml`, as last synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pacing {
    default_interval_ms: u64,
    low_compute_multiplier: u32,
}

impl Pacing {
    fn of(config: &HeartbeatConfig) -> Self {
        Self {
            default_interval_ms: config.default_interval_ms,
            low_compute_multiplier: config.low_compute_multiplier,
        }
    }

    /// When a schedule that fired at `fired` runs next. In a conserving tier (low compute,
    /// critical) the gap to the cron's next firing is multiplied by `lowComputeMultiplier`
    /// and rounded up to a firing of the expression, so the next run is a real firing and
    /// never earlier than the cron's own next one.
    fn next_run(self, cron: &CronSchedule, fired: i64, tier: SurvivalTier) -> Option<i64> {
        let next = cron.next_after(fired)?;
        if !tier.is_conserving() || self.low_compute_multiplier <= 1 {
            return Some(next);
        }
        let stretched = fired.saturating_add(
            next.saturating_sub(fired)
                .saturating_mul(i64::from(self.low_compute_multiplier)),
        );
        Some(cron.first_at_or_after(stretched).unwrap_or(next))
    }
}

impl Default for Pacing {
    fn default() -> Self {
        Self::of(&HeartbeatConfig::default_schedule())
    }
}

struct Inner {
    db: SharedDb,
    clock: Arc<dyn Clock>,
    owner: String,
    tasks: TaskRegistry,
    wake: WakeEvents,
    pacing: Mutex<Pacing>,
    /// Signalled when a sync changed the table, so the driver recomputes its sleep.
    changed: Notify,
}

/// The heartbeat scheduler. Cheap to clone: clones share one state (the driver runs one
/// clone while `modify_heartbeat` and the CLI use others).
#[derive(Clone)]
pub struct Scheduler {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("owner", &self.inner.owner)
            .field("tasks", &self.inner.tasks)
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler over `db` (which must have [`crate::SCHEMA`] applied).
    ///
    /// `owner` names this scheduler in leases and run rows; it must be unique among the
    /// schedulers sharing the database (e.g. `"<hostname>:<pid>:<uuid>"`), since a run's
    /// result is only recorded by the owner that claimed it. Until the first
    /// [`Scheduler::sync`], pacing is `heartbeat.yml`'s defaults.
    pub fn new(
        db: SharedDb,
        clock: Arc<dyn Clock>,
        owner: impl Into<String>,
        tasks: TaskRegistry,
        wake: WakeEvents,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                clock,
                owner: owner.into(),
                tasks,
                wake,
                pacing: Mutex::new(Pacing::default()),
                changed: Notify::new(),
            }),
        }
    }

    /// The tasks this scheduler can run.
    pub fn tasks(&self) -> &TaskRegistry {
        &self.inner.tasks
    }

    /// The wake-event queue the tasks raise into.
    pub fn wake_events(&self) -> &WakeEvents {
        &self.inner.wake
    }

    /// Claims every due run, runs them concurrently (each under its timeout) and records
    /// the results; `tier` decides what is skipped and how far the next runs are pushed.
    /// Dropping the future mid-run stops the runs; their leases lapse and they are retried
    /// like runs of a crashed process.
    pub async fn tick(&self, tier: SurvivalTier) -> Result<TickReport> {
        let claimed = self.claim(ClaimRequest::Due { tier }).await?;
        let mut report = TickReport {
            runs: claimed.settled,
        };
        let completions = self.execute_all(claimed.to_run).await;
        report.runs.extend(self.record(completions).await?);
        Ok(report)
    }

    /// Runs the schedule `name` once now, whatever its next firing and even below its task's
    /// minimum tier (the creator asked for it), for `automaton heartbeat run NAME`. Recorded
    /// as a manual run with `scheduled_for` = now; a manual run is not retried and does not
    /// move the schedule's next firing. Refused while a run of the schedule is in flight.
    pub async fn run_now(&self, name: &str, tier: SurvivalTier) -> Result<RunReport> {
        let claimed = self
            .claim(ClaimRequest::Manual {
                name: name.to_owned(),
                tier,
            })
            .await?;
        let completions = self.execute_all(claimed.to_run).await;
        self.record(completions)
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::DatabaseTask {
                detail: format!(
                    "the manual run of {name:?} ended without a result (a bug in the scheduler)"
                ),
            })
    }

    /// Every schedule with its next run, last result and lease, by name.
    pub async fn list(&self) -> Result<Vec<ScheduleView>> {
        on_db(&self.inner.db, |db| {
            let mut statement = db.conn().prepare_cached(
                "SELECT name, schedule, cron, task, enabled, params_json, next_run_at,
                        last_run_at, last_status, last_error, last_result_json, lease_owner,
                        lease_expires_at
                 FROM heartbeat_schedules ORDER BY name",
            )?;
            let mut rows = statement.query([])?;
            let mut views = Vec::new();
            while let Some(row) = rows.next()? {
                let name: String = row.get(0)?;
                let params_json: String = row.get(5)?;
                let last_status: Option<String> = row.get(8)?;
                let last_result_json: Option<String> = row.get(10)?;
                let lease_owner: Option<String> = row.get(11)?;
                let lease_expires_at: Option<i64> = row.get(12)?;
                views.push(ScheduleView {
                    schedule: row.get(1)?,
                    cron: row.get(2)?,
                    task: row.get(3)?,
                    enabled: row.get(4)?,
                    params: parse_json("heartbeat_schedules", &name, &params_json)?,
                    next_run_at: row.get(6)?,
                    last_run_at: row.get(7)?,
                    last_status: last_status
                        .map(|text| RunStatus::parse(&text, "heartbeat_schedules", &name))
                        .transpose()?,
                    last_error: row.get(9)?,
                    last_result: last_result_json
                        .map(|text| parse_json("heartbeat_schedules", &name, &text))
                        .transpose()?,
                    lease: lease_owner
                        .zip(lease_expires_at)
                        .map(|(owner, expires_at)| Lease { owner, expires_at }),
                    name,
                });
            }
            Ok(views)
        })
        .await
    }

    /// The earliest time a tick could have work: the next firing of an enabled schedule (or
    /// the end of its lease, if a run of it is in flight), the end of a running run's lease
    /// (crash recovery) or a pending retry. `None` when nothing is scheduled at all.
    pub async fn next_due_at(&self) -> Result<Option<i64>> {
        on_db(&self.inner.db, |db| {
            Ok(db
                .conn()
                .prepare_cached(
                    "SELECT MIN(due) FROM (
                         SELECT CASE WHEN lease_expires_at > next_run_at THEN lease_expires_at
                                     ELSE next_run_at END AS due
                         FROM heartbeat_schedules
                         WHERE enabled = 1 AND next_run_at IS NOT NULL
                         UNION ALL
                         SELECT lease_expires_at FROM heartbeat_runs WHERE status = 'running'
                         UNION ALL
                         SELECT retry_at FROM heartbeat_runs WHERE retry_at IS NOT NULL
                     )",
                )?
                .query_row([], |row| row.get::<_, Option<i64>>(0))?)
        })
        .await
    }

    /// The runs recorded for schedule `name`, newest first, at most `limit`.
    pub async fn runs(&self, name: &str, limit: u32) -> Result<Vec<RunReport>> {
        let name = name.to_owned();
        on_db(&self.inner.db, move |db| {
            let mut statement = db.conn().prepare_cached(
                "SELECT id, schedule, task, trigger, scheduled_for, attempt, missed, status,
                        result_json, error, retry_at
                 FROM heartbeat_runs WHERE schedule = ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let mut rows = statement.query(params![name, limit])?;
            let mut runs = Vec::new();
            while let Some(row) = rows.next()? {
                let run_id: i64 = row.get(0)?;
                let key = run_id.to_string();
                let trigger: String = row.get(3)?;
                let status: String = row.get(7)?;
                let result_json: Option<String> = row.get(8)?;
                runs.push(RunReport {
                    run_id,
                    schedule: row.get(1)?,
                    task: row.get(2)?,
                    trigger: claim::parse_trigger(&trigger, &key)?,
                    scheduled_for: row.get(4)?,
                    attempt: row.get(5)?,
                    missed: row.get(6)?,
                    status: RunStatus::parse(&status, "heartbeat_runs", &key)?,
                    result: result_json
                        .map(|text| parse_json("heartbeat_runs", &key, &text))
                        .transpose()?,
                    error: row.get(9)?,
                    retry_at: row.get(10)?,
                });
            }
            Ok(runs)
        })
        .await
    }

    fn pacing(&self) -> Pacing {
        *self
            .inner
            .pacing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The lease a run of `timeout` takes at `now`.
    fn lease_until(now: i64, timeout: Duration) -> i64 {
        let millis = timeout.saturating_add(LEASE_GRACE).as_millis();
        now.saturating_add(i64::try_from(millis).unwrap_or(i64::MAX))
    }
}
