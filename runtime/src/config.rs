//! `automaton.json`: the creator's configuration of the automaton.
//!
//! Every key is documented here (the docs become the generated JSON schema checked in at
//! `docs/automaton.schema.json`). Unknown keys and bad values are rejected at load with the
//! key's path and the fix. Money is integer micro-USDC (6 decimals); times are epoch ms.

use crate::error::{Error, Result};
use automaton_tools::money::Usdc;
use automaton_treasury::Address;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The current layout version of automaton.json.
pub const CONFIG_VERSION: u32 = 1;

/// The whole of automaton.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(title = "automaton.json")]
pub struct AutomatonConfig {
    /// Layout version of this file; this binary reads version 1.
    pub config_version: u32,
    /// The automaton's name (1–64 characters, no control characters).
    pub name: String,
    /// The creator's seed instruction: why this automaton exists.
    pub genesis_prompt: String,
    /// An optional message from the creator shown to the agent on its first run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_message: Option<String>,
    /// The creator's Ethereum address (EIP-55 or lower-case hex); it has full audit rights.
    #[serde(with = "address_serde")]
    #[schemars(with = "AddressSchema")]
    pub creator_address: Address,
    /// The automaton's own wallet address, derived from wallet.json at init.
    #[serde(with = "address_serde")]
    #[schemars(with = "AddressSchema")]
    pub wallet_address: Address,
    /// Whether wallet.json is a passphrase-encrypted keystore (Web3 Secret Storage v3).
    pub wallet_encrypted: bool,
    /// SHA-256 (hex) of constitution.md, pinned at init and checked at every start.
    pub constitution_sha256: String,
    /// When the home was created, epoch milliseconds.
    pub created_at_ms: i64,
    /// Log level of the JSON log under logs/: `debug`, `info`, `warn` or `error`.
    #[serde(default)]
    pub log_level: LogLevel,
    /// The Conway sandbox this automaton runs in, when one was detected at setup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_id: Option<String>,
    /// The most children this automaton may have alive at once.
    #[serde(default = "default_max_children")]
    pub max_children: u32,
    /// Spending limits enforced by the treasury gate.
    #[serde(default)]
    pub treasury_policy: TreasuryPolicy,
    /// OpenAI-compatible inference providers, tried in order (failover).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<ProviderConfig>,
    /// Models the router may choose from, with their context windows and prices.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ModelConfig>,
    /// Which model serves which task, and the inference budgets.
    #[serde(default)]
    pub inference: InferenceConfig,
    /// The balance thresholds of the survival tiers.
    #[serde(default)]
    pub survival: SurvivalThresholds,
    /// A Conway gateway to deploy to instead of the local platform. `CONWAY_ENDPOINT` and
    /// `CONWAY_TOKEN` in the environment take precedence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conway: Option<ConwayConfig>,
}

/// A Conway gateway (seed 000's REST API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConwayConfig {
    /// The gateway's base URL, e.g. `https://api.example.com`.
    pub endpoint: String,
    /// A file (relative to the home, mode 0600) holding the bearer token.
    pub token_file: String,
}

/// Where the survival tiers begin, in micro-USDC of credit balance. A balance above
/// `highAboveMicroUsdc` is high, above `normalAboveMicroUsdc` normal, above
/// `lowComputeAboveMicroUsdc` low compute, anything else critical; dead only after
/// `deadAfterZeroMs` continuous at zero.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SurvivalThresholds {
    /// Above this the tier is high (default $5).
    pub high_above_micro_usdc: Usdc,
    /// Above this the tier is normal (default $0.50).
    pub normal_above_micro_usdc: Usdc,
    /// Above this the tier is low compute; at or below it, critical (default $0.10).
    pub low_compute_above_micro_usdc: Usdc,
    /// How long the balance must stay at zero before the automaton is dead (default one hour).
    pub dead_after_zero_ms: i64,
    /// A cached balance older than this is reported stale (default 15 minutes).
    pub stale_after_ms: i64,
}

impl Default for SurvivalThresholds {
    fn default() -> Self {
        Self {
            high_above_micro_usdc: Usdc::dollars(5),
            normal_above_micro_usdc: Usdc::cents(50),
            low_compute_above_micro_usdc: Usdc::cents(10),
            dead_after_zero_ms: 3_600_000,
            stale_after_ms: 15 * 60_000,
        }
    }
}

/// A model the router may choose.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelConfig {
    /// The model's name as the provider knows it (`gpt-4.1-mini`, `claude-sonnet-4-5`, …).
    pub name: String,
    /// Its context window in tokens.
    pub context_window: u64,
    /// Price of one million prompt tokens.
    pub input_price_per_million_micro_usdc: Usdc,
    /// Price of one million completion tokens.
    pub output_price_per_million_micro_usdc: Usdc,
    /// Whether it supports tool calls.
    #[serde(default = "default_true")]
    pub supports_tools: bool,
}

