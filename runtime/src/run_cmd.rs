//! `automaton run`: starts the agent and keeps it going — turns until it sleeps, rests until
//! its sleep ends (or the process is told to stop), wakes and goes on. SIGTERM and SIGINT
//! finish or cancel the running tool, persist the turn, set the state to sleeping and exit 0.

use crate::agent::run::{Agent, RunEnd, RunOptions, RunReport};
use crate::config::AutomatonConfig;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::inference::{self, Inference};
use crate::output::{OutputMode, print_json};
use crate::toolbox::{self, ProcessFacts};
use crate::{anchor, preflight};
use automaton_tools::audit;
use automaton_tools::clock::Clock;
use automaton_tools::dispatch::with_db;
use automaton_tools::resilience::RetryPolicy;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

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
    /// Calls a previous run left unfinished, marked interrupted at start.
    pub interrupted_calls: usize,
    /// How the last stretch of turns ended.
    pub end: RunEnd,
}

fn say(mode: OutputMode, line: &str) {
    if mode == OutputMode::Human {
        println!("{line}");
    }
    tracing::info!("{line}");
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
    let toolbox = toolbox::build(home, facts, Arc::clone(&clock))?;
    let now = clock.now_ms();
    let interrupted_calls = with_db(&toolbox.db, move |db| {
        Ok(db.write(|tx| audit::mark_interrupted(tx, now))?)
    })
    .await
    .map_err(|err| Error::InvalidInput {
        message: err.to_string(),
        hint: "run `automaton doctor`".to_owned(),
    })?;
    if interrupted_calls > 0 {
        say(
            mode,
            &format!(
                "{interrupted_calls} tool calls were cut off by the last stop; they are marked interrupted (see `automaton audit verify`)."
            ),
        );
    }
    let inference = inference_for(&config, home, &facts.env, &toolbox, Arc::clone(&clock))?;
    let agent = Agent {
        home,
        config: &config,
        toolbox: &toolbox,
        inference: &inference,
        clock: Arc::clone(&clock),
    };
    let mut turns = 0_u32;
    let mut wake = Some("the runtime started".to_owned());
    loop {
        let options = RunOptions {
            max_turns: bounds.max_turns.map(|max| max.saturating_sub(turns)),
            ..RunOptions::default()
        };
        let RunReport { turns: done, end } = agent.run(&options, &cancel, wake.take()).await?;
        turns += done;
        anchor::record(home, &*toolbox.lock_db()?, &config.name, clock.now_ms())?;
        let rest_until = match &end {
            RunEnd::MaxTurns | RunEnd::Shutdown => None,
            RunEnd::Slept { until_ms, why } => {
                say(
                    mode,
                    &format!("sleeping until {until_ms} (epoch ms): {why}"),
                );
                Some((*until_ms, format!("your sleep ended ({why})")))
            }
            RunEnd::NoProvider { hint } => {
                say(
                    mode,
                    &format!("no inference provider is configured: {hint}"),
                );
                // Without a model the agent cannot think; it waits for the operator.
                Some((i64::MAX, "the runtime restarted".to_owned()))
            }
            RunEnd::InferenceUnavailable { message, hint } => {
                say(mode, &format!("inference unavailable: {message} ({hint})"));
                Some((
                    clock.now_ms() + 60_000,
                    "inference may be available again".to_owned(),
                ))
            }
        };
        let Some((until_ms, reason)) = rest_until else {
            return Ok(RunSummary {
                turns,
                interrupted_calls,
                end,
            });
        };
        if bounds.until_sleep || bounds.max_turns.is_some_and(|max| turns >= max) {
            return Ok(RunSummary {
                turns,
                interrupted_calls,
                end,
            });
        }
        let wait = Duration::from_millis(
            u64::try_from(until_ms.saturating_sub(clock.now_ms())).unwrap_or(0),
        );
        tokio::select! {
            () = tokio::time::sleep(wait.min(Duration::from_secs(365 * 86_400))) => wake = Some(reason),
            () = cancel.cancelled() => {
                return Ok(RunSummary { turns, interrupted_calls, end: RunEnd::Shutdown });
            }
        }
    }
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
        OutputMode::Human => println!("run ended after {} turns: {:?}", summary.turns, summary.end),
    }
}
