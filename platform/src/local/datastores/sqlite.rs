//! SQLite datastores: a file under the platform's data directory (WAL), its URL a `file://`
//! URL. Backups and restores use SQLite's online backup API, so services may keep their
//! connections open through both; queries are one statement, interrupted at the time limit.
//! All of it runs on the blocking pool.

use super::{capped, internal};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{ColumnInfo, MAX_QUERY_ROWS, QueryResult, TableInfo};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Rows counted per table in a listing, at most.
const COUNT_CAP: u64 = 10_000;

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| internal("a SQLite task", err))?
}

/// Opens the live datastore. Its directory is the project's confined apps' to write, and
/// this process is not confined: a symlink they put in place of the file is refused (SQLite
/// then refuses any symlink on the path, so the directory, which only the platform may
/// replace, is resolved first), and the connection may attach no other database file
/// (`ATTACH`, `VACUUM INTO` write wherever the platform's user may).
fn open(path: &Path) -> Result<Connection> {
    let opening = |err: &dyn std::fmt::Display| internal("opening the SQLite datastore", err);
    let path = match (path.parent(), path.file_name()) {
        (Some(dir), Some(name)) if !dir.as_os_str().is_empty() => {
            dir.canonicalize().map_err(|err| opening(&err))?.join(name)
        }
        _ => path.to_owned(),
    };
    let connection = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|err| opening(&err))?;
    connection
        .set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_ATTACHED, 0)
        .map_err(|err| opening(&err))?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(|err| opening(&err))?;
    Ok(connection)
}

fn sql_error(err: &rusqlite::Error) -> Error {
    match err {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::OperationInterrupted =>
        {
            Error::new(
                ErrorCode::Timeout,
                "the statement ran past the time limit and was interrupted",
            )
            .with_hint("make the query cheaper (an index, a LIMIT) and run it again")
        }
        rusqlite::Error::MultipleStatement => Error::new(
            ErrorCode::InvalidInput,
            "a SQLite query is one statement at a time",
        )
        .with_hint("send the statements one by one"),
        other => Error::new(
            ErrorCode::InvalidInput,
            format!("the query failed: {other}"),
        )
        .with_hint("fix the SQL and run it again; `db tables` lists the tables and columns"),
    }
}

/// Makes the file (WAL mode, so services and the platform can share it).
pub(super) async fn create(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        super::private_dir(parent).await?;
    }
    let path = path.to_owned();
    blocking(move || {
        let connection =
            Connection::open(&path).map_err(|err| internal("creating the SQLite file", err))?;
        connection
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|err| internal("creating the SQLite file", err))?;
        Ok(())
    })
    .await
}

fn run_backup(from: &Connection, to: &mut Connection) -> Result<()> {
    rusqlite::backup::Backup::new(from, to)
        .and_then(|backup| backup.run_to_completion(256, Duration::from_millis(5), None))
        .map_err(|err| internal("copying with the SQLite backup API", err))
}

/// Copies the live file at `from` into a new backup file `to`.
pub(super) async fn copy(from: &Path, to: &Path) -> Result<()> {
    let (from, to): (PathBuf, PathBuf) = (from.to_owned(), to.to_owned());
    blocking(move || {
        let source = open(&from)?;
        let mut target =
            Connection::open(&to).map_err(|err| internal("creating the backup file", err))?;
        run_backup(&source, &mut target)?;
        // The backup is one self-contained file.
        target
            .pragma_update(None, "journal_mode", "DELETE")
            .map_err(|err| internal("finishing the backup file", err))
    })
    .await
}

/// Writes the backup `from` over the live datastore at `to`.
pub(super) async fn restore(from: &Path, to: &Path) -> Result<()> {
    let (from, to): (PathBuf, PathBuf) = (from.to_owned(), to.to_owned());
    blocking(move || {
        let source = Connection::open_with_flags(&from, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(|err| internal("opening the backup", err))?;
        let mut target = open(&to)?;
        run_backup(&source, &mut target)
    })
    .await
}

/// Tables and views with their columns and rows (counted up to 10,000).
pub(super) async fn tables(path: &Path, limit: usize) -> Result<Vec<TableInfo>> {
    let path = path.to_owned();
    blocking(move || {
        let connection = open(&path)?;
        let fail = |err: rusqlite::Error| internal("listing the tables", err);
        let listed: Vec<(String, String)> = connection
            .prepare(
                "SELECT name, type FROM sqlite_schema WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name LIMIT ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .map_err(fail)?;
        let mut tables = Vec::with_capacity(listed.len());
        for (name, kind) in listed {
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            let columns = connection
                .prepare(&format!("PRAGMA table_info({quoted})"))
                .and_then(|mut stmt| {
                    stmt.query_map([], |r| {
                        Ok(ColumnInfo {
                            name: r.get(1)?,
                            data_type: r.get(2)?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(fail)?;
            let (rows, rows_capped) = if kind == "table" {
                let count: i64 = connection
                    .query_row(
                        &format!(
                            "SELECT count(*) FROM (SELECT 1 FROM {quoted} LIMIT {})",
                            COUNT_CAP + 1
                        ),
                        [],
                        |r| r.get(0),
                    )
                    .map_err(fail)?;
                let count = u64::try_from(count).unwrap_or_default();
                (Some(count.min(COUNT_CAP)), count > COUNT_CAP)
            } else {
                (None, false)
            };
            tables.push(TableInfo {
                name,
                kind,
                rows,
                rows_capped,
                columns,
            });
        }
        Ok(tables)
    })
    .await
}

fn to_json(value: rusqlite::types::ValueRef<'_>) -> serde_json::Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(n) => n.into(),
        ValueRef::Real(x) => x.into(),
        ValueRef::Text(text) => String::from_utf8_lossy(text).into_owned().into(),
        ValueRef::Blob(bytes) => format!("x'{}'", hex::encode(bytes)).into(),
    }
}

/// Runs one statement, interrupted after `timeout`.
pub(super) async fn query(path: &Path, text: &str, timeout: Duration) -> Result<QueryResult> {
    let (path, text) = (path.to_owned(), text.to_owned());
    let (interrupt_tx, interrupt_rx) = tokio::sync::oneshot::channel();
    let work = blocking(move || {
        let connection = open(&path)?;
        let _ = interrupt_tx.send(connection.get_interrupt_handle());
        let mut statement = connection.prepare(&text).map_err(|err| sql_error(&err))?;
        let columns: Vec<String> = statement
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if columns.is_empty() {
            let changed = statement.execute([]).map_err(|err| sql_error(&err))?;
            return Ok(capped(Vec::new(), Vec::new(), changed as u64));
        }
        let width = columns.len();
        let mut rows = Vec::new();
        let mut cursor = statement.query([]).map_err(|err| sql_error(&err))?;
        while let Some(row) = cursor.next().map_err(|err| sql_error(&err))? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(to_json(row.get_ref(i).map_err(|err| sql_error(&err))?));
            }
            rows.push(values);
            if rows.len() > MAX_QUERY_ROWS {
                break;
            }
        }
        let count = rows.len().min(MAX_QUERY_ROWS) as u64;
        Ok(capped(columns, rows, count))
    });
    let watchdog = async {
        if let Ok(handle) = interrupt_rx.await {
            tokio::time::sleep(timeout).await;
            handle.interrupt();
        }
        std::future::pending::<()>().await;
    };
    tokio::select! {
        outcome = work => outcome,
        () = watchdog => Err(internal("a SQLite query", "the watchdog ended first")),
    }
}
