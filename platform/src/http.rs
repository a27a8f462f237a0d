//! `HttpPlatform`: the client of a Conway gateway's REST API (seed 000) — a real Conway
//! endpoint, or the local platform's gateway (`automaton platform serve`). Bearer token on
//! every call; the gateway's `{code, message, hint, retryable}` errors come back as they
//! are; transient failures (connection refused, 408, 429, 5xx, retryable codes — a 429 from
//! a proxy with a plain-text body too) are retried with backoff, never sooner than the
//! server's `Retry-After`, and a circuit breaker (`automaton_tools::resilience`); and every mutating call
//! carries an idempotency key — the caller's, or a fresh one per call kept across its
//! retries — so a retry never does the work twice.

use crate::api::Platform;
use crate::credits::{CreditBalance, CreditGrant, CreditHistory, GrantedCredits};
use crate::error::{Error, ErrorCode, HttpFailure, Result};
use crate::model::{
    AddedDatastore, BackupInfo, Datastore, DatastoreKind, DatastoreTables, DeletedDatastore,
    QueryResult, RestoredBackup,
};
use crate::model::{
    CommitRequest, CommitResult, CreatedRepo, DeletedRepo, RepoCommit, RepoFile, RepoInfo, RepoRef,
    RepoRequest, RepoTree,
};
use crate::model::{
    CreatedProject, DeletedProject, DeployAccepted, EnvChange, IssuedToken, Operation,
    OperationEvent, ProjectState, ProjectSummary, RevokedTokens, ServiceDetail, ServiceLogs,
    ServiceState, TokenInfo, TokenRequest,
};
use automaton_tools::clock::SystemClock;
use automaton_tools::resilience::{
    BreakerConfig, CircuitBreaker, Classify, FailureKind, RetryError, RetryPolicy,
    parse_retry_after, retry,
};
use automaton_tools::tool::BoxFuture;
use serde::de::DeserializeOwned;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

impl Classify for Error {
    fn failure_kind(&self) -> FailureKind {
        if self.retryable {
            FailureKind::Transient {
                retry_after: self.http.and_then(|http| http.retry_after),
            }
        } else {
            FailureKind::Permanent
        }
    }
}

/// Whether an HTTP status says the same request may succeed later, whatever the body says:
/// a timeout, a rate limit or an unavailable server. Other 5xx are transient unless the
/// gateway's own error says otherwise (it marks a failure a retry would repeat).
fn transient_status(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 503)
}

/// The REST client.
pub struct HttpPlatform {
    base: String,
    token: String,
    client: reqwest::Client,
    retry: RetryPolicy,
    breaker: CircuitBreaker,
}

impl std::fmt::Debug for HttpPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never printed.
        f.debug_struct("HttpPlatform")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

/// A request to build: method, path under the base, optional JSON or file body.
enum Body<'a> {
    None,
    Json(serde_json::Value),
    File(&'a Path),
}

impl HttpPlatform {
    /// A client of the gateway at `endpoint` (e.g. `http://127.0.0.1:7878`) with `token`.
    pub fn new(endpoint: &str, token: &str) -> Result<Self> {
        Self::with_retry(endpoint, token, RetryPolicy::default())
    }

