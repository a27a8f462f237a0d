//! A deploy on the local platform, from accepted to healthy (seed 000's phases):
//!
//! - **queued**: the archive is copied into the data directory and the operation recorded;
//!   one deploy per service at a time (a second is a `CONFLICT` naming the first).
//! - **building**: the archive's SHA-256 names the release (`rel_` + 16 hex digits); it is
//!   unpacked into its own directory, the build plan detected, and the build command run
//!   (30 minutes at most, every line into the operation's stream). An identical source
//!   already built is reused, not rebuilt.
//! - **pushing**: the built release is recorded, immutable from here on.
//! - **rolling_out**: the release starts on a fresh port beside what serves now, and must
//!   accept connections on `$PORT` within the health timeout.
//! - **healthy**: the service points at the new release (the old one becomes the rollback
//!   target) and the old instances stop. Otherwise the new one is stopped, the old one never
//!   stopped serving, and the deploy fails `HEALTH_CHECK_FAILED` (`rolled_back` when there
//!   was an old one) with the app's last lines.

use super::instance::{Instance, InstanceSpec, LogTail, free_port, pump_lines, shell, stop_group};
use super::{LocalPlatform, store};
use crate::detect::{self, BuildPlan, Start};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{DeployAccepted, DeployResult, Phase, ServiceStatus, validate_name};
use crate::source;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The lines of a failed build or app inlined in its error (seed 002).
pub const LOG_TAIL_LINES: usize = 30;
/// The most services a project may have.
pub const MAX_SERVICES: u32 = 10;
/// The most deploys a project may have in flight at once.
pub const MAX_BUILDS_IN_FLIGHT: u32 = 2;
/// The marker a fully built release directory carries.
const BUILT_MARKER: &str = ".conway-release.json";

