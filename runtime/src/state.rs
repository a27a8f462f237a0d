//! The runtime's view of state.db: its own tables (`kv`, `turns`, `inference_costs`, `messages`,
//! `tier_changes`), the list
//! of every crate's schema in migration order, and the queries `status` needs.

use crate::error::{Error, Result};
use crate::home::{Home, PRIVATE_FILE_MODE};
use automaton_tools::db::{CrateSchema, Migration, StateDb};
use automaton_tools::money::Usdc;
use rusqlite::OptionalExtension;
use std::os::unix::fs::OpenOptionsExt;

/// The runtime's tables.
pub const SCHEMA: CrateSchema = CrateSchema {
    crate_name: "runtime",
    migrations: &[
        Migration {
            version: 1,
            sql: include_str!("../migrations/0001_kv_turns.sql"),
        },
        Migration {
            version: 2,
            sql: include_str!("../migrations/0002_inference_costs.sql"),
        },
        Migration {
            version: 3,
            sql: include_str!("../migrations/0003_messages.sql"),
        },
        Migration {
            version: 4,
            sql: include_str!("../migrations/0004_message_tokens.sql"),
        },
        Migration {
            version: 5,
            sql: include_str!("../migrations/0005_tier_changes.sql"),
        },
        Migration {
            version: 6,
            sql: include_str!("../migrations/0006_inference_costs_covering.sql"),
        },
        Migration {
            version: 7,
            sql: include_str!("../migrations/0007_turns_interrupted.sql"),
        },
    ],
};

/// Every crate's schema, in the order their migrations run.
pub const ALL_SCHEMAS: &[CrateSchema] = &[
    automaton_tools::db::SCHEMA,
    SCHEMA,
    automaton_heartbeat::SCHEMA,
];

/// Opens the home's state.db, creating it with mode 0600 first if it does not exist, and
/// applying pending migrations.
pub fn open(home: &Home) -> Result<StateDb> {
    let path = home.state_db();
    if !path.exists() {
        // Create the empty file ourselves so it (and the WAL SQLite derives from it) is 0600.
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE_MODE)
            .open(&path)
        {
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(err) => return Err(Error::io("creating", &path)(err)),
        }
    }
    Ok(StateDb::open(&path, ALL_SCHEMAS)?)
}

/// Reads a kv value.
pub fn kv_get(db: &StateDb, key: &str) -> Result<Option<String>> {
    Ok(db
        .conn()
        .query_row("SELECT value FROM kv WHERE key = ?1", [key], |row| {
            row.get(0)
        })
        .optional()?)
}

/// Writes a kv value. `updated_at` is when the value last changed: writing the value a key
/// already holds changes nothing, and so commits without a write to the disk (the loop sets
/// `agent_state` to `running` every turn).
pub fn kv_set(db: &mut StateDb, key: &str, value: &str, now_ms: i64) -> Result<()> {
    db.write(|tx| {
        tx.prepare_cached(
            "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at
             WHERE value IS NOT excluded.value",
        )?
        .execute(rusqlite::params![key, value, now_ms])
        .map(|_| ())
    })
    .map_err(Error::from)
}

/// The number of turns recorded.
pub fn turn_count(db: &StateDb) -> Result<i64> {
    Ok(db
        .conn()
        .query_row("SELECT COUNT(*) FROM turns", [], |row| row.get(0))?)
}

/// The agent state a turn or run left `running` when its process was killed is repaired to.
pub const INTERRUPTED: &str = "interrupted";

/// Marks turns a killed process left `running` as `interrupted`, ended at `now_ms`, and an
/// `agent_state` left `running` likewise; returns how many turns. Only for when no process
/// can be running a turn: the caller holds the run lock and no stretch runs.
pub fn mark_turns_interrupted(
    tx: &rusqlite::Transaction<'_>,
    now_ms: i64,
) -> rusqlite::Result<usize> {
    let turns = tx
        .prepare_cached(
            "UPDATE turns SET state = 'interrupted', ended_at = ?1 WHERE state = 'running'",
        )?
        .execute([now_ms])?;
    tx.prepare_cached(
        "UPDATE kv SET value = ?1, updated_at = ?2 WHERE key = 'agent_state' AND value = 'running'",
    )?
    .execute(rusqlite::params![INTERRUPTED, now_ms])?;
    Ok(turns)
}

