//! The one path every tool call takes, and nothing else runs a tool:
//!
//! lookup (unknown names get "did you mean") → decode (a schema error names the field) →
//! policy (every gate, strictest wins) → intent row → run with a timeout and cancellation →
//! result row and receipt.
//!
//! SQLite work runs on the blocking pool with the connection's mutex held only there, never
//! across an `.await`.

use crate::audit::canonical::canonical_json;
use crate::audit::{self, CallStatus, Completion, Intent, SqlHistory};
use crate::clock::Clock;
use crate::db::StateDb;
use crate::policy::engine::{PolicyEngine, PolicyOutcome, PolicyRequest};
use crate::policy::{Decision, Verdict};
use crate::registry::Registry;
use crate::tool::{
    Assessment, DynTool, Effect, Provenance, ToolContext, ToolError, ToolErrorCode, ToolOutput,
    ToolSpec,
};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// state.db shared by the dispatcher and the tools that keep records.
pub type SharedDb = Arc<Mutex<StateDb>>;

/// Runs `work` with the database on the blocking pool.
pub async fn with_db<T, F>(db: &SharedDb, work: F) -> Result<T, ToolError>
where
    T: Send + 'static,
    F: FnOnce(&mut StateDb) -> Result<T, crate::Error> + Send + 'static,
{
    let db = Arc::clone(db);
    tokio::task::spawn_blocking(move || {
        let mut guard = db
            .lock()
            .map_err(|_| crate::Error::Sqlite(rusqlite::Error::InvalidQuery))?;
        work(&mut guard)
    })
    .await
    .map_err(|err| ToolError::Fatal(format!("state.db task failed: {err}")))?
    .map_err(|err| ToolError::Fatal(format!("state.db: {err}")))
}

/// One call as the model (or a CLI user) made it.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// The tool's name.
    pub name: String,
    /// The raw argument text (a JSON object; empty means `{}`).
    pub arguments: String,
    /// Who caused the call.
    pub provenance: Provenance,
    /// The turn, when run by the loop.
    pub turn_id: Option<i64>,
    /// A deadline shorter than the default, if any.
    pub timeout: Option<Duration>,
}

/// What happened to one call.
#[derive(Debug, Clone)]
pub struct CallRecord {
    /// The call id (also the `tool_calls.id`).
    pub call_id: String,
    /// The tool's name as called.
    pub name: String,
    /// The policy decision; `None` when the call was rejected before policy.
    pub decision: Option<Decision>,
    /// The call's assessed effect; `None` when it was rejected before assessment.
    pub effect: Option<crate::tool::Effect>,
    /// The result.
    pub result: Result<ToolOutput, ToolError>,
    /// The receipt's hash, for a state-changing call that ran.
    pub receipt: Option<String>,
    /// Wall time from lookup to completion.
    pub duration_ms: i64,
}

impl CallRecord {
    /// The JSON the model receives as this call's result.
    pub fn model_json(&self) -> serde_json::Value {
        match &self.result {
            Ok(output) => output.value.clone(),
            Err(err) => err.to_model_json(),
        }
    }
}

/// The dispatcher: the registry, the policy engine and the audit trail, together.
pub struct Dispatcher {
    registry: Arc<Registry>,
    engine: Arc<PolicyEngine>,
    db: SharedDb,
    clock: Arc<dyn Clock>,
    default_timeout: Duration,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("registry", &self.registry)
            .field("engine", &self.engine)
            .field("default_timeout", &self.default_timeout)
            .finish()
    }
}

/// A call's assessment and policy outcome, without running it.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The tool's spec.
    pub spec: ToolSpec,
    /// Risk, effect, subjects.
    pub assessment: Assessment,
    /// The policy outcome.
    pub outcome: PolicyOutcome,
}

impl Dispatcher {
    /// A dispatcher over `registry` and `engine`, recording into `db`.
    pub fn new(
        registry: Arc<Registry>,
        engine: Arc<PolicyEngine>,
        db: SharedDb,
        clock: Arc<dyn Clock>,
        default_timeout: Duration,
    ) -> Self {
        Self {
            registry,
            engine,
            db,
            clock,
            default_timeout,
        }
    }

