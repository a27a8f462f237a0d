//! `HttpPlatform` against the real gateway (`gateway::serve` over a `LocalPlatform` on a
//! loopback port): the same scenarios as the local platform's, through HTTP, errors included.

use crate::api::Platform;
use crate::error::ErrorCode;
use crate::http::HttpPlatform;
use crate::local::{LocalOptions, LocalPlatform};
use crate::model::{OperationStatus, Phase};
use crate::test_support::{packed, python_app_with};
use automaton_tools::clock::SystemClock;
use automaton_tools::resilience::RetryPolicy;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub(crate) struct Gateway {
    _dir: tempfile::TempDir,
    pub(crate) work: PathBuf,
    pub(crate) local: LocalPlatform,
    pub(crate) url: String,
    pub(crate) token: String,
    pub(crate) stop: CancellationToken,
}

impl Gateway {
    pub(crate) async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let local = LocalPlatform::open_with(
            &dir.path().join("platform"),
            Arc::new(SystemClock),
            LocalOptions {
                health_timeout: Duration::from_secs(10),
                build_timeout: Duration::from_secs(60),
                ..LocalOptions::default()
            },
        )
        .unwrap();
        let token = local.ensure_admin_token().await.unwrap().unwrap();
        assert_eq!(local.ensure_admin_token().await.unwrap(), None, "made once");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let stop = CancellationToken::new();
        tokio::spawn(crate::gateway::serve(local.clone(), listener, stop.clone()));
        let work = dir.path().join("work");
        std::fs::create_dir(&work).unwrap();
        Self {
            _dir: dir,
            work,
            local,
            url,
            token,
            stop,
        }
    }

    pub(crate) fn client(&self) -> HttpPlatform {
        HttpPlatform::with_retry(&self.url, &self.token, fast_retry()).unwrap()
    }

    pub(crate) async fn stop(self) {
        self.stop.cancel();
        self.local.shutdown().await;
    }
}

pub(crate) fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

async fn get(url: &str) -> String {
    crate::test_support::get(url).await.1
}

