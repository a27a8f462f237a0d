//! The Conway platform's error model (seed 000): every failure is
//! `{code, message, hint, retryable}`, with the app's log tail when a build or health gate
//! failed and the relevant state when it helps the caller decide what to do next.

use serde::{Deserialize, Serialize};

/// Seed 000's error codes, as they appear on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// No buildable provider was found in the source.
    NoProviderDetected,
    /// The build itself failed.
    BuildCommandFailed,
    /// Built, but the release could not be stored.
    ImagePushFailed,
    /// The source exceeds 512 MB.
    SourceTooLarge,
    /// The build exceeded 30 minutes.
    Timeout,
    /// The app never listened on `$PORT`.
    HealthCheckFailed,
    /// The bearer token is missing or invalid.
    Unauthenticated,
    /// The token lacks the capability the call needs.
    CapabilityMissing,
    /// A project resource quota was hit.
    QuotaExceeded,
    /// No such project, service, release or datastore.
    NotFound,
    /// The request was malformed.
    InvalidInput,
    /// The request conflicts with current state.
    Conflict,
    /// A platform-side fault.
    InternalError,
    /// The account's credit balance cannot pay for the call (HTTP 402).
    InsufficientCredits,
}

impl ErrorCode {
    /// Whether retrying the same request may succeed.
    pub fn retryable(self) -> bool {
        match self {
            Self::ImagePushFailed | Self::Timeout | Self::InternalError => true,
            Self::NoProviderDetected
            | Self::BuildCommandFailed
            | Self::SourceTooLarge
            | Self::HealthCheckFailed
            | Self::Unauthenticated
            | Self::CapabilityMissing
            | Self::QuotaExceeded
            | Self::NotFound
            | Self::InvalidInput
            | Self::Conflict
            | Self::InsufficientCredits => false,
        }
    }

    /// Seed 000's standing advice for the code, used when a failure has nothing more specific.
    pub fn default_hint(self) -> &'static str {
        match self {
            Self::NoProviderDetected => {
                "add a Procfile (`web: <start command>`), a conway.toml, a package.json start script, a Python app, a Cargo.toml or an index.html at the source root"
            }
            Self::BuildCommandFailed => "read log_tail, fix the source, redeploy",
            Self::ImagePushFailed => "retry the deploy",
            Self::SourceTooLarge => "exclude build artifacts with a .conwayignore file",
            Self::Timeout => "reduce the build's work and retry",
            Self::HealthCheckFailed => "bind 0.0.0.0:$PORT; check log_tail",
            Self::Unauthenticated => "send `Authorization: Bearer <token>`",
            Self::CapabilityMissing => "request a token with the named capability",
            Self::QuotaExceeded => "scale something down or request more",
            Self::NotFound => {
                "list what exists first (list_services / the project's state; `automaton platform status --json` on the command line) and use one of those names"
            }
            Self::InvalidInput => "follow the hint; see /v1/openapi.yaml",
            Self::Conflict => "follow the hint",
            Self::InternalError => "retry once; report it if it persists",
            Self::InsufficientCredits => {
                "fund the account: `automaton platform credits grant <USD> --reason TEXT` with the platform's admin token (e.g. `automaton platform credits grant 5 --reason \"top-up\"`), then retry"
            }
        }
    }
}

/// A platform failure as the caller (an agent or the CLI) sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Error {
    /// The machine-readable code.
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
    /// The next action.
    pub hint: String,
    /// Whether retrying may succeed.
    pub retryable: bool,
    /// The last lines of the build or app log, when a gate failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
    /// The relevant state (e.g. the existing project on a conflict); boxed to keep the
    /// error small on the happy path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<Box<serde_json::Value>>,
    /// The HTTP answer that carried the failure, when it came over HTTP (the client's side
    /// only: never on the wire).
    #[serde(skip)]
    pub http: Option<HttpFailure>,
}

/// The status and `Retry-After` of a failed HTTP answer, kept so the retry policy can wait
/// as long as the server asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpFailure {
    /// The status code.
    pub status: u16,
    /// The server's `Retry-After`, in either form, as a wait from when the answer came.
    pub retry_after: Option<std::time::Duration>,
}

impl Error {
    /// An error with the code's default hint and retryability.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            hint: code.default_hint().to_owned(),
            retryable: code.retryable(),
            log_tail: Vec::new(),
            state: None,
            http: None,
        }
    }

    /// Replaces the hint with a more specific one.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }

    /// Marks the failure retryable though its code usually is not (a quota that frees
    /// itself, like builds in flight).
    pub fn retryable_anyway(mut self) -> Self {
        self.retryable = true;
        self
    }

    /// Marks a platform-side fault a retry cannot cure (damaged state, a broken invariant):
    /// the caller should report it rather than loop.
    pub fn not_retryable(mut self) -> Self {
        self.retryable = false;
        self
    }

    /// Attaches the log tail of a failed gate.
    pub fn with_log_tail(mut self, lines: Vec<String>) -> Self {
        self.log_tail = lines;
        self
    }

    /// Attaches the relevant state.
    pub fn with_state(mut self, state: serde_json::Value) -> Self {
        self.state = Some(Box::new(state));
        self
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Self {
        let error = Self::new(ErrorCode::InternalError, format!("platform.db: {err}"));
        // Only a busy or locked database clears up by itself; anything else (a broken
        // constraint, a damaged file, a full disk) fails the same way again.
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => error,
            _ => error
                .not_retryable()
                .with_hint("a retry fails the same way: report it to the platform's operator with this message"),
        }
    }
}

/// Results of platform calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_shape_matches_seed_000() {
        let err = Error::new(ErrorCode::HealthCheckFailed, "app never listened on $PORT")
            .with_log_tail(vec!["Error: Cannot find module 'express'".to_owned()]);
        let wire = serde_json::to_value(&err).unwrap();
        assert_eq!(wire["code"], "HEALTH_CHECK_FAILED");
        assert_eq!(wire["retryable"], false);
        assert_eq!(wire["hint"], "bind 0.0.0.0:$PORT; check log_tail");
        assert_eq!(wire["log_tail"][0], "Error: Cannot find module 'express'");
        assert!(wire.get("state").is_none());
        let back: Error = serde_json::from_value(wire).unwrap();
        assert_eq!(back, err);
    }

    #[test]
    fn only_a_busy_database_is_worth_a_retry() {
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(Error::from(busy).retryable);
        let broken = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            None,
        );
        let err = Error::from(broken);
        assert_eq!(err.code, ErrorCode::InternalError);
        assert!(!err.retryable);
        assert!(err.hint.contains("report"), "{err:?}");
        assert!(
            Error::new(ErrorCode::NotFound, "x")
                .hint
                .contains("list_services")
        );
    }

    #[test]
    fn only_transient_codes_are_retryable() {
        assert!(ErrorCode::InternalError.retryable());
        assert!(!ErrorCode::Conflict.retryable());
        let code: ErrorCode = serde_json::from_str("\"NO_PROVIDER_DETECTED\"").unwrap();
        assert_eq!(code, ErrorCode::NoProviderDetected);
    }
}
