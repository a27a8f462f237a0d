//! The error type of `automaton-tools`: failures of the shared state.db plumbing.

use std::path::PathBuf;

/// Errors from opening, checking or migrating `state.db`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite refused an operation.
    #[error("state.db: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// `PRAGMA quick_check` or `integrity_check` reported damage.
    #[error("state.db at {path} failed its integrity check: {detail}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// The first lines SQLite reported.
        detail: String,
    },
    /// The database was written by a newer automaton (a migration this binary does not know).
    #[error(
        "state.db has {crate_name} schema version {found}, newer than this binary's {supported}"
    )]
    NewerSchema {
        /// The crate whose tables are newer.
        crate_name: String,
        /// The highest version recorded in the database.
        found: i64,
        /// The highest version this binary knows.
        supported: i64,
    },
    /// A migration's SQL failed; nothing of it was applied.
    #[error("migration {crate_name} v{version} failed: {source}")]
    Migration {
        /// The crate owning the migration.
        crate_name: &'static str,
        /// The migration's version.
        version: i64,
        /// What SQLite said.
        source: rusqlite::Error,
    },
}

impl Error {
    /// The next action for whoever sees this error.
    pub fn hint(&self) -> String {
        match self {
            Self::Sqlite(_) => {
                "check that the home is writable and no other process holds state.db; run `automaton doctor`".to_owned()
            }
            Self::Corrupt { path, .. } => format!(
                "restore {} from a backup, or move it aside to start a fresh record (the old one is kept for audit)",
                path.display()
            ),
            Self::NewerSchema { .. } => {
                "run the newer automaton binary that wrote this database; this one will not touch it".to_owned()
            }
            Self::Migration { .. } => {
                "this is a bug in the automaton; report it with `automaton doctor --json` output".to_owned()
            }
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
