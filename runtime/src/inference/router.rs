//! The router: picks the model for a task (the creator's choice, a `switch_model` override,
//! the cheaper model in low-compute tiers), refuses a call that would exceed a budget before
//! making it, tries each provider in order with retries and its own circuit breaker, and
//! records every attempt in `inference_costs`.

use super::Endpoint;
use super::chat::{Completion, Message, WireRequest};
use super::provider::{InferenceError, Provider};
use crate::config::{InferenceConfig, ModelConfig};
use automaton_tools::clock::Clock;
use automaton_tools::dispatch::{SharedDb, with_db};
use automaton_tools::money::Usdc;
use automaton_tools::resilience::{BreakerConfig, CircuitBreaker, RetryError, RetryPolicy, retry};
use rusqlite::params;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a call is for; the router may use a different model for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// A turn of the agent loop.
    AgentTurn,
    /// Summarising old turns to fit the context window.
    Summarise,
    /// A heartbeat task asking whether to wake the agent.
    HeartbeatTriage,
}

impl Task {
    fn as_str(self) -> &'static str {
        match self {
            Self::AgentTurn => "agent_turn",
            Self::Summarise => "summarise",
            Self::HeartbeatTriage => "heartbeat_triage",
        }
    }
}

/// One request to the router.
#[derive(Debug, Clone)]
pub struct ChatRequest<'a> {
    /// What the call is for.
    pub task: Task,
    /// Whether the survival tier asks for the cheaper model.
    pub low_compute: bool,
    /// A model chosen at run time with `switch_model`.
    pub model_override: Option<&'a str>,
    /// The conversation, system prompt first.
    pub messages: &'a [Message],
    /// OpenAI `tools[]` entries.
    pub tools: &'a [serde_json::Value],
    /// Estimated prompt tokens (for the budget check before the call).
    pub estimated_prompt_tokens: u64,
    /// The turn, when run by the loop.
    pub turn_id: Option<i64>,
}

/// A successful call.
#[derive(Debug, Clone)]
pub struct ChatResult {
    /// The model's answer.
    pub completion: Completion,
    /// The provider that answered.
    pub provider: String,
    /// The model used.
    pub model: String,
    /// What it cost.
    pub cost: Usdc,
    /// Wall time of the successful attempt.
    pub latency_ms: u64,
}

/// Why no answer came back.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InferenceFailure {
    /// No provider is configured.
    #[error("no inference provider is configured")]
    NoProvider,
    /// The call would exceed a budget; it was not made.
    #[error("inference budget: {}", .0.message)]
    Budget(BudgetRefusal),
    /// The prompt does not fit; the caller compacts the history and asks again.
    #[error(transparent)]
    ContextLength(InferenceError),
    /// Every provider failed.
    #[error("every provider failed: {}", errors.join("; "))]
    AllFailed {
        /// Each provider's last error.
        errors: Vec<String>,
        /// The longest `Retry-After` any provider asked for.
        retry_after: Option<Duration>,
    },
}

impl InferenceFailure {
    /// What the operator (or the agent, next turn) should do.
    pub fn hint(&self) -> String {
        match self {
            Self::NoProvider => "set OPENAI_API_KEY (and OPENAI_BASE_URL for a compatible server), or add `providers` to automaton.json".to_owned(),
            Self::Budget(refusal) => refusal.hint(),
            Self::ContextLength(_) => "the prompt is larger than the model's real context window: the loop summarises older turns and asks again; if it persists, lower the model's `contextWindow` in automaton.json".to_owned(),
            Self::AllFailed { .. } => "the providers are failing; the loop sleeps and retries later".to_owned(),
        }
    }
}

/// A call the budgets refused before it was made.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BudgetRefusal {
    /// Which budget and by how much, in words.
    pub message: String,
    /// Which budget: `per_call`, `hour` or `day`.
    pub budget: String,
    /// When enough spend has left the window for the same call to fit (epoch ms); `None` when
    /// waiting cannot help (the per-call ceiling, or a call larger than the whole cap).
    pub retry_at_ms: Option<i64>,
}

