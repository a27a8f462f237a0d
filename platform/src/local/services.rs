//! The service verbs of the local platform: inspect (`get_service` with structured health,
//! `list_services`, `logs`), and the ones that change what runs — `rollback` (a pointer swap
//! to a built release, no rebuild), `restart`, `scale` (N replicas) and `set_env` (merged,
//! then a rolling restart of the project's running services). Each change starts the new
//! instances beside the old ones and swaps only once all of them accept connections, so a
//! failed change leaves the service as it was. One change per service at a time.

use super::deploy::{Candidate, LOG_TAIL_LINES, release_dir};
use super::instance::Instance;
use super::{LocalPlatform, store};
use crate::detect::{BuildPlan, Start};
use crate::error::{Error, ErrorCode, Result};
use crate::model::{EnvChange, Health, ServiceDetail, ServiceLogs, ServiceState, ServiceStatus};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// The most replicas a service may ask for.
pub const MAX_REPLICAS: u32 = 5;
/// The largest env value accepted, in bytes.
const MAX_ENV_VALUE: usize = 32 * 1024;

impl LocalPlatform {
    /// Starts `replicas` instances of the release (at least one) beside whatever serves now
    /// and gates each on its health; on any failure all of them are stopped and the error
    /// carries the app's log tail.
    pub(super) async fn launch(
        &self,
        project: &str,
        service: &str,
        release: &str,
        release_dir: &Path,
        start: &Start,
    ) -> Result<Vec<Candidate>> {
        let (p, s) = (project.to_owned(), service.to_owned());
        let replicas = self
            .on_db(move |db, _| {
                Ok(store::service_release(db.conn(), &p, &s)?.map_or(1, |(_, _, n)| n))
            })
            .await?
            .max(1);
        let mut candidates = Vec::new();
        for _ in 0..replicas {
            match self
                .start_candidate(project, service, release, release_dir, start)
                .await
            {
                Ok(candidate) => candidates.push(candidate),
                Err(error) => {
                    stop_all(candidates).await;
                    return Err(error);
                }
            }
        }
        for candidate in &candidates {
            if let Err(error) = self.health_gate(candidate).await {
                let tail = self.tail(project, service).last(LOG_TAIL_LINES);
                stop_all(candidates).await;
                return Err(error.with_log_tail(tail));
            }
        }
        Ok(candidates)
    }

    /// Makes the candidates the service's instances (stopping the old ones); the live URL.
    pub(super) async fn adopt(
        &self,
        project: &str,
        service: &str,
        candidates: Vec<Candidate>,
    ) -> String {
        let instances: Vec<Instance> = candidates
            .into_iter()
            .map(|candidate| {
                candidate.adopted.store(true, Ordering::SeqCst);
                candidate.instance
            })
            .collect();
        let ports: Vec<u16> = instances.iter().map(|instance| instance.port).collect();
        let url = self.live_url(project, service, &ports).unwrap_or_default();
        self.swap_instances(project, service, instances).await;
        url
    }

