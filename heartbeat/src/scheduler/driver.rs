//! The long-running loop: reload `heartbeat.yml` when its text changed, claim what is due,
//! start it, and sleep until the earliest of the next due time, `defaultIntervalMs`, a sync
//! that changed the table, a run finishing, or shutdown.
//!
//! Idle, the loop is one timer: no polling faster than `defaultIntervalMs` (60 s by default),
//! so a sleeping automaton costs near-zero CPU. Runs do not block the loop: each is its own
//! tokio task, recorded when it finishes, so a slow task does not delay other schedules.

use std::path::PathBuf;
use std::time::Duration;

use automaton_tools::survival::SurvivalTier;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Scheduler;
use super::claim::ClaimRequest;
use super::execute::{Completion, InFlight};
use crate::config::HeartbeatConfig;
use crate::error::Error;

/// The sleep when something is already due again right after a tick (a run of it is in
/// flight elsewhere, or a retry waits for one): cron fires on whole seconds, so waiting one
/// second loses nothing and keeps the loop from spinning.
const RECHECK_AFTER: Duration = Duration::from_secs(1);

/// `heartbeat.yml` as the driver last saw it.
struct WatchedFile {
    path: PathBuf,
    /// The text last acted on (synced, or refused and logged).
    last_text: Option<String>,
    /// The last read error logged, so a missing file is reported once, not every loop.
    last_read_error: Option<String>,
}

impl Scheduler {
    /// Drives the heartbeat until `cancel` fires: reloads `config_path` when its text
    /// changes (a file that does not load is logged with its hint and the last good table
    /// keeps running), ticks with the tier `tier` holds, and sleeps until the next due time
    /// or `defaultIntervalMs`, whichever is sooner.
    ///
    /// On cancellation, runs in flight have their tokens cancelled, are recorded as
    /// interrupted (retried at the next start if their retries allow), and the loop returns.
    /// Errors are logged, never returned: the heartbeat keeps beating through a bad file or
    /// a busy database.
    pub async fn run(
        self,
        cancel: CancellationToken,
        tier: watch::Receiver<SurvivalTier>,
        config_path: PathBuf,
    ) {
        let mut file = WatchedFile {
            path: config_path,
            last_text: None,
            last_read_error: None,
        };
        let mut in_flight = InFlight::default();
        loop {
            self.reload(&mut file).await;
            let current_tier = *tier.borrow();
            match self.claim(ClaimRequest::Due { tier: current_tier }).await {
                Ok(claimed) => {
                    for run in claimed.to_run {
                        in_flight.spawn(run, &self, &cancel);
                    }
                }
                Err(error) => {
                    tracing::error!(%error, hint = %error.hint(), "heartbeat tick failed");
                }
            }
            let sleep_for = self.sleep_duration().await;
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(sleep_for) => {}
                () = self.inner.changed.notified() => {}
                Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                    self.record_logged(done).await;
                }
            }
        }
        // Shutdown: every run's token is a child of `cancel`, so they are stopping.
        while let Some(done) = in_flight.next().await {
            self.record_logged(done).await;
        }
    }

    async fn record_logged(&self, completion: Completion) {
        if let Err(error) = self.record(vec![completion]).await {
            tracing::error!(%error, hint = %error.hint(),
                "a heartbeat run's result could not be recorded; its lease will lapse and it \
                 will be retried");
        }
    }

    /// How long to sleep: until the next due time, at most `defaultIntervalMs`.
    async fn sleep_duration(&self) -> Duration {
        let interval_ms = i64::try_from(self.pacing().default_interval_ms).unwrap_or(i64::MAX);
        let now = self.inner.clock.now_ms();
        let next_due = match self.next_due_at().await {
            Ok(next_due) => next_due,
            Err(error) => {
                tracing::error!(%error, hint = %error.hint(), "heartbeat could not read its next due time");
                None
            }
        };
        let wake_at = next_due.map_or(now.saturating_add(interval_ms), |due| {
            due.min(now.saturating_add(interval_ms))
        });
        match u64::try_from(wake_at.saturating_sub(now)) {
            Ok(millis) if millis > 0 => Duration::from_millis(millis),
            _ => RECHECK_AFTER,
        }
    }

    /// Syncs the table from `file` if its text changed since the last look.
    async fn reload(&self, file: &mut WatchedFile) {
        let text = match tokio::fs::read_to_string(&file.path).await {
            Ok(text) => text,
            Err(source) => {
                let error = Error::Io {
                    path: file.path.clone(),
                    source,
                };
                let message = error.to_string();
                if file.last_read_error.as_ref() != Some(&message) {
                    tracing::warn!(%error, hint = %error.hint(),
                        "heartbeat.yml could not be read; the last good schedule keeps running");
                    file.last_read_error = Some(message);
                }
                return;
            }
        };
        file.last_read_error = None;
        if file.last_text.as_ref() == Some(&text) {
            return;
        }
        let outcome = match HeartbeatConfig::parse(&text) {
            Ok(config) => self.sync(&config).await,
            Err(error) => Err(error),
        };
        match outcome {
            Ok(report) => {
                if report.changed() {
                    tracing::info!(added = ?report.added, updated = ?report.updated,
                        removed = ?report.removed, "heartbeat.yml synced");
                }
                file.last_text = Some(text);
            }
            // A database failure is retried on the next loop; a bad file waits for an edit.
            Err(error) if error.is_storage() => {
                tracing::error!(%error, hint = %error.hint(), "heartbeat.yml could not be synced");
            }
            Err(error) => {
                tracing::warn!(%error, hint = %error.hint(),
                    "heartbeat.yml refused; the last good schedule keeps running");
                file.last_text = Some(text);
            }
        }
    }
}
