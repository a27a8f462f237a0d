//! The one trait over seed 000's verbs. Its backends: [`crate::local::LocalPlatform`], which
//! really hosts on this machine, and the HTTP client of a Conway gateway. Tools and the CLI
//! hold a `dyn Platform` and never know which one answers.

use crate::credits::{CreditBalance, CreditGrant, CreditHistory, GrantedCredits};
use crate::error::Result;
use crate::model::{
    AddedDatastore, BackupInfo, CommitRequest, CommitResult, CreatedRepo, Datastore, DatastoreKind,
    DatastoreTables, DeletedDatastore, DeletedRepo, QueryResult, RepoCommit, RepoFile, RepoInfo,
    RepoRef, RepoRequest, RepoTree, RestoredBackup,
};
use crate::model::{
    CreatedProject, DeletedProject, DeployAccepted, EnvChange, IssuedToken, Operation,
    OperationEvent, ProjectState, ProjectSummary, RevokedTokens, ServiceDetail, ServiceLogs,
    ServiceState, TokenInfo, TokenRequest,
};
use automaton_tools::tool::BoxFuture;
use std::path::Path;
use std::time::Duration;

/// The Conway platform's verbs.
///
/// Mutating verbs take an optional `idempotency_key`: the same key with the same request
/// returns the first answer again without doing anything twice; the same key with a different
/// request is a `CONFLICT`. Keys are kept 24 hours.
pub trait Platform: Send + Sync {
    /// `createProject`: creates the project, or returns the existing one with
    /// `created: false`.
    fn create_project<'a>(
        &'a self,
        name: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CreatedProject>>;

    /// `getProject`: the full state tree (services, env names, recent events).
    fn get_project<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<ProjectState>>;

    /// `listProjects`.
    fn list_projects(&self) -> BoxFuture<'_, Result<Vec<ProjectSummary>>>;

    /// `deleteProject`: stops and removes everything in it. Refused without `confirm`;
    /// deleting a project that does not exist succeeds with `deleted: false`.
    fn delete_project<'a>(
        &'a self,
        name: &'a str,
        confirm: bool,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeletedProject>>;

    /// `createDeploy`: deploys the packed source at `archive` (see [`crate::source::pack`]) to
    /// the service (created on first deploy). Answers at once; the work is an operation.
    fn deploy<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        archive: &'a Path,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeployAccepted>>;

    /// `getOperation`.
    fn get_operation<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Operation>>;

