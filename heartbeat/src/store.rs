//! The heartbeat's tables in state.db (`heartbeat_schedules`, `heartbeat_runs`,
//! `wake_events`: see `migrations/0001_scheduler.sql`) and the one way this crate reaches the
//! shared connection: on the blocking pool, with the connection's mutex held only there.

use automaton_tools::db::{CrateSchema, Migration, StateDb};
use automaton_tools::dispatch::SharedDb;
use std::sync::{Arc, PoisonError};

use crate::error::{Error, Result};

/// The heartbeat's tables, for `StateDb::open`'s list of schemas.
pub const SCHEMA: CrateSchema = CrateSchema {
    crate_name: "heartbeat",
    migrations: &[Migration {
        version: 1,
        sql: include_str!("../migrations/0001_scheduler.sql"),
    }],
};

/// Runs `work` with the database on the blocking pool.
///
/// A poisoned mutex is taken over rather than refused: a panic while holding it can only have
/// happened inside a rusqlite transaction, which rolled back when it unwound, so the
/// connection is in a clean state.
pub(crate) async fn on_db<T, F>(db: &SharedDb, work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&mut StateDb) -> Result<T> + Send + 'static,
{
    let db = Arc::clone(db);
    tokio::task::spawn_blocking(move || {
        let mut guard = db.lock().unwrap_or_else(PoisonError::into_inner);
        work(&mut guard)
    })
    .await
    .map_err(|error| Error::DatabaseTask {
        detail: error.to_string(),
    })?
}

/// Parses a stored JSON column, naming the row when it is malformed.
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    key: impl std::fmt::Display,
    text: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|error| Error::CorruptRow {
        table,
        key: key.to_string(),
        detail: format!("stored JSON does not parse: {error}"),
    })
}
