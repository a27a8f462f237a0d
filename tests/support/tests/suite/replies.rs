//! Each `Reply` variant renders as the response an OpenAI-compatible endpoint would send.

use std::time::{Duration, Instant};

use automaton_test_support::{Reply, ScriptedCall, ScriptedModel};
use serde_json::json;

use super::http::{self, chat, conversation};

#[tokio::test]
async fn text_reply_is_a_standard_chat_completion() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("hello there"));

    let response = chat(&model.base_url(), &conversation("hi")).await;

    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let body = response.body;
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_600_000_000);
    assert_eq!(body["model"], "gpt-test", "the request's model is echoed");
    let choices = body["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 1);
    assert_eq!(choices[0]["index"], 0);
    assert_eq!(choices[0]["finish_reason"], "stop");
    let message = &choices[0]["message"];
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"], "hello there");
    assert!(
        message.get("tool_calls").is_none(),
        "a text reply has no tool_calls"
    );
    let usage = &body["usage"];
    let total =
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap();
    assert_eq!(usage["total_tokens"].as_u64().unwrap(), total);
}

#[tokio::test]
async fn parallel_tool_calls_have_null_content_and_finish_reason_tool_calls() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::tool_calls([
        ScriptedCall::new("call_1", "read_file", r#"{"path":"a.txt"}"#),
        ScriptedCall::new("call_2", "exec", r#"{"command": "ls"#),
    ]));

    let body = chat(&model.base_url(), &conversation("go")).await.body;

    let choice = &body["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    let message = &choice["message"];
    assert_eq!(message["role"], "assistant");
    assert!(
        message["content"].is_null(),
        "content must be null, got {}",
        message["content"]
    );
    assert_eq!(
        message["tool_calls"],
        json!([
            {"id": "call_1", "type": "function",
             "function": {"name": "read_file", "arguments": "{\"path\":\"a.txt\"}"}},
            {"id": "call_2", "type": "function",
             "function": {"name": "exec", "arguments": "{\"command\": \"ls"}},
        ]),
        "arguments are sent verbatim, malformed JSON included"
    );
}

#[tokio::test]
async fn tool_calls_with_text_keep_the_text_as_content() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::ToolCalls {
        text: Some("Let me look.".to_owned()),
        calls: vec![ScriptedCall::new("call_9", "ls", "{}")],
    });

    let body = chat(&model.base_url(), &conversation("go")).await.body;

    assert_eq!(body["choices"][0]["message"]["content"], "Let me look.");
    assert_eq!(
        body["choices"][0]["message"]["tool_calls"][0]["id"],
        "call_9"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn usage_defaults_to_a_chars_over_four_estimate_of_request_and_reply() {
    let model = ScriptedModel::start().await.unwrap();
    model.push_all([Reply::text("x".repeat(40)), Reply::text("x".repeat(40))]);
    let short = chat(&model.base_url(), &conversation("hi")).await.body;
    let long = chat(&model.base_url(), &conversation(&"y".repeat(4000)))
        .await
        .body;

    assert_eq!(short["usage"]["completion_tokens"], 10, "40 chars / 4");
    let short_prompt = short["usage"]["prompt_tokens"].as_u64().unwrap();
    let long_prompt = long["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(short_prompt >= 1);
    assert!(
        long_prompt >= short_prompt + 1000,
        "4000 more chars should cost about 1000 more tokens: {short_prompt} vs {long_prompt}"
    );
}

#[tokio::test]
async fn with_usage_overrides_the_estimate() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("ok").with_usage(1234, 56));

    let body = chat(&model.base_url(), &conversation("hi")).await.body;

    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 1234, "completion_tokens": 56, "total_tokens": 1290})
    );
    assert_eq!(body["choices"][0]["message"]["content"], "ok");
}

#[tokio::test]
async fn rate_limited_reply_is_429_with_retry_after() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::rate_limited(7));

    let response = chat(&model.base_url(), &conversation("hi")).await;

    assert_eq!(response.status, 429);
    assert_eq!(response.header("retry-after"), Some("7"));
    assert_eq!(response.body["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn status_reply_sends_its_body_verbatim() {
    let model = ScriptedModel::start().await.unwrap();
    let body = json!({"error": {"message": "overloaded", "type": "server_error", "param": null, "code": null}});
    model.push_all([
        Reply::Status {
            status: 503,
            body: body.clone(),
            retry_after: None,
        },
        Reply::status(500, "boom"),
    ]);

    let first = chat(&model.base_url(), &conversation("hi")).await;
    let second = chat(&model.base_url(), &conversation("hi")).await;

    assert_eq!(first.status, 503);
    assert_eq!(first.body, body);
    assert_eq!(first.header("retry-after"), None);
    assert_eq!(second.status, 500);
    assert_eq!(second.body["error"]["message"], "boom");
    assert_eq!(second.body["error"]["type"], "server_error");
}

#[tokio::test]
async fn context_length_exceeded_matches_openai_body() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::ContextLengthExceeded);

    let response = chat(&model.base_url(), &conversation("hi")).await;

    assert_eq!(response.status, 400);
    assert_eq!(
        response.body,
        json!({"error": {
            "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }})
    );
}

#[tokio::test]
async fn delayed_reply_waits_before_answering() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("late").delayed(150).with_usage(1, 1));

    let started = Instant::now();
    let body = chat(&model.base_url(), &conversation("hi")).await.body;

    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(body["choices"][0]["message"]["content"], "late");
    assert_eq!(body["usage"]["prompt_tokens"], 1, "usage wraps a delay");
}

#[tokio::test]
async fn streaming_requests_are_refused_without_consuming_a_reply() {
    let model = ScriptedModel::start().await.unwrap();
    model.push(Reply::text("kept"));
    let mut request = conversation("hi");
    request["stream"] = json!(true);

    let response = chat(&model.base_url(), &request).await;

    assert_eq!(response.status, 400);
    assert!(
        response.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stream")
    );
    assert_eq!(model.remaining(), 1);
}

#[tokio::test]
async fn models_endpoint_lists_the_default_name() {
    let model = ScriptedModel::start().await.unwrap();

    let response = http::send(&model.base_url(), "GET", "/models", &[], None).await;

    assert_eq!(response.status, 200);
    assert_eq!(response.body["object"], "list");
    assert_eq!(response.body["data"][0]["id"], "scripted-model");
    assert_eq!(response.body["data"][0]["object"], "model");
    assert_eq!(response.body["data"].as_array().unwrap().len(), 1);
    assert!(model.violations().is_empty());
}

#[tokio::test]
async fn models_endpoint_lists_configured_names() {
    let model = ScriptedModel::builder()
        .models(["gpt-a", "gpt-b"])
        .start()
        .await
        .unwrap();

    let body = http::send(&model.base_url(), "GET", "/models", &[], None)
        .await
        .body;

    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["gpt-a", "gpt-b"]);
}
