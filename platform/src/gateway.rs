//! The REST gateway: seed 000's API under `/v1`, served over a [`LocalPlatform`] by
//! `automaton platform serve`. Every `/v1` request needs `Authorization: Bearer <token>`;
//! errors are `{code, message, hint, retryable}` (plus `log_tail`/`state`) with the HTTP
//! status their code implies; mutating calls honour an `Idempotency-Key` header; deploys
//! upload a gzipped tarball as the request body and answer `202` with the operation; the
//! operation's stream is Server-Sent Events (`log`, `phase`, `done`) replayed from the start
//! (or after `Last-Event-ID`), so a reconnect loses nothing.

use crate::api::Platform;
use crate::error::{Error, ErrorCode};
use crate::local::{LocalPlatform, Principal};
use crate::model::{Capability, RevokedTokens, TokenRequest};
use crate::source::MAX_SOURCE_BYTES;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

mod credits;
mod datastores;
mod git;
mod inference;
mod repos;

/// The OpenAPI document served at `/v1/openapi.yaml`.
pub const OPENAPI: &str = include_str!("../openapi.yaml");

/// The HTTP status of an error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidInput | ErrorCode::NoProviderDetected => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
        ErrorCode::CapabilityMissing => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        ErrorCode::SourceTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::BuildCommandFailed | ErrorCode::HealthCheckFailed => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::ImagePushFailed | ErrorCode::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::InsufficientCredits => StatusCode::PAYMENT_REQUIRED,
    }
}

