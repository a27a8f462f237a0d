//! Running claimed tasks and recording how they ended.
//!
//! Each attempt runs in its own tokio task (owned by a `JoinSet`, so dropping the set stops
//! them) under `tokio::time::timeout(task.timeout())`. On timeout or shutdown the task's
//! future is dropped and its cancellation token fired, so work it spawned stops too.
//!
//! The retry policy lives in [`retry_at`]: a transient failure, a timeout or a shutdown
//! interruption of a scheduled run is retried while `attempt <= max_retries`, after
//! [`RETRY_BACKOFF_BASE`] doubled per attempt (capped at [`RETRY_BACKOFF_CAP`]), unless the
//! schedule's next firing comes first. Permanent failures, panics and manual runs are not
//! retried.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{OptionalExtension, Transaction, params};
use tokio::task::{Id, JoinSet};
use tokio_util::sync::CancellationToken;

use super::claim::{ClaimedRun, RunKey};
use super::{RETRY_BACKOFF_BASE, RETRY_BACKOFF_CAP, Scheduler};
use crate::error::{Error, Result};
use crate::report::{RunReport, RunStatus, RunTrigger};
use crate::store::on_db;
use crate::task::{TaskContext, TaskFailure, TaskOutcome};
use crate::wake::insert_or_refresh;

/// How one attempt ended.
pub(super) enum Ended {
    Ok(TaskOutcome),
    Failed(TaskFailure),
    TimedOut(Duration),
    /// The scheduler shut down while it ran.
    Interrupted,
    /// The task panicked (a bug in it).
    Panicked(String),
}

/// One finished attempt, waiting to be recorded.
pub(super) struct Completion {
    pub key: RunKey,
    pub ended: Ended,
}

/// Attempts in flight, each in its own tokio task.
#[derive(Default)]
pub(super) struct InFlight {
    set: JoinSet<Completion>,
    keys: HashMap<Id, RunKey>,
}

impl InFlight {
    /// Starts `run`; its cancellation token is a child of `shutdown`.
    pub fn spawn(&mut self, run: ClaimedRun, scheduler: &Scheduler, shutdown: &CancellationToken) {
        let key = run.key.clone();
        let clock = Arc::clone(&scheduler.inner.clock);
        let wake = scheduler.inner.wake.clone();
        let shutdown = shutdown.clone();
        let handle = self.set.spawn(async move {
            let cancel = shutdown.child_token();
            let ctx = TaskContext {
                schedule: run.key.schedule.clone(),
                params: run.params,
                scheduled_for: run.key.scheduled_for,
                attempt: run.key.attempt,
                tier: run.tier,
                cancel: cancel.clone(),
                wake,
                clock,
            };
            let timeout = run.task.timeout();
            let ended = tokio::select! {
                biased;
                () = shutdown.cancelled() => Ended::Interrupted,
                result = tokio::time::timeout(timeout, run.task.run(ctx)) => match result {
                    Ok(Ok(outcome)) => Ended::Ok(outcome),
                    Ok(Err(failure)) => Ended::Failed(failure),
                    Err(_elapsed) => Ended::TimedOut(timeout),
                },
            };
            // The run's future is gone; stop whatever it left behind.
            cancel.cancel();
            Completion {
                key: run.key,
                ended,
            }
        });
        self.keys.insert(handle.id(), key);
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The next attempt to finish; `None` when none is in flight.
    pub async fn next(&mut self) -> Option<Completion> {
        loop {
            match self.set.join_next_with_id().await? {
                Ok((id, completion)) => {
                    self.keys.remove(&id);
                    return Some(completion);
                }
                Err(error) => {
                    if let Some(key) = self.keys.remove(&error.id()) {
                        return Some(Completion {
                            key,
                            ended: Ended::Panicked(error.to_string()),
                        });
                    }
                }
            }
        }
    }
}

impl Scheduler {
    /// Runs `runs` concurrently and waits for all of them.
    pub(super) async fn execute_all(&self, runs: Vec<ClaimedRun>) -> Vec<Completion> {
        let mut in_flight = InFlight::default();
        let shutdown = CancellationToken::new();
        for run in runs {
            in_flight.spawn(run, self, &shutdown);
        }
        let mut completions = Vec::new();
        while let Some(completion) = in_flight.next().await {
            completions.push(completion);
        }
        completions
    }

