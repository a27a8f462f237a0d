//! The registry: every tool the agent can call, by name. Lookup of an unknown name answers
//! with the closest names, so a typo costs the model one round trip, not a dead end.

use crate::tool::{DynTool, Tool, ToolError, ToolErrorCode, ToolSpec, TypedTool};
use std::collections::BTreeMap;
use std::sync::Arc;

/// All registered tools.
#[derive(Default, Clone)]
pub struct Registry {
    tools: BTreeMap<String, Arc<dyn DynTool>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a typed tool.
    pub fn register<T: Tool>(&mut self, tool: T) -> Result<(), String> {
        self.register_dyn(Arc::new(TypedTool::new(tool)?))
    }

    /// Registers a tool defined at run time (MCP, skills).
    pub fn register_dyn(&mut self, tool: Arc<dyn DynTool>) -> Result<(), String> {
        let name = tool.spec().name.as_str().to_owned();
        if self.tools.contains_key(&name) {
            return Err(format!("a tool named `{name}` is already registered"));
        }
        self.tools.insert(name, tool);
        Ok(())
    }

    /// The tool called `name`, or an error naming the closest registered names.
    pub fn lookup(&self, name: &str) -> Result<Arc<dyn DynTool>, ToolError> {
        if let Some(tool) = self.tools.get(name) {
            return Ok(Arc::clone(tool));
        }
        let suggestions = self.closest(name, 3);
        let hint = if suggestions.is_empty() {
            "call one of the tools listed in your tool list".to_owned()
        } else {
            format!("did you mean {}?", suggestions.join(", "))
        };
        Err(ToolError::model(
            ToolErrorCode::UnknownTool,
            format!("there is no tool named `{name}`"),
            hint,
        )
        .with_details(serde_json::json!({ "did_you_mean": suggestions })))
    }

    /// Up to `limit` registered names closest to `name`.
    pub fn closest(&self, name: &str, limit: usize) -> Vec<String> {
        let mut scored: Vec<(f64, &String)> = self
            .tools
            .keys()
            .map(|candidate| (strsim::jaro_winkler(name, candidate), candidate))
            .filter(|(score, _)| *score >= 0.75)
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
        scored
            .into_iter()
            .take(limit)
            .map(|(_, name)| name.clone())
            .collect()
    }

    /// Every tool's spec, sorted by name.
    pub fn specs(&self) -> Vec<&ToolSpec> {
        self.tools.values().map(|tool| tool.spec()).collect()
    }

    /// The number of tools.
    pub fn len(&self) -> usize {
        self.tools.len()
    }

    /// Whether no tool is registered.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }
}