fn default_true() -> bool {
    true
}

/// Model routing and budgets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InferenceConfig {
    /// The creator's chosen model for agent turns (the first configured model when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The cheaper model used in the low_compute and critical tiers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_compute_model: Option<String>,
    /// The model that summarises old turns (the agent-turn model when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary_model: Option<String>,
    /// Most completion tokens asked for per call.
    pub max_tokens_per_call: u32,
    /// Most one call may cost (estimated before it is made).
    pub per_call_max_micro_usdc: Usdc,
    /// Most inference may cost in any rolling hour.
    pub hourly_max_micro_usdc: Usdc,
    /// Most inference may cost in any rolling day (also capped by the treasury policy).
    pub daily_max_micro_usdc: Usdc,
    /// Most tool calls run per turn (1–256); the model is told the rest were not run.
    #[serde(default = "default_max_tool_calls_per_turn")]
    #[schemars(range(min = 1, max = 256))]
    pub max_tool_calls_per_turn: u32,
}

fn default_max_tool_calls_per_turn() -> u32 {
    16
}

impl Default for InferenceConfig {
    fn default() -> Self {
        Self {
            model: None,
            low_compute_model: None,
            summary_model: None,
            max_tokens_per_call: 4096,
            per_call_max_micro_usdc: Usdc::dollars(1),
            hourly_max_micro_usdc: Usdc::dollars(25),
            daily_max_micro_usdc: Usdc::dollars(100),
            max_tool_calls_per_turn: default_max_tool_calls_per_turn(),
        }
    }
}

fn default_max_children() -> u32 {
    3
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything, including per-call detail.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Only problems.
    Warn,
    /// Only failures.
    Error,
}

impl LogLevel {
    /// The tracing filter directive for this level.
    pub fn as_filter(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }
}

/// Spending limits (seed 003's defaults), all in micro-USDC.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TreasuryPolicy {
    /// Largest single transfer.
    pub max_single_transfer_micro_usdc: Usdc,
    /// Total transfers allowed in any hour.
    pub max_hourly_transfer_micro_usdc: Usdc,
    /// Total transfers allowed in any day.
    pub max_daily_transfer_micro_usdc: Usdc,
    /// Balance that can never be transferred away.
    pub minimum_reserve_micro_usdc: Usdc,
    /// Largest single x402 payment.
    pub max_x402_payment_micro_usdc: Usdc,
    /// Domains the agent may pay with x402 (exact host or a `*.` suffix pattern).
    pub x402_allowed_domains: Vec<String>,
    /// Minimum time between two transfers, milliseconds.
    pub transfer_cooldown_ms: u64,
    /// Most transfers in one agent turn.
    pub max_transfers_per_turn: u32,
    /// Daily inference budget.
    pub max_inference_daily_micro_usdc: Usdc,
    /// Amounts above this are logged as large and need an approver when one is configured.
    pub require_confirmation_above_micro_usdc: Usdc,
}

impl Default for TreasuryPolicy {
    fn default() -> Self {
        Self {
            max_single_transfer_micro_usdc: Usdc::dollars(50),
            max_hourly_transfer_micro_usdc: Usdc::dollars(100),
            max_daily_transfer_micro_usdc: Usdc::dollars(250),
            minimum_reserve_micro_usdc: Usdc::dollars(10),
            max_x402_payment_micro_usdc: Usdc::dollars(1),
            x402_allowed_domains: vec!["conway.tech".to_owned()],
            transfer_cooldown_ms: 0,
            max_transfers_per_turn: 2,
            max_inference_daily_micro_usdc: Usdc::dollars(500),
            require_confirmation_above_micro_usdc: Usdc::dollars(10),
        }
    }
}

/// One OpenAI-compatible endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderConfig {
    /// A short unique name (`openai`, `anthropic`, `local`).
    pub name: String,
    /// The API base URL, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The environment variable holding the API key, read at start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// A file (relative to the home, mode 0600) holding the API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<String>,
}

/// JSON schema stand-in for an Ethereum address.
struct AddressSchema;

impl JsonSchema for AddressSchema {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Address".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^0x[0-9a-fA-F]{40}$",
            "description": "A 20-byte Ethereum address: 0x + 40 hex digits, EIP-55 checksummed or all lower-case, not zero."
        })
    }
}

