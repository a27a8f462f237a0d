//! Credits' REST routes: `GET /v1/credits` (the balance) and `GET /v1/credits/history` (the
//! ledger, newest first) need `read`; `POST /v1/credits/grants` is the admin's alone — a
//! scoped token never creates money, whatever capabilities it holds.

use super::{ApiResult, idempotency_key, parse_body};
use crate::api::Platform;
use crate::credits::CreditGrant;
use crate::local::{LocalPlatform, Principal};
use crate::model::Capability;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;

/// The routes, to be merged into the authenticated `/v1` router.
pub(super) fn routes() -> axum::Router<LocalPlatform> {
    axum::Router::new()
        .route("/credits", get(get_credits))
        .route("/credits/history", get(credit_history))
        .route("/credits/grants", post(grant_credits))
}

async fn get_credits(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
) -> ApiResult<Response> {
    who.require(Capability::Read, None)?;
    Ok(Json(platform.credits().await?).into_response())
}

#[derive(Deserialize)]
struct Page {
    #[serde(default = "default_limit")]
    limit: usize,
    #[serde(default)]
    before: Option<i64>,
}

fn default_limit() -> usize {
    50
}

async fn credit_history(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Query(page): Query<Page>,
) -> ApiResult<Response> {
    who.require(Capability::Read, None)?;
    Ok(Json(platform.credit_history(page.limit, page.before).await?).into_response())
}

async fn grant_credits(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    // Refused before the body is even read: a scoped token learns nothing by probing.
    crate::local::may_grant(&who)?;
    let request: CreditGrant = parse_body(
        &body,
        r#"{"amount_micro_usd": 5000000, "reason": "top-up"}"#,
    )?;
    let key = idempotency_key(&headers);
    let granted = platform
        .grant_credits_as(&who, &request, key.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(granted)).into_response())
}
