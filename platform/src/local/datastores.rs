//! The local platform's datastores (seed 000's `add postgres|redis`, plus `sqlite`): what a
//! datastore is in `platform.db`, the verbs that make and remove one (add, info, list, delete),
//! and the env each one injects into the project's services. Beside it: [`engines`] (the
//! engines' lives across `add`, delete, `shutdown` and `resume`), [`backups`] (taken, listed
//! with 7-day retention, restored), [`inspect`] (tables and audited queries), and the engines
//! themselves — [`postgres`] (one managed cluster, a database and role per datastore),
//! [`redis`] (a server per datastore), [`sqlite`] (a file per datastore).
//!
//! Secrets: each datastore's generated password lives in `platform.db` and in the env of the
//! project's processes; reads show its URL with the password masked, and no error or log
//! carries it.

mod backups;
mod engines;
mod inspect;
mod postgres;
mod redis;
mod sqlite;

use super::{LocalPlatform, store};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    AddedDatastore, Datastore, DatastoreKind, DatastoreStatus, DeletedDatastore, ServiceStatus,
    validate_name,
};
use inspect::capped;
use rusqlite::{OptionalExtension, params};
use std::path::{Path, PathBuf};

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
    let hint = match store::closest(name, &known) {
        Some(candidate) => {
            format!("did you mean `{candidate}`? the datastore tool's `list` shows them all")
        }
        None if known.is_empty() => format!(
            "project `{project}` has no datastores: add one (`automaton platform add postgres`)"
        ),
        None => format!("use one of: {}", known.join(", ")),
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
        let platform = self.clone();
        let (project, name) = (project.to_owned(), name.to_owned());
        self.change(key, "createDatastore", request, async move {
            let (project, name,) = (project.as_str(), name.as_str(),);
            let _one_at_a_time = platform.inner.datastores.changes.lock().await;
            let env = env_names_for(kind, name);
            let (p, n, k, e) = (project.to_owned(), name.to_owned(), kind, env.clone());
            let existing = platform
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
            let provisioned = match platform.provision(project, name, kind).await {
                Ok(provisioned) => provisioned,
                Err(error) => {
                    let (p, n) = (project.to_owned(), name.to_owned());
                    platform.on_db(move |db, _| {
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
            let row = platform
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
            let change = platform.set_project_env(project, &row.env_values(), None).await?;
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
        let platform = self.clone();
        let (project, name) = (project.to_owned(), name.to_owned());
        self.change(key, "deleteDatastore", request, async move {
            let (project, name) = (project.as_str(), name.as_str());
            let _one_at_a_time = platform.inner.datastores.changes.lock().await;
            let (p, n) = (project.to_owned(), name.to_owned());
            let row = platform
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
            platform.remove_datastore(&row).await?;
            let (p, env) = (project.to_owned(), row.env.clone());
            let services = platform
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
                platform
                    .restart_service(project, &service.name, None)
                    .await?;
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

async fn remove_all(path: PathBuf) -> Result<()> {
    match tokio::fs::remove_dir_all(&path).await {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(internal(&format!("removing {}", path.display()), err)),
    }
}

#[cfg(test)]
mod tests;