/// Parses an address the way the CLI and config accept it: `0x` + 40 hex digits, either
/// all lower-case or with a valid EIP-55 checksum, and not the zero address.
pub fn parse_address(text: &str) -> std::result::Result<Address, String> {
    let hex = text
        .strip_prefix("0x")
        .ok_or_else(|| format!("`{text}` must start with 0x"))?;
    if hex.len() != 40 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("`{text}` is not 0x followed by 40 hex digits"));
    }
    let mixed_case =
        hex.chars().any(|c| c.is_ascii_uppercase()) && hex.chars().any(|c| c.is_ascii_lowercase());
    let address = if mixed_case {
        Address::parse_checksummed(text, None)
            .map_err(|_| format!("`{text}` has a wrong EIP-55 checksum (mixed case must match)"))?
    } else {
        text.to_lowercase()
            .parse::<Address>()
            .map_err(|err| format!("`{text}` is not an address: {err}"))?
    };
    if address == Address::ZERO {
        return Err("the zero address cannot own or create anything".to_owned());
    }
    Ok(address)
}

mod address_serde {
    use super::{Address, parse_address};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(address: &Address, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&address.to_checksum(None))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Address, D::Error> {
        let text = String::deserialize(d)?;
        parse_address(&text).map_err(serde::de::Error::custom)
    }
}

