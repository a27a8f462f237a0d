//! The forge's REST routes (seed 000's `createRepo` … `commitRepoFiles`) under
//! `/v1/projects/{project}/repos`: reads need `read`, writes `manage_repos`, both within the
//! token's project scope.

use super::{ApiResult, Confirm, idempotency_key, parse_body};
use crate::api::Platform;
use crate::local::{LocalPlatform, Principal};
use crate::model::{Capability, CommitRequest, MAX_COMMIT_BYTES, RepoRequest};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json};
use serde::Deserialize;

/// The routes, to be merged into the authenticated `/v1` router.
pub(super) fn routes() -> axum::Router<LocalPlatform> {
    axum::Router::new()
        .route(
            "/projects/{project}/repos",
            post(create_repo).get(list_repos),
        )
        .route(
            "/projects/{project}/repos/{repo}",
            get(get_repo).delete(delete_repo),
        )
        .route("/projects/{project}/repos/{repo}/refs", get(list_refs))
        .route(
            "/projects/{project}/repos/{repo}/commits",
            get(list_commits)
                .post(commit_files)
                // Base64 and JSON escaping inflate the files' bytes.
                .layer(DefaultBodyLimit::max(MAX_COMMIT_BYTES * 2)),
        )
        .route("/projects/{project}/repos/{repo}/tree", get(get_tree))
        .route("/projects/{project}/repos/{repo}/file", get(get_file))
}

async fn create_repo(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    who.require(Capability::ManageRepos, Some(&project))?;
    let request: RepoRequest = parse_body(&body, r#"{"name": "site", "deploy_service": "web"}"#)?;
    if request.deploy_service.is_some() {
        // A repository that deploys turns every commit and push into a deploy.
        who.require(Capability::Deploy, Some(&project))?;
    }
    let key = idempotency_key(&headers);
    let created = platform
        .create_repo(&project, &request, key.as_deref())
        .await?;
    let status = if created.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(created)).into_response())
}

async fn list_repos(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path(project): Path<String>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    Ok(Json(serde_json::json!({ "repos": platform.list_repos(&project).await? })).into_response())
}

async fn get_repo(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, repo)): Path<(String, String)>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    Ok(Json(platform.get_repo(&project, &repo).await?).into_response())
}

async fn delete_repo(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, repo)): Path<(String, String)>,
    Query(confirm): Query<Confirm>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    who.require(Capability::ManageRepos, Some(&project))?;
    let key = idempotency_key(&headers);
    Ok(Json(
        platform
            .delete_repo(&project, &repo, confirm.confirm, key.as_deref())
            .await?,
    )
    .into_response())
}

async fn list_refs(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, repo)): Path<(String, String)>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    Ok(
        Json(serde_json::json!({ "refs": platform.list_refs(&project, &repo).await? }))
            .into_response(),
    )
}

#[derive(Deserialize)]
struct LogQuery {
    #[serde(default, rename = "ref")]
    git_ref: Option<String>,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    20
}

async fn list_commits(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, repo)): Path<(String, String)>,
    Query(query): Query<LogQuery>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    let commits = platform
        .list_commits(&project, &repo, query.git_ref.as_deref(), query.limit)
        .await?;
    Ok(Json(serde_json::json!({ "commits": commits })).into_response())
}

#[derive(Deserialize)]
struct ReadQuery {
    #[serde(default, rename = "ref")]
    git_ref: Option<String>,
    #[serde(default)]
    path: String,
}

async fn get_tree(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, repo)): Path<(String, String)>,
    Query(query): Query<ReadQuery>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    Ok(Json(
        platform
            .get_tree(&project, &repo, query.git_ref.as_deref(), &query.path)
            .await?,
    )
    .into_response())
}

async fn get_file(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, repo)): Path<(String, String)>,
    Query(query): Query<ReadQuery>,
) -> ApiResult<Response> {
    who.require(Capability::Read, Some(&project))?;
    Ok(Json(
        platform
            .get_file(&project, &repo, query.git_ref.as_deref(), &query.path)
            .await?,
    )
    .into_response())
}

async fn commit_files(
    State(platform): State<LocalPlatform>,
    Extension(who): Extension<Principal>,
    Path((project, repo)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    who.require(Capability::ManageRepos, Some(&project))?;
    let request: CommitRequest = parse_body(
        &body,
        r#"{"message": "add the page", "files": [{"path": "index.html", "content": "<h1>hi</h1>"}]}"#,
    )?;
    require_deploy_if_it_deploys(&platform, &who, &project, &repo).await?;
    let key = idempotency_key(&headers);
    let committed = platform
        .commit_files(&project, &repo, &request, key.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(committed)).into_response())
}

/// A commit or push to a repository with a `deploy_service` deploys it: that needs `deploy`
/// as well as `manage_repos`.
pub(super) async fn require_deploy_if_it_deploys(
    platform: &LocalPlatform,
    who: &Principal,
    project: &str,
    repo: &str,
) -> crate::Result<()> {
    let info = platform.get_repo(project, repo).await?;
    if info.deploy_service.is_some() {
        who.require(Capability::Deploy, Some(project))?;
    }
    Ok(())
}
