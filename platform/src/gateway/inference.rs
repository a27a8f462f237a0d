//! The inference proxy: `POST /v1/chat/completions` and `GET /v1/models`, OpenAI-compatible,
//! authenticated by the platform token (`inference` capability) and billed from the account's
//! credits (seed 003: "Conway proxy — routes through api.conway.tech, billed from credits").
//!
//! A call is refused before it is forwarded when the token lacks `inference`, no upstream is
//! configured, the model is not priced, it asks to stream, or the balance is not above zero
//! (`INSUFFICIENT_CREDITS`, 402). Refusals are the platform's `{code, message, hint,
//! retryable}` with an OpenAI-shaped `error` beside it, so OpenAI clients read them too. The
//! upstream's own errors (429 with `Retry-After`, 5xx, 400 `context_length_exceeded`) pass
//! through with their status and body, uncharged, so the agent's retry, failover and
//! compaction work against the proxy as against the provider. A completion is charged from
//! its `usage` at the model's price, or from a token count when it has none — never for free.
//! The upstream key goes only into the upstream's `Authorization` header.

use super::status_of;
use crate::api::Platform;
use crate::credits::CreditKind;
use crate::error::{Error, ErrorCode};
use crate::inference::{CONFIG_FILE, counted_usage};
use crate::local::{Charge, LocalPlatform, OWNER_ACCOUNT, Principal};
use crate::model::Capability;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde_json::{Value, json};

/// The largest chat request forwarded (long conversations with images stay under it).
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// The routes, to be merged into the authenticated `/v1` router.
pub(super) fn routes() -> axum::Router<LocalPlatform> {
    axum::Router::new()
        .route(
            "/chat/completions",
            post(chat_completions).layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES)),
        )
        .route("/models", get(list_models))
}

/// A refusal: the platform's error with an OpenAI-shaped `error` beside it.
fn refusal(error: Error) -> Response {
    let code = serde_json::to_value(error.code).unwrap_or(Value::Null);
    let openai = json!({
        "message": format!("{} ({})", error.message, error.hint),
        "type": code,
        "code": code,
    });
    let mut body = serde_json::to_value(&error).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        object.insert("error".to_owned(), openai);
    }
    (status_of(error.code), Json(body)).into_response()
}

/// The refusal when the platform has no upstream.
fn no_upstream(platform: &LocalPlatform) -> Error {
    let file = platform.data_dir().join(CONFIG_FILE);
    Error::new(
        ErrorCode::NotFound,
        "this platform serves no inference: no upstream is configured",
    )
    .with_hint(format!(
        "write {} (e.g. {{\"upstream\": {{\"baseUrl\": \"https://api.openai.com/v1\", \"apiKeyEnv\": \"UPSTREAM_KEY\"}}, \"models\": {{\"gpt-4o-mini\": {{\"inputMicroUsdPerMillion\": 150000, \"outputMicroUsdPerMillion\": 600000}}}}}}) and restart `automaton platform serve` (or pass --inference-config FILE)",
        file.display()
    ))
}

async fn list_models(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
) -> Response {
    let listed = who
        .require(Capability::Inference, None)
        .and_then(|()| platform.inference().ok_or_else(|| no_upstream(&platform)));
    match listed {
        Ok(inference) => {
            let data: Vec<Value> = inference
                .config
                .models
                .iter()
                .map(|(id, price)| {
                    json!({
                        "id": id,
                        "object": "model",
                        "owned_by": "conway",
                        "pricing": {
                            "input_micro_usd_per_million": price.input_micro_usd_per_million,
                            "output_micro_usd_per_million": price.output_micro_usd_per_million,
                        },
                    })
                })
                .collect();
            Json(json!({ "object": "list", "data": data })).into_response()
        }
        Err(error) => refusal(error),
    }
}

async fn chat_completions(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    body: axum::body::Bytes,
) -> Response {
    match forward(&platform, &who, body).await {
        Ok(response) => response,
        Err(error) => refusal(error),
    }
}

