//! The datastores' REST routes (seed 000's `createDatastore` … `queryDatastore`) under
//! `/v1/projects/{project}/datastores`: reads need `read`; adding, deleting, backing up,
//! restoring and querying need `manage_datastores`; both within the token's project scope.
//! Queries run as the caller, whose token id the audit records.

use super::{ApiResult, Confirm, idempotency_key, parse_body};
use crate::api::Platform;
use crate::local::{LocalPlatform, Principal};
use crate::model::Capability;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;

/// The routes, to be merged into the authenticated `/v1` router.
pub(super) fn routes() -> axum::Router<LocalPlatform> {
    axum::Router::new()
        .route(
            "/projects/{project}/datastores",
            post(create_datastore).get(list_datastores),
        )
        .route(
            "/projects/{project}/datastores/{name}",
            get(get_datastore).delete(delete_datastore),
        )
        .route(
            "/projects/{project}/datastores/{name}/backups",
            get(list_backups).post(create_backup),
        )
        .route(
            "/projects/{project}/datastores/{name}/restore",
            post(restore_backup),
        )
        .route(
            "/projects/{project}/datastores/{name}/tables",
            get(list_tables),
        )
        .route(
            "/projects/{project}/datastores/{name}/query",
            post(query_datastore),
        )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateDatastore {
    kind: String,
    #[serde(default)]
    name: Option<String>,
}

async fn create_datastore(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    who.require(Capability::ManageDatastores, Some(&project))?;
    let request: CreateDatastore = parse_body(&body, r#"{"kind": "postgres", "name": "cache"}"#)?;
    let kind = crate::model::DatastoreKind::parse(&request.kind)?;
    let key = idempotency_key(&headers);
    let added = platform
        .add_datastore(&project, kind, request.name.as_deref(), key.as_deref())
        .await?;
    let status = if added.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(added)).into_response())
}

async fn list_datastores(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    let datastores = platform.list_datastores(&project).await?;
    Ok(Json(serde_json::json!({ "datastores": datastores })).into_response())
}

async fn get_datastore(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    Ok(Json(platform.get_datastore(&project, &name).await?).into_response())
}

async fn delete_datastore(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, name)): Path<(String, String)>,
    Query(confirm): Query<Confirm>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    who.require(Capability::ManageDatastores, Some(&project))?;
    let key = idempotency_key(&headers);
    Ok(Json(
        platform
            .delete_datastore(&project, &name, confirm.confirm, key.as_deref())
            .await?,
    )
    .into_response())
}

async fn list_backups(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    let backups = platform.list_backups(&project, &name).await?;
    Ok(Json(serde_json::json!({ "backups": backups })).into_response())
}

async fn create_backup(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    who.require(Capability::ManageDatastores, Some(&project))?;
    let key = idempotency_key(&headers);
    let backup = platform
        .create_backup(&project, &name, key.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(backup)).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Restore {
    backup: String,
}

async fn restore_backup(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    who.require(Capability::ManageDatastores, Some(&project))?;
    let request: Restore = parse_body(&body, r#"{"backup": "bk_…"}"#)?;
    let key = idempotency_key(&headers);
    Ok(Json(
        platform
            .restore_backup(&project, &name, &request.backup, key.as_deref())
            .await?,
    )
    .into_response())
}

async fn list_tables(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    Ok(Json(platform.list_tables(&project, &name).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryRequest {
    query: String,
}

/// Runs under the caller's token, which the audit row names.
async fn query_datastore(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    who.require(Capability::ManageDatastores, Some(&project))?;
    let request: QueryRequest = parse_body(&body, r#"{"query": "SELECT * FROM users LIMIT 10"}"#)?;
    let key = idempotency_key(&headers);
    Ok(Json(
        platform
            .query_datastore_as(&who, &project, &name, &request.query, key.as_deref())
            .await?,
    )
    .into_response())
}
