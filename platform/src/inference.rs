//! The inference proxy's configuration and arithmetic: which OpenAI-compatible upstream the
//! platform forwards `/v1/chat/completions` to, the per-model prices it bills from credits,
//! and the token count that bills an answer without `usage` (never for free).
//!
//! The configuration is `<data_dir>/inference.json` (or `platform serve --inference-config
//! FILE`), checked when the platform starts:
//!
//! ```json
//! {
//!   "upstream": { "baseUrl": "https://api.openai.com/v1", "apiKeyEnv": "UPSTREAM_KEY" },
//!   "models": {
//!     "gpt-4o-mini": { "inputMicroUsdPerMillion": 150000, "outputMicroUsdPerMillion": 600000 }
//!   }
//! }
//! ```
//!
//! `baseUrl` is the upstream's OpenAI base (the part before `/chat/completions`). The key comes
//! from the environment variable `apiKeyEnv` names, or from the file `apiKeyFile` names
//! (0600; a daemon the CLI starts gets a scrubbed environment, so use the file there); neither
//! sends no key (a local upstream). Prices are integer micro-USD per million tokens.

use crate::error::{Error, ErrorCode, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file name of the configuration in the platform's data directory.
pub const CONFIG_FILE: &str = "inference.json";

/// An upstream API key: never printed, wiped when dropped.
#[derive(Clone, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct UpstreamKey(String);

impl UpstreamKey {
    /// A key read from configuration.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for UpstreamKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UpstreamKey(<redacted>)")
    }
}

/// A model's price, integer micro-USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Price {
    /// Per million prompt tokens.
    pub input_micro_usd_per_million: u64,
    /// Per million completion tokens.
    pub output_micro_usd_per_million: u64,
}

