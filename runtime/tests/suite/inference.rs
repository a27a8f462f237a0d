//! The inference client and router against real HTTP servers (the scripted model): answers,
//! Retry-After, failover, the circuit breaker, context-length errors, budgets and costs.

use automaton_runtime::config::{InferenceConfig, ModelConfig};
use automaton_runtime::inference::{
    ChatRequest, Endpoint, Inference, InferenceFailure, Message, Task,
};
use automaton_test_support::{Reply, ScriptedCall, ScriptedModel};
use automaton_tools::clock::SystemClock;
use automaton_tools::db::StateDb;
use automaton_tools::dispatch::SharedDb;
use automaton_tools::money::Usdc;
use automaton_tools::resilience::RetryPolicy;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Rig {
    _dir: tempfile::TempDir,
    db: SharedDb,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let db = StateDb::open(
        &dir.path().join("state.db"),
        automaton_runtime::state::ALL_SCHEMAS,
    )
    .unwrap();
    Rig {
        _dir: dir,
        db: Arc::new(Mutex::new(db)),
    }
}

fn endpoint(name: &str, server: &ScriptedModel) -> Endpoint {
    Endpoint {
        name: name.to_owned(),
        base_url: server.base_url(),
        api_key: format!("sk-{name}"),
    }
}

fn priced_model() -> ModelConfig {
    ModelConfig {
        name: "scripted-model".into(),
        context_window: 8192,
        input_price_per_million_micro_usdc: Usdc::dollars(2),
        output_price_per_million_micro_usdc: Usdc::dollars(8),
        supports_tools: true,
    }
}

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        jitter: 0.0,
        ..RetryPolicy::default()
    }
}

fn router(rig: &Rig, endpoints: &[Endpoint], config: InferenceConfig) -> Inference {
    Inference::new(
        endpoints,
        vec![priced_model()],
        config,
        Usdc::dollars(500),
        fast_retries(),
        Arc::clone(&rig.db),
        Arc::new(SystemClock),
    )
    .unwrap()
}

fn conversation() -> Vec<Message> {
    vec![
        Message::System {
            content: "# Constitution\nbe good".into(),
        },
        Message::User {
            content: "wake: test".into(),
        },
    ]
}

fn request(messages: &[Message]) -> ChatRequest<'_> {
    ChatRequest {
        task: Task::AgentTurn,
        low_compute: false,
        model_override: None,
        messages,
        tools: &[],
        estimated_prompt_tokens: 100,
        turn_id: Some(7),
    }
}

