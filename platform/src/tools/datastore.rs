//! `datastore`: one tool for every datastore verb (add, info, list, delete, backup, backups,
//! restore, tables, query), so the specs sent with every request stay small; its risk is judged
//! per call from the action and, for a query, from whether it only reads.

use super::{Access, connect, output, to_tool_error};
use automaton_tools::tool::{
    Category, Effect, RiskLevel, Subject, Tool, ToolContext, ToolError, ToolErrorCode, ToolOutput,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// What `datastore` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    missing_docs,
    reason = "a variant's doc comment would become a per-variant schema description sent with every request; the names say it"
)]
pub enum DatastoreAction {
    Add,
    Info,
    List,
    Delete,
    Backup,
    Backups,
    Restore,
    Tables,
    Query,
}

/// Arguments of `datastore`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DatastoreArgs {
    /// The project.
    pub project: String,
    /// What to do.
    pub action: DatastoreAction,
    /// The datastore (add: default the kind).
    #[serde(default)]
    pub name: Option<String>,
    /// add: postgres, redis or sqlite.
    #[serde(default)]
    pub kind: Option<String>,
    /// SQL, or a redis command like `HGETALL user:1`.
    #[serde(default)]
    pub query: Option<String>,
    /// restore: a backup key.
    #[serde(default)]
    pub backup: Option<String>,
    /// delete: must be true.
    #[serde(default)]
    pub confirm: bool,
    /// Reuse on a retry so the change is not made twice.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `datastore`: one tool for every datastore verb, to keep the specs sent with each request
/// small. Risk per action: reads safe, add and backup caution, a query caution when it only
/// reads and dangerous otherwise, delete and restore dangerous.
pub struct DatastoreTool(pub Access);

fn missing(field: &str, action: &str) -> ToolError {
    ToolError::model(
        ToolErrorCode::InvalidArguments,
        format!("`{field}` is required for action `{action}`"),
        format!("call datastore again with `{field}` set"),
    )
}

impl Tool for DatastoreTool {
    const NAME: &'static str = "datastore";
    type Args = DatastoreArgs;

    fn description(&self) -> String {
        "A project's postgres/redis/sqlite. add injects its URL (DATABASE_URL, REDIS_URL) into every service; query runs SQL or a redis command (max 500 rows).".to_owned()
    }

    fn category(&self) -> Category {
        Category::Platform
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Dangerous
    }

    fn assess_risk(&self, args: &DatastoreArgs) -> RiskLevel {
        match args.action {
            DatastoreAction::Info
            | DatastoreAction::List
            | DatastoreAction::Tables
            | DatastoreAction::Backups => RiskLevel::Safe,
            DatastoreAction::Add | DatastoreAction::Backup => RiskLevel::Caution,
            DatastoreAction::Query
                if args
                    .query
                    .as_deref()
                    .is_some_and(crate::model::query_is_read) =>
            {
                RiskLevel::Caution
            }
            DatastoreAction::Query | DatastoreAction::Delete | DatastoreAction::Restore => {
                RiskLevel::Dangerous
            }
        }
    }

    fn effect(&self, args: &DatastoreArgs) -> Effect {
        match args.action {
            DatastoreAction::Info
            | DatastoreAction::List
            | DatastoreAction::Tables
            | DatastoreAction::Backups => Effect::ReadOnly,
            DatastoreAction::Add
            | DatastoreAction::Delete
            | DatastoreAction::Backup
            | DatastoreAction::Restore
            | DatastoreAction::Query => Effect::Network,
        }
    }

    fn subjects(&self, args: &DatastoreArgs) -> Vec<Subject> {
        args.query
            .as_ref()
            .map(|query| {
                vec![Subject::Size {
                    field: "query",
                    bytes: query.len(),
                    max: 64 * 1024,
                }]
            })
            .unwrap_or_default()
    }

