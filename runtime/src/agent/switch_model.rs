//! The `switch_model` tool: the agent picks the model for its next turns. The choice is
//! kept in state.db (`kv.active_model`) so it survives restarts; the router honours it except
//! in the low-compute tiers, where the configured cheaper model wins.

use automaton_tools::dispatch::{SharedDb, with_db};
use automaton_tools::tool::{
    Category, RiskLevel, Tool, ToolContext, ToolError, ToolErrorCode, ToolOutput,
};
use schemars::JsonSchema;
use serde::Deserialize;

/// The kv key holding the agent's choice.
pub const ACTIVE_MODEL_KEY: &str = "active_model";

/// Arguments of `switch_model`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchModelArgs {
    /// The model for the next turns (one of the configured models).
    pub model: String,
}

/// The `switch_model` tool.
#[derive(Debug)]
pub struct SwitchModelTool {
    /// The configured model names (empty: any name is accepted).
    pub models: Vec<String>,
    /// state.db.
    pub db: SharedDb,
}

impl Tool for SwitchModelTool {
    const NAME: &'static str = "switch_model";
    type Args = SwitchModelArgs;

    fn description(&self) -> String {
        "Choose the inference model for your next turns. Returns the model now active.".to_owned()
    }

    fn category(&self) -> Category {
        Category::Survival
    }

    fn risk(&self) -> RiskLevel {
        RiskLevel::Caution
    }

    async fn call(
        &self,
        ctx: &ToolContext,
        args: SwitchModelArgs,
    ) -> Result<ToolOutput, ToolError> {
        let name = args.model.trim().to_owned();
        if name.is_empty() || (!self.models.is_empty() && !self.models.contains(&name)) {
            return Err(ToolError::model(
                ToolErrorCode::NotFound,
                format!("`{name}` is not a configured model"),
                format!("choose one of: {}", self.models.join(", ")),
            )
            .with_details(serde_json::json!({ "available_models": self.models })));
        }
        let (value, now) = (name.clone(), ctx.clock.now_ms());
        with_db(&self.db, move |db| {
            Ok(db.write(|tx| {
                tx.execute(
                    "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                    rusqlite::params![ACTIVE_MODEL_KEY, value, now],
                )
            })?)
        })
        .await?;
        Ok(ToolOutput::new(serde_json::json!({ "active_model": name })))
    }
}