/// An error as an HTTP response.
struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (status_of(self.0.code), Json(self.0)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// The gateway's routes over `platform`.
pub fn router(platform: LocalPlatform) -> axum::Router {
    let v1 = axum::Router::new()
        .route("/projects", post(create_project).get(list_projects))
        .route(
            "/projects/{project}",
            get(get_project).delete(delete_project),
        )
        .route("/projects/{project}/services", get(list_services))
        .route(
            "/projects/{project}/services/{service}",
            get(get_service).patch(scale_service),
        )
        .route(
            "/projects/{project}/services/{service}/deploys",
            post(create_deploy).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/projects/{project}/services/{service}/rollback",
            post(rollback),
        )
        .route(
            "/projects/{project}/services/{service}/restart",
            post(restart),
        )
        .route("/projects/{project}/services/{service}/logs", get(logs))
        .route("/projects/{project}/env", get(list_env).put(set_env))
        .route("/projects/{project}/events", get(stream_events))
        .route("/tokens", post(create_token).get(list_tokens))
        .route("/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/operations/{id}", get(get_operation))
        .route("/operations/{id}/stream", get(stream_operation))
        .merge(repos::routes())
        .merge(datastores::routes())
        .merge(credits::routes())
        .merge(inference::routes())
        .route_layer(middleware::from_fn_with_state(
            platform.clone(),
            authenticate,
        ))
        .route("/openapi.yaml", get(openapi));
    axum::Router::new()
        .nest("/v1", v1)
        .merge(git::routes())
        .fallback(not_found)
        .with_state(platform)
}

/// Serves the gateway on `listener` until `stop` is cancelled.
pub async fn serve(
    platform: LocalPlatform,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) -> std::io::Result<()> {
    // Repositories' clone URLs name this gateway's smart HTTP.
    platform.set_git_base(&format!("http://{}/git", listener.local_addr()?));
    let streams = platform.clone();
    axum::serve(listener, router(platform))
        .with_graceful_shutdown(async move {
            stop.cancelled().await;
            // Followers of event streams never hang up on their own.
            streams.close_streams();
        })
        .await
}

async fn authenticate(
    State(platform): State<LocalPlatform>,
    request: Request,
    next: Next,
) -> Response {
    let secret = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|secret| !secret.is_empty());
    let Some(secret) = secret else {
        return ApiError(
            Error::new(ErrorCode::Unauthenticated, "this request carries no bearer token")
                .with_hint("send `Authorization: Bearer <token>`; the local platform's admin token is in endpoint.json in its data directory"),
        )
        .into_response();
    };
    match platform.principal(secret).await {
        Ok(Some(principal)) => {
            let mut request = request;
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Ok(None) => ApiError(
            Error::new(ErrorCode::Unauthenticated, "the bearer token is not valid (unknown or revoked)")
                .with_hint("use a live token: the local platform's admin token is in endpoint.json in its data directory"),
        )
        .into_response(),
        Err(error) => ApiError(error).into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError(
        Error::new(ErrorCode::NotFound, "no such endpoint")
            .with_hint("the API is under /v1; /v1/openapi.yaml lists every path"),
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI)
}

fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

/// A JSON body, or an `INVALID_INPUT` saying what was wrong with it.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], example: &str) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|err| {
        ApiError(
            Error::new(
                ErrorCode::InvalidInput,
                format!("the request body is not valid: {err}"),
            )
            .with_hint(format!("send JSON like {example}")),
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateProject {
    name: String,
}

async fn create_project(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let request: CreateProject = parse_body(&body, r#"{"name": "my-app"}"#)?;
    who.require(Capability::ManageProjects, Some(&request.name))?;
    let key = idempotency_key(&headers);
    let created = platform
        .create_project(&request.name, key.as_deref())
        .await?;
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(created)).into_response())
}

async fn list_projects(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Response> {
    who.require(Capability::Read, None)?;
    let projects: Vec<_> = platform
        .list_projects()
        .await?
        .into_iter()
        .filter(|project| who.reaches(&project.name))
        .collect();
    Ok(Json(serde_json::json!({ "projects": projects })).into_response())
}

async fn get_project(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    Ok(Json(platform.get_project(&project).await?).into_response())
}

#[derive(Deserialize)]
struct Confirm {
    #[serde(default)]
    confirm: bool,
}

async fn delete_project(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
    Query(confirm): Query<Confirm>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    who.require(Capability::ManageProjects, Some(&project))?;
    let key = idempotency_key(&headers);
    Ok(Json(
        platform
            .delete_project(&project, confirm.confirm, key.as_deref())
            .await?,
    )
    .into_response())
}

async fn list_services(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    Ok(
        Json(serde_json::json!({ "services": platform.list_services(&project).await? }))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct LogLines {
    #[serde(default)]
    log_lines: usize,
}

async fn get_service(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, service)): Path<(String, String)>,
    Query(query): Query<LogLines>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    Ok(Json(
        platform
            .get_service(&project, &service, query.log_lines)
            .await?,
    )
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scale {
    replicas: u32,
}

async fn scale_service(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, service)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    who.require(Capability::Deploy, Some(&project))?;
    let request: Scale = parse_body(&body, r#"{"replicas": 2}"#)?;
    let key = idempotency_key(&headers);
    Ok(Json(
        platform
            .scale(&project, &service, request.replicas, key.as_deref())
            .await?,
    )
    .into_response())
}

async fn create_deploy(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, service)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    who.require(Capability::Deploy, Some(&project))?;
    let uploads = platform.data_dir().join("uploads");
    tokio::fs::create_dir_all(&uploads).await.map_err(|err| {
        Error::new(
            ErrorCode::InternalError,
            format!("storing the upload: {err}"),
        )
    })?;
    let path = uploads.join(format!("incoming-{}.tgz", uuid::Uuid::new_v4().simple()));
    let received = receive(body, &path).await;
    let outcome = match received {
        Ok(()) => {
            let key = idempotency_key(&headers);
            platform
                .deploy(&project, &service, &path, key.as_deref())
                .await
        }
        Err(error) => Err(error),
    };
    let _ = tokio::fs::remove_file(&path).await;
    Ok((StatusCode::ACCEPTED, Json(outcome?)).into_response())
}

/// Streams the request body to `path`, refusing past the source limit.
async fn receive(body: Body, path: &std::path::Path) -> Result<(), Error> {
    use futures_util::StreamExt;
    let io = |err: std::io::Error| {
        Error::new(
            ErrorCode::InternalError,
            format!("storing the upload: {err}"),
        )
    };
    let mut file = tokio::fs::File::create(path).await.map_err(io)?;
    let mut stream = body.into_data_stream();
    let mut total = 0_u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|err| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("the upload was cut off: {err}"),
            )
            .with_hint("send the whole gzipped tarball as the request body and try again")
        })?;
        total += chunk.len() as u64;
        if total > MAX_SOURCE_BYTES {
            return Err(Error::new(
                ErrorCode::SourceTooLarge,
                "the upload exceeds 512 MB",
            ));
        }
        file.write_all(&chunk).await.map_err(io)?;
    }
    if total == 0 {
        return Err(
            Error::new(ErrorCode::InvalidInput, "the deploy carries no source")
                .with_hint("send the gzipped tarball of the source directory as the request body"),
        );
    }
    file.flush().await.map_err(io)?;
    Ok(())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Rollback {
    #[serde(default)]
    to: Option<String>,
}

async fn rollback(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, service)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    who.require(Capability::Deploy, Some(&project))?;
    let request: Rollback = if body.is_empty() {
        Rollback::default()
    } else {
        parse_body(&body, r#"{"to": "rel_…"} or an empty body"#)?
    };
    let key = idempotency_key(&headers);
    Ok(Json(
        platform
            .rollback(&project, &service, request.to.as_deref(), key.as_deref())
            .await?,
    )
    .into_response())
}

async fn restart(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, service)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    who.require(Capability::Deploy, Some(&project))?;
    let key = idempotency_key(&headers);
    Ok(Json(platform.restart(&project, &service, key.as_deref()).await?).into_response())
}