    /// The plan of a built release, or why it cannot start.
    async fn plan_of(&self, project: &str, service: &str, release: &str) -> Result<BuildPlan> {
        let (p, s, r) = (project.to_owned(), service.to_owned(), release.to_owned());
        let plan = self
            .on_db(move |db, _| store::release_plan(db.conn(), &p, &s, &r))
            .await?;
        plan.and_then(|text| serde_json::from_str(&text).ok())
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::Conflict,
                    format!("release {release} of {service} is not a ready release"),
                )
                .with_hint("pick a release whose status is `ready` (get_service lists them)")
            })
    }

    /// Starts `release` in place of what serves, records it as current, and answers with the
    /// service's detail.
    async fn switch_to(
        &self,
        project: &str,
        service: &str,
        release: &str,
    ) -> Result<ServiceDetail> {
        let plan = self.plan_of(project, service, release).await?;
        let dir = release_dir(self.data_dir(), project, service, release);
        let candidates = self
            .launch(project, service, release, &dir, &plan.start)
            .await?;
        let (p, s, r) = (project.to_owned(), service.to_owned(), release.to_owned());
        self.on_db(move |db, now| db.write(|tx| store::promote_release(tx, &p, &s, &r, now)))
            .await?;
        self.adopt(project, service, candidates).await;
        self.service_detail(project, service, 0).await
    }

    async fn record(
        &self,
        project: &str,
        service: Option<&str>,
        kind: &'static str,
        message: String,
    ) -> Result<()> {
        let (p, s) = (project.to_owned(), service.map(str::to_owned));
        self.on_db(move |db, now| {
            db.write(|tx| store::record_event(tx, &p, kind, s.as_deref(), &message, now))
        })
        .await
    }

    /// Runs a change under `key` (replay, or a `CONFLICT` while a request with the key still
    /// runs) on a task the platform owns: a caller that goes away mid-change (a dropped
    /// request) does not cut it off between its steps.
    pub(super) async fn change<T, F>(
        &self,
        key: Option<&str>,
        verb: &'static str,
        request: serde_json::Value,
        work: F,
    ) -> Result<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
        F: std::future::Future<Output = Result<T>> + Send + 'static,
    {
        let key = key.map(str::to_owned);
        if let Some(key) = key.clone() {
            let r = request.clone();
            if let Some(answer) = self
                .on_db(move |db, now| db.write(|tx| store::claim::<T>(tx, &key, verb, &r, now)))
                .await?
            {
                return Ok(answer);
            }
        }
        let platform = self.clone();
        tokio::spawn(async move {
            let answer = work.await;
            if let Some(key) = key {
                let settled = match &answer {
                    Ok(value) => match serde_json::to_value(value) {
                        Ok(stored) => {
                            platform
                                .on_db(move |db, now| {
                                    db.write(|tx| {
                                        store::remember(tx, &key, verb, &request, &stored, now)
                                    })
                                })
                                .await
                        }
                        Err(err) => Err(Error::new(ErrorCode::InternalError, err.to_string())),
                    },
                    Err(_) => {
                        platform
                            .on_db(move |db, _| db.write(|tx| store::release_claim(tx, &key)))
                            .await
                    }
                };
                if let Err(err) = settled {
                    tracing::warn!(verb, error = %err, "settling an idempotency key failed");
                }
            }
            answer
        })
        .await
        .map_err(|err| Error::new(ErrorCode::InternalError, format!("a {verb} change: {err}")))?
    }

    pub(super) async fn list_services_in(&self, project: &str) -> Result<Vec<ServiceState>> {
        let p = project.to_owned();
        Ok(self
            .on_db(move |db, _| store::project_state(db.conn(), &p))
            .await?
            .services)
    }

    pub(super) async fn service_detail(
        &self,
        project: &str,
        service: &str,
        log_lines: usize,
    ) -> Result<ServiceDetail> {
        let (p, s) = (project.to_owned(), service.to_owned());
        let (state, releases) = self
            .on_db(move |db, _| {
                let state = store::require_service(db.conn(), &p, &s)?;
                Ok((state, store::releases(db.conn(), &p, &s)?))
            })
            .await?;
        let (ports, health) = {
            let running = self.inner.running.lock().await;
            let instances = running
                .get(&(project.to_owned(), service.to_owned()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let ports: Vec<u16> = instances.iter().map(|i| i.port).collect();
            (ports, health_of(instances))
        };
        let direct_urls: Vec<String> = ports
            .iter()
            .map(|port| format!("http://127.0.0.1:{port}/"))
            .collect();
        Ok(ServiceDetail {
            project: project.to_owned(),
            name: state.name,
            status: state.status,
            url: self.live_url(project, service, &ports),
            direct_urls,
            replicas: state.replicas,
            current_release: state.current_release,
            previous_release: state.previous_release,
            health,
            releases,
            log_tail: if log_lines == 0 {
                Vec::new()
            } else {
                self.tail(project, service).last(log_lines)
            },
        })
    }

    pub(super) async fn rollback_service(
        &self,
        project: &str,
        service: &str,
        to: Option<&str>,
        key: Option<&str>,
    ) -> Result<ServiceDetail> {
        let request = serde_json::json!({"project": project, "service": service, "to": to});
        let (this, project, service, to) = (
            self.clone(),
            project.to_owned(),
            service.to_owned(),
            to.map(str::to_owned),
        );
        self.change(key, "rollbackService", request, async move {
            this.rollback_now(&project, &service, to.as_deref()).await
        })
        .await
    }

    async fn rollback_now(
        &self,
        project: &str,
        service: &str,
        to: Option<&str>,
    ) -> Result<ServiceDetail> {
        let lock = self.service_lock(project, service);
        let _held = lock.lock().await;
        let (p, s) = (project.to_owned(), service.to_owned());
        let (state, releases) = self
            .on_db(move |db, _| {
                Ok((
                    store::require_service(db.conn(), &p, &s)?,
                    store::releases(db.conn(), &p, &s)?,
                ))
            })
            .await?;
        let ready: Vec<String> = releases
            .iter()
            .filter(|r| r.status == "ready")
            .map(|r| r.id.clone())
            .collect();
        let target = match to {
                Some(release) if ready.iter().any(|r| r == release) => release.to_owned(),
                Some(release) => {
                    return Err(Error::new(
                        ErrorCode::NotFound,
                        format!("{service} has no ready release `{release}`"),
                    )
                    .with_hint("pick one of the ready releases listed in state")
                    .with_state(serde_json::json!({"ready_releases": ready, "current_release": state.current_release})));
                }
                None => state.previous_release.clone().ok_or_else(|| {
                    Error::new(ErrorCode::Conflict, format!("{service} has no previous release to roll back to"))
                        .with_hint("deploy a new release, or name one with `to` (get_service lists them)")
                        .with_state(serde_json::json!({"ready_releases": ready, "current_release": state.current_release}))
                })?,
            };
        if state.current_release.as_deref() == Some(target.as_str()) {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!("{service} already runs {target}"),
            )
            .with_hint("name another release with `to`, or restart the service")
            .with_state(serde_json::json!({"ready_releases": ready})));
        }
        let detail = self.switch_to(project, service, &target).await?;
        self.record(
            project,
            Some(service),
            "service.rolled_back",
            format!(
                "rolled back to {target} from {}",
                state.current_release.unwrap_or_default()
            ),
        )
        .await?;
        Ok(detail)
    }

    pub(super) async fn restart_service(
        &self,
        project: &str,
        service: &str,
        key: Option<&str>,
    ) -> Result<ServiceDetail> {
        let request = serde_json::json!({"project": project, "service": service});
        let (this, project, service) = (self.clone(), project.to_owned(), service.to_owned());
        self.change(key, "restartService", request, async move {
            this.restart_now(&project, &service).await
        })
        .await
    }

    async fn restart_now(&self, project: &str, service: &str) -> Result<ServiceDetail> {
        let lock = self.service_lock(project, service);
        let _held = lock.lock().await;
        let (p, s) = (project.to_owned(), service.to_owned());
        let state = self
            .on_db(move |db, _| store::require_service(db.conn(), &p, &s))
            .await?;
        let Some(release) = state.current_release else {
            return Err(Error::new(
                ErrorCode::Conflict,
                format!("{service} has never been deployed"),
            )
            .with_hint("deploy it first"));
        };
        let detail = self.switch_to(project, service, &release).await?;
        self.record(
            project,
            Some(service),
            "service.restarted",
            format!("restarted on {release}"),
        )
        .await?;
        Ok(detail)
    }

    pub(super) async fn scale_service(
        &self,
        project: &str,
        service: &str,
        replicas: u32,
        key: Option<&str>,
    ) -> Result<ServiceDetail> {
        if replicas > MAX_REPLICAS {
            return Err(Error::new(
                ErrorCode::QuotaExceeded,
                format!("{replicas} replicas is over this platform's limit of {MAX_REPLICAS} per service"),
            )
            .with_hint(format!("ask for {MAX_REPLICAS} or fewer"))
            .with_state(serde_json::json!({"max_replicas": MAX_REPLICAS})));
        }
        let request =
            serde_json::json!({"project": project, "service": service, "replicas": replicas});
        let (this, project, service) = (self.clone(), project.to_owned(), service.to_owned());
        self.change(key, "scaleService", request, async move {
            this.scale_now(&project, &service, replicas).await
        })
        .await
    }

    async fn scale_now(
        &self,
        project: &str,
        service: &str,
        replicas: u32,
    ) -> Result<ServiceDetail> {
        let lock = self.service_lock(project, service);
        let _held = lock.lock().await;
        let (p, s) = (project.to_owned(), service.to_owned());
        let state = self
            .on_db(move |db, _| store::require_service(db.conn(), &p, &s))
            .await?;
        let (p, s) = (project.to_owned(), service.to_owned());
        self.on_db(move |db, now| db.write(|tx| store::set_replicas(tx, &p, &s, replicas, now)))
            .await?;
        let outcome = if replicas == 0 {
            self.swap_instances(project, service, Vec::new()).await;
            let (p, s) = (project.to_owned(), service.to_owned());
            self.on_db(move |db, now| {
                db.write(|tx| store::set_service_status(tx, &p, &s, ServiceStatus::Stopped, now))
            })
            .await?;
            self.service_detail(project, service, 0).await
        } else if let Some(release) = &state.current_release {
            self.switch_to(project, service, release).await
        } else {
            // Never deployed: the count applies to the first deploy.
            self.service_detail(project, service, 0).await
        };
        if outcome.is_err() {
            // The old instances still serve; the wanted count goes back to theirs.
            let (p, s, old) = (project.to_owned(), service.to_owned(), state.replicas);
            self.on_db(move |db, now| db.write(|tx| store::set_replicas(tx, &p, &s, old, now)))
                .await?;
        }
        let detail = outcome?;
        self.record(
            project,
            Some(service),
            "service.scaled",
            format!("scaled to {replicas} replicas"),
        )
        .await?;
        Ok(detail)
    }

    pub(super) async fn set_project_env(
        &self,
        project: &str,
        vars: &[(String, String)],
        key: Option<&str>,
    ) -> Result<EnvChange> {
        for (name, value) in vars {
            validate_env(name, value)?;
        }
        if vars.is_empty() {
            return Err(Error::new(ErrorCode::InvalidInput, "no variables to set")
                .with_hint("give at least one NAME=value"));
        }
        let names: Vec<String> = vars.iter().map(|(name, _)| name.clone()).collect();
        // The request is hashed without the values, which must not be stored in the clear
        // beside the key; their digest stands in for them.
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
            serde_json::to_string(vars).unwrap_or_default().as_bytes(),
        ));
        let request =
            serde_json::json!({"project": project, "names": names, "values_sha256": digest});
        let (this, project, vars) = (self.clone(), project.to_owned(), vars.to_vec());
        self.change(key, "setEnv", request, async move {
            this.set_env_now(&project, &vars, names).await
        })
        .await
    }

    async fn set_env_now(
        &self,
        project: &str,
        vars: &[(String, String)],
        names: Vec<String>,
    ) -> Result<EnvChange> {
        let (p, v) = (project.to_owned(), vars.to_vec());
        let services = self
            .on_db(move |db, now| {
                db.write(|tx| {
                    if !store::project_exists(tx, &p)? {
                        return Err(store::project_not_found(tx, &p));
                    }
                    store::merge_env(tx, &p, &v, now)?;
                    Ok(store::project_state(tx, &p)?.services)
                })
            })
            .await?;
        let mut restarted = Vec::new();
        for service in services {
            let Some(release) = service.current_release else {
                continue;
            };
            if service.status == ServiceStatus::Stopped {
                continue;
            }
            let lock = self.service_lock(project, &service.name);
            let _held = lock.lock().await;
            if let Err(error) = self.switch_to(project, &service.name, &release).await {
                let message = format!(
                    "{} is saved, but {} did not come back healthy with it: {}",
                    names.join(", "),
                    service.name,
                    error.message
                );
                let _ = self
                    .record(
                        project,
                        Some(&service.name),
                        "env.restart_failed",
                        message.clone(),
                    )
                    .await;
                let mut failed = Error::new(error.code, message)
                    .with_hint(format!(
                        "{} still serves with the previous env; read log_tail, then fix the value with set_env (services not yet restarted pick the new env up on their next deploy or restart)",
                        service.name
                    ))
                    .with_state(serde_json::json!({
                        "env_saved": names,
                        "restarted_services": restarted,
                        "failed_service": service.name,
                    }));
                failed.log_tail = error.log_tail;
                return Err(failed);
            }
            restarted.push(service.name);
        }
        let p = project.to_owned();
        let env_names = self
            .on_db(move |db, _| store::env_names(db.conn(), &p))
            .await?;
        self.record(
            project,
            None,
            "env.set",
            format!(
                "set {}; restarted {}",
                names.join(", "),
                if restarted.is_empty() {
                    "nothing".to_owned()
                } else {
                    restarted.join(", ")
                }
            ),
        )
        .await?;
        Ok(EnvChange {
            set: names,
            env_names,
            restarted_services: restarted,
        })
    }

    pub(super) async fn list_project_env(&self, project: &str) -> Result<Vec<String>> {
        let p = project.to_owned();
        self.on_db(move |db, _| {
            if !store::project_exists(db.conn(), &p)? {
                return Err(store::project_not_found(db.conn(), &p));
            }
            store::env_names(db.conn(), &p)
        })
        .await
    }

    pub(super) async fn service_logs(
        &self,
        project: &str,
        service: &str,
        lines: usize,
    ) -> Result<ServiceLogs> {
        let (p, s) = (project.to_owned(), service.to_owned());
        let lines = lines.clamp(1, 1000);
        let build = self
            .on_db(move |db, _| {
                store::require_service(db.conn(), &p, &s)?;
                store::latest_build_lines(db.conn(), &p, &s, lines)
            })
            .await?;
        let log_file = self
            .data_dir()
            .join("logs")
            .join(project)
            .join(format!("{service}.log"));
        let runtime = tokio::task::spawn_blocking(move || last_lines(&log_file, lines))
            .await
            .map_err(|err| Error::new(ErrorCode::InternalError, err.to_string()))?;
        Ok(ServiceLogs { runtime, build })
    }

    /// The lock serialising changes to one service.
    pub(super) fn service_lock(&self, project: &str, service: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .inner
            .service_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(
            locks
                .entry((project.to_owned(), service.to_owned()))
                .or_default(),
        )
    }
}