    /// [`Self::new`] with another retry policy.
    pub fn with_retry(endpoint: &str, token: &str, retry: RetryPolicy) -> Result<Self> {
        let base = endpoint.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("the Conway endpoint `{endpoint}` is not an http(s) URL"),
            )
            .with_hint(
                "set CONWAY_ENDPOINT to the gateway's base URL, e.g. https://api.example.com",
            ));
        }
        if token.trim().is_empty() {
            return Err(
                Error::new(ErrorCode::Unauthenticated, "no Conway token is set")
                    .with_hint("set CONWAY_TOKEN to a token the gateway issued"),
            );
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| Error::new(ErrorCode::InternalError, format!("HTTP client: {err}")))?;
        Ok(Self {
            base,
            token: token.trim().to_owned(),
            client,
            retry,
            breaker: CircuitBreaker::new(BreakerConfig::default(), Arc::new(SystemClock)),
        })
    }

    /// The gateway's base URL.
    pub fn endpoint(&self) -> &str {
        &self.base
    }

    /// Sends the request (retrying transient failures) and decodes the answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Body<'_>,
        mutating: bool,
        idempotency_key: Option<&str>,
    ) -> Result<T> {
        let key = if mutating {
            Some(idempotency_key.map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned))
        } else {
            None
        };
        let url = format!("{}{path}", self.base);
        let outcome = retry(&self.retry, Some(&self.breaker), |_| {
            self.once(method.clone(), &url, &body, key.as_deref())
        })
        .await;
        outcome.map_err(|err| match err {
            RetryError::Exhausted { last, .. } | RetryError::Permanent(last) => last,
            RetryError::BreakerOpen(open) => Error::new(
                ErrorCode::InternalError,
                format!(
                    "the Conway gateway at {} keeps failing; calls are paused",
                    self.base
                ),
            )
            .with_hint(format!("try again in {} s", open.retry_in.as_secs().max(1))),
        })
    }

    async fn once<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        url: &str,
        body: &Body<'_>,
        key: Option<&str>,
    ) -> Result<T> {
        let mut request = self.client.request(method, url).bearer_auth(&self.token);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        request = match body {
            Body::None => request,
            Body::Json(value) => request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(value.to_string()),
            Body::File(path) => {
                let file = tokio::fs::File::open(path).await.map_err(|err| {
                    Error::new(
                        ErrorCode::InvalidInput,
                        format!("the source archive cannot be read: {err}"),
                    )
                })?;
                request
                    .header(reqwest::header::CONTENT_TYPE, "application/gzip")
                    .body(reqwest::Body::wrap_stream(
                        tokio_util::io::ReaderStream::new(file),
                    ))
            }
        };
        // A connection that fails or breaks is retried like a 503: mutating requests carry an
        // idempotency key, so one the gateway did receive is not done twice. (A gateway that
        // refuses an upload early and closes the connection can also surface here first.)
        let response = request.send().await.map_err(|err| {
            Error::new(
                ErrorCode::InternalError,
                format!("the Conway gateway at {} cannot be reached: {err}", self.base),
            )
            .with_hint("check CONWAY_ENDPOINT, or start the local platform with `automaton platform serve`")
            .retryable_anyway()
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let text = response.text().await.map_err(|err| {
            Error::new(
                ErrorCode::InternalError,
                format!("the gateway's answer was cut off: {err}"),
            )
        })?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|err| {
                Error::new(
                    ErrorCode::InternalError,
                    format!("the gateway answered {status} with a body this client does not understand: {err}"),
                )
                .with_hint("the gateway may speak another version of the API; check /v1/openapi.yaml")
            });
        }
        // A body that is not the gateway's error came from something in front of it (a
        // proxy, a load balancer): the status is all there is to go by.
        let mut error = serde_json::from_str::<Error>(&text).unwrap_or_else(|_| {
            let snippet: String = text.chars().take(200).collect();
            let message = format!("the gateway answered {status}: {snippet}");
            match status.as_u16() {
                408 => Error::new(ErrorCode::Timeout, message)
                    .with_hint("the request timed out on the way; it is retried"),
                429 => Error::new(ErrorCode::QuotaExceeded, message)
                    .with_hint("the gateway is limiting the rate of calls; wait as long as its Retry-After says, then retry")
                    .retryable_anyway(),
                401 => Error::new(ErrorCode::Unauthenticated, message),
                404 => Error::new(ErrorCode::NotFound, message),
                _ if status.is_server_error() => Error::new(ErrorCode::InternalError, message),
                _ => Error::new(ErrorCode::InvalidInput, message),
            }
        });
        if transient_status(status) {
            error.retryable = true;
        }
        error.http = Some(HttpFailure {
            status: status.as_u16(),
            retry_after,
        });
        Err(error)
    }
}

/// A path segment, percent-encoded.
fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[derive(serde::Deserialize)]
struct Projects {
    projects: Vec<ProjectSummary>,
}

#[derive(serde::Deserialize)]
struct Services {
    services: Vec<ServiceState>,
}

#[derive(serde::Deserialize)]
struct EnvNames {
    names: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Datastores {
    datastores: Vec<Datastore>,
}

#[derive(serde::Deserialize)]
struct Backups {
    backups: Vec<BackupInfo>,
}

/// The path of a project's datastore (and what follows it).
fn datastore_path(project: &str, name: &str, rest: &str) -> String {
    format!(
        "/v1/projects/{}/datastores/{}{rest}",
        segment(project),
        segment(name)
    )
}

impl Platform for HttpPlatform {
    fn create_project<'a>(
        &'a self,
        name: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CreatedProject>> {
        Box::pin(self.call(
            reqwest::Method::POST,
            "/v1/projects",
            Body::Json(serde_json::json!({ "name": name })),
            true,
            idempotency_key,
        ))
    }

