//! Tests of state.db: pragmas, migrations, newer-schema refusal, concurrent writers.

use super::*;
use std::sync::{Arc, Barrier};

const V1: Migration = Migration {
    version: 1,
    sql: "CREATE TABLE things (id INTEGER PRIMARY KEY, n INTEGER NOT NULL) STRICT;",
};
const V2: Migration = Migration {
    version: 2,
    sql: "ALTER TABLE things ADD COLUMN label TEXT;",
};
const OLD: CrateSchema = CrateSchema {
    crate_name: "demo",
    migrations: &[V1],
};
const NEW: CrateSchema = CrateSchema {
    crate_name: "demo",
    migrations: &[V1, V2],
};

fn temp_db() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    (dir, path)
}

#[test]
fn fresh_database_gets_pragmas_and_every_migration() {
    let (_dir, path) = temp_db();
    let db = StateDb::open(&path, &[SCHEMA, NEW]).unwrap();
    let mode: String = db
        .conn()
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = db
        .conn()
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    let fk: i64 = db
        .conn()
        .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(fk, 1);
    let versions = db.applied_versions().unwrap();
    assert_eq!(versions.get("demo"), Some(&2));
    assert_eq!(versions.get("tools"), Some(&SCHEMA.latest()));
    assert!(db.pending(&[SCHEMA, NEW]).unwrap().is_empty());
}

#[test]
fn reopen_applies_only_what_is_new() {
    let (_dir, path) = temp_db();
    let mut db = StateDb::open(&path, &[OLD]).unwrap();
    db.write(|tx| tx.execute("INSERT INTO things (n) VALUES (7)", []))
        .unwrap();
    drop(db);
    let pending = StateDb::open_existing(&path)
        .unwrap()
        .pending(&[NEW])
        .unwrap();
    assert_eq!(
        pending,
        vec![PendingMigration {
            crate_name: "demo",
            version: 2
        }]
    );
    let db = StateDb::open(&path, &[NEW]).unwrap();
    let n: i64 = db
        .conn()
        .query_row("SELECT n FROM things", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 7, "data survives the migration");
    let rows: i64 = db
        .conn()
        .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 2);
    drop(db);
    // A third open changes nothing.
    StateDb::open(&path, &[NEW]).unwrap();
}

