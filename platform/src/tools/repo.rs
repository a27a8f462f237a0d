//! The `repo` tool: the forge in one tool with an `action`, so the eight repository verbs
//! cost one spec's tokens on every request instead of eight. Risk follows the action: reads
//! are safe, create and commit caution, delete dangerous.

use super::{Access, connect, output, to_tool_error};
use crate::model::{CommitRequest, ContentEncoding, FileChange, MAX_COMMIT_BYTES, RepoRequest};
use automaton_tools::tool::{
    Category, Effect, RiskLevel, Subject, Tool, ToolContext, ToolError, ToolErrorCode, ToolOutput,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What the `repo` tool does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RepoAction {
    /// Create a repository.
    Create,
    /// The project's repositories.
    List,
    /// One repository with its clone URL.
    Info,
    /// Its commits.
    Log,
    /// A directory.
    Tree,
    /// A file.
    File,
    /// Commit files.
    Commit,
    /// Delete a repository.
    Delete,
}

impl RepoAction {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Create => "create",
            Self::List => "list",
            Self::Info => "info",
            Self::Log => "log",
            Self::Tree => "tree",
            Self::File => "file",
            Self::Commit => "commit",
            Self::Delete => "delete",
        }
    }
}

// A bare string enum: per-variant descriptions would cost tokens on every request.
impl JsonSchema for RepoAction {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RepoAction".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "enum": ["create", "list", "info", "log", "tree", "file", "commit", "delete"],
        })
    }
}

/// Arguments of `repo`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepoArgs {
    /// What to do.
    pub action: RepoAction,
    /// The project.
    pub project: String,
    /// All but list.
    #[serde(default)]
    pub repo: Option<String>,
    /// create: the service pushes deploy.
    #[serde(default)]
    pub deploy_service: Option<String>,
    /// log/tree/file: branch, tag or commit.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// tree/file.
    #[serde(default)]
    pub path: Option<String>,
    /// commit.
    #[serde(default)]
    pub message: Option<String>,
    /// commit: path to new content (null deletes), in one commit.
    #[serde(default)]
    pub files: BTreeMap<String, Option<String>>,
    /// delete: must be true.
    #[serde(default)]
    pub confirm: bool,
    /// Reuse on a retry.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

fn missing(action: &str, field: &str, example: &str) -> ToolError {
    ToolError::model(
        ToolErrorCode::InvalidArguments,
        format!("action `{action}` needs `{field}`"),
        format!("add it, e.g. {example}"),
    )
}

/// `repo`.
pub struct RepoTool(pub Access);

impl Tool for RepoTool {
    const NAME: &'static str = "repo";
    type Args = RepoArgs;

    fn description(&self) -> String {
        "A project's git repos: create, list, info (clone_url; token is the password), log (10 newest), tree, file, commit (no git needed; to the default branch), delete.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn assess_risk(&self, args: &RepoArgs) -> RiskLevel {
        match args.action {
            RepoAction::List
            | RepoAction::Info
            | RepoAction::Log
            | RepoAction::Tree
            | RepoAction::File => RiskLevel::Safe,
            RepoAction::Create | RepoAction::Commit => RiskLevel::Caution,
            RepoAction::Delete => RiskLevel::Dangerous,
        }
    }

    fn effect(&self, args: &RepoArgs) -> Effect {
        match self.assess_risk(args) {
            RiskLevel::Safe => Effect::ReadOnly,
            RiskLevel::Caution | RiskLevel::Dangerous | RiskLevel::Forbidden => Effect::Network,
        }
    }

    fn subjects(&self, args: &RepoArgs) -> Vec<Subject> {
        if args.action != RepoAction::Commit {
            return Vec::new();
        }
        let bytes = args
            .files
            .iter()
            .map(|(path, content)| path.len() + content.as_ref().map_or(0, String::len))
            .sum();
        vec![Subject::Size {
            field: "files",
            bytes,
            max: MAX_COMMIT_BYTES,
        }]
    }

    async fn call(&self, _ctx: &ToolContext, args: RepoArgs) -> Result<ToolOutput, ToolError> {
        let project = args.project.as_str();
        let repo = || {
            args.repo
                .as_deref()
                .ok_or_else(|| missing(args.action.as_str(), "repo", "\"repo\": \"site\""))
        };
        let platform = connect(&self.0).await?;
        let key = args.idempotency_key.as_deref();
        match args.action {
            RepoAction::Create => {
                let request = RepoRequest {
                    name: repo()?.to_owned(),
                    deploy_service: args.deploy_service.clone(),
                };
                output(
                    &platform
                        .create_repo(project, &request, key)
                        .await
                        .map_err(to_tool_error)?,
                )
            }
            RepoAction::List => {
                let repos = platform.list_repos(project).await.map_err(to_tool_error)?;
                Ok(ToolOutput::new(
                    serde_json::json!({ "project": project, "repos": repos }),
                ))
            }
            RepoAction::Info => output(
                &platform
                    .get_repo(project, repo()?)
                    .await
                    .map_err(to_tool_error)?,
            ),
            RepoAction::Log => {
                let commits = platform
                    .list_commits(project, repo()?, args.git_ref.as_deref(), 10)
                    .await
                    .map_err(to_tool_error)?;
                Ok(ToolOutput::new(serde_json::json!({ "commits": commits })))
            }
            RepoAction::Tree => output(
                &platform
                    .get_tree(
                        project,
                        repo()?,
                        args.git_ref.as_deref(),
                        args.path.as_deref().unwrap_or(""),
                    )
                    .await
                    .map_err(to_tool_error)?,
            ),
            RepoAction::File => {
                let path = args
                    .path
                    .as_deref()
                    .ok_or_else(|| missing("file", "path", "\"path\": \"index.html\""))?;
                output(
                    &platform
                        .get_file(project, repo()?, args.git_ref.as_deref(), path)
                        .await
                        .map_err(to_tool_error)?,
                )
            }
            RepoAction::Commit => {
                let message = args
                    .message
                    .clone()
                    .ok_or_else(|| missing("commit", "message", "\"message\": \"add the page\""))?;
                let request = CommitRequest {
                    branch: None,
                    message,
                    files: args
                        .files
                        .iter()
                        .map(|(path, content)| FileChange {
                            path: path.clone(),
                            content: content.clone(),
                            encoding: ContentEncoding::Utf8,
                            delete: content.is_none(),
                        })
                        .collect(),
                    author: None,
                };
                output(
                    &platform
                        .commit_files(project, repo()?, &request, key)
                        .await
                        .map_err(to_tool_error)?,
                )
            }
            RepoAction::Delete => output(
                &platform
                    .delete_repo(project, repo()?, args.confirm, key)
                    .await
                    .map_err(to_tool_error)?,
            ),
        }
    }
}

#[cfg(test)]
#[path = "repo_tests.rs"]
mod tests;
