//! The inference proxy and the credit routes against the real gateway over a real local
//! platform, with the scripted OpenAI-compatible model server as the upstream (real HTTP).

use crate::api::Platform;
use crate::credits::{CreditGrant, CreditKind};
use crate::error::ErrorCode;
use crate::http::HttpPlatform;
use crate::http_tests::{Gateway, fast_retry};
use crate::inference::{Inference, InferenceConfig, Price, UpstreamKey};
use crate::model::{Capability, TokenRequest};
use automaton_test_support::{Reply, ScriptedModel};
use serde_json::{Value, json};
use std::collections::BTreeMap;

const UPSTREAM_KEY: &str = "sk-upstream-secret-4242";
const MODEL: &str = "scripted-model";
const PRICE: Price = Price {
    input_micro_usd_per_million: 150_000,
    output_micro_usd_per_million: 600_000,
};

/// The gateway with the scripted model as its priced upstream.
async fn proxied() -> (Gateway, ScriptedModel) {
    let gateway = Gateway::start().await;
    let model = ScriptedModel::start().await.unwrap();
    let config = InferenceConfig {
        base_url: model.base_url(),
        key: Some(UpstreamKey::new(UPSTREAM_KEY)),
        models: BTreeMap::from([(MODEL.to_owned(), PRICE)]),
    };
    gateway
        .local
        .set_inference(Inference::new(config).unwrap())
        .unwrap();
    (gateway, model)
}

/// A token holding `capabilities`, issued by the admin.
async fn token(gateway: &Gateway, capabilities: &[Capability]) -> String {
    gateway
        .client()
        .issue_token(&TokenRequest {
            name: Some("agent".to_owned()),
            capabilities: capabilities.to_vec(),
            projects: None,
        })
        .await
        .unwrap()
        .secret
}

/// `POST /v1/chat/completions` with `token`: (status, headers, JSON body).
async fn chat(
    gateway: &Gateway,
    token: &str,
    body: &Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gateway.url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(UPSTREAM_KEY),
        "the upstream key leaked: {text}"
    );
    (status, headers, serde_json::from_str(&text).unwrap())
}

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello"}]})
}

async fn fund(gateway: &Gateway, micro: i64) {
    gateway
        .client()
        .grant_credits(
            &CreditGrant {
                amount_micro_usd: micro,
                reason: "test funds".to_owned(),
            },
            None,
        )
        .await
        .unwrap();
}

async fn balance(gateway: &Gateway) -> i64 {
    gateway.client().credits().await.unwrap().balance_micro_usd
}

