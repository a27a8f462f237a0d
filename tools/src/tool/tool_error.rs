//! Tool errors by destination. An error the model can fix goes back as the tool result and
//! the loop continues; a policy denial says why; a cancellation stops the call; a fatal error
//! ends the turn (a broken host is not the model's problem to solve). Every model-visible
//! error carries `code`, `message`, `hint` and `retryable` (seeds 000 and 002), never a secret.

use crate::policy::RuleMatch;
use serde::{Deserialize, Serialize};

/// Stable codes of model-visible tool errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ToolErrorCode {
    /// No tool has that name.
    UnknownTool,
    /// The arguments do not match the tool's schema.
    InvalidArguments,
    /// The policy engine refused the call.
    PolicyDenied,
    /// The call ran past its deadline and was stopped.
    Timeout,
    /// The call was cancelled.
    Cancelled,
    /// The thing named does not exist.
    NotFound,
    /// The request conflicts with current state.
    Conflict,
    /// The tool ran and failed (non-zero exit, I/O error, …).
    ExecutionFailed,
    /// A dependency is unreachable right now.
    Unavailable,
    /// A limit was hit.
    QuotaExceeded,
    /// A platform error (its seed-000 code is in `details.platform_code`).
    PlatformError,
}

/// An error the model sees and can act on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelError {
    /// The stable code.
    pub code: ToolErrorCode,
    /// What happened.
    pub message: String,
    /// What to do next.
    pub hint: String,
    /// Whether the same call may succeed if retried.
    pub retryable: bool,
    /// Relevant state (suggestions, existing objects, log tails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

/// Why a tool call did not produce a result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToolError {
    /// The model can fix this: it goes back as the tool result and the loop continues.
    #[error("{}: {}", code_str(.0.code), .0.message)]
    RespondToModel(Box<ModelError>),
    /// The policy engine refused the call; nothing ran.
    #[error("denied by policy: {reason}")]
    Denied {
        /// The strictest rule's reason.
        reason: String,
        /// Every rule that matched.
        rules: Vec<RuleMatch>,
    },
    /// The call was cancelled (shutdown or the turn's token) or timed out.
    #[error("cancelled: {reason}")]
    Cancelled {
        /// Why.
        reason: String,
    },
    /// The host is broken; the turn ends. The message is for operators, not the model.
    #[error("fatal: {0}")]
    Fatal(String),
}

fn code_str(code: ToolErrorCode) -> String {
    serde_json::to_value(code)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl ToolError {
    /// A model-visible error.
    pub fn model(code: ToolErrorCode, message: impl Into<String>, hint: impl Into<String>) -> Self {
        let retryable = matches!(
            code,
            ToolErrorCode::Timeout | ToolErrorCode::Unavailable | ToolErrorCode::Cancelled
        );
        Self::RespondToModel(Box::new(ModelError {
            code,
            message: message.into(),
            hint: hint.into(),
            retryable,
            details: None,
        }))
    }

    /// Attaches details to a model-visible error (no-op for the other kinds).
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        if let Self::RespondToModel(error) = &mut self {
            error.details = Some(details);
        }
        self
    }

    /// The stable code of this error.
    pub fn code(&self) -> ToolErrorCode {
        match self {
            Self::RespondToModel(error) => error.code,
            Self::Denied { .. } => ToolErrorCode::PolicyDenied,
            Self::Cancelled { .. } => ToolErrorCode::Cancelled,
            Self::Fatal(_) => ToolErrorCode::ExecutionFailed,
        }
    }

    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RespondToModel(error) => error.retryable,
            Self::Cancelled { .. } => true,
            Self::Denied { .. } | Self::Fatal(_) => false,
        }
    }

    /// Whether the turn must end.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Self::Fatal(_))
    }

    /// The JSON the model receives as the tool result.
    pub fn to_model_json(&self) -> serde_json::Value {
        match self {
            Self::RespondToModel(error) => serde_json::json!({ "error": error }),
            Self::Denied { reason, rules } => serde_json::json!({
                "error": {
                    "code": ToolErrorCode::PolicyDenied,
                    "message": format!("this call was not run: {reason}"),
                    "hint": "do not retry the same call; choose another way that the rules allow",
                    "retryable": false,
                    "details": { "rules": rules },
                }
            }),
            Self::Cancelled { reason } => serde_json::json!({
                "error": {
                    "code": ToolErrorCode::Cancelled,
                    "message": format!("the call was stopped: {reason}"),
                    "hint": "retry it if it is still needed",
                    "retryable": true,
                }
            }),
            Self::Fatal(_) => serde_json::json!({
                "error": {
                    "code": ToolErrorCode::ExecutionFailed,
                    "message": "the runtime failed while running this call",
                    "hint": "the turn ends here; the creator can read the runtime's log",
                    "retryable": false,
                }
            }),
        }
    }
}
