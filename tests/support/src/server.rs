//! The scripted model's HTTP server: its lifetime, its script and what it captured.
//!
//! A real axum server on `127.0.0.1:0`, so the runtime's real client, its retry and timeout
//! handling included, is what tests exercise. The server task is owned by [`ScriptedModel`]:
//! dropping it (or [`ScriptedModel::shutdown`]) stops the listener and closes every connection.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::captured::CapturedRequest;
use crate::invariants;
use crate::render::{self, openai_error};
use crate::reply::Reply;

/// The model name listed by `GET /v1/models` unless [`ScriptedModelBuilder::models`] says
/// otherwise.
const DEFAULT_MODEL: &str = "scripted-model";
/// Request bodies up to this size are accepted (axum's default of 2 MiB is too small for the
/// long conversations the compaction tests build).
const BODY_LIMIT: usize = 64 * 1024 * 1024;
/// How long [`ScriptedModel::shutdown`] lets in-flight replies finish before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// A running scripted OpenAI-compatible server; see the crate docs.
#[derive(Debug)]
pub struct ScriptedModel {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Dropping this sender is the graceful-shutdown signal.
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<io::Result<()>>>,
}

/// Options for a [`ScriptedModel`], from [`ScriptedModel::builder`].
#[derive(Debug, Clone)]
pub struct ScriptedModelBuilder {
    config: Config,
}

#[derive(Debug, Clone)]
struct Config {
    models: Vec<String>,
    system_prefix: Option<String>,
}

#[derive(Debug)]
struct Shared {
    config: Config,
    state: Mutex<Script>,
}

#[derive(Debug, Default)]
struct Script {
    queue: VecDeque<Reply>,
    fallback: Option<Reply>,
    requests: Vec<CapturedRequest>,
    violations: Vec<String>,
}

impl Shared {
    /// The script; a panic elsewhere while it was held leaves nothing half-written, so a
    /// poisoned lock is still usable.
    fn script(&self) -> MutexGuard<'_, Script> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Script {
    /// Records a request and the violations found in it; returns its 1-based number.
    fn capture(&mut self, request: CapturedRequest, problems: Vec<String>) -> u64 {
        let number = self.requests.len() + 1;
        for problem in problems {
            self.violations.push(format!(
                "request {number} ({} {}): {problem}",
                request.method, request.path
            ));
        }
        self.requests.push(request);
        u64::try_from(number).unwrap_or(u64::MAX)
    }
}

impl ScriptedModelBuilder {
    /// Adds the check that every request's system message starts with `prefix` (the runtime
    /// puts its constitution first).
    pub fn require_system_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.config.system_prefix = Some(prefix.into());
        self
    }

    /// The model names `GET /v1/models` lists (default `["scripted-model"]`); the first is
    /// echoed in completions for requests that name no model.
    pub fn models(mut self, names: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.config.models = names.into_iter().map(Into::into).collect();
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    pub async fn start(self) -> io::Result<ScriptedModel> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: self.config,
            state: Mutex::new(Script::default()),
        });
        let app = Router::new()
            .route(
                "/v1/chat/completions",
                post(chat_completions).fallback(unexpected),
            )
            .route("/v1/models", get(list_models).fallback(unexpected))
            .fallback(unexpected)
            .layer(DefaultBodyLimit::max(BODY_LIMIT))
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Resolves when the sender is sent to or dropped: either means stop.
                    let _ = stopped.await;
                })
                .into_future(),
        );
        Ok(ScriptedModel {
            addr,
            shared,
            stop: Some(stop),
            server: Some(server),
        })
    }
}

impl ScriptedModel {
    /// Starts a server with the default options.
    pub async fn start() -> io::Result<Self> {
        Self::builder().start().await
    }

    /// Options for a server: required system prefix, listed model names.
    pub fn builder() -> ScriptedModelBuilder {
        ScriptedModelBuilder {
            config: Config {
                models: vec![DEFAULT_MODEL.to_owned()],
                system_prefix: None,
            },
        }
    }

    /// The OpenAI-style base URL, `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues one reply after those already queued.
    pub fn push(&self, reply: Reply) {
        self.shared.script().queue.push_back(reply);
    }