impl Price {
    /// What `prompt` and `completion` tokens cost, micro-USD, rounded up (a call that used
    /// anything costs at least one unit).
    pub fn cost(self, prompt: u64, completion: u64) -> i64 {
        let total = u128::from(prompt) * u128::from(self.input_micro_usd_per_million)
            + u128::from(completion) * u128::from(self.output_micro_usd_per_million);
        i64::try_from(total.div_ceil(1_000_000)).unwrap_or(i64::MAX)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpstreamFile {
    base_url: String,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    api_key_file: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    upstream: UpstreamFile,
    models: BTreeMap<String, Price>,
}

/// The checked configuration.
#[derive(Debug, Clone)]
pub struct InferenceConfig {
    /// The upstream's OpenAI base URL, without a trailing `/`.
    pub base_url: String,
    /// Its key, if it takes one.
    pub key: Option<UpstreamKey>,
    /// The priced models: the only ones the proxy serves.
    pub models: BTreeMap<String, Price>,
}

const EXAMPLE: &str = r#"{"upstream": {"baseUrl": "https://api.openai.com/v1", "apiKeyEnv": "UPSTREAM_KEY"}, "models": {"gpt-4o-mini": {"inputMicroUsdPerMillion": 150000, "outputMicroUsdPerMillion": 600000}}}"#;

impl InferenceConfig {
    /// Reads and checks the file at `path`; `env` looks up the environment variable
    /// `apiKeyEnv` names. Errors name the field and say what to write.
    pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let invalid = |message: String, hint: String| {
            Error::new(
                ErrorCode::InvalidInput,
                format!("{}: {message}", path.display()),
            )
            .with_hint(hint)
        };
        let text = std::fs::read_to_string(path).map_err(|err| {
            invalid(
                format!("cannot be read: {err}"),
                format!("write the inference configuration there, e.g. {EXAMPLE}"),
            )
        })?;
        let mut json = serde_json::Deserializer::from_str(&text);
        let file: ConfigFile = serde_path_to_error::deserialize(&mut json).map_err(|err| {
            let field = err.path().to_string();
            invalid(
                format!("field `{field}`: {}", err.inner()),
                format!("fix `{field}`; the file's shape is {EXAMPLE}"),
            )
        })?;
        let base_url = file
            .upstream
            .base_url
            .trim()
            .trim_end_matches('/')
            .to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(invalid(
                format!("field `upstream.baseUrl` is `{base_url}`, not an http(s) URL"),
                "write the upstream's OpenAI base URL, e.g. \"https://api.openai.com/v1\" (the part before /chat/completions)".to_owned(),
            ));
        }
        if file.models.is_empty() {
            return Err(invalid(
                "field `models` prices no model, so the proxy would serve none".to_owned(),
                format!("price at least one model, e.g. {EXAMPLE}"),
            ));
        }
        if let Some(name) = file.models.keys().find(|name| name.trim().is_empty()) {
            return Err(invalid(
                format!("field `models` has a model named `{name}`"),
                "name each model as the upstream does, e.g. \"gpt-4o-mini\"".to_owned(),
            ));
        }
        let key = match (file.upstream.api_key_env, file.upstream.api_key_file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "fields `upstream.apiKeyEnv` and `upstream.apiKeyFile` are both set".to_owned(),
                    "keep one of them: the key comes from one place".to_owned(),
                ));
            }
            (Some(name), None) => Some(env(&name).filter(|key| !key.trim().is_empty()).ok_or_else(|| {
                invalid(
                    format!("field `upstream.apiKeyEnv` names {name}, which is not set in the platform's environment"),
                    format!("export {name} before `automaton platform serve`, or name a 0600 key file with `upstream.apiKeyFile` (a platform the CLI starts gets a scrubbed environment)"),
                )
            })?),
            (None, Some(file)) => {
                let file = if file.is_relative() {
                    path.parent().unwrap_or(Path::new(".")).join(file)
                } else {
                    file
                };
                automaton_tools::secure_fs::check_private_file(&file).map_err(|issue| {
                    invalid(
                        format!("field `upstream.apiKeyFile`: {}", issue.message(&file)),
                        issue.fix(&file),
                    )
                })?;
                let key = std::fs::read_to_string(&file).map_err(|err| {
                    invalid(
                        format!("field `upstream.apiKeyFile`: {} cannot be read: {err}", file.display()),
                        "write the upstream's API key to that file (mode 0600)".to_owned(),
                    )
                })?;
                Some(key.trim().to_owned())
            }
            (None, None) => None,
        };
        Ok(Self {
            base_url,
            key: key.map(UpstreamKey::new),
            models: file.models,
        })
    }

    /// The priced model names, for refusals and `/v1/models`.
    pub fn offered(&self) -> Vec<&str> {
        self.models.keys().map(String::as_str).collect()
    }
}

/// The proxy's upstream: the checked configuration and its HTTP client.
#[derive(Debug, Clone)]
pub struct Inference {
    /// The configuration.
    pub config: InferenceConfig,
    /// The client every forwarded call shares.
    pub client: reqwest::Client,
}

impl Inference {
    /// The upstream of `config`.
    pub fn new(config: InferenceConfig) -> Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build()
            .map_err(|err| Error::new(ErrorCode::InternalError, format!("HTTP client: {err}")))?;
        Ok(Self { config, client })
    }
}

/// The tokens of `text` in `o200k_base` (an estimate for models with other tokenizers; a
/// character count over four when the encoding cannot load).
fn count(text: &str) -> u64 {
    static ENCODING: std::sync::OnceLock<Option<tiktoken_rs::CoreBPE>> = std::sync::OnceLock::new();
    match ENCODING.get_or_init(|| tiktoken_rs::o200k_base().ok()) {
        Some(bpe) => bpe.encode_with_special_tokens(text).len() as u64,
        None => text.chars().count().div_ceil(4) as u64,
    }
}

