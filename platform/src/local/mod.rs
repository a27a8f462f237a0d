//! `LocalPlatform`: the embedded Conway platform, hosting on this machine. Its state lives in
//! `platform.db` in its data directory (see `migrations/0001_platform.sql`); every mutating
//! verb is one `BEGIN IMMEDIATE` transaction that also records the project event and, when
//! the caller gave one, the idempotency key with its answer.

pub mod confine;
mod credits;
mod datastores;
mod deploy;
mod instance;
mod processes;
pub mod proxy;
mod repo_git;
pub(crate) mod repos;
mod services;
mod static_site;
mod store;
mod tokens;

pub use credits::{Charge, OWNER_ACCOUNT, may_grant};
pub use deploy::{LOG_TAIL_LINES, MAX_BUILDS_IN_FLIGHT, MAX_SERVICES};
pub use services::MAX_REPLICAS;
pub use tokens::Principal;

use crate::api::Platform;
use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    CreatedProject, DeletedProject, EnvChange, Operation, OperationEvent, ProjectState,
    ProjectSummary, ServiceDetail, ServiceLogs, ServiceState, ServiceStatus, validate_name,
};
use automaton_tools::clock::Clock;
use automaton_tools::db::{CrateSchema, Migration, StateDb};
use automaton_tools::tool::BoxFuture;
use instance::{Instance, InstanceState, LogTail, Transition};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The local platform's tables, in its own `platform.db`.
pub const SCHEMA: CrateSchema = CrateSchema {
    crate_name: "platform",
    migrations: &[
        Migration {
            version: 1,
            sql: include_str!("../../migrations/0001_platform.sql"),
        },
        Migration {
            version: 2,
            sql: include_str!("../../migrations/0002_gateway_tokens.sql"),
        },
        Migration {
            version: 3,
            sql: include_str!("../../migrations/0003_scoped_tokens.sql"),
        },
        Migration {
            version: 4,
            sql: include_str!("../../migrations/0004_app_processes.sql"),
        },
        Migration {
            version: 5,
            sql: include_str!("../../migrations/0005_repos.sql"),
        },
        Migration {
            version: 6,
            sql: include_str!("../../migrations/0006_datastores.sql"),
        },
        Migration {
            version: 7,
            sql: include_str!("../../migrations/0007_credits.sql"),
        },
    ],
};

/// The platform hosting on this machine.
#[derive(Clone)]
pub struct LocalPlatform {
    inner: Arc<Inner>,
}

/// Limits of the local platform.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// How long a release has to accept connections on `$PORT`.
    pub health_timeout: Duration,
    /// How long a build may run (seed 000: 30 minutes).
    pub build_timeout: Duration,
    /// How long an app in a crash loop must stay up after a restart to count as recovered.
    pub stable_after: Duration,
    /// The `automaton` binary whose `platform confine` wraps every app and build (see
    /// [`confine`]); `None` runs them unconfined.
    pub confine_with: Option<PathBuf>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            health_timeout: Duration::from_secs(30),
            build_timeout: Duration::from_secs(30 * 60),
            stable_after: Duration::from_secs(60),
            confine_with: None,
        }
    }
}

type ServiceKey = (String, String);

