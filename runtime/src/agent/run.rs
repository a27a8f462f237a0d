//! The agent loop: wake → build context → inference → dispatch each tool call through the
//! tool system → persist the turn and its messages in one transaction → repeat.
//!
//! It stops for a sleep (asked for, or forced by idle or loop detection), a bound
//! (`--max-turns`), a shutdown (cancellation finishes or cancels the running tool, persists,
//! and returns), or an inference failure that more turns cannot fix.

use super::history::{self, TurnMessages};
use super::prompt::{self, PromptInputs, StatusFacts};
use super::sleep::SleepRequest;
use super::tokens;
use crate::config::AutomatonConfig;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::inference::{
    BudgetRefusal, ChatRequest, Inference, InferenceFailure, Message, Task, ToolCallRequest,
};
use crate::toolbox::Toolbox;
use crate::{preflight, state, survival};
use automaton_tools::audit::canonical::canonical_json;
use automaton_tools::clock::Clock;
use automaton_tools::dispatch::{CallRequest, with_db};
use automaton_tools::survival::SurvivalTier;
use automaton_tools::tool::{Effect, Provenance};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Consecutive turns of only read-only calls before a forced sleep.
pub const IDLE_TURNS: u32 = 3;
/// Turns repeating the same calls before a warning; one more and the agent is put to sleep.
pub const REPEAT_WARNING: u32 = 3;
/// How long a forced sleep lasts.
pub const FORCED_SLEEP_MS: i64 = 10 * 60 * 1000;
/// The answer reserved in the context window, in tokens.
const ANSWER_RESERVE: usize = 4096;
/// The kv key holding a budget refusal until the next turn tells the model about it.
pub const REFUSAL_KEY: &str = "inference_refusal";

/// Bounds of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop after this many turns.
    pub max_turns: Option<u32>,
    /// Most tool calls executed per turn; the rest are answered with an error.
    pub max_calls_per_turn: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            max_turns: None,
            max_calls_per_turn: 16,
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RunEnd {
    /// The turn bound was reached.
    MaxTurns,
    /// The agent sleeps (by its choice, or forced).
    Slept {
        /// When it wakes, epoch ms.
        until_ms: i64,
        /// Why.
        why: String,
    },
    /// Shutdown was requested.
    Shutdown,
    /// No inference provider is configured.
    NoProvider {
        /// What to set.
        hint: String,
    },
    /// Inference failed in a way more turns cannot fix now (budget, every provider down).
    InferenceUnavailable {
        /// What happened.
        message: String,
        /// What to do.
        hint: String,
        /// When trying again can succeed, if known (a budget window that will have room).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at_ms: Option<i64>,
        /// The budget that refused the call (`per_call`, `hour`, `day`), when one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        budget: Option<String>,
    },
    /// The automaton is dead: its balance stayed at zero through the grace period. The loop
    /// stops; the heartbeat keeps broadcasting distress and funding revives it.
    Dead {
        /// Since when the balance has been zero, epoch ms.
        since_ms: i64,
    },
    /// The stretch process died without reporting (seen only by `automaton run`).
    StretchCrashed {
        /// Its exit status.
        status: String,
        /// The end of its stderr.
        detail: String,
    },
}

/// What a run did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    /// Turns completed.
    pub turns: u32,
    /// Why it ended.
    pub end: RunEnd,
    /// Whether the wake reason reached the model (false when there was none to deliver only
    /// if inference failed before any model saw it): `automaton run` keeps an undelivered
    /// reason for the next stretch.
    #[serde(default)]
    pub wake_delivered: bool,
}

/// The agent, ready to run.
pub struct Agent<'a> {
    /// The home.
    pub home: &'a Home,
    /// The configuration.
    pub config: &'a AutomatonConfig,
    /// The tool system.
    pub toolbox: &'a Toolbox,
    /// The inference router.
    pub inference: &'a Inference,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

struct Detector {
    idle_turns: u32,
    last_signature: Option<String>,
    repeats: u32,
}

const DAY_MS: i64 = 86_400_000;
/// How long a run waits after a prompt with no history left does not fit the model.
const CONTEXT_RECHECK_MS: i64 = 3_600_000;

fn failure_hint_context(model: &str) -> String {
    format!(
        "the fixed layers (constitution, skills, tools) alone exceed what `{model}` accepts: lower its `contextWindow` in automaton.json's `models` to its real window, remove skills, or choose a model with a larger window (`switch_model`); trying again in an hour"
    )
}