fn costs(rig: &Rig) -> Vec<(String, i64, i64, i64, String)> {
    let db = rig.db.lock().unwrap();
    let mut stmt = db
        .conn()
        .prepare("SELECT provider, prompt_tokens, completion_tokens, cost_micro_usdc, outcome FROM inference_costs ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[tokio::test]
async fn answers_and_tool_calls_come_back_and_costs_are_recorded() {
    let rig = rig();
    let server = ScriptedModel::start().await.unwrap();
    server.push(
        Reply::tool_calls([
            ScriptedCall::new("c1", "exec", r#"{"command":"ls"}"#),
            ScriptedCall::new("c2", "read_file", r#"{"path":"README.md"}"#),
        ])
        .with_usage(1000, 50),
    );
    let inference = router(&rig, &[endpoint("a", &server)], InferenceConfig::default());
    let messages = conversation();
    let tools = vec![
        serde_json::json!({"type":"function","function":{"name":"exec","description":"run","parameters":{"type":"object","properties":{}}}}),
    ];
    let mut req = request(&messages);
    req.tools = &tools;
    let result = inference.chat(&req).await.unwrap();
    assert_eq!(result.completion.tool_calls.len(), 2);
    assert_eq!(result.completion.tool_calls[1].name, "read_file");
    assert_eq!(result.provider, "a");
    // 1000 × $2/M + 50 × $8/M = 2000 + 400 micro-USDC.
    assert_eq!(result.cost, Usdc(2_400));
    assert_eq!(costs(&rig), vec![("a".into(), 1000, 50, 2400, "ok".into())]);
    let sent = &server.requests()[0];
    assert_eq!(sent.header("authorization"), Some("Bearer sk-a"));
    assert_eq!(sent.body["model"], "scripted-model");
    assert_eq!(sent.body["tool_choice"], "auto");
    assert_eq!(sent.body["messages"][0]["role"], "system");
    server.assert_clean();
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let rig = rig();
    let server = ScriptedModel::start().await.unwrap();
    server.push(Reply::rate_limited(1));
    server.push(Reply::text("ok"));
    let inference = router(&rig, &[endpoint("a", &server)], InferenceConfig::default());
    let messages = conversation();
    let started = std::time::Instant::now();
    let result = inference.chat(&request(&messages)).await.unwrap();
    assert_eq!(result.completion.content, "ok");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 2);
}

/// `Retry-After` may be an HTTP-date rather than seconds; the wait is counted to it.
#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let rig = rig();
    let server = ScriptedModel::start().await.unwrap();
    // Whole seconds only: two from now is at least one second away.
    let at = std::time::SystemTime::now() + Duration::from_secs(2);
    server.push(Reply::rate_limited_until(httpdate::fmt_http_date(at)));
    server.push(Reply::text("ok"));
    let inference = router(&rig, &[endpoint("a", &server)], InferenceConfig::default());
    let messages = conversation();
    let started = std::time::Instant::now();
    let result = inference.chat(&request(&messages)).await.unwrap();
    assert_eq!(result.completion.content, "ok");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn failover_to_the_next_provider_and_the_breaker_opens() {
    let rig = rig();
    let broken = ScriptedModel::start().await.unwrap();
    broken.set_fallback(Some(Reply::status(500, "upstream down")));
    let healthy = ScriptedModel::start().await.unwrap();
    healthy.set_fallback(Some(Reply::text("from b")));
    let inference = router(
        &rig,
        &[endpoint("a", &broken), endpoint("b", &healthy)],
        InferenceConfig::default(),
    );
    let messages = conversation();
    // Call 1: three attempts on a (all 500), then b answers. Call 2: two more failures on a
    // reach five in a row, which opens its breaker.
    for _ in 0..2 {
        let result = inference.chat(&request(&messages)).await.unwrap();
        assert_eq!(result.provider, "b");
        assert_eq!(result.completion.content, "from b");
    }
    let before = broken.requests().len();
    assert!(before >= 5, "a was tried {before} times");
    // While open, a is skipped without a request.
    let result = inference.chat(&request(&messages)).await.unwrap();
    assert_eq!(result.provider, "b");
    assert_eq!(
        broken.requests().len(),
        before,
        "an open breaker sends nothing"
    );
}

#[tokio::test]
async fn context_length_errors_are_reported_for_compaction() {
    let rig = rig();
    let server = ScriptedModel::start().await.unwrap();
    server.push(Reply::ContextLengthExceeded);
    let inference = router(&rig, &[endpoint("a", &server)], InferenceConfig::default());
    let messages = conversation();
    let err = inference.chat(&request(&messages)).await.unwrap_err();
    assert!(matches!(err, InferenceFailure::ContextLength(_)), "{err:?}");
    assert_eq!(
        server.requests().len(),
        1,
        "not retried: the same prompt cannot fit"
    );
}

#[tokio::test]
async fn a_call_over_budget_is_not_made() {
    let rig = rig();
    let server = ScriptedModel::start().await.unwrap();
    server.set_fallback(Some(Reply::text("ok").with_usage(100_000, 1_000)));
    let config = InferenceConfig {
        max_tokens_per_call: 100,
        per_call_max_micro_usdc: Usdc::cents(10),
        hourly_max_micro_usdc: Usdc::cents(20),
        ..InferenceConfig::default()
    };
    let inference = router(&rig, &[endpoint("a", &server)], config);
    let messages = conversation();
    // Each call costs 100k × $2/M + 1k × $8/M = $0.208.
    inference.chat(&request(&messages)).await.unwrap();
    let err = inference.chat(&request(&messages)).await.unwrap_err();
    let first_spend_at: i64 = rig
        .db
        .lock()
        .unwrap()
        .conn()
        .query_row("SELECT created_at FROM inference_costs", [], |r| r.get(0))
        .unwrap();
    match &err {
        InferenceFailure::Budget(refusal) => {
            assert_eq!(refusal.budget, "hour");
            assert!(refusal.message.contains("hour"), "{refusal:?}");
            // The first call's spend leaves the hour window one hour after it was made.
            assert_eq!(refusal.retry_at_ms, Some(first_spend_at + 3_600_001));
            assert!(
                err.hint()
                    .contains(&(first_spend_at + 3_600_001).to_string())
            );
        }
        other => panic!("expected a budget refusal, got {other:?}"),
    }
    assert!(!err.hint().is_empty());
    assert_eq!(
        server.requests().len(),
        1,
        "the refused call was never sent"
    );
    // A single call estimated above the per-call ceiling is refused up front.
    let mut big = request(&messages);
    big.estimated_prompt_tokens = 1_000_000;
    match inference.chat(&big).await {
        Err(InferenceFailure::Budget(refusal)) => {
            assert_eq!(refusal.budget, "per_call");
            assert_eq!(refusal.retry_at_ms, None, "waiting cannot make it fit");
        }
        other => panic!("expected a per-call refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn model_choice_respects_the_creator_switch_model_and_tiers() {
    let rig = rig();
    let server = ScriptedModel::start().await.unwrap();
    let cheap = ModelConfig {
        name: "cheap".into(),
        ..priced_model()
    };
    let inference = Inference::new(
        &[endpoint("a", &server)],
        vec![priced_model(), cheap],
        InferenceConfig {
            model: Some("scripted-model".into()),
            low_compute_model: Some("cheap".into()),
            ..InferenceConfig::default()
        },
        Usdc::dollars(500),
        fast_retries(),
        Arc::clone(&rig.db),
        Arc::new(SystemClock),
    )
    .unwrap();
    assert_eq!(
        inference.choose_model(Task::AgentTurn, false, None).name,
        "scripted-model"
    );
    assert_eq!(
        inference
            .choose_model(Task::AgentTurn, false, Some("cheap"))
            .name,
        "cheap"
    );
    assert_eq!(
        inference
            .choose_model(Task::AgentTurn, true, Some("scripted-model"))
            .name,
        "cheap"
    );
    assert_eq!(
        inference.choose_model(Task::Summarise, false, None).name,
        "scripted-model"
    );
    // A summary model serves summaries only; the agent's turns keep the creator's model.
    let with_summary = Inference::new(
        &[endpoint("a", &server)],
        vec![
            priced_model(),
            ModelConfig {
                name: "cheap".into(),
                ..priced_model()
            },
        ],
        InferenceConfig {
            model: Some("scripted-model".into()),
            summary_model: Some("cheap".into()),
            ..InferenceConfig::default()
        },
        Usdc::dollars(500),
        fast_retries(),
        Arc::clone(&rig.db),
        Arc::new(SystemClock),
    )
    .unwrap();
    assert_eq!(
        with_summary.choose_model(Task::Summarise, false, None).name,
        "cheap"
    );
    assert_eq!(
        with_summary.choose_model(Task::AgentTurn, false, None).name,
        "scripted-model"
    );
    assert_eq!(
        with_summary
            .choose_model(Task::HeartbeatTriage, false, None)
            .name,
        "scripted-model"
    );
}

#[tokio::test]
async fn no_provider_is_a_clear_failure() {
    let rig = rig();
    let inference = router(&rig, &[], InferenceConfig::default());
    let messages = conversation();
    let err = inference.chat(&request(&messages)).await.unwrap_err();
    assert_eq!(err, InferenceFailure::NoProvider);
    assert!(err.hint().contains("OPENAI_API_KEY"));
}

fn config_with(providers: serde_json::Value) -> automaton_runtime::config::AutomatonConfig {
    automaton_runtime::config::AutomatonConfig::parse(
        &serde_json::json!({
            "configVersion": 1,
            "name": "Atlas",
            "genesisPrompt": "x",
            "creatorAddress": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "walletAddress": "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "walletEncrypted": false,
            "constitutionSha256": "a".repeat(64),
            "createdAtMs": 1,
            "providers": providers,
        })
        .to_string(),
    )
    .unwrap()
}

#[test]
fn endpoints_honour_the_openai_environment_and_key_sources() {
    use automaton_runtime::home::Home;
    use automaton_runtime::inference::endpoints;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let env = |pairs: &[(&str, &str)]| -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    };
    let none = config_with(serde_json::json!([]));
    assert!(endpoints(&none, &home, &env(&[])).unwrap().is_empty());
    let found = endpoints(&none, &home, &env(&[("OPENAI_API_KEY", "sk-1")])).unwrap();
    assert_eq!(found[0].base_url, "https://api.openai.com/v1");
    assert_eq!(found[0].api_key, "sk-1");
    let local = endpoints(
        &none,
        &home,
        &env(&[("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")]),
    )
    .unwrap();
    assert_eq!(local[0].base_url, "http://127.0.0.1:8080/v1");
    assert!(
        !format!("{:?}", found[0]).contains("sk-1"),
        "Debug redacts the key"
    );

    let by_env = config_with(
        serde_json::json!([{"name": "or", "baseUrl": "https://openrouter.ai/api/v1", "apiKeyEnv": "OPENROUTER_KEY"}]),
    );
    let err = endpoints(&by_env, &home, &env(&[])).unwrap_err();
    assert!(err.hint().contains("OPENROUTER_KEY"), "{}", err.hint());
    assert_eq!(
        endpoints(&by_env, &home, &env(&[("OPENROUTER_KEY", "k")])).unwrap()[0].api_key,
        "k"
    );

    std::fs::create_dir_all(dir.path().join("keys")).unwrap();
    let key = dir.path().join("keys/a.key");
    std::fs::write(&key, "sk-file\n").unwrap();
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let by_file = config_with(
        serde_json::json!([{"name": "a", "baseUrl": "https://x.example/v1", "apiKeyFile": "keys/a.key"}]),
    );
    assert_eq!(
        endpoints(&by_file, &home, &env(&[])).unwrap()[0].api_key,
        "sk-file"
    );
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    assert!(
        endpoints(&by_file, &home, &env(&[])).is_err(),
        "a readable key file is refused"
    );
}

/// The agent's own inference client through the platform's proxy (seed 003's "Conway proxy,
/// billed from credits"): a real local platform behind its gateway, the scripted model as the
/// upstream. Answers come back and are charged to the credits; Retry-After and
/// context-length errors reach the client as the provider sent them; with no credits left the
/// call fails without reaching the upstream.
#[tokio::test]
async fn the_agent_s_client_works_through_the_platform_s_inference_proxy_billed_from_credits() {
    use automaton_platform::credits::CreditGrant;
    use automaton_platform::inference::{
        Inference as Upstream, InferenceConfig as ProxyConfig, Price,
    };
    use automaton_platform::model::{Capability, TokenRequest};
    use automaton_platform::{LocalPlatform, Platform};

    let upstream = ScriptedModel::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = LocalPlatform::open(&dir.path().join("platform"), Arc::new(SystemClock)).unwrap();
    let price = Price {
        input_micro_usd_per_million: 2_000_000,
        output_micro_usd_per_million: 8_000_000,
    };
    local
        .set_inference(
            Upstream::new(ProxyConfig {
                base_url: upstream.base_url(),
                key: None,
                models: [("scripted-model".to_owned(), price)].into(),
            })
            .unwrap(),
        )
        .unwrap();
    local.ensure_admin_token().await.unwrap();
    let token = local
        .issue_token(&TokenRequest {
            name: Some("agent".to_owned()),
            capabilities: vec![Capability::Inference],
            projects: None,
        })
        .await
        .unwrap()
        .secret;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway = format!("http://{}/v1", listener.local_addr().unwrap());
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(automaton_platform::gateway::serve(
        local.clone(),
        listener,
        stop.clone(),
    ));

    let rig = rig();
    let proxy = Endpoint {
        name: "conway".to_owned(),
        base_url: gateway,
        api_key: token,
    };
    let inference = router(&rig, &[proxy], InferenceConfig::default());
    let messages = conversation();
    // No credits: refused before the upstream.
    assert!(inference.chat(&request(&messages)).await.is_err());
    assert!(upstream.requests().is_empty());

    local
        .grant_credits(
            &CreditGrant {
                amount_micro_usd: 1_000_000,
                reason: "test funds".to_owned(),
            },
            None,
        )
        .await
        .unwrap();
    upstream.push(Reply::rate_limited(1));
    upstream.push(Reply::text("through the proxy").with_usage(1000, 50));
    let started = std::time::Instant::now();
    let result = inference.chat(&request(&messages)).await.unwrap();
    assert_eq!(result.completion.content, "through the proxy");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured"
    );
    // 1000 × $2/M + 50 × $8/M = 2400 micro-USD, on the platform's ledger too.
    assert_eq!(result.cost, Usdc(2_400));
    assert_eq!(
        local.credits().await.unwrap().balance_micro_usd,
        1_000_000 - 2_400
    );

    upstream.push(Reply::ContextLengthExceeded);
    let err = inference.chat(&request(&messages)).await.unwrap_err();
    assert!(matches!(err, InferenceFailure::ContextLength(_)), "{err:?}");
    assert_eq!(
        local.credits().await.unwrap().balance_micro_usd,
        1_000_000 - 2_400,
        "errors are not charged"
    );
    stop.cancel();
}

/// The breaker reopens the way to a provider once its open window (60 s) has passed on the
/// router's clock: one trial call goes through and, when it succeeds, the breaker closes.
#[tokio::test]
async fn the_breaker_closes_again_after_its_open_window() {
    let rig = rig();
    let clock = automaton_tools::clock::ManualClock::new(1_800_000_000_000);
    let server = ScriptedModel::start().await.unwrap();
    server.set_fallback(Some(Reply::status(500, "upstream down")));
    let inference = Inference::new(
        &[endpoint("a", &server)],
        vec![priced_model()],
        InferenceConfig::default(),
        Usdc::dollars(500),
        fast_retries(),
        Arc::clone(&rig.db),
        Arc::new(clock.clone()),
    )
    .unwrap();
    let messages = conversation();
    // Three failed attempts, then two more: the fifth in a row opens the breaker, and the
    // retry loop stops there.
    for _ in 0..2 {
        assert!(inference.chat(&request(&messages)).await.is_err());
    }
    let tried = server.requests().len();
    assert_eq!(tried, 5);
    server.set_fallback(Some(Reply::text("back")));
    assert!(
        inference.chat(&request(&messages)).await.is_err(),
        "refused while open"
    );
    assert_eq!(
        server.requests().len(),
        tried,
        "an open breaker sends nothing"
    );
    clock.advance(61_000);
    let result = inference.chat(&request(&messages)).await.unwrap();
    assert_eq!(result.completion.content, "back");
    let result = inference.chat(&request(&messages)).await.unwrap();
    assert_eq!(
        result.completion.content, "back",
        "closed: calls flow again"
    );
    assert_eq!(server.requests().len(), tried + 2);
}

/// A model configured with `supportsTools: false` is never sent the tool list.
#[tokio::test]
async fn a_model_without_tool_support_gets_no_tools_in_its_request() {
    let rig = rig();
    let server = ScriptedModel::start().await.unwrap();
    server.push(Reply::text("plain"));
    let inference = Inference::new(
        &[endpoint("a", &server)],
        vec![ModelConfig {
            supports_tools: false,
            ..priced_model()
        }],
        InferenceConfig::default(),
        Usdc::dollars(500),
        fast_retries(),
        Arc::clone(&rig.db),
        Arc::new(SystemClock),
    )
    .unwrap();
    let messages = conversation();
    let tools = vec![
        serde_json::json!({"type":"function","function":{"name":"exec","description":"run","parameters":{"type":"object","properties":{}}}}),
    ];
    let mut req = request(&messages);
    req.tools = &tools;
    let result = inference.chat(&req).await.unwrap();
    assert_eq!(result.completion.content, "plain");
    let sent = &server.requests()[0];
    assert!(sent.body.get("tools").is_none(), "{}", sent.body);
    assert!(sent.body.get("tool_choice").is_none(), "{}", sent.body);
}
