//! What the platform's verbs take and return, in seed 000's wire shape: the same structs are
//! the local platform's results, the REST gateway's JSON and the tools' output.

use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};

/// The longest project or service name: both form a DNS label (`<service>-<project>`).
pub const MAX_NAME_LEN: usize = 30;

/// Checks a project or service name: lowercase letters, digits and single hyphens, starting
/// with a letter, at most [`MAX_NAME_LEN`] characters. The error suggests a valid spelling.
pub fn validate_name(what: &str, name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && !name.contains("--")
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        return Ok(());
    }
    let suggestion = suggest_name(name);
    Err(Error::new(
        ErrorCode::InvalidInput,
        format!("`{name}` is not a valid {what} name"),
    )
    .with_hint(format!(
        "use lowercase letters, digits and single hyphens, starting with a letter, at most {MAX_NAME_LEN} characters, e.g. `{suggestion}`"
    )))
}

/// A valid name close to `name`.
fn suggest_name(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let mut out: String = out
        .trim_start_matches(|c: char| c.is_ascii_digit() || c == '-')
        .chars()
        .take(MAX_NAME_LEN)
        .collect();
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        "my-app".to_owned()
    } else {
        out
    }
}

/// One line of `listProjects`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSummary {
    /// The project's name.
    pub name: String,
    /// When it was created, epoch ms.
    pub created_at_ms: i64,
    /// How many services it has.
    pub services: u32,
}

/// `createProject`'s answer: the project, and whether this call created it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedProject {
    /// False when the project already existed (the call changed nothing).
    pub created: bool,
    /// Its full state.
    pub project: ProjectState,
}

/// `deleteProject`'s answer. Deleting what does not exist succeeds with `deleted: false`: the
/// desired end state holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedProject {
    /// The project's name.
    pub name: String,
    /// False when there was nothing to delete.
    pub deleted: bool,
    /// The services that were stopped and removed with it.
    pub removed_services: Vec<String>,
}

/// A service's status (seed 002's enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServiceStatus {
    /// A deploy is waiting to start.
    Queued,
    /// A release is being built.
    Building,
    /// A release is rolling out.
    Deploying,
    /// Running and healthy.
    Active,
    /// Its last deploy failed and nothing runs.
    Failed,
    /// It keeps crashing; the supervisor keeps restarting it with backoff.
    CrashLoop,
    /// Scaled to zero or never deployed.
    Stopped,
}

impl ServiceStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Building => "building",
            Self::Deploying => "deploying",
            Self::Active => "active",
            Self::Failed => "failed",
            Self::CrashLoop => "crash_loop",
            Self::Stopped => "stopped",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Building,
            Self::Deploying,
            Self::Active,
            Self::Failed,
            Self::CrashLoop,
            Self::Stopped,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// One service in a project's state tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceState {
    /// The service's name.
    pub name: String,
    /// Its status.
    pub status: ServiceStatus,
    /// How many replicas it should run.
    pub replicas: u32,
    /// The release it runs, if any.
    pub current_release: Option<String>,
    /// The release before it (the default rollback target), if any.
    pub previous_release: Option<String>,
}

/// Something that happened in a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectEvent {
    /// Its order in the project's event stream.
    pub id: i64,
    /// What kind (`project.created`, `deploy.succeeded`, `service.crashed`, …).
    pub kind: String,
    /// The service concerned, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// What happened.
    pub message: String,
    /// When, epoch ms.
    pub at_ms: i64,
}

/// `getProject`: the full state tree. Env values are never part of it, only names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectState {
    /// The project's name.
    pub name: String,
    /// When it was created, epoch ms.
    pub created_at_ms: i64,
    /// Its services.
    pub services: Vec<ServiceState>,
    /// The names of its env variables.
    pub env_names: Vec<String>,
    /// Its most recent events, newest last.
    pub recent_events: Vec<ProjectEvent>,
}

/// Where a long operation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OperationStatus {
    /// Accepted, not started.
    Queued,
    /// In progress.
    Running,
    /// Done, with a `result`.
    Succeeded,
    /// Done, with an `error`.
    Failed,
}

impl OperationStatus {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Queued, Self::Running, Self::Succeeded, Self::Failed]
            .into_iter()
            .find(|status| status.as_str() == text)
    }

    /// Whether the operation has ended.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed)
    }
}