/// Whole turns of the conversation a turn's context is built from.
const HISTORY_TURNS: usize = 50;
/// Turns before those that keep a summary line of their own; older ones are counted.
const SUMMARY_LINES: usize = 30;
/// Tokens of the summary section's heading ("## Earlier turns (summarised)"), with margin.
const SUMMARY_HEADER_TOKENS: usize = 10;

/// What a run keeps between its turns rather than reading or computing it again each turn:
/// the tools as the model sees them (a toolbox's registry cannot change under it), how many
/// turns state.db holds, and the newest [`HISTORY_TURNS`] whole turns of the conversation.
/// Read with the run's first turn; each later turn's messages join it as they commit, exactly
/// as `messages` stores them (only this run writes turns while it holds the stretch lock).
struct RunMemory {
    tools: Vec<serde_json::Value>,
    tool_tokens: usize,
    stored: Option<StoredConversation>,
    /// The history budget (fixed layers included) a context-window error taught this run:
    /// the model's real window is smaller than configured.
    history_budget: Option<usize>,
    /// The sync of the last turn's records, running behind the next turn.
    pending_sync: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

struct StoredConversation {
    turns_recorded: i64,
    /// The newest whole turns, which the context carries as messages while they fit.
    recent: std::collections::VecDeque<TurnMessages>,
    /// The turns before those, which the context carries as one summary line each.
    older: std::collections::VecDeque<SummaryLine>,
    /// Everything older still, as counts.
    digest: history::Digest,
    /// The digest's line, kept while the digest does not change.
    digest_line: Option<(String, usize)>,
}

/// A turn the context carries as one line, counted once when it became one.
struct SummaryLine {
    turn: TurnMessages,
    line: String,
    tokens: usize,
}

impl SummaryLine {
    fn of(turn: TurnMessages) -> Self {
        let line = turn.summary_line();
        let tokens = tokens::count(&line) + 1;
        Self { turn, line, tokens }
    }
}

fn digest_line(digest: &history::Digest) -> Option<(String, usize)> {
    digest.line().map(|line| {
        let tokens = tokens::count(&line) + 1;
        (line, tokens)
    })
}

impl StoredConversation {
    fn load(db: &automaton_tools::db::StateDb) -> crate::error::Result<Self> {
        let turns_recorded: i64 = db
            .conn()
            .query_row("SELECT COUNT(*) FROM turns", [], |r| r.get(0))?;
        let recent = history::recent_turns(db, HISTORY_TURNS)?;
        let (older, digest) = match recent.first() {
            Some(oldest) if recent.len() == HISTORY_TURNS => {
                let older = history::turns_before(db, oldest.turn_id, SUMMARY_LINES)?;
                let before = older.first().map_or(oldest.turn_id, |turn| turn.turn_id);
                (older, history::digest_before(db, before)?)
            }
            _ => (Vec::new(), history::Digest::default()),
        };
        Ok(Self {
            turns_recorded,
            recent: recent.into(),
            older: older.into_iter().map(SummaryLine::of).collect(),
            digest_line: digest_line(&digest),
            digest,
        })
    }

    /// Folds the oldest lines into the digest until the digest's and the lines' tokens are at
    /// most `allowed`.
    fn shrink_to(&mut self, allowed: usize) {
        while !self.older.is_empty() && self.summary_tokens() > allowed {
            if let Some(aged) = self.older.pop_front() {
                self.digest.fold(&aged.turn);
                self.digest_line = digest_line(&self.digest);
            }
        }
    }

    /// The summary lines for every turn the context does not carry whole (the digest, the
    /// older turns); the recent turns `fit` left out are added by the caller.
    fn summary_lines(&self) -> Vec<&str> {
        self.digest_line
            .iter()
            .map(|(line, _)| line.as_str())
            .chain(self.older.iter().map(|older| older.line.as_str()))
            .collect()
    }

    /// The tokens of [`Self::summary_lines`], without building them.
    fn summary_tokens(&self) -> usize {
        self.digest_line.as_ref().map_or(0, |(_, tokens)| *tokens)
            + self.older.iter().map(|older| older.tokens).sum::<usize>()
    }
}

impl RunMemory {
    fn new(toolbox: &Toolbox) -> Self {
        let tools: Vec<serde_json::Value> = toolbox
            .dispatcher
            .registry()
            .specs()
            .iter()
            .map(|spec| spec.to_openai_function())
            .collect();
        let tool_tokens = tools.iter().map(|t| tokens::count(&t.to_string())).sum();
        Self {
            tools,
            tool_tokens,
            stored: None,
            history_budget: None,
            pending_sync: None,
        }
    }

