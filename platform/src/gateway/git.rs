//! Git smart HTTP on the gateway: `git clone`/`fetch`/`push` of
//! `http://x:<TOKEN>@HOST/git/<project>/<repo>.git`, the platform token as the basic-auth
//! password (the user name is ignored; a bearer header works too). Clone and fetch need
//! `read`, push needs `manage_repos` (and `deploy` when the repository deploys a service),
//! all within the token's project scope; without
//! credentials the answer is `401` with `WWW-Authenticate: Basic`, so git asks for them or
//! sends the ones in the URL. Only the smart protocol's three endpoints are served (no dumb
//! HTTP file access).
//!
//! The protocol itself is `git http-backend`, run as a CGI program per request: it is the
//! reference implementation (v0/v1/v2, shallow and partial clones, gzip request bodies,
//! receive-pack's atomic ref updates and fsck) and ships with the `git` the platform already
//! needs for builds; writing pack negotiation natively would be a second, weaker copy. The
//! request body is streamed to its stdin (chunked bodies arrive de-chunked; a gzip
//! `Content-Encoding` is passed on as `HTTP_CONTENT_ENCODING`, which the backend inflates),
//! its CGI headers (with `Status:`) are parsed and its output streamed back. The path is
//! `/git/…` because a project may be called `v1`.
//!
//! After a successful `git-receive-pack` the platform is told (push-to-deploy) in the
//! background: the push's answer never waits for a deploy.

use crate::error::{Error, ErrorCode};
use crate::local::{LocalPlatform, Principal};
use crate::model::Capability;
use crate::source::MAX_SOURCE_BYTES;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// The smart-HTTP routes; the gateway serves them beside `/v1`.
pub(super) fn routes() -> axum::Router<LocalPlatform> {
    axum::Router::new()
        .route("/git/{project}/{repo}/info/refs", get(info_refs))
        .route("/git/{project}/{repo}/{service}", post(rpc))
        .layer(DefaultBodyLimit::disable())
}

/// The two git services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    /// Clone and fetch.
    UploadPack,
    /// Push.
    ReceivePack,
}

impl Service {
    /// The service a `service=` parameter or a POST path names.
    fn parse(name: &str) -> Option<Self> {
        [Self::UploadPack, Self::ReceivePack]
            .into_iter()
            .find(|service| service.name() == name)
    }

    fn name(self) -> &'static str {
        match self {
            Self::UploadPack => "git-upload-pack",
            Self::ReceivePack => "git-receive-pack",
        }
    }

    fn capability(self) -> Capability {
        match self {
            Self::UploadPack => Capability::Read,
            Self::ReceivePack => Capability::ManageRepos,
        }
    }
}

/// A refusal git shows its user: a status and one plain-text line with the next step.
fn refusal(status: StatusCode, error: &Error) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{} ({})\n", error.message, error.hint),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"automaton platform\""),
        );
    }
    response
}

/// The token a git request carries: the basic-auth password, or a bearer token.
fn secret_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(bearer) = value.strip_prefix("Bearer ") {
        return Some(bearer.trim().to_owned()).filter(|s| !s.is_empty());
    }
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, password) = text.split_once(':')?;
    Some(password.to_owned()).filter(|s| !s.is_empty())
}

/// Authenticates and authorizes a git request; the principal, or the response refusing it.
async fn admit(
    platform: &LocalPlatform,
    headers: &HeaderMap,
    project: &str,
    service: Service,
) -> Result<Principal, Response> {
    let Some(secret) = secret_of(headers) else {
        return Err(refusal(
            StatusCode::UNAUTHORIZED,
            &Error::new(
                ErrorCode::Unauthenticated,
                "this git request carries no token",
            )
            .with_hint(
                "use the platform token as the password: http://x:TOKEN@HOST/git/PROJECT/REPO.git",
            ),
        ));
    };
    let principal = match platform.principal(&secret).await {
        Ok(Some(principal)) => principal,
        Ok(None) => {
            return Err(refusal(
                StatusCode::UNAUTHORIZED,
                &Error::new(
                    ErrorCode::Unauthenticated,
                    "the token is not valid (unknown or revoked)",
                )
                .with_hint("use a live platform token as the git password"),
            ));
        }
        Err(error) => return Err(refusal(StatusCode::INTERNAL_SERVER_ERROR, &error)),
    };
    principal
        .require(service.capability(), Some(project))
        .map_err(|error| refusal(StatusCode::FORBIDDEN, &error))?;
    Ok(principal)
}