#[derive(Deserialize)]
struct Lines {
    #[serde(default = "default_lines")]
    lines: usize,
}

fn default_lines() -> usize {
    100
}

fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"))
}

/// Runtime and build lines as JSON; with `Accept: text/event-stream`, the runtime tail and
/// then every new line as it is written (`event: log`).
async fn logs(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, service)): Path<(String, String)>,
    Query(query): Query<Lines>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    let logs = platform.logs(&project, &service, query.lines).await?;
    if !wants_events(&headers) {
        return Ok(Json(logs).into_response());
    }
    let path = platform.log_file(&project, &service).await?;
    // Follow from the current end; the tail goes first.
    let offset = tokio::fs::metadata(&path)
        .await
        .map_or(0, |meta| meta.len());
    let tail = futures_util::stream::iter(
        logs.runtime
            .into_iter()
            .map(|line| Ok::<_, Infallible>(Event::default().event("log").data(line)))
            .collect::<Vec<_>>(),
    );
    let follow = futures_util::stream::unfold(
        (path, offset, String::new()),
        |(path, mut offset, mut partial)| async move {
            loop {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let Ok(len) = tokio::fs::metadata(&path).await.map(|meta| meta.len()) else {
                    continue;
                };
                if len < offset {
                    offset = 0; // rotated or truncated: start over
                }
                if len == offset {
                    continue;
                }
                // Only what was written since the last look.
                let Ok(fresh) = read_from(&path, offset).await else {
                    continue;
                };
                partial.push_str(&String::from_utf8_lossy(&fresh));
                offset += fresh.len() as u64;
                let mut lines = Vec::new();
                while let Some(end) = partial.find('\n') {
                    let line: String = partial.drain(..=end).collect();
                    lines.push(Ok::<_, Infallible>(
                        Event::default().event("log").data(line.trim_end()),
                    ));
                }
                if !lines.is_empty() {
                    return Some((futures_util::stream::iter(lines), (path, offset, partial)));
                }
            }
        },
    );
    use futures_util::StreamExt;
    let closed = platform.streams_closed();
    Ok(Sse::new(tail.chain(follow.flatten()).take_until(closed))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// The project's events as SSE (`event: <kind>`, `id: <event id>`): those after
/// `Last-Event-ID` (all, without it), then each new one.
async fn stream_events(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    let after = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i64>().ok())
        .unwrap_or(0);
    // Fails now, as JSON, for an unknown project.
    platform.events_after(&project, i64::MAX).await?;
    let closed = platform.streams_closed();
    let stream = futures_util::stream::unfold(
        (platform, project, after),
        |(platform, project, mut after)| async move {
            loop {
                match platform.events_after(&project, after).await {
                    Ok(events) if !events.is_empty() => {
                        if let Some(last) = events.last() {
                            after = last.id;
                        }
                        let batch: Vec<Result<Event, Infallible>> = events
                            .into_iter()
                            .map(|event| {
                                let data = serde_json::to_string(&event).unwrap_or_default();
                                Ok(Event::default()
                                    .id(event.id.to_string())
                                    .event(event.kind)
                                    .data(data))
                            })
                            .collect();
                        return Some((
                            futures_util::stream::iter(batch),
                            (platform, project, after),
                        ));
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(300)).await,
                    Err(_) => return None,
                }
            }
        },
    );
    use futures_util::StreamExt;
    Ok(Sse::new(stream.flatten().take_until(closed))
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Whether setting `name` makes a runtime load or run code of the setter's choosing
/// (`LD_PRELOAD`, `PYTHONSTARTUP`, `NODE_OPTIONS=--require …`, `BASH_ENV`, …).
fn loads_code(name: &str) -> bool {
    const NAMES: [&str; 15] = [
        "NODE_OPTIONS",
        "NODE_PATH",
        "PERL5OPT",
        "PERL5LIB",
        "PERLLIB",
        "RUBYOPT",
        "RUBYLIB",
        "JAVA_TOOL_OPTIONS",
        "_JAVA_OPTIONS",
        "JDK_JAVA_OPTIONS",
        "BASH_ENV",
        "ENV",
        "GCONV_PATH",
        "BROWSER",
        "PS4",
    ];
    let upper = name.to_ascii_uppercase();
    upper.starts_with("LD_") || upper.starts_with("PYTHON") || NAMES.contains(&upper.as_str())
}

/// The bytes of `path` from `offset` to its end.
async fn read_from(path: &std::path::Path, offset: u64) -> std::io::Result<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).await?;
    Ok(bytes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetEnv {
    vars: BTreeMap<String, String>,
}

async fn set_env(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    who.require(Capability::ManageEnv, Some(&project))?;
    let request: SetEnv = parse_body(&body, r#"{"vars": {"API_URL": "https://…"}}"#)?;
    let vars: Vec<(String, String)> = request.vars.into_iter().collect();
    // Variables that make a runtime load or run other code are a deploy by another name.
    let code_loading: Vec<&str> = vars
        .iter()
        .map(|(name, _)| name.as_str())
        .filter(|name| loads_code(name))
        .collect();
    if !code_loading.is_empty() {
        who.require(Capability::Deploy, Some(&project))
            .map_err(|error| {
                Error::new(
                    ErrorCode::CapabilityMissing,
                    format!(
                        "{} make the app load or run other code: setting them needs `deploy` as well as `manage_env`",
                        code_loading.join(", ")
                    ),
                )
                .with_hint("ask the token's issuer for `deploy`, or set only configuration variables")
                .with_state(error.state.map_or(serde_json::Value::Null, |state| *state))
            })?;
    }
    let key = idempotency_key(&headers);
    Ok(Json(platform.set_env(&project, &vars, key.as_deref()).await?).into_response())
}

async fn list_env(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    Ok(Json(serde_json::json!({ "names": platform.list_env(&project).await? })).into_response())
}

/// The operation when the caller may read it. One outside the token's projects is
/// `NOT_FOUND`, as an unknown id is: an operation id does not reveal which project it is in.
async fn operation_in_reach(
    platform: &LocalPlatform,
    who: &Principal,
    id: &str,
) -> ApiResult<crate::model::Operation> {
    who.require(Capability::Read, None)?;
    let operation = platform.get_operation(id).await?;
    if !who.reaches(&operation.project) {
        return Err(
            Error::new(ErrorCode::NotFound, format!("no operation {id}"))
                .with_hint("operation ids come from deploy answers; poll the one you were given")
                .into(),
        );
    }
    Ok(operation)
}

async fn get_operation(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let operation = operation_in_reach(&platform, &who, &id).await?;
    Ok(Json(operation).into_response())
}

async fn stream_operation(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Fails now, as JSON, for an unknown operation or one out of the token's reach.
    operation_in_reach(&platform, &who, &id).await?;
    let after = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<i64>().ok())
        .unwrap_or(0);
    let closed = platform.streams_closed();
    let stream = futures_util::stream::unfold(
        (platform, id, after, false),
        |(platform, id, mut after, finished)| async move {
            if finished {
                return None;
            }
            loop {
                match platform.operation_events(&id, after).await {
                    Ok(events) if !events.is_empty() => {
                        let done = events.iter().any(|event| event.kind == "done");
                        if let Some(last) = events.last() {
                            after = last.seq;
                        }
                        let batch: Vec<Result<Event, Infallible>> = events
                            .into_iter()
                            .map(|event| {
                                // Every payload is an object; when it was recorded rides along.
                                let mut data = event.data;
                                if let Some(object) = data.as_object_mut() {
                                    object.insert("at_ms".to_owned(), event.at_ms.into());
                                }
                                Ok(Event::default()
                                    .id(event.seq.to_string())
                                    .event(event.kind)
                                    .data(data.to_string()))
                            })
                            .collect();
                        return Some((
                            futures_util::stream::iter(batch),
                            (platform, id, after, done),
                        ));
                    }
                    Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    Err(_) => return None,
                }
            }
        },
    );
    use futures_util::StreamExt;
    Ok(Sse::new(stream.flatten().take_until(closed))
        .keep_alive(KeepAlive::default())
        .into_response())
}

async fn create_token(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let request: TokenRequest = parse_body(
        &body,
        r#"{"name": "child-deploy", "capabilities": ["read", "deploy"], "projects": ["child-1"]}"#,
    )?;
    let issued = platform.issue_token_as(&who, request).await?;
    Ok((StatusCode::CREATED, Json(issued)).into_response())
}

async fn list_tokens(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Response> {
    Ok(Json(serde_json::json!({ "tokens": platform.list_tokens_as(&who).await? })).into_response())
}

async fn revoke_token(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let revoked = platform.revoke_token_as(&who, &id).await?;
    Ok(Json(RevokedTokens { revoked }).into_response())
}

#[cfg(test)]
mod openapi_tests {
    /// Every `/v1` route the router serves, as the OpenAPI document must list it.
    fn routed_paths() -> Vec<String> {
        [
            include_str!("gateway.rs"),
            include_str!("gateway/repos.rs"),
            include_str!("gateway/datastores.rs"),
            include_str!("gateway/credits.rs"),
            include_str!("gateway/inference.rs"),
        ]
        .iter()
        .flat_map(|source| source.split(".route(").skip(1))
        .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
        .filter(|path| *path != "/openapi.yaml" && path.starts_with('/'))
        .map(|path| format!("/v1{path}"))
        .collect()
    }

    #[test]
    fn the_openapi_document_is_valid_yaml_and_lists_every_route() {
        let document: serde_yaml::Value = serde_yaml::from_str(super::OPENAPI).unwrap();
        let paths = document["paths"].as_mapping().unwrap();
        let listed: Vec<&str> = paths.keys().filter_map(|k| k.as_str()).collect();
        let routed = routed_paths();
        assert!(routed.len() > 10, "{routed:?}");
        for path in &routed {
            assert!(
                listed.contains(&path.as_str()),
                "{path} is not in openapi.yaml"
            );
        }
        let mut ids: Vec<&str> = paths
            .values()
            .filter_map(|item| item.as_mapping())
            .flat_map(|item| item.values())
            .filter_map(|operation| operation["operationId"].as_str())
            .collect();
        let count = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), count, "operationIds are unique");
    }
}