    /// The registered tools.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A call's argument text as anything stored beside the audit trail (the conversation
    /// history) may keep it: the tool's secret values replaced by markers, exactly as
    /// `tool_calls` records them; unchanged when the call carries no secret.
    pub fn stored_arguments(&self, name: &str, raw: &str) -> String {
        let Ok(tool) = self.registry.lookup(name) else {
            return raw.to_owned();
        };
        let parsed: Result<serde_json::Value, _> = serde_json::from_str(raw);
        let (given, recorded) = match parsed {
            Ok(value) => {
                let recorded = match tool.assess(&value) {
                    Ok(assessment) => assessment.recorded_args(&value),
                    Err(_) => tool.rejected_args(&value),
                };
                (value, recorded)
            }
            Err(_) => {
                let text = serde_json::Value::String(raw.to_owned());
                (text.clone(), tool.rejected_args(&text))
            }
        };
        if recorded == given {
            raw.to_owned()
        } else {
            canonical_json(&recorded)
        }
    }

    /// Looks up, decodes and evaluates a call without running or recording it
    /// (`automaton policy check`).
    pub fn evaluate(
        &self,
        name: &str,
        args: &serde_json::Value,
        provenance: Provenance,
        turn_id: Option<i64>,
        db: &StateDb,
    ) -> Result<Evaluation, ToolError> {
        let tool = self.registry.lookup(name)?;
        let assessment = tool.assess(args)?;
        let history = SqlHistory(db.conn());
        let outcome = self.engine.evaluate(&PolicyRequest {
            tool: tool.spec(),
            assessment: &assessment,
            args,
            provenance,
            turn_id,
            now_ms: self.clock.now_ms(),
            history: &history,
        });
        Ok(Evaluation {
            spec: tool.spec().clone(),
            assessment,
            outcome,
        })
    }

    /// Runs one call through the whole path. Database failures end as `ToolError::Fatal`.
    pub async fn dispatch(&self, request: CallRequest, cancel: &CancellationToken) -> CallRecord {
        let started = Instant::now();
        let started_at = self.clock.now_ms();
        let call_id = format!("call_{}", uuid::Uuid::new_v4().simple());
        let finish = |decision, effect, result, receipt| CallRecord {
            call_id: call_id.clone(),
            name: request.name.clone(),
            decision,
            effect,
            result,
            receipt,
            duration_ms: elapsed_ms(started),
        };

        let (tool, args, assessment) = match self.prepare(&request) {
            Ok(prepared) => prepared,
            Err((args_json, err)) => {
                let recorded = self
                    .record_rejection(&call_id, &request, args_json, &err, started_at)
                    .await;
                let result = recorded.map_or_else(Err, |()| Err(err));
                return finish(None, None, result, None);
            }
        };
        let effect = assessment.effect;

        // Policy, then the intent row with its decision in one transaction. A call that will
        // not run has nothing to wait for: its result commits in that same transaction.
        let decided = {
            let (engine, tool, clock) = (
                Arc::clone(&self.engine),
                Arc::clone(&tool),
                Arc::clone(&self.clock),
            );
            let (call_id, provenance, turn_id) =
                (call_id.clone(), request.provenance, request.turn_id);
            with_db(&self.db, move |db| {
                let spec = tool.spec();
                let outcome = engine.evaluate(&PolicyRequest {
                    tool: spec,
                    assessment: &assessment,
                    args: &args,
                    provenance,
                    turn_id,
                    now_ms: started_at,
                    history: &SqlHistory(db.conn()),
                });
                let args_json = canonical_json(&assessment.recorded_args(&args));
                let intent = Intent {
                    call_id: &call_id,
                    turn_id,
                    tool: spec.name.as_str(),
                    category: Some(spec.category),
                    risk: Some(assessment.risk),
                    effect: Some(assessment.effect),
                    args_json: &args_json,
                    provenance,
                    started_at,
                };
                if outcome.decision == Decision::Allow {
                    // Write-ahead: an effect's intent is on disk before the effect happens.
                    db.write_with(intent_must_sync(assessment.effect), |tx| {
                        audit::record_intent(tx, &intent, &outcome, CallStatus::Running)
                    })?;
                    return Ok(Decided::Allowed(args));
                }
                let denial = ToolError::Denied {
                    reason: outcome.reason(),
                    rules: outcome.verdict.rules.clone(),
                };
                let result = denial.to_model_json();
                db.write_with(turn_id.is_none(), |tx| {
                    audit::record_intent(tx, &intent, &outcome, CallStatus::Denied)?;
                    audit::record_completion(
                        tx,
                        &Completion {
                            call_id: &call_id,
                            status: CallStatus::Denied,
                            result: &result,
                            error_code: code_name(Some(denial.code())),
                            duration_ms: elapsed_ms(started),
                            ended_at: clock.now_ms(),
                            receipt: false,
                        },
                    )
                })?;
                Ok(Decided::Denied(outcome.decision, denial))
            })
            .await
        };
        let args = match decided {
            Ok(Decided::Allowed(args)) => args,
            Ok(Decided::Denied(decision, err)) => {
                if let ToolError::Denied { reason, .. } = &err {
                    tracing::info!(call_id, tool = %request.name, provenance = %request.provenance, %reason, "tool call denied");
                }
                return finish(Some(decision), Some(effect), Err(err), None);
            }
            Err(err) => return finish(None, Some(effect), Err(err), None),
        };

        let timeout = request
            .timeout
            .map_or(self.default_timeout, |t| t.min(self.default_timeout));
        let ctx = ToolContext {
            call_id: call_id.clone(),
            turn_id: request.turn_id,
            provenance: request.provenance,
            cancel: cancel.child_token(),
            deadline: started + timeout,
            clock: Arc::clone(&self.clock),
        };
        let result = run_with_deadline(tool.as_ref(), &ctx, args, timeout).await;
        let status = match &result {
            Ok(_) => CallStatus::Succeeded,
            Err(ToolError::Cancelled { .. }) => CallStatus::Cancelled,
            Err(ToolError::RespondToModel(_) | ToolError::Denied { .. } | ToolError::Fatal(_)) => {
                CallStatus::Failed
            }
        };
        let receipt = self
            .complete(
                &call_id,
                status,
                &result,
                effect,
                started,
                (request.provenance, request.turn_id),
            )
            .await;
        match receipt {
            Ok(receipt) => finish(Some(Decision::Allow), Some(effect), result, receipt),
            Err(err) => finish(Some(Decision::Allow), Some(effect), Err(err), None),
        }
    }