/// A deploy's phases (seed 000): `queued → building → pushing → rolling_out → healthy`, or
/// `failed` / `rolled_back`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Waiting to start.
    Queued,
    /// Unpacking and building the release.
    Building,
    /// Storing the built release.
    Pushing,
    /// Starting the release and gating on its health.
    RollingOut,
    /// The release serves.
    Healthy,
    /// It failed; nothing changed for the running release.
    Failed,
    /// It failed its health gate and the previous release serves again.
    RolledBack,
}

impl Phase {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Building => "building",
            Self::Pushing => "pushing",
            Self::RollingOut => "rolling_out",
            Self::Healthy => "healthy",
            Self::Failed => "failed",
            Self::RolledBack => "rolled_back",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Queued,
            Self::Building,
            Self::Pushing,
            Self::RollingOut,
            Self::Healthy,
            Self::Failed,
            Self::RolledBack,
        ]
        .into_iter()
        .find(|phase| phase.as_str() == text)
    }
}

/// A long operation (a deploy), as `getOperation` returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Its id (`op_…`).
    pub id: String,
    /// What it does (`deploy`).
    pub kind: String,
    /// The project.
    pub project: String,
    /// The service, if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Where it stands.
    pub status: OperationStatus,
    /// Its current (or final) phase.
    pub phase: Phase,
    /// What it produced, when it succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
    /// When it was accepted, epoch ms.
    pub created_at_ms: i64,
    /// When it ended, epoch ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<i64>,
}

/// One event of an operation's stream: a `log` line, a `phase` change, or `done` (carrying the
/// same `result`/`error` as the operation). The stream replays from `seq` 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OperationEvent {
    /// Its place in the stream, from 1.
    pub seq: i64,
    /// `log`, `phase` or `done`.
    pub kind: String,
    /// The payload.
    pub data: serde_json::Value,
    /// When, epoch ms.
    pub at_ms: i64,
}

/// `createDeploy`'s immediate answer (HTTP 202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployAccepted {
    /// The operation to poll or stream.
    pub operation_id: String,
    /// Where its event stream is served.
    pub stream_url: String,
    /// The project.
    pub project: String,
    /// The service.
    pub service: String,
}

/// What a successful deploy produced (the operation's `result`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployResult {
    /// The release now serving.
    pub release: String,
    /// The live URL.
    pub url: String,
    /// How the release was built and started.
    pub provider: crate::detect::Provider,
    /// Milliseconds from acceptance to healthy.
    pub duration_ms: i64,
}

/// A service's health (seed 002's structured health).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `healthy`, `unhealthy` or `stopped`.
    pub status: String,
    /// Why it is unhealthy (`crash_loop`, `restarting`), when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Restarts since the release started serving.
    pub restart_count: u32,
    /// The app's last line before its last exit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error_line: Option<String>,
    /// What to try, when the last line suggests something.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion: Option<String>,
}

/// One release of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    /// Its id (`rel_…`).
    pub id: String,
    /// `ready` or `failed` (its health gate).
    pub status: String,
    /// When it was first built, epoch ms.
    pub created_at_ms: i64,
}

/// `get_service`: the service with its health, releases, URLs and (on request) log tail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceDetail {
    /// The project.
    pub project: String,
    /// The service.
    pub name: String,
    /// Its status.
    pub status: ServiceStatus,
    /// The live URL, when it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Each replica's own address.
    pub direct_urls: Vec<String>,
    /// Replicas wanted.
    pub replicas: u32,
    /// The release it runs.
    pub current_release: Option<String>,
    /// The default rollback target.
    pub previous_release: Option<String>,
    /// Its health.
    pub health: Health,
    /// Its releases, newest first.
    pub releases: Vec<ReleaseInfo>,
    /// The last lines the app wrote (only when asked for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log_tail: Vec<String>,
}

/// `set_env`'s answer: names only, never values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvChange {
    /// The names set.
    pub set: Vec<String>,
    /// Every env name of the project now.
    pub env_names: Vec<String>,
    /// The services restarted to see the change.
    pub restarted_services: Vec<String>,
}

/// A service's logs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceLogs {
    /// The last runtime lines, oldest first, each prefixed with its release.
    pub runtime: Vec<String>,
    /// The last build lines of the latest deploy.
    pub build: Vec<String>,
}