/// Reads the release marker, refusing a symlink.
fn read_marker(marker: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut text = String::new();
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(marker)?
        .take(64 * 1024)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// Writes the release marker as a new file: whatever the build left at its name (a symlink
/// to a file of the platform's user) is removed, never written through.
fn write_marker(marker: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    match std::fs::remove_file(marker) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(marker)?
        .write_all(text.as_bytes())
}

impl LocalPlatform {
    /// Accepts a deploy of the packed source at `archive` to `project`/`service` and runs it
    /// in the background; poll [`crate::Platform::get_operation`] or read its events.
    pub(crate) async fn accept_deploy(
        &self,
        project: &str,
        service: &str,
        archive: &Path,
        idempotency_key: Option<&str>,
    ) -> Result<DeployAccepted> {
        validate_name("project", project)?;
        validate_name("service", service)?;
        let operation = format!("op_{}", uuid::Uuid::new_v4().simple());
        let stored = self
            .data_dir()
            .join("uploads")
            .join(format!("{operation}.tgz"));
        let sha256 = {
            let (archive, stored) = (archive.to_owned(), stored.clone());
            blocking(move || store_upload(&archive, &stored)).await?
        };
        let (project_name, service_name) = (project.to_owned(), service.to_owned());
        let key = idempotency_key.map(str::to_owned);
        let op = operation.clone();
        let accepted = self
            .on_db(move |db, now| {
                db.write(|tx| {
                    let request = serde_json::json!({"project": project_name, "service": service_name, "sha256": sha256});
                    store::idempotent(tx, key.as_deref(), "createDeploy", &request, now, || {
                        if !store::project_exists(tx, &project_name)? {
                            return Err(store::project_not_found(tx, &project_name));
                        }
                        if let Some(running) = store::operation_in_flight(tx, &project_name, &service_name)? {
                            return Err(Error::new(
                                ErrorCode::Conflict,
                                format!("a deploy of {service_name} is already in progress ({running})"),
                            )
                            .with_hint("wait for it to finish (poll the operation), then deploy again")
                            .with_state(serde_json::json!({"operation_id": running})));
                        }
                        let services = store::project_state(tx, &project_name)?.services;
                        if !services.iter().any(|s| s.name == service_name)
                            && services.len() >= MAX_SERVICES as usize
                        {
                            return Err(Error::new(
                                ErrorCode::QuotaExceeded,
                                format!("project {project_name} already has {MAX_SERVICES} services, its limit"),
                            )
                            .with_hint("deploy to an existing service, or delete one you no longer need")
                            .with_state(serde_json::json!({"services": services.iter().map(|s| s.name.clone()).collect::<Vec<_>>()})));
                        }
                        // `<service>-<project>` must name one service: `web-api`/`shop` and
                        // `web`/`api-shop` would share a live URL.
                        let host = super::proxy::host_for(&project_name, &service_name);
                        let taken: Option<(String, String)> = tx
                            .prepare("SELECT project, name FROM services")?
                            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                            .filter_map(std::result::Result::ok)
                            .find(|(p, s)| {
                                (p != &project_name || s != &service_name)
                                    && super::proxy::host_for(p, s) == host
                            });
                        if let Some((p, s)) = taken {
                            return Err(Error::new(
                                ErrorCode::Conflict,
                                format!("service {service_name} of {project_name} would share the live URL {host} with service {s} of {p}"),
                            )
                            .with_hint("pick another service name (the URL is <service>-<project>.localhost)")
                            .with_state(serde_json::json!({"host": host, "taken_by": {"project": p, "service": s}})));
                        }
                        let building = store::builds_in_flight(tx, &project_name)?;
                        if building >= MAX_BUILDS_IN_FLIGHT {
                            return Err(Error::new(
                                ErrorCode::QuotaExceeded,
                                format!("project {project_name} already has {building} deploys in flight, its limit"),
                            )
                            .with_hint("wait for one to finish (poll its operation), then deploy again")
                            .retryable_anyway());
                        }
                        store::ensure_service(tx, &project_name, &service_name, now)?;
                        store::insert_operation(tx, &op, "deploy", &project_name, &service_name, now)?;
                        store::set_service_status(tx, &project_name, &service_name, ServiceStatus::Queued, now)?;
                        store::record_event(tx, &project_name, "deploy.started", Some(&service_name), &format!("deploy {op} accepted"), now)?;
                        Ok(DeployAccepted {
                            stream_url: format!("/v1/operations/{op}/stream"),
                            operation_id: op.clone(),
                            project: project_name.clone(),
                            service: service_name.clone(),
                        })
                    })
                })
            })
            .await;
        let accepted = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                let _ = tokio::fs::remove_file(&stored).await;
                return Err(err);
            }
        };
        if accepted.operation_id != operation {
            // A replayed idempotency key: the first deploy already runs or ran.
            let _ = tokio::fs::remove_file(&stored).await;
            return Ok(accepted);
        }
        let platform = self.clone();
        let (project, service) = (project.to_owned(), service.to_owned());
        tokio::spawn(async move {
            platform
                .run_deploy(&operation, &project, &service, &stored)
                .await;
            let _ = tokio::fs::remove_file(&stored).await;
        });
        Ok(accepted)
    }

    async fn run_deploy(&self, operation: &str, project: &str, service: &str, archive: &Path) {
        let started = self.inner.clock.now_ms();
        let (phase, outcome) = match self
            .deploy_phases(operation, project, service, archive)
            .await
        {
            Ok((release, url, plan)) => {
                let result = DeployResult {
                    release,
                    url,
                    provider: plan.provider,
                    duration_ms: self.inner.clock.now_ms() - started,
                };
                (
                    Phase::Healthy,
                    serde_json::to_value(result)
                        .map_err(|err| Error::new(ErrorCode::InternalError, err.to_string())),
                )
            }
            Err((phase, error)) => (phase, Err(error)),
        };
        let (op, project_name, service_name) =
            (operation.to_owned(), project.to_owned(), service.to_owned());
        let recorded = self
            .on_db(move |db, now| {
                db.write(|tx| {
                    store::finish_operation(tx, &op, phase, &outcome, now)?;
                    let (kind, message) = match &outcome {
                        Ok(_) => ("deploy.succeeded", format!("deploy {op} is healthy")),
                        Err(error) => (
                            "deploy.failed",
                            format!("deploy {op} failed: {}", error.message),
                        ),
                    };
                    if outcome.is_err() {
                        let current = store::service_release(tx, &project_name, &service_name)?;
                        let status = match current {
                            Some((Some(_), _, _)) => ServiceStatus::Active,
                            _ => ServiceStatus::Failed,
                        };
                        store::set_service_status(tx, &project_name, &service_name, status, now)?;
                    }
                    store::record_event(tx, &project_name, kind, Some(&service_name), &message, now)
                })
            })
            .await;
        if let Err(err) = recorded {
            tracing::error!(operation, error = %err, "recording the end of a deploy failed");
        }
    }

    /// The phases; on failure, the phase it ended in and why.
    async fn deploy_phases(
        &self,
        operation: &str,
        project: &str,
        service: &str,
        archive: &Path,
    ) -> std::result::Result<(String, String, BuildPlan), (Phase, Error)> {
        let failed = |error: Error| (Phase::Failed, error);
        self.enter(
            operation,
            project,
            service,
            Phase::Building,
            ServiceStatus::Building,
        )
        .await
        .map_err(failed)?;
        let (sha256, _) = {
            let archive = archive.to_owned();
            blocking(move || source::digest(&archive))
                .await
                .map_err(failed)?
        };
        let release = format!("rel_{}", &sha256[..16]);
        let release_dir = release_dir(self.data_dir(), project, service, &release);
        let plan = self
            .build_release(operation, project, &release_dir, archive)
            .await
            .map_err(failed)?;

        self.enter(
            operation,
            project,
            service,
            Phase::Pushing,
            ServiceStatus::Building,
        )
        .await
        .map_err(failed)?;
        let plan_json = serde_json::to_string(&plan).ok();
        let (p, s, r, sha) = (
            project.to_owned(),
            service.to_owned(),
            release.clone(),
            sha256.clone(),
        );
        self.on_db(move |db, now| {
            db.write(|tx| store::record_release(tx, (&p, &s), &r, &sha, plan_json.as_deref(), now))
        })
        .await
        .map_err(failed)?;

        self.enter(
            operation,
            project,
            service,
            Phase::RollingOut,
            ServiceStatus::Deploying,
        )
        .await
        .map_err(failed)?;
        let lock = self.service_lock(project, service);
        let held = lock.lock().await;
        let serving_before = self.serving_release(project, service).await;
        let launched = self
            .launch(project, service, &release, &release_dir, &plan.start)
            .await;
        let instances = match launched {
            Ok(instances) => instances,
            Err(error) => {
                let (r, p, s) = (release.clone(), project.to_owned(), service.to_owned());
                let _ = self
                    .on_db(move |db, _| db.write(|tx| store::mark_release_failed(tx, &p, &s, &r)))
                    .await;
                let phase = if serving_before.is_some() {
                    Phase::RolledBack
                } else {
                    Phase::Failed
                };
                let error = match serving_before {
                    Some(serving) => error
                        .with_hint(format!(
                            "the app must listen on 0.0.0.0:$PORT (or 127.0.0.1:$PORT); read log_tail, fix it and deploy again — {serving} keeps serving meanwhile"
                        ))
                        .with_state(serde_json::json!({"serving_release": serving, "failed_release": release})),
                    None => error.with_state(serde_json::json!({"failed_release": release})),
                };
                return Err((phase, error));
            }
        };
        let (p, s, r) = (project.to_owned(), service.to_owned(), release.clone());
        self.on_db(move |db, now| db.write(|tx| store::promote_release(tx, &p, &s, &r, now)))
            .await
            .map_err(failed)?;
        let url = self.adopt(project, service, instances).await;
        drop(held);
        Ok((release, url, plan))
    }

    /// Records the phase in the operation and the status on the service.
    async fn enter(
        &self,
        operation: &str,
        project: &str,
        service: &str,
        phase: Phase,
        status: ServiceStatus,
    ) -> Result<()> {
        let (op, p, s) = (operation.to_owned(), project.to_owned(), service.to_owned());
        self.on_db(move |db, now| {
            db.write(|tx| {
                store::set_phase(tx, &op, phase, now)?;
                store::set_service_status(tx, &p, &s, status, now)
            })
        })
        .await
    }

    /// Unpacks and builds the release unless an identical one is already built; its plan.
    async fn build_release(
        &self,
        operation: &str,
        project: &str,
        release_dir: &Path,
        archive: &Path,
    ) -> Result<BuildPlan> {
        let marker = release_dir.join(BUILT_MARKER);
        // The release directory is the build's and the app's to write: the marker is read and
        // written without following a symlink they left in its place.
        if let Ok(text) = blocking({
            let marker = marker.clone();
            move || read_marker(&marker).map_err(|err| internal("reading the marker", &err))
        })
        .await
            && let Ok(plan) = serde_json::from_str::<BuildPlan>(&text)
        {
            self.log(
                operation,
                vec!["this exact source is already built; reusing the release".to_owned()],
            )
            .await;
            return Ok(plan);
        }
        let (dir, archive_path) = (release_dir.to_owned(), archive.to_owned());
        let (files, plan) = blocking(move || {
            if dir.exists() {
                // A build that did not finish: start it over.
                std::fs::remove_dir_all(&dir)
                    .map_err(|err| internal("clearing a failed build", &err))?;
            }
            let files = source::unpack(&archive_path, &dir)?;
            Ok((files, detect::detect(&dir)?))
        })
        .await?;
        self.log(
            operation,
            vec![format!(
                "unpacked {files} files; provider {:?}; build: {}",
                plan.provider,
                plan.build.as_deref().unwrap_or("(none)")
            )],
        )
        .await;
        if let Some(command) = &plan.build {
            self.run_build(operation, project, release_dir, command)
                .await?;
        }
        let text = serde_json::to_string(&plan)
            .map_err(|err| Error::new(ErrorCode::InternalError, err.to_string()))?;
        blocking(move || {
            write_marker(&marker, &text).map_err(|err| internal("recording the build", &err))
        })
        .await?;
        Ok(plan)
    }

    /// Runs the build command with the project env, streaming its lines into the operation.
    async fn run_build(
        &self,
        operation: &str,
        project: &str,
        dir: &Path,
        command: &str,
    ) -> Result<()> {
        let p = project.to_owned();
        let env = self
            .on_db(move |db, _| store::env_values(db.conn(), &p))
            .await?;
        let mut child = shell(
            command,
            dir,
            &env,
            self.inner.options.confine_with.as_deref(),
            &[],
        )
        .spawn()
        .map_err(|err| internal("starting the build", &err))?;
        let build_group = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .and_then(rustix::process::Pid::from_raw);
        let tail = Arc::new(LogTail::default());
        let pending: Arc<Mutex<Vec<String>>> = Arc::default();
        let on_line: super::instance::LineSink = {
            let pending = Arc::clone(&pending);
            Arc::new(move |line: &str| {
                pending
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(line.to_owned());
            })
        };
        let pumps = [
            child.stdout.take().map(|pipe| {
                tokio::spawn(pump_lines(
                    pipe,
                    String::new(),
                    Arc::clone(&tail),
                    None,
                    Some(Arc::clone(&on_line)),
                ))
            }),
            child.stderr.take().map(|pipe| {
                tokio::spawn(pump_lines(
                    pipe,
                    String::new(),
                    Arc::clone(&tail),
                    None,
                    Some(Arc::clone(&on_line)),
                ))
            }),
        ];
        let deadline = tokio::time::sleep(self.inner.options.build_timeout);
        tokio::pin!(deadline);
        let mut flush = tokio::time::interval(Duration::from_millis(250));
        let status = loop {
            tokio::select! {
                status = child.wait() => break Some(status),
                () = &mut deadline => break None,
                _ = flush.tick() => {
                    let lines = std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner));
                    self.log(operation, lines).await;
                }
            }
        };
        if status.is_none() {
            stop_group(&mut child).await;
        } else if let Some(group) = build_group {
            // What the build left running in its group (`cmd &`) ends with it: nothing of a
            // build outlives it with the project's env and write access to the release.
            let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        }
        for pump in pumps.into_iter().flatten() {
            let _ = tokio::time::timeout(Duration::from_secs(2), pump).await;
        }
        let lines = std::mem::take(&mut *pending.lock().unwrap_or_else(PoisonError::into_inner));
        self.log(operation, lines).await;
        match status {
            None => Err(Error::new(
                ErrorCode::Timeout,
                format!(
                    "the build ran past {} minutes and was stopped",
                    self.inner.options.build_timeout.as_secs() / 60
                ),
            )
            .with_log_tail(tail.last(LOG_TAIL_LINES))),
            Some(Ok(status)) if status.success() => Ok(()),
            Some(Ok(status)) => Err(Error::new(
                ErrorCode::BuildCommandFailed,
                format!("the build command `{command}` failed ({status})"),
            )
            .with_hint("read log_tail, fix the source (or `build` in conway.toml) and deploy again")
            .with_log_tail(tail.last(LOG_TAIL_LINES))),
            Some(Err(err)) => Err(internal("waiting for the build", &err)),
        }
    }

    /// Appends log lines to the operation's stream (one transaction for the batch).
    async fn log(&self, operation: &str, lines: Vec<String>) {
        if lines.is_empty() {
            return;
        }
        let op = operation.to_owned();
        let written = self
            .on_db(move |db, now| {
                db.write(|tx| {
                    for line in &lines {
                        store::push_event(tx, &op, "log", &serde_json::json!({"line": line}), now)?;
                    }
                    Ok(())
                })
            })
            .await;
        if let Err(err) = written {
            tracing::warn!(operation, error = %err, "an operation's log lines were not recorded");
        }
    }

    /// Starts the release on a fresh port, not yet serving the service.
    pub(super) async fn start_candidate(
        &self,
        project: &str,
        service: &str,
        release: &str,
        release_dir: &Path,
        start: &Start,
    ) -> Result<Candidate> {
        let p = project.to_owned();
        let (env, also_writable) = self
            .on_db(move |db, _| {
                Ok((
                    store::env_values(db.conn(), &p)?,
                    store::sqlite_datastore_dirs(db.conn(), &p)?,
                ))
            })
            .await?;
        let port = free_port().map_err(|err| internal("finding a free port", &err))?;
        let logs = self.data_dir().join("logs").join(project);
        tokio::fs::create_dir_all(&logs)
            .await
            .map_err(|err| internal("creating the log directory", &err))?;
        let adopted = Arc::new(AtomicBool::new(false));
        let spec = InstanceSpec {
            release_dir: release_dir.to_owned(),
            release: release.to_owned(),
            start: start.clone(),
            port,
            env,
            log_file: logs.join(format!("{service}.log")),
            tail: self.tail(project, service),
            stable_after: self.inner.options.stable_after,
            confine_with: self.inner.options.confine_with.clone(),
            also_writable,
            processes: self.process_hook(project, service, release),
        };
        let on_exit = self.on_exit(project, service, release, Arc::clone(&adopted));
        Ok(Candidate {
            instance: Instance::start(spec, on_exit),
            adopted,
        })
    }

    /// Waits until the candidate accepts connections on its port; fails fast when it exits.
    pub(super) async fn health_gate(&self, candidate: &Candidate) -> Result<()> {
        let timeout = self.inner.options.health_timeout;
        let started = tokio::time::Instant::now();
        // Probe often at first (a static site or a fast app listens within milliseconds),
        // then every 50 ms.
        let mut pause = Duration::from_millis(2);
        loop {
            if candidate.instance.has_exited() {
                let state = candidate.instance.state.borrow().clone();
                return Err(Error::new(
                    ErrorCode::HealthCheckFailed,
                    format!(
                        "the app exited before it listened on $PORT ({})",
                        state.last_exit.unwrap_or_default()
                    ),
                ));
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", candidate.instance.port))
                .await
                .is_ok()
            {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(Error::new(
                    ErrorCode::HealthCheckFailed,
                    format!(
                        "the app did not listen on $PORT ({}) within {} s",
                        candidate.instance.port,
                        timeout.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// A release started for its health gate; `adopted` turns true once it serves the service.
pub(super) struct Candidate {
    pub(super) instance: Instance,
    pub(super) adopted: Arc<AtomicBool>,
}

/// Checks the archive's size, takes it into the platform's uploads (a hard link when it
/// lies on the same file system, else one copy) and digests it; its SHA-256.
fn store_upload(archive: &Path, stored: &Path) -> Result<String> {
    let (sha256, bytes) = source::digest(archive)?;
    if bytes > source::MAX_SOURCE_BYTES {
        return Err(Error::new(
            ErrorCode::SourceTooLarge,
            format!(
                "the source archive is {} MB, over the 512 MB limit",
                bytes / (1024 * 1024)
            ),
        )
        .with_hint(
            "exclude build output and dependencies with a .conwayignore at the source root",
        ));
    }
    if let Some(dir) = stored.parent() {
        std::fs::create_dir_all(dir).map_err(|err| internal("storing the upload", &err))?;
    }
    if std::fs::hard_link(archive, stored).is_err() {
        std::fs::copy(archive, stored).map_err(|err| internal("storing the upload", &err))?;
    }
    Ok(sha256)
}

/// Runs blocking file work on the blocking pool.
pub(super) async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::new(ErrorCode::InternalError, format!("platform task: {err}")))?
}

fn internal(doing: &str, err: &std::io::Error) -> Error {
    Error::new(ErrorCode::InternalError, format!("{doing}: {err}"))
}

/// Where the release of `service` lives under the data directory.
pub fn release_dir(data_dir: &Path, project: &str, service: &str, release: &str) -> PathBuf {
    data_dir
        .join("releases")
        .join(project)
        .join(service)
        .join(release)
}