impl BudgetRefusal {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match (self.budget.as_str(), self.retry_at_ms) {
            ("per_call", _) => "make the call smaller: less history or a cheaper model (`switch_model`); the creator can raise `inference.perCallMaxMicroUsdc` in automaton.json".to_owned(),
            (_, Some(at)) => format!("the same call fits again at {at} (epoch ms), when older spend leaves the {} window; the creator can raise the cap in automaton.json", self.budget),
            (_, None) => format!("this call alone is larger than the {} cap; use a cheaper model (`switch_model`) or ask the creator to raise the cap in automaton.json", self.budget),
        }
    }
}

struct Backend {
    provider: Provider,
    breaker: CircuitBreaker,
}

/// The inference router.
pub struct Inference {
    backends: Vec<Backend>,
    models: Vec<ModelConfig>,
    config: InferenceConfig,
    daily_cap: Usdc,
    retry: RetryPolicy,
    db: SharedDb,
    clock: Arc<dyn Clock>,
    /// The attempt on the wire, until its row is written: a caller that abandons the call
    /// (a shutdown) records it with [`Inference::record_abandoned`].
    in_flight: std::sync::Mutex<Option<InFlight>>,
}

/// An attempt sent and not yet recorded.
struct InFlight {
    task: Task,
    turn_id: Option<i64>,
    provider: String,
    model: String,
    estimated_prompt_tokens: u64,
    input_price: Usdc,
    started: Instant,
}