async fn forward(
    platform: &LocalPlatform,
    who: &Principal,
    body: axum::body::Bytes,
) -> Result<Response, Error> {
    who.require(Capability::Inference, None)?;
    let inference = platform.inference().ok_or_else(|| no_upstream(platform))?;
    let request: Value = serde_json::from_slice(&body).map_err(|err| {
        Error::new(
            ErrorCode::InvalidInput,
            format!("the request body is not JSON: {err}"),
        )
        .with_hint(r#"send an OpenAI chat request, e.g. {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}"#)
    })?;
    let Some(model) = request["model"].as_str() else {
        return Err(
            Error::new(ErrorCode::InvalidInput, "the request names no `model`").with_hint(format!(
                "name one of: {}",
                inference.config.offered().join(", ")
            )),
        );
    };
    if request["stream"].as_bool() == Some(true) {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "streaming is not metered by this proxy",
        )
        .with_hint("send the request with \"stream\": false (or without `stream`)"));
    }
    let Some(price) = inference.config.models.get(model).copied() else {
        return Err(Error::new(
            ErrorCode::NotFound,
            format!("model `{model}` is not offered by this platform"),
        )
        .with_hint(format!(
            "use one of: {} (GET /v1/models lists them with prices)",
            inference.config.offered().join(", ")
        ))
        .with_state(json!({ "models": inference.config.offered() })));
    };
    let balance = platform.credits().await?;
    if balance.balance_micro_usd <= 0 {
        return Err(Error::new(
            ErrorCode::InsufficientCredits,
            format!(
                "account `{}` has no credits left ({} micro-USD)",
                balance.account, balance.balance_micro_usd
            ),
        )
        .with_state(
            json!({ "account": balance.account, "balance_micro_usd": balance.balance_micro_usd }),
        ));
    }
    let mut call = inference
        .client
        .post(format!("{}/chat/completions", inference.config.base_url))
        .header(header::CONTENT_TYPE, "application/json")
        .body(body);
    if let Some(key) = &inference.config.key {
        call = call.bearer_auth(key.expose());
    }
    let response = call.send().await.map_err(|err| {
        // Without the URL's query or the headers: nothing of the key reaches the caller.
        Error::new(
            ErrorCode::InternalError,
            format!(
                "the inference upstream cannot be reached: {}",
                err.without_url()
            ),
        )
        .with_hint("retry shortly; if it persists, the platform's operator should check upstream.baseUrl in inference.json")
    })?;
    let status = response.status();
    let retry_after = response.headers().get(header::RETRY_AFTER).cloned();
    let bytes = response.bytes().await.map_err(|err| {
        Error::new(
            ErrorCode::InternalError,
            format!("the upstream's answer was cut off: {}", err.without_url()),
        )
    })?;
    // The upstream refusing the platform's own key (or its account) is the operator's to fix,
    // not the caller's: never its 401/403, and never its body, which may quote the key.
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        tracing::error!(%status, "the inference upstream refused the platform's key");
        return Err(Error::new(
            ErrorCode::InternalError,
            format!("the inference upstream refused this platform's credentials ({status})"),
        )
        .with_hint(format!(
            "not your token: the platform's operator must fix upstream.apiKeyEnv or upstream.apiKeyFile in {} and restart `automaton platform serve`",
            platform.data_dir().join(CONFIG_FILE).display()
        ))
        .not_retryable());
    }
    if !status.is_success() {
        return Ok(passed_through(status, retry_after, &bytes));
    }
    let answer: Value = serde_json::from_slice(&bytes).map_err(|err| {
        Error::new(
            ErrorCode::InternalError,
            format!("the upstream answered {status} with a body that is not JSON: {err}"),
        )
    })?;
    let usage = &answer["usage"];
    let (prompt, completion, counted) = match (
        usage["prompt_tokens"].as_u64(),
        usage["completion_tokens"].as_u64(),
    ) {
        (Some(prompt), Some(completion)) => (prompt, completion, false),
        _ => {
            let (request, answer) = (request.clone(), answer.clone());
            let (prompt, completion) =
                tokio::task::spawn_blocking(move || counted_usage(&request, &answer))
                    .await
                    .map_err(|err| {
                        Error::new(ErrorCode::InternalError, format!("counting tokens: {err}"))
                    })?;
            (prompt, completion, true)
        }
    };
    let reference = answer["id"].as_str().map_or_else(
        || format!("req_{}", uuid::Uuid::new_v4().simple()),
        str::to_owned,
    );
    let charge = Charge {
        account: OWNER_ACCOUNT.to_owned(),
        cost_micro_usd: price.cost(prompt, completion),
        kind: CreditKind::Inference,
        reason: format!(
            "{model}: {prompt} in, {completion} out{}",
            if counted { " (counted; no usage)" } else { "" }
        ),
        reference: Some(reference),
    };
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        bytes,
    )
        .into_response();
    match platform.charge_credits(charge).await {
        Ok(entry) => {
            let headers = response.headers_mut();
            headers.insert(
                "x-conway-charged-micro-usd",
                HeaderValue::from(-entry.amount_micro_usd),
            );
            headers.insert(
                "x-conway-balance-micro-usd",
                HeaderValue::from(entry.balance_after_micro_usd),
            );
        }
        // The upstream was paid and answered: the caller gets the answer, the operator the fault.
        Err(error) => tracing::error!(model, %error, "a completion could not be charged"),
    }
    Ok(response)
}

/// The upstream's error, as it sent it: same status, its `Retry-After`, its body when that is
/// OpenAI-shaped (else an OpenAI-shaped one quoting it). Nothing is charged.
fn passed_through(status: StatusCode, retry_after: Option<HeaderValue>, body: &[u8]) -> Response {
    let openai_shaped = serde_json::from_slice::<Value>(body)
        .is_ok_and(|value| value.get("error").is_some_and(Value::is_object));
    let body = if openai_shaped {
        body.to_vec()
    } else {
        let snippet: String = String::from_utf8_lossy(body).chars().take(300).collect();
        let kind = if status.is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        };
        json!({"error": {
            "message": format!("the upstream answered {status}: {snippet}"),
            "type": kind,
            "param": null,
            "code": null,
        }})
        .to_string()
        .into_bytes()
    };
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(retry_after) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, retry_after);
    }
    response
}

#[cfg(test)]
#[path = "inference_tests.rs"]
mod tests;
