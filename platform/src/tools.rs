//! The agent's platform tools, in seed 002's shape: lean descriptions, flat parameters,
//! status enums, and errors that say what to do next with the relevant state and, for build
//! and health failures, the last 30 log lines inline. Mutating calls take an optional
//! `idempotency_key` (same key and request → the first answer; same key, another request →
//! a conflict; kept 24 h); the HTTP client adds one to every mutating request it sends, so
//! its own retries never do work twice either. Reads are safe; deploy, env, scale, restart and rollback are caution;
//! deleting a project is dangerous. `datastore` is one tool with an `action`, its risk
//! judged per call (see [`DatastoreTool`]).
//!
//! The tools reach the platform through [`PlatformAccess`], so the connection (a Conway
//! gateway, or the local platform started on first use) is made when a tool first needs it.

use crate::api::Platform;
use crate::error::{Error, ErrorCode};
use crate::model::Operation;
use automaton_tools::registry::Registry;
use automaton_tools::tool::{
    BoxFuture, Category, Effect, RiskLevel, Subject, Tool, ToolContext, ToolError, ToolErrorCode,
    ToolOutput,
};
use schemars::JsonSchema;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How the tools reach the platform.
pub trait PlatformAccess: Send + Sync + 'static {
    /// The platform, connecting (or starting the local one) on first use.
    fn platform(&self) -> BoxFuture<'_, Result<Arc<dyn Platform>, Error>>;
    /// The directory relative source paths are resolved against (the agent's workspace).
    fn workspace(&self) -> PathBuf;
}

type Access = Arc<dyn PlatformAccess>;

mod repo;
mod token;
pub use repo::{RepoAction, RepoArgs, RepoTool};
pub use token::{TokenAction, TokenArgs, TokenTool};
mod datastore;
pub use datastore::{DatastoreAction, DatastoreArgs, DatastoreTool};

/// Registers every platform tool.
pub fn register(registry: &mut Registry, access: &Access) -> Result<(), String> {
    registry.register(DeployTool(Arc::clone(access)))?;
    registry.register(GetServiceTool(Arc::clone(access)))?;
    registry.register(ListServicesTool(Arc::clone(access)))?;
    registry.register(RollbackTool(Arc::clone(access)))?;
    registry.register(RestartTool(Arc::clone(access)))?;
    registry.register(ScaleTool(Arc::clone(access)))?;
    registry.register(SetEnvTool(Arc::clone(access)))?;
    registry.register(ListEnvTool(Arc::clone(access)))?;
    registry.register(LogsTool(Arc::clone(access)))?;
    registry.register(DeleteProjectTool(Arc::clone(access)))?;
    registry.register(RepoTool(Arc::clone(access)))?;
    registry.register(TokenTool(Arc::clone(access)))?;
    registry.register(DatastoreTool(Arc::clone(access)))?;
    Ok(())
}

/// A platform error as the model sees it: its seed-000 code, message and hint, whether a
/// retry may help, and the state and log tail that explain it.
pub fn to_tool_error(error: Error) -> ToolError {
    let code = match error.code {
        ErrorCode::NotFound => ToolErrorCode::NotFound,
        ErrorCode::Conflict => ToolErrorCode::Conflict,
        ErrorCode::QuotaExceeded => ToolErrorCode::QuotaExceeded,
        ErrorCode::InvalidInput => ToolErrorCode::InvalidArguments,
        _ => ToolErrorCode::PlatformError,
    };
    let details = serde_json::json!({
        "platform_code": error.code,
        "log_tail": error.log_tail,
        "state": error.state,
    });
    let mut tool_error = ToolError::model(code, error.message, error.hint).with_details(details);
    if let ToolError::RespondToModel(model) = &mut tool_error {
        model.retryable = error.retryable;
    }
    tool_error
}

async fn connect(access: &Access) -> Result<Arc<dyn Platform>, ToolError> {
    access.platform().await.map_err(to_tool_error)
}

fn output<T: serde::Serialize>(value: &T) -> Result<ToolOutput, ToolError> {
    serde_json::to_value(value)
        .map(ToolOutput::new)
        .map_err(|err| ToolError::Fatal(format!("a platform answer does not serialise: {err}")))
}

fn default_service() -> String {
    "app".to_owned()
}

fn default_dir() -> String {
    ".".to_owned()
}

/// Arguments of `deploy`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeployArgs {
    /// The project (created if missing).
    pub project: String,
    /// The service.
    #[serde(default = "default_service")]
    pub service: String,
    /// The source directory, relative to the workspace.
    #[serde(default = "default_dir")]
    pub dir: String,
    /// Reuse on a retry so the deploy is not done twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `deploy`.
pub struct DeployTool(pub Access);