    /// Whether the context carries older turns as lines that could fold into the digest.
    fn has_summary_lines(&self) -> bool {
        self.stored
            .as_ref()
            .is_some_and(|stored| !stored.older.is_empty())
    }

    fn remember(&mut self, turn: Option<TurnMessages>) {
        if let Some(stored) = &mut self.stored {
            stored.turns_recorded += 1;
            stored.recent.extend(turn);
            while stored.recent.len() > HISTORY_TURNS {
                stored
                    .older
                    .extend(stored.recent.pop_front().map(SummaryLine::of));
            }
            while stored.older.len() > SUMMARY_LINES {
                if let Some(aged) = stored.older.pop_front() {
                    stored.digest.fold(&aged.turn);
                    stored.digest_line = digest_line(&stored.digest);
                }
            }
        }
    }
}

impl<'a> Agent<'a> {
    /// Runs turns until one of [`RunEnd`] happens. `wake_reason` is put in front of the model
    /// on the first turn.
    pub async fn run(
        &self,
        options: &RunOptions,
        cancel: &CancellationToken,
        mut wake_reason: Option<String>,
    ) -> Result<RunReport> {
        let mut turns = 0_u32;
        let mut memory = RunMemory::new(self.toolbox);
        let ended = self
            .run_turns(options, cancel, &mut wake_reason, &mut memory, &mut turns)
            .await;
        let end = match ended {
            Ok(end) => end,
            Err(err) => {
                // A fatal error still leaves what the turns committed on disk; the error
                // itself is what the caller needs to hear.
                if let Err(sync) = self.await_sync(memory.pending_sync.take()).await {
                    tracing::error!(error = %sync, "syncing state.db after a fatal error");
                }
                if let Err(sync) = self.sync_records().await {
                    tracing::error!(error = %sync, "syncing state.db after a fatal error");
                }
                return Err(err);
            }
        };
        self.set_state(match &end {
            RunEnd::Slept { .. }
            | RunEnd::MaxTurns
            | RunEnd::Shutdown
            | RunEnd::NoProvider { .. } => "sleeping",
            RunEnd::Dead { .. } => "dead",
            RunEnd::InferenceUnavailable { .. } | RunEnd::StretchCrashed { .. } => "waiting",
        })
        .await?;
        self.keep_digest(&memory).await?;
        // Whatever the last turn committed unsynced is on disk before the run reports.
        self.await_sync(memory.pending_sync.take()).await?;
        self.sync_records().await?;
        Ok(RunReport {
            turns,
            end,
            wake_delivered: wake_reason.is_none(),
        })
    }

    /// Turns until one of [`RunEnd`] happens, counting them in `turns`.
    async fn run_turns(
        &self,
        options: &RunOptions,
        cancel: &CancellationToken,
        wake_reason: &mut Option<String>,
        memory: &mut RunMemory,
        turns: &mut u32,
    ) -> Result<RunEnd> {
        let mut detector = Detector {
            idle_turns: 0,
            last_signature: None,
            repeats: 0,
        };
        let mut notices: Vec<String> = Vec::new();
        let end = loop {
            if cancel.is_cancelled() {
                break RunEnd::Shutdown;
            }
            if options.max_turns.is_some_and(|max| *turns >= max) {
                break RunEnd::MaxTurns;
            }
            // A mode bit is not immutability: check the pinned hash before every turn.
            preflight::verify_constitution(self.home, self.config)?;
            if let Some(since_ms) = self.dead_since().await? {
                break RunEnd::Dead { since_ms };
            }
            if !self.inference.has_providers() {
                break RunEnd::NoProvider {
                    hint: InferenceFailure::NoProvider.hint(),
                };
            }
            let outcome = self
                .turn(
                    options,
                    cancel,
                    wake_reason.clone(),
                    std::mem::take(&mut notices),
                    &mut detector,
                    memory,
                )
                .await?;
            *turns += 1;
            // The reason is delivered once a model has read it: a turn whose inference failed
            // kept nothing of its input, so the reason stays for the next attempt.
            let model_never_answered = matches!(
                outcome,
                TurnOutcome::Stop(RunEnd::InferenceUnavailable { .. } | RunEnd::NoProvider { .. })
            );
            if !model_never_answered {
                *wake_reason = None;
            }
            match outcome {
                TurnOutcome::Continue { notice } => notices.extend(notice),
                TurnOutcome::Stop(end) => break end,
            }
        };
        Ok(end)
    }

