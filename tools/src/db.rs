//! `state.db`: the one SQLite file the creator audits.
//!
//! Every crate owns its tables and ships them as embedded SQL migrations ([`CrateSchema`]);
//! this module opens the file with the pragmas every writer relies on (WAL,
//! `synchronous=FULL`, foreign keys, a busy timeout), runs `PRAGMA quick_check`, refuses a
//! database written by a newer binary before touching it, and applies pending migrations in
//! one transaction recorded in `schema_migrations(crate, version, applied_at)`.
//! Writes go through [`StateDb::write`], which always begins `IMMEDIATE`: a deferred
//! transaction that upgrades from read to write can fail with `SQLITE_BUSY` without waiting.

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a writer waits for another writer before SQLite gives up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// One embedded migration. Versions start at 1 and increase by one.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// The version this migration brings the crate's tables to.
    pub version: i64,
    /// The SQL, run as one batch inside the migration transaction.
    pub sql: &'static str,
}

/// A crate's tables: its name in `schema_migrations` and its ordered migrations.
#[derive(Debug, Clone, Copy)]
pub struct CrateSchema {
    /// The owning crate, e.g. `runtime` or `tools`.
    pub crate_name: &'static str,
    /// Migrations in version order.
    pub migrations: &'static [Migration],
}

impl CrateSchema {
    /// The highest version this binary knows for the crate.
    pub fn latest(&self) -> i64 {
        self.migrations.last().map_or(0, |m| m.version)
    }
}

/// A migration that has not been applied yet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PendingMigration {
    /// The owning crate.
    pub crate_name: &'static str,
    /// The migration's version.
    pub version: i64,
}

/// The tables owned by this crate: the audit trail of tool calls, policy decisions,
/// receipts, content provenance and exposed ports.
pub const SCHEMA: CrateSchema = CrateSchema {
    crate_name: "tools",
    migrations: &[
        Migration {
            version: 1,
            sql: include_str!("../migrations/0001_tool_calls.sql"),
        },
        Migration {
            version: 2,
            sql: include_str!("../migrations/0002_audit.sql"),
        },
    ],
};