    fn get_project<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<ProjectState>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::GET,
                &format!("/v1/projects/{}", segment(name)),
                Body::None,
                false,
                None,
            )
            .await
        })
    }

    fn list_projects(&self) -> BoxFuture<'_, Result<Vec<ProjectSummary>>> {
        Box::pin(async move {
            let projects: Projects = self
                .call(
                    reqwest::Method::GET,
                    "/v1/projects",
                    Body::None,
                    false,
                    None,
                )
                .await?;
            Ok(projects.projects)
        })
    }

    fn delete_project<'a>(
        &'a self,
        name: &'a str,
        confirm: bool,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeletedProject>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::DELETE,
                &format!("/v1/projects/{}?confirm={confirm}", segment(name)),
                Body::None,
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn deploy<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        archive: &'a Path,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeployAccepted>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::POST,
                &format!(
                    "/v1/projects/{}/services/{}/deploys",
                    segment(project),
                    segment(service)
                ),
                Body::File(archive),
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn get_operation<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Operation>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::GET,
                &format!("/v1/operations/{}", segment(id)),
                Body::None,
                false,
                None,
            )
            .await
        })
    }

    fn operation_events<'a>(
        &'a self,
        id: &'a str,
        after_seq: i64,
    ) -> BoxFuture<'a, Result<Vec<OperationEvent>>> {
        Box::pin(async move {
            // The SSE stream replays from the start; events up to `done` (or what exists
            // now, when the operation is still running) are read and the connection closed.
            let operation = self.get_operation(id).await?;
            let url = format!("{}/v1/operations/{}/stream", self.base, segment(id));
            let mut request = self.client.get(&url).bearer_auth(&self.token);
            if after_seq > 0 {
                request = request.header("Last-Event-ID", after_seq.to_string());
            }
            let mut response = request.send().await.map_err(|err| {
                Error::new(
                    ErrorCode::InternalError,
                    format!("the operation stream cannot be read: {err}"),
                )
            })?;
            let mut buffer = String::new();
            let mut events = Vec::new();
            let idle = Duration::from_millis(if operation.status.is_done() {
                5_000
            } else {
                300
            });
            loop {
                let chunk = match tokio::time::timeout(idle, response.chunk()).await {
                    Ok(Ok(Some(chunk))) => chunk,
                    Ok(Ok(None)) | Err(_) => break,
                    Ok(Err(err)) => {
                        return Err(Error::new(
                            ErrorCode::InternalError,
                            format!("the operation stream broke: {err}"),
                        ));
                    }
                };
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    if let Some(event) = parse_sse(&block) {
                        let done = event.kind == "done";
                        events.push(event);
                        if done {
                            return Ok(events);
                        }
                    }
                }
            }
            Ok(events)
        })
    }

    fn list_services<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<ServiceState>>> {
        Box::pin(async move {
            let services: Services = self
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/projects/{}/services", segment(project)),
                    Body::None,
                    false,
                    None,
                )
                .await?;
            Ok(services.services)
        })
    }

    fn get_service<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        log_lines: usize,
    ) -> BoxFuture<'a, Result<ServiceDetail>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::GET,
                &format!(
                    "/v1/projects/{}/services/{}?log_lines={log_lines}",
                    segment(project),
                    segment(service)
                ),
                Body::None,
                false,
                None,
            )
            .await
        })
    }

    fn rollback<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        to_release: Option<&'a str>,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ServiceDetail>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::POST,
                &format!(
                    "/v1/projects/{}/services/{}/rollback",
                    segment(project),
                    segment(service)
                ),
                Body::Json(serde_json::json!({ "to": to_release })),
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn restart<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ServiceDetail>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::POST,
                &format!(
                    "/v1/projects/{}/services/{}/restart",
                    segment(project),
                    segment(service)
                ),
                Body::None,
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn scale<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        replicas: u32,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ServiceDetail>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::PATCH,
                &format!(
                    "/v1/projects/{}/services/{}",
                    segment(project),
                    segment(service)
                ),
                Body::Json(serde_json::json!({ "replicas": replicas })),
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn set_env<'a>(
        &'a self,
        project: &'a str,
        vars: &'a [(String, String)],
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<EnvChange>> {
        Box::pin(async move {
            let map: serde_json::Map<String, serde_json::Value> = vars
                .iter()
                .map(|(name, value)| (name.clone(), serde_json::Value::String(value.clone())))
                .collect();
            self.call(
                reqwest::Method::PUT,
                &format!("/v1/projects/{}/env", segment(project)),
                Body::Json(serde_json::json!({ "vars": map })),
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn list_env<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            let names: EnvNames = self
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/projects/{}/env", segment(project)),
                    Body::None,
                    false,
                    None,
                )
                .await?;
            Ok(names.names)
        })
    }

    fn logs<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        lines: usize,
    ) -> BoxFuture<'a, Result<ServiceLogs>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::GET,
                &format!(
                    "/v1/projects/{}/services/{}/logs?lines={lines}",
                    segment(project),
                    segment(service)
                ),
                Body::None,
                false,
                None,
            )
            .await
        })
    }

    fn issue_token<'a>(&'a self, request: &'a TokenRequest) -> BoxFuture<'a, Result<IssuedToken>> {
        Box::pin(async move {
            let body = serde_json::to_value(request)
                .map_err(|err| Error::new(ErrorCode::InvalidInput, err.to_string()))?;
            self.call(
                reqwest::Method::POST,
                "/v1/tokens",
                Body::Json(body),
                true,
                None,
            )
            .await
        })
    }

    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenInfo>>> {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct Tokens {
                tokens: Vec<TokenInfo>,
            }
            let tokens: Tokens = self
                .call(reqwest::Method::GET, "/v1/tokens", Body::None, false, None)
                .await?;
            Ok(tokens.tokens)
        })
    }

    fn revoke_token<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RevokedTokens>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::DELETE,
                &format!("/v1/tokens/{}", segment(id)),
                Body::None,
                true,
                None,
            )
            .await
        })
    }

    // ---- Git repositories (the forge) ----

    fn create_repo<'a>(
        &'a self,
        project: &'a str,
        request: &'a RepoRequest,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CreatedRepo>> {
        Box::pin(async move {
            let body = serde_json::to_value(request)
                .map_err(|err| Error::new(ErrorCode::InvalidInput, err.to_string()))?;
            self.call(
                reqwest::Method::POST,
                &format!("/v1/projects/{}/repos", segment(project)),
                Body::Json(body),
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn list_repos<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<RepoInfo>>> {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct Repos {
                repos: Vec<RepoInfo>,
            }
            let repos: Repos = self
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/projects/{}/repos", segment(project)),
                    Body::None,
                    false,
                    None,
                )
                .await?;
            Ok(repos.repos)
        })
    }

    fn get_repo<'a>(&'a self, project: &'a str, repo: &'a str) -> BoxFuture<'a, Result<RepoInfo>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::GET,
                &repo_path(project, repo, ""),
                Body::None,
                false,
                None,
            )
            .await
        })
    }

    fn delete_repo<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        confirm: bool,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeletedRepo>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::DELETE,
                &format!("{}?confirm={confirm}", repo_path(project, repo, "")),
                Body::None,
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn list_refs<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RepoRef>>> {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct Refs {
                refs: Vec<RepoRef>,
            }
            let refs: Refs = self
                .call(
                    reqwest::Method::GET,
                    &repo_path(project, repo, "/refs"),
                    Body::None,
                    false,
                    None,
                )
                .await?;
            Ok(refs.refs)
        })
    }

    fn list_commits<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        git_ref: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RepoCommit>>> {
        Box::pin(async move {
            #[derive(serde::Deserialize)]
            struct Commits {
                commits: Vec<RepoCommit>,
            }
            let mut path = format!("{}?limit={limit}", repo_path(project, repo, "/commits"));
            if let Some(git_ref) = git_ref {
                path.push_str(&format!("&ref={}", segment(git_ref)));
            }
            let commits: Commits = self
                .call(reqwest::Method::GET, &path, Body::None, false, None)
                .await?;
            Ok(commits.commits)
        })
    }

    fn get_tree<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        git_ref: Option<&'a str>,
        path: &'a str,
    ) -> BoxFuture<'a, Result<RepoTree>> {
        Box::pin(async move {
            let url = read_path(repo_path(project, repo, "/tree"), git_ref, path);
            self.call(reqwest::Method::GET, &url, Body::None, false, None)
                .await
        })
    }

    fn get_file<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        git_ref: Option<&'a str>,
        path: &'a str,
    ) -> BoxFuture<'a, Result<RepoFile>> {
        Box::pin(async move {
            let url = read_path(repo_path(project, repo, "/file"), git_ref, path);
            self.call(reqwest::Method::GET, &url, Body::None, false, None)
                .await
        })
    }

    fn commit_files<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        request: &'a CommitRequest,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CommitResult>> {
        Box::pin(async move {
            let body = serde_json::to_value(request)
                .map_err(|err| Error::new(ErrorCode::InvalidInput, err.to_string()))?;
            self.call(
                reqwest::Method::POST,
                &repo_path(project, repo, "/commits"),
                Body::Json(body),
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn add_datastore<'a>(
        &'a self,
        project: &'a str,
        kind: DatastoreKind,
        name: Option<&'a str>,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<AddedDatastore>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::POST,
                &format!("/v1/projects/{}/datastores", segment(project)),
                Body::Json(serde_json::json!({ "kind": kind, "name": name })),
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn get_datastore<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Datastore>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::GET,
                &datastore_path(project, name, ""),
                Body::None,
                false,
                None,
            )
            .await
        })
    }

    fn list_datastores<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<Datastore>>> {
        Box::pin(async move {
            let listed: Datastores = self
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/projects/{}/datastores", segment(project)),
                    Body::None,
                    false,
                    None,
                )
                .await?;
            Ok(listed.datastores)
        })
    }

    fn delete_datastore<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        confirm: bool,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeletedDatastore>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::DELETE,
                &datastore_path(project, name, &format!("?confirm={confirm}")),
                Body::None,
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn create_backup<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<BackupInfo>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::POST,
                &datastore_path(project, name, "/backups"),
                Body::None,
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn list_backups<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BackupInfo>>> {
        Box::pin(async move {
            let listed: Backups = self
                .call(
                    reqwest::Method::GET,
                    &datastore_path(project, name, "/backups"),
                    Body::None,
                    false,
                    None,
                )
                .await?;
            Ok(listed.backups)
        })
    }

    fn restore_backup<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        backup: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RestoredBackup>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::POST,
                &datastore_path(project, name, "/restore"),
                Body::Json(serde_json::json!({ "backup": backup })),
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn list_tables<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<DatastoreTables>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::GET,
                &datastore_path(project, name, "/tables"),
                Body::None,
                false,
                None,
            )
            .await
        })
    }

    fn query_datastore<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        query: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<QueryResult>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::POST,
                &datastore_path(project, name, "/query"),
                Body::Json(serde_json::json!({ "query": query })),
                true,
                idempotency_key,
            )
            .await
        })
    }

    fn credits(&self) -> BoxFuture<'_, Result<CreditBalance>> {
        Box::pin(self.call(reqwest::Method::GET, "/v1/credits", Body::None, false, None))
    }

    fn credit_history(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> BoxFuture<'_, Result<CreditHistory>> {
        Box::pin(async move {
            let before = before.map_or_else(String::new, |id| format!("&before={id}"));
            self.call(
                reqwest::Method::GET,
                &format!("/v1/credits/history?limit={limit}{before}"),
                Body::None,
                false,
                None,
            )
            .await
        })
    }

    fn grant_credits<'a>(
        &'a self,
        request: &'a CreditGrant,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<GrantedCredits>> {
        Box::pin(async move {
            self.call(
                reqwest::Method::POST,
                "/v1/credits/grants",
                Body::Json(serde_json::to_value(request).unwrap_or_default()),
                true,
                idempotency_key,
            )
            .await
        })
    }
}