struct Inner {
    data_dir: PathBuf,
    db: Mutex<StateDb>,
    clock: Arc<dyn Clock>,
    options: LocalOptions,
    /// The instances serving each service.
    running: tokio::sync::Mutex<HashMap<ServiceKey, Vec<Instance>>>,
    /// Each service's newest log lines, across its releases.
    tails: Mutex<HashMap<ServiceKey, Arc<LogTail>>>,
    /// One change (deploy rollout, rollback, restart, scale) per service at a time.
    service_locks: Mutex<HashMap<ServiceKey, Arc<tokio::sync::Mutex<()>>>>,
    /// Which instances serve which live URL.
    routes: proxy::Routes,
    /// The proxy's port, once it listens.
    proxy_port: std::sync::OnceLock<u16>,
    /// Cancelled when the gateway stops: its open event streams end.
    streams_closing: tokio_util::sync::CancellationToken,
    /// The forge's state beside the database.
    repos: repos::RepoState,
    /// The datastores' engines.
    datastores: datastores::Engines,
    /// The inference proxy's upstream, once configured.
    inference: std::sync::OnceLock<Arc<crate::inference::Inference>>,
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
        Self::open_with(data_dir, clock, LocalOptions::default())
    }

    /// [`Self::open`] with other limits.
    pub fn open_with(
        data_dir: &Path,
        clock: Arc<dyn Clock>,
        options: LocalOptions,
    ) -> Result<Self> {
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
                .not_retryable()
            })?;
        let db = StateDb::open(&data_dir.join("platform.db"), &[SCHEMA]).map_err(|err| {
            Error::new(ErrorCode::InternalError, format!("platform.db: {err}"))
                .with_hint("move the damaged platform.db aside and start the platform again")
                .not_retryable()
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                data_dir: data_dir.to_owned(),
                db: Mutex::new(db),
                clock,
                options,
                running: tokio::sync::Mutex::default(),
                tails: Mutex::default(),
                service_locks: Mutex::default(),
                routes: proxy::Routes::default(),
                proxy_port: std::sync::OnceLock::new(),
                streams_closing: tokio_util::sync::CancellationToken::new(),
                repos: repos::RepoState::default(),
                datastores: datastores::Engines::default(),
                inference: std::sync::OnceLock::new(),
            }),
        })
    }

    /// Ends every open event stream (operations, logs, project events): a stopping gateway
    /// does not wait on followers that never hang up.
    pub fn close_streams(&self) {
        self.inner.streams_closing.cancel();
    }

    /// Resolves once [`Self::close_streams`] was called.
    pub fn streams_closed(&self) -> tokio_util::sync::WaitForCancellationFutureOwned {
        self.inner.streams_closing.clone().cancelled_owned()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.data_dir
    }

    /// Gives the gateway's inference proxy its upstream (once per platform; see
    /// [`crate::inference`]).
    pub fn set_inference(&self, inference: crate::inference::Inference) -> Result<()> {
        self.inner.inference.set(Arc::new(inference)).map_err(|_| {
            Error::new(
                ErrorCode::Conflict,
                "this platform already has its inference upstream",
            )
            .with_hint("restart the platform to change inference.json")
        })
    }

    /// The inference proxy's upstream, if configured.
    pub fn inference(&self) -> Option<Arc<crate::inference::Inference>> {
        self.inner.inference.get().cloned()
    }

    /// Brings the platform back after a start: app processes a crashed platform process left
    /// running are killed, operations it left unfinished are failed (nothing of them took
    /// effect), idempotency keys it left pending are freed, and every service that should run
    /// is started again on its current release with its replicas. A service that cannot start
    /// is recorded (`service.unhealthy`) and the others still start. Returns the services
    /// started.
    pub async fn resume(&self) -> Result<Vec<String>> {
        self.kill_leftover_processes().await?;
        // The datastores before the services: the services read their URLs as they start.
        self.resume_datastores().await?;
        let serving = self
            .on_db(|db, now| {
                db.write(|tx| {
                    store::fail_abandoned_operations(tx, now)?;
                    store::release_abandoned_claims(tx)
                })?;
                let rows = db
                    .conn()
                    .prepare(
                        "SELECT s.project, s.name, s.current_release, r.plan_json, s.replicas FROM services s
                         JOIN releases r ON r.project = s.project AND r.service = s.name AND r.id = s.current_release
                         WHERE s.status IN ('active', 'crash_loop') AND s.replicas > 0",
                    )?
                    .query_map([], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, u32>(4)?,
                        ))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok(rows)
            })
            .await?;
        let mut started = Vec::new();
        for (project, service, release, plan, replicas) in serving {
            let outcome = match plan
                .and_then(|text| serde_json::from_str::<crate::detect::BuildPlan>(&text).ok())
            {
                Some(plan) => {
                    self.resume_service(&project, &service, &release, &plan.start, replicas)
                        .await
                }
                None => Err(Error::new(
                    ErrorCode::InternalError,
                    format!("release {release} has no readable build plan"),
                )),
            };
            match outcome {
                Ok(()) => started.push(format!("{service}-{project}")),
                Err(error) => {
                    let (p, s, message) = (project.clone(), service.clone(), error.message);
                    tracing::warn!(project, service, %message, "a service did not start again");
                    self.on_db(move |db, now| {
                        db.write(|tx| {
                            store::record_event(
                                tx,
                                &p,
                                "service.unhealthy",
                                Some(&s),
                                &format!(
                                    "after the platform restarted it did not start: {message}"
                                ),
                                now,
                            )
                        })
                    })
                    .await?;
                }
            }
        }
        Ok(started)
    }

    /// Starts `replicas` instances of the service's current release after a platform restart.
    /// They serve whatever their health gate says (the supervisor keeps restarting them); a
    /// failed gate is recorded for whoever looks.
    async fn resume_service(
        &self,
        project: &str,
        service: &str,
        release: &str,
        start: &crate::detect::Start,
        replicas: u32,
    ) -> Result<()> {
        let dir = deploy::release_dir(self.data_dir(), project, service, release);
        let mut candidates = Vec::new();
        for _ in 0..replicas.clamp(1, services::MAX_REPLICAS) {
            let candidate = self
                .start_candidate(project, service, release, &dir, start)
                .await?;
            candidate.adopted.store(true, Ordering::SeqCst);
            candidates.push(candidate);
        }
        for candidate in &candidates {
            if let Err(error) = self.health_gate(candidate).await {
                let (p, s, message) = (project.to_owned(), service.to_owned(), error.message);
                self.on_db(move |db, now| {
                    db.write(|tx| {
                        store::record_event(
                            tx,
                            &p,
                            "service.unhealthy",
                            Some(&s),
                            &format!("after the platform restarted: {message}"),
                            now,
                        )
                    })
                })
                .await?;
            }
        }
        let instances = candidates.into_iter().map(|c| c.instance).collect();
        self.swap_instances(project, service, instances).await;
        Ok(())
    }

    /// The release the service serves now, if any.
    async fn serving_release(&self, project: &str, service: &str) -> Option<String> {
        let running = self.inner.running.lock().await;
        running
            .get(&(project.to_owned(), service.to_owned()))
            .and_then(|instances| instances.first())
            .map(|instance| instance.release.clone())
    }

    /// Makes `instances` the service's, stopping the ones they replace.
    async fn swap_instances(&self, project: &str, service: &str, instances: Vec<Instance>) {
        let addresses = instances
            .iter()
            .map(|instance| std::net::SocketAddr::from(([127, 0, 0, 1], instance.port)))
            .collect();
        let old = {
            let mut running = self.inner.running.lock().await;
            // The route moves with the instances, under the same lock.
            self.inner
                .routes
                .set(&proxy::host_for(project, service), addresses);
            running.insert((project.to_owned(), service.to_owned()), instances)
        };
        for instance in old.into_iter().flatten() {
            instance.stop().await;
        }
    }

    /// Serves the live URLs on `listener` until `stop` (once per platform).
    pub async fn serve_proxy(
        &self,
        listener: tokio::net::TcpListener,
        stop: tokio_util::sync::CancellationToken,
    ) -> Result<()> {
        let port = listener
            .local_addr()
            .map_err(|err| {
                Error::new(
                    ErrorCode::InternalError,
                    format!("the proxy's address: {err}"),
                )
            })?
            .port();
        if self.inner.proxy_port.set(port).is_err() {
            return Err(Error::new(
                ErrorCode::Conflict,
                "this platform already serves its live URLs",
            ));
        }
        proxy::serve(listener, self.inner.routes.clone(), stop).await;
        Ok(())
    }

    /// The live URL of a service: through the proxy when it listens, else the first
    /// instance's own address.
    pub(crate) fn live_url(&self, project: &str, service: &str, ports: &[u16]) -> Option<String> {
        match self.inner.proxy_port.get() {
            Some(proxy) if !ports.is_empty() => Some(format!(
                "http://{}:{proxy}/",
                proxy::host_for(project, service)
            )),
            _ => ports
                .first()
                .map(|port| format!("http://127.0.0.1:{port}/")),
        }
    }

    /// Stops every instance this platform runs (their state stays: [`Self::resume`] starts
    /// them again).
    pub async fn shutdown(&self) {
        let all: Vec<Instance> = {
            let mut running = self.inner.running.lock().await;
            for (project, service) in running.keys() {
                self.inner
                    .routes
                    .set(&proxy::host_for(project, service), Vec::new());
            }
            running
                .drain()
                .flat_map(|(_, instances)| instances)
                .collect()
        };
        for instance in all {
            instance.stop().await;
        }
        self.stop_datastores().await;
    }

    /// Stops every instance of the project's services.
    async fn stop_project(&self, project: &str) {
        let stopped: Vec<Instance> = {
            let mut running = self.inner.running.lock().await;
            let keys: Vec<ServiceKey> = running
                .keys()
                .filter(|(p, _)| p == project)
                .cloned()
                .collect();
            for (p, s) in &keys {
                self.inner.routes.set(&proxy::host_for(p, s), Vec::new());
            }
            keys.into_iter()
                .filter_map(|key| running.remove(&key))
                .flatten()
                .collect()
        };
        for instance in stopped {
            instance.stop().await;
        }
    }

    /// Removes a deleted project's release directories, log files and in-memory tails.
    async fn forget_project_files(&self, project: &str) {
        {
            let mut tails = self
                .inner
                .tails
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            tails.retain(|(p, _), _| p != project);
        }
        let dirs = [
            self.data_dir().join("releases").join(project),
            self.data_dir().join("logs").join(project),
        ];
        let removed = tokio::task::spawn_blocking(move || {
            for dir in dirs {
                if let Err(err) = std::fs::remove_dir_all(&dir)
                    && err.kind() != std::io::ErrorKind::NotFound
                {
                    tracing::warn!(dir = %dir.display(), error = %err, "a deleted project's files stay");
                }
            }
        })
        .await;
        if let Err(err) = removed {
            tracing::warn!(error = %err, "removing a deleted project's files failed");
        }
    }

    /// The service's log tail.
    fn tail(&self, project: &str, service: &str) -> Arc<LogTail> {
        let mut tails = self
            .inner
            .tails
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(
            tails
                .entry((project.to_owned(), service.to_owned()))
                .or_default(),
        )
    }

    /// What happens when an instance of `release` exits: nothing while it is only a
    /// candidate; once it serves, a `service.crashed` event, and `crash_loop` status when
    /// the crashes pile up.
    fn on_exit(
        &self,
        project: &str,
        service: &str,
        release: &str,
        adopted: Arc<AtomicBool>,
    ) -> instance::ExitHook {
        let platform = self.clone();
        let (project, service, release) =
            (project.to_owned(), service.to_owned(), release.to_owned());
        Arc::new(move |state: &InstanceState, transition: Transition| {
            if !adopted.load(Ordering::SeqCst) {
                return;
            }
            let (platform, project, service, release, state) = (
                platform.clone(),
                project.clone(),
                service.clone(),
                release.clone(),
                state.clone(),
            );
            tokio::spawn(async move {
                let written = platform
                    .on_db(move |db, now| {
                        db.write(|tx| {
                            let message = format!(
                                "{release} exited ({}); restart {}; last line: {}",
                                state.last_exit.as_deref().unwrap_or("unknown"),
                                state.exits,
                                state.last_error_line.as_deref().unwrap_or("(none)")
                            );
                            if transition == Transition::Recovered {
                                store::set_service_status_if(
                                    tx,
                                    &project,
                                    &service,
                                    ServiceStatus::CrashLoop,
                                    ServiceStatus::Active,
                                    now,
                                )?;
                                store::record_event(
                                    tx,
                                    &project,
                                    "service.recovered",
                                    Some(&service),
                                    &format!("{release} has stayed up since restart {}; the crash loop is over", state.exits),
                                    now,
                                )
                            } else if state.crash_loop {
                                store::set_service_status(
                                    tx,
                                    &project,
                                    &service,
                                    ServiceStatus::CrashLoop,
                                    now,
                                )?;
                                store::record_event(
                                    tx,
                                    &project,
                                    "service.crash_loop",
                                    Some(&service),
                                    &message,
                                    now,
                                )
                            } else {
                                store::record_event(
                                    tx,
                                    &project,
                                    "service.crashed",
                                    Some(&service),
                                    &message,
                                    now,
                                )
                            }
                        })
                    })
                    .await;
                if let Err(err) = written {
                    tracing::warn!(error = %err, "recording a crash failed");
                }
            });
        })
    }

    /// Makes the first admin token if there is none; its secret, shown only this once.
    pub async fn ensure_admin_token(&self) -> Result<Option<String>> {
        self.on_db(|db, now| {
            db.write(|tx| {
                let existing: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM gateway_tokens WHERE admin = 1 AND revoked_at IS NULL",
                    [],
                    |r| r.get(0),
                )?;
                if existing > 0 {
                    return Ok(None);
                }
                let secret = format!("cwy_{}", uuid::Uuid::new_v4().simple());
                let id = format!("tok_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                tx.execute(
                    "INSERT INTO gateway_tokens (id, secret_sha256, admin, created_at) VALUES (?1, ?2, 1, ?3)",
                    rusqlite::params![id, token_hash(&secret), now],
                )?;
                Ok(Some(secret))
            })
        })
        .await
    }

    /// Revokes every admin token and makes a new one (when the only copy of the secret was
    /// lost); its secret.
    pub async fn rotate_admin_token(&self) -> Result<String> {
        self.on_db(|db, now| {
            db.write(|tx| {
                tx.execute(
                    "UPDATE gateway_tokens SET revoked_at = ?1 WHERE admin = 1 AND revoked_at IS NULL",
                    [now],
                )?;
                let secret = format!("cwy_{}", uuid::Uuid::new_v4().simple());
                let id = format!("tok_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
                tx.execute(
                    "INSERT INTO gateway_tokens (id, secret_sha256, admin, created_at) VALUES (?1, ?2, 1, ?3)",
                    rusqlite::params![id, token_hash(&secret), now],
                )?;
                Ok(secret)
            })
        })
        .await
    }

    /// The project's events after `after_id`, oldest first (at most 500).
    pub async fn events_after(
        &self,
        project: &str,
        after_id: i64,
    ) -> Result<Vec<crate::model::ProjectEvent>> {
        let project = project.to_owned();
        self.on_db(move |db, _| {
            if !store::project_exists(db.conn(), &project)? {
                return Err(store::project_not_found(db.conn(), &project));
            }
            store::events_after(db.conn(), &project, after_id)
        })
        .await
    }

    /// The service's runtime log file (it may not exist yet).
    pub async fn log_file(&self, project: &str, service: &str) -> Result<PathBuf> {
        let (p, s) = (project.to_owned(), service.to_owned());
        self.on_db(move |db, _| store::require_service(db.conn(), &p, &s).map(|_| ()))
            .await?;
        Ok(self
            .data_dir()
            .join("logs")
            .join(project)
            .join(format!("{service}.log")))
    }

    /// Whether `secret` is a live token.
    pub async fn authenticate(&self, secret: &str) -> Result<bool> {
        let hash = token_hash(secret);
        self.on_db(move |db, _| {
            Ok(db
                .conn()
                .query_row(
                    "SELECT 1 FROM gateway_tokens WHERE secret_sha256 = ?1 AND revoked_at IS NULL",
                    [hash],
                    |_| Ok(()),
                )
                .is_ok())
        })
        .await
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

    fn deploy<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        archive: &'a Path,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<crate::model::DeployAccepted>> {
        // On the platform's own task: a caller that goes away between the commit and the
        // start of the build does not leave the deploy queued forever.
        let (platform, project, service, archive, key) = (
            self.clone(),
            project.to_owned(),
            service.to_owned(),
            archive.to_owned(),
            idempotency_key.map(str::to_owned),
        );
        Box::pin(async move {
            tokio::spawn(async move {
                platform
                    .accept_deploy(&project, &service, &archive, key.as_deref())
                    .await
            })
            .await
            .map_err(|err| Error::new(ErrorCode::InternalError, format!("a deploy: {err}")))?
        })
    }

    fn get_operation<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Operation>> {
        Box::pin(async move {
            let id = id.to_owned();
            self.on_db(move |db, _| store::operation(db.conn(), &id))
                .await
        })
    }

    fn operation_events<'a>(
        &'a self,
        id: &'a str,
        after_seq: i64,
    ) -> BoxFuture<'a, Result<Vec<OperationEvent>>> {
        Box::pin(async move {
            let id = id.to_owned();
            self.on_db(move |db, _| {
                store::operation(db.conn(), &id)?;
                store::operation_events(db.conn(), &id, after_seq)
            })
            .await
        })
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
                .with_hint("deleting stops every service and removes its releases, logs and env for good; pass confirm=true (`--confirm`) to go ahead"));
            }
            // Every service's lock first: no rollout, rollback or scale of the project runs
            // while it goes.
            let p = name.to_owned();
            let services = self
                .on_db(move |db, _| {
                    if !store::project_exists(db.conn(), &p)? {
                        return Ok(Vec::new());
                    }
                    Ok(store::project_state(db.conn(), &p)?.services)
                })
                .await?;
            let locks: Vec<_> = services
                .iter()
                .map(|service| self.service_lock(name, &service.name))
                .collect();
            let mut held = Vec::new();
            for lock in &locks {
                held.push(lock.lock().await);
            }
            let owned = name.to_owned();
            let key = idempotency_key.map(str::to_owned);
            let deleted = self
                .on_db(move |db, now| {
                    db.write(|tx| {
                        let name = owned;
                        let request = serde_json::json!({ "name": name, "confirm": true });
                        store::idempotent(
                            tx,
                            key.as_deref(),
                            "deleteProject",
                            &request,
                            now,
                            || store::delete_project(tx, &name),
                        )
                    })
                })
                .await?;
            self.stop_project(name).await;
            self.remove_project_repos(name).await?;
            self.forget_project_files(name).await;
            drop(held);
            // After the service locks: `add` takes the datastores' lock and then them.
            self.drop_project_datastores(name).await?;
            Ok(deleted)
        })
    }

    fn list_services<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<ServiceState>>> {
        Box::pin(self.list_services_in(project))
    }

    fn get_service<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        log_lines: usize,
    ) -> BoxFuture<'a, Result<ServiceDetail>> {
        Box::pin(self.service_detail(project, service, log_lines.min(500)))
    }

    fn rollback<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        to_release: Option<&'a str>,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ServiceDetail>> {
        Box::pin(self.rollback_service(project, service, to_release, idempotency_key))
    }

    fn restart<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ServiceDetail>> {
        Box::pin(self.restart_service(project, service, idempotency_key))
    }

    fn scale<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        replicas: u32,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ServiceDetail>> {
        Box::pin(self.scale_service(project, service, replicas, idempotency_key))
    }

    fn set_env<'a>(
        &'a self,
        project: &'a str,
        vars: &'a [(String, String)],
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<EnvChange>> {
        Box::pin(self.set_project_env(project, vars, idempotency_key))
    }

    fn list_env<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(self.list_project_env(project))
    }

    fn logs<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        lines: usize,
    ) -> BoxFuture<'a, Result<ServiceLogs>> {
        Box::pin(self.service_logs(project, service, lines))
    }

    // In process, the platform acts as its own admin; the gateway calls the `_as` forms
    // with the caller's principal.
    fn issue_token<'a>(
        &'a self,
        request: &'a crate::model::TokenRequest,
    ) -> BoxFuture<'a, Result<crate::model::IssuedToken>> {
        Box::pin(async move {
            self.issue_token_as(&Principal::admin(), request.clone())
                .await
        })
    }

    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<crate::model::TokenInfo>>> {
        Box::pin(async move { self.list_tokens_as(&Principal::admin()).await })
    }

    fn revoke_token<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<crate::model::RevokedTokens>> {
        Box::pin(async move {
            Ok(crate::model::RevokedTokens {
                revoked: self.revoke_token_as(&Principal::admin(), id).await?,
            })
        })
    }

    // ---- Git repositories (the forge), in `repos.rs` ----

    fn create_repo<'a>(
        &'a self,
        project: &'a str,
        request: &'a crate::model::RepoRequest,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<crate::model::CreatedRepo>> {
        Box::pin(self.create_repo_in(project, request, idempotency_key))
    }

    fn list_repos<'a>(
        &'a self,
        project: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::model::RepoInfo>>> {
        Box::pin(self.list_repos_in(project))
    }

    fn get_repo<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
    ) -> BoxFuture<'a, Result<crate::model::RepoInfo>> {
        Box::pin(self.repo_info(project, repo))
    }

    fn delete_repo<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        confirm: bool,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<crate::model::DeletedRepo>> {
        Box::pin(self.delete_repo_in(project, repo, confirm, idempotency_key))
    }

    fn list_refs<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::model::RepoRef>>> {
        Box::pin(self.repo_refs(project, repo))
    }

    fn list_commits<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        git_ref: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<crate::model::RepoCommit>>> {
        Box::pin(self.repo_log(project, repo, git_ref, limit))
    }

    fn get_tree<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        git_ref: Option<&'a str>,
        path: &'a str,
    ) -> BoxFuture<'a, Result<crate::model::RepoTree>> {
        Box::pin(self.repo_tree(project, repo, git_ref, path))
    }

    fn get_file<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        git_ref: Option<&'a str>,
        path: &'a str,
    ) -> BoxFuture<'a, Result<crate::model::RepoFile>> {
        Box::pin(self.repo_file(project, repo, git_ref, path))
    }

    fn commit_files<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        request: &'a crate::model::CommitRequest,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<crate::model::CommitResult>> {
        Box::pin(self.commit_repo_files(project, repo, request, idempotency_key))
    }

    // ---- Datastores, in `datastores.rs` ----

    fn add_datastore<'a>(
        &'a self,
        project: &'a str,
        kind: crate::model::DatastoreKind,
        name: Option<&'a str>,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<crate::model::AddedDatastore>> {
        Box::pin(self.add_datastore_in(project, kind, name, idempotency_key))
    }

    fn get_datastore<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<crate::model::Datastore>> {
        Box::pin(self.get_datastore_in(project, name))
    }

    fn list_datastores<'a>(
        &'a self,
        project: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::model::Datastore>>> {
        Box::pin(self.list_datastores_in(project))
    }

    fn delete_datastore<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        confirm: bool,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<crate::model::DeletedDatastore>> {
        Box::pin(self.delete_datastore_in(project, name, confirm, idempotency_key))
    }

    fn create_backup<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<crate::model::BackupInfo>> {
        Box::pin(self.create_backup_in(project, name, idempotency_key))
    }

    fn list_backups<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<crate::model::BackupInfo>>> {
        Box::pin(self.list_backups_in(project, name))
    }

    fn restore_backup<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        backup: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<crate::model::RestoredBackup>> {
        Box::pin(self.restore_backup_in(project, name, backup, idempotency_key))
    }

    fn list_tables<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<crate::model::DatastoreTables>> {
        Box::pin(self.list_tables_in(project, name))
    }

    fn query_datastore<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        query: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<crate::model::QueryResult>> {
        Box::pin(async move {
            self.query_datastore_as(&Principal::admin(), project, name, query, idempotency_key)
                .await
        })
    }

    // ---- Credits, in `credits.rs` ----

    fn credits(&self) -> BoxFuture<'_, Result<crate::credits::CreditBalance>> {
        Box::pin(self.credit_balance(OWNER_ACCOUNT))
    }

    fn credit_history(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> BoxFuture<'_, Result<crate::credits::CreditHistory>> {
        Box::pin(self.credit_history_of(OWNER_ACCOUNT, limit, before))
    }

    fn grant_credits<'a>(
        &'a self,
        request: &'a crate::credits::CreditGrant,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<crate::credits::GrantedCredits>> {
        Box::pin(async move {
            self.grant_credits_as(&Principal::admin(), request, idempotency_key)
                .await
        })
    }
}

#[cfg(test)]
mod deploy_tests;
/// The stored form of a token secret.
fn token_hash(secret: &str) -> String {
    hex::encode(<sha2::Sha256 as sha2::Digest>::digest(secret.as_bytes()))
}

#[cfg(test)]
mod lifecycle_tests;
#[cfg(test)]
mod tests;
