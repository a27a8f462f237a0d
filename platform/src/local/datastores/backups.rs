//! Datastore backups: taken into the platform's object-store directory
//! (`objects/backups/<project>/<name>/`, 0700) with each engine's own tool, listed newest first,
//! kept 7 days (pruned whenever they are listed or one is taken), and applied back by
//! `restoreBackup`.

use super::{internal, mongo_unavailable, postgres, private_dir, redis, sqlite};
use crate::error::{Error, ErrorCode, Result};
use crate::local::{LocalPlatform, store};
use crate::model::{BackupInfo, DatastoreKind, RestoredBackup};
use rusqlite::params;
use std::path::{Path, PathBuf};

/// How long backups are kept.
pub const BACKUP_RETENTION_MS: i64 = 7 * 24 * 3600 * 1000;

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

async fn file_size(path: &Path) -> Result<u64> {
    Ok(tokio::fs::metadata(path)
        .await
        .map_err(|err| internal("reading the backup's size", err))?
        .len())
}

impl LocalPlatform {
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
    pub(in crate::local) async fn create_backup_in(
        &self,
        project: &str,
        name: &str,
        key: Option<&str>,
    ) -> Result<BackupInfo> {
        let request = serde_json::json!({"project": project, "name": name});
        let platform = self.clone();
        let (project, name) = (project.to_owned(), name.to_owned());
        self.change(key, "createBackup", request, async move {
            let (project, name,) = (project.as_str(), name.as_str(),);
            let row = platform.datastore_row(project, name).await?;
            platform.pruned_backups(project, name).await?;
            let now = platform.inner.clock.now_ms();
            let backup_key = format!("bk_{now}_{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let dir = platform.backup_dir(project, name);
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
            platform.on_db(move |db, _| {
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
    pub(in crate::local) async fn list_backups_in(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Vec<BackupInfo>> {
        self.datastore_row(project, name).await?;
        self.pruned_backups(project, name).await
    }

    /// `restoreBackup`.
    pub(in crate::local) async fn restore_backup_in(
        &self,
        project: &str,
        name: &str,
        backup: &str,
        key: Option<&str>,
    ) -> Result<RestoredBackup> {
        let request = serde_json::json!({"project": project, "name": name, "backup": backup});
        let platform = self.clone();
        let (project, name, backup) = (project.to_owned(), name.to_owned(), backup.to_owned());
        self.change(key, "restoreBackup", request, async move {
            let (project, name, backup,) = (project.as_str(), name.as_str(), backup.as_str(),);
            let _one_at_a_time = platform.inner.datastores.changes.lock().await;
            let row = platform.datastore_row(project, name).await?;
            let backups = platform.pruned_backups(project, name).await?;
            if !backups.iter().any(|b| b.key == backup) {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    format!("datastore `{name}` has no backup `{backup}`"),
                )
                .with_hint("use a key from `db backups` (backups are kept 7 days)")
                .with_state(serde_json::json!({"backups": backups.iter().map(|b| &b.key).collect::<Vec<_>>()})));
            }
            let (p, n, k) = (project.to_owned(), name.to_owned(), backup.to_owned());
            let file: String = platform
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
            platform.record_datastore_event(project, "datastore.restored", format!("{name} restored from {backup}"))
                .await?;
            Ok(RestoredBackup {
                datastore: name.to_owned(),
                key: backup.to_owned(),
                method: method.to_owned(),
            })
        })
        .await
    }
}