async fn stop_all(candidates: Vec<Candidate>) {
    for candidate in candidates {
        candidate.instance.stop().await;
    }
}

/// The service's health from its live instances.
fn health_of(instances: &[Instance]) -> Health {
    if instances.is_empty() {
        return Health {
            status: "stopped".to_owned(),
            reason: None,
            restart_count: 0,
            last_error_line: None,
            suggestion: None,
        };
    }
    let states: Vec<_> = instances.iter().map(|i| i.state.borrow().clone()).collect();
    let restart_count = states.iter().map(|s| s.exits).sum();
    let last_error_line = states.iter().find_map(|s| s.last_error_line.clone());
    let crash_loop = states.iter().any(|s| s.crash_loop);
    let (status, reason) = if crash_loop {
        ("unhealthy", Some("crash_loop".to_owned()))
    } else if restart_count > 0 {
        ("healthy", Some("restarted".to_owned()))
    } else {
        ("healthy", None)
    };
    Health {
        status: status.to_owned(),
        reason,
        restart_count,
        suggestion: if crash_loop {
            Some(suggest(last_error_line.as_deref().unwrap_or("")))
        } else {
            None
        },
        last_error_line,
    }
}

/// A next step read from the app's last words.
fn suggest(line: &str) -> String {
    let quoted = |after: &str| {
        line.split(after)
            .nth(1)
            .and_then(|rest| rest.split(['\'', '"']).nth(1))
            .map(str::to_owned)
    };
    if let Some(module) = quoted("Cannot find module") {
        return format!("add '{module}' to the dependencies in package.json and deploy again");
    }
    if let Some(module) = quoted("No module named") {
        return format!("add '{module}' to requirements.txt and deploy again");
    }
    if line.contains("ddress already in use") {
        return "listen on the port in $PORT, not a fixed one".to_owned();
    }
    "read the log tail (get_service with log lines, or logs), fix the crash and deploy again; rollback returns to the previous release meanwhile".to_owned()
}

