//! The local platform's datastores (seed 000's `add postgres|redis`, plus `sqlite`): what a
//! datastore is in `platform.db`, the verbs (add, info, list, delete, backups, restore, tables,
//! query), the env each one injects into the project's services, the 7-day backup retention,
//! the query audit, and the engines' lives across `shutdown` and `resume`. The engines
//! themselves are in [`postgres`] (one managed cluster, a database and role per datastore),
//! [`redis`] (a server per datastore) and [`sqlite`] (a file per datastore).
//!
//! Secrets: each datastore's generated password lives in `platform.db` and in the env of the
//! project's processes; reads show its URL with the password masked, and no error or log
//! carries it.

mod postgres;
mod redis;
mod sqlite;

use super::{LocalPlatform, Principal, store};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    AddedDatastore, BackupInfo, Datastore, DatastoreKind, DatastoreStatus, DatastoreTables,
    DeletedDatastore, MAX_QUERY_ROWS, QueryResult, RestoredBackup, ServiceStatus, validate_name,
};
use rusqlite::{OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long backups are kept.
pub const BACKUP_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;
/// How long one query may run.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest query text accepted, in bytes.
const MAX_QUERY_BYTES: usize = 64 * 1024;
/// How many tables or keys a listing shows.
const MAX_LISTED: usize = 200;

/// The engines' shared state: one datastore change at a time, and the managed PostgreSQL
/// cluster once it runs.
#[derive(Default)]
pub(super) struct Engines {
    changes: tokio::sync::Mutex<()>,
    cluster: tokio::sync::Mutex<Option<postgres::Cluster>>,
}

/// A datastore's row, secret included (never serialised to a caller).
#[derive(Clone)]
struct Row {
    project: String,
    name: String,
    kind: DatastoreKind,
    status: DatastoreStatus,
    env: Vec<String>,
    port: Option<u16>,
    username: Option<String>,
    database: Option<String>,
    secret: Option<String>,
    path: Option<String>,
    created_at: i64,
}

/// What a provisioned engine is reached by.
struct Provisioned {
    port: Option<u16>,
    username: Option<String>,
    database: Option<String>,
    secret: Option<String>,
    path: Option<String>,
}

/// How a query reaches a postgres datastore.
#[derive(Clone)]
pub(super) struct PgTarget {
    port: u16,
    user: String,
    password: String,
    database: String,
}

impl Row {
    fn pg(&self) -> Result<PgTarget> {
        match (&self.port, &self.username, &self.secret, &self.database) {
            (Some(port), Some(user), Some(password), Some(database)) => Ok(PgTarget {
                port: *port,
                user: user.clone(),
                password: password.clone(),
                database: database.clone(),
            }),
            _ => Err(not_ready(self)),
        }
    }

    fn redis(&self) -> Result<(u16, String, PathBuf)> {
        match (&self.port, &self.secret, &self.path) {
            (Some(port), Some(password), Some(path)) => {
                Ok((*port, password.clone(), PathBuf::from(path)))
            }
            _ => Err(not_ready(self)),
        }
    }

    fn sqlite_path(&self) -> Result<PathBuf> {
        self.path
            .as_ref()
            .map(PathBuf::from)
            .ok_or_else(|| not_ready(self))
    }

    /// The connection URL, with the password as given.
    fn url_with(&self, password: &str) -> String {
        match self.kind {
            DatastoreKind::Postgres => format!(
                "postgres://{}:{password}@127.0.0.1:{}/{}",
                self.username.as_deref().unwrap_or_default(),
                self.port.unwrap_or_default(),
                self.database.as_deref().unwrap_or_default()
            ),
            DatastoreKind::Redis => format!(
                "redis://:{password}@127.0.0.1:{}/0",
                self.port.unwrap_or_default()
            ),
            DatastoreKind::Sqlite | DatastoreKind::Mongo => {
                format!("file://{}", self.path.as_deref().unwrap_or_default())
            }
        }
    }

    /// The env the project's services get.
    fn env_values(&self) -> Vec<(String, String)> {
        let url = self.url_with(self.secret.as_deref().unwrap_or_default());
        let default_name = self.name == self.kind.as_str();
        match self.kind {
            DatastoreKind::Postgres if default_name => vec![
                ("DATABASE_URL".to_owned(), url),
                ("PGHOST".to_owned(), "127.0.0.1".to_owned()),
                (
                    "PGPORT".to_owned(),
                    self.port.unwrap_or_default().to_string(),
                ),
                (
                    "PGUSER".to_owned(),
                    self.username.clone().unwrap_or_default(),
                ),
                (
                    "PGPASSWORD".to_owned(),
                    self.secret.clone().unwrap_or_default(),
                ),
                (
                    "PGDATABASE".to_owned(),
                    self.database.clone().unwrap_or_default(),
                ),
            ],
            _ => self
                .env
                .first()
                .map(|name| vec![(name.clone(), url)])
                .unwrap_or_default(),
        }
    }

    fn view(&self) -> Datastore {
        Datastore {
            project: self.project.clone(),
            name: self.name.clone(),
            kind: self.kind,
            status: self.status,
            url: if self.status == DatastoreStatus::Ready {
                self.url_with("***")
            } else {
                String::new()
            },
            env_names: self.env.clone(),
            created_at_ms: self.created_at,
        }
    }
}

/// The env names a datastore injects: the kind's own for the default name, else `<NAME>_URL`.
fn env_names_for(kind: DatastoreKind, name: &str) -> Vec<String> {
    if name == kind.as_str() {
        match kind {
            DatastoreKind::Postgres => [
                "DATABASE_URL",
                "PGHOST",
                "PGPORT",
                "PGUSER",
                "PGPASSWORD",
                "PGDATABASE",
            ]
            .map(str::to_owned)
            .to_vec(),
            DatastoreKind::Redis => vec!["REDIS_URL".to_owned()],
            DatastoreKind::Sqlite => vec!["DATABASE_URL".to_owned()],
            DatastoreKind::Mongo => vec!["MONGO_URL".to_owned()],
        }
    } else {
        vec![format!(
            "{}_URL",
            name.to_ascii_uppercase().replace('-', "_")
        )]
    }
}

/// The role and database name of a postgres datastore: unambiguous, since neither a project
/// nor a datastore name holds `--`.
fn pg_identifier(project: &str, name: &str) -> String {
    format!("{project}__{name}").replace('-', "_")
}

fn not_ready(row: &Row) -> Error {
    Error::new(
        ErrorCode::Conflict,
        format!("datastore `{}` is still provisioning", row.name),
    )
    .with_hint("wait until `db info` reports `ready`, then retry")
    .retryable_anyway()
}

fn not_found(conn: &rusqlite::Connection, project: &str, name: &str) -> Error {
    let known: Vec<String> = conn
        .prepare("SELECT name FROM datastores WHERE project = ?1 ORDER BY name")
        .and_then(|mut stmt| {
            stmt.query_map([project], |r| r.get(0))?
                .collect::<rusqlite::Result<Vec<String>>>()
        })
        .unwrap_or_default();
    let hint = if known.is_empty() {
        format!(
            "project `{project}` has no datastores: add one (`automaton platform add postgres`)"
        )
    } else {
        format!("use one of: {}", known.join(", "))
    };
    Error::new(
        ErrorCode::NotFound,
        format!("no datastore `{name}` in project `{project}`"),
    )
    .with_hint(hint)
    .with_state(serde_json::json!({ "datastores": known }))
}

fn internal(doing: &str, err: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::InternalError, format!("{doing}: {err}"))
}

