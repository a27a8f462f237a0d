//! How the CLI speaks: readable text on a terminal, JSON when stdout is not a terminal or
//! with `--json` (seed 000). Errors go to stderr the same way.

use crate::error::Error;
use serde::Serialize;
use std::io::{IsTerminal, Write};

/// The output format of one invocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Text for a person at a terminal.
    Human,
    /// One JSON document on stdout.
    Json,
}

impl OutputMode {
    /// JSON when forced or when stdout is not a terminal.
    pub fn detect(json_flag: bool) -> Self {
        if json_flag || !std::io::stdout().is_terminal() {
            Self::Json
        } else {
            Self::Human
        }
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (e.g. `| head`) is not an error worth reporting.
    let _ = writeln!(stdout, "{text}");
}

/// The JSON shape of an error on stderr.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    /// The stable code.
    pub code: crate::error::ErrorCode,
    /// What happened.
    pub message: String,
    /// What to do next.
    pub hint: String,
}

/// Prints an error on stderr in the given mode.
pub fn print_error(mode: OutputMode, err: &Error) {
    let mut stderr = std::io::stderr().lock();
    if let Error::Platform(error) = err {
        // The platform's own shape: its seed-000 code, retryable, log tail and state.
        match mode {
            OutputMode::Json => {
                let _ = writeln!(
                    stderr,
                    "{}",
                    serde_json::to_string(error).unwrap_or_default()
                );
            }
            OutputMode::Human => {
                let code = serde_json::to_value(error.code).unwrap_or_default();
                let _ = writeln!(
                    stderr,
                    "error ({}): {}\n  hint: {}",
                    code.as_str().unwrap_or(""),
                    error.message,
                    error.hint
                );
                for line in &error.log_tail {
                    let _ = writeln!(stderr, "  | {line}");
                }
            }
        }
        return;
    }
    match mode {
        OutputMode::Json => {
            let body = ErrorBody {
                code: err.code(),
                message: err.to_string(),
                hint: err.hint(),
            };
            let text = serde_json::to_string(&body).unwrap_or_default();
            let _ = writeln!(stderr, "{text}");
        }
        OutputMode::Human => {
            let _ = writeln!(stderr, "error: {err}\n  hint: {}", err.hint());
        }
    }
}
