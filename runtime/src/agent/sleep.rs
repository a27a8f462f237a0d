//! The `sleep` tool: the agent says it has nothing useful to do for a while, and why. The
//! loop ends the turn and rests until the time is up or a wake event arrives.

use automaton_tools::tool::{
    Category, Effect, RiskLevel, Tool, ToolContext, ToolError, ToolErrorCode, ToolOutput,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::{Arc, Mutex};

/// The longest sleep the agent may ask for (a week).
pub const MAX_SLEEP_SECONDS: u64 = 7 * 24 * 3600;

/// A request to sleep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SleepRequest {
    /// When to wake, epoch ms.
    pub until_ms: i64,
    /// Why.
    pub reason: String,
}

/// Where the `sleep` tool leaves its request for the loop.
#[derive(Debug, Clone, Default)]
pub struct SleepSlot(Arc<Mutex<Option<SleepRequest>>>);

impl SleepSlot {
    /// Takes the pending request, if any.
    pub fn take(&self) -> Option<SleepRequest> {
        match self.0.lock() {
            Ok(mut slot) => slot.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        }
    }

    /// Leaves a request.
    pub fn put(&self, request: SleepRequest) {
        match self.0.lock() {
            Ok(mut slot) => *slot = Some(request),
            Err(poisoned) => *poisoned.into_inner() = Some(request),
        }
    }
}

/// Arguments of `sleep`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepArgs {
    /// How long to sleep, in seconds (1 to 604800).
    pub duration_seconds: u64,
    /// Why (shown to you when you wake).
    pub reason: String,
}

/// The `sleep` tool.
#[derive(Debug)]
pub struct SleepTool(pub SleepSlot);

impl Tool for SleepTool {
    const NAME: &'static str = "sleep";
    type Args = SleepArgs;

    fn description(&self) -> String {
        "Sleep until a time or a wake event. Ends this turn; the heartbeat keeps running."
            .to_owned()
    }

    fn category(&self) -> Category {
        Category::Survival
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn effect(&self, _: &SleepArgs) -> Effect {
        Effect::Mutating
    }

    async fn call(&self, ctx: &ToolContext, args: SleepArgs) -> Result<ToolOutput, ToolError> {
        if !(1..=MAX_SLEEP_SECONDS).contains(&args.duration_seconds) {
            return Err(ToolError::model(
                ToolErrorCode::InvalidArguments,
                format!("duration_seconds {} is out of range", args.duration_seconds),
                format!("sleep between 1 and {MAX_SLEEP_SECONDS} seconds"),
            ));
        }
        let millis = i64::try_from(args.duration_seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        let until_ms = ctx.clock.now_ms().saturating_add(millis);
        self.0.put(SleepRequest {
            until_ms,
            reason: args.reason.clone(),
        });
        Ok(ToolOutput::new(serde_json::json!({
            "sleeping_until_ms": until_ms,
            "reason": args.reason,
        })))
    }
}