const ROW_COLUMNS: &str =
    "project, name, kind, status, env_json, port, username, database, secret, path, created_at";

fn read_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    let kind: String = r.get(2)?;
    let status: String = r.get(3)?;
    let env: String = r.get(4)?;
    Ok(Row {
        project: r.get(0)?,
        name: r.get(1)?,
        kind: DatastoreKind::parse(&kind).unwrap_or(DatastoreKind::Sqlite),
        status: if status == "ready" {
            DatastoreStatus::Ready
        } else {
            DatastoreStatus::Provisioning
        },
        env: serde_json::from_str(&env).unwrap_or_default(),
        port: r.get(5)?,
        username: r.get(6)?,
        database: r.get(7)?,
        secret: r.get(8)?,
        path: r.get(9)?,
        created_at: r.get(10)?,
    })
}

fn find_row(conn: &rusqlite::Connection, project: &str, name: &str) -> Result<Option<Row>> {
    Ok(conn
        .query_row(
            &format!("SELECT {ROW_COLUMNS} FROM datastores WHERE project = ?1 AND name = ?2"),
            params![project, name],
            read_row,
        )
        .optional()?)
}

fn rows_of(conn: &rusqlite::Connection, project: Option<&str>) -> Result<Vec<Row>> {
    Ok(conn
        .prepare(&format!(
            "SELECT {ROW_COLUMNS} FROM datastores WHERE ?1 IS NULL OR project = ?1 ORDER BY project, name"
        ))?
        .query_map([project], read_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?)
}

fn backup_info(
    (key, datastore, kind, bytes, created_at): (String, String, String, i64, i64),
) -> BackupInfo {
    BackupInfo {
        key,
        datastore,
        kind: DatastoreKind::parse(&kind).unwrap_or(DatastoreKind::Sqlite),
        bytes: u64::try_from(bytes).unwrap_or_default(),
        created_at_ms: created_at,
        expires_at_ms: created_at + BACKUP_RETENTION_MS,
    }
}

impl LocalPlatform {
    /// The datastore's row, or `NOT_FOUND` naming the project's datastores.
    async fn datastore_row(&self, project: &str, name: &str) -> Result<Row> {
        let (p, n) = (project.to_owned(), name.to_owned());
        self.on_db(move |db, _| {
            if !store::project_exists(db.conn(), &p)? {
                return Err(store::project_not_found(db.conn(), &p));
            }
            find_row(db.conn(), &p, &n)?.ok_or_else(|| not_found(db.conn(), &p, &n))
        })
        .await
    }

    /// The running managed cluster, started (and made, the first time) on demand.
    async fn cluster(&self) -> Result<postgres::Cluster> {
        let mut cluster = self.inner.datastores.cluster.lock().await;
        if let Some(running) = cluster.as_ref() {
            return Ok(running.clone());
        }
        let known = self
            .on_db(|db, _| {
                Ok(db
                    .conn()
                    .query_row(
                        "SELECT dir, port, secret FROM datastore_engines WHERE engine = 'postgres'",
                        [],
                        |r| {
                            Ok(postgres::Cluster {
                                dir: PathBuf::from(r.get::<_, String>(0)?),
                                port: r.get(1)?,
                                admin_password: r.get(2)?,
                            })
                        },
                    )
                    .optional()?)
            })
            .await?;
        let running = match known {
            Some(known) => {
                postgres::start(&known).await?;
                known
            }
            None => {
                let made = postgres::create(&self.data_dir().join("datastores")).await?;
                let (dir, port, secret) = (
                    made.dir.to_string_lossy().into_owned(),
                    made.port,
                    made.admin_password.clone(),
                );
                self.on_db(move |db, now| {
                    db.write(|tx| {
                        tx.execute(
                            "INSERT INTO datastore_engines (engine, dir, port, secret, created_at) VALUES ('postgres', ?1, ?2, ?3, ?4)",
                            params![dir, port, secret, now],
                        )?;
                        Ok(())
                    })
                })
                .await?;
                made
            }
        };
        *cluster = Some(running.clone());
        Ok(running)
    }

    /// Makes the engine of a new datastore.
    async fn provision(
        &self,
        project: &str,
        name: &str,
        kind: DatastoreKind,
    ) -> Result<Provisioned> {
        let password = uuid::Uuid::new_v4().simple().to_string();
        match kind {
            DatastoreKind::Postgres => {
                let cluster = self.cluster().await?;
                let identifier = pg_identifier(project, name);
                postgres::create_database(&cluster, &identifier, &password).await?;
                Ok(Provisioned {
                    port: Some(cluster.port),
                    username: Some(identifier.clone()),
                    database: Some(identifier),
                    secret: Some(password),
                    path: None,
                })
            }
            DatastoreKind::Redis => {
                let dir = self
                    .data_dir()
                    .join("datastores")
                    .join("redis")
                    .join(pg_identifier(project, name));
                let port = super::instance::free_port()
                    .map_err(|err| internal("finding a free port", err))?;
                redis::start(&dir, port, &password).await?;
                Ok(Provisioned {
                    port: Some(port),
                    username: None,
                    database: None,
                    secret: Some(password),
                    path: Some(dir.to_string_lossy().into_owned()),
                })
            }
            DatastoreKind::Sqlite => {
                let path = self
                    .data_dir()
                    .join("datastores")
                    .join("sqlite")
                    .join(format!("{}.db", pg_identifier(project, name)));
                sqlite::create(&path).await?;
                Ok(Provisioned {
                    port: None,
                    username: None,
                    database: None,
                    secret: None,
                    path: Some(path.to_string_lossy().into_owned()),
                })
            }
            DatastoreKind::Mongo => Err(mongo_unavailable()),
        }
    }

    /// Stops and removes a datastore's engine and data (what exists of them).
    async fn teardown(&self, row: &Row) -> Result<()> {
        match row.kind {
            DatastoreKind::Postgres => {
                if row.username.is_some() {
                    let cluster = self.cluster().await?;
                    postgres::drop_database(&cluster, &pg_identifier(&row.project, &row.name))
                        .await?;
                }
            }
            DatastoreKind::Redis => {
                if let Some(path) = &row.path {
                    redis::stop(Path::new(path)).await;
                    remove_all(PathBuf::from(path)).await?;
                }
            }
            DatastoreKind::Sqlite => {
                if let Some(path) = &row.path {
                    for suffix in ["", "-wal", "-shm", "-journal"] {
                        let _ = tokio::fs::remove_file(format!("{path}{suffix}")).await;
                    }
                }
            }
            DatastoreKind::Mongo => {}
        }
        Ok(())
    }

    /// `createDatastore`.
    pub(super) async fn add_datastore_in(
        &self,
        project: &str,
        kind: DatastoreKind,
        name: Option<&str>,
        key: Option<&str>,
    ) -> Result<AddedDatastore> {
        if kind == DatastoreKind::Mongo {
            return Err(mongo_unavailable());
        }
        let name = name.unwrap_or(kind.as_str());
        validate_name("datastore", name)?;
        let request = serde_json::json!({"project": project, "kind": kind, "name": name});
        self.change(key, "createDatastore", request, async {
            let _one_at_a_time = self.inner.datastores.changes.lock().await;
            let env = env_names_for(kind, name);
            let (p, n, k, e) = (project.to_owned(), name.to_owned(), kind, env.clone());
            let existing = self
                .on_db(move |db, now| {
                    db.write(|tx| {
                        if !store::project_exists(tx, &p)? {
                            return Err(store::project_not_found(tx, &p));
                        }
                        if let Some(row) = find_row(tx, &p, &n)? {
                            return Ok(Some(row));
                        }
                        for other in rows_of(tx, Some(&p))? {
                            if let Some(clash) = other.env.iter().find(|name| e.contains(name)) {
                                return Err(Error::new(
                                    ErrorCode::Conflict,
                                    format!(
                                        "datastore `{}` already sets {clash} in project `{p}`",
                                        other.name
                                    ),
                                )
                                .with_hint(format!(
                                    "give this one its own name, e.g. `--name {}-2`, to get {}_2_URL",
                                    k.as_str(),
                                    k.as_str().to_ascii_uppercase()
                                ))
                                .with_state(serde_json::json!({"datastore": other.view()})));
                            }
                        }
                        tx.execute(
                            "INSERT INTO datastores (project, name, kind, status, env_json, created_at) VALUES (?1, ?2, ?3, 'provisioning', ?4, ?5)",
                            params![p, n, k.as_str(), serde_json::to_string(&e).unwrap_or_default(), now],
                        )?;
                        store::record_event(tx, &p, "datastore.provisioning", None, &format!("{} datastore {n} provisioning", k.as_str()), now)?;
                        Ok(None)
                    })
                })
                .await?;
            if let Some(row) = existing {
                if row.kind != kind {
                    return Err(Error::new(
                        ErrorCode::Conflict,
                        format!("datastore `{name}` already exists as {}", row.kind.as_str()),
                    )
                    .with_hint("pick another name with --name")
                    .with_state(serde_json::json!({"datastore": row.view()})));
                }
                return Ok(AddedDatastore {
                    created: false,
                    datastore: row.view(),
                    restarted_services: Vec::new(),
                });
            }
            let provisioned = match self.provision(project, name, kind).await {
                Ok(provisioned) => provisioned,
                Err(error) => {
                    let (p, n) = (project.to_owned(), name.to_owned());
                    self.on_db(move |db, _| {
                        db.write(|tx| {
                            tx.execute("DELETE FROM datastores WHERE project = ?1 AND name = ?2", params![p, n])?;
                            Ok(())
                        })
                    })
                    .await?;
                    return Err(error);
                }
            };
            let (p, n) = (project.to_owned(), name.to_owned());
            let row = self
                .on_db(move |db, now| {
                    db.write(|tx| {
                        tx.execute(
                            "UPDATE datastores SET status = 'ready', port = ?3, username = ?4, database = ?5, secret = ?6, path = ?7
                             WHERE project = ?1 AND name = ?2",
                            params![p, n, provisioned.port, provisioned.username, provisioned.database, provisioned.secret, provisioned.path],
                        )?;
                        let row = find_row(tx, &p, &n)?.ok_or_else(|| not_found(tx, &p, &n))?;
                        store::record_event(tx, &p, "datastore.ready", None, &format!("{} datastore {n} ready; env {}", row.kind.as_str(), row.env.join(", ")), now)?;
                        Ok(row)
                    })
                })
                .await?;
            let change = self.set_project_env(project, &row.env_values(), None).await?;
            Ok(AddedDatastore {
                created: true,
                datastore: row.view(),
                restarted_services: change.restarted_services,
            })
        })
        .await
    }

    /// `getDatastore`.
    pub(super) async fn get_datastore_in(&self, project: &str, name: &str) -> Result<Datastore> {
        Ok(self.datastore_row(project, name).await?.view())
    }

    /// `listDatastores`.
    pub(super) async fn list_datastores_in(&self, project: &str) -> Result<Vec<Datastore>> {
        let p = project.to_owned();
        self.on_db(move |db, _| {
            if !store::project_exists(db.conn(), &p)? {
                return Err(store::project_not_found(db.conn(), &p));
            }
            Ok(rows_of(db.conn(), Some(&p))?
                .iter()
                .map(Row::view)
                .collect())
        })
        .await
    }

    /// `deleteDatastore`.
    pub(super) async fn delete_datastore_in(
        &self,
        project: &str,
        name: &str,
        confirm: bool,
        key: Option<&str>,
    ) -> Result<DeletedDatastore> {
        if !confirm {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("deleting datastore {name} needs confirmation"),
            )
            .with_hint("deleting removes its data and backups for good (take a backup first if in doubt); pass confirm=true (`--confirm`) to go ahead"));
        }
        let request = serde_json::json!({"project": project, "name": name, "confirm": true});
        self.change(key, "deleteDatastore", request, async {
            let _one_at_a_time = self.inner.datastores.changes.lock().await;
            let (p, n) = (project.to_owned(), name.to_owned());
            let row = self
                .on_db(move |db, _| {
                    if !store::project_exists(db.conn(), &p)? {
                        return Err(store::project_not_found(db.conn(), &p));
                    }
                    find_row(db.conn(), &p, &n)
                })
                .await?;
            let Some(row) = row else {
                return Ok(DeletedDatastore {
                    project: project.to_owned(),
                    name: name.to_owned(),
                    deleted: false,
                    removed_env: Vec::new(),
                    restarted_services: Vec::new(),
                });
            };
            self.remove_datastore(&row).await?;
            let (p, env) = (project.to_owned(), row.env.clone());
            let services = self
                .on_db(move |db, now| {
                    db.write(|tx| {
                        for name in &env {
                            tx.execute(
                                "DELETE FROM env WHERE project = ?1 AND name = ?2",
                                params![p, name],
                            )?;
                        }
                        store::record_event(
                            tx,
                            &p,
                            "datastore.deleted",
                            None,
                            &format!("datastore deleted; env removed: {}", env.join(", ")),
                            now,
                        )?;
                        Ok(store::project_state(tx, &p)?.services)
                    })
                })
                .await?;
            let mut restarted = Vec::new();
            for service in services {
                if service.current_release.is_none() || service.status == ServiceStatus::Stopped {
                    continue;
                }
                self.restart_service(project, &service.name, None).await?;
                restarted.push(service.name);
            }
            Ok(DeletedDatastore {
                project: project.to_owned(),
                name: name.to_owned(),
                deleted: true,
                removed_env: row.env,
                restarted_services: restarted,
            })
        })
        .await
    }

    /// Tears down the engine, removes the backups and the row.
    async fn remove_datastore(&self, row: &Row) -> Result<()> {
        self.teardown(row).await?;
        let (p, n) = (row.project.clone(), row.name.clone());
        let backups: Vec<String> = self
            .on_db(move |db, _| {
                db.write(|tx| {
                    let paths = tx
                        .prepare("SELECT path FROM datastore_backups WHERE project = ?1 AND datastore = ?2")?
                        .query_map(params![p, n], |r| r.get(0))?
                        .collect::<rusqlite::Result<Vec<String>>>()?;
                    tx.execute("DELETE FROM datastore_backups WHERE project = ?1 AND datastore = ?2", params![p, n])?;
                    tx.execute("DELETE FROM datastores WHERE project = ?1 AND name = ?2", params![p, n])?;
                    Ok(paths)
                })
            })
            .await?;
        for path in backups {
            let _ = tokio::fs::remove_file(path).await;
        }
        Ok(())
    }

    /// Removes every datastore of a deleted project (its env went with the project).
    pub(super) async fn drop_project_datastores(&self, project: &str) -> Result<()> {
        let _one_at_a_time = self.inner.datastores.changes.lock().await;
        let p = project.to_owned();
        let rows = self
            .on_db(move |db, _| rows_of(db.conn(), Some(&p)))
            .await?;
        for row in rows {
            self.remove_datastore(&row).await?;
        }
        Ok(())
    }

    /// Where the backups of a datastore are kept.
    fn backup_dir(&self, project: &str, name: &str) -> PathBuf {
        self.data_dir()
            .join("objects")
            .join("backups")
            .join(project)
            .join(name)
    }

    /// Removes backups past retention; the ones left, newest first.
    async fn pruned_backups(&self, project: &str, name: &str) -> Result<Vec<BackupInfo>> {
        let (p, n) = (project.to_owned(), name.to_owned());
        let (expired, kept) = self
            .on_db(move |db, now| {
                db.write(|tx| {
                    let cutoff = now - BACKUP_RETENTION_MS;
                    let expired = tx
                        .prepare("DELETE FROM datastore_backups WHERE project = ?1 AND datastore = ?2 AND created_at < ?3 RETURNING path")?
                        .query_map(params![p, n, cutoff], |r| r.get::<_, String>(0))?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    let kept = tx
                        .prepare("SELECT key, datastore, kind, bytes, created_at FROM datastore_backups WHERE project = ?1 AND datastore = ?2 ORDER BY created_at DESC, key DESC")?
                        .query_map(params![p, n], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))?
                        .collect::<rusqlite::Result<Vec<_>>>()?;
                    Ok((expired, kept))
                })
            })
            .await?;
        for path in expired {
            let _ = tokio::fs::remove_file(path).await;
        }
        Ok(kept.into_iter().map(backup_info).collect())
    }

    /// `createBackup`.
    pub(super) async fn create_backup_in(
        &self,
        project: &str,
        name: &str,
        key: Option<&str>,
    ) -> Result<BackupInfo> {
        let request = serde_json::json!({"project": project, "name": name});
        self.change(key, "createBackup", request, async {
            let row = self.datastore_row(project, name).await?;
            self.pruned_backups(project, name).await?;
            let now = self.inner.clock.now_ms();
            let backup_key = format!("bk_{now}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let dir = self.backup_dir(project, name);
            private_dir(&dir).await?;
            let (file, bytes) = match row.kind {
                DatastoreKind::Postgres => {
                    let file = dir.join(format!("{backup_key}.dump"));
                    postgres::dump(&row.pg()?, &file).await?;
                    (file.clone(), file_size(&file).await?)
                }
                DatastoreKind::Redis => {
                    let (port, password, engine_dir) = row.redis()?;
                    let file = dir.join(format!("{backup_key}.rdb"));
                    redis::snapshot(port, &password, &engine_dir, &file).await?;
                    (file.clone(), file_size(&file).await?)
                }
                DatastoreKind::Sqlite => {
                    let file = dir.join(format!("{backup_key}.sqlite"));
                    sqlite::copy(&row.sqlite_path()?, &file).await?;
                    (file.clone(), file_size(&file).await?)
                }
                DatastoreKind::Mongo => return Err(mongo_unavailable()),
            };
            let (p, n, k, kind, path) = (
                project.to_owned(),
                name.to_owned(),
                backup_key.clone(),
                row.kind.as_str(),
                file.to_string_lossy().into_owned(),
            );
            let size = i64::try_from(bytes).unwrap_or(i64::MAX);
            self.on_db(move |db, _| {
                db.write(|tx| {
                    tx.execute(
                        "INSERT INTO datastore_backups (key, project, datastore, kind, path, bytes, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                        params![k, p, n, kind, path, size, now],
                    )?;
                    store::record_event(tx, &p, "datastore.backed_up", None, &format!("backup {k} of {n} ({size} bytes)"), now)
                })
            })
            .await?;
            Ok(backup_info((
                backup_key,
                name.to_owned(),
                row.kind.as_str().to_owned(),
                size,
                now,
            )))
        })
        .await
    }

    /// `listBackups`.
    pub(super) async fn list_backups_in(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Vec<BackupInfo>> {
        self.datastore_row(project, name).await?;
        self.pruned_backups(project, name).await
    }

    /// `restoreBackup`.
    pub(super) async fn restore_backup_in(
        &self,
        project: &str,
        name: &str,
        backup: &str,
        key: Option<&str>,
    ) -> Result<RestoredBackup> {
        let request = serde_json::json!({"project": project, "name": name, "backup": backup});
        self.change(key, "restoreBackup", request, async {
            let _one_at_a_time = self.inner.datastores.changes.lock().await;
            let row = self.datastore_row(project, name).await?;
            let backups = self.pruned_backups(project, name).await?;
            if !backups.iter().any(|b| b.key == backup) {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    format!("datastore `{name}` has no backup `{backup}`"),
                )
                .with_hint("use a key from `db backups` (backups are kept 7 days)")
                .with_state(serde_json::json!({"backups": backups.iter().map(|b| &b.key).collect::<Vec<_>>()})));
            }
            let (p, n, k) = (project.to_owned(), name.to_owned(), backup.to_owned());
            let file: String = self
                .on_db(move |db, _| {
                    Ok(db.conn().query_row(
                        "SELECT path FROM datastore_backups WHERE key = ?1 AND project = ?2 AND datastore = ?3",
                        params![k, p, n],
                        |r| r.get(0),
                    )?)
                })
                .await?;
            let file = PathBuf::from(file);
            let method = match row.kind {
                DatastoreKind::Postgres => {
                    postgres::restore(&row.pg()?, &file).await?;
                    "pg_restore --clean --if-exists --single-transaction"
                }
                DatastoreKind::Redis => {
                    let (port, password, engine_dir) = row.redis()?;
                    redis::restore(port, &password, &engine_dir, &file).await?;
                    "the server restarted on the backup's RDB snapshot"
                }
                DatastoreKind::Sqlite => {
                    sqlite::restore(&file, &row.sqlite_path()?).await?;
                    "SQLite online backup API, from the backup into the live file"
                }
                DatastoreKind::Mongo => return Err(mongo_unavailable()),
            };
            self.record_datastore_event(project, "datastore.restored", format!("{name} restored from {backup}"))
                .await?;
            Ok(RestoredBackup {
                datastore: name.to_owned(),
                key: backup.to_owned(),
                method: method.to_owned(),
            })
        })
        .await
    }

    async fn record_datastore_event(
        &self,
        project: &str,
        kind: &'static str,
        message: String,
    ) -> Result<()> {
        let p = project.to_owned();
        self.on_db(move |db, now| {
            db.write(|tx| store::record_event(tx, &p, kind, None, &message, now))
        })
        .await
    }

    /// `listDatastoreTables`.
    pub(super) async fn list_tables_in(
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
        self.change(key, "queryDatastore", request, async {
            let started = tokio::time::Instant::now();
            let outcome = self.run_query(project, name, query).await;
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
            self.on_db(move |db, now| {
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

    /// Starts the engines of every datastore again (after a platform restart). An engine that
    /// will not start is reported (a `datastore.unavailable` event and a warning) without
    /// keeping the rest of the platform from coming back.
    pub(super) async fn resume_datastores(&self) -> Result<()> {
        let rows = self.on_db(|db, _| rows_of(db.conn(), None)).await?;
        let cluster = if rows.iter().any(|row| row.kind == DatastoreKind::Postgres) {
            self.cluster().await.err()
        } else {
            None
        };
        for row in &rows {
            let failed = match row.kind {
                DatastoreKind::Postgres => cluster.clone(),
                DatastoreKind::Redis => match row.redis() {
                    Ok((port, password, dir)) => redis::start(&dir, port, &password).await.err(),
                    Err(error) => Some(error),
                },
                DatastoreKind::Sqlite | DatastoreKind::Mongo => None,
            };
            if let Some(error) = failed {
                tracing::warn!(project = %row.project, datastore = %row.name, error = %error, "a datastore did not start again");
                self.record_datastore_event(
                    &row.project,
                    "datastore.unavailable",
                    format!(
                        "{} did not start after the platform restarted: {}",
                        row.name, error.message
                    ),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Stops every engine (their data stays: [`Self::resume_datastores`] starts them again).
    pub(super) async fn stop_datastores(&self) {
        let rows = self
            .on_db(|db, _| rows_of(db.conn(), None))
            .await
            .unwrap_or_default();
        for row in rows.iter().filter(|row| row.kind == DatastoreKind::Redis) {
            if let Some(path) = &row.path {
                redis::stop(Path::new(path)).await;
            }
        }
        if let Some(cluster) = self.inner.datastores.cluster.lock().await.take() {
            postgres::stop(&cluster).await;
        }
    }
}

/// What the tests look at behind the API: secrets, the audit, and a last-resort cleanup.
#[cfg(test)]
impl LocalPlatform {
    /// The datastore's generated password.
    pub(crate) async fn datastore_secret(&self, project: &str, name: &str) -> Option<String> {
        self.datastore_row(project, name).await.ok()?.secret
    }

    /// The audit rows of a project's queries: (principal, query, ok, row_count), oldest first.
    pub(crate) async fn query_audit(
        &self,
        project: &str,
    ) -> Vec<(String, String, bool, Option<i64>)> {
        let p = project.to_owned();
        self.on_db(move |db, _| {
            Ok(db
                .conn()
                .prepare("SELECT principal, query, ok, row_count FROM datastore_queries WHERE project = ?1 ORDER BY id")?
                .query_map([p], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?)
        })
        .await
        .unwrap_or_default()
    }

    /// Kills whatever engines run under `data_dir`, without the runtime (for a test's `Drop`,
    /// so a failed test leaves no server behind).
    pub(crate) fn kill_engines_blocking(data_dir: &Path) {
        let datastores = data_dir.join("datastores");
        if let Ok(entries) = std::fs::read_dir(datastores.join("redis")) {
            for entry in entries.flatten() {
                let pid = std::fs::read_to_string(entry.path().join("redis.pid"))
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
                    .and_then(rustix::process::Pid::from_raw);
                if let Some(pid) = pid {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
            }
        }
        let data = datastores.join("postgres").join("data");
        if data.join("postmaster.pid").exists() {
            let _ = postgres::stop_blocking(&data);
        }
    }
}

fn mongo_unavailable() -> Error {
    Error::new(
        ErrorCode::InvalidInput,
        "mongo is not available on the local platform",
    )
    .with_hint("add postgres, redis or sqlite here; mongo (FerretDB) is offered by a Conway cloud gateway (set CONWAY_ENDPOINT)")
}

/// Creates `path` and whatever of its parents is missing, each 0700: the data directory may
/// be open to traversal (for the `postgres` user), so what holds data or secrets is closed.
pub(super) async fn private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&owned)
    })
    .await
    .map_err(|err| internal("creating a directory", err))?
    .map_err(|err| internal(&format!("creating {}", path.display()), err))
}

async fn file_size(path: &Path) -> Result<u64> {
    Ok(tokio::fs::metadata(path)
        .await
        .map_err(|err| internal("reading the backup's size", err))?
        .len())
}

async fn remove_all(path: PathBuf) -> Result<()> {
    match tokio::fs::remove_dir_all(&path).await {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(internal(&format!("removing {}", path.display()), err)),
    }
}

/// A query's rows capped at [`MAX_QUERY_ROWS`].
fn capped(
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

#[cfg(test)]
mod tests;
