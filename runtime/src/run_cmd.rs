//! `automaton run`: the long-lived process of an automaton. It holds the home's run lock,
//! marks tool calls a previous process left unfinished, and each time the agent should think
//! it starts a stretch ([`crate::stretch`]) — turns in a child process until the agent sleeps —
//! then anchors the receipt chain and rests until the sleep ends or it is told to stop.
//! SIGTERM and SIGINT reach the running stretch, which finishes or cancels its tool call and
//! persists the turn; then this process exits 0.

use crate::agent::run::RunEnd;
use crate::config::AutomatonConfig;
use crate::error::{Error, Result};
use crate::heartbeat_host::{self, HeartbeatHost};
use crate::home::{Home, PRIVATE_FILE_MODE};
use crate::inference::{self, Inference};
use crate::output::{OutputMode, print_json};
use crate::stretch::{self, StretchExit};
use crate::toolbox::{self, ProcessFacts};
use crate::{anchor, preflight, state, survival};
use automaton_heartbeat::Woken;
use automaton_tools::audit;
use automaton_tools::clock::Clock;
use automaton_tools::db::StateDb;
use automaton_tools::dispatch::SharedDb;
use automaton_tools::resilience::RetryPolicy;
use automaton_tools::survival::SurvivalTier;
use serde::Serialize;
use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Stretches that may crash in a row before `run` gives up.
pub const MAX_CONSECUTIVE_CRASHES: u32 = 5;
/// The rest after the first crash; doubled after each further one.
const CRASH_BACKOFF: Duration = Duration::from_secs(10);
/// How often a resting `run` looks for wake events raised by another process (events raised
/// in this process wake it at once).
const WAKE_POLL: Duration = Duration::from_secs(3);
/// How often a dead automaton looks at its standing again.
const DEAD_RECHECK: Duration = Duration::from_secs(60);
/// The rest when every provider failed.
const INFERENCE_RETRY: Duration = Duration::from_secs(60);
/// The rest when a budget refused even the smallest call and no window will make room.
const BUDGET_RECHECK: Duration = Duration::from_secs(3600);

/// How the run is bounded.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunBounds {
    /// Stop after this many turns in total.
    pub max_turns: Option<u32>,
    /// Stop the first time the agent sleeps (or cannot think).
    pub until_sleep: bool,
}

/// The final report of `automaton run`.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    /// Turns completed in this run.
    pub turns: u32,
    /// Stretches (waking periods, each its own process) started.
    pub stretches: u32,
    /// Calls a previous process left unfinished, marked interrupted.
    pub interrupted_calls: usize,
    /// How the last stretch ended.
    pub end: RunEnd,
}

/// A notice for whoever started the run: one line on stderr in every mode, since the run may
/// wait a long time (without a provider, forever) before its report, and stdout holds only
/// that report (parsed in JSON mode). In JSON mode the line is `{"notice": "…"}`.
fn say(mode: OutputMode, line: &str) {
    tracing::info!("{line}");
    match mode {
        OutputMode::Json => eprintln!("{}", serde_json::json!({ "notice": line })),
        OutputMode::Human => eprintln!("{}", line.replace('\n', " ")),
    }
}

/// An exclusive lock on a file of the home (`flock`), released when dropped or when the
/// process dies, however it dies.
#[derive(Debug)]
pub struct HomeLock {
    _file: File,
}

impl HomeLock {
    /// The run lock: one `automaton run` per home.
    pub fn run(home: &Home) -> Result<Self> {
        let path = home.root().join("run.lock");
        Self::try_acquire(&path)?.ok_or(Error::Busy(path))
    }

    /// The stretch lock, held by the stretch process for as long as it runs: a stretch
    /// whose run died (it was sent SIGTERM and is finishing its tool call) still holds it.
    pub fn stretch(home: &Home) -> Result<Self> {
        let path = stretch_lock_path(home);
        Self::try_acquire(&path)?.ok_or(Error::StretchRunning(path))
    }