    /// Lookup and decode; on failure, the canonical args (if parseable) and the error.
    #[expect(
        clippy::type_complexity,
        reason = "a private step; its error pairs the canonical args with the error to record"
    )]
    fn prepare(
        &self,
        request: &CallRequest,
    ) -> Result<(Arc<dyn DynTool>, serde_json::Value, Assessment), (String, ToolError)> {
        let text = request.arguments.trim();
        // What a rejection records: a tool with secret arguments has them redacted.
        let recorded = |args: &serde_json::Value| match self.registry.lookup(&request.name) {
            Ok(tool) => canonical_json(&tool.rejected_args(args)),
            Err(_) => canonical_json(args),
        };
        let args: serde_json::Value = if text.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(text).map_err(|err| {
                (
                    {
                        let raw = serde_json::Value::String(request.arguments.clone());
                        match self.registry.lookup(&request.name) {
                            Ok(tool) if tool.rejected_args(&raw) != raw => recorded(&raw),
                            _ => raw.to_string(),
                        }
                    },
                    ToolError::model(
                        ToolErrorCode::InvalidArguments,
                        format!(
                            "the arguments of `{}` are not valid JSON: {err}",
                            request.name
                        ),
                        "send the arguments as one JSON object matching the tool's parameters",
                    ),
                )
            })?
        };
        if !args.is_object() {
            return Err((
                recorded(&args),
                ToolError::model(
                    ToolErrorCode::InvalidArguments,
                    format!("the arguments of `{}` must be a JSON object", request.name),
                    "wrap the arguments in an object: {\"name\": value, …}",
                ),
            ));
        }
        let tool = self
            .registry
            .lookup(&request.name)
            .map_err(|err| (canonical_json(&args), err))?;
        let assessment = tool
            .assess(&args)
            .map_err(|err| (canonical_json(&tool.rejected_args(&args)), err))?;
        Ok((tool, args, assessment))
    }

    async fn record_rejection(
        &self,
        call_id: &str,
        request: &CallRequest,
        args_json: String,
        err: &ToolError,
        started_at: i64,
    ) -> Result<(), ToolError> {
        let mut verdict = Verdict::default();
        verdict.push(
            "dispatch",
            match err.code() {
                ToolErrorCode::UnknownTool => "unknown_tool",
                _ => "invalid_arguments",
            },
            Decision::Forbid,
            err.to_string(),
        );
        let outcome = PolicyOutcome {
            decision: Decision::Forbid,
            verdict,
        };
        let (call_id_owned, name, provenance, turn_id) = (
            call_id.to_owned(),
            request.name.clone(),
            request.provenance,
            request.turn_id,
        );
        let result = err.to_model_json();
        let error_code = code_name(Some(err.code()));
        let ended_at = self.clock.now_ms();
        with_db(&self.db, move |db| {
            let intent = Intent {
                call_id: &call_id_owned,
                turn_id,
                tool: &name,
                category: None,
                risk: None,
                effect: None,
                args_json: &args_json,
                provenance,
                started_at,
            };
            db.write_with(turn_id.is_none(), |tx| {
                audit::record_intent(tx, &intent, &outcome, CallStatus::Rejected)?;
                audit::record_completion(
                    tx,
                    &Completion {
                        call_id: &call_id_owned,
                        status: CallStatus::Rejected,
                        result: &result,
                        error_code,
                        duration_ms: 0,
                        ended_at,
                        receipt: false,
                    },
                )
                .map(|_| ())
            })?;
            Ok(())
        })
        .await
    }

    /// The result row with the content provenance of the files the call wrote and, for a
    /// call that could have changed state, its receipt: one transaction.
    async fn complete(
        &self,
        call_id: &str,
        status: CallStatus,
        outcome: &Result<ToolOutput, ToolError>,
        effect: Effect,
        started: Instant,
        (provenance, turn_id): (Provenance, Option<i64>),
    ) -> Result<Option<String>, ToolError> {
        let call_id = call_id.to_owned();
        let receipt = effect.changes_state();
        let synced = completion_must_sync(effect, turn_id);
        let (result, written_files) = match outcome {
            Ok(output) => (output.value.clone(), output.written_files.clone()),
            Err(err) => (err.to_model_json(), Vec::new()),
        };
        let error_code = outcome
            .as_ref()
            .err()
            .and_then(|err| code_name(Some(err.code())));
        let duration_ms = elapsed_ms(started);
        let ended_at = self.clock.now_ms();
        with_db(&self.db, move |db| {
            Ok(db.write_with(synced, |tx| {
                for file in &written_files {
                    audit::record_content_provenance(tx, file, provenance, &call_id, ended_at)?;
                }
                audit::record_completion(
                    tx,
                    &Completion {
                        call_id: &call_id,
                        status,
                        result: &result,
                        error_code,
                        duration_ms,
                        ended_at,
                        receipt,
                    },
                )
            })?)
        })
        .await
    }
}

