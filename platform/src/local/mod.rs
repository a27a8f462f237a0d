//! `LocalPlatform`: the embedded Conway platform, hosting on this machine. Its state lives in
//! `platform.db` in its data directory (see `migrations/0001_platform.sql`); every mutating
//! verb is one `BEGIN IMMEDIATE` transaction that also records the project event and, when
//! the caller gave one, the idempotency key with its answer.

mod store;

use crate::api::Platform;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{CreatedProject, DeletedProject, ProjectState, ProjectSummary, validate_name};
use automaton_tools::clock::Clock;
use automaton_tools::db::{CrateSchema, Migration, StateDb};
use automaton_tools::tool::BoxFuture;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// The local platform's tables, in its own `platform.db`.
pub const SCHEMA: CrateSchema = CrateSchema {
    crate_name: "platform",
    migrations: &[Migration {
        version: 1,
        sql: include_str!("../../migrations/0001_platform.sql"),
    }],
};

/// The platform hosting on this machine.
#[derive(Clone)]
pub struct LocalPlatform {
    inner: Arc<Inner>,
}

struct Inner {
    data_dir: PathBuf,
    db: Mutex<StateDb>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for LocalPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalPlatform")
            .field("data_dir", &self.inner.data_dir)
            .finish_non_exhaustive()
    }
}

impl LocalPlatform {
    /// Opens (creating, mode 0700) the data directory and its `platform.db`.
    pub fn open(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|err| {
                Error::new(
                    ErrorCode::InternalError,
                    format!(
                        "the platform's data directory {} cannot be created: {err}",
                        data_dir.display()
                    ),
                )
                .with_hint("give a writable directory with --data-dir or AUTOMATON_PLATFORM_DIR")
            })?;
        let db = StateDb::open(&data_dir.join("platform.db"), &[SCHEMA]).map_err(|err| {
            Error::new(ErrorCode::InternalError, format!("platform.db: {err}"))
                .with_hint("move the damaged platform.db aside and start the platform again")
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_owned(),
                db: Mutex::new(db),
                clock,
            }),
        })
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Runs `work` with the database on the blocking pool.
    async fn on_db<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut StateDb, i64) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let now = inner.clock.now_ms();
            // A panic inside a transaction rolled it back: the connection is clean.
            let mut db = inner.db.lock().unwrap_or_else(PoisonError::into_inner);
            work(&mut db, now)
        })
        .await
        .map_err(|err| Error::new(ErrorCode::InternalError, format!("platform task: {err}")))?
    }
}

impl Platform for LocalPlatform {
    fn create_project<'a>(
        &'a self,
        name: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CreatedProject>> {
        Box::pin(async move {
            validate_name("project", name)?;
            let name = name.to_owned();
            let key = idempotency_key.map(str::to_owned);
            self.on_db(move |db, now| {
                db.write(|tx| {
                    let request = serde_json::json!({ "name": name });
                    store::idempotent(tx, key.as_deref(), "createProject", &request, now, || {
                        let created = store::insert_project(tx, &name, now)?;
                        if created {
                            store::record_event(
                                tx,
                                &name,
                                "project.created",
                                None,
                                &format!("project {name} created"),
                                now,
                            )?;
                        }
                        Ok(CreatedProject {
                            created,
                            project: store::project_state(tx, &name)?,
                        })
                    })
                })
            })
            .await
        })
    }

    fn get_project<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<ProjectState>> {
        Box::pin(async move {
            let name = name.to_owned();
            self.on_db(move |db, _| store::project_state(db.conn(), &name))
                .await
        })
    }

    fn list_projects(&self) -> BoxFuture<'_, Result<Vec<ProjectSummary>>> {
        Box::pin(async move { self.on_db(|db, _| store::list_projects(db.conn())).await })
    }

    fn delete_project<'a>(
        &'a self,
        name: &'a str,
        confirm: bool,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeletedProject>> {
        Box::pin(async move {
            if !confirm {
                return Err(Error::new(
                    ErrorCode::InvalidInput,
                    format!("deleting project {name} needs confirmation"),
                )
                .with_hint("deleting stops every service and removes its releases and env for good; pass confirm=true (`--confirm`) to go ahead"));
            }
            let name = name.to_owned();
            let key = idempotency_key.map(str::to_owned);
            self.on_db(move |db, now| {
                db.write(|tx| {
                    let request = serde_json::json!({ "name": name, "confirm": true });
                    store::idempotent(tx, key.as_deref(), "deleteProject", &request, now, || {
                        store::delete_project(tx, &name)
                    })
                })
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests;