impl AutomatonConfig {
    /// Parses and validates the text of automaton.json.
    pub fn parse(text: &str) -> Result<Self> {
        let mut de = serde_json::Deserializer::from_str(text);
        let config: Self = serde_path_to_error::deserialize(&mut de).map_err(|err| {
            let key = err.path().to_string();
            let inner = err.into_inner();
            let message = inner.to_string();
            let hint = if message.contains("unknown field") {
                "remove or rename the key; every valid key is listed in docs/automaton.schema.json (`automaton config schema`)".to_owned()
            } else if message.contains("missing field") {
                "add the missing key; `automaton config schema` lists every key".to_owned()
            } else {
                "fix the value to match docs/automaton.schema.json (`automaton config schema`)".to_owned()
            };
            Error::InvalidConfig {
                key: if key == "." { "(root)".to_owned() } else { key },
                message,
                hint,
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Loads automaton.json from `path`.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(Error::io("reading", path))?;
        Self::parse(&text)
    }

    /// The canonical JSON text of this config.
    pub fn to_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Checks the rules serde cannot express.
    pub fn validate(&self) -> Result<()> {
        let invalid = |key: &str, message: String, hint: &str| Error::InvalidConfig {
            key: key.to_owned(),
            message,
            hint: hint.to_owned(),
        };
        if let Some(conway) = &self.conway {
            if !(conway.endpoint.starts_with("http://") || conway.endpoint.starts_with("https://"))
            {
                return Err(invalid(
                    "conway.endpoint",
                    format!("`{}` is not an http(s) URL", conway.endpoint),
                    "use the gateway's base URL, e.g. https://api.example.com",
                ));
            }
            if conway.token_file.starts_with('/')
                || conway.token_file.split('/').any(|part| part == "..")
            {
                return Err(invalid(
                    "conway.tokenFile",
                    format!("`{}` is not a path inside the home", conway.token_file),
                    "store the token under the home, e.g. keys/conway.token (mode 0600)",
                ));
            }
        }
        if !(1..=256).contains(&self.inference.max_tool_calls_per_turn) {
            return Err(invalid(
                "inference.maxToolCallsPerTurn",
                format!(
                    "{} is not between 1 and 256",
                    self.inference.max_tool_calls_per_turn
                ),
                "set how many tool calls one turn may run, e.g. 16",
            ));
        }
        if self.config_version != CONFIG_VERSION {
            return Err(invalid(
                "configVersion",
                format!("version {} is not {CONFIG_VERSION}", self.config_version),
                "this binary reads configVersion 1; use the automaton release that wrote this file",
            ));
        }
        validate_name(&self.name).map_err(|message| {
            invalid(
                "name",
                message,
                "use 1–64 printable characters, e.g. \"Atlas\"",
            )
        })?;
        let survival = &self.survival;
        if !(survival.high_above_micro_usdc > survival.normal_above_micro_usdc
            && survival.normal_above_micro_usdc > survival.low_compute_above_micro_usdc)
        {
            return Err(invalid(
                "survival",
                format!(
                    "thresholds must fall strictly: high {} > normal {} > low compute {}",
                    survival.high_above_micro_usdc,
                    survival.normal_above_micro_usdc,
                    survival.low_compute_above_micro_usdc
                ),
                "e.g. highAboveMicroUsdc 5000000, normalAboveMicroUsdc 500000, lowComputeAboveMicroUsdc 100000",
            ));
        }
        if survival.dead_after_zero_ms < 60_000 || survival.stale_after_ms < 1_000 {
            return Err(invalid(
                "survival.deadAfterZeroMs",
                format!(
                    "deadAfterZeroMs {} and staleAfterMs {} are too short",
                    survival.dead_after_zero_ms, survival.stale_after_ms
                ),
                "deadAfterZeroMs is at least 60000 (default 3600000, one hour); staleAfterMs at least 1000",
            ));
        }
        if self.genesis_prompt.trim().is_empty() {
            return Err(invalid(
                "genesisPrompt",
                "is empty".to_owned(),
                "write what this automaton is for; it is the most important input",
            ));
        }
        if self.constitution_sha256.len() != 64
            || !self
                .constitution_sha256
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        {
            return Err(invalid(
                "constitutionSha256",
                "is not 64 lower-case hex digits".to_owned(),
                "restore the value written at init (`git -C <home> show HEAD~0:automaton.json`)",
            ));
        }
        if self.wallet_address == self.creator_address {
            return Err(invalid(
                "creatorAddress",
                "equals the automaton's own wallet address".to_owned(),
                "set the creator to the human owner's address, not the agent's",
            ));
        }
        if self.max_children > 100 {
            return Err(invalid(
                "maxChildren",
                format!("{} is more than 100", self.max_children),
                "set a number of children this automaton can afford to fund, e.g. 3",
            ));
        }
        let policy = &self.treasury_policy;
        if policy.max_single_transfer_micro_usdc > policy.max_hourly_transfer_micro_usdc
            || policy.max_hourly_transfer_micro_usdc > policy.max_daily_transfer_micro_usdc
        {
            return Err(invalid(
                "treasuryPolicy",
                "limits must satisfy single ≤ hourly ≤ daily".to_owned(),
                "raise the hourly/daily limits or lower the single-transfer limit",
            ));
        }
        for (i, domain) in policy.x402_allowed_domains.iter().enumerate() {
            let bare = domain.strip_prefix("*.").unwrap_or(domain);
            let valid = !bare.is_empty()
                && bare.contains('.')
                && bare
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !valid {
                return Err(invalid(
                    &format!("treasuryPolicy.x402AllowedDomains[{i}]"),
                    format!("`{domain}` is not a host name"),
                    "use a bare host such as `conway.tech` or a suffix pattern such as `*.conway.tech`",
                ));
            }
        }
        let mut models = std::collections::BTreeSet::new();
        for (i, model) in self.models.iter().enumerate() {
            if !models.insert(model.name.as_str()) {
                return Err(invalid(
                    &format!("models[{i}].name"),
                    format!("`{}` appears twice", model.name),
                    "list each model once",
                ));
            }
            if model.context_window < 1024 {
                return Err(invalid(
                    &format!("models[{i}].contextWindow"),
                    format!(
                        "{} tokens is too small for the agent's prompt",
                        model.context_window
                    ),
                    "use the model's real context window (at least 1024 tokens)",
                ));
            }
        }
        for (key, chosen) in [
            ("inference.model", &self.inference.model),
            (
                "inference.lowComputeModel",
                &self.inference.low_compute_model,
            ),
            ("inference.summaryModel", &self.inference.summary_model),
        ] {
            if let Some(name) = chosen
                && !self.models.is_empty()
                && !models.contains(name.as_str())
            {
                return Err(invalid(
                    key,
                    format!("`{name}` is not in `models`"),
                    "add the model to `models` (with its context window and prices) or pick a listed one",
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for (i, provider) in self.providers.iter().enumerate() {
            let key = format!("providers[{i}]");
            if !seen.insert(provider.name.as_str()) {
                return Err(invalid(
                    &format!("{key}.name"),
                    format!("`{}` appears twice", provider.name),
                    "give every provider a unique name",
                ));
            }
            if !(provider.base_url.starts_with("http://")
                || provider.base_url.starts_with("https://"))
            {
                return Err(invalid(
                    &format!("{key}.baseUrl"),
                    format!("`{}` is not an http(s) URL", provider.base_url),
                    "use e.g. https://api.openai.com/v1",
                ));
            }
            if let Some(file) = &provider.api_key_file
                && (file.starts_with('/') || file.split('/').any(|part| part == ".."))
            {
                return Err(invalid(
                    &format!("{key}.apiKeyFile"),
                    format!("`{file}` is not a path inside the home"),
                    "store the key under the home, e.g. keys/openai.key (mode 0600)",
                ));
            }
        }
        Ok(())
    }
}

/// Validates an automaton name.
pub fn validate_name(name: &str) -> std::result::Result<(), String> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > 64 {
        return Err(format!("`{name}` must be 1–64 characters"));
    }
    if name.chars().any(char::is_control) || name.trim() != name {
        return Err("must not contain control characters or surrounding spaces".to_owned());
    }
    Ok(())
}

/// The JSON schema of automaton.json, as checked in at docs/automaton.schema.json.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(AutomatonConfig);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
