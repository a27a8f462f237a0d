//! The agent's `token` tool: scoped platform tokens it can hand on (to a child, to an app it
//! deploys) without handing on its own. `issue` grants only what the agent's own token holds,
//! within its own projects (the platform refuses more, `CAPABILITY_MISSING`); the secret is
//! in that one answer and never again; `list` shows what the agent issued (never secrets);
//! `revoke` ends a token and everything issued under it at once.

use crate::model::{Capability, TokenRequest};
use crate::tools::{PlatformAccess, to_tool_error};
use automaton_tools::tool::{
    Category, Effect, RiskLevel, Tool, ToolContext, ToolError, ToolErrorCode, ToolOutput,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

/// What to do with tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAction {
    /// Mint a token.
    Issue,
    /// The tokens issued so far.
    List,
    /// Revoke one (and what it issued).
    Revoke,
}

/// The action's schema: a plain string enum (derived from the documented variants it would
/// be a `oneOf`, costing tokens on every request).
fn action_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({"type": "string", "enum": ["issue", "list", "revoke"]})
}

/// Arguments of `token`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenArgs {
    /// issue, list or revoke.
    #[schemars(schema_with = "action_schema")]
    pub action: TokenAction,
    /// issue: what it may do (read, deploy, manage_env, manage_projects, manage_tokens, manage_datastores, manage_repos, inference).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// issue: projects it reaches (default: yours).
    #[serde(default)]
    pub projects: Option<Vec<String>>,
    /// issue: a label.
    #[serde(default)]
    pub name: Option<String>,
    /// revoke: token id.
    #[serde(default)]
    pub id: Option<String>,
}

/// `token`.
pub struct TokenTool(pub Arc<dyn PlatformAccess>);

impl Tool for TokenTool {
    const NAME: &'static str = "token";
    type Args = TokenArgs;

    fn description(&self) -> String {
        "Issue, list or revoke scoped platform tokens (e.g. deploy-only for a child's project). A new secret is shown once.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn assess_risk(&self, args: &TokenArgs) -> RiskLevel {
        match args.action {
            TokenAction::List => RiskLevel::Safe,
            TokenAction::Issue | TokenAction::Revoke => RiskLevel::Caution,
        }
    }

    fn effect(&self, args: &TokenArgs) -> Effect {
        match args.action {
            TokenAction::List => Effect::ReadOnly,
            TokenAction::Issue | TokenAction::Revoke => Effect::Network,
        }
    }

    async fn call(&self, _ctx: &ToolContext, args: TokenArgs) -> Result<ToolOutput, ToolError> {
        let misplaced = |field: &str, action: &str| {
            ToolError::model(
                ToolErrorCode::InvalidArguments,
                format!("`{field}` is for `{action}` only"),
                format!("call token again without `{field}`"),
            )
        };
        match args.action {
            TokenAction::Issue => {
                if args.id.is_some() {
                    return Err(misplaced("id", "revoke"));
                }
                if args.capabilities.is_empty() {
                    return Err(ToolError::model(
                        ToolErrorCode::InvalidArguments,
                        "a token needs at least one capability",
                        format!(
                            "name what it may do in `capabilities`, from: {}",
                            Capability::names()
                        ),
                    ));
                }
                let capabilities = args
                    .capabilities
                    .iter()
                    .map(|name| {
                        serde_json::from_value::<Capability>(name.as_str().into()).map_err(|_| {
                            ToolError::model(
                                ToolErrorCode::InvalidArguments,
                                format!("`{name}` is not a capability"),
                                format!("use names from: {}", Capability::names()),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let platform = self.0.platform().await.map_err(to_tool_error)?;
                let issued = platform
                    .issue_token(&TokenRequest {
                        name: args.name,
                        capabilities,
                        projects: args.projects,
                    })
                    .await
                    .map_err(to_tool_error)?;
                let mut answer = serde_json::to_value(&issued).map_err(|err| {
                    ToolError::Fatal(format!("a platform answer does not serialise: {err}"))
                })?;
                if let Some(object) = answer.as_object_mut() {
                    object.insert(
                        "next".to_owned(),
                        "hand the secret on now (e.g. set_env CONWAY_TOKEN for an app, or to a child): it is never shown again; revoke it by id when it is no longer needed".into(),
                    );
                }
                Ok(ToolOutput::new(answer))
            }
            TokenAction::List => {
                for (field, given) in [
                    ("capabilities", !args.capabilities.is_empty()),
                    ("projects", args.projects.is_some()),
                    ("id", args.id.is_some()),
                ] {
                    if given {
                        return Err(misplaced(
                            field,
                            if field == "id" { "revoke" } else { "issue" },
                        ));
                    }
                }
                let platform = self.0.platform().await.map_err(to_tool_error)?;
                let tokens = platform.list_tokens().await.map_err(to_tool_error)?;
                Ok(ToolOutput::new(serde_json::json!({ "tokens": tokens })))
            }
            TokenAction::Revoke => {
                let Some(id) = args.id else {
                    return Err(ToolError::model(
                        ToolErrorCode::InvalidArguments,
                        "revoke needs the token's `id`",
                        "call token with action list to see the ids, then revoke one",
                    ));
                };
                let platform = self.0.platform().await.map_err(to_tool_error)?;
                let revoked = platform.revoke_token(&id).await.map_err(to_tool_error)?;
                Ok(ToolOutput::new(serde_json::json!({
                    "revoked": revoked.revoked,
                    "note": "each revoked token stopped working at once",
                })))
            }
        }
    }
}