/// `/v1/projects/{project}/repos/{repo` and what follows it.
fn repo_path(project: &str, repo: &str, rest: &str) -> String {
    format!(
        "/v1/projects/{}/repos/{}{rest}",
        segment(project),
        segment(repo)
    )
}

/// A tree or file read's query: `path=` and, when named, `ref=`.
fn read_path(base: String, git_ref: Option<&str>, path: &str) -> String {
    let mut url = format!("{base}?path={}", segment(path));
    if let Some(git_ref) = git_ref {
        url.push_str(&format!("&ref={}", segment(git_ref)));
    }
    url
}

/// One SSE block (`id:`, `event:`, `data:` lines) as an operation event.
fn parse_sse(block: &str) -> Option<OperationEvent> {
    let (mut id, mut kind, mut data) = (None, None, String::new());
    for line in block.lines() {
        if let Some(value) = line.strip_prefix("id:") {
            id = value.trim().parse::<i64>().ok();
        } else if let Some(value) = line.strip_prefix("event:") {
            kind = Some(value.trim().to_owned());
        } else if let Some(value) = line.strip_prefix("data:") {
            if !data.is_empty() {
                data.push('\n');
            }
            data.push_str(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    let mut data: serde_json::Value =
        serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
    let at_ms = data
        .as_object_mut()
        .and_then(|object| object.remove("at_ms"))
        .and_then(|at| at.as_i64())
        .unwrap_or_default();
    Some(OperationEvent {
        seq: id?,
        kind: kind?,
        data,
        at_ms,
    })
}