impl Tool for DeployTool {
    const NAME: &'static str = "deploy";
    type Args = DeployArgs;

    fn description(&self) -> String {
        "Deploy a source directory to a live URL. Detects how to build and start it (the app must listen on $PORT); returns the URL, or the error with the log tail.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn effect(&self, _: &DeployArgs) -> Effect {
        Effect::Network
    }

    fn subjects(&self, args: &DeployArgs) -> Vec<Subject> {
        // The whole directory is packed and uploaded: nothing protected may lie in it.
        vec![Subject::ReadTree(self.0.workspace().join(&args.dir))]
    }

    async fn call(&self, ctx: &ToolContext, args: DeployArgs) -> Result<ToolOutput, ToolError> {
        let dir = self.0.workspace().join(&args.dir);
        let platform = connect(&self.0).await?;
        let created = platform
            .create_project(&args.project, None)
            .await
            .map_err(to_tool_error)?;
        let scratch = tempfile::tempdir().map_err(|err| {
            ToolError::Fatal(format!("a scratch directory for the archive: {err}"))
        })?;
        let archive = scratch.path().join("source.tar.gz");
        let (source_dir, archive_path) = (dir.clone(), archive.clone());
        let packed = tokio::task::spawn_blocking(move || {
            crate::source::pack(&source_dir, &archive_path, crate::source::MAX_SOURCE_BYTES)
        })
        .await
        .map_err(|err| ToolError::Fatal(format!("packing the source: {err}")))?
        .map_err(to_tool_error)?;
        let accepted = platform
            .deploy(
                &args.project,
                &args.service,
                &archive,
                args.idempotency_key.as_deref(),
            )
            .await
            .map_err(to_tool_error)?;
        let budget = ctx
            .deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .saturating_sub(Duration::from_secs(5));
        let operation = tokio::select! {
            operation = platform.wait_operation(&accepted.operation_id, budget) => operation.map_err(to_tool_error)?,
            () = ctx.cancel.cancelled() => {
                return Err(ToolError::Cancelled {
                    reason: format!("the deploy goes on on the platform (operation {}); check it with get_service", accepted.operation_id),
                });
            }
        };
        deploy_answer(&operation, created.created, packed.files)
    }
}

/// The tool's answer for a finished (or still running) deploy.
fn deploy_answer(
    operation: &Operation,
    project_created: bool,
    files: u64,
) -> Result<ToolOutput, ToolError> {
    if let Some(error) = &operation.error {
        let mut error = error.clone();
        if error.log_tail.len() > crate::local::LOG_TAIL_LINES {
            error.log_tail = error
                .log_tail
                .split_off(error.log_tail.len() - crate::local::LOG_TAIL_LINES);
        }
        let phase = operation.phase;
        let tool_error = to_tool_error(error);
        return Err(match tool_error {
            ToolError::RespondToModel(mut model) => {
                if let Some(details) = model.details.as_mut() {
                    details["phase"] = serde_json::json!(phase);
                    details["operation_id"] = serde_json::json!(operation.id);
                }
                ToolError::RespondToModel(model)
            }
            other => other,
        });
    }
    if !operation.status.is_done() {
        return Ok(ToolOutput::new(serde_json::json!({
            "status": "deploying",
            "phase": operation.phase,
            "operation_id": operation.id,
            "hint": "still building or starting; check with get_service in a minute",
        })));
    }
    let result = operation.result.clone().unwrap_or_default();
    Ok(ToolOutput::new(serde_json::json!({
        "status": "active",
        "url": result["url"],
        "release": result["release"],
        "provider": result["provider"],
        "duration_ms": result["duration_ms"],
        "project": operation.project,
        "service": operation.service,
        "project_created": project_created,
        "files": files,
    })))
}

/// Arguments naming one service.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceArgs {
    /// The project.
    pub project: String,
    /// The service.
    #[serde(default = "default_service")]
    pub service: String,
    /// Reuse on a retry so the change is not made twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// Arguments of `get_service`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetServiceArgs {
    /// The project.
    pub project: String,
    /// The service.
    #[serde(default = "default_service")]
    pub service: String,
    /// Log lines to include (0–200).
    #[serde(default)]
    pub log_lines: usize,
}

/// `get_service`.
pub struct GetServiceTool(pub Access);

impl Tool for GetServiceTool {
    const NAME: &'static str = "get_service";
    type Args = GetServiceArgs;

    fn description(&self) -> String {
        "A service's status, URL, health (crash_loop, restarts, last error), releases, and optionally its last log lines.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Safe
    }

    fn effect(&self, _: &GetServiceArgs) -> Effect {
        Effect::ReadOnly
    }