    async fn call(&self, _ctx: &ToolContext, args: DatastoreArgs) -> Result<ToolOutput, ToolError> {
        let platform = connect(&self.0).await?;
        let project = args.project.as_str();
        let key = args.idempotency_key.as_deref();
        let name = |action: &str| args.name.as_deref().ok_or_else(|| missing("name", action));
        match args.action {
            DatastoreAction::Add => {
                let kind = crate::model::DatastoreKind::parse(
                    args.kind.as_deref().ok_or_else(|| missing("kind", "add"))?,
                )
                .map_err(to_tool_error)?;
                output(
                    &platform
                        .add_datastore(project, kind, args.name.as_deref(), key)
                        .await
                        .map_err(to_tool_error)?,
                )
            }
            DatastoreAction::Info => output(
                &platform
                    .get_datastore(project, name("info")?)
                    .await
                    .map_err(to_tool_error)?,
            ),
            DatastoreAction::List => output(&serde_json::json!({
                "datastores": platform.list_datastores(project).await.map_err(to_tool_error)?
            })),
            DatastoreAction::Delete => output(
                &platform
                    .delete_datastore(project, name("delete")?, args.confirm, key)
                    .await
                    .map_err(to_tool_error)?,
            ),
            DatastoreAction::Backup => output(
                &platform
                    .create_backup(project, name("backup")?, key)
                    .await
                    .map_err(to_tool_error)?,
            ),
            DatastoreAction::Backups => output(&serde_json::json!({
                "backups": platform
                    .list_backups(project, name("backups")?)
                    .await
                    .map_err(to_tool_error)?
            })),
            DatastoreAction::Restore => {
                let backup = args
                    .backup
                    .as_deref()
                    .ok_or_else(|| missing("backup", "restore"))?;
                output(
                    &platform
                        .restore_backup(project, name("restore")?, backup, key)
                        .await
                        .map_err(to_tool_error)?,
                )
            }
            DatastoreAction::Tables => output(
                &platform
                    .list_tables(project, name("tables")?)
                    .await
                    .map_err(to_tool_error)?,
            ),
            DatastoreAction::Query => {
                let query = args
                    .query
                    .as_deref()
                    .ok_or_else(|| missing("query", "query"))?;
                output(
                    &platform
                        .query_datastore(project, name("query")?, query, key)
                        .await
                        .map_err(to_tool_error)?,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Platform;
    use crate::error::{Error, ErrorCode};
    use crate::tools::PlatformAccess;
    use automaton_tools::tool::{BoxFuture, DynTool, TypedTool};
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

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
    fn datastore_risk_follows_the_action_and_what_a_query_does() {
        let access: Access = Arc::new(Nowhere);
        let tool = TypedTool::new(DatastoreTool(Arc::clone(&access))).unwrap();
        for (args, risk) in [
            (
                serde_json::json!({"project": "p", "action": "list"}),
                RiskLevel::Safe,
            ),
            (
                serde_json::json!({"project": "p", "action": "tables", "name": "postgres"}),
                RiskLevel::Safe,
            ),
            (
                serde_json::json!({"project": "p", "action": "add", "kind": "postgres"}),
                RiskLevel::Caution,
            ),
            (
                serde_json::json!({"project": "p", "action": "backup", "name": "redis"}),
                RiskLevel::Caution,
            ),
            (
                serde_json::json!({"project": "p", "action": "query", "name": "postgres", "query": "SELECT * FROM users"}),
                RiskLevel::Caution,
            ),
            (
                serde_json::json!({"project": "p", "action": "query", "name": "redis", "query": "HGETALL user:1"}),
                RiskLevel::Caution,
            ),
            (
                serde_json::json!({"project": "p", "action": "query", "name": "postgres", "query": "DELETE FROM users"}),
                RiskLevel::Dangerous,
            ),
            (
                serde_json::json!({"project": "p", "action": "query", "name": "redis", "query": "FLUSHALL"}),
                RiskLevel::Dangerous,
            ),
            (
                serde_json::json!({"project": "p", "action": "delete", "name": "postgres", "confirm": true}),
                RiskLevel::Dangerous,
            ),
            (
                serde_json::json!({"project": "p", "action": "restore", "name": "postgres", "backup": "bk_1"}),
                RiskLevel::Dangerous,
            ),
        ] {
            let assessed = tool.assess(&args).unwrap();
            assert_eq!(assessed.risk, risk, "{args}");
        }
        let reads = tool
            .assess(&serde_json::json!({"project": "p", "action": "info", "name": "x"}))
            .unwrap();
        assert_eq!(reads.effect, Effect::ReadOnly);
        let err = tool
            .assess(&serde_json::json!({"project": "p", "action": "drop"}))
            .unwrap_err();
        assert!(format!("{err:?}").contains("action"), "{err:?}");
    }

    struct Local(Arc<crate::local::LocalPlatform>);

    impl PlatformAccess for Local {
        fn platform(&self) -> BoxFuture<'_, Result<Arc<dyn Platform>, Error>> {
            let platform: Arc<dyn Platform> = self.0.clone();
            Box::pin(async move { Ok(platform) })
        }

        fn workspace(&self) -> PathBuf {
            PathBuf::from("/workspace")
        }
    }

    #[tokio::test]
    async fn the_datastore_tool_adds_queries_and_says_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let local = crate::local::LocalPlatform::open(
            &dir.path().join("platform"),
            Arc::new(automaton_tools::clock::SystemClock),
        )
        .unwrap();
        local.create_project("p", None).await.unwrap();
        let access: Access = Arc::new(Local(Arc::new(local)));
        let tool = TypedTool::new(DatastoreTool(access)).unwrap();
        let ctx = ToolContext {
            call_id: "call-1".to_owned(),
            turn_id: None,
            provenance: automaton_tools::tool::Provenance::Creator,
            cancel: tokio_util::sync::CancellationToken::new(),
            deadline: tokio::time::Instant::now() + Duration::from_secs(60),
            clock: Arc::new(automaton_tools::clock::SystemClock),
        };
        let call = |args: serde_json::Value| tool.call_json(&ctx, args);
        let added = call(serde_json::json!({"project": "p", "action": "add", "kind": "sqlite"}))
            .await
            .unwrap();
        assert_eq!(
            added.value["datastore"]["env_names"],
            serde_json::json!(["DATABASE_URL"])
        );
        let rows = call(serde_json::json!({"project": "p", "action": "query", "name": "sqlite", "query": "SELECT 6 * 7 AS answer"}))
            .await
            .unwrap();
        assert_eq!(rows.value["rows"], serde_json::json!([[42]]));
        let listed = call(serde_json::json!({"project": "p", "action": "list"}))
            .await
            .unwrap();
        assert_eq!(listed.value["datastores"][0]["name"], "sqlite");
        let Err(ToolError::RespondToModel(missing)) =
            call(serde_json::json!({"project": "p", "action": "query", "name": "sqlite"})).await
        else {
            panic!("a query without `query` is the model's to fix");
        };
        assert!(missing.message.contains("`query`"), "{missing:?}");
        let Err(ToolError::RespondToModel(mongo)) =
            call(serde_json::json!({"project": "p", "action": "add", "kind": "mongo"})).await
        else {
            panic!("mongo is refused");
        };
        assert!(
            mongo.hint.contains("postgres, redis or sqlite"),
            "{mongo:?}"
        );
    }
}