fn validate_env(name: &str, value: &str) -> Result<()> {
    let valid_name = !name.is_empty()
        && name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid_name {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("`{name}` is not a valid variable name"),
        )
        .with_hint(
            "use letters, digits and underscores, not starting with a digit, e.g. API_URL",
        ));
    }
    if name == "PORT" {
        return Err(
            Error::new(ErrorCode::InvalidInput, "PORT is set by the platform")
                .with_hint("read $PORT in the app; every instance gets its own"),
        );
    }
    if value.len() > MAX_ENV_VALUE || value.contains('\0') {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "the value of {name} is over {} KB or holds a NUL byte",
                MAX_ENV_VALUE / 1024
            ),
        )
        .with_hint("keep values small text; put files in the source instead"));
    }
    Ok(())
}

/// The most of a log file's end [`last_lines`] reads.
const LOG_READ_BYTES: u64 = 1024 * 1024;

/// The last `n` lines of a file (none when it does not exist), read from its last MB.
fn last_lines(path: &Path, n: usize) -> Vec<String> {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = file.metadata().map_or(0, |meta| meta.len());
    let start = len.saturating_sub(LOG_READ_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        // The first line was cut by the window.
        lines.remove(0);
    }
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|line| (*line).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_words_turn_into_a_next_step() {
        assert!(
            suggest("Error: Cannot find module 'express'")
                .contains("'express' to the dependencies")
        );
        assert!(
            suggest("ModuleNotFoundError: No module named 'flask'")
                .contains("'flask' to requirements.txt")
        );
        assert!(suggest("OSError: [Errno 98] Address already in use").contains("$PORT"));
        assert!(suggest("segfault").contains("log tail"));
    }

    #[test]
    fn the_last_lines_come_from_the_end_of_a_big_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.log");
        let mut text = String::new();
        for n in 0..40_000 {
            text.push_str(&format!("line {n} {}\n", "y".repeat(40)));
        }
        std::fs::write(&path, text).unwrap();
        let last = last_lines(&path, 3);
        assert_eq!(last.len(), 3);
        assert!(last[2].starts_with("line 39999 "), "{last:?}");
        assert!(last[0].starts_with("line 39997 "), "{last:?}");
        assert!(last_lines(&dir.path().join("none.log"), 3).is_empty());
    }

    #[test]
    fn env_names_and_values_are_checked() {
        validate_env("API_URL", "https://x").unwrap();
        validate_env("_private", "").unwrap();
        assert!(
            validate_env("1BAD", "x")
                .unwrap_err()
                .hint
                .contains("API_URL")
        );
        assert!(
            validate_env("PORT", "80")
                .unwrap_err()
                .hint
                .contains("$PORT")
        );
        assert!(validate_env("BIG", &"x".repeat(MAX_ENV_VALUE + 1)).is_err());
        assert!(validate_env("A-B", "x").is_err());
    }
}
