//! The claim: deciding, inside one `BEGIN IMMEDIATE` transaction, which runs this scheduler
//! takes, and writing that decision down before anything runs.
//!
//! In order: runs whose lease lapsed (their process died mid-run) are retried or abandoned;
//! failed runs whose retry time came are resumed; schedules whose next firing passed are
//! fired. A firing after a long sleep runs once, for the latest firing time at or before now,
//! with `missed` counting the firings folded into it. Every decision re-reads its rows inside
//! the write lock, and a firing's row is inserted under UNIQUE (schedule, scheduled_for), so
//! two schedulers never run the same firing.
//!
//! Firing schedules and manual runs are here; crash recovery and retries in `recover`.

mod recover;

use std::sync::Arc;

use automaton_tools::survival::SurvivalTier;
use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::{Map, Value};

use super::{MAX_COUNTED_MISSED, Pacing, Scheduler};
use crate::error::{Error, Result};
use crate::report::{Lease, RunReport, RunStatus, RunTrigger};
use crate::schedule::CronSchedule;
use crate::store::{on_db, parse_json};
use crate::task::{HeartbeatTask, TaskRegistry};

/// What to claim.
pub(super) enum ClaimRequest {
    /// Everything due now.
    Due {
        /// The tier to judge tasks' minimum tiers and pacing by.
        tier: SurvivalTier,
    },
    /// One schedule, now, whatever its next firing.
    Manual {
        /// The schedule.
        name: String,
        /// The tier the task is told it runs in.
        tier: SurvivalTier,
    },
}

/// Which run an attempt belongs to: enough to record its result, even if its task panicked.
#[derive(Debug, Clone)]
pub(super) struct RunKey {
    pub run_id: i64,
    pub schedule: String,
    pub task: String,
    pub trigger: RunTrigger,
    pub scheduled_for: i64,
    pub attempt: u32,
    pub missed: u32,
    pub max_retries: u32,
}

/// A run this scheduler claimed and must now run.
pub(super) struct ClaimedRun {
    pub key: RunKey,
    pub task: Arc<dyn HeartbeatTask>,
    pub params: Map<String, Value>,
    pub tier: SurvivalTier,
}

/// The outcome of one claim transaction.
#[derive(Default)]
pub(super) struct Claimed {
    /// Runs to start.
    pub to_run: Vec<ClaimedRun>,
    /// Runs settled without running (skipped or abandoned).
    pub settled: Vec<RunReport>,
}

impl Scheduler {
    /// Runs one claim transaction on the blocking pool.
    pub(super) async fn claim(&self, request: ClaimRequest) -> Result<Claimed> {
        let this = self.clone();
        on_db(&self.inner.db, move |db| {
            // Read the time with the connection in hand, so it is not stale by the time the
            // write lock is held.
            let now = this.inner.clock.now_ms();
            db.write(|tx| {
                let mut claim = Claim {
                    tx,
                    now,
                    owner: &this.inner.owner,
                    tasks: &this.inner.tasks,
                    pacing: this.pacing(),
                    claimed: Claimed::default(),
                };
                match request {
                    ClaimRequest::Due { tier } => {
                        claim.reclaim_lapsed(tier)?;
                        claim.resume_retries(tier)?;
                        claim.fire_due(tier)?;
                    }
                    ClaimRequest::Manual { name, tier } => claim.manual(&name, tier)?,
                }
                Ok(claim.claimed)
            })
        })
        .await
    }
}

/// Reads a stored trigger name.
pub(super) fn parse_trigger(text: &str, key: &str) -> Result<RunTrigger> {
    match text {
        "schedule" => Ok(RunTrigger::Schedule),
        "manual" => Ok(RunTrigger::Manual),
        other => Err(Error::CorruptRow {
            table: "heartbeat_runs",
            key: key.to_owned(),
            detail: format!("unknown trigger {other:?}"),
        }),
    }
}

/// Whether a run may start, and with what.
enum Gate {
    Run(Arc<dyn HeartbeatTask>, Map<String, Value>),
    Refuse(String),
}

/// A run row about to be inserted.
struct NewRun<'r> {
    schedule: &'r str,
    task: &'r str,
    trigger: RunTrigger,
    scheduled_for: i64,
    missed: u32,
    start: Start<'r>,
}

/// How a new run row starts: claimed (and leased), or settled at once as skipped.
enum Start<'r> {
    Running { lease_expires_at: i64 },
    Skipped { why: &'r str },
}

/// A due schedule row.
struct DueSchedule {
    name: String,
    cron: String,
    task: String,
    params_json: String,
    next_run_at: i64,
}

struct Claim<'a> {
    tx: &'a Transaction<'a>,
    now: i64,
    owner: &'a str,
    tasks: &'a TaskRegistry,
    pacing: Pacing,
    claimed: Claimed,
}