#[tokio::test]
async fn the_http_client_deploys_inspects_and_changes_services_through_the_gateway() {
    let gateway = Gateway::start().await;
    let client = gateway.client();
    let created = client.create_project("shop", None).await.unwrap();
    assert!(created.created);
    assert!(!client.create_project("shop", None).await.unwrap().created);

    let v1 = packed(
        &gateway.work,
        "v1",
        &[(
            "main.py",
            &python_app_with("os.environ.get('GREETING', 'v1')"),
        )],
    );
    let accepted = client.deploy("shop", "api", &v1, None).await.unwrap();
    assert_eq!(
        accepted.stream_url,
        format!("/v1/operations/{}/stream", accepted.operation_id)
    );
    let operation = client
        .wait_operation(&accepted.operation_id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        operation.status,
        OperationStatus::Succeeded,
        "{operation:?}"
    );
    let url = operation.result.as_ref().unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(get(&url).await, "v1");
    // The SSE stream replays the whole operation, in order, with when each thing happened.
    let events = client
        .operation_events(&accepted.operation_id, 0)
        .await
        .unwrap();
    let phases: Vec<&str> = events
        .iter()
        .filter(|e| e.kind == "phase")
        .map(|e| e.data["phase"].as_str().unwrap())
        .collect();
    assert_eq!(
        phases,
        ["queued", "building", "pushing", "rolling_out", "healthy"]
    );
    assert_eq!(events.last().unwrap().kind, "done");
    assert_eq!(
        events.last().unwrap().data["result"],
        operation.result.clone().unwrap()
    );
    assert!(events.iter().all(|e| e.at_ms > 0));
    let later = client
        .operation_events(&accepted.operation_id, events[2].seq)
        .await
        .unwrap();
    assert_eq!(
        later.first().unwrap().seq,
        events[3].seq,
        "Last-Event-ID resumes after it"
    );

    // A broken release: HEALTH_CHECK_FAILED with the log tail, rolled back, v1 serves on.
    let broken = packed(
        &gateway.work,
        "broken",
        &[("main.py", "raise SystemExit('boom: no database')\n")],
    );
    let accepted = client.deploy("shop", "api", &broken, None).await.unwrap();
    let failed = client
        .wait_operation(&accepted.operation_id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(failed.phase, Phase::RolledBack);
    let error = failed.error.unwrap();
    assert_eq!(error.code, ErrorCode::HealthCheckFailed);
    assert!(
        error
            .log_tail
            .iter()
            .any(|l| l.contains("boom: no database")),
        "{error:?}"
    );
    assert_eq!(get(&url).await, "v1");

    // Env through HTTP: the app sees it, no read shows it.
    let change = client
        .set_env(
            "shop",
            &[("GREETING".to_owned(), "hush-hush".to_owned())],
            None,
        )
        .await
        .unwrap();
    assert_eq!(change.restarted_services, ["api"]);
    assert_eq!(client.list_env("shop").await.unwrap(), ["GREETING"]);
    let detail = client.get_service("shop", "api", 20).await.unwrap();
    assert_eq!(get(detail.url.as_ref().unwrap()).await, "hush-hush");
    let project = client.get_project("shop").await.unwrap();
    assert!(
        !serde_json::to_string(&project)
            .unwrap()
            .contains("hush-hush")
    );
    assert!(
        !serde_json::to_string(&detail)
            .unwrap()
            .contains("hush-hush")
    );

    let scaled = client.scale("shop", "api", 2, None).await.unwrap();
    assert_eq!(scaled.direct_urls.len(), 2);
    let restarted = client.restart("shop", "api", None).await.unwrap();
    assert_eq!(restarted.health.status, "healthy");
    assert_eq!(client.list_services("shop").await.unwrap().len(), 1);
    let logs = client.logs("shop", "api", 50).await.unwrap();
    assert!(
        logs.build.iter().any(|l| l.contains("unpacked")),
        "{logs:?}"
    );
    let err = client
        .rollback("shop", "api", Some("rel_missing"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);

    let err = client
        .delete_project("shop", false, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidInput);
    let deleted = client.delete_project("shop", true, None).await.unwrap();
    assert_eq!(deleted.removed_services, ["api"]);
    assert!(client.list_projects().await.unwrap().is_empty());
    gateway.stop().await;
}

#[tokio::test]
async fn the_gateway_refuses_missing_tokens_and_answers_errors_in_the_seed_s_shape() {
    let gateway = Gateway::start().await;
    let anonymous = reqwest::Client::new();
    let response = anonymous
        .get(format!("{}/v1/projects", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["code"], "UNAUTHENTICATED");
    assert!(body["hint"].as_str().unwrap().contains("Bearer"));
    let wrong = HttpPlatform::with_retry(&gateway.url, "cwy_wrong", fast_retry()).unwrap();
    assert_eq!(
        wrong.list_projects().await.unwrap_err().code,
        ErrorCode::Unauthenticated
    );

    let client = gateway.client();
    let err = client.get_project("nope").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound);
    assert!(err.hint.contains("no projects yet"), "{err:?}");

    // Idempotency keys through HTTP.
    let first = client.create_project("shop", Some("key-1")).await.unwrap();
    assert_eq!(
        client.create_project("shop", Some("key-1")).await.unwrap(),
        first
    );
    let err = client
        .create_project("blog", Some("key-1"))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);

    // Malformed bodies, unknown paths, the OpenAPI document.
    let authed = |request: reqwest::RequestBuilder| request.bearer_auth(&gateway.token);
    let response = authed(anonymous.post(format!("{}/v1/projects", gateway.url)))
        .body("{\"nmae\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert_eq!(body["code"], "INVALID_INPUT");
    assert!(
        body["hint"].as_str().unwrap().contains("\"name\""),
        "{body}"
    );
    let response = authed(anonymous.get(format!("{}/v2/things", gateway.url)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(body["hint"].as_str().unwrap().contains("openapi"));
    let spec = anonymous
        .get(format!("{}/v1/openapi.yaml", gateway.url))
        .send()
        .await
        .unwrap();
    assert_eq!(spec.status(), 200);
    let spec = spec.text().await.unwrap();
    for operation in [
        "createProject",
        "createDeploy",
        "rollbackService",
        "setEnv",
        "streamOperation",
    ] {
        assert!(spec.contains(operation), "{operation}");
    }
    let empty = authed(anonymous.post(format!(
        "{}/v1/projects/shop/services/api/deploys",
        gateway.url
    )))
    .send()
    .await
    .unwrap();
    assert_eq!(empty.status(), 400);
    gateway.stop().await;

    // Nothing listening: a retryable error that says how to start the platform.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let gone = HttpPlatform::with_retry(&closed, "cwy_x", fast_retry()).unwrap();
    let err = gone.list_projects().await.unwrap_err();
    assert_eq!(err.code, ErrorCode::InternalError);
    assert!(err.retryable);
    assert!(err.hint.contains("automaton platform serve"), "{err:?}");
    assert!(HttpPlatform::new("ftp://x", "t").is_err());
    assert_eq!(
        HttpPlatform::new("http://x", " ").unwrap_err().code,
        ErrorCode::Unauthenticated
    );
}

/// Reads SSE blocks from `response` until `enough` says so or 10 s pass.
async fn read_sse(
    mut response: reqwest::Response,
    mut enough: impl FnMut(&[(String, String, String)]) -> bool,
) -> Vec<(String, String, String)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !enough(&events) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk()).await;
        let Ok(Ok(Some(chunk))) = chunk else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                block
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
                    .unwrap_or_default()
            };
            if !block.starts_with(':') {
                events.push((field("id:"), field("event:"), field("data:")));
            }
        }
    }
    events
}

