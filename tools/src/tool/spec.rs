//! What a tool declares about itself: its name, category, risk level, effect and schema.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How dangerous a tool is (seed 003's risk levels), ordered from least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Reads only; always allowed by the authority gate.
    Safe,
    /// Changes something recoverable; allowed and logged, rate-limited.
    Caution,
    /// Changes something hard to undo or moves money; never for external provenance.
    Dangerous,
    /// Never runs.
    Forbidden,
}

impl RiskLevel {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Safe => "safe",
            Self::Caution => "caution",
            Self::Dangerous => "dangerous",
            Self::Forbidden => "forbidden",
        }
    }
}

/// What running a call does to the world. A tool is `Mutating` unless it proves otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Observes only; leaves no receipt.
    ReadOnly,
    /// Changes local or platform state.
    Mutating,
    /// Talks to the network (and may change remote state).
    Network,
    /// Spends money.
    Spend,
}

impl Effect {
    /// Whether the call changes state and so leaves a receipt.
    pub fn changes_state(self) -> bool {
        match self {
            Self::ReadOnly => false,
            Self::Mutating | Self::Network | Self::Spend => true,
        }
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "read_only",
            Self::Mutating => "mutating",
            Self::Network => "network",
            Self::Spend => "spend",
        }
    }
}

/// Tool families (seed 003's categories), used for rate limits and listings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Shell, files and ports of the machine the agent runs on.
    Vm,
    /// The Conway platform: deploys, datastores, repos, tokens.
    Platform,
    /// Money: balances, transfers, x402.
    Financial,
    /// Sleeping, status, distress.
    Survival,
    /// Changing its own code, packages, heartbeat.
    SelfMod,
    /// Skills.
    Skills,
    /// Git.
    Git,
    /// On-chain identity.
    Registry,
    /// Children.
    Replication,
    /// Soul and memory.
    Memory,
    /// Messages to other agents.
    Social,
    /// Tools of MCP servers.
    Mcp,
}

impl Category {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vm => "vm",
            Self::Platform => "platform",
            Self::Financial => "financial",
            Self::Survival => "survival",
            Self::SelfMod => "self_mod",
            Self::Skills => "skills",
            Self::Git => "git",
            Self::Registry => "registry",
            Self::Replication => "replication",
            Self::Memory => "memory",
            Self::Social => "social",
            Self::Mcp => "mcp",
        }
    }
}

/// A tool's name as the model sees it: `[a-z0-9_]`, 1–64 characters (OpenAI's limit).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ToolName(String);

impl ToolName {
    /// Validates a name.
    pub fn new(name: &str) -> Result<Self, String> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid {
            Ok(Self(name.to_owned()))
        } else {
            Err(format!("tool name `{name}` must be 1–64 of [a-z0-9_]"))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ToolName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Everything the registry, the policy engine and the model need to know about a tool.
#[derive(Debug, Clone, Serialize)]
pub struct ToolSpec {
    /// The tool's name.
    pub name: ToolName,
    /// A lean description (seed 002: what it does and what it returns, in one or two lines).
    pub description: String,
    /// Its family.
    pub category: Category,
    /// Its base risk level (a call may be assessed higher from its arguments).
    pub risk: RiskLevel,
    /// The JSON schema of its arguments; the root is always an object.
    pub parameters: serde_json::Value,
}

impl ToolSpec {
    /// The OpenAI `tools[]` entry for this tool.
    pub fn to_openai_function(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "function",
            "function": {
                "name": self.name.as_str(),
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }
}