#[tokio::test]
async fn a_token_with_inference_gets_the_upstream_s_answer_and_its_account_is_charged_exactly() {
    let (gateway, model) = proxied().await;
    fund(&gateway, 1_000_000).await;
    let reader = token(&gateway, &[Capability::Read]).await;
    let (status, _, refused) = chat(&gateway, &reader, &hello(MODEL)).await;
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["code"], "CAPABILITY_MISSING");
    assert!(refused["message"].as_str().unwrap().contains("inference"));
    assert!(
        refused["error"]["message"].is_string(),
        "OpenAI-shaped too: {refused}"
    );
    assert!(model.requests().is_empty(), "refused before the upstream");

    let agent = token(&gateway, &[Capability::Inference]).await;
    model.push(Reply::text("hi from upstream").with_usage(1_000, 200));
    let (status, headers, answer) = chat(&gateway, &agent, &hello(MODEL)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "hi from upstream"
    );
    // 1000 × 0.15 + 200 × 0.60 = 270 micro-USD.
    let cost = PRICE.cost(1_000, 200);
    assert_eq!(cost, 270);
    assert_eq!(headers["x-conway-charged-micro-usd"], "270");
    assert_eq!(balance(&gateway).await, 1_000_000 - cost);
    let history = gateway.client().credit_history(1, None).await.unwrap();
    let entry = &history.entries[0];
    assert_eq!(
        (entry.kind, entry.amount_micro_usd),
        (CreditKind::Inference, -270)
    );
    assert_eq!(
        entry.reference.as_ref(),
        answer["id"].as_str().map(str::to_owned).as_ref()
    );

    // The upstream saw its own key, never the caller's platform token.
    let seen = model.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {UPSTREAM_KEY}").as_str())
    );

    // An answer without `usage` is charged by counting, never for free.
    model.push(Reply::Status {
        status: 200,
        body: json!({
            "id": "chatcmpl-no-usage", "object": "chat.completion", "created": 0, "model": MODEL,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "an answer with no usage at all"}}],
        }),
        retry_after: None,
    });
    let before = balance(&gateway).await;
    let (status, _, _) = chat(&gateway, &agent, &hello(MODEL)).await;
    assert_eq!(status, 200);
    let counted = gateway.client().credit_history(1, None).await.unwrap();
    assert!(counted.entries[0].amount_micro_usd < 0, "{counted:?}");
    assert!(counted.entries[0].reason.contains("counted"), "{counted:?}");
    assert_eq!(
        balance(&gateway).await,
        before + counted.entries[0].amount_micro_usd
    );

    // `/v1/models` lists the priced models, to an inference token only.
    let models = reqwest::Client::new()
        .get(format!("{}/v1/models", gateway.url))
        .bearer_auth(&agent)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models["data"][0]["id"], MODEL);

    // A scoped token cannot create money, whatever it holds.
    let all = token(&gateway, &Capability::ALL).await;
    let before = balance(&gateway).await;
    for secret in [&agent, &all] {
        let scoped = HttpPlatform::with_retry(&gateway.url, secret, fast_retry()).unwrap();
        let err = scoped
            .grant_credits(
                &CreditGrant {
                    amount_micro_usd: 5_000_000,
                    reason: "free money".to_owned(),
                },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::CapabilityMissing, "{err:?}");
    }
    assert_eq!(balance(&gateway).await, before);
    // Reading the balance needs `read`.
    let scoped = HttpPlatform::with_retry(&gateway.url, &agent, fast_retry()).unwrap();
    assert_eq!(
        scoped.credits().await.unwrap_err().code,
        ErrorCode::CapabilityMissing
    );
    gateway.stop().await;
}

#[tokio::test]
async fn refusals_come_before_the_upstream_is_called() {
    let (gateway, model) = proxied().await;
    let agent = token(&gateway, &[Capability::Inference]).await;
    // No credits: 402, with how to fund.
    let (status, _, refused) = chat(&gateway, &agent, &hello(MODEL)).await;
    assert_eq!(status, 402, "{refused}");
    assert_eq!(refused["code"], "INSUFFICIENT_CREDITS");
    assert_eq!(refused["retryable"], false);
    assert!(
        refused["hint"]
            .as_str()
            .unwrap()
            .contains("automaton platform credits grant")
    );
    assert_eq!(refused["state"]["account"], "owner");

    fund(&gateway, 1_000).await;
    let (status, _, unpriced) = chat(&gateway, &agent, &hello("gpt-unlisted")).await;
    assert_eq!(status, 404, "{unpriced}");
    assert_eq!(unpriced["code"], "NOT_FOUND");
    assert!(
        unpriced["message"]
            .as_str()
            .unwrap()
            .contains("gpt-unlisted")
    );
    assert!(
        unpriced["hint"].as_str().unwrap().contains(MODEL),
        "{unpriced}"
    );

    let mut streaming = hello(MODEL);
    streaming["stream"] = json!(true);
    let (status, _, refused) = chat(&gateway, &agent, &streaming).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["hint"]
            .as_str()
            .unwrap()
            .contains("\"stream\": false")
    );

    assert!(model.requests().is_empty(), "{:?}", model.requests());
    assert_eq!(balance(&gateway).await, 1_000, "nothing was charged");
    gateway.stop().await;
}