/// What a token may do.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Read projects, services, env names, logs, operations, events.
    Read,
    /// Deploy, roll back, restart and scale services.
    Deploy,
    /// Set env variables.
    ManageEnv,
    /// Create and delete projects.
    ManageProjects,
    /// Issue, list and revoke tokens (within what the token holds).
    ManageTokens,
    /// Add, back up, query and delete datastores.
    ManageDatastores,
    /// Create, commit to and delete repositories.
    ManageRepos,
    /// Call models through the platform's inference proxy, billed to the account's credits.
    Inference,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Self; 8] = [
        Self::Read,
        Self::Deploy,
        Self::ManageEnv,
        Self::ManageProjects,
        Self::ManageTokens,
        Self::ManageDatastores,
        Self::ManageRepos,
        Self::Inference,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Deploy => "deploy",
            Self::ManageEnv => "manage_env",
            Self::ManageProjects => "manage_projects",
            Self::ManageTokens => "manage_tokens",
            Self::ManageDatastores => "manage_datastores",
            Self::ManageRepos => "manage_repos",
            Self::Inference => "inference",
        }
    }

    /// Every wire name, for hints.
    pub fn names() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

/// `createToken`'s request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// A label for listings.
    #[serde(default)]
    pub name: Option<String>,
    /// What the token may do.
    pub capabilities: Vec<Capability>,
    /// The projects it may reach; absent means every project the issuer reaches (only for
    /// issuers scoped to every project).
    #[serde(default)]
    pub projects: Option<Vec<String>>,
}

/// A token as listings show it (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its id (`tok_…`).
    pub id: String,
    /// Its label.
    pub name: String,
    /// What it may do.
    pub capabilities: Vec<Capability>,
    /// Where (`null`: every project).
    pub projects: Option<Vec<String>>,
    /// The token that issued it, if a token did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// When, epoch ms.
    pub created_at_ms: i64,
    /// When it was revoked, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at_ms: Option<i64>,
}

/// `createToken`'s answer: the only time the secret is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    /// The token.
    #[serde(flatten)]
    pub token: TokenInfo,
    /// The bearer secret, shown this once.
    pub secret: String,
}

/// `revokeToken`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedTokens {
    /// The token asked for and every token issued under it that was still live.
    pub revoked: Vec<String>,
}

// ---- Git repositories (the forge) ----

/// The most bytes a commit's files may carry in all (`commitRepoFiles`).
pub const MAX_COMMIT_BYTES: usize = 10 * 1024 * 1024;
/// The most files one commit may change.
pub const MAX_COMMIT_FILES: usize = 1_000;
/// The largest file `getRepoFile` returns.
pub const MAX_READ_FILE_BYTES: u64 = 1024 * 1024;
/// The most commits `listRepoCommits` returns.
pub const MAX_LOG_LIMIT: usize = 200;

/// `createRepo`'s request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepoRequest {
    /// The repository's name (a DNS-label-like name, without `.git`).
    pub name: String,
    /// The service a push to the default branch deploys (push-to-deploy), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_service: Option<String>,
}

/// A deploy a push or a commit started (push-to-deploy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoDeploy {
    /// The commit deployed.
    pub commit: String,
    /// The service.
    pub service: String,
    /// The deploy's operation, when it was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// Why it could not start, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
    /// When, epoch ms.
    pub at_ms: i64,
}

/// A repository, as `getRepo` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepoInfo {
    /// The project.
    pub project: String,
    /// Its name.
    pub name: String,
    /// `git clone` this (the platform token is the password, any user name).
    pub clone_url: String,
    /// The branch HEAD names (`main` unless the first commit named another).
    pub default_branch: String,
    /// The default branch's commit; absent while the repository is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// The service pushes to the default branch deploy, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_service: Option<String>,
    /// The last deploy a push or commit started, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_deploy: Option<RepoDeploy>,
    /// When it was created, epoch ms.
    pub created_at_ms: i64,
}

/// `createRepo`'s answer: the repository, and whether this call created it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedRepo {
    /// False when it already existed (the call changed nothing).
    pub created: bool,
    /// The repository.
    pub repo: RepoInfo,
}

/// `deleteRepo`'s answer; deleting what does not exist succeeds with `deleted: false`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedRepo {
    /// The repository's name.
    pub name: String,
    /// False when there was nothing to delete.
    pub deleted: bool,
}

/// One branch or tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoRef {
    /// The full name (`refs/heads/main`, `refs/tags/v1`).
    pub name: String,
    /// The commit it points at.
    pub commit: String,
}

