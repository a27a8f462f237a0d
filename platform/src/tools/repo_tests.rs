//! The `repo` tool on a real local platform: its lean spec, its risk per action, and the
//! actions from create to delete with the model-facing errors.

use super::*;
use crate::api::Platform;
use crate::error::Error;
use crate::local::LocalPlatform;
use crate::tools::PlatformAccess;
use automaton_tools::clock::SystemClock;
use automaton_tools::tool::{BoxFuture, DynTool, Provenance, TypedTool};
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

struct Local(LocalPlatform);

impl PlatformAccess for Local {
    fn platform(&self) -> BoxFuture<'_, Result<Arc<dyn Platform>, Error>> {
        let platform: Arc<dyn Platform> = Arc::new(self.0.clone());
        Box::pin(async move { Ok(platform) })
    }

    fn workspace(&self) -> PathBuf {
        PathBuf::from("/workspace")
    }
}

async fn call(
    tool: &TypedTool<RepoTool>,
    args: serde_json::Value,
) -> Result<serde_json::Value, ToolError> {
    let ctx = ToolContext {
        call_id: "call-1".to_owned(),
        turn_id: Some(1),
        provenance: Provenance::SelfDirected,
        cancel: CancellationToken::new(),
        deadline: tokio::time::Instant::now() + std::time::Duration::from_secs(30),
        clock: Arc::new(SystemClock),
    };
    tool.call_json(&ctx, args).await.map(|output| output.value)
}

fn model_error(error: ToolError) -> (ToolErrorCode, String, String) {
    match error {
        ToolError::RespondToModel(model) => (model.code, model.message, model.hint),
        other => panic!("not for the model: {other:?}"),
    }
}

#[tokio::test]
async fn the_repo_tool_creates_commits_reads_and_deletes_with_risk_per_action() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalPlatform::open(&dir.path().join("platform"), Arc::new(SystemClock)).unwrap();
    local.create_project("shop", None).await.unwrap();
    let tool = TypedTool::new(RepoTool(Arc::new(Local(local)))).unwrap();

    let spec = tool.spec();
    assert!(spec.description.len() < 250, "{}", spec.description);
    assert_eq!(
        spec.parameters["required"],
        serde_json::json!(["action", "project"])
    );
    assert_eq!(spec.parameters["properties"]["action"]["enum"][6], "commit");
    for (action, risk, effect) in [
        ("list", RiskLevel::Safe, Effect::ReadOnly),
        ("file", RiskLevel::Safe, Effect::ReadOnly),
        ("create", RiskLevel::Caution, Effect::Network),
        ("commit", RiskLevel::Caution, Effect::Network),
        ("delete", RiskLevel::Dangerous, Effect::Network),
    ] {
        let assessed = tool
            .assess(&serde_json::json!({"action": action, "project": "shop", "repo": "site"}))
            .unwrap();
        assert_eq!((assessed.risk, assessed.effect), (risk, effect), "{action}");
    }

    let created = call(
        &tool,
        serde_json::json!({"action": "create", "project": "shop", "repo": "site"}),
    )
    .await
    .unwrap();
    assert_eq!(created["created"], true);
    let committed = call(
        &tool,
        serde_json::json!({
            "action": "commit", "project": "shop", "repo": "site", "message": "first",
            "files": {"index.html": "<h1>hi</h1>", "app/main.py": "print(1)"},
            "idempotency_key": "c1",
        }),
    )
    .await
    .unwrap();
    assert_eq!(committed["branch"], "main");
    let file = call(&tool, serde_json::json!({"action": "file", "project": "shop", "repo": "site", "path": "index.html"}))
        .await
        .unwrap();
    assert_eq!(file["content"], "<h1>hi</h1>");
    let tree = call(
        &tool,
        serde_json::json!({"action": "tree", "project": "shop", "repo": "site"}),
    )
    .await
    .unwrap();
    assert_eq!(tree["entries"][0]["path"], "app");
    let log = call(
        &tool,
        serde_json::json!({"action": "log", "project": "shop", "repo": "site"}),
    )
    .await
    .unwrap();
    assert_eq!(log["commits"][0]["id"], committed["commit"]);
    // A null content deletes the path.
    let removed = call(
        &tool,
        serde_json::json!({"action": "commit", "project": "shop", "repo": "site", "message": "rm", "files": {"app/main.py": null}}),
    )
    .await
    .unwrap();
    let tree = call(
        &tool,
        serde_json::json!({"action": "tree", "project": "shop", "repo": "site"}),
    )
    .await
    .unwrap();
    assert_eq!(tree["entries"].as_array().unwrap().len(), 1, "{tree}");
    let info = call(
        &tool,
        serde_json::json!({"action": "info", "project": "shop", "repo": "site"}),
    )
    .await
    .unwrap();
    assert_eq!(info["head"], removed["commit"]);
    let listed = call(
        &tool,
        serde_json::json!({"action": "list", "project": "shop"}),
    )
    .await
    .unwrap();
    assert_eq!(listed["repos"][0]["name"], "site");

    // Errors the model can act on.
    let (code, message, _) = model_error(
        call(
            &tool,
            serde_json::json!({"action": "info", "project": "shop"}),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(
        (code, message.as_str()),
        (
            ToolErrorCode::InvalidArguments,
            "action `info` needs `repo`"
        )
    );
    let (code, _, hint) = model_error(
        call(&tool, serde_json::json!({"action": "file", "project": "shop", "repo": "site", "path": "nope.txt"}))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, ToolErrorCode::NotFound);
    assert!(hint.contains("index.html"), "{hint}");
    let (code, _, hint) = model_error(
        call(&tool, serde_json::json!({"action": "commit", "project": "shop", "repo": "site", "message": "x", "files": {"../x": "x"}}))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, ToolErrorCode::InvalidArguments);
    assert!(hint.contains("relative path"), "{hint}");
    let (_, _, hint) = model_error(
        call(
            &tool,
            serde_json::json!({"action": "delete", "project": "shop", "repo": "site"}),
        )
        .await
        .unwrap_err(),
    );
    assert!(hint.contains("confirm"), "{hint}");
    let deleted = call(
        &tool,
        serde_json::json!({"action": "delete", "project": "shop", "repo": "site", "confirm": true}),
    )
    .await
    .unwrap();
    assert_eq!(deleted["deleted"], true);
}