impl std::fmt::Debug for Inference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inference")
            .field(
                "providers",
                &self
                    .backends
                    .iter()
                    .map(|b| b.provider.name())
                    .collect::<Vec<_>>(),
            )
            .field(
                "models",
                &self.models.iter().map(|m| &m.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The model assumed when none is configured (prices unknown: budgets cannot be enforced).
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;
/// The spend of the last hour (`?1` = its start) and of the last day (`?2`).
const SPENT_LAST_HOUR_AND_DAY: &str =
    "SELECT COALESCE(SUM(cost_micro_usdc) FILTER (WHERE created_at >= ?1), 0),
            COALESCE(SUM(cost_micro_usdc), 0)
     FROM inference_costs WHERE created_at >= ?2";

/// The cost of `tokens` at `price_per_million`, rounded up.
pub fn cost_of(tokens: u64, price_per_million: Usdc) -> Usdc {
    let atoms = (u128::from(tokens) * u128::from(price_per_million.atoms())).div_ceil(1_000_000);
    Usdc(u64::try_from(atoms).unwrap_or(u64::MAX))
}

impl Inference {
    /// A router over `endpoints`, in failover order.
    pub fn new(
        endpoints: &[Endpoint],
        models: Vec<ModelConfig>,
        config: InferenceConfig,
        treasury_daily_cap: Usdc,
        retry: RetryPolicy,
        db: SharedDb,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, String> {
        let backends = endpoints
            .iter()
            .map(|endpoint| {
                Ok(Backend {
                    provider: Provider::new(&endpoint.name, &endpoint.base_url, &endpoint.api_key)?,
                    breaker: CircuitBreaker::new(BreakerConfig::default(), Arc::clone(&clock)),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let daily_cap = config.daily_max_micro_usdc.min(treasury_daily_cap);
        Ok(Self {
            backends,
            models,
            config,
            daily_cap,
            retry,
            db,
            clock,
            in_flight: std::sync::Mutex::new(None),
        })
    }

    /// Records the attempt a caller abandoned mid-call (a shutdown dropped `chat`), so every
    /// attempt stays a row and the caps count it: the prompt as estimated, at the model's
    /// input price (the provider bills what it was sent), outcome `cancelled`. Nothing when
    /// no attempt was on the wire.
    pub async fn record_abandoned(&self) {
        let abandoned = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(attempt) = abandoned else {
            return;
        };
        let request = ChatRequest {
            task: attempt.task,
            low_compute: false,
            model_override: None,
            messages: &[],
            tools: &[],
            estimated_prompt_tokens: attempt.estimated_prompt_tokens,
            turn_id: attempt.turn_id,
        };
        let latency_ms = u64::try_from(attempt.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        if let Err(err) = self
            .record(
                &request,
                &attempt.provider,
                &attempt.model,
                attempt.estimated_prompt_tokens,
                0,
                cost_of(attempt.estimated_prompt_tokens, attempt.input_price),
                latency_ms,
                "cancelled",
            )
            .await
        {
            tracing::error!(error = %err, "could not record an abandoned inference attempt");
        }
    }

    fn set_in_flight(&self, attempt: Option<InFlight>) {
        *self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = attempt;
    }

    /// Whether any provider is configured.
    pub fn has_providers(&self) -> bool {
        !self.backends.is_empty()
    }

    /// The model a request would use.
    pub fn choose_model(
        &self,
        task: Task,
        low_compute: bool,
        model_override: Option<&str>,
    ) -> ModelConfig {
        let configured = match (task, low_compute) {
            (_, true) => self
                .config
                .low_compute_model
                .as_deref()
                .or(self.config.model.as_deref()),
            (Task::Summarise, false) => self
                .config
                .summary_model
                .as_deref()
                .or(self.config.model.as_deref()),
            (Task::AgentTurn | Task::HeartbeatTriage, false) => self.config.model.as_deref(),
        };
        // switch_model is respected, except that a low-compute tier keeps the cheap model.
        let name = if low_compute {
            configured
        } else {
            model_override.or(configured)
        };
        let name = name
            .map(str::to_owned)
            .or_else(|| self.models.first().map(|m| m.name.clone()))
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned());
        self.models
            .iter()
            .find(|m| m.name == name)
            .cloned()
            .unwrap_or(ModelConfig {
                name,
                context_window: 128_000,
                input_price_per_million_micro_usdc: Usdc::ZERO,
                output_price_per_million_micro_usdc: Usdc::ZERO,
                supports_tools: true,
            })
    }

    /// Spent on inference since `since_ms`.
    async fn spent_since(&self, since_ms: i64) -> Result<Usdc, String> {
        with_db(&self.db, move |db| {
            let atoms: i64 = db
                .conn()
                .prepare_cached(
                    "SELECT COALESCE(SUM(cost_micro_usdc), 0) FROM inference_costs WHERE created_at >= ?1",
                )?
                .query_row([since_ms], |row| row.get(0))?;
            Ok(Usdc(u64::try_from(atoms).unwrap_or(0)))
        })
        .await
        .map_err(|err| err.to_string())
    }

    /// Spent on inference in the last day (for `status`).
    pub async fn spent_today(&self) -> Result<Usdc, String> {
        self.spent_since(self.clock.now_ms() - DAY_MS).await
    }

    /// Spent on inference in the hour and in the day before `now`, in one read of the ledger
    /// (both windows are checked before every call; the index on `(created_at,
    /// cost_micro_usdc)` answers it without touching the rows).
    async fn spent_last_hour_and_day(&self, now: i64) -> Result<(Usdc, Usdc), String> {
        with_db(&self.db, move |db| {
            let (hour, day): (i64, i64) = db
                .conn()
                .prepare_cached(SPENT_LAST_HOUR_AND_DAY)?
                .query_row([now - HOUR_MS, now - DAY_MS], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })?;
            let atoms = |sum: i64| Usdc(u64::try_from(sum).unwrap_or(0));
            Ok((atoms(hour), atoms(day)))
        })
        .await
        .map_err(|err| err.to_string())
    }

    async fn check_budget(
        &self,
        model: &ModelConfig,
        estimated_prompt: u64,
    ) -> Result<(), InferenceFailure> {
        let estimate = cost_of(estimated_prompt, model.input_price_per_million_micro_usdc)
            .checked_add(cost_of(
                u64::from(self.config.max_tokens_per_call),
                model.output_price_per_million_micro_usdc,
            ))
            .unwrap_or(Usdc(u64::MAX));
        if estimate > self.config.per_call_max_micro_usdc {
            return Err(InferenceFailure::Budget(BudgetRefusal {
                message: format!(
                    "this call could cost up to {estimate}, above the per-call ceiling of {}",
                    self.config.per_call_max_micro_usdc
                ),
                budget: "per_call".to_owned(),
                retry_at_ms: None,
            }));
        }
        let now = self.clock.now_ms();
        let unreadable = |window: &str, message: String| {
            InferenceFailure::Budget(BudgetRefusal {
                message: format!(
                    "the spend ledger could not be read ({message}), so no call is made"
                ),
                budget: window.to_owned(),
                retry_at_ms: Some(now + HOUR_MS / 60),
            })
        };
        let (last_hour, last_day) = self
            .spent_last_hour_and_day(now)
            .await
            .map_err(|message| unreadable("hour", message))?;
        for (window, span, cap, spent) in [
            (
                "hour",
                HOUR_MS,
                self.config.hourly_max_micro_usdc,
                last_hour,
            ),
            ("day", DAY_MS, self.daily_cap, last_day),
        ] {
            let after = spent.checked_add(estimate).unwrap_or(Usdc(u64::MAX));
            if after > cap {
                let retry_at_ms = if estimate > cap {
                    None
                } else {
                    self.fits_again_at(now, span, after.saturating_sub(cap))
                        .await
                        .map_err(|message| unreadable(window, message))?
                };
                return Err(InferenceFailure::Budget(BudgetRefusal {
                    message: format!(
                        "{spent} spent on inference in the last {window}; this call could bring it to {after}, above the cap of {cap}"
                    ),
                    budget: window.to_owned(),
                    retry_at_ms,
                }));
            }
        }
        Ok(())
    }

    /// When `excess` of the spend in the window `[now - span, now]` will have left it: the
    /// oldest calls leave first, each `span` after it was made.
    async fn fits_again_at(
        &self,
        now: i64,
        span: i64,
        excess: Usdc,
    ) -> Result<Option<i64>, String> {
        with_db(&self.db, move |db| {
            let mut statement = db.conn().prepare_cached(
                "SELECT created_at, cost_micro_usdc FROM inference_costs
                 WHERE created_at >= ?1 AND cost_micro_usdc > 0 ORDER BY created_at",
            )?;
            let mut rows = statement.query([now - span])?;
            let mut leaving = 0_u64;
            while let Some(row) = rows.next()? {
                let (at, cost): (i64, i64) = (row.get(0)?, row.get(1)?);
                leaving = leaving.saturating_add(u64::try_from(cost).unwrap_or(0));
                if leaving >= excess.atoms() {
                    return Ok(Some(at + span + 1));
                }
            }
            Ok(None)
        })
        .await
        .map_err(|err| err.to_string())
    }

    #[expect(clippy::too_many_arguments, reason = "one row's columns")]
    async fn record(
        &self,
        request: &ChatRequest<'_>,
        provider: &str,
        model: &str,
        prompt_tokens: u64,
        completion_tokens: u64,
        cost: Usdc,
        latency_ms: u64,
        outcome: &str,
    ) -> Result<(), String> {
        let (turn_id, task, provider, model, outcome) = (
            request.turn_id,
            request.task.as_str(),
            provider.to_owned(),
            model.to_owned(),
            outcome.to_owned(),
        );
        let now = self.clock.now_ms();
        with_db(&self.db, move |db| {
            // A turn's costs reach the disk behind the turn (an effect's synced intent, or the
            // loop's sync after the turn); a cost outside a turn has nothing after it: synced.
            Ok(db.write_with(turn_id.is_none(), |tx| {
                tx.prepare_cached(
                    "INSERT INTO inference_costs (turn_id, task, provider, model, prompt_tokens,
                         completion_tokens, cost_micro_usdc, latency_ms, outcome, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    turn_id,
                    task,
                    provider,
                    model,
                    i64::try_from(prompt_tokens).unwrap_or(i64::MAX),
                    i64::try_from(completion_tokens).unwrap_or(i64::MAX),
                    i64::try_from(cost.atoms()).unwrap_or(i64::MAX),
                    i64::try_from(latency_ms).unwrap_or(i64::MAX),
                    outcome,
                    now,
                ])
            })?)
        })
        .await
        .map(|_| ())
        .map_err(|err| err.to_string())
    }

    /// Asks the providers, in order, for a completion.
    pub async fn chat(&self, request: &ChatRequest<'_>) -> Result<ChatResult, InferenceFailure> {
        if self.backends.is_empty() {
            return Err(InferenceFailure::NoProvider);
        }
        let model = self.choose_model(request.task, request.low_compute, request.model_override);
        self.check_budget(&model, request.estimated_prompt_tokens)
            .await?;
        let with_tools = !request.tools.is_empty() && model.supports_tools;
        let body = WireRequest {
            model: &model.name,
            messages: request.messages,
            max_tokens: self.config.max_tokens_per_call,
            stream: false,
            tools: if with_tools { request.tools } else { &[] },
            tool_choice: with_tools.then_some("auto"),
        };
        let mut errors = Vec::new();
        let mut retry_after = None;
        for backend in &self.backends {
            let started = Instant::now();
            self.set_in_flight(Some(InFlight {
                task: request.task,
                turn_id: request.turn_id,
                provider: backend.provider.name().to_owned(),
                model: model.name.clone(),
                estimated_prompt_tokens: request.estimated_prompt_tokens,
                input_price: model.input_price_per_million_micro_usdc,
                started,
            }));
            let outcome = retry(&self.retry, Some(&backend.breaker), |_attempt| {
                backend.provider.complete(&body)
            })
            .await;
            self.set_in_flight(None);
            let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match outcome {
                Ok(completion) => {
                    let cost = cost_of(
                        completion.usage.prompt_tokens,
                        model.input_price_per_million_micro_usdc,
                    )
                    .checked_add(cost_of(
                        completion.usage.completion_tokens,
                        model.output_price_per_million_micro_usdc,
                    ))
                    .unwrap_or(Usdc(u64::MAX));
                    if let Err(err) = self
                        .record(
                            request,
                            backend.provider.name(),
                            &model.name,
                            completion.usage.prompt_tokens,
                            completion.usage.completion_tokens,
                            cost,
                            latency_ms,
                            "ok",
                        )
                        .await
                    {
                        tracing::error!(error = %err, "could not record an inference cost");
                    }
                    return Ok(ChatResult {
                        completion,
                        provider: backend.provider.name().to_owned(),
                        model: model.name.clone(),
                        cost,
                        latency_ms,
                    });
                }
                Err(err) => {
                    let _ = self
                        .record(
                            request,
                            backend.provider.name(),
                            &model.name,
                            0,
                            0,
                            Usdc::ZERO,
                            latency_ms,
                            "error",
                        )
                        .await;
                    let last = match err {
                        RetryError::Permanent(InferenceError::ContextLength {
                            provider,
                            message,
                        }) => {
                            return Err(InferenceFailure::ContextLength(
                                InferenceError::ContextLength { provider, message },
                            ));
                        }
                        RetryError::Exhausted { last, .. } | RetryError::Permanent(last) => {
                            if let InferenceError::Http {
                                retry_after: Some(after),
                                ..
                            } = &last
                            {
                                retry_after =
                                    Some(retry_after.map_or(*after, |r: Duration| r.max(*after)));
                            }
                            last.to_string()
                        }
                        RetryError::BreakerOpen(open) => format!(
                            "{}: circuit open for another {} s after repeated failures",
                            backend.provider.name(),
                            open.retry_in.as_secs()
                        ),
                    };
                    tracing::warn!(provider = backend.provider.name(), error = %last, "provider failed; trying the next");
                    errors.push(last);
                }
            }
        }
        Err(InferenceFailure::AllFailed {
            errors,
            retry_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_windows_are_summed_from_the_index_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::state::open(&crate::home::Home::at(dir.path().to_owned())).unwrap();
        let plan: Vec<String> = db
            .conn()
            .prepare(&format!("EXPLAIN QUERY PLAN {SPENT_LAST_HOUR_AND_DAY}"))
            .unwrap()
            .query_map([1, 2], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter().any(|step| step.contains("COVERING INDEX")),
            "{plan:?}"
        );
    }

    #[test]
    fn costs_round_up_in_micro_usdc() {
        // $2.50 per million tokens: 1 token costs 2.5 micro-USDC, rounded up to 3.
        assert_eq!(cost_of(1, Usdc(2_500_000)), Usdc(3));
        assert_eq!(cost_of(1_000_000, Usdc(2_500_000)), Usdc(2_500_000));
        assert_eq!(cost_of(0, Usdc(2_500_000)), Usdc::ZERO);
        assert_eq!(cost_of(u64::MAX, Usdc(u64::MAX)), Usdc(u64::MAX));
    }
}