/// Puts on disk every transaction committed to `database` so far, without its connection:
/// fdatasync of the write-ahead log, which holds every commit not yet checkpointed (a sync is
/// per file, not per descriptor; a checkpoint syncs what it moves). The agent loop runs this
/// on the blocking pool after each turn, so the commits it made unsynced
/// ([`StateDb::write_unsynced`]) reach the disk while the next turn is prepared and the model
/// thinks, instead of the turn waiting for the disk.
pub fn sync_wal(database: &Path) -> std::io::Result<()> {
    let mut wal = database.as_os_str().to_owned();
    wal.push("-wal");
    match std::fs::File::open(PathBuf::from(wal)) {
        Ok(file) => file.sync_data(),
        // No log: everything was checkpointed into the database file, and synced then.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// An open `state.db` connection.
#[derive(Debug)]
pub struct StateDb {
    conn: Connection,
    path: PathBuf,
}

impl StateDb {
    /// Opens (creating if needed) the database, checks it, refuses a newer schema and applies
    /// every pending migration of `schemas` in one transaction.
    pub fn open(path: &Path, schemas: &[CrateSchema]) -> Result<Self> {
        let db = Self::connect(path, OpenFlags::SQLITE_OPEN_CREATE)?;
        db.quick_check()?;
        db.migrate(schemas, &SystemClock)?;
        Ok(db)
    }

    /// Opens an existing database without changing its schema (for `doctor` and audits).
    pub fn open_existing(path: &Path) -> Result<Self> {
        Self::connect(path, OpenFlags::empty())
    }

    fn connect(path: &Path, extra: OpenFlags) -> Result<Self> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI
            | extra;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Self {
            conn,
            path: path.to_owned(),
        })
    }

    /// The file this connection was opened on.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Read access. Writes must go through [`StateDb::write`].
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Runs `f` inside a `BEGIN IMMEDIATE` transaction, committing when it returns `Ok`. The
    /// commit waits until the disk has it (`synchronous=FULL`).
    pub fn write<T, E>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T, E>) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    /// Like [`StateDb::write`], but the commit does not wait for the disk
    /// (`synchronous=NORMAL` for this one transaction). It is as atomic and survives a crash
    /// of the process just as well; against power loss it becomes durable with the next
    /// [`StateDb::write`] on this file, whose sync covers every WAL frame before it.
    ///
    /// For the agent loop's records within a turn (its start, inference costs, a read-only
    /// call's intent, results, its end), which [`sync_wal`] puts on disk behind the turn. The
    /// intent of a call with an effect is never written this way: it must be on disk before
    /// the effect happens.
    pub fn write_unsynced<T, E>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        self.conn.pragma_update(None, "synchronous", "NORMAL")?;
        let outcome = self.write(f);
        let restored = self.conn.pragma_update(None, "synchronous", "FULL");
        let value = outcome?;
        restored?;
        Ok(value)
    }

    /// [`StateDb::write`] when `synced`, else [`StateDb::write_unsynced`].
    pub fn write_with<T, E>(
        &mut self,
        synced: bool,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<rusqlite::Error>,
    {
        if synced {
            self.write(f)
        } else {
            self.write_unsynced(f)
        }
    }

    /// `PRAGMA quick_check`: cheap enough for every start.
    pub fn quick_check(&self) -> Result<()> {
        self.check_pragma("quick_check")
    }

    /// `PRAGMA integrity_check`: the full check `doctor` runs.
    pub fn integrity_check(&self) -> Result<()> {
        self.check_pragma("integrity_check")
    }

    fn check_pragma(&self, pragma: &str) -> Result<()> {
        let mut stmt = self.conn.prepare(&format!("PRAGMA {pragma}"))?;
        let lines = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        if lines.len() == 1 && lines[0] == "ok" {
            return Ok(());
        }
        Err(Error::Corrupt {
            path: self.path.clone(),
            detail: lines.into_iter().take(5).collect::<Vec<_>>().join("; "),
        })
    }

    /// The versions recorded in `schema_migrations`, by crate (empty for a fresh file).
    pub fn applied_versions(&self) -> Result<BTreeMap<String, i64>> {
        let exists: Option<String> = self
            .conn
            .query_row(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'",
                [],
                |row| row.get(0),
            )
            .optional()?;
        if exists.is_none() {
            return Ok(BTreeMap::new());
        }
        let mut stmt = self
            .conn
            .prepare("SELECT crate, MAX(version) FROM schema_migrations GROUP BY crate")?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
            })?
            .collect::<Result<BTreeMap<_, _>, _>>()?;
        Ok(rows)
    }

    /// Fails with [`Error::NewerSchema`] when the file holds tables of a crate this binary does
    /// not know, or a version beyond what it knows.
    pub fn refuse_newer(&self, schemas: &[CrateSchema]) -> Result<()> {
        for (crate_name, found) in self.applied_versions()? {
            let supported = schemas
                .iter()
                .find(|schema| schema.crate_name == crate_name)
                .map_or(0, CrateSchema::latest);
            if found > supported {
                return Err(Error::NewerSchema {
                    crate_name,
                    found,
                    supported,
                });
            }
        }
        Ok(())
    }

    /// The migrations of `schemas` not yet applied, in the order they would run.
    pub fn pending(&self, schemas: &[CrateSchema]) -> Result<Vec<PendingMigration>> {
        let applied = self.applied_versions()?;
        Ok(schemas
            .iter()
            .flat_map(|schema| {
                let current = applied.get(schema.crate_name).copied().unwrap_or(0);
                schema
                    .migrations
                    .iter()
                    .filter(move |m| m.version > current)
                    .map(|m| PendingMigration {
                        crate_name: schema.crate_name,
                        version: m.version,
                    })
            })
            .collect())
    }

    /// Refuses a newer schema, then applies every pending migration in one transaction.
    pub fn migrate(&self, schemas: &[CrateSchema], clock: &dyn Clock) -> Result<()> {
        self.refuse_newer(schemas)?;
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                crate TEXT NOT NULL,
                version INTEGER NOT NULL,
                applied_at INTEGER NOT NULL,
                PRIMARY KEY (crate, version)
            ) STRICT;",
        )?;
        // Re-read inside the write lock: another process may have migrated meanwhile.
        for schema in schemas {
            let current: i64 = tx.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE crate = ?1",
                [schema.crate_name],
                |row| row.get(0),
            )?;
            for migration in schema.migrations.iter().filter(|m| m.version > current) {
                tx.execute_batch(migration.sql)
                    .map_err(|source| Error::Migration {
                        crate_name: schema.crate_name,
                        version: migration.version,
                        source,
                    })?;
                tx.execute(
                    "INSERT INTO schema_migrations (crate, version, applied_at) VALUES (?1, ?2, ?3)",
                    rusqlite::params![schema.crate_name, migration.version, clock.now_ms()],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "db_tests.rs"]
mod tests;