    /// Since when the automaton has been dead, if it is.
    async fn dead_since(&self) -> Result<Option<i64>> {
        let thresholds = self.config.survival.clone();
        let now = self.clock.now_ms();
        let standing = with_db(&self.toolbox.db, move |db| {
            Ok(survival::current(db, &thresholds, now)?)
        })
        .await
        .map_err(fatal)?;
        Ok((standing.tier == Some(SurvivalTier::Dead))
            .then(|| standing.zero_since_ms.unwrap_or(now)))
    }

    async fn set_state(&self, value: &'static str) -> Result<()> {
        let now = self.clock.now_ms();
        with_db(&self.toolbox.db, move |db| {
            state::kv_set(db, "agent_state", value, now).map_err(|err| match err {
                Error::StateDb(inner) => inner,
                other => automaton_tools::Error::Corrupt {
                    path: std::path::PathBuf::from("state.db"),
                    detail: other.to_string(),
                },
            })
        })
        .await
        .map_err(|err| Error::InvalidInput {
            message: err.to_string(),
            hint: "run `automaton doctor`".to_owned(),
        })
    }

    #[expect(clippy::too_many_lines, reason = "one turn, read top to bottom")]
    async fn turn(
        &self,
        options: &RunOptions,
        cancel: &CancellationToken,
        wake_reason: Option<String>,
        notices: Vec<String>,
        detector: &mut Detector,
        memory: &mut RunMemory,
    ) -> Result<TurnOutcome> {
        let started_at = self.clock.now_ms();
        let input = match &wake_reason {
            Some(reason) => format!("You woke up. Reason: {reason}"),
            None => "Continue working toward your purpose. Act with tools, or sleep if there is nothing useful to do.".to_owned(),
        };
        let input_source = if wake_reason.is_some() {
            "wake"
        } else {
            "self"
        };
        let db = Arc::clone(&self.toolbox.db);
        let thresholds = self.config.survival.clone();
        let first_turn = memory.stored.is_none();
        let (turn_id, loaded, active_model, refusal, standing, spent_today) = {
            let input = input.clone();
            with_db(&db, move |db| {
                let standing = survival::current(db, &thresholds, started_at)?;
                let spent_today = state::inference_spent_since(db, started_at - DAY_MS)
                    .map_err(|err| automaton_tools::Error::Corrupt {
                        path: "state.db".into(),
                        detail: err.to_string(),
                    })?;
                let loaded = if first_turn {
                    Some(StoredConversation::load(db).map_err(|err| {
                        automaton_tools::Error::Corrupt {
                            path: "state.db".into(),
                            detail: err.to_string(),
                        }
                    })?)
                } else {
                    None
                };
                // Unsynced: a turn that has only begun changes nothing outside state.db; its
                // first effect's synced intent, or the sync behind the turn, puts it on disk.
                let (turn_id, refusal) = db.write_unsynced(|tx| {
                    tx.execute(
                        "INSERT INTO turns (started_at, state, input_source, input) VALUES (?1, 'running', ?2, ?3)",
                        params![started_at, input_source, input],
                    )?;
                    let turn_id = tx.last_insert_rowid();
                    // A refusal is told once: taken in the same transaction as the turn.
                    let refusal: Option<String> = tx
                        .query_row(
                            "DELETE FROM kv WHERE key = ?1 RETURNING value",
                            [REFUSAL_KEY],
                            |r| r.get(0),
                        )
                        .optional()?;
                    Ok::<_, rusqlite::Error>((turn_id, refusal))
                })?;
                let active_model: Option<String> = db
                    .conn()
                    .query_row(
                        "SELECT value FROM kv WHERE key = ?1",
                        [super::switch_model::ACTIVE_MODEL_KEY],
                        |r| r.get(0),
                    )
                    .ok();
                Ok((turn_id, loaded, active_model, refusal, standing, spent_today))
            })
            .await
            .map_err(fatal)?
        };
        if loaded.is_some() {
            memory.stored = loaded;
        }
        let (prior_turns, history_turns): (i64, Vec<TurnMessages>) = match &memory.stored {
            Some(stored) => (
                stored.turns_recorded,
                stored.recent.iter().cloned().collect(),
            ),
            None => (0, Vec::new()),
        };
        let mut notices = notices;
        if let Some(refusal) =
            refusal.and_then(|text| serde_json::from_str::<BudgetRefusal>(&text).ok())
        {
            notices.push(format!(
                "your last inference call was not made: the {} budget refused it ({}). {}",
                refusal.budget,
                refusal.message,
                refusal.hint()
            ));
        }
        self.set_state("running").await?;

        let constitution = std::fs::read_to_string(self.home.constitution())
            .map_err(Error::io("reading", self.home.constitution()))?;
        let soul = std::fs::read_to_string(self.home.soul()).unwrap_or_default();
        // Read each turn: a skill installed or edited mid-run applies from the next turn.
        let skills = prompt::active_skills(&self.home.skills());
        let specs = self.toolbox.dispatcher.registry().specs();
        let tools = &memory.tools;
        let low_compute = standing.low_compute();
        let model =
            self.inference
                .choose_model(Task::AgentTurn, low_compute, active_model.as_deref());
        let (balance, tier) = survival::describe(&standing, started_at);
        let window_budget = usize::try_from(model.context_window)
            .unwrap_or(usize::MAX)
            .saturating_sub(ANSWER_RESERVE);
        let mut history_budget = memory
            .history_budget
            .map_or(window_budget, |learned| learned.min(window_budget));
        // Counted once per run; the layers count themselves as they are assembled.
        let tool_tokens = memory.tool_tokens;
        let input_tokens = tokens::count(&input) + 4;
        let mut attempts = 0;
        let mut history_tokens;
        let mut summary_base_tokens;
        let completion = loop {
            let status = StatusFacts {
                turns: prior_turns,
                balance: balance.clone(),
                tier: tier.clone(),
                spent_today: Some(spent_today.to_string()),
                wake_reason: wake_reason.clone(),
                notices: notices.clone(),
            };
            let layers = prompt::assemble(&PromptInputs {
                config: self.config,
                constitution: &constitution,
                soul: &soul,
                skills: &skills,
                tools: &specs,
                status: &status,
            });
            let mut system = prompt::render(&layers);
            let fixed = layers.iter().map(|layer| layer.tokens + 2).sum::<usize>()
                + tool_tokens
                + input_tokens;
            // The window holds the fixed layers, the summary section (the digest, the older
            // turns' lines, a line per recent turn left out) and whole turns, in that order of
            // precedence: the summary's lines fold into the digest when they alone do not fit,
            // and whole turns get what is left after every line.
            let lines_allowed = history_budget.saturating_sub(fixed + SUMMARY_HEADER_TOKENS);
            if let Some(stored) = memory.stored.as_mut() {
                stored.shrink_to(lines_allowed);
            }
            // Counted line by line as each line was made: the section changes every turn,
            // its lines do not.
            let base_tokens = memory
                .stored
                .as_ref()
                .map_or(0, StoredConversation::summary_tokens);
            let mut whole_budget = lines_allowed.saturating_sub(base_tokens);
            let (kept, mut dropped, mut dropped_tokens) = loop {
                let (kept, dropped, fitted) = history::fit(history_turns.clone(), whole_budget);
                let dropped_tokens: usize =
                    dropped.iter().map(|line| tokens::count(line) + 1).sum();
                history_tokens = fitted;
                let overflow = (fitted + dropped_tokens).saturating_sub(whole_budget);
                if overflow == 0 || kept.is_empty() {
                    break (kept, dropped, dropped_tokens);
                }
                whole_budget = whole_budget.saturating_sub(overflow);
            };
            // Lines that still do not fit: the older turns' lines fold into the digest first,
            // then the recent turns left out become one line of counts.
            if base_tokens + dropped_tokens + history_tokens > lines_allowed {
                let room = lines_allowed.saturating_sub(dropped_tokens + history_tokens);
                if let Some(stored) = memory.stored.as_mut() {
                    stored.shrink_to(room);
                }
                let base_now = memory
                    .stored
                    .as_ref()
                    .map_or(0, StoredConversation::summary_tokens);
                if base_now + dropped_tokens + history_tokens > lines_allowed {
                    let left_out = history_turns.len().saturating_sub(kept.len());
                    let mut counted = history::Digest::default();
                    for turn in &history_turns[..left_out] {
                        counted.fold(turn);
                    }
                    dropped = counted.line().into_iter().collect();
                    dropped_tokens = dropped.iter().map(|line| tokens::count(line) + 1).sum();
                }
            }
            let (mut summarised, base_tokens) = match &memory.stored {
                Some(stored) => (stored.summary_lines(), stored.summary_tokens()),
                None => (Vec::new(), 0),
            };
            summary_base_tokens = base_tokens;
            let summary_tokens = base_tokens + dropped_tokens;
            summarised.extend(dropped.iter().map(String::as_str));
            let mut estimated = fixed + history_tokens;
            if !summarised.is_empty() {
                let summary = format!(
                    "\n\n## Earlier turns (summarised)\n{}",
                    summarised.join("\n")
                );
                estimated += summary_tokens + SUMMARY_HEADER_TOKENS;
                system.push_str(&summary);
            }
            let mut messages = vec![Message::System { content: system }];
            messages.extend(
                kept.into_iter()
                    .flat_map(|turn: TurnMessages| turn.messages),
            );
            messages.push(Message::User {
                content: input.clone(),
            });
            let request = ChatRequest {
                task: Task::AgentTurn,
                low_compute,
                model_override: active_model.as_deref(),
                messages: &messages,
                tools,
                estimated_prompt_tokens: u64::try_from(estimated).unwrap_or(u64::MAX),
                turn_id: Some(turn_id),
            };
            // A shutdown does not wait for the model: the turn ends cancelled, keeping its
            // input, and the run stops.
            let answer = tokio::select! {
                answer = self.inference.chat(&request) => answer,
                () = cancel.cancelled() => {
                    self.inference.record_abandoned().await;
                    let stored = self
                        .finish_turn(
                            turn_id,
                            "cancelled",
                            "",
                            0,
                            0,
                            0,
                            vec![Message::User { content: input }],
                        )
                        .await?;
                    memory.remember(stored);
                    self.sync_behind(memory).await?;
                    return Ok(TurnOutcome::Stop(RunEnd::Shutdown));
                }
            };
            match answer {
                Ok(result) => break result,
                // The model's real window is smaller than configured: halve the history sent
                // (the older half is summarised) and ask again; the run keeps the smaller
                // budget for its later turns.
                Err(InferenceFailure::ContextLength(err))
                    if attempts < 3 && (history_tokens > 0 || memory.has_summary_lines()) =>
                {
                    attempts += 1;
                    tracing::warn!(error = %err, "context too long; compacting history");
                    history_budget =
                        fixed + SUMMARY_HEADER_TOKENS + (summary_base_tokens + history_tokens) / 2;
                    memory.history_budget = Some(history_budget);
                }
                // A call too expensive on its own is made smaller the same way, while there
                // is history left to summarise.
                Err(InferenceFailure::Budget(refusal))
                    if refusal.budget == "per_call" && attempts < 3 && history_tokens > 0 =>
                {
                    attempts += 1;
                    tracing::warn!(refusal = %refusal.message, "call over the per-call ceiling; compacting history");
                    // Halve what can be cut (whole turns, the older turns' lines), not the
                    // fixed layers.
                    history_budget =
                        fixed + SUMMARY_HEADER_TOKENS + (summary_base_tokens + history_tokens) / 2;
                }
                Err(failure) => {
                    let stored = self
                        .finish_turn(turn_id, "failed", "", 0, 0, 0, Vec::new())
                        .await?;
                    memory.remember(stored);
                    self.sync_behind(memory).await?;
                    if let InferenceFailure::Budget(refusal) = &failure {
                        self.keep_refusal(refusal).await?;
                    }
                    let end = match failure {
                        InferenceFailure::NoProvider => RunEnd::NoProvider {
                            hint: failure.hint(),
                        },
                        InferenceFailure::Budget(refusal) => RunEnd::InferenceUnavailable {
                            message: format!("inference budget: {}", refusal.message),
                            hint: refusal.hint(),
                            retry_at_ms: refusal.retry_at_ms,
                            budget: Some(refusal.budget),
                        },
                        // Nothing left to cut: only the creator's configuration can help, so
                        // the next attempt is an hour away, not a minute.
                        InferenceFailure::ContextLength(err) => RunEnd::InferenceUnavailable {
                            message: format!(
                                "model `{}` rejected a prompt of about {} tokens with no history left to cut: {err}",
                                model.name,
                                fixed
                                    + SUMMARY_HEADER_TOKENS
                                    + summary_base_tokens
                                    + history_tokens
                            ),
                            hint: failure_hint_context(&model.name),
                            retry_at_ms: Some(self.clock.now_ms() + CONTEXT_RECHECK_MS),
                            budget: None,
                        },
                        other => RunEnd::InferenceUnavailable {
                            message: other.to_string(),
                            hint: other.hint(),
                            retry_at_ms: None,
                            budget: None,
                        },
                    };
                    return Ok(TurnOutcome::Stop(end));
                }
            }
        };
        let calls = completion.completion.tool_calls.clone();
        let mut transcript = vec![
            Message::User { content: input },
            Message::Assistant {
                content: completion.completion.content.clone(),
                tool_calls: calls.clone(),
            },
        ];
        let mut all_read_only = true;
        for (i, call) in calls.iter().enumerate() {
            let content = if i >= options.max_calls_per_turn {
                all_read_only = false;
                serde_json::json!({"error": {
                    "code": "QUOTA_EXCEEDED",
                    "message": format!("only {} tool calls run per turn; this one was not run", options.max_calls_per_turn),
                    "hint": "make fewer calls per turn; repeat this one next turn if it is still needed",
                    "retryable": true,
                }})
                .to_string()
            } else {
                let record = self
                    .toolbox
                    .dispatcher
                    .dispatch(
                        CallRequest {
                            name: call.name.clone(),
                            arguments: call.arguments.clone(),
                            provenance: Provenance::SelfDirected,
                            turn_id: Some(turn_id),
                            timeout: None,
                        },
                        cancel,
                    )
                    .await;
                if record.effect != Some(Effect::ReadOnly) {
                    all_read_only = false;
                }
                if let Err(err) = &record.result
                    && err.is_fatal()
                {
                    tracing::error!(error = %err, call = %record.call_id, "a tool call failed fatally");
                }
                record.model_json().to_string()
            };
            transcript.push(Message::Tool {
                tool_call_id: call.id.clone(),
                content,
            });
        }
        // The history keeps what the audit trail keeps: a tool's secret arguments (set_env's
        // values) are neither stored in state.db nor sent back to the model on later turns.
        for message in &mut transcript {
            if let Message::Assistant { tool_calls, .. } = message {
                for call in tool_calls {
                    call.arguments = self
                        .toolbox
                        .dispatcher
                        .stored_arguments(&call.name, &call.arguments);
                }
            }
        }
        let usage = completion.completion.usage;
        let stored = self
            .finish_turn(
                turn_id,
                if cancel.is_cancelled() {
                    "cancelled"
                } else {
                    "completed"
                },
                &completion.completion.content,
                usage.prompt_tokens,
                usage.completion_tokens,
                completion.cost.atoms(),
                transcript,
            )
            .await?;
        memory.remember(stored);
        self.sync_behind(memory).await?;

        if cancel.is_cancelled() {
            return Ok(TurnOutcome::Stop(RunEnd::Shutdown));
        }
        if let Some(SleepRequest { until_ms, reason }) = self.toolbox.sleep.take() {
            return Ok(TurnOutcome::Stop(RunEnd::Slept {
                until_ms,
                why: reason,
            }));
        }
        let now = self.clock.now_ms();
        detector.idle_turns = if all_read_only {
            detector.idle_turns + 1
        } else {
            0
        };
        if detector.idle_turns >= IDLE_TURNS {
            return Ok(TurnOutcome::Stop(RunEnd::Slept {
                until_ms: now + FORCED_SLEEP_MS,
                why: format!("idle: {IDLE_TURNS} turns in a row did nothing but read"),
            }));
        }
        let signature = signature(&calls);
        if signature.is_some() && signature == detector.last_signature {
            detector.repeats += 1;
        } else {
            detector.repeats = 1;
        }
        detector.last_signature = signature;
        if detector.repeats > REPEAT_WARNING {
            return Ok(TurnOutcome::Stop(RunEnd::Slept {
                until_ms: now + FORCED_SLEEP_MS,
                why: format!("loop: the same calls {} turns running", detector.repeats),
            }));
        }
        let notice = (detector.repeats == REPEAT_WARNING).then(|| {
            format!(
                "you have made exactly the same tool calls {REPEAT_WARNING} turns running. Stop repeating them: change course, or sleep."
            )
        });
        Ok(TurnOutcome::Continue { notice })
    }