/// One commit of a log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoCommit {
    /// Its id (40 hex digits).
    pub id: String,
    /// Its whole message.
    pub message: String,
    /// The author's name.
    pub author_name: String,
    /// The author's email.
    pub author_email: String,
    /// When it was authored, epoch ms.
    pub time_ms: i64,
    /// Its parents' ids.
    pub parents: Vec<String>,
}

/// What a tree entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryKind {
    /// A file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A submodule.
    Submodule,
}

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeEntry {
    /// Its path from the repository's root.
    pub path: String,
    /// What it is.
    pub kind: EntryKind,
    /// Its size in bytes (files only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// `getRepoTree`: one directory at one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoTree {
    /// The commit read.
    pub commit: String,
    /// The directory (empty: the root).
    pub path: String,
    /// Its entries, directories first.
    pub entries: Vec<TreeEntry>,
}

/// How a file's content is written on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentEncoding {
    /// UTF-8 text as is.
    #[default]
    Utf8,
    /// Base64 (binary content).
    Base64,
}

/// `getRepoFile`: one file at one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoFile {
    /// The commit read.
    pub commit: String,
    /// The file's path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// `utf8`, or `base64` for binary content.
    pub encoding: ContentEncoding,
    /// The content.
    pub content: String,
}

/// One file of a commit: new content, or a deletion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileChange {
    /// The path from the repository's root (`src/main.py`).
    pub path: String,
    /// The new content (absent when deleting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// How `content` is written (default `utf8`).
    #[serde(default)]
    pub encoding: ContentEncoding,
    /// Delete the file instead.
    #[serde(default)]
    pub delete: bool,
}

/// A commit's author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Author {
    /// The name.
    pub name: String,
    /// The email.
    pub email: String,
}

/// `commitRepoFiles`'s request: files changed in one commit, no local git needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    /// The branch (default: the repository's default branch; created when missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The commit message.
    pub message: String,
    /// The files.
    pub files: Vec<FileChange>,
    /// The author (default: the platform).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<Author>,
}

/// `commitRepoFiles`'s answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommitResult {
    /// The new commit (the branch's unchanged head when nothing changed).
    pub commit: String,
    /// The branch.
    pub branch: String,
    /// False when the files already had this content (no commit was made).
    pub changed: bool,
    /// Whether this commit created the branch.
    pub created_branch: bool,
    /// The deploy it started (push-to-deploy on the default branch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<RepoDeploy>,
}

/// Checks a path inside a repository: relative, `/`-separated, no empty, `.`, `..` or `.git`
/// components, no backslashes or control characters.
pub fn validate_repo_path(path: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::new(
            ErrorCode::InvalidInput,
            format!("`{path}` is not a valid path in a repository: {why}"),
        )
        .with_hint("use a relative path with `/` between names, e.g. `src/main.py`"))
    };
    if path.is_empty() {
        return bad("it is empty");
    }
    if path.len() > 1024 {
        return bad("it is longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return bad("it is absolute");
    }
    if path.chars().any(|c| c.is_control() || c == '\\') {
        return bad("it holds a backslash or a control character");
    }
    for component in path.split('/') {
        match component {
            "" => return bad("it has an empty component (`//` or a trailing `/`)"),
            "." | ".." => return bad("`.` and `..` are not allowed"),
            name if name.eq_ignore_ascii_case(".git") => {
                return bad("`.git` components are not allowed");
            }
            _ => {}
        }
    }
    Ok(())
}

/// A datastore's engine (seed 000's `add postgres|redis|mongo`, plus `sqlite` locally).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatastoreKind {
    /// A PostgreSQL database and role.
    Postgres,
    /// A Redis server with password auth.
    Redis,
    /// A SQLite file.
    Sqlite,
    /// Mongo (FerretDB on Conway's cloud); not available on the local platform.
    Mongo,
}

impl DatastoreKind {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postgres => "postgres",
            Self::Redis => "redis",
            Self::Sqlite => "sqlite",
            Self::Mongo => "mongo",
        }
    }

    /// Parses the wire name; the error lists the kinds there are.
    pub fn parse(text: &str) -> Result<Self> {
        [Self::Postgres, Self::Redis, Self::Sqlite, Self::Mongo]
            .into_iter()
            .find(|kind| kind.as_str() == text.trim().to_ascii_lowercase())
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::InvalidInput,
                    format!("`{text}` is not a datastore kind"),
                )
                .with_hint("add one of: postgres, redis, sqlite")
            })
    }
}

