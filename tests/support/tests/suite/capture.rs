//! Every request is captured and checked against the invariants as it arrives.

use automaton_test_support::{Reply, ScriptedModel};
use serde_json::json;

use super::http::{self, chat, conversation};

/// A request that breaks one invariant: the first message is not the system prompt.
fn no_system_prompt() -> serde_json::Value {
    json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn requests_are_captured_with_method_path_headers_body_and_model() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("ok"));
    let body = conversation("what is my balance?");
    let bytes = serde_json::to_vec(&body).unwrap();

    http::send(
        &model.base_url(),
        "POST",
        "/chat/completions",
        &[("Authorization", "Bearer sk-test-123")],
        Some(&bytes),
    )
    .await;

    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/v1/chat/completions");
    assert_eq!(request.header("authorization"), Some("Bearer sk-test-123"));
    assert_eq!(
        request.header("AUTHORIZATION"),
        Some("Bearer sk-test-123"),
        "case-insensitive"
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.body, body);
    assert_eq!(request.model.as_deref(), Some("gpt-test"));
    assert_eq!(request.messages().len(), 2);
    assert_eq!(request.messages()[1]["content"], "what is my balance?");
}

#[tokio::test]
async fn a_clean_conversation_leaves_no_violations() {
    let model = ScriptedModel::start().await.unwrap();
    model.push_all([Reply::tool_call("call_1", "ls", "{}"), Reply::text("done")]);
    let mut request = conversation("list files");
    chat(&model.base_url(), &request).await;
    let messages = request["messages"].as_array_mut().unwrap();
    messages.push(json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "ls", "arguments": "{}"}}]}));
    messages.push(json!({"role": "tool", "tool_call_id": "call_1", "content": "a.txt"}));
    chat(&model.base_url(), &request).await;

    assert_eq!(model.requests().len(), 2);
    assert_eq!(model.violations(), Vec::<String>::new());
    model.assert_clean();
}

#[tokio::test]
async fn violations_name_the_request_that_broke_an_invariant() {
    let model = ScriptedModel::start().await.unwrap();
    model.set_fallback(Some(Reply::text("ok")));
    chat(&model.base_url(), &conversation("fine")).await;

    let response = chat(&model.base_url(), &no_system_prompt()).await;

    assert_eq!(
        response.status, 200,
        "a violation is recorded, not answered with an error"
    );
    let violations = model.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(
        violations[0].starts_with("request 2 (POST /v1/chat/completions): "),
        "{violations:?}"
    );
    assert!(violations[0].contains("role `system`"), "{violations:?}");
}

#[tokio::test]
#[should_panic(expected = "invariant violation(s)")]
async fn assert_clean_panics_listing_the_violations() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("ok"));
    chat(&model.base_url(), &no_system_prompt()).await;

    model.assert_clean();
}

#[tokio::test]
async fn required_system_prefix_is_checked_on_every_request() {
    let constitution = "# Constitution\nI. Never harm.";
    let model = ScriptedModel::builder()
        .require_system_prefix(constitution)
        .start()
        .await
        .unwrap();
    model.set_fallback(Some(Reply::text("ok")));
    let mut good = conversation("hi");
    good["messages"][0]["content"] = json!(format!("{constitution}\n\nYou are an automaton."));
    chat(&model.base_url(), &good).await;
    assert!(model.violations().is_empty(), "{:?}", model.violations());

    chat(&model.base_url(), &conversation("hi")).await;

    let violations = model.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].starts_with("request 2 "), "{violations:?}");
    assert!(violations[0].contains("required prefix"), "{violations:?}");
}

#[tokio::test]
async fn unknown_route_is_captured_answered_404_and_flagged() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("untouched"));

    let response = http::send(&model.base_url(), "POST", "/completions", &[], Some(b"{}")).await;
    let wrong_method = http::send(&model.base_url(), "GET", "/chat/completions", &[], None).await;

    assert_eq!(response.status, 404);
    assert!(
        response.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v1/completions")
    );
    assert_eq!(wrong_method.status, 404);
    let paths: Vec<String> = model
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(paths, ["POST /v1/completions", "GET /v1/chat/completions"]);
    assert_eq!(model.violations().len(), 2);
    assert_eq!(model.remaining(), 1, "no reply is consumed");
}

#[tokio::test]
async fn malformed_json_body_is_captured_answered_400_and_flagged() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("untouched"));

    let response = http::send(
        &model.base_url(),
        "POST",
        "/chat/completions",
        &[],
        Some(b"{not json"),
    )
    .await;

    assert_eq!(response.status, 400);
    assert_eq!(model.requests().len(), 1);
    assert!(model.requests()[0].body.is_null());
    let violations = model.violations();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("not JSON"), "{violations:?}");
    assert_eq!(model.remaining(), 1, "no reply is consumed");
}