/// The text of a message's `content` (a string, or parts with `text`) and its tool calls.
fn message_text(message: &serde_json::Value) -> String {
    let mut text = String::new();
    match &message["content"] {
        serde_json::Value::String(content) => text.push_str(content),
        serde_json::Value::Array(parts) => {
            for part in parts {
                if let Some(part) = part["text"].as_str() {
                    text.push_str(part);
                }
            }
        }
        _ => {}
    }
    if let Some(calls) = message["tool_calls"].as_array() {
        for call in calls {
            text.push_str(call["function"]["name"].as_str().unwrap_or_default());
            text.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    text
}

/// Counted `(prompt, completion)` tokens of a request and its answer, for an upstream that
/// sent no `usage`: each message's text plus four tokens of framing, the tools' schemas, and
/// every choice's message.
pub fn counted_usage(request: &serde_json::Value, answer: &serde_json::Value) -> (u64, u64) {
    let messages = request["messages"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    let mut prompt: u64 = messages
        .iter()
        .map(|message| count(&message_text(message)) + 4)
        .sum();
    if let Some(tools) = request.get("tools") {
        prompt += count(&tools.to_string());
    }
    let choices = answer["choices"].as_array().map_or(&[][..], Vec::as_slice);
    let completion = choices
        .iter()
        .map(|choice| count(&message_text(&choice["message"])))
        .sum::<u64>()
        .max(1);
    (prompt.max(1), completion)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<InferenceConfig> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, text).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        InferenceConfig::load(&path, &|name| {
            env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn a_good_file_loads_and_its_key_never_prints() {
        let config = load(EXAMPLE, &[("UPSTREAM_KEY", "sk-secret-123")]).unwrap();
        assert_eq!(config.base_url, "https://api.openai.com/v1");
        assert_eq!(config.offered(), ["gpt-4o-mini"]);
        assert_eq!(config.key.as_ref().unwrap().expose(), "sk-secret-123");
        assert!(!format!("{config:?}").contains("sk-secret"));
    }

    #[test]
    fn bad_files_name_the_field_and_say_what_to_write() {
        let cases = [
            ("{", "line"),
            (
                r#"{"upstream": {"baseUrl": "x"}, "models": {"m": {"inputMicroUsdPerMillion": 1, "outputMicroUsdPerMillion": 1}}}"#,
                "upstream.baseUrl",
            ),
            (
                r#"{"upstream": {"baseUrl": "http://h/v1"}, "models": {}}"#,
                "models",
            ),
            (
                r#"{"upstream": {"baseUrl": "http://h/v1"}, "models": {"m": {"inputMicroUsdPerMillion": 1.5, "outputMicroUsdPerMillion": 1}}}"#,
                "models.m.inputMicroUsdPerMillion",
            ),
            (
                r#"{"upstream": {"baseUrl": "http://h/v1", "apiKey": "k"}, "models": {}}"#,
                "upstream",
            ),
            (
                r#"{"upstream": {"baseUrl": "http://h/v1", "apiKeyEnv": "MISSING"}, "models": {"m": {"inputMicroUsdPerMillion": 1, "outputMicroUsdPerMillion": 1}}}"#,
                "upstream.apiKeyEnv",
            ),
        ];
        for (text, field) in cases {
            let err = load(text, &[]).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidInput, "{text}");
            assert!(err.message.contains(field), "{field}: {err:?}");
            assert!(!err.hint.is_empty(), "{err:?}");
        }
    }

    #[test]
    fn prices_round_up_and_counting_never_gives_zero() {
        let price = Price {
            input_micro_usd_per_million: 150_000,
            output_micro_usd_per_million: 600_000,
        };
        assert_eq!(price.cost(1_000_000, 0), 150_000);
        assert_eq!(price.cost(10, 5), 5); // 1.5 + 3 = 4.5, rounded up
        assert_eq!(price.cost(0, 0), 0);
        let request = serde_json::json!({"messages": [{"role": "user", "content": "hello there, how are you?"}]});
        let answer = serde_json::json!({"choices": [{"message": {"content": "fine, thanks"}}]});
        let (prompt, completion) = counted_usage(&request, &answer);
        assert!(prompt > 4 && completion >= 2, "{prompt} {completion}");
        assert_eq!(
            counted_usage(&serde_json::json!({}), &serde_json::json!({})),
            (1, 1)
        );
    }
}
