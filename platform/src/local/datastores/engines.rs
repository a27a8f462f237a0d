//! The engines' lives: the managed PostgreSQL cluster made and started on first use,
//! each datastore's engine provisioned on `add` and torn down on delete, all of them stopped by
//! `shutdown` and started again by `resume`.

use super::{
    Provisioned, Row, internal, mongo_unavailable, pg_identifier, postgres, redis, remove_all,
    rows_of, sqlite,
};
use crate::error::Result;
use crate::local::LocalPlatform;
use crate::model::DatastoreKind;
use rusqlite::{OptionalExtension, params};
use std::path::{Path, PathBuf};

impl LocalPlatform {
    /// The running managed cluster, started (and made, the first time) on demand.
    pub(in crate::local) async fn cluster(&self) -> Result<postgres::Cluster> {
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
    pub(super) async fn provision(
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
                let port = crate::local::instance::free_port()
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
                    // A directory of its own: the one the project's confined apps may write
                    // (the file, its WAL and journal), and no other project's.
                    .join(pg_identifier(project, name))
                    .join("data.db");
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
    pub(super) async fn teardown(&self, row: &Row) -> Result<()> {
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
                    if let Some(dir) = Path::new(path)
                        .parent()
                        .filter(|dir| dir.file_name().is_some_and(|name| name != "sqlite"))
                    {
                        // Its own directory, now empty unless the app left files there.
                        remove_all(dir.to_path_buf()).await?;
                    }
                }
            }
            DatastoreKind::Mongo => {}
        }
        Ok(())
    }

    /// Starts the engines of every datastore again (after a platform restart). An engine that
    /// will not start is reported (a `datastore.unavailable` event and a warning) without
    /// keeping the rest of the platform from coming back.
    pub(in crate::local) async fn resume_datastores(&self) -> Result<()> {
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
    pub(in crate::local) async fn stop_datastores(&self) {
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