    /// Keeps a budget refusal for the next turn's context.
    async fn keep_refusal(&self, refusal: &BudgetRefusal) -> Result<()> {
        let now = self.clock.now_ms();
        let text = serde_json::to_string(refusal).map_err(|err| Error::InvalidInput {
            message: err.to_string(),
            hint: "report this as a bug".to_owned(),
        })?;
        with_db(&self.toolbox.db, move |db| {
            Ok(db.write(|tx| {
                tx.execute(
                    "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    params![REFUSAL_KEY, text, now],
                )
            })?)
        })
        .await
        .map(|_| ())
        .map_err(fatal)
    }

    /// Leaves the digest of the turns older than the context's summary lines for the next
    /// run, so its start reads only the turns since.
    async fn keep_digest(&self, memory: &RunMemory) -> Result<()> {
        let Some(stored) = &memory.stored else {
            return Ok(());
        };
        let Some(before) = stored.older.front().map(|older| older.turn.turn_id) else {
            return Ok(());
        };
        if stored.digest.turns == 0 {
            return Ok(());
        }
        let digest = stored.digest.clone();
        let now = self.clock.now_ms();
        with_db(&self.toolbox.db, move |db| {
            history::keep_digest(db, before, &digest, now).map_err(|err| {
                automaton_tools::Error::Corrupt {
                    path: "state.db".into(),
                    detail: err.to_string(),
                }
            })
        })
        .await
        .map_err(fatal)
    }