/// What the policy made of a call, as the transaction that recorded it returns it.
enum Decided {
    /// Allowed; its intent is durable and it may run with these arguments.
    Allowed(serde_json::Value),
    /// Refused; its intent and its result are durable.
    Denied(Decision, ToolError),
}

/// Whether a call's intent commits synced: it must be on disk before any effect outside
/// state.db happens; a read-only call's can wait for the next synced commit.
fn intent_must_sync(effect: Effect) -> bool {
    effect.changes_state()
}

/// Whether a call's result commits synced. Inside a turn the agent loop puts it on disk behind
/// the turn (the next effect's synced intent, or the WAL sync the loop runs after each turn:
/// `db::sync_wal`) — except a spend's, which is the only record of the money moved. Outside a
/// turn nothing follows: synced.
fn completion_must_sync(effect: Effect, turn_id: Option<i64>) -> bool {
    turn_id.is_none() || effect == Effect::Spend
}

fn code_name(code: Option<ToolErrorCode>) -> Option<String> {
    code.and_then(|code| serde_json::to_value(code).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn elapsed_ms(started: Instant) -> i64 {
    i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// Runs the tool until it finishes, its deadline passes, or it is cancelled. On timeout or
/// cancellation the tool's own token is cancelled and its future dropped, which kills what it
/// started (tools tie child processes to their future).
async fn run_with_deadline(
    tool: &dyn DynTool,
    ctx: &ToolContext,
    args: serde_json::Value,
    timeout: Duration,
) -> Result<ToolOutput, ToolError> {
    let name = tool.spec().name.to_string();
    tokio::select! {
        result = tool.call_json(ctx, args) => result,
        () = tokio::time::sleep_until(ctx.deadline) => {
            ctx.cancel.cancel();
            Err(ToolError::model(
                ToolErrorCode::Timeout,
                format!("`{name}` did not finish within {} s and was stopped", timeout.as_secs()),
                "make the work smaller, run it in the background, or pass a longer timeout if the tool takes one",
            ))
        }
        () = ctx.cancel.cancelled() => Err(ToolError::Cancelled {
            reason: "the turn was cancelled (shutdown or interrupt)".to_owned(),
        }),
    }
}

#[cfg(test)]
mod durability_tests {
    use super::*;

    #[test]
    fn only_an_effect_s_intent_and_results_no_turn_follows_wait_for_the_disk() {
        let all = [
            Effect::ReadOnly,
            Effect::Mutating,
            Effect::Network,
            Effect::Spend,
        ];
        for effect in all {
            assert_eq!(
                intent_must_sync(effect),
                effect != Effect::ReadOnly,
                "{effect:?}"
            );
            assert!(
                completion_must_sync(effect, None),
                "{effect:?} outside a turn"
            );
            assert_eq!(
                completion_must_sync(effect, Some(1)),
                effect == Effect::Spend,
                "{effect:?} inside a turn"
            );
        }
    }
}