    /// The operation's events after `after_seq` (0 replays from the start).
    fn operation_events<'a>(
        &'a self,
        id: &'a str,
        after_seq: i64,
    ) -> BoxFuture<'a, Result<Vec<OperationEvent>>>;

    /// `listServices`.
    fn list_services<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<ServiceState>>>;

    /// The service with its health, releases and URLs, and its last `log_lines` lines.
    fn get_service<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        log_lines: usize,
    ) -> BoxFuture<'a, Result<ServiceDetail>>;

    /// `rollbackService`: back to the previous release, or `to_release`; no rebuild.
    fn rollback<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        to_release: Option<&'a str>,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ServiceDetail>>;

    /// `restartService`: fresh instances of the current release.
    fn restart<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ServiceDetail>>;

    /// `scaleService`: run `replicas` instances (0 stops the service).
    fn scale<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        replicas: u32,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ServiceDetail>>;

    /// `setEnv`: merges into the project env and restarts its running services; answers
    /// with names only.
    fn set_env<'a>(
        &'a self,
        project: &'a str,
        vars: &'a [(String, String)],
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<EnvChange>>;

    /// `listEnv`: names only; no read ever returns a value.
    fn list_env<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<String>>>;

    /// The service's last runtime lines and its latest build's lines.
    fn logs<'a>(
        &'a self,
        project: &'a str,
        service: &'a str,
        lines: usize,
    ) -> BoxFuture<'a, Result<ServiceLogs>>;

    /// `createToken`: a token with some of the caller's capabilities, within its scope; the
    /// secret is in this answer only.
    fn issue_token<'a>(&'a self, request: &'a TokenRequest) -> BoxFuture<'a, Result<IssuedToken>>;

    /// `listTokens`: the tokens the caller may see (never secrets).
    fn list_tokens(&self) -> BoxFuture<'_, Result<Vec<TokenInfo>>>;

    /// `revokeToken`: revokes the token and everything issued under it, at once.
    fn revoke_token<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<RevokedTokens>>;

    /// `createDatastore`: provisions a `kind` engine named `name` (default: the kind) and
    /// injects its connection URL into every service of the project, restarting the running
    /// ones. A datastore of that name and kind already there is returned with `created: false`.
    fn add_datastore<'a>(
        &'a self,
        project: &'a str,
        kind: DatastoreKind,
        name: Option<&'a str>,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<AddedDatastore>>;

    /// `getDatastore`: its status, masked URL and env names.
    fn get_datastore<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Datastore>>;

    /// `listDatastores`: the project's datastores.
    fn list_datastores<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<Datastore>>>;

    /// `deleteDatastore`: stops and removes the engine, its data and backups, and its env.
    /// Refused without `confirm`; deleting one that does not exist succeeds with `deleted: false`.
    fn delete_datastore<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        confirm: bool,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeletedDatastore>>;

    /// `createBackup`: a backup now (kept 7 days).
    fn create_backup<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<BackupInfo>>;

    /// `listBackups`: the datastore's backups, newest first.
    fn list_backups<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BackupInfo>>>;

    /// `restoreBackup`: applies backup `backup` to the datastore.
    fn restore_backup<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        backup: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<RestoredBackup>>;

    /// `listDatastoreTables`: tables with columns and row counts, or redis keys with types.
    fn list_tables<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<DatastoreTables>>;

    /// `queryDatastore`: one SQL statement (postgres, sqlite) or one redis command; at most
    /// 500 rows; audited.
    fn query_datastore<'a>(
        &'a self,
        project: &'a str,
        name: &'a str,
        query: &'a str,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<QueryResult>>;

    /// Polls the operation until it ends or `timeout` passes (then returns it as it stands).
    fn wait_operation<'a>(
        &'a self,
        id: &'a str,
        timeout: Duration,
    ) -> BoxFuture<'a, Result<Operation>> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                let operation = self.get_operation(id).await?;
                if operation.status.is_done() || tokio::time::Instant::now() >= deadline {
                    return Ok(operation);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    }

    // ---- Git repositories (the forge) ----

    /// `createRepo`: an empty repository (push-to-deploy when `deploy_service` is set), or
    /// the existing one with `created: false`.
    fn create_repo<'a>(
        &'a self,
        project: &'a str,
        request: &'a RepoRequest,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CreatedRepo>>;

    /// `listRepos`.
    fn list_repos<'a>(&'a self, project: &'a str) -> BoxFuture<'a, Result<Vec<RepoInfo>>>;

    /// `getRepo`: with its `clone_url`, head and last push-to-deploy.
    fn get_repo<'a>(&'a self, project: &'a str, repo: &'a str) -> BoxFuture<'a, Result<RepoInfo>>;

    /// `deleteRepo`: refused without `confirm`; deleting what does not exist succeeds with
    /// `deleted: false`.
    fn delete_repo<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        confirm: bool,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<DeletedRepo>>;

    /// `listRepoRefs`: branches and tags.
    fn list_refs<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
    ) -> BoxFuture<'a, Result<Vec<RepoRef>>>;

    /// `listRepoCommits`: newest first from `git_ref` (default: the default branch), at most
    /// `limit` (capped at [`crate::model::MAX_LOG_LIMIT`]).
    fn list_commits<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        git_ref: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<RepoCommit>>>;

    /// `getRepoTree`: the directory `path` ("" for the root) at `git_ref`.
    fn get_tree<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        git_ref: Option<&'a str>,
        path: &'a str,
    ) -> BoxFuture<'a, Result<RepoTree>>;

    /// `getRepoFile`: the file at `path` at `git_ref` (text, or base64 when binary).
    fn get_file<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        git_ref: Option<&'a str>,
        path: &'a str,
    ) -> BoxFuture<'a, Result<RepoFile>>;

    /// `commitRepoFiles`: the files in one commit on the branch, without local git.
    fn commit_files<'a>(
        &'a self,
        project: &'a str,
        repo: &'a str,
        request: &'a CommitRequest,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<CommitResult>>;

    // ---- Credits: the prepaid balance inference through the platform spends ----

    /// `getCredits`: the caller's account balance (needs `read`).
    fn credits(&self) -> BoxFuture<'_, Result<CreditBalance>>;

    /// `listCreditHistory`: the account's ledger, newest first, at most `limit` entries
    /// (capped at [`crate::credits::MAX_HISTORY_LIMIT`]) older than entry `before` when given.
    fn credit_history(
        &self,
        limit: usize,
        before: Option<i64>,
    ) -> BoxFuture<'_, Result<CreditHistory>>;

    /// `grantCredits`: adds credits to the account; admin only (a scoped token never
    /// creates money).
    fn grant_credits<'a>(
        &'a self,
        request: &'a CreditGrant,
        idempotency_key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<GrantedCredits>>;
}