    /// Starts putting this turn's unsynced records on disk (see `tools::db::sync_wal`) while
    /// the next turn is prepared and its model thinks; the sync started after the turn
    /// before is awaited first, so at most one is ever running, and its failure is fatal.
    async fn sync_behind(&self, memory: &mut RunMemory) -> Result<()> {
        self.await_sync(memory.pending_sync.take()).await?;
        let database = self.home.state_db();
        memory.pending_sync = Some(tokio::task::spawn_blocking(move || {
            automaton_tools::db::sync_wal(&database)
        }));
        Ok(())
    }

    async fn await_sync(
        &self,
        pending: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    ) -> Result<()> {
        let Some(pending) = pending else {
            return Ok(());
        };
        let outcome = pending
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())));
        outcome.map_err(|err| self.sync_failed(err))
    }

    /// Puts every record so far on disk, waiting for it.
    async fn sync_records(&self) -> Result<()> {
        let database = self.home.state_db();
        tokio::task::spawn_blocking(move || automaton_tools::db::sync_wal(&database))
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string())))
            .map_err(|err| self.sync_failed(err))
    }

    fn sync_failed(&self, err: std::io::Error) -> Error {
        let mut wal = self.home.state_db().into_os_string();
        wal.push("-wal");
        Error::io("putting on disk", wal)(err)
    }

    #[expect(clippy::too_many_arguments, reason = "one row's columns")]
    async fn finish_turn(
        &self,
        turn_id: i64,
        state: &'static str,
        thinking: &str,
        prompt_tokens: u64,
        completion_tokens: u64,
        cost: u64,
        transcript: Vec<Message>,
    ) -> Result<Option<TurnMessages>> {
        let now = self.clock.now_ms();
        let thinking = thinking.to_owned();
        with_db(&self.toolbox.db, move |db| {
            // Unsynced: `sync_behind` puts it on disk while the next turn gets going.
            let stored_tokens = db.write_unsynced(|tx| {
                tx.execute(
                    "UPDATE turns SET ended_at = ?2, state = ?3, thinking = ?4, prompt_tokens = ?5,
                         completion_tokens = ?6, cost_micro_usdc = ?7 WHERE id = ?1",
                    params![
                        turn_id,
                        now,
                        state,
                        thinking,
                        i64::try_from(prompt_tokens).unwrap_or(i64::MAX),
                        i64::try_from(completion_tokens).unwrap_or(i64::MAX),
                        i64::try_from(cost).unwrap_or(i64::MAX),
                    ],
                )?;
                history::append(tx, turn_id, &transcript, now)
            })?;
            Ok(history::as_stored(turn_id, transcript, stored_tokens))
        })
        .await
        .map_err(fatal)
    }
}

enum TurnOutcome {
    Continue { notice: Option<String> },
    Stop(RunEnd),
}

/// The calls of a turn as a comparable signature (`None` when there were none).
fn signature(calls: &[ToolCallRequest]) -> Option<String> {
    if calls.is_empty() {
        return None;
    }
    let mut parts: Vec<String> = calls
        .iter()
        .map(|call| {
            let args = serde_json::from_str::<serde_json::Value>(&call.arguments)
                .map(|v| canonical_json(&v))
                .unwrap_or_else(|_| call.arguments.clone());
            format!("{}:{args}", call.name)
        })
        .collect();
    parts.sort();
    Some(parts.join("|"))
}

fn fatal(err: automaton_tools::tool::ToolError) -> Error {
    Error::InvalidInput {
        message: err.to_string(),
        hint: "state.db failed; run `automaton doctor`".to_owned(),
    }
}
