//! What the scripted model answers: one [`Reply`] per chat-completion request.
//!
//! Replies are data, not closures, so a script reads as a list of turns and a test can compare
//! or clone them; the HTTP rendering lives in the private `render` module.

use serde_json::{Value, json};

/// One scripted answer to a `POST /v1/chat/completions` request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A plain assistant message: `finish_reason: "stop"`, no `tool_calls`.
    Text(String),
    /// An assistant message that calls tools: `finish_reason: "tool_calls"`, `content` is
    /// `text` (JSON `null` when `None`). Several calls are parallel calls; an empty list is
    /// sent as `tool_calls: []`, as some sloppy providers do.
    ToolCalls {
        /// The assistant text sent alongside the calls, if any.
        text: Option<String>,
        /// The calls, in order.
        calls: Vec<ScriptedCall>,
    },
    /// A non-completion HTTP answer (429, 500, 503, …) with `body` sent verbatim as JSON.
    Status {
        /// The HTTP status code.
        status: u16,
        /// The JSON body, usually OpenAI's `{"error": {...}}` shape.
        body: Value,
        /// When set, sent verbatim as the `Retry-After` header: whole seconds (`"7"`) or
        /// an HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`).
        retry_after: Option<String>,
    },
    /// HTTP 400 with OpenAI's `context_length_exceeded` error body.
    ContextLengthExceeded,
    /// Waits `ms` milliseconds before answering with `reply` (for timeouts and cancellation).
    Delay {
        /// How long to wait, in milliseconds.
        ms: u64,
        /// The answer sent after the wait.
        reply: Box<Reply>,
    },
    /// Answers with `reply` but reports this `usage` instead of the chars/4 estimate. Only
    /// completions carry usage; on error replies it is ignored. The outermost override wins.
    Usage {
        /// Reported `usage.prompt_tokens`.
        prompt_tokens: u32,
        /// Reported `usage.completion_tokens`.
        completion_tokens: u32,
        /// The answer that carries this usage.
        reply: Box<Reply>,
    },
}

/// One tool call inside [`Reply::ToolCalls`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedCall {
    /// The call id the runtime must answer with a `role: tool` message.
    pub id: String,
    /// The function name.
    pub name: String,
    /// The raw arguments text, sent verbatim, so tests can send malformed JSON.
    pub arguments: String,
}

impl ScriptedCall {
    /// A call with the given id, function name and raw arguments text.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }
}

impl Reply {
    /// A plain assistant message.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// A single tool call with no assistant text.
    pub fn tool_call(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self::tool_calls([ScriptedCall::new(id, name, arguments)])
    }

    /// Parallel tool calls with no assistant text (`content: null`).
    pub fn tool_calls(calls: impl IntoIterator<Item = ScriptedCall>) -> Self {
        Self::ToolCalls {
            text: None,
            calls: calls.into_iter().collect(),
        }
    }

    /// HTTP 429 with OpenAI's `rate_limit_exceeded` body and `Retry-After: secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::rate_limited_with(retry_after_secs.to_string())
    }

    /// [`Reply::rate_limited`] with `Retry-After` as an HTTP-date (`http_date`, sent as is).
    pub fn rate_limited_until(http_date: impl Into<String>) -> Self {
        Self::rate_limited_with(http_date.into())
    }

    fn rate_limited_with(retry_after: String) -> Self {
        Self::Status {
            status: 429,
            body: json!({"error": {
                "message": "Rate limit reached for requests. Please try again later.",
                "type": "requests",
                "param": null,
                "code": "rate_limit_exceeded",
            }}),
            retry_after: Some(retry_after),
        }
    }

    /// An HTTP error with an OpenAI-shaped body carrying `message` (`type` is `server_error`
    /// for 5xx, `invalid_request_error` otherwise) and no `Retry-After`.
    pub fn status(status: u16, message: impl Into<String>) -> Self {
        let kind = if status >= 500 {
            "server_error"
        } else {
            "invalid_request_error"
        };
        Self::Status {
            status,
            body: json!({"error": {
                "message": message.into(),
                "type": kind,
                "param": null,
                "code": null,
            }}),
            retry_after: None,
        }
    }

    /// This reply, reporting the given usage instead of the estimate.
    pub fn with_usage(self, prompt_tokens: u32, completion_tokens: u32) -> Self {
        Self::Usage {
            prompt_tokens,
            completion_tokens,
            reply: Box::new(self),
        }
    }

    /// This reply, sent after waiting `ms` milliseconds.
    pub fn delayed(self, ms: u64) -> Self {
        Self::Delay {
            ms,
            reply: Box::new(self),
        }
    }
}
