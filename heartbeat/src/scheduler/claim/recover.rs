//! Crash recovery and retries inside the claim transaction: runs whose lease lapsed (their
//! process died mid-run) are retried on the same row while attempts remain and abandoned
//! after; failed runs whose retry time came are resumed.

use std::sync::Arc;

use automaton_tools::survival::SurvivalTier;
use rusqlite::params;
use serde_json::{Map, Value};

use super::{Claim, ClaimedRun, Gate, RunKey, parse_trigger};
use crate::error::Result;
use crate::report::{Lease, RunReport, RunStatus, RunTrigger};
use crate::task::HeartbeatTask;

/// A run row found in the claim queries, with its schedule's current state (when the
/// schedule still exists).
struct PendingRun {
    run_id: i64,
    schedule: String,
    task: String,
    trigger: RunTrigger,
    scheduled_for: i64,
    attempt: u32,
    missed: u32,
    params_json: Option<String>,
    enabled: Option<bool>,
    schedule_lease: Option<Lease>,
}

impl Claim<'_> {
    /// Runs still `running` whose lease lapsed: their process stopped (or hung past its
    /// timeout and grace). Retried on the same row while attempts remain, else abandoned.
    pub(super) fn reclaim_lapsed(&mut self, tier: SurvivalTier) -> Result<()> {
        let lapsed = self.pending_runs(
            "WHERE r.status = 'running' AND r.lease_expires_at <= ?1 ORDER BY r.id",
        )?;
        for run in lapsed {
            let trigger = run.trigger;
            let gate = self.gate_run(&run, tier)?;
            let lost = format!(
                "attempt {} lost its lease: the process running it stopped, or it hung past its \
                 timeout",
                run.attempt
            );
            let (task, params) = match gate {
                Gate::Refuse(why) => {
                    self.abandon(&run, trigger, format!("{lost}; not retried: {why}"))?;
                    continue;
                }
                Gate::Run(..) if trigger == RunTrigger::Manual => {
                    self.abandon(
                        &run,
                        trigger,
                        format!("{lost}; manual runs are not retried"),
                    )?;
                    continue;
                }
                Gate::Run(task, _) if run.attempt > task.max_retries() => {
                    let why = format!(
                        "{lost}; its {} retries are spent, so it waits for the next firing",
                        task.max_retries()
                    );
                    self.abandon(&run, trigger, why)?;
                    continue;
                }
                Gate::Run(task, params) => (task, params),
            };
            let lease = super::Scheduler::lease_until(self.now, task.timeout());
            self.tx
                .prepare_cached(
                    "UPDATE heartbeat_runs SET attempt = attempt + 1, owner = ?2, started_at = ?3,
                         lease_expires_at = ?4, error = ?5
                     WHERE id = ?1 AND status = 'running'",
                )?
                .execute(params![run.run_id, self.owner, self.now, lease, lost])?;
            self.take_lease(&run.schedule, lease)?;
            self.push_run(run, trigger, task, params, tier);
        }
        Ok(())
    }

    /// Failed or timed-out runs whose retry time came, resumed on the same row. A retry
    /// whose schedule is gone, disabled, or whose task cannot run now is dropped (the next
    /// firing is the next chance); one whose schedule has a run in flight waits.
    pub(super) fn resume_retries(&mut self, tier: SurvivalTier) -> Result<()> {
        let due = self.pending_runs(
            "WHERE r.retry_at IS NOT NULL AND r.retry_at <= ?1 ORDER BY r.retry_at, r.id",
        )?;
        for run in due {
            if run
                .schedule_lease
                .as_ref()
                .is_some_and(|lease| lease.expires_at > self.now)
            {
                continue;
            }
            let trigger = run.trigger;
            let gate = self.gate_run(&run, tier)?;
            let (task, params) = match gate {
                Gate::Refuse(why) => {
                    tracing::debug!(run_id = run.run_id, schedule = %run.schedule, %why,
                        "heartbeat retry dropped");
                    self.tx
                        .prepare_cached("UPDATE heartbeat_runs SET retry_at = NULL WHERE id = ?1")?
                        .execute([run.run_id])?;
                    continue;
                }
                Gate::Run(task, params) => (task, params),
            };
            let lease = super::Scheduler::lease_until(self.now, task.timeout());
            self.tx
                .prepare_cached(
                    "UPDATE heartbeat_runs SET status = 'running', attempt = attempt + 1,
                         owner = ?2, started_at = ?3, lease_expires_at = ?4, ended_at = NULL,
                         retry_at = NULL
                     WHERE id = ?1",
                )?
                .execute(params![run.run_id, self.owner, self.now, lease])?;
            self.take_lease(&run.schedule, lease)?;
            self.push_run(run, trigger, task, params, tier);
        }
        Ok(())
    }

    /// Run rows matching `filter` (which binds `?1` to now), with their schedules' state.
    fn pending_runs(&self, filter: &str) -> Result<Vec<PendingRun>> {
        let sql = format!(
            "SELECT r.id, r.schedule, r.task, r.trigger, r.scheduled_for, r.attempt, r.missed,
                    s.params_json, s.enabled, s.lease_owner, s.lease_expires_at
             FROM heartbeat_runs r LEFT JOIN heartbeat_schedules s ON s.name = r.schedule
             {filter}"
        );
        let mut statement = self.tx.prepare_cached(&sql)?;
        let mut rows = statement.query([self.now])?;
        let mut runs = Vec::new();
        while let Some(row) = rows.next()? {
            let run_id: i64 = row.get(0)?;
            let trigger: String = row.get(3)?;
            let lease_owner: Option<String> = row.get(9)?;
            let lease_expires_at: Option<i64> = row.get(10)?;
            runs.push(PendingRun {
                run_id,
                schedule: row.get(1)?,
                task: row.get(2)?,
                trigger: parse_trigger(&trigger, &run_id.to_string())?,
                scheduled_for: row.get(4)?,
                attempt: row.get(5)?,
                missed: row.get(6)?,
                params_json: row.get(7)?,
                enabled: row.get(8)?,
                schedule_lease: lease_owner
                    .zip(lease_expires_at)
                    .map(|(owner, expires_at)| Lease { owner, expires_at }),
            });
        }
        Ok(runs)
    }

    /// Whether an existing run may start another attempt now.
    fn gate_run(&self, run: &PendingRun, tier: SurvivalTier) -> Result<Gate> {
        self.gate(
            &run.schedule,
            &run.task,
            run.params_json.as_deref(),
            run.enabled,
            tier,
        )
    }

    /// Gives up on a run whose lease lapsed.
    fn abandon(&mut self, run: &PendingRun, trigger: RunTrigger, why: String) -> Result<()> {
        self.tx
            .prepare_cached(
                "UPDATE heartbeat_runs SET status = 'abandoned', ended_at = ?2, error = ?3,
                     retry_at = NULL
                 WHERE id = ?1",
            )?
            .execute(params![run.run_id, self.now, why])?;
        // The schedule's lease was taken with the run's and lapsed with it.
        self.tx
            .prepare_cached(
                "UPDATE heartbeat_schedules SET last_run_at = ?2, last_status = 'abandoned',
                     last_error = ?3,
                     lease_owner = CASE WHEN lease_expires_at <= ?2 THEN NULL ELSE lease_owner END,
                     lease_expires_at =
                         CASE WHEN lease_expires_at <= ?2 THEN NULL ELSE lease_expires_at END
                 WHERE name = ?1",
            )?
            .execute(params![run.schedule, self.now, why])?;
        tracing::warn!(run_id = run.run_id, schedule = %run.schedule, attempt = run.attempt,
            reason = %why, "heartbeat run abandoned");
        self.claimed.settled.push(RunReport {
            run_id: run.run_id,
            schedule: run.schedule.clone(),
            task: run.task.clone(),
            trigger,
            scheduled_for: run.scheduled_for,
            attempt: run.attempt,
            missed: run.missed,
            status: RunStatus::Abandoned,
            result: None,
            error: Some(why),
            retry_at: None,
        });
        Ok(())
    }

    fn push_run(
        &mut self,
        run: PendingRun,
        trigger: RunTrigger,
        task: Arc<dyn HeartbeatTask>,
        params: Map<String, Value>,
        tier: SurvivalTier,
    ) {
        self.claimed.to_run.push(ClaimedRun {
            key: RunKey {
                run_id: run.run_id,
                schedule: run.schedule,
                task: run.task,
                trigger,
                scheduled_for: run.scheduled_for,
                attempt: run.attempt.saturating_add(1),
                missed: run.missed,
                max_retries: task.max_retries(),
            },
            task,
            params,
            tier,
        });
    }
}