#[tokio::test]
async fn upstream_errors_pass_through_with_their_status_and_body_uncharged() {
    let (gateway, model) = proxied().await;
    let agent = token(&gateway, &[Capability::Inference]).await;
    fund(&gateway, 1_000_000).await;
    model.push_all([
        Reply::rate_limited(7),
        Reply::status(500, "upstream broke"),
        Reply::ContextLengthExceeded,
    ]);
    let (status, headers, body) = chat(&gateway, &agent, &hello(MODEL)).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(headers["retry-after"], "7");
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let (status, _, body) = chat(&gateway, &agent, &hello(MODEL)).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["message"], "upstream broke");
    let (status, _, body) = chat(&gateway, &agent, &hello(MODEL)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "context_length_exceeded");
    assert_eq!(balance(&gateway).await, 1_000_000);
    assert_eq!(model.requests().len(), 3);
    gateway.stop().await;
}

#[tokio::test]
async fn a_platform_without_an_upstream_says_which_file_to_write() {
    let gateway = Gateway::start().await;
    let agent = token(&gateway, &[Capability::Inference]).await;
    let (status, _, refused) = chat(&gateway, &agent, &hello(MODEL)).await;
    assert_eq!(status, 404, "{refused}");
    assert!(
        refused["hint"].as_str().unwrap().contains("inference.json"),
        "{refused}"
    );
    gateway.stop().await;
}

#[tokio::test]
async fn the_http_client_reads_the_balance_and_history_and_grants_once_per_key() {
    let gateway = Gateway::start().await;
    let client = gateway.client();
    let empty = client.credits().await.unwrap();
    assert_eq!(
        (empty.account.as_str(), empty.balance_micro_usd),
        ("owner", 0)
    );
    let request = CreditGrant {
        amount_micro_usd: 2_500_000,
        reason: "seed money".to_owned(),
    };
    let first = client
        .grant_credits(&request, Some("grant-1"))
        .await
        .unwrap();
    let replay = client
        .grant_credits(&request, Some("grant-1"))
        .await
        .unwrap();
    assert_eq!(first, replay);
    let balance = client.credits().await.unwrap();
    assert_eq!(
        (balance.balance_micro_usd, balance.balance_cents),
        (2_500_000, 250)
    );
    assert!(balance.updated_at_ms.is_some());
    let history = client.credit_history(10, None).await.unwrap();
    assert_eq!(history.entries.len(), 1);
    assert_eq!(history.entries[0].reason, "seed money");
    let bad = client
        .grant_credits(
            &CreditGrant {
                amount_micro_usd: 0,
                reason: "nothing".to_owned(),
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidInput);
    gateway.stop().await;
}

/// The upstream refusing the platform's own key is the operator's fault, not the caller's:
/// the caller's token is good, so it must not be told 401/403 (which an OpenAI client and the
/// agent read as "your key is wrong"), nor see any part of the upstream key; the answer names
/// what the operator must fix.
#[tokio::test]
async fn an_upstream_refusing_the_platform_s_key_is_not_the_caller_s_401() {
    let (gateway, model) = proxied().await;
    let agent = token(&gateway, &[Capability::Inference]).await;
    fund(&gateway, 1_000_000).await;
    // OpenAI's answer to a wrong key quotes its first and last characters.
    model.push(Reply::Status {
        status: 401,
        body: json!({"error": {"message": "Incorrect API key provided: sk-upstr***********4242. You can find your API key at https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
        retry_after: None,
    });
    let (status, _, body) = chat(&gateway, &agent, &hello(MODEL)).await;
    assert_ne!(status, 401, "the caller's own token was accepted: {body}");
    assert!(
        !body.to_string().contains("4242"),
        "part of the upstream key: {body}"
    );
    assert!(
        body.to_string().contains("inference.json"),
        "no word of what to fix: {body}"
    );
    gateway.stop().await;
}