#[test]
fn newer_database_is_refused_and_left_untouched() {
    let (_dir, path) = temp_db();
    drop(StateDb::open(&path, &[NEW]).unwrap());
    let before = std::fs::read(&path).unwrap();
    let err = StateDb::open(&path, &[OLD]).unwrap_err();
    match &err {
        Error::NewerSchema {
            crate_name,
            found,
            supported,
        } => {
            assert_eq!(crate_name, "demo");
            assert_eq!((*found, *supported), (2, 1));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert!(err.hint().contains("newer automaton"));
    // Tables of a crate this binary has never heard of are refused too.
    let err = StateDb::open(&path, &[]).unwrap_err();
    assert!(matches!(err, Error::NewerSchema { .. }), "{err:?}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn failing_migration_applies_nothing() {
    let (_dir, path) = temp_db();
    const BROKEN: CrateSchema = CrateSchema {
        crate_name: "demo",
        migrations: &[
            V1,
            Migration {
                version: 2,
                sql: "ALTER TABLE nowhere ADD COLUMN x TEXT;",
            },
        ],
    };
    let err = StateDb::open(&path, &[BROKEN]).unwrap_err();
    assert!(
        matches!(err, Error::Migration { version: 2, .. }),
        "{err:?}"
    );
    let db = StateDb::open_existing(&path).unwrap();
    assert!(db.applied_versions().unwrap().is_empty());
    let things: Option<String> = db
        .conn()
        .query_row(
            "SELECT name FROM sqlite_master WHERE name = 'things'",
            [],
            |r| r.get(0),
        )
        .optional()
        .unwrap();
    assert_eq!(things, None, "v1 rolled back with v2");
}

#[test]
fn concurrent_writers_never_see_busy() {
    let (_dir, path) = temp_db();
    drop(StateDb::open(&path, &[OLD]).unwrap());
    let writers = 4;
    let per_writer = 200;
    let barrier = Arc::new(Barrier::new(writers));
    let handles: Vec<_> = (0..writers)
        .map(|_| {
            let path = path.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                let mut db = StateDb::open(&path, &[OLD]).unwrap();
                barrier.wait();
                for _ in 0..per_writer {
                    // Read-then-write: the pattern that surfaces SQLITE_BUSY under DEFERRED.
                    db.write(|tx| {
                        let max: i64 =
                            tx.query_row("SELECT COALESCE(MAX(n), 0) FROM things", [], |r| {
                                r.get(0)
                            })?;
                        tx.execute("INSERT INTO things (n) VALUES (?1)", [max + 1])
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let db = StateDb::open(&path, &[OLD]).unwrap();
    let (count, distinct): (i64, i64) = db
        .conn()
        .query_row("SELECT COUNT(*), COUNT(DISTINCT n) FROM things", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(count, (writers * per_writer) as i64);
    assert_eq!(
        distinct, count,
        "each read-then-write saw the previous commit"
    );
}

#[test]
fn corruption_is_reported_by_quick_check() {
    let (_dir, path) = temp_db();
    {
        let mut db = StateDb::open(&path, &[OLD]).unwrap();
        db.write(|tx| {
            for i in 0..2000 {
                tx.execute("INSERT INTO things (n) VALUES (?1)", [i])?;
            }
            Ok::<_, rusqlite::Error>(())
        })
        .unwrap();
        db.conn()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    // Scribble over the middle of the file, past the header page.
    let mut bytes = std::fs::read(&path).unwrap();
    let start = 4096 * 2;
    for b in &mut bytes[start..start + 4096] {
        *b = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = StateDb::open(&path, &[OLD]).unwrap_err();
    assert!(
        matches!(err, Error::Corrupt { .. } | Error::Sqlite(_)),
        "{err:?}"
    );
}

#[test]
fn an_unsynced_write_commits_and_the_next_write_syncs_again() {
    let (_dir, path) = temp_db();
    let mut db = StateDb::open(&path, &[SCHEMA]).unwrap();
    let synchronous = |conn: &Connection| -> i64 {
        conn.query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap()
    };
    let inside = db
        .write_unsynced(|tx| {
            tx.execute(
                "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
                [],
            )?;
            tx.execute("INSERT INTO notes (body) VALUES ('kept')", [])?;
            Ok::<_, rusqlite::Error>(synchronous(tx))
        })
        .unwrap();
    assert_eq!(inside, 1, "NORMAL while the unsynced transaction commits");
    assert_eq!(synchronous(db.conn()), 2, "FULL again afterwards");

    // A failing transaction leaves nothing behind and FULL restored.
    let failed = db.write_unsynced(|tx| {
        tx.execute("INSERT INTO notes (body) VALUES ('lost')", [])?;
        tx.execute("INSERT INTO missing_table VALUES (1)", [])
    });
    assert!(failed.is_err());
    assert_eq!(synchronous(db.conn()), 2);
    let synced_inside = db
        .write_with(true, |tx| Ok::<_, rusqlite::Error>(synchronous(tx)))
        .unwrap();
    assert_eq!(synced_inside, 2);

    // Another connection sees exactly the committed row.
    let other = StateDb::open_existing(&path).unwrap();
    let bodies: Vec<String> = other
        .conn()
        .prepare("SELECT body FROM notes")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(bodies, ["kept"]);
}

#[test]
fn sync_wal_flushes_the_log_and_accepts_a_database_without_one() {
    let (dir, path) = temp_db();
    let mut db = StateDb::open(&path, &[SCHEMA]).unwrap();
    db.write_unsynced(|tx| tx.execute("CREATE TABLE t (x INTEGER)", []))
        .unwrap();
    assert!(dir.path().join("state.db-wal").exists());
    sync_wal(&path).unwrap();
    drop(db);
    // The last connection closed: SQLite checkpointed and removed the log.
    assert!(!dir.path().join("state.db-wal").exists());
    sync_wal(&path).unwrap();
}