/// Where a datastore stands: `provisioning` until its engine answers, then `ready`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatastoreStatus {
    /// Its engine is being made; connects may fail.
    Provisioning,
    /// It accepts connections.
    Ready,
}

/// A datastore as reads show it: never its password (the URL shown has it masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Datastore {
    /// The project.
    pub project: String,
    /// Its name (the kind, unless `--name` gave another).
    pub name: String,
    /// Its engine.
    pub kind: DatastoreKind,
    /// Where it stands.
    pub status: DatastoreStatus,
    /// The connection URL with the password masked (`***`); services get the real one in env.
    pub url: String,
    /// The env variables injected into every service of the project.
    pub env_names: Vec<String>,
    /// When it was added, epoch ms.
    pub created_at_ms: i64,
}

/// `createDatastore`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddedDatastore {
    /// False when a datastore of that name and kind already existed (nothing changed).
    pub created: bool,
    /// The datastore.
    pub datastore: Datastore,
    /// The services restarted to see its env.
    pub restarted_services: Vec<String>,
}

/// `deleteDatastore`'s answer; deleting what does not exist succeeds with `deleted: false`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletedDatastore {
    /// The project.
    pub project: String,
    /// The datastore.
    pub name: String,
    /// False when there was nothing to delete.
    pub deleted: bool,
    /// The env variables removed from the project.
    pub removed_env: Vec<String>,
    /// The services restarted to lose them.
    pub restarted_services: Vec<String>,
}

/// One backup of a datastore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// Its key (`bk_…`), for `restoreBackup`.
    pub key: String,
    /// The datastore.
    pub datastore: String,
    /// The datastore's engine.
    pub kind: DatastoreKind,
    /// Its size in bytes.
    pub bytes: u64,
    /// When it was taken, epoch ms.
    pub created_at_ms: i64,
    /// When retention removes it, epoch ms.
    pub expires_at_ms: i64,
}

/// `restoreBackup`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredBackup {
    /// The datastore.
    pub datastore: String,
    /// The backup applied.
    pub key: String,
    /// What was done (e.g. `pg_restore --clean`).
    pub method: String,
}

/// A column of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnInfo {
    /// Its name.
    pub name: String,
    /// Its declared type.
    #[serde(rename = "type")]
    pub data_type: String,
}

/// A table (postgres, sqlite) or a key (redis).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableInfo {
    /// `schema.table`, the table's name, or the key.
    pub name: String,
    /// `table`, `view`, or the key's redis type (`string`, `hash`, `list`, …).
    pub kind: String,
    /// Rows (counted up to 10,000; more shows as 10,000 with `rows_capped`), or elements of a key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    /// Whether `rows` stopped counting at its cap.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rows_capped: bool,
    /// Its columns (tables only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnInfo>,
}

/// `listDatastoreTables`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatastoreTables {
    /// The datastore.
    pub datastore: String,
    /// Its engine.
    pub kind: DatastoreKind,
    /// Its tables or keys.
    pub tables: Vec<TableInfo>,
    /// Whether there were more than listed.
    pub truncated: bool,
}

/// Redis commands that only read.
const REDIS_READS: &[&str] = &[
    "BITCOUNT",
    "BITPOS",
    "DBSIZE",
    "DUMP",
    "ECHO",
    "EXISTS",
    "GEODIST",
    "GEOHASH",
    "GEOPOS",
    "GEOSEARCH",
    "GET",
    "GETBIT",
    "GETRANGE",
    "HEXISTS",
    "HGET",
    "HGETALL",
    "HKEYS",
    "HLEN",
    "HMGET",
    "HRANDFIELD",
    "HSCAN",
    "HSTRLEN",
    "HVALS",
    "INFO",
    "KEYS",
    "LINDEX",
    "LLEN",
    "LPOS",
    "LRANGE",
    "MGET",
    "OBJECT",
    "PFCOUNT",
    "PING",
    "PTTL",
    "RANDOMKEY",
    "SCAN",
    "SCARD",
    "SDIFF",
    "SINTER",
    "SISMEMBER",
    "SMEMBERS",
    "SMISMEMBER",
    "SRANDMEMBER",
    "SSCAN",
    "STRLEN",
    "SUNION",
    "TIME",
    "TTL",
    "TYPE",
    "XLEN",
    "XRANGE",
    "XREVRANGE",
    "ZCARD",
    "ZCOUNT",
    "ZRANGE",
    "ZRANGEBYLEX",
    "ZRANGEBYSCORE",
    "ZRANK",
    "ZREVRANGE",
    "ZREVRANGEBYSCORE",
    "ZREVRANK",
    "ZSCAN",
    "ZSCORE",
];

