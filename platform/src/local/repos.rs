//! The forge on the local platform: git repositories per project (seed 000's `createRepo`
//! … `commitRepoFiles`). Each repository is a bare git repository at
//! `repos/<project>/<name>.git` in the data directory, with a row in `platform.db` (see
//! `migrations/0005_repos.sql`) saying it exists, which service it deploys, and its last
//! deploy. Git work (git2, see `repo_git`) runs on the blocking pool.
//!
//! Push-to-deploy: a repository created with `deploy_service` deploys its default branch's
//! new head after a `git push` (the gateway calls [`LocalPlatform::repo_pushed`] once
//! `git receive-pack` succeeded, without making the push wait) and after `commitRepoFiles` to
//! that branch: the commit's tree is exported, packed like any source directory and handed to
//! the ordinary deploy path; the deploy's operation id is kept as the repository's
//! `last_deploy`.

use super::repo_git::{self, git_error};
use super::{LocalPlatform, store};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    CommitRequest, CommitResult, CreatedRepo, DeletedRepo, MAX_LOG_LIMIT, RepoCommit, RepoDeploy,
    RepoFile, RepoInfo, RepoRef, RepoRequest, RepoTree, validate_name,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

/// What the forge keeps beside `platform.db`.
#[derive(Debug, Default)]
pub(crate) struct RepoState {
    /// The smart-HTTP base URL (`http://127.0.0.1:7878/git`), once a gateway serves it.
    git_base: OnceLock<String>,
}

/// A repository's row.
struct RepoRow {
    deploy_service: Option<String>,
    last_deploy: Option<RepoDeploy>,
    created_at: i64,
}

fn repo_row(conn: &Connection, project: &str, name: &str) -> Result<Option<RepoRow>> {
    let row: Option<(Option<String>, Option<String>, i64)> = conn
        .query_row(
            "SELECT deploy_service, last_deploy_json, created_at FROM repos WHERE project = ?1 AND name = ?2",
            params![project, name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    Ok(
        row.map(|(deploy_service, last_deploy, created_at)| RepoRow {
            deploy_service,
            last_deploy: last_deploy.and_then(|text| serde_json::from_str(&text).ok()),
            created_at,
        }),
    )
}

fn repo_names(conn: &Connection, project: &str) -> Result<Vec<String>> {
    Ok(conn
        .prepare_cached("SELECT name FROM repos WHERE project = ?1 ORDER BY name")?
        .query_map([project], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?)
}

/// The repository's row, or `NOT_FOUND` naming the project's repositories (or the project's
/// absence).
fn require_repo_row(conn: &Connection, project: &str, name: &str) -> Result<RepoRow> {
    if let Some(row) = repo_row(conn, project, name)? {
        return Ok(row);
    }
    if !store::project_exists(conn, project)? {
        return Err(store::project_not_found(conn, project));
    }
    let known = repo_names(conn, project)?;
    let closest = store::closest(name, &known);
    let hint = match closest {
        Some(candidate) => format!("did you mean `{candidate}`?"),
        None if known.is_empty() => format!(
            "project {project} has no repositories yet: create one (`automaton platform repos create NAME`)"
        ),
        None => "pick one of the project's repositories, or create it first".to_owned(),
    };
    Err(Error::new(
        ErrorCode::NotFound,
        format!("no repository `{name}` in project {project}"),
    )
    .with_hint(hint)
    .with_state(serde_json::json!({ "repos": known })))
}

/// Checks a repository name: a project-style name, and a clearer word for a `.git` suffix.
fn validate_repo_name(name: &str) -> Result<()> {
    if let Some(stem) = name.strip_suffix(".git") {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("`{name}` is not a valid repository name"),
        )
        .with_hint(format!(
            "leave out `.git`: create `{stem}`; its clone URL ends in `{stem}.git`"
        )));
    }
    validate_name("repository", name)
}

/// Removes `dir` and everything in it; gone already is fine.
async fn remove_dir(dir: &std::path::Path) -> Result<()> {
    match tokio::fs::remove_dir_all(dir).await {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(Error::new(
            ErrorCode::InternalError,
            format!("removing {}: {err}", dir.display()),
        )),
        _ => Ok(()),
    }
}

async fn on_git<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::new(ErrorCode::InternalError, format!("git task: {err}")))?
}

