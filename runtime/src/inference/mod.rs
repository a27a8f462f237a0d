//! Inference: any OpenAI-compatible chat-completions endpoint through async-openai, with a
//! router that picks the model, budgets checked before every call, retries and a circuit
//! breaker per provider (the shared `automaton_tools::resilience` module), failover to the
//! next provider, and every call's tokens, latency and cost recorded in `inference_costs`.

pub mod chat;
pub mod provider;
pub mod router;

pub use chat::{Completion, Message, ToolCallRequest, Usage};
pub use provider::{InferenceError, Provider};
pub use router::{BudgetRefusal, ChatRequest, ChatResult, Inference, InferenceFailure, Task};

use crate::config::AutomatonConfig;
use crate::error::{Error, Result};
use crate::home::Home;
use std::ffi::OsString;

/// The OpenAI SDKs' default base URL.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// One endpoint with its resolved key.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The provider's name.
    pub name: String,
    /// Its base URL.
    pub base_url: String,
    /// Its API key (empty for servers that need none).
    pub api_key: String,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field(
                "api_key",
                &if self.api_key.is_empty() {
                    "<none>"
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

fn env_value(env: &[(OsString, OsString)], name: &str) -> Option<String> {
    env.iter()
        .find(|(key, _)| key == name)
        .and_then(|(_, value)| value.to_str())
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

/// The endpoints of `config`, keys resolved from key files under the home or from the named
/// environment variables (of the snapshot `main` took). With no provider configured,
/// `OPENAI_BASE_URL` / `OPENAI_API_KEY` are honoured as the OpenAI SDKs honour them.
pub fn endpoints(
    config: &AutomatonConfig,
    home: &Home,
    env: &[(OsString, OsString)],
) -> Result<Vec<Endpoint>> {
    if config.providers.is_empty() {
        let base = env_value(env, "OPENAI_BASE_URL");
        let key = env_value(env, "OPENAI_API_KEY");
        if base.is_none() && key.is_none() {
            return Ok(Vec::new());
        }
        return Ok(vec![Endpoint {
            name: "openai-env".to_owned(),
            base_url: base.unwrap_or_else(|| OPENAI_BASE_URL.to_owned()),
            api_key: key.unwrap_or_default(),
        }]);
    }
    config
        .providers
        .iter()
        .map(|provider| {
            let api_key = match (&provider.api_key_file, &provider.api_key_env) {
                (Some(file), _) => {
                    let path = home.root().join(file);
                    automaton_tools::secure_fs::check_private_file(&path).map_err(|issue| {
                        Error::InvalidInput {
                            message: issue.message(&path),
                            hint: issue.fix(&path),
                        }
                    })?;
                    std::fs::read_to_string(&path)
                        .map_err(Error::io("reading", &path))?
                        .trim()
                        .to_owned()
                }
                (None, Some(variable)) => {
                    env_value(env, variable).ok_or_else(|| Error::InvalidInput {
                        message: format!(
                            "provider `{}` reads its key from ${variable}, which is not set",
                            provider.name
                        ),
                        hint: format!("export {variable}=… before starting, or set apiKeyFile"),
                    })?
                }
                (None, None) => String::new(),
            };
            Ok(Endpoint {
                name: provider.name.clone(),
                base_url: provider.base_url.clone(),
                api_key,
            })
        })
        .collect()
}