    /// The lock at `path`, or the error `busy` makes when another process holds it.
    pub fn at(path: &std::path::Path, busy: impl FnOnce() -> Error) -> Result<Self> {
        Self::try_acquire(path)?.ok_or_else(busy)
    }

    /// Whether an `automaton run` or its stretch holds `home` now. Probed by taking each lock
    /// and releasing it at once (flock has no query), so a run starting in that instant is
    /// refused as busy; callers probe only when the record says a run is going on.
    pub fn home_in_use(home: &Home) -> Result<bool> {
        for path in [home.root().join("run.lock"), stretch_lock_path(home)] {
            // No lock file: no run ever held it.
            if path.exists() && Self::try_acquire(&path)?.is_none() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Takes the lock at `path`, or `None` when another process holds it.
    fn try_acquire(path: &std::path::Path) -> Result<Option<Self>> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(PRIVATE_FILE_MODE)
            .open(path)
            .map_err(Error::io("opening", path))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(Self { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(errno) => Err(Error::io("locking", path)(errno.into())),
        }
    }
}

fn stretch_lock_path(home: &Home) -> std::path::PathBuf {
    home.root().join("stretch.lock")
}

/// Runs the agent until a bound, a shutdown or (unbounded) forever.
pub async fn run(
    home: &Home,
    facts: &ProcessFacts,
    clock: Arc<dyn Clock>,
    bounds: RunBounds,
    cancel: CancellationToken,
    mode: OutputMode,
) -> Result<RunSummary> {
    let config = preflight::verify_home(home)?;
    toolbox::prepare_workspace(home)?;
    let _lock = HomeLock::run(home)?;
    // A stretch of a run that died may still be finishing its tool call: its calls are not
    // interrupted, and no second stretch may start beside it.
    drop(HomeLock::stretch(home)?);
    let db: SharedDb = Arc::new(Mutex::new(state::open(home)?));
    let endpoints = inference::endpoints(&config, home, &facts.env)?;
    let has_provider = !endpoints.is_empty();
    let mut interrupted_calls = mark_interrupted(&db, clock.as_ref(), mode)?;
    let config = Arc::new(config);
    let credits = crate::platform_credits::for_home(facts, &config, home)?;
    let heartbeat = heartbeat_host::build(
        home,
        Arc::clone(&config),
        Arc::clone(&db),
        endpoints,
        Some(credits),
        Arc::clone(&clock),
        "run",
    )?;
    let beat = CancellationToken::new();
    let driver = tokio::spawn(heartbeat.scheduler.clone().run(
        beat.clone(),
        heartbeat.tier.clone(),
        home.heartbeat(),
    ));
    let shared = Shared {
        home,
        facts,
        clock: &clock,
        cancel: &cancel,
        mode,
        config: &config,
        db: &db,
        heartbeat: &heartbeat,
    };
    let result = supervise(&shared, bounds, has_provider, &mut interrupted_calls).await;
    // The heartbeat stops last: runs in flight are cancelled and recorded.
    beat.cancel();
    if let Err(err) = driver.await {
        tracing::error!(error = %err, "the heartbeat driver ended abnormally");
    }
    let mut summary = result?;
    summary.interrupted_calls = interrupted_calls;
    Ok(summary)
}

/// What the supervising loop borrows.
struct Shared<'a> {
    home: &'a Home,
    facts: &'a ProcessFacts,
    clock: &'a Arc<dyn Clock>,
    cancel: &'a CancellationToken,
    mode: OutputMode,
    config: &'a AutomatonConfig,
    db: &'a SharedDb,
    heartbeat: &'a HeartbeatHost,
}

/// Why the rest between stretches ended.
enum RestEnd {
    /// The time was up.
    Elapsed,
    /// A wake event was taken; its reason.
    Woken(String),
    /// Shutdown.
    Cancelled,
}

/// Rests until `until_ms`, a wake event (consumed here, exactly once) or cancellation. A
/// failure to read the wake events (a locked or briefly unreadable state.db) is logged and
/// the rest goes on: the timer still ends it.
async fn rest(
    heartbeat: &HeartbeatHost,
    clock: &Arc<dyn Clock>,
    until_ms: i64,
    cancel: &CancellationToken,
) -> RestEnd {
    let wait =
        Duration::from_millis(u64::try_from(until_ms.saturating_sub(clock.now_ms())).unwrap_or(0));
    let deadline = tokio::time::sleep(wait.min(Duration::from_secs(365 * 86_400)));
    tokio::pin!(deadline);
    loop {
        let woken = tokio::select! {
            () = &mut deadline => return RestEnd::Elapsed,
            () = cancel.cancelled() => return RestEnd::Cancelled,
            woken = heartbeat.wake.wait(cancel, WAKE_POLL) => woken,
        };
        let taken = match woken {
            Ok(Woken::Cancelled) => return RestEnd::Cancelled,
            Ok(Woken::Pending) => heartbeat.wake.take_next("agent").await,
            Err(err) => Err(err),
        };
        match taken {
            Ok(Some(event)) => return RestEnd::Woken(event.reason),
            // Another consumer took it first; keep resting.
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(error = %err, "reading wake events failed; resting on");
                tokio::select! {
                    () = &mut deadline => return RestEnd::Elapsed,
                    () = cancel.cancelled() => return RestEnd::Cancelled,
                    () = tokio::time::sleep(WAKE_POLL) => {}
                }
            }
        }
    }
}