impl LocalPlatform {
    /// Makes `clone_url`s point at the gateway's smart HTTP (`<base>/<project>/<repo>.git`);
    /// set once, by the gateway that serves them.
    pub fn set_git_base(&self, base: &str) {
        let _ = self
            .inner
            .repos
            .git_base
            .set(base.trim_end_matches('/').to_owned());
    }

    /// Where the bare repositories live (`GIT_PROJECT_ROOT` of the smart HTTP backend).
    pub fn repos_root(&self) -> PathBuf {
        self.data_dir().join("repos")
    }

    fn repo_dir(&self, project: &str, name: &str) -> PathBuf {
        self.repos_root().join(project).join(format!("{name}.git"))
    }

    fn clone_url(&self, project: &str, name: &str) -> String {
        match self.inner.repos.git_base.get() {
            Some(base) => format!("{base}/{project}/{name}.git"),
            None => format!("file://{}", self.repo_dir(project, name).display()),
        }
    }

    /// The repository's info from its row and its git HEAD (blocking).
    fn info_of(&self, project: &str, name: &str, row: RepoRow) -> Result<RepoInfo> {
        let repo = repo_git::open(&self.repo_dir(project, name))?;
        let (default_branch, head) = repo_git::head(&repo)?;
        Ok(RepoInfo {
            project: project.to_owned(),
            name: name.to_owned(),
            clone_url: self.clone_url(project, name),
            default_branch,
            head: head.map(|id| id.to_string()),
            deploy_service: row.deploy_service,
            last_deploy: row.last_deploy,
            created_at_ms: row.created_at,
        })
    }

    /// The bare repository's directory, when the project has that repository (the gateway's
    /// smart HTTP serves nothing else).
    pub async fn require_repo(&self, project: &str, name: &str) -> Result<PathBuf> {
        validate_name("project", project)?;
        validate_repo_name(name)?;
        let (p, n) = (project.to_owned(), name.to_owned());
        self.on_db(move |db, _| require_repo_row(db.conn(), &p, &n).map(|_| ()))
            .await?;
        Ok(self.repo_dir(project, name))
    }

    pub(crate) async fn create_repo_in(
        &self,
        project: &str,
        request: &RepoRequest,
        idempotency_key: Option<&str>,
    ) -> Result<CreatedRepo> {
        validate_name("project", project)?;
        validate_repo_name(&request.name)?;
        if let Some(service) = &request.deploy_service {
            validate_name("service", service)?;
        }
        let platform = self.clone();
        let (project, request) = (project.to_owned(), request.clone());
        let key = idempotency_key.map(str::to_owned);
        self.on_db(move |db, now| {
            db.write(|tx| {
                let body = serde_json::json!({ "project": project, "repo": request });
                store::idempotent(tx, key.as_deref(), "createRepo", &body, now, || {
                    let name = &request.name;
                    if !store::project_exists(tx, &project)? {
                        return Err(store::project_not_found(tx, &project));
                    }
                    if let Some(row) = repo_row(tx, &project, name)? {
                        return Ok(CreatedRepo {
                            created: false,
                            repo: platform.info_of(&project, name, row)?,
                        });
                    }
                    repo_git::init(&platform.repo_dir(&project, name))?;
                    tx.execute(
                        "INSERT INTO repos (project, name, deploy_service, created_at) VALUES (?1, ?2, ?3, ?4)",
                        params![project, name, request.deploy_service, now],
                    )?;
                    let deploys = request
                        .deploy_service
                        .as_ref()
                        .map_or_else(String::new, |s| format!("; pushes to its default branch deploy {s}"));
                    store::record_event(
                        tx,
                        &project,
                        "repo.created",
                        None,
                        &format!("repository {name} created{deploys}"),
                        now,
                    )?;
                    let row = RepoRow {
                        deploy_service: request.deploy_service.clone(),
                        last_deploy: None,
                        created_at: now,
                    };
                    Ok(CreatedRepo {
                        created: true,
                        repo: platform.info_of(&project, name, row)?,
                    })
                })
            })
        })
        .await
    }

