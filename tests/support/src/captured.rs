//! What the scripted model records about each request it receives.

use serde_json::Value;
use std::time::Instant;

/// One HTTP request the scripted model received, in arrival order.
#[derive(Debug, Clone, PartialEq)]
pub struct CapturedRequest {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The request path without the query, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Every header as `(lower-case name, value)`, in the order received; values that are not
    /// UTF-8 are kept lossily.
    pub headers: Vec<(String, String)>,
    /// The JSON body; `Value::Null` when the body was empty or not JSON.
    pub body: Value,
    /// The body's `model` field, when it is a string.
    pub model: Option<String>,
    /// When the whole request had arrived (the handler began), for timing what a client does
    /// between its requests.
    pub received_at: Instant,
}

impl CapturedRequest {
    /// The first value of header `name` (case-insensitive), e.g. `header("authorization")`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The body's `messages` array; empty when it has none.
    pub fn messages(&self) -> &[Value] {
        self.body
            .get("messages")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice)
    }
}
