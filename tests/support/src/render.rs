//! Turns a [`Reply`] into the HTTP response an OpenAI-compatible endpoint would send.
//!
//! Bodies follow OpenAI's documented shapes (`chat.completion`, `{"error": {...}}`) field for
//! field, because the point of the fixture is that the real client parses them.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::reply::{Reply, ScriptedCall};

/// The message of the 500 sent when the script has no reply left and no fallback is set.
pub(crate) const EXHAUSTED: &str = "scripted model: script exhausted";

/// Renders `reply` (or the script-exhausted error when `None`) for `request`, sleeping first
/// for any [`Reply::Delay`]. `model` is echoed in completions; `seq` makes the completion id.
pub(crate) async fn respond(
    reply: Option<Reply>,
    request: &Value,
    model: &str,
    seq: u64,
) -> Response {
    let Some(mut reply) = reply else {
        return openai_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            EXHAUSTED,
            "server_error",
            Some("script_exhausted"),
        );
    };
    let mut usage = None;
    loop {
        match reply {
            Reply::Delay { ms, reply: inner } => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                reply = *inner;
            }
            Reply::Usage {
                prompt_tokens,
                completion_tokens,
                reply: inner,
            } => {
                usage.get_or_insert((prompt_tokens, completion_tokens));
                reply = *inner;
            }
            Reply::Text(text) => {
                return completion(request, model, seq, Some(&text), None, usage);
            }
            Reply::ToolCalls { text, calls } => {
                return completion(request, model, seq, text.as_deref(), Some(&calls), usage);
            }
            Reply::Status {
                status,
                body,
                retry_after,
            } => return status_response(status, body, retry_after.as_deref()),
            Reply::ContextLengthExceeded => {
                return (
                    StatusCode::BAD_REQUEST,
                    Json(json!({"error": {
                        "message": "This model's maximum context length is 8192 tokens. However, \
                                    your messages resulted in 9000 tokens.",
                        "type": "invalid_request_error",
                        "param": "messages",
                        "code": "context_length_exceeded",
                    }})),
                )
                    .into_response();
            }
        }
    }
}

/// A `chat.completion` body. `calls` is `None` for a plain text answer (no `tool_calls` field,
/// `finish_reason: stop`).
fn completion(
    request: &Value,
    model: &str,
    seq: u64,
    text: Option<&str>,
    calls: Option<&[ScriptedCall]>,
    usage: Option<(u32, u32)>,
) -> Response {
    let (prompt_tokens, completion_tokens) = usage.unwrap_or_else(|| {
        let prompt_chars = ["messages", "tools"]
            .iter()
            .filter_map(|field| request.get(field))
            .map(|value| value.to_string().chars().count())
            .sum();
        let completion_chars = text.map_or(0, |text| text.chars().count())
            + calls
                .unwrap_or_default()
                .iter()
                .map(|call| call.name.chars().count() + call.arguments.chars().count())
                .sum::<usize>();
        (rough_tokens(prompt_chars), rough_tokens(completion_chars))
    });
    let mut message = json!({
        "role": "assistant",
        "content": text,
        "refusal": null,
        "annotations": [],
    });
    if let (Some(calls), Some(fields)) = (calls, message.as_object_mut()) {
        let calls: Vec<Value> = calls
            .iter()
            .map(|call| {
                json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                })
            })
            .collect();
        fields.insert("tool_calls".to_owned(), Value::Array(calls));
    }
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    Json(json!({
        "id": format!("chatcmpl-scripted-{seq}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": if calls.is_some() { "tool_calls" } else { "stop" },
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens.saturating_add(completion_tokens),
        },
    }))
    .into_response()
}

fn status_response(status: u16, body: Value, retry_after: Option<&str>) -> Response {
    let Ok(code) = StatusCode::from_u16(status) else {
        return openai_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("scripted model: the script asked for invalid HTTP status {status}"),
            "server_error",
            None,
        );
    };
    let mut response = (code, Json(body)).into_response();
    if let Some(value) = retry_after {
        let Ok(value) = HeaderValue::from_str(value) else {
            return openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!(
                    "scripted model: the script's Retry-After {value:?} is not a header value"
                ),
                "server_error",
                None,
            );
        };
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

/// An error response with OpenAI's `{"error": {message, type, param, code}}` body.
pub(crate) fn openai_error(
    status: StatusCode,
    message: &str,
    kind: &str,
    code: Option<&str>,
) -> Response {
    let body = json!({"error": {
        "message": message,
        "type": kind,
        "param": null,
        "code": code,
    }});
    (status, Json(body)).into_response()
}

/// The rough token count the fixture reports: a quarter of the characters, at least one.
fn rough_tokens(chars: usize) -> u32 {
    u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX).max(1)
}