    pub(crate) async fn list_repos_in(&self, project: &str) -> Result<Vec<RepoInfo>> {
        let platform = self.clone();
        let project = project.to_owned();
        self.on_db(move |db, _| {
            if !store::project_exists(db.conn(), &project)? {
                return Err(store::project_not_found(db.conn(), &project));
            }
            repo_names(db.conn(), &project)?
                .into_iter()
                .map(|name| {
                    let row = require_repo_row(db.conn(), &project, &name)?;
                    platform.info_of(&project, &name, row)
                })
                .collect()
        })
        .await
    }

    pub(crate) async fn repo_info(&self, project: &str, name: &str) -> Result<RepoInfo> {
        let platform = self.clone();
        let (project, name) = (project.to_owned(), name.to_owned());
        self.on_db(move |db, _| {
            let row = require_repo_row(db.conn(), &project, &name)?;
            platform.info_of(&project, &name, row)
        })
        .await
    }

    pub(crate) async fn delete_repo_in(
        &self,
        project: &str,
        name: &str,
        confirm: bool,
        idempotency_key: Option<&str>,
    ) -> Result<DeletedRepo> {
        if !confirm {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("deleting repository {name} needs confirmation"),
            )
            .with_hint("deleting removes every branch and commit for good; pass confirm=true (`--confirm`) to go ahead"));
        }
        let (p, n) = (project.to_owned(), name.to_owned());
        let key = idempotency_key.map(str::to_owned);
        let deleted = self
            .on_db(move |db, now| {
                db.write(|tx| {
                    let body = serde_json::json!({ "project": p, "repo": n, "confirm": true });
                    store::idempotent(tx, key.as_deref(), "deleteRepo", &body, now, || {
                        let removed = tx.execute(
                            "DELETE FROM repos WHERE project = ?1 AND name = ?2",
                            params![p, n],
                        )? == 1;
                        if removed {
                            store::record_event(
                                tx,
                                &p,
                                "repo.deleted",
                                None,
                                &format!("repository {n} deleted"),
                                now,
                            )?;
                        }
                        Ok(DeletedRepo {
                            name: n.clone(),
                            deleted: removed,
                        })
                    })
                })
            })
            .await?;
        if deleted.deleted {
            remove_dir(&self.repo_dir(project, name)).await?;
        }
        Ok(deleted)
    }

    /// Removes the bare repositories of a deleted project (their rows went with it).
    pub(crate) async fn remove_project_repos(&self, project: &str) -> Result<()> {
        remove_dir(&self.repos_root().join(project)).await
    }

    /// Runs `read` on the repository (after checking it exists) on the blocking pool.
    async fn read_repo<T, F>(&self, project: &str, name: &str, read: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&git2::Repository) -> Result<T> + Send + 'static,
    {
        let dir = self.require_repo(project, name).await?;
        on_git(move || read(&repo_git::open(&dir)?)).await
    }

    pub(crate) async fn repo_refs(&self, project: &str, name: &str) -> Result<Vec<RepoRef>> {
        self.read_repo(project, name, repo_git::refs).await
    }

    pub(crate) async fn repo_log(
        &self,
        project: &str,
        name: &str,
        git_ref: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RepoCommit>> {
        let git_ref = git_ref.map(str::to_owned);
        let limit = limit.clamp(1, MAX_LOG_LIMIT);
        self.read_repo(project, name, move |repo| {
            repo_git::log(repo, git_ref.as_deref(), limit)
        })
        .await
    }

    pub(crate) async fn repo_tree(
        &self,
        project: &str,
        name: &str,
        git_ref: Option<&str>,
        path: &str,
    ) -> Result<RepoTree> {
        let (git_ref, path) = (git_ref.map(str::to_owned), path.to_owned());
        self.read_repo(project, name, move |repo| {
            repo_git::tree(repo, git_ref.as_deref(), &path)
        })
        .await
    }

    pub(crate) async fn repo_file(
        &self,
        project: &str,
        name: &str,
        git_ref: Option<&str>,
        path: &str,
    ) -> Result<RepoFile> {
        let (git_ref, path) = (git_ref.map(str::to_owned), path.to_owned());
        self.read_repo(project, name, move |repo| {
            repo_git::file(repo, git_ref.as_deref(), &path)
        })
        .await
    }

    pub(crate) async fn commit_repo_files(
        &self,
        project: &str,
        name: &str,
        request: &CommitRequest,
        idempotency_key: Option<&str>,
    ) -> Result<CommitResult> {
        let dir = self.require_repo(project, name).await?;
        let body = serde_json::json!({ "project": project, "repo": name, "commit": request });
        if let Some(key) = idempotency_key {
            let (key, body) = (key.to_owned(), body.clone());
            let replay = self
                .on_db(move |db, now| {
                    store::replayed::<CommitResult>(db.conn(), &key, "commitRepoFiles", &body, now)
                })
                .await?;
            if let Some(answer) = replay {
                return Ok(answer);
            }
        }
        let now = self.inner.clock.now_ms();
        let owned = request.clone();
        let committed =
            on_git(move || repo_git::commit(&repo_git::open(&dir)?, &owned, now)).await?;
        let (p, n) = (project.to_owned(), name.to_owned());
        let deploy_service = self
            .on_db(move |db, _| Ok(repo_row(db.conn(), &p, &n)?.and_then(|row| row.deploy_service)))
            .await?;
        let deploy = match deploy_service {
            Some(service) if committed.changed && committed.default_branch => Some(
                self.deploy_commit(project, name, &service, &committed.commit.to_string())
                    .await?,
            ),
            _ => None,
        };
        let answer = CommitResult {
            commit: committed.commit.to_string(),
            branch: committed.branch,
            changed: committed.changed,
            created_branch: committed.created_branch,
            deploy,
        };
        let (p, key) = (project.to_owned(), idempotency_key.map(str::to_owned));
        let (message, recorded) = (
            format!(
                "{name}: {} on {} ({})",
                &answer.commit[..12],
                answer.branch,
                request.message.lines().next().unwrap_or_default()
            ),
            answer.clone(),
        );
        self.on_db(move |db, now| {
            db.write(|tx| {
                if recorded.changed {
                    store::record_event(tx, &p, "repo.commit", None, &message, now)?;
                }
                match key {
                    Some(key) => {
                        store::remember(tx, &key, "commitRepoFiles", &body, &recorded, now)
                    }
                    None => Ok(()),
                }
            })
        })
        .await?;
        Ok(answer)
    }

    /// After a successful `git push`: makes an empty repository's first pushed branch its
    /// default, then deploys the default branch's new head when the
    /// repository deploys a service and that commit was not deployed yet. A deploy already in
    /// flight for the service is waited for, then the head deployed. `None` when there was
    /// nothing to deploy.
    pub async fn repo_pushed(&self, project: &str, name: &str) -> Result<Option<RepoDeploy>> {
        let mut attempts = 0;
        loop {
            let dir = self.require_repo(project, name).await?;
            let (p, n) = (project.to_owned(), name.to_owned());
            let row = self
                .on_db(move |db, _| require_repo_row(db.conn(), &p, &n))
                .await?;
            let head = on_git(move || {
                let repo = repo_git::open(&dir)?;
                repo_git::adopt_first_branch(&repo)?;
                Ok(repo_git::head(&repo)?.1)
            })
            .await?;
            let (Some(service), Some(head)) = (row.deploy_service, head.map(|id| id.to_string()))
            else {
                return Ok(None);
            };
            if row
                .last_deploy
                .as_ref()
                .is_some_and(|last| last.commit == head && last.operation_id.is_some())
            {
                return Ok(None);
            }
            let deploy = self.deploy_commit(project, name, &service, &head).await?;
            let in_flight = deploy
                .error
                .as_ref()
                .filter(|error| error.code == ErrorCode::Conflict)
                .and_then(|error| error.state.as_ref())
                .and_then(|state| state["operation_id"].as_str().map(str::to_owned));
            match in_flight {
                Some(operation) if attempts < 3 => {
                    attempts += 1;
                    let timeout = self.inner.options.build_timeout + Duration::from_secs(60);
                    crate::api::Platform::wait_operation(self, &operation, timeout).await?;
                }
                _ => return Ok(Some(deploy)),
            }
        }
    }

    /// Exports `commit`, deploys it to `service` and records the outcome as the repository's
    /// last deploy. A deploy that could not start is an answer (with its error), not a failure.
    async fn deploy_commit(
        &self,
        project: &str,
        name: &str,
        service: &str,
        commit: &str,
    ) -> Result<RepoDeploy> {
        let dir = self.repo_dir(project, name);
        let scratch_root = self.data_dir().join("uploads");
        let id = git2::Oid::from_str(commit).map_err(git_error("reading the commit id"))?;
        let packed = on_git(move || {
            std::fs::create_dir_all(&scratch_root).map_err(|err| {
                Error::new(
                    ErrorCode::InternalError,
                    format!("a scratch directory: {err}"),
                )
            })?;
            let scratch = tempfile::Builder::new()
                .prefix("repo-export-")
                .tempdir_in(&scratch_root)
                .map_err(|err| {
                    Error::new(
                        ErrorCode::InternalError,
                        format!("a scratch directory: {err}"),
                    )
                })?;
            let tree = scratch.path().join("tree");
            repo_git::export(&repo_git::open(&dir)?, id, &tree)?;
            let archive = scratch.path().join("source.tgz");
            crate::source::pack(&tree, &archive, crate::source::MAX_SOURCE_BYTES)?;
            Ok((scratch, archive))
        })
        .await;
        let accepted = match packed {
            Ok((_scratch, archive)) => self.accept_deploy(project, service, &archive, None).await,
            Err(error) => Err(error),
        };
        let (operation_id, error) = match accepted {
            Ok(accepted) => (Some(accepted.operation_id), None),
            Err(error) => (None, Some(error)),
        };
        let deploy = RepoDeploy {
            commit: commit.to_owned(),
            service: service.to_owned(),
            operation_id,
            error,
            at_ms: self.inner.clock.now_ms(),
        };
        let (p, n, recorded) = (project.to_owned(), name.to_owned(), deploy.clone());
        self.on_db(move |db, now| {
            db.write(|tx| {
                let json = serde_json::to_string(&recorded).map_err(|err| {
                    Error::new(ErrorCode::InternalError, format!("a deploy record: {err}"))
                })?;
                tx.execute(
                    "UPDATE repos SET last_deploy_json = ?1 WHERE project = ?2 AND name = ?3",
                    params![json, p, n],
                )?;
                let message = match (&recorded.operation_id, &recorded.error) {
                    (Some(operation), _) => format!(
                        "{n}: deploying {} to {} ({operation})",
                        &recorded.commit[..12],
                        recorded.service
                    ),
                    (None, Some(error)) => format!(
                        "{n}: {} could not be deployed: {}",
                        &recorded.commit[..12],
                        error.message
                    ),
                    (None, None) => format!("{n}: nothing deployed"),
                };
                store::record_event(
                    tx,
                    &p,
                    "repo.deploy",
                    Some(&recorded.service),
                    &message,
                    now,
                )
            })
        })
        .await?;
        Ok(deploy)
    }
}

#[cfg(test)]
#[path = "repos_tests.rs"]
pub(crate) mod tests;