impl Claim<'_> {
    /// Enabled schedules whose next firing passed and that have no run in flight.
    fn fire_due(&mut self, tier: SurvivalTier) -> Result<()> {
        let due = {
            let mut statement = self.tx.prepare_cached(
                "SELECT name, cron, task, params_json, next_run_at FROM heartbeat_schedules
                 WHERE enabled = 1 AND next_run_at <= ?1
                   AND (lease_owner IS NULL OR lease_expires_at <= ?1)
                 ORDER BY next_run_at, name",
            )?;
            statement
                .query_map([self.now], |row| {
                    Ok(DueSchedule {
                        name: row.get(0)?,
                        cron: row.get(1)?,
                        task: row.get(2)?,
                        params_json: row.get(3)?,
                        next_run_at: row.get(4)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?
        };
        for schedule in due {
            self.fire(schedule, tier)?;
        }
        Ok(())
    }

    fn fire(&mut self, schedule: DueSchedule, tier: SurvivalTier) -> Result<()> {
        let cron = match CronSchedule::from_normalized(&schedule.cron) {
            Ok(cron) => cron,
            Err(error) => {
                let why = format!(
                    "the stored cron expression does not parse ({error}); save heartbeat.yml \
                     again to re-sync the table"
                );
                let due = schedule.next_run_at;
                return self.skip(&schedule, due, 0, None, why);
            }
        };
        // Coalesce: one run for the latest firing at or before now.
        let fired = cron
            .latest_at_or_before(self.now)
            .filter(|&latest| latest >= schedule.next_run_at)
            .unwrap_or(schedule.next_run_at);
        let missed = cron.count_between(schedule.next_run_at, fired, MAX_COUNTED_MISSED);
        let next = self.pacing.next_run(&cron, fired, tier);
        let gate = self.gate(
            &schedule.name,
            &schedule.task,
            Some(&schedule.params_json),
            Some(true),
            tier,
        )?;
        let (task, params) = match gate {
            Gate::Refuse(why) => return self.skip(&schedule, fired, missed, next, why),
            Gate::Run(task, params) => (task, params),
        };
        let lease = super::Scheduler::lease_until(self.now, task.timeout());
        let run_id = self.insert_run(&NewRun {
            schedule: &schedule.name,
            task: &schedule.task,
            trigger: RunTrigger::Schedule,
            scheduled_for: fired,
            missed,
            start: Start::Running {
                lease_expires_at: lease,
            },
        })?;
        let Some(run_id) = run_id else {
            // Another scheduler already recorded this firing: it ran (or runs) there.
            tracing::debug!(schedule = %schedule.name, scheduled_for = fired,
                "heartbeat firing already claimed elsewhere");
            self.tx
                .prepare_cached("UPDATE heartbeat_schedules SET next_run_at = ?2 WHERE name = ?1")?
                .execute(params![schedule.name, next])?;
            return Ok(());
        };
        self.tx
            .prepare_cached(
                "UPDATE heartbeat_schedules SET next_run_at = ?2, lease_owner = ?3,
                     lease_expires_at = ?4
                 WHERE name = ?1",
            )?
            .execute(params![schedule.name, next, self.owner, lease])?;
        self.claimed.to_run.push(ClaimedRun {
            key: RunKey {
                run_id,
                schedule: schedule.name,
                task: schedule.task,
                trigger: RunTrigger::Schedule,
                scheduled_for: fired,
                attempt: 1,
                missed,
                max_retries: task.max_retries(),
            },
            task,
            params,
            tier,
        });
        Ok(())
    }

    /// `automaton heartbeat run NAME`: a run now, whatever the schedule says.
    fn manual(&mut self, name: &str, tier: SurvivalTier) -> Result<()> {
        let row: Option<(String, String)> = self
            .tx
            .prepare_cached("SELECT task, params_json FROM heartbeat_schedules WHERE name = ?1")?
            .query_row([name], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let Some((task_name, params_json)) = row else {
            let known = self
                .tx
                .prepare_cached("SELECT name FROM heartbeat_schedules ORDER BY name")?
                .query_map([], |row| row.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()?;
            return Err(Error::UnknownSchedule {
                name: name.to_owned(),
                known,
            });
        };
        let Some(task) = self.tasks.get(&task_name) else {
            return Err(Error::UnknownTask {
                entry: name.to_owned(),
                task: task_name,
                known: self.tasks.names(),
            });
        };
        let live_lease: Option<Lease> = self
            .tx
            .prepare_cached(
                "SELECT lease_owner, lease_expires_at FROM heartbeat_schedules
                 WHERE name = ?1 AND lease_owner IS NOT NULL AND lease_expires_at > ?2",
            )?
            .query_row(params![name, self.now], |row| {
                Ok(Lease {
                    owner: row.get(0)?,
                    expires_at: row.get(1)?,
                })
            })
            .optional()?;
        if let Some(lease) = live_lease {
            return Err(Error::ScheduleBusy {
                name: name.to_owned(),
                owner: lease.owner,
                lease_expires_at: lease.expires_at,
            });
        }
        let params = parse_json("heartbeat_schedules", name, &params_json)?;
        let lease = super::Scheduler::lease_until(self.now, task.timeout());
        let run_id = self
            .insert_run(&NewRun {
                schedule: name,
                task: &task_name,
                trigger: RunTrigger::Manual,
                scheduled_for: self.now,
                missed: 0,
                start: Start::Running {
                    lease_expires_at: lease,
                },
            })?
            .ok_or_else(|| Error::RunExists {
                name: name.to_owned(),
                scheduled_for: self.now,
            })?;
        self.take_lease(name, lease)?;
        self.claimed.to_run.push(ClaimedRun {
            key: RunKey {
                run_id,
                schedule: name.to_owned(),
                task: task_name,
                trigger: RunTrigger::Manual,
                scheduled_for: self.now,
                attempt: 1,
                missed: 0,
                max_retries: task.max_retries(),
            },
            task,
            params,
            tier,
        });
        Ok(())
    }

    /// Whether a run of `task` for `schedule` may start now.
    fn gate(
        &self,
        schedule: &str,
        task: &str,
        params_json: Option<&str>,
        enabled: Option<bool>,
        tier: SurvivalTier,
    ) -> Result<Gate> {
        let Some(params_json) = params_json else {
            return Ok(Gate::Refuse(format!(
                "schedule {schedule:?} was removed from heartbeat.yml"
            )));
        };
        if enabled == Some(false) {
            return Ok(Gate::Refuse(format!("schedule {schedule:?} is disabled")));
        }
        let Some(handler) = self.tasks.get(task) else {
            return Ok(Gate::Refuse(format!(
                "task {task:?} is not registered in this runtime (registered: {}); fix the \
                 entry's task in heartbeat.yml",
                self.tasks.names().join(", ")
            )));
        };
        if tier < handler.min_tier() {
            return Ok(Gate::Refuse(format!(
                "the survival tier is {tier}, below task {task:?}'s minimum tier {}",
                handler.min_tier()
            )));
        }
        let params = parse_json("heartbeat_schedules", schedule, params_json)?;
        Ok(Gate::Run(handler, params))
    }

    /// Records a firing that does not run, and moves the schedule on.
    fn skip(
        &mut self,
        schedule: &DueSchedule,
        fired: i64,
        missed: u32,
        next: Option<i64>,
        why: String,
    ) -> Result<()> {
        let run_id = self.insert_run(&NewRun {
            schedule: &schedule.name,
            task: &schedule.task,
            trigger: RunTrigger::Schedule,
            scheduled_for: fired,
            missed,
            start: Start::Skipped { why: &why },
        })?;
        self.tx
            .prepare_cached(
                "UPDATE heartbeat_schedules SET next_run_at = ?2, last_run_at = ?3,
                     last_status = 'skipped', last_error = ?4
                 WHERE name = ?1",
            )?
            .execute(params![schedule.name, next, self.now, why])?;
        if let Some(run_id) = run_id {
            self.claimed.settled.push(RunReport {
                run_id,
                schedule: schedule.name.clone(),
                task: schedule.task.clone(),
                trigger: RunTrigger::Schedule,
                scheduled_for: fired,
                attempt: 1,
                missed,
                status: RunStatus::Skipped,
                result: None,
                error: Some(why),
                retry_at: None,
            });
        }
        Ok(())
    }

    /// Inserts a run row for a firing; `None` when the firing already has one.
    fn insert_run(&self, run: &NewRun<'_>) -> Result<Option<i64>> {
        let (status, started_at, lease_expires_at, ended_at, error) = match run.start {
            Start::Running { lease_expires_at } => (
                RunStatus::Running,
                Some(self.now),
                Some(lease_expires_at),
                None,
                None,
            ),
            Start::Skipped { why } => (RunStatus::Skipped, None, None, Some(self.now), Some(why)),
        };
        Ok(self
            .tx
            .prepare_cached(
                "INSERT INTO heartbeat_runs (schedule, task, trigger, scheduled_for, attempt, owner,
                     started_at, lease_expires_at, ended_at, status, error, missed)
                 VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (schedule, scheduled_for) DO NOTHING
                 RETURNING id",
            )?
            .query_row(
                params![
                    run.schedule,
                    run.task,
                    run.trigger.as_str(),
                    run.scheduled_for,
                    self.owner,
                    started_at,
                    lease_expires_at,
                    ended_at,
                    status.as_str(),
                    error,
                    run.missed,
                ],
                |row| row.get(0),
            )
            .optional()?)
    }

    fn take_lease(&self, schedule: &str, lease_expires_at: i64) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE heartbeat_schedules SET lease_owner = ?2, lease_expires_at = ?3
                 WHERE name = ?1",
            )?
            .execute(params![schedule, self.owner, lease_expires_at])?;
        Ok(())
    }
}