/// One smart-HTTP request, as the CGI backend needs it.
struct GitRequest {
    project: String,
    /// The repository's name, without `.git`.
    repo: String,
    service: Service,
    /// What follows the repository in the path: `info/refs` or the service's name.
    rest: &'static str,
    method: Method,
    query: String,
    headers: HeaderMap,
    body: Body,
}

/// `GET …/info/refs?service=…`: the ref advertisement (smart protocol only).
async fn info_refs(
    State(platform): State<LocalPlatform>,
    Path((project, repo)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    let Some(service) = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("service="))
        .and_then(Service::parse)
    else {
        return refusal(
            StatusCode::FORBIDDEN,
            &Error::new(
                ErrorCode::InvalidInput,
                "only git's smart HTTP protocol is served",
            )
            .with_hint("use git 1.6.6 or newer"),
        );
    };
    serve(
        platform,
        GitRequest {
            project,
            repo,
            service,
            rest: "info/refs",
            method: Method::GET,
            // Only the service that was authorized: the backend would take the last
            // `service=` of the query, and decode escapes the check above does not.
            query: format!("service={}", service.name()),
            headers,
            body: Body::empty(),
        },
    )
    .await
}

/// `POST …/git-upload-pack` or `…/git-receive-pack`: one exchange of the protocol.
async fn rpc(
    State(platform): State<LocalPlatform>,
    Path((project, repo, name)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(service) = Service::parse(&name) else {
        return refusal(
            StatusCode::NOT_FOUND,
            &Error::new(ErrorCode::NotFound, format!("no git service `{name}`"))
                .with_hint("git posts to git-upload-pack or git-receive-pack"),
        );
    };
    let request = GitRequest {
        project,
        repo,
        service,
        rest: service.name(),
        method: Method::POST,
        query: String::new(),
        headers,
        body,
    };
    serve(platform, request).await
}

/// Admits the request, checks the repository exists, and runs the backend.
async fn serve(platform: LocalPlatform, mut request: GitRequest) -> Response {
    let principal = match admit(
        &platform,
        &request.headers,
        &request.project,
        request.service,
    )
    .await
    {
        Ok(principal) => principal,
        Err(response) => return response,
    };
    if let Some(stem) = request.repo.strip_suffix(".git") {
        request.repo = stem.to_owned();
    }
    if let Err(error) = platform.require_repo(&request.project, &request.repo).await {
        return refusal(crate::gateway::status_of(error.code), &error);
    }
    if request.service == Service::ReceivePack
        && let Err(error) = super::repos::require_deploy_if_it_deploys(
            &platform,
            &principal,
            &request.project,
            &request.repo,
        )
        .await
    {
        return refusal(crate::gateway::status_of(error.code), &error);
    }
    let (project, repo) = (request.project.clone(), request.repo.clone());
    match backend(&platform, &principal, request).await {
        Ok(response) => response,
        Err(error) => {
            tracing::warn!(error = %error, project, repo, "git http-backend failed");
            refusal(StatusCode::INTERNAL_SERVER_ERROR, &error)
        }
    }
}

fn internal(what: &str, err: impl std::fmt::Display) -> Error {
    Error::new(ErrorCode::InternalError, format!("{what}: {err}"))
}

/// Runs `git http-backend` for one request and streams its answer.
async fn backend(
    platform: &LocalPlatform,
    principal: &Principal,
    request: GitRequest,
) -> Result<Response, Error> {
    let GitRequest {
        project,
        repo: name,
        service,
        rest,
        method,
        query,
        headers,
        body,
    } = request;
    let header = |name: HeaderName| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let mut command = tokio::process::Command::new("git");
    command
        .arg("http-backend")
        .env_clear()
        // A fixed search path: the daemon's own environment is not passed on.
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("GIT_PROJECT_ROOT", platform.repos_root())
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_COUNT", "2")
        .env("GIT_CONFIG_KEY_0", "http.receivepack")
        .env("GIT_CONFIG_VALUE_0", "true")
        // A push inflates to at most the source limit (the body's cap is on compressed bytes).
        .env("GIT_CONFIG_KEY_1", "receive.maxInputSize")
        .env(
            "GIT_CONFIG_VALUE_1",
            crate::source::MAX_SOURCE_BYTES.to_string(),
        )
        .env("REMOTE_USER", &principal.token_id)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", format!("/{project}/{name}.git/{rest}"))
        .env("QUERY_STRING", &query)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (variable, value) in [
        ("CONTENT_TYPE", header(header::CONTENT_TYPE)),
        ("CONTENT_LENGTH", header(header::CONTENT_LENGTH)),
        ("HTTP_CONTENT_ENCODING", header(header::CONTENT_ENCODING)),
        (
            "GIT_PROTOCOL",
            header(HeaderName::from_static("git-protocol")),
        ),
    ] {
        if let Some(value) = value {
            command.env(variable, value);
        }
    }
    let mut child = command
        .spawn()
        .map_err(|err| internal("starting `git http-backend` (is git installed?)", err))?;
    let (Some(mut stdin), Some(stdout), Some(mut stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(internal("git http-backend", "its pipes are missing"));
    };
    // The request body goes in while the answer comes out: a large push never deadlocks on
    // full pipes.
    let feeding = tokio::spawn(async move {
        use futures_util::StreamExt;
        let mut stream = body.into_data_stream();
        let mut total = 0_u64;
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { return false };
            total += chunk.len() as u64;
            if total > MAX_SOURCE_BYTES || stdin.write_all(&chunk).await.is_err() {
                return false;
            }
        }
        true
    });
    let errors = tokio::spawn(async move {
        let mut text = String::new();
        let _ = (&mut stderr).take(8 * 1024).read_to_string(&mut text).await;
        text
    });
    let mut stdout = BufReader::new(stdout);
    let mut status = StatusCode::OK;
    let mut response_headers = HeaderMap::new();
    loop {
        let mut line = String::new();
        let read = stdout
            .read_line(&mut line)
            .await
            .map_err(|err| internal("reading git http-backend's answer", err))?;
        let line = line.trim_end_matches(['\r', '\n']);
        if read == 0 || line.is_empty() {
            break;
        }
        let Some((field, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if field.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("500");
            status = code
                .parse::<u16>()
                .ok()
                .and_then(|code| StatusCode::from_u16(code).ok())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        } else if let (Ok(field), Ok(value)) = (
            HeaderName::from_bytes(field.trim().as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response_headers.append(field, value);
        }
    }
    // Reaps the backend; after a successful push, push-to-deploy starts in the background.
    let (platform, project_name, repo_name) = (platform.clone(), project, name);
    tokio::spawn(async move {
        let fed = feeding.await.unwrap_or(false);
        let exit = child.wait().await;
        let stderr = errors.await.unwrap_or_default();
        let succeeded = fed && exit.as_ref().is_ok_and(std::process::ExitStatus::success);
        if !succeeded {
            tracing::warn!(
                project = project_name,
                repo = repo_name,
                ?exit,
                stderr = stderr.trim(),
                "git http-backend did not succeed"
            );
            return;
        }
        if service == Service::ReceivePack && status.is_success() {
            match platform.repo_pushed(&project_name, &repo_name).await {
                Ok(Some(deploy)) => {
                    tracing::info!(project = project_name, repo = repo_name, commit = deploy.commit, operation = ?deploy.operation_id, "push-to-deploy")
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(project = project_name, repo = repo_name, %error, "push-to-deploy failed")
                }
            }
        }
    });
    let mut response = Response::new(Body::from_stream(tokio_util::io::ReaderStream::new(stdout)));
    *response.status_mut() = status;
    *response.headers_mut() = response_headers;
    Ok(response)
}

#[cfg(test)]
#[path = "git_tests.rs"]
mod tests;