    async fn call(
        &self,
        _ctx: &ToolContext,
        args: GetServiceArgs,
    ) -> Result<ToolOutput, ToolError> {
        let platform = connect(&self.0).await?;
        let detail = platform
            .get_service(&args.project, &args.service, args.log_lines.min(200))
            .await
            .map_err(to_tool_error)?;
        output(&detail)
    }
}

/// Arguments naming a project.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectArgs {
    /// The project.
    pub project: String,
}

/// `list_services`.
pub struct ListServicesTool(pub Access);

impl Tool for ListServicesTool {
    const NAME: &'static str = "list_services";
    type Args = ProjectArgs;

    fn description(&self) -> String {
        "A project's services with status and releases, its env names and recent events.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Safe
    }

    fn effect(&self, _: &ProjectArgs) -> Effect {
        Effect::ReadOnly
    }

    async fn call(&self, _ctx: &ToolContext, args: ProjectArgs) -> Result<ToolOutput, ToolError> {
        let platform = connect(&self.0).await?;
        let state = platform
            .get_project(&args.project)
            .await
            .map_err(to_tool_error)?;
        output(&state)
    }
}

/// Arguments of `rollback`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackArgs {
    /// The project.
    pub project: String,
    /// The service.
    #[serde(default = "default_service")]
    pub service: String,
    /// A release id; default the previous release.
    #[serde(default)]
    pub to_release: Option<String>,
    /// Reuse on a retry so the change is not made twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `rollback`.
pub struct RollbackTool(pub Access);

impl Tool for RollbackTool {
    const NAME: &'static str = "rollback";
    type Args = RollbackArgs;

    fn description(&self) -> String {
        "Point a service back at its previous (or a named) release in seconds, without rebuilding."
            .to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn effect(&self, _: &RollbackArgs) -> Effect {
        Effect::Network
    }

    async fn call(&self, _ctx: &ToolContext, args: RollbackArgs) -> Result<ToolOutput, ToolError> {
        let platform = connect(&self.0).await?;
        let detail = platform
            .rollback(
                &args.project,
                &args.service,
                args.to_release.as_deref(),
                args.idempotency_key.as_deref(),
            )
            .await
            .map_err(to_tool_error)?;
        output(&detail)
    }
}

/// `restart`.
pub struct RestartTool(pub Access);

impl Tool for RestartTool {
    const NAME: &'static str = "restart";
    type Args = ServiceArgs;

    fn description(&self) -> String {
        "Restart a service's instances on its current release.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn effect(&self, _: &ServiceArgs) -> Effect {
        Effect::Network
    }

    async fn call(&self, _ctx: &ToolContext, args: ServiceArgs) -> Result<ToolOutput, ToolError> {
        let platform = connect(&self.0).await?;
        let detail = platform
            .restart(
                &args.project,
                &args.service,
                args.idempotency_key.as_deref(),
            )
            .await
            .map_err(to_tool_error)?;
        output(&detail)
    }
}

/// Arguments of `scale`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleArgs {
    /// The project.
    pub project: String,
    /// The service.
    #[serde(default = "default_service")]
    pub service: String,
    /// Instances to run (0 stops the service).
    pub replicas: u32,
    /// Reuse on a retry so the change is not made twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `scale`.
pub struct ScaleTool(pub Access);

impl Tool for ScaleTool {
    const NAME: &'static str = "scale";
    type Args = ScaleArgs;

    fn description(&self) -> String {
        "Run N instances of a service behind its URL (0 stops it).".to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn effect(&self, _: &ScaleArgs) -> Effect {
        Effect::Network
    }

    async fn call(&self, _ctx: &ToolContext, args: ScaleArgs) -> Result<ToolOutput, ToolError> {
        let platform = connect(&self.0).await?;
        let detail = platform
            .scale(
                &args.project,
                &args.service,
                args.replicas,
                args.idempotency_key.as_deref(),
            )
            .await
            .map_err(to_tool_error)?;
        output(&detail)
    }
}

/// Arguments of `set_env`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetEnvArgs {
    /// The project.
    pub project: String,
    /// Variables to set, NAME to value.
    pub vars: std::collections::BTreeMap<String, String>,
    /// Reuse on a retry so the change is not made twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `set_env`.
pub struct SetEnvTool(pub Access);

impl Tool for SetEnvTool {
    const NAME: &'static str = "set_env";
    type Args = SetEnvArgs;

    fn description(&self) -> String {
        "Set project env variables; running services restart to see them. Values are never shown again.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    fn effect(&self, _: &SetEnvArgs) -> Effect {
        Effect::Network
    }