/// Why the agent is being woken: the reasons not yet delivered to a model, oldest first,
/// each once, the newest [`MAX_WAKE_REASONS`] kept.
#[derive(Debug, Default)]
struct WakeReasons(Vec<String>);

/// The most undelivered wake reasons kept.
const MAX_WAKE_REASONS: usize = 20;

impl WakeReasons {
    fn push(&mut self, reason: String) {
        self.0.retain(|kept| *kept != reason);
        self.0.push(reason);
        if self.0.len() > MAX_WAKE_REASONS {
            self.0.remove(0);
        }
    }

    /// One text for the model, or none.
    fn text(&self) -> Option<String> {
        match self.0.as_slice() {
            [] => None,
            [one] => Some(one.clone()),
            many => Some(many.join("; ")),
        }
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

async fn supervise(
    shared: &Shared<'_>,
    bounds: RunBounds,
    has_provider: bool,
    interrupted_calls: &mut usize,
) -> Result<RunSummary> {
    let Shared {
        home,
        facts,
        clock,
        cancel,
        mode,
        config,
        db,
        heartbeat,
    } = *shared;
    let mut summary = RunSummary {
        turns: 0,
        stretches: 0,
        interrupted_calls: 0,
        end: RunEnd::Shutdown,
    };
    let mut wake = WakeReasons::default();
    wake.push("the runtime started".to_owned());
    let mut crashes = 0_u32;
    let mut was_dead = false;
    loop {
        if !has_provider {
            let hint = inference::InferenceFailure::NoProvider.hint();
            say(
                mode,
                &format!("no inference provider is configured: {hint}"),
            );
            summary.end = RunEnd::NoProvider { hint };
            if !(bounds.until_sleep || bounds.max_turns.is_some()) {
                // Without a model the agent cannot think; the heartbeat keeps beating for the
                // operator until the process is stopped.
                cancel.cancelled().await;
            }
            return Ok(summary);
        }
        if cancel.is_cancelled() {
            summary.end = RunEnd::Shutdown;
            break;
        }
        let standing = survival::current(&*lock(db)?, &config.survival, clock.now_ms())?;
        if standing.tier == Some(SurvivalTier::Dead) {
            if !was_dead {
                say(
                    mode,
                    "the automaton is dead: its balance stayed at zero through the grace period; no turns until it is funded",
                );
                was_dead = true;
            }
            summary.end = RunEnd::Dead {
                since_ms: standing.zero_since_ms.unwrap_or_else(|| clock.now_ms()),
            };
            if bounds.until_sleep || bounds.max_turns.is_some() {
                break;
            }
            // Funding arrives as a tier change the heartbeat's credit check wakes us for;
            // whatever else wakes a dead automaton is kept for when it thinks again.
            match rest(
                heartbeat,
                clock,
                clock.now_ms() + millis(DEAD_RECHECK),
                cancel,
            )
            .await
            {
                RestEnd::Cancelled => {
                    summary.end = RunEnd::Shutdown;
                    break;
                }
                RestEnd::Woken(reason) => {
                    wake.push(reason);
                    continue;
                }
                RestEnd::Elapsed => continue,
            }
        }
        if was_dead {
            was_dead = false;
            let balance = standing.balance.as_ref().map_or_else(
                || "unknown".to_owned(),
                |cached| cached.balance_micro_usdc.to_string(),
            );
            wake.push(format!(
                "you were revived: funding arrived (balance {balance})"
            ));
        }
        let remaining = bounds
            .max_turns
            .map(|max| max.saturating_sub(summary.turns));
        summary.stretches += 1;
        let exit =
            stretch::spawn(&facts.exe, home, remaining, wake.text().as_deref(), cancel).await?;
        let end = match exit {
            StretchExit::Reported(report) => {
                crashes = 0;
                summary.turns += report.turns;
                if report.wake_delivered {
                    wake.clear();
                }
                report.end
            }
            StretchExit::Crashed {
                status,
                stderr_tail,
            } => {
                crashes += 1;
                say(
                    mode,
                    &format!("the agent's stretch process died ({status}): {stderr_tail}"),
                );
                *interrupted_calls += mark_interrupted(db, clock.as_ref(), mode)?;
                if crashes >= MAX_CONSECUTIVE_CRASHES {
                    return Err(Error::InvalidInput {
                        message: format!(
                            "the agent's stretch process died {crashes} times in a row (last: {status}: {stderr_tail})"
                        ),
                        hint: "read logs/ in the home and run `automaton doctor`; `automaton run` starts it again".to_owned(),
                    });
                }
                RunEnd::StretchCrashed {
                    status,
                    detail: stderr_tail,
                }
            }
        };
        anchor::record(home, &*lock(db)?, &config.name, clock.now_ms())?;
        summary.end = end;
        let rest_until = match &summary.end {
            RunEnd::MaxTurns | RunEnd::Shutdown | RunEnd::NoProvider { .. } => None,
            // The loop's top waits for funding.
            RunEnd::Dead { .. } => Some((clock.now_ms(), "the tier changed".to_owned())),
            RunEnd::Slept { until_ms, why } => {
                say(
                    mode,
                    &format!("sleeping until {until_ms} (epoch ms): {why}"),
                );
                Some((*until_ms, format!("your sleep ended ({why})")))
            }
            RunEnd::InferenceUnavailable {
                message,
                hint,
                retry_at_ms,
                budget,
            } => {
                say(mode, &format!("inference unavailable: {message} ({hint})"));
                Some(match (retry_at_ms, budget) {
                    (Some(at), Some(_)) => (*at, "the inference budget has room again".to_owned()),
                    // A prompt that never fit the model: the creator may have changed its
                    // configured window since.
                    (Some(at), None) => (
                        *at,
                        "an hour passed since the model rejected even a prompt with no history; the creator may have changed the model or its contextWindow".to_owned(),
                    ),
                    // No window will make room: only the creator raising the cap (or funding
                    // a cheaper model) helps, so look again in an hour, not every minute.
                    (None, Some(budget)) => {
                        say(
                            mode,
                            &format!(
                                "the smallest call the agent can make exceeds the {budget} inference cap; the creator must raise it in automaton.json (`inference.perCallMaxMicroUsdc` or the treasury's daily cap); trying again in an hour"
                            ),
                        );
                        (
                            clock.now_ms() + millis(BUDGET_RECHECK),
                            "an hour passed since the inference budget refused every call; the creator may have raised it".to_owned(),
                        )
                    }
                    (None, None) => (
                        clock.now_ms() + millis(INFERENCE_RETRY),
                        "inference may be available again".to_owned(),
                    ),
                })
            }
            RunEnd::StretchCrashed { .. } => Some((
                clock.now_ms() + millis(CRASH_BACKOFF * 2_u32.pow(crashes - 1)),
                "your previous waking period ended in a crash; the runtime restarted it".to_owned(),
            )),
        };
        let Some((until_ms, reason)) = rest_until else {
            break;
        };
        if bounds.until_sleep || bounds.max_turns.is_some_and(|max| summary.turns >= max) {
            break;
        }
        match rest(heartbeat, clock, until_ms, cancel).await {
            RestEnd::Elapsed => wake.push(reason),
            RestEnd::Woken(event) => wake.push(event),
            RestEnd::Cancelled => {
                summary.end = RunEnd::Shutdown;
                break;
            }
        }
    }
    Ok(summary)
}

fn lock(db: &SharedDb) -> Result<std::sync::MutexGuard<'_, StateDb>> {
    db.lock().map_err(|_| Error::InvalidInput {
        message: "state.db's lock was poisoned by a crashed task".to_owned(),
        hint: "run `automaton run` again".to_owned(),
    })
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Marks calls and turns left `running` by a process that is gone (only one run holds the
/// home, and no stretch runs now) as interrupted, in one transaction, and says how many calls.
fn mark_interrupted(db: &SharedDb, clock: &dyn Clock, mode: OutputMode) -> Result<usize> {
    let now = clock.now_ms();
    let (calls, turns) = lock(db)?.write(|tx| {
        Ok::<_, automaton_tools::Error>((
            audit::mark_interrupted(tx, now)?,
            state::mark_turns_interrupted(tx, now)?,
        ))
    })?;
    if calls > 0 || turns > 0 {
        say(
            mode,
            &format!(
                "{calls} tool calls and {turns} turns were cut off by the last stop; they are marked interrupted (see `automaton audit verify`)."
            ),
        );
    }
    Ok(calls)
}

/// The inference router for `config`: endpoints from its providers (or the OpenAI
/// environment in `env`), its models, budgets capped by the treasury policy, default retries.
pub fn inference_for(
    config: &AutomatonConfig,
    home: &Home,
    env: &[(std::ffi::OsString, std::ffi::OsString)],
    toolbox: &toolbox::Toolbox,
    clock: Arc<dyn Clock>,
) -> Result<Inference> {
    let endpoints = inference::endpoints(config, home, env)?;
    Inference::new(
        &endpoints,
        config.models.clone(),
        config.inference.clone(),
        config.treasury_policy.max_inference_daily_micro_usdc,
        RetryPolicy::default(),
        Arc::clone(&toolbox.db),
        clock,
    )
    .map_err(|message| Error::InvalidInput {
        message,
        hint: "check `providers` in automaton.json".to_owned(),
    })
}

/// Prints the summary.
pub fn print(summary: &RunSummary, mode: OutputMode) {
    match mode {
        OutputMode::Json => print_json(summary),
        OutputMode::Human => println!(
            "run ended after {} turns in {} stretches: {:?}",
            summary.turns, summary.stretches, summary.end
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_reasons_keep_each_reason_once_newest_last_and_bounded() {
        let mut reasons = WakeReasons::default();
        assert_eq!(reasons.text(), None);
        reasons.push("a".to_owned());
        reasons.push("b".to_owned());
        reasons.push("a".to_owned());
        assert_eq!(reasons.text().as_deref(), Some("b; a"));
        for i in 0..30 {
            reasons.push(format!("r{i}"));
        }
        assert_eq!(reasons.0.len(), MAX_WAKE_REASONS);
        assert_eq!(reasons.0.last().map(String::as_str), Some("r29"));
        reasons.clear();
        assert_eq!(reasons.text(), None);
    }
}
