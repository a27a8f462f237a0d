//! One OpenAI-compatible endpoint: an async-openai client whose HTTP service keeps what
//! async-openai would drop (the status and `Retry-After` of a 429 or 5xx), and a circuit
//! breaker of its own. Errors are classified for the shared resilience module.

use super::chat::{Completion, RawResponse};
use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use automaton_tools::resilience::{Classify, FailureKind, parse_retry_after};
use std::fmt;
use std::time::Duration;

/// A failed inference call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InferenceError {
    /// The server answered with an error status.
    #[error("{provider}: HTTP {status}: {message}")]
    Http {
        /// The provider's name.
        provider: String,
        /// The status code.
        status: u16,
        /// The server's message.
        message: String,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The prompt does not fit the model's context window.
    #[error("{provider}: the prompt exceeds the model's context window: {message}")]
    ContextLength {
        /// The provider's name.
        provider: String,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached or the connection failed.
    #[error("{provider}: connection failed: {message}")]
    Connection {
        /// The provider's name.
        provider: String,
        /// What failed.
        message: String,
    },
    /// The answer could not be read.
    #[error("{provider}: unreadable answer: {message}")]
    Decode {
        /// The provider's name.
        provider: String,
        /// What was wrong.
        message: String,
    },
}

impl InferenceError {
    /// The provider that failed.
    pub fn provider(&self) -> &str {
        match self {
            Self::Http { provider, .. }
            | Self::ContextLength { provider, .. }
            | Self::Connection { provider, .. }
            | Self::Decode { provider, .. } => provider,
        }
    }
}

impl Classify for InferenceError {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Self::Http {
                status,
                retry_after,
                ..
            } if *status == 429 || *status == 408 || *status >= 500 => FailureKind::Transient {
                retry_after: *retry_after,
            },
            Self::Connection { .. } => FailureKind::Transient { retry_after: None },
            Self::Http { .. } | Self::ContextLength { .. } | Self::Decode { .. } => {
                FailureKind::Permanent
            }
        }
    }
}

/// A retryable HTTP status, captured below async-openai with its headers.
#[derive(Debug)]
struct StatusWithRetry {
    status: u16,
    retry_after: Option<Duration>,
    body: String,
}

impl fmt::Display for StatusWithRetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}: {}", self.status, self.body)
    }
}

impl std::error::Error for StatusWithRetry {}

/// A configured endpoint.
pub struct Provider {
    name: String,
    client: async_openai::Client<OpenAIConfig>,
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The client holds the API key: never print it.
        f.debug_struct("Provider")
            .field("name", &self.name)
            .finish()
    }
}

/// How long one HTTP request may take before it counts as a connection failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);

impl Provider {
    /// A provider at `base_url` authenticating with `api_key` (empty for local servers).
    pub fn new(name: &str, base_url: &str, api_key: &str) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        let service = tower::service_fn(move |factory: HttpRequestFactory| {
            let http = http.clone();
            async move {
                let request = factory.build().await?;
                let response = http.execute(request).await.map_err(OpenAIError::Reqwest)?;
                let status = response.status().as_u16();
                // 413: a body too large for a proxy in front of the model, which compaction
                // fixes like a context-window error.
                if status == 429 || status == 408 || status == 413 || status >= 500 {
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
                    let body = response.text().await.unwrap_or_default();
                    return Err(OpenAIError::Boxed(Box::new(StatusWithRetry {
                        status,
                        retry_after,
                        body: body.chars().take(500).collect(),
                    })));
                }
                Ok(response)
            }
        });
        let config = OpenAIConfig::new()
            .with_api_base(base_url.trim_end_matches('/'))
            .with_api_key(api_key);
        let client = async_openai::Client::with_config(config).with_http_service(service);
        Ok(Self {
            name: name.to_owned(),
            client,
        })
    }

    /// The provider's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// One chat-completions request (no retries here: the router owns those). `request` is
    /// serialised once, into the HTTP body.
    pub async fn complete<R: serde::Serialize + Sync>(
        &self,
        request: &R,
    ) -> Result<Completion, InferenceError> {
        let raw: RawResponse = self
            .client
            .chat()
            .create_byot(request)
            .await
            .map_err(|err| self.classify(err))?;
        raw.into_completion().ok_or_else(|| InferenceError::Decode {
            provider: self.name.clone(),
            message: "the answer has no choices".to_owned(),
        })
    }

    fn classify(&self, err: OpenAIError) -> InferenceError {
        let provider = self.name.clone();
        match err {
            OpenAIError::Boxed(inner) => match inner.downcast::<StatusWithRetry>() {
                Ok(status) if status.status == 413 || is_context_overflow(&status.body) => {
                    InferenceError::ContextLength {
                        provider,
                        message: format!("HTTP {}: {}", status.status, status.body),
                    }
                }
                Ok(status) => InferenceError::Http {
                    provider,
                    status: status.status,
                    message: status.body,
                    retry_after: status.retry_after,
                },
                Err(other) => InferenceError::Connection {
                    provider,
                    message: other.to_string(),
                },
            },
            OpenAIError::ApiError(api) => {
                let code = api.api_error.code.clone().unwrap_or_default();
                let kind = api.api_error.r#type.clone().unwrap_or_default();
                let message = api.api_error.message.clone();
                if is_context_overflow(&code)
                    || is_context_overflow(&kind)
                    || is_context_overflow(&message)
                {
                    InferenceError::ContextLength { provider, message }
                } else {
                    InferenceError::Http {
                        provider,
                        status: api.status_code.as_u16(),
                        message,
                        retry_after: None,
                    }
                }
            }
            OpenAIError::Reqwest(err) => InferenceError::Connection {
                provider,
                message: err.to_string(),
            },
            // An error body async-openai could not read (llama.cpp's integer `code`, a proxy's
            // own shape): still a context-window error when its text says so.
            OpenAIError::JSONDeserialize(_, content) if is_context_overflow(&content) => {
                InferenceError::ContextLength {
                    provider,
                    message: content.chars().take(500).collect(),
                }
            }
            OpenAIError::JSONDeserialize(err, _) => InferenceError::Decode {
                provider,
                message: err.to_string(),
            },
            other => InferenceError::Connection {
                provider,
                message: other.to_string(),
            },
        }
    }
}

/// Whether an error's code, type or message says the prompt did not fit the model's context
/// window, in the words of the servers the runtime must work with: OpenAI and OpenRouter
/// (`context_length_exceeded`, "maximum context length"), Anthropic's OpenAI-compatible
/// endpoint ("prompt is too long"), llama.cpp (`exceed_context_size_error`, "context size"),
/// vLLM ("maximum context length", "context window"), Ollama ("context length").
pub(crate) fn is_context_overflow(text: &str) -> bool {
    const SIGNS: [&str; 8] = [
        "context_length_exceeded",
        "maximum context length",
        "context window",
        "context length",
        "prompt is too long",
        "exceed_context_size",
        "context size",
        "input is too long",
    ];
    let text = text.to_ascii_lowercase();
    SIGNS.iter().any(|sign| text.contains(sign))
}