#[tokio::test]
async fn project_events_and_service_logs_stream_as_server_sent_events() {
    let gateway = Gateway::start().await;
    let client = gateway.client();
    client.create_project("shop", None).await.unwrap();
    let app = packed(
        &gateway.work,
        "app",
        &[(
            "main.py",
            &format!("print('serving', flush=True)\n{}", python_app_with("'ok'")),
        )],
    );
    let accepted = client.deploy("shop", "api", &app, None).await.unwrap();
    client
        .wait_operation(&accepted.operation_id, Duration::from_secs(60))
        .await
        .unwrap();

    let http = reqwest::Client::new();
    let events = http
        .get(format!("{}/v1/projects/shop/events", gateway.url))
        .bearer_auth(&gateway.token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let seen = read_sse(events, |e| {
        e.iter().any(|(_, kind, _)| kind == "deploy.succeeded")
    })
    .await;
    let kinds: Vec<&str> = seen.iter().map(|(_, kind, _)| kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["project.created", "deploy.started", "deploy.succeeded"]
    );
    // Resuming after the second event starts at the third.
    let resumed = http
        .get(format!("{}/v1/projects/shop/events", gateway.url))
        .bearer_auth(&gateway.token)
        .header("Last-Event-ID", &seen[1].0)
        .send()
        .await
        .unwrap();
    let rest = read_sse(resumed, |e| !e.is_empty()).await;
    assert_eq!(rest[0].1, "deploy.succeeded");

    // Logs: the tail first, then new lines as the app writes them.
    let logs = http
        .get(format!(
            "{}/v1/projects/shop/services/api/logs?lines=5",
            gateway.url
        ))
        .bearer_auth(&gateway.token)
        .header("Accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(logs.status(), 200);
    let restart = tokio::spawn({
        let client = gateway.client();
        async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            client.restart("shop", "api", None).await.unwrap();
        }
    });
    let lines = read_sse(logs, |e| {
        e.iter()
            .filter(|(_, _, data)| data.ends_with("serving"))
            .count()
            >= 2
    })
    .await;
    restart.await.unwrap();
    assert!(
        lines
            .iter()
            .filter(|(_, kind, data)| kind == "log" && data.ends_with("serving"))
            .count()
            >= 2,
        "{lines:?}"
    );
    let missing = http
        .get(format!("{}/v1/projects/nope/events", gateway.url))
        .bearer_auth(&gateway.token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Streams that would follow forever end when the gateway stops, so it can stop.
    let mut followers = Vec::new();
    for path in ["projects/shop/events", "projects/shop/services/api/logs"] {
        let response = http
            .get(format!("{}/v1/{path}", gateway.url))
            .bearer_auth(&gateway.token)
            .header("Accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        followers.push(response);
    }
    gateway.stop.cancel();
    for mut follower in followers {
        tokio::time::timeout(Duration::from_secs(5), async {
            while let Ok(Some(_)) = follower.chunk().await {}
        })
        .await
        .expect("the stream ended with the gateway");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn scoped_tokens_reach_only_their_projects_cannot_escalate_and_die_when_revoked() {
    use crate::model::{Capability, TokenRequest};
    let gateway = Gateway::start().await;
    let admin = gateway.client();
    admin.create_project("parent", None).await.unwrap();
    admin.create_project("child-1", None).await.unwrap();
    let request = |capabilities: &[Capability], projects: Option<&[&str]>| TokenRequest {
        name: Some("test".to_owned()),
        capabilities: capabilities.to_vec(),
        projects: projects.map(|p| p.iter().map(|s| (*s).to_owned()).collect()),
    };
    // The parent's token: read, deploy and hand on tokens, for its own and its child's project.
    let parent_token = admin
        .issue_token(&request(
            &[
                Capability::Read,
                Capability::Deploy,
                Capability::ManageTokens,
            ],
            Some(&["parent", "child-1"]),
        ))
        .await
        .unwrap();
    assert!(parent_token.secret.starts_with("cwy_"));
    let parent =
        HttpPlatform::with_retry(&gateway.url, &parent_token.secret, fast_retry()).unwrap();
    let visible: Vec<String> = parent
        .list_projects()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(visible, ["child-1", "parent"]);
    admin.create_project("other", None).await.unwrap();
    let err = parent.get_project("other").await.unwrap_err();
    assert_eq!(err.code, ErrorCode::CapabilityMissing, "{err:?}");
    assert!(err.message.contains("not scoped to project `other`"));
    let err = parent
        .set_env("parent", &[("A".to_owned(), "b".to_owned())], None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::CapabilityMissing);
    assert!(err.hint.contains("manage_env"), "{err:?}");
    // An env token may set configuration, not code: LD_PRELOAD and friends need deploy too.
    let env_only = admin
        .issue_token(&request(&[Capability::ManageEnv], Some(&["parent"])))
        .await
        .unwrap();
    let env_only = HttpPlatform::with_retry(&gateway.url, &env_only.secret, fast_retry()).unwrap();
    env_only
        .set_env(
            "parent",
            &[("API_URL".to_owned(), "https://x".to_owned())],
            None,
        )
        .await
        .unwrap();
    let err = env_only
        .set_env(
            "parent",
            &[("LD_PRELOAD".to_owned(), "./evil.so".to_owned())],
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::CapabilityMissing, "{err:?}");
    assert!(
        err.message.contains("LD_PRELOAD") && err.message.contains("deploy"),
        "{err:?}"
    );
    let err = parent.create_project("new-one", None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::CapabilityMissing);

    // Sub-delegation: a child token within the parent's grant works; more is refused.
    let child_token = parent
        .issue_token(&request(
            &[Capability::Read, Capability::Deploy],
            Some(&["child-1"]),
        ))
        .await
        .unwrap();
    assert_eq!(
        child_token.token.issuer.as_deref(),
        Some(parent_token.token.id.as_str())
    );
    for escalation in [
        request(&[Capability::ManageEnv], Some(&["child-1"])),
        request(&[Capability::Read], Some(&["other"])),
        request(&[Capability::Read], None),
    ] {
        let err = parent.issue_token(&escalation).await.unwrap_err();
        assert_eq!(
            err.code,
            ErrorCode::CapabilityMissing,
            "{escalation:?}: {err:?}"
        );
    }
    let child = HttpPlatform::with_retry(&gateway.url, &child_token.secret, fast_retry()).unwrap();
    let app = packed(&gateway.work, "app", &[("index.html", "child site")]);
    let accepted = child.deploy("child-1", "web", &app, None).await.unwrap();
    let done = child
        .wait_operation(&accepted.operation_id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(done.status, OperationStatus::Succeeded, "{done:?}");
    assert_eq!(
        child
            .deploy("parent", "web", &app, None)
            .await
            .unwrap_err()
            .code,
        ErrorCode::CapabilityMissing
    );
    // Operations of projects out of reach are unknown to it: not even their project shows.
    let admin_op = admin.deploy("other", "web", &app, None).await.unwrap();
    let err = child
        .get_operation(&admin_op.operation_id)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::NotFound, "{err:?}");
    assert!(
        !serde_json::to_string(&err).unwrap().contains("other"),
        "{err:?}"
    );
    let err = child
        .issue_token(&request(&[Capability::Read], Some(&["child-1"])))
        .await
        .unwrap_err();
    assert!(err.hint.contains("manage_tokens"), "{err:?}");

    // Listings never show secrets; the parent sees what it issued.
    let listed = parent.list_tokens().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, child_token.token.id);
    let all = serde_json::to_string(&admin.list_tokens().await.unwrap()).unwrap();
    assert!(
        !all.contains(&child_token.secret) && !all.contains("cwy_"),
        "{all}"
    );

    // Revoking the parent's token revokes the child's too, at once.
    let revoked = admin.revoke_token(&parent_token.token.id).await.unwrap();
    assert_eq!(revoked.revoked.len(), 2, "{revoked:?}");
    assert_eq!(
        parent.list_projects().await.unwrap_err().code,
        ErrorCode::Unauthenticated
    );
    assert_eq!(
        child.list_projects().await.unwrap_err().code,
        ErrorCode::Unauthenticated
    );
    assert!(
        admin
            .revoke_token(&parent_token.token.id)
            .await
            .unwrap()
            .revoked
            .is_empty(),
        "idempotent"
    );
    assert_eq!(
        admin.revoke_token("tok_missing").await.unwrap_err().code,
        ErrorCode::NotFound
    );
    gateway.stop().await;
}

/// The tools' access to one HTTP client.
struct Through(Arc<dyn Platform>);

impl crate::tools::PlatformAccess for Through {
    fn platform(&self) -> automaton_tools::tool::BoxFuture<'_, crate::Result<Arc<dyn Platform>>> {
        let platform = Arc::clone(&self.0);
        Box::pin(async move { Ok(platform) })
    }

    fn workspace(&self) -> PathBuf {
        PathBuf::from("/nonexistent")
    }
}

#[tokio::test]
async fn the_token_tool_hands_on_less_never_more_and_revokes_at_once() {
    use crate::model::{Capability, TokenRequest};
    use crate::tools::TokenTool;
    use automaton_tools::tool::{Provenance, ToolContext, ToolError, ToolErrorCode};
    let gateway = Gateway::start().await;
    let admin = gateway.client();
    admin.create_project("parent", None).await.unwrap();
    admin.create_project("child-1", None).await.unwrap();
    // The agent's own token: read, deploy and hand on tokens, for its two projects.
    let own = admin
        .issue_token(&TokenRequest {
            name: Some("agent".to_owned()),
            capabilities: vec![
                Capability::Read,
                Capability::Deploy,
                Capability::ManageTokens,
            ],
            projects: Some(vec!["parent".to_owned(), "child-1".to_owned()]),
        })
        .await
        .unwrap();
    let agent: Arc<dyn Platform> =
        Arc::new(HttpPlatform::with_retry(&gateway.url, &own.secret, fast_retry()).unwrap());
    let tool = automaton_tools::tool::TypedTool::new(TokenTool(Arc::new(Through(agent)))).unwrap();
    let ctx = ToolContext {
        call_id: "c1".to_owned(),
        turn_id: None,
        provenance: Provenance::SelfDirected,
        cancel: CancellationToken::new(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(30),
        clock: Arc::new(SystemClock),
    };
    use automaton_tools::tool::DynTool;
    let call = |args: serde_json::Value| tool.call_json(&ctx, args);

    let issued = call(serde_json::json!({
        "action": "issue", "capabilities": ["read", "deploy"], "projects": ["child-1"], "name": "child"
    }))
    .await
    .unwrap()
    .value;
    let secret = issued["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("cwy_"));
    assert!(
        issued["next"]
            .as_str()
            .unwrap()
            .contains("never shown again")
    );
    let child = HttpPlatform::with_retry(&gateway.url, &secret, fast_retry()).unwrap();
    assert_eq!(child.list_projects().await.unwrap().len(), 1);

    // More than the agent holds is refused, in the platform's words.
    let model_error = |err: ToolError| match err {
        ToolError::RespondToModel(model) => model,
        other => panic!("{other:?}"),
    };
    let refused = model_error(
        call(serde_json::json!({"action": "issue", "capabilities": ["manage_env"], "projects": ["child-1"]}))
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, ToolErrorCode::PlatformError, "{refused:?}");
    assert!(refused.message.contains("manage_env"), "{refused:?}");
    let unknown = model_error(
        call(serde_json::json!({"action": "issue", "capabilities": ["root"]}))
            .await
            .unwrap_err(),
    );
    assert_eq!(unknown.code, ToolErrorCode::InvalidArguments);
    assert!(unknown.hint.contains("manage_repos"), "{unknown:?}");
    let no_id = model_error(
        call(serde_json::json!({"action": "revoke"}))
            .await
            .unwrap_err(),
    );
    assert!(no_id.hint.contains("action list"), "{no_id:?}");

    // Listing shows what it issued, never a secret; revoking ends it at once.
    let listed = call(serde_json::json!({"action": "list"}))
        .await
        .unwrap()
        .value;
    let text = listed.to_string();
    assert!(
        text.contains(issued["id"].as_str().unwrap()) && !text.contains("cwy_"),
        "{text}"
    );
    let revoked = call(serde_json::json!({"action": "revoke", "id": issued["id"]}))
        .await
        .unwrap()
        .value;
    assert_eq!(revoked["revoked"], serde_json::json!([issued["id"]]));
    assert_eq!(
        child.list_projects().await.unwrap_err().code,
        ErrorCode::Unauthenticated
    );
    gateway.stop().await;
}

/// A gateway whose data directory the `postgres` user can pass through, and a guard that
/// kills its engines if the test fails.
async fn datastore_gateway() -> (Gateway, crate::datastore_scenarios::EngineGuard) {
    use std::os::unix::fs::PermissionsExt;
    let gateway = Gateway::start().await;
    std::fs::set_permissions(gateway._dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let guard = crate::datastore_scenarios::EngineGuard(gateway.local.data_dir().to_owned());
    (gateway, guard)
}

#[tokio::test]
async fn the_http_client_runs_the_postgres_scenario_through_the_gateway() {
    let (gateway, _guard) = datastore_gateway().await;
    let client = gateway.client();
    crate::datastore_scenarios::postgres_scenario(&client, &gateway.local, &gateway.work).await;
    // The audit names the token that ran each query.
    let audit = gateway.local.query_audit("pgshop").await;
    assert!(
        audit
            .iter()
            .all(|(principal, ..)| principal.starts_with("tok_")),
        "{audit:?}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn the_http_client_runs_the_redis_and_sqlite_scenario_and_bad_inputs_through_the_gateway() {
    let (gateway, _guard) = datastore_gateway().await;
    let client = gateway.client();
    crate::datastore_scenarios::redis_and_sqlite_scenario(&client, &gateway.work).await;
    crate::datastore_scenarios::bad_inputs_scenario(&client).await;
    // Unknown kinds and malformed bodies are refused by the gateway itself.
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{}/v1/projects/kv/datastores", gateway.url))
        .bearer_auth(&gateway.token)
        .body(r#"{"kind": "mysql"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
    assert!(
        body["hint"]
            .as_str()
            .unwrap()
            .contains("postgres, redis, sqlite"),
        "{body}"
    );
    let spec = http
        .get(format!("{}/v1/openapi.yaml", gateway.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for operation in [
        "createDatastore",
        "listDatastores",
        "getDatastore",
        "deleteDatastore",
        "listBackups",
        "createBackup",
        "restoreBackup",
        "listDatastoreTables",
        "queryDatastore",
    ] {
        assert!(spec.contains(operation), "{operation}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn datastore_routes_need_manage_datastores_and_the_project_in_scope() {
    use crate::model::{Capability, DatastoreKind, TokenRequest};
    let (gateway, _guard) = datastore_gateway().await;
    let admin = gateway.client();
    admin.create_project("mine", None).await.unwrap();
    admin.create_project("theirs", None).await.unwrap();
    admin
        .add_datastore("mine", DatastoreKind::Sqlite, None, None)
        .await
        .unwrap();
    let issue = |capabilities: &[Capability]| TokenRequest {
        name: None,
        capabilities: capabilities.to_vec(),
        projects: Some(vec!["mine".to_owned()]),
    };
    let reader = admin
        .issue_token(&issue(&[Capability::Read]))
        .await
        .unwrap();
    let reader = HttpPlatform::with_retry(&gateway.url, &reader.secret, fast_retry()).unwrap();
    // Reads need `read`; everything that changes or queries needs `manage_datastores`.
    assert_eq!(reader.list_datastores("mine").await.unwrap().len(), 1);
    reader.get_datastore("mine", "sqlite").await.unwrap();
    reader.list_tables("mine", "sqlite").await.unwrap();
    reader.list_backups("mine", "sqlite").await.unwrap();
    for err in [
        reader
            .add_datastore("mine", DatastoreKind::Redis, None, None)
            .await
            .unwrap_err(),
        reader
            .query_datastore("mine", "sqlite", "SELECT 1", None)
            .await
            .unwrap_err(),
        reader
            .create_backup("mine", "sqlite", None)
            .await
            .unwrap_err(),
        reader
            .delete_datastore("mine", "sqlite", true, None)
            .await
            .unwrap_err(),
        reader
            .restore_backup("mine", "sqlite", "bk_x", None)
            .await
            .unwrap_err(),
    ] {
        assert_eq!(err.code, ErrorCode::CapabilityMissing, "{err:?}");
        assert!(err.hint.contains("manage_datastores"), "{err:?}");
    }
    let manager = admin
        .issue_token(&issue(&[Capability::ManageDatastores]))
        .await
        .unwrap();
    let manager = HttpPlatform::with_retry(&gateway.url, &manager.secret, fast_retry()).unwrap();
    let result = manager
        .query_datastore("mine", "sqlite", "SELECT 41 + 1 AS answer", None)
        .await
        .unwrap();
    assert_eq!(result.rows, [[serde_json::json!(42)]]);
    let err = manager
        .add_datastore("theirs", DatastoreKind::Sqlite, None, None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::CapabilityMissing);
    assert!(
        err.message.contains("not scoped to project `theirs`"),
        "{err:?}"
    );
    assert!(
        admin.list_datastores("theirs").await.unwrap().is_empty(),
        "nothing made"
    );
    gateway.stop().await;
}

/// Review finding: `manage_repos` alone deploys: a repository created with a
/// `deploy_service` deploys every commit to the default branch (and every push), so a token
/// without `deploy` runs code of its choice as a service of the project.
#[tokio::test]
async fn a_token_without_deploy_cannot_deploy_through_a_repository() {
    use crate::model::{Capability, RepoRequest, TokenRequest};
    let gateway = Gateway::start().await;
    let admin = gateway.client();
    admin.create_project("mine", None).await.unwrap();
    let repos_only = admin
        .issue_token(&TokenRequest {
            name: None,
            capabilities: vec![Capability::Read, Capability::ManageRepos],
            projects: Some(vec!["mine".to_owned()]),
        })
        .await
        .unwrap();
    let client = HttpPlatform::with_retry(&gateway.url, &repos_only.secret, fast_retry()).unwrap();
    let request = |name: &str| RepoRequest {
        name: name.to_owned(),
        deploy_service: Some("web".to_owned()),
    };
    let err = client
        .create_repo("mine", &request("site"), None)
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::CapabilityMissing, "{err:?}");
    // A repository that deploys (the admin made it) takes commits only with `deploy` too.
    admin
        .create_repo("mine", &request("site"), None)
        .await
        .unwrap();
    let commit = crate::local::repos::tests::commit(
        "a site",
        vec![crate::local::repos::tests::text(
            "index.html",
            "<h1>mine</h1>",
        )],
    );
    let refused = client.commit_files("mine", "site", &commit, None).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|err| err.code == ErrorCode::CapabilityMissing),
        "a manage_repos token deployed: {refused:?}"
    );
    // …and a push the same way (git's request, authenticated by the same token).
    let response = reqwest::Client::new()
        .post(format!(
            "{}/git/mine/site.git/git-receive-pack",
            gateway.url
        ))
        .bearer_auth(&repos_only.secret)
        .body(Vec::new())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::FORBIDDEN);
    gateway.stop().await;
}

/// A server in front of the gateway that answers the first `limited` calls with 429, a
/// plain-text body and `retry_after` (when given), then lists no projects; counts the calls.
async fn rate_limited_server(
    limited: usize,
    retry_after: Option<&'static str>,
) -> (
    String,
    Arc<std::sync::atomic::AtomicUsize>,
    CancellationToken,
) {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    let app = axum::Router::new().route(
        "/v1/projects",
        axum::routing::get(move || {
            let calls = Arc::clone(&counted);
            async move {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n < limited {
                    let mut response = (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
                    if let Some(value) = retry_after {
                        response
                            .headers_mut()
                            .insert(header::RETRY_AFTER, header::HeaderValue::from_static(value));
                    }
                    response
                } else {
                    axum::Json(serde_json::json!({ "projects": [] })).into_response()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let until = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(until.cancelled_owned())
            .await
    });
    (url, calls, stop)
}

#[tokio::test]
async fn a_429_is_retried_no_sooner_than_its_retry_after() {
    let (url, calls, stop) = rate_limited_server(1, Some("1")).await;
    let client = HttpPlatform::with_retry(&url, "cwy_x", fast_retry()).unwrap();
    let started = std::time::Instant::now();
    let projects = client.list_projects().await.unwrap();
    assert!(projects.is_empty());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the retry waited {:?}, not the 1 s the server asked",
        started.elapsed()
    );
    stop.cancel();
}

#[tokio::test]
async fn a_plain_text_429_is_retried_not_refused_and_keeps_its_status() {
    let (url, calls, stop) = rate_limited_server(1, None).await;
    let client = HttpPlatform::with_retry(&url, "cwy_x", fast_retry()).unwrap();
    assert!(client.list_projects().await.unwrap().is_empty());
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    // Limited on every attempt: the last answer's status and wait reach the caller.
    let (url, _, stop_always) = rate_limited_server(usize::MAX, Some("0")).await;
    let client = HttpPlatform::with_retry(&url, "cwy_x", fast_retry()).unwrap();
    let err = client.list_projects().await.unwrap_err();
    assert!(err.retryable, "{err:?}");
    assert_eq!(err.code, ErrorCode::QuotaExceeded);
    assert_eq!(
        err.http,
        Some(crate::error::HttpFailure {
            status: 429,
            retry_after: Some(Duration::ZERO)
        })
    );
    assert!(err.hint.contains("Retry-After"), "{}", err.hint);
    stop.cancel();
    stop_always.cancel();
}