    fn subjects(&self, args: &SetEnvArgs) -> Vec<Subject> {
        let bytes = args.vars.iter().map(|(k, v)| k.len() + v.len()).sum();
        vec![Subject::Size {
            field: "vars",
            bytes,
            max: 256 * 1024,
        }]
    }

    fn secret_fields(&self) -> &'static [&'static str] {
        &["vars"]
    }

    fn secret_args(&self, args: &SetEnvArgs) -> Vec<String> {
        // The values may be credentials: the audit trail keeps the names only.
        args.vars
            .keys()
            .map(|name| format!("/vars/{}", name.replace('~', "~0").replace('/', "~1")))
            .collect()
    }

    async fn call(&self, _ctx: &ToolContext, args: SetEnvArgs) -> Result<ToolOutput, ToolError> {
        let platform = connect(&self.0).await?;
        let vars: Vec<(String, String)> = args.vars.into_iter().collect();
        let change = platform
            .set_env(&args.project, &vars, args.idempotency_key.as_deref())
            .await
            .map_err(to_tool_error)?;
        output(&change)
    }
}

/// `list_env`.
pub struct ListEnvTool(pub Access);

impl Tool for ListEnvTool {
    const NAME: &'static str = "list_env";
    type Args = ProjectArgs;

    fn description(&self) -> String {
        "The names of a project's env variables (never the values).".to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Safe
    }

    fn effect(&self, _: &ProjectArgs) -> Effect {
        Effect::ReadOnly
    }

    async fn call(&self, _ctx: &ToolContext, args: ProjectArgs) -> Result<ToolOutput, ToolError> {
        let platform = connect(&self.0).await?;
        let names = platform
            .list_env(&args.project)
            .await
            .map_err(to_tool_error)?;
        Ok(ToolOutput::new(
            serde_json::json!({ "project": args.project, "names": names }),
        ))
    }
}

/// Arguments of `logs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogsArgs {
    /// The project.
    pub project: String,
    /// The service.
    #[serde(default = "default_service")]
    pub service: String,
    /// Lines (1–500).
    #[serde(default = "default_lines")]
    pub lines: usize,
}

fn default_lines() -> usize {
    100
}

/// `logs`.
pub struct LogsTool(pub Access);

impl Tool for LogsTool {
    const NAME: &'static str = "logs";
    type Args = LogsArgs;

    fn description(&self) -> String {
        "A service's last runtime log lines and its latest build's lines.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Safe
    }

    fn effect(&self, _: &LogsArgs) -> Effect {
        Effect::ReadOnly
    }

    async fn call(&self, _ctx: &ToolContext, args: LogsArgs) -> Result<ToolOutput, ToolError> {
        let platform = connect(&self.0).await?;
        let logs = platform
            .logs(&args.project, &args.service, args.lines.clamp(1, 500))
            .await
            .map_err(to_tool_error)?;
        output(&logs)
    }
}

/// Arguments of `delete_project`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteProjectArgs {
    /// The project.
    pub project: String,
    /// Must be true: everything in the project is removed for good.
    pub confirm: bool,
    /// Reuse on a retry so the change is not made twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `delete_project`.
pub struct DeleteProjectTool(pub Access);

impl Tool for DeleteProjectTool {
    const NAME: &'static str = "delete_project";
    type Args = DeleteProjectArgs;

    fn description(&self) -> String {
        "Delete a project: stops its services and removes its releases and env. Idempotent."
            .to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Dangerous
    }

    fn effect(&self, _: &DeleteProjectArgs) -> Effect {
        Effect::Network
    }

    async fn call(
        &self,
        _ctx: &ToolContext,
        args: DeleteProjectArgs,
    ) -> Result<ToolOutput, ToolError> {
        let platform = connect(&self.0).await?;
        let deleted = platform
            .delete_project(&args.project, args.confirm, args.idempotency_key.as_deref())
            .await
            .map_err(to_tool_error)?;
        output(&deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automaton_tools::tool::{DynTool, TypedTool};

    struct Nowhere;

    impl PlatformAccess for Nowhere {
        fn platform(&self) -> BoxFuture<'_, Result<Arc<dyn Platform>, Error>> {
            Box::pin(async {
                Err(Error::new(
                    ErrorCode::InternalError,
                    "no platform in this test",
                ))
            })
        }

        fn workspace(&self) -> PathBuf {
            PathBuf::from("/workspace")
        }
    }

    #[test]
    fn specs_are_flat_objects_with_lean_descriptions() {
        let access: Access = Arc::new(Nowhere);
        let deploy = TypedTool::new(DeployTool(Arc::clone(&access))).unwrap();
        let spec = deploy.spec();
        println!("{}", spec.to_openai_function());
        assert!(spec.description.len() < 200);
        assert_eq!(spec.parameters["required"], serde_json::json!(["project"]));
    }
}