    /// Queues several replies, in order.
    pub fn push_all(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script().queue.extend(replies);
    }

    /// The reply given (again and again) once the queue is empty; `None`, the default, makes an
    /// empty queue answer HTTP 500 `script exhausted` so a test that over-consumes fails loudly.
    pub fn set_fallback(&self, reply: Option<Reply>) {
        self.shared.script().fallback = reply;
    }

    /// How many queued replies have not been served yet.
    pub fn remaining(&self) -> usize {
        self.shared.script().queue.len()
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<CapturedRequest> {
        self.shared.script().requests.clone()
    }

    /// Every invariant violation found so far, each naming its request
    /// (`request N (METHOD PATH): …`).
    pub fn violations(&self) -> Vec<String> {
        self.shared.script().violations.clone()
    }

    /// Panics listing every invariant violation, if there is any.
    #[expect(clippy::panic, reason = "test helper: a violation must fail the test")]
    pub fn assert_clean(&self) {
        let violations = self.violations();
        if !violations.is_empty() {
            panic!(
                "the scripted model saw {} invariant violation(s):\n  - {}",
                violations.len(),
                violations.join("\n  - ")
            );
        }
    }

    /// Stops accepting connections, lets in-flight replies finish (up to a grace period) and
    /// waits for the server task to end.
    pub async fn shutdown(mut self) {
        self.stop.take();
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

impl Drop for ScriptedModel {
    fn drop(&mut self) {
        // Dropping `stop` tells open connections to close; aborting the task drops the listener.
        self.stop.take();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

fn capture_parts(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Value,
    received_at: Instant,
) -> CapturedRequest {
    CapturedRequest {
        received_at,
        method: method.as_str().to_owned(),
        path: uri.path().to_owned(),
        headers: headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect(),
        model: body.get("model").and_then(Value::as_str).map(str::to_owned),
        body,
    }
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let received_at = Instant::now();
    let (body, problems) = match serde_json::from_slice::<Value>(&raw) {
        Ok(body) => {
            let problems = invariants::violations(&body, shared.config.system_prefix.as_deref());
            (body, problems)
        }
        Err(error) => (Value::Null, vec![format!("the body is not JSON: {error}")]),
    };
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .or_else(|| shared.config.models.first().map(String::as_str))
        .unwrap_or(DEFAULT_MODEL)
        .to_owned();
    let request = capture_parts(&method, &uri, &headers, body.clone(), received_at);
    let (seq, reply) = {
        let mut script = shared.script();
        let seq = script.capture(request, problems);
        if body.is_null() || streaming {
            (seq, None)
        } else {
            let reply = script.queue.pop_front().or_else(|| script.fallback.clone());
            (seq, Some(reply))
        }
    };
    match reply {
        Some(reply) => render::respond(reply, &body, &model, seq).await,
        None if streaming => openai_error(
            StatusCode::BAD_REQUEST,
            "scripted model: `stream: true` is not supported (the runtime does not stream)",
            "invalid_request_error",
            None,
        ),
        None => openai_error(
            StatusCode::BAD_REQUEST,
            "scripted model: the request body is not JSON",
            "invalid_request_error",
            None,
        ),
    }
}

async fn list_models(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let received_at = Instant::now();
    shared.script().capture(
        capture_parts(&method, &uri, &headers, Value::Null, received_at),
        Vec::new(),
    );
    let data: Vec<Value> = shared
        .config
        .models
        .iter()
        .map(|name| json!({"id": name, "object": "model", "created": 0, "owned_by": "scripted"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// Any other route or method: captured, recorded as a violation, answered 404.
async fn unexpected(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let received_at = Instant::now();
    let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let message = format!("scripted model: no route for {method} {}", uri.path());
    shared.script().capture(
        capture_parts(&method, &uri, &headers, body, received_at),
        vec![
            "the scripted model serves only POST /v1/chat/completions and GET /v1/models"
                .to_owned(),
        ],
    );
    openai_error(
        StatusCode::NOT_FOUND,
        &message,
        "invalid_request_error",
        None,
    )
}