/// SQL words that make a statement write, wherever they stand.
const SQL_WRITES: &[&str] = &[
    "INSERT", "UPDATE", "DELETE", "MERGE", "TRUNCATE", "DROP", "ALTER", "CREATE", "GRANT",
    "REVOKE", "INTO", "COPY", "CALL", "DO", "VACUUM", "REINDEX", "CLUSTER", "LOCK", "SET",
    "REFRESH", "COMMENT", "SECURITY", "IMPORT",
];

/// Whether a query (SQL, or one redis command) clearly only reads: SQL starting with
/// SELECT, WITH, VALUES, TABLE, SHOW or EXPLAIN (without ANALYZE) and holding no writing
/// word anywhere; or a redis read command. Anything else counts as a write — a read
/// misjudged as a write only costs a confirmation.
pub fn query_is_read(query: &str) -> bool {
    let words: Vec<String> = query
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| !word.is_empty())
        .map(str::to_ascii_uppercase)
        .collect();
    let Some(first) = words.first() else {
        return false;
    };
    if REDIS_READS.contains(&first.as_str()) && !query.contains(';') {
        return true;
    }
    let starts_read = match first.as_str() {
        "SELECT" | "WITH" | "VALUES" | "TABLE" | "SHOW" => true,
        "EXPLAIN" => !words.iter().any(|w| w == "ANALYZE" || w == "ANALYSE"),
        _ => false,
    };
    starts_read && !words.iter().any(|w| SQL_WRITES.contains(&w.as_str()))
}

/// The most rows a query answers with.
pub const MAX_QUERY_ROWS: usize = 500;

/// `queryDatastore`'s answer: tabular JSON, at most [`MAX_QUERY_ROWS`] rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    /// The column names.
    pub columns: Vec<String>,
    /// The rows, each as long as `columns`.
    pub rows: Vec<Vec<serde_json::Value>>,
    /// Rows returned, or rows changed by a statement that returns none.
    pub row_count: u64,
    /// Whether more rows existed than returned.
    pub truncated: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_are_told_from_writes() {
        for read in [
            "SELECT * FROM users",
            "  select count(*) from items where name = 'x'",
            "WITH recent AS (SELECT 1) SELECT * FROM recent",
            "EXPLAIN SELECT 1",
            "SHOW server_version",
            "HGETALL user:1",
            "get hits",
            "SCAN 0 COUNT 10",
        ] {
            assert!(query_is_read(read), "{read}");
        }
        for write in [
            "INSERT INTO users VALUES (1)",
            "DROP TABLE users",
            "SELECT * INTO copy FROM users",
            "WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone",
            "EXPLAIN ANALYZE DELETE FROM users",
            "SELECT 1; DROP TABLE users",
            "SET hits 3",
            "HSET user:1 name Ada",
            "FLUSHALL",
            "PRAGMA journal_mode = DELETE",
            "",
        ] {
            assert!(!query_is_read(write), "{write}");
        }
    }

    #[test]
    fn names_are_dns_labels_and_a_bad_one_gets_a_valid_suggestion() {
        for good in ["app", "my-app", "a1", "x-2-y"] {
            validate_name("project", good).unwrap();
        }
        for (bad, suggestion) in [
            ("My App", "my-app"),
            ("", "my-app"),
            ("1st", "st"),
            ("app-", "app"),
            ("a--b", "a-b"),
            ("über_cool", "ber-cool"),
        ] {
            let err = validate_name("project", bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidInput);
            assert!(
                err.hint.contains(&format!("`{suggestion}`")),
                "{bad}: {}",
                err.hint
            );
            validate_name("project", suggestion).unwrap();
        }
        let long = "a".repeat(MAX_NAME_LEN + 1);
        assert!(validate_name("service", &long).is_err());
    }

    #[test]
    fn statuses_round_trip_on_the_wire() {
        for status in [
            "queued",
            "building",
            "deploying",
            "active",
            "failed",
            "crash_loop",
            "stopped",
        ] {
            let parsed = ServiceStatus::parse(status).unwrap();
            assert_eq!(parsed.as_str(), status);
            assert_eq!(serde_json::to_value(parsed).unwrap(), status);
        }
    }
}