/// Inference spent since `since_ms`, in micro-USDC.
pub fn inference_spent_since(db: &StateDb, since_ms: i64) -> Result<Usdc> {
    let atoms: i64 = db.conn().query_row(
        "SELECT COALESCE(SUM(cost_micro_usdc), 0) FROM inference_costs WHERE created_at >= ?1",
        [since_ms],
        |row| row.get(0),
    )?;
    Ok(Usdc(u64::try_from(atoms).unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::home::Home;

    fn open_temp() -> (tempfile::TempDir, StateDb) {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().to_owned());
        let db = open(&home).unwrap();
        (dir, db)
    }

    #[test]
    fn kv_set_keeps_updated_at_when_the_value_does_not_change() {
        let (_dir, mut db) = open_temp();
        let updated_at = |db: &StateDb| -> i64 {
            db.conn()
                .query_row("SELECT updated_at FROM kv WHERE key = 'k'", [], |r| {
                    r.get(0)
                })
                .unwrap()
        };
        kv_set(&mut db, "k", "running", 1).unwrap();
        kv_set(&mut db, "k", "running", 2).unwrap();
        assert_eq!(kv_get(&db, "k").unwrap().as_deref(), Some("running"));
        assert_eq!(updated_at(&db), 1);
        kv_set(&mut db, "k", "sleeping", 3).unwrap();
        assert_eq!(kv_get(&db, "k").unwrap().as_deref(), Some("sleeping"));
        assert_eq!(updated_at(&db), 3);
    }

    #[test]
    fn the_interrupted_turn_migration_keeps_turns_messages_and_their_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let before = [
            automaton_tools::db::SCHEMA,
            CrateSchema {
                crate_name: "runtime",
                migrations: &SCHEMA.migrations[..6],
            },
            automaton_heartbeat::SCHEMA,
        ];
        let mut db = StateDb::open(&path, &before).unwrap();
        db.write(|tx| {
            tx.execute_batch(
                "INSERT INTO turns (started_at, state, input_source) VALUES (1, 'completed', 'wake');
                 INSERT INTO turns (started_at, state, input_source) VALUES (2, 'running', 'wake');
                 INSERT INTO messages (turn_id, role, content, created_at, tokens) VALUES (2, 'user', 'hi', 2, 7);
                 DELETE FROM turns WHERE id = 1;",
            )
        })
        .unwrap();
        drop(db);
        let mut db = StateDb::open(&path, ALL_SCHEMAS).unwrap();
        let marked = db.write(|tx| mark_turns_interrupted(tx, 9)).unwrap();
        assert_eq!(marked, 1);
        let row: (i64, String, Option<i64>) = db
            .conn()
            .query_row("SELECT id, state, ended_at FROM turns", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(row, (2, "interrupted".to_owned(), Some(9)));
        let tokens: i64 = db
            .conn()
            .query_row("SELECT tokens FROM messages WHERE turn_id = 2", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(tokens, 7);
        // The foreign key follows the renamed table, and ids are never reused.
        let refused = db.write(|tx| {
            tx.execute(
                "INSERT INTO messages (turn_id, role, content, created_at) VALUES (99, 'user', 'x', 3)",
                [],
            )
        });
        assert!(refused.is_err(), "a message of no turn is refused");
        let id = db
            .write(|tx| {
                tx.execute(
                    "INSERT INTO turns (started_at, state, input_source) VALUES (3, 'running', 'wake')",
                    [],
                )?;
                Ok::<_, rusqlite::Error>(tx.last_insert_rowid())
            })
            .unwrap();
        assert_eq!(id, 3);
    }
}