    /// Records `completions` in one transaction, raising their wake events with them.
    pub(super) async fn record(&self, completions: Vec<Completion>) -> Result<Vec<RunReport>> {
        if completions.is_empty() {
            return Ok(Vec::new());
        }
        let this = self.clone();
        let (reports, raised) = on_db(&self.inner.db, move |db| {
            let now = this.inner.clock.now_ms();
            db.write(|tx| {
                let mut reports = Vec::with_capacity(completions.len());
                let mut raised = false;
                for completion in completions {
                    let (report, woke) = record_one(tx, &this.inner.owner, now, completion)?;
                    reports.push(report);
                    raised |= woke;
                }
                Ok::<_, Error>((reports, raised))
            })
        })
        .await?;
        if raised {
            self.inner.wake.notify_waiters();
        }
        Ok(reports)
    }
}

/// Writes one attempt's end; returns its report and whether it raised a wake event.
fn record_one(
    tx: &Transaction<'_>,
    owner: &str,
    now: i64,
    completion: Completion,
) -> Result<(RunReport, bool)> {
    let Completion { key, ended } = completion;
    let (status, result, error, retryable, wake) = match ended {
        Ended::Ok(outcome) => (
            RunStatus::Ok,
            Some(outcome.summary),
            None,
            false,
            outcome.wake,
        ),
        Ended::Failed(failure) => (
            RunStatus::Failed,
            None,
            Some(failure.message),
            failure.retryable,
            None,
        ),
        Ended::TimedOut(timeout) => (
            RunStatus::TimedOut,
            None,
            Some(format!(
                "the task ran longer than its {} s timeout and was cancelled",
                timeout.as_secs_f64()
            )),
            true,
            None,
        ),
        Ended::Interrupted => (
            RunStatus::Failed,
            None,
            Some("interrupted: the heartbeat shut down before the task finished".to_owned()),
            true,
            None,
        ),
        Ended::Panicked(detail) => (
            RunStatus::Failed,
            None,
            Some(format!("the task panicked (a bug in it): {detail}")),
            false,
            None,
        ),
    };
    let retry_at = if retryable {
        retry_at(tx, &key, now)?
    } else {
        None
    };
    let result_json = result.as_ref().map(serde_json::Value::to_string);
    let updated = tx
        .prepare_cached(
            "UPDATE heartbeat_runs SET status = ?4, ended_at = ?5, result_json = ?6, error = ?7,
                 retry_at = ?8
             WHERE id = ?1 AND owner = ?2 AND attempt = ?3 AND status = 'running'",
        )?
        .execute(params![
            key.run_id,
            owner,
            key.attempt,
            status.as_str(),
            now,
            result_json,
            error,
            retry_at,
        ])?;
    let report = RunReport {
        run_id: key.run_id,
        schedule: key.schedule.clone(),
        task: key.task.clone(),
        trigger: key.trigger,
        scheduled_for: key.scheduled_for,
        attempt: key.attempt,
        missed: key.missed,
        status,
        result,
        error,
        retry_at,
    };
    if updated == 0 {
        // The lease lapsed and another scheduler took the run over: its attempt is the one
        // of record now.
        tracing::warn!(run_id = key.run_id, schedule = %key.schedule, attempt = key.attempt,
            "heartbeat run was taken over after its lease lapsed; this attempt's result is \
             not recorded");
        return Ok((report, false));
    }
    tx.prepare_cached(
        "UPDATE heartbeat_schedules SET last_run_at = ?3, last_status = ?4, last_error = ?5,
             last_result_json = COALESCE(?6, last_result_json),
             lease_owner = CASE WHEN lease_owner = ?2 THEN NULL ELSE lease_owner END,
             lease_expires_at = CASE WHEN lease_owner = ?2 THEN NULL ELSE lease_expires_at END
         WHERE name = ?1",
    )?
    .execute(params![
        key.schedule,
        owner,
        now,
        status.as_str(),
        report.error,
        result_json,
    ])?;
    match status {
        RunStatus::Ok => tracing::info!(run_id = key.run_id, schedule = %key.schedule,
            attempt = key.attempt, missed = key.missed, "heartbeat run ok"),
        RunStatus::Failed | RunStatus::TimedOut => tracing::warn!(run_id = key.run_id,
            schedule = %key.schedule, attempt = key.attempt, status = status.as_str(),
            error = report.error.as_deref().unwrap_or_default(), retry_at,
            "heartbeat run did not succeed"),
        RunStatus::Running | RunStatus::Abandoned | RunStatus::Skipped => {}
    }
    let mut woke = false;
    if let Some(request) = wake {
        let source = format!("heartbeat:{}", key.schedule);
        // A malformed request is the task's bug; its result still stands.
        if let Err(error) = request.validate(&source) {
            tracing::error!(schedule = %key.schedule, %error, hint = %error.hint(),
                "heartbeat task raised an invalid wake event; it was dropped");
        } else {
            insert_or_refresh(tx, &request, &source, now)?;
            woke = true;
        }
    }
    Ok((report, woke))
}

/// When a retryable end of `key`'s attempt is attempted again, if it is.
fn retry_at(tx: &Transaction<'_>, key: &RunKey, now: i64) -> Result<Option<i64>> {
    if key.trigger == RunTrigger::Manual || key.attempt > key.max_retries {
        return Ok(None);
    }
    let doublings = key.attempt.saturating_sub(1).min(16);
    let backoff = RETRY_BACKOFF_BASE
        .saturating_mul(1 << doublings)
        .min(RETRY_BACKOFF_CAP);
    let at = now.saturating_add(i64::try_from(backoff.as_millis()).unwrap_or(i64::MAX));
    let next_firing: Option<Option<i64>> = tx
        .prepare_cached("SELECT next_run_at FROM heartbeat_schedules WHERE name = ?1")?
        .query_row([&key.schedule], |row| row.get(0))
        .optional()?;
    Ok(match next_firing {
        // The schedule is gone: nothing to retry for.
        None => None,
        Some(Some(next)) if next <= at => None,
        Some(_) => Some(at),
    })
}
