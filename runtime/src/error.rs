//! The runtime's error type. Every variant maps to a stable [`ErrorCode`] and a hint that
//! tells a person or an agent the next action; `main` prints them as a line plus hint, or as
//! `{"code","message","hint"}` in JSON mode.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Stable, machine-readable error codes of the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The arguments or a value given were wrong.
    InvalidInput,
    /// The home does not exist yet.
    NotInitialized,
    /// automaton.json failed to parse or validate.
    InvalidConfig,
    /// constitution.md does not match its pinned hash, mode or file type.
    ConstitutionTampered,
    /// wallet.json is unsafe, malformed or cannot be decrypted.
    WalletRefused,
    /// state.db could not be opened, checked or migrated.
    StateDb,
    /// A file operation on the home failed.
    Io,
    /// The command needs a terminal.
    NotATerminal,
    /// The home's git history could not be written.
    Git,
    /// Another `automaton run` already runs this home.
    Busy,
    /// The Conway platform answered with an error (its own code is printed).
    Platform,
}

/// Errors of the automaton runtime.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A user-supplied value was rejected.
    #[error("{message}")]
    InvalidInput {
        /// What was wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// No home at the resolved path.
    #[error("no automaton home at {0}")]
    NotInitialized(PathBuf),
    /// automaton.json is invalid; `key` names the offending key.
    #[error("automaton.json: `{key}`: {message}")]
    InvalidConfig {
        /// The JSON path of the offending key (`treasuryPolicy.maxX402PaymentMicroUsdc`).
        key: String,
        /// What is wrong with it.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// constitution.md failed verification.
    #[error("constitution.md failed verification: {0}")]
    ConstitutionTampered(String),
    /// The wallet was refused.
    #[error(transparent)]
    Wallet(#[from] automaton_treasury::Error),
    /// state.db failed.
    #[error(transparent)]
    StateDb(#[from] automaton_tools::Error),
    /// A raw SQLite error from the runtime's own queries.
    #[error("state.db: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done (`reading`, `creating`, …).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// An interactive command was run without a terminal.
    #[error("{0} needs an interactive terminal")]
    NotATerminal(&'static str),
    /// Writing the home's git history failed.
    #[error("git: {0}")]
    Git(#[from] git2::Error),
    /// A failure the agent's stretch process reported, relayed unchanged.
    #[error("{message}")]
    Relayed {
        /// Its code.
        code: ErrorCode,
        /// Its message.
        message: String,
        /// Its hint.
        hint: String,
    },
    /// Another `automaton run` holds the home's run lock.
    #[error("another `automaton run` is already running this home ({0})")]
    Busy(PathBuf),
    /// A stretch started by an earlier run still holds the stretch lock.
    #[error(
        "a stretch of the agent started by an earlier `automaton run` is still finishing ({0})"
    )]
    StretchRunning(PathBuf),
    /// The platform refused or failed a call; its own `{code, message, hint, retryable}`.
    #[error("{}", .0.message)]
    Platform(Box<automaton_platform::Error>),
    /// A file in the home failed to parse.
    #[error("{file}: {message}")]
    HomeFile {
        /// The file (`heartbeat.yml`, `SOUL.md`).
        file: &'static str,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
}

impl Error {
    /// Wraps an I/O error with what was being done and to which path.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput { .. } => ErrorCode::InvalidInput,
            Self::NotInitialized(_) => ErrorCode::NotInitialized,
            Self::InvalidConfig { .. } | Self::HomeFile { .. } => ErrorCode::InvalidConfig,
            Self::ConstitutionTampered(_) => ErrorCode::ConstitutionTampered,
            Self::Wallet(_) => ErrorCode::WalletRefused,
            Self::StateDb(_) | Self::Sqlite(_) => ErrorCode::StateDb,
            Self::Io { .. } => ErrorCode::Io,
            Self::NotATerminal(_) => ErrorCode::NotATerminal,
            Self::Git(_) => ErrorCode::Git,
            Self::Relayed { code, .. } => *code,
            Self::Busy(_) | Self::StretchRunning(_) => ErrorCode::Busy,
            Self::Platform(_) => ErrorCode::Platform,
        }
    }

    /// The next action.
    pub fn hint(&self) -> String {
        match self {
            Self::InvalidInput { hint, .. }
            | Self::InvalidConfig { hint, .. }
            | Self::HomeFile { hint, .. }
            | Self::Relayed { hint, .. } => hint.clone(),
            Self::Platform(error) => error.hint.clone(),
            Self::Busy(_) => "one automaton runs one home at a time: stop the other run (SIGTERM), or use another --home".to_owned(),
            Self::StretchRunning(_) => "its run is gone and it was told to stop; it exits once its tool call is done (at most a minute): wait and start `automaton run` again (`pgrep -af 'automaton.* stretch'` shows it)".to_owned(),
            Self::NotInitialized(_) => {
                "run `automaton init --name NAME --genesis-prompt TEXT --creator 0x…` (or `automaton setup` on a terminal)".to_owned()
            }
            Self::ConstitutionTampered(_) => {
                "the agent will not run with a changed constitution: restore it with `git -C <home> checkout -- constitution.md && chmod 444 <home>/constitution.md`, then run `automaton doctor`".to_owned()
            }
            Self::Wallet(err) => err.hint(),
            Self::StateDb(err) => err.hint(),
            Self::Sqlite(_) => "run `automaton doctor` to check state.db".to_owned(),
            Self::Io { .. } => "check the path exists and is writable by this user".to_owned(),
            Self::NotATerminal(_) => {
                "run `automaton init --name NAME --genesis-prompt TEXT (or --genesis-file FILE) --creator 0x… [--encrypt-wallet --passphrase-file FILE]` instead".to_owned()
            }
            Self::Git(_) => "check the home's .git directory; `automaton doctor` reports its state".to_owned(),
        }
    }
}

/// Results of the runtime.
pub type Result<T, E = Error> = std::result::Result<T, E>;
