//! Looking into a datastore: its tables (or keys) and queries — one SQL statement or redis
//! command, at most 500 rows, a time limit, and an audit row for every query, ok or not.

use super::{mongo_unavailable, postgres, redis, sqlite};
use crate::error::{Error, ErrorCode, Result};
use crate::local::{LocalPlatform, Principal};
use crate::model::{DatastoreKind, DatastoreTables, MAX_QUERY_ROWS, QueryResult};
use rusqlite::params;
use std::time::Duration;

/// How long one query may run.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest query text accepted, in bytes.
const MAX_QUERY_BYTES: usize = 64 * 1024;
/// How many tables or keys a listing shows.
const MAX_LISTED: usize = 200;

/// A query's rows capped at [`MAX_QUERY_ROWS`].
pub(super) fn capped(
    columns: Vec<String>,
    mut rows: Vec<Vec<serde_json::Value>>,
    row_count: u64,
) -> QueryResult {
    let truncated = rows.len() > MAX_QUERY_ROWS;
    rows.truncate(MAX_QUERY_ROWS);
    QueryResult {
        columns,
        rows,
        row_count,
        truncated,
    }
}

impl LocalPlatform {
    /// `listDatastoreTables`.
    pub(in crate::local) async fn list_tables_in(
        &self,
        project: &str,
        name: &str,
    ) -> Result<DatastoreTables> {
        let row = self.datastore_row(project, name).await?;
        let mut tables = match row.kind {
            DatastoreKind::Postgres => postgres::tables(&row.pg()?, MAX_LISTED + 1).await?,
            DatastoreKind::Redis => {
                let (port, password, _) = row.redis()?;
                redis::keys(port, &password, MAX_LISTED + 1).await?
            }
            DatastoreKind::Sqlite => sqlite::tables(&row.sqlite_path()?, MAX_LISTED + 1).await?,
            DatastoreKind::Mongo => return Err(mongo_unavailable()),
        };
        let truncated = tables.len() > MAX_LISTED;
        tables.truncate(MAX_LISTED);
        Ok(DatastoreTables {
            datastore: name.to_owned(),
            kind: row.kind,
            tables,
            truncated,
        })
    }

    /// `queryDatastore` for `who`: runs it and audits it, ok or not.
    pub async fn query_datastore_as(
        &self,
        who: &Principal,
        project: &str,
        name: &str,
        query: &str,
        key: Option<&str>,
    ) -> Result<QueryResult> {
        let request = serde_json::json!({"project": project, "name": name, "query": query});
        let platform = self.clone();
        let (who, project, name, query) = (
            who.clone(),
            project.to_owned(),
            name.to_owned(),
            query.to_owned(),
        );
        self.change(key, "queryDatastore", request, async move {
            let (who, project, name, query,) = (&who, project.as_str(), name.as_str(), query.as_str(),);
            let started = tokio::time::Instant::now();
            let outcome = platform.run_query(project, name, query).await;
            let elapsed = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
            let (p, n, principal, text) = (
                project.to_owned(),
                name.to_owned(),
                who.token_id.clone(),
                query.chars().take(MAX_QUERY_BYTES).collect::<String>(),
            );
            let (rows, error) = match &outcome {
                Ok(result) => (Some(i64::try_from(result.row_count).unwrap_or(i64::MAX)), None),
                Err(error) => (None, Some(format!("{:?}: {}", error.code, error.message))),
            };
            platform.on_db(move |db, now| {
                db.write(|tx| {
                    tx.execute(
                        "INSERT INTO datastore_queries (project, datastore, principal, query, at, duration_ms, row_count, ok, error)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![p, n, principal, text, now, elapsed, rows, error.is_none(), error],
                    )?;
                    Ok(())
                })
            })
            .await?;
            outcome
        })
        .await
    }

    async fn run_query(&self, project: &str, name: &str, query: &str) -> Result<QueryResult> {
        if query.trim().is_empty() {
            return Err(Error::new(ErrorCode::InvalidInput, "the query is empty")
                .with_hint("send one SQL statement (postgres, sqlite) or one command like `HGETALL user:1` (redis)"));
        }
        if query.len() > MAX_QUERY_BYTES {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("the query is over {} KB", MAX_QUERY_BYTES / 1024),
            )
            .with_hint("send a shorter query; load bulk data from a service instead"));
        }
        let row = self.datastore_row(project, name).await?;
        match row.kind {
            DatastoreKind::Postgres => postgres::query(&row.pg()?, query, QUERY_TIMEOUT).await,
            DatastoreKind::Redis => {
                let (port, password, _) = row.redis()?;
                redis::command(port, &password, query, QUERY_TIMEOUT).await
            }
            DatastoreKind::Sqlite => sqlite::query(&row.sqlite_path()?, query, QUERY_TIMEOUT).await,
            DatastoreKind::Mongo => Err(mongo_unavailable()),
        }
    }
}
