//! The chat-completions wire shapes the runtime sends and reads. They are our own (sent
//! through async-openai's bring-your-own-types path) so that quirks of compatible servers are
//! handled in one place: an assistant message with only tool calls carries `content: ""`
//! rather than `null` (llama.cpp's server rejects `null`), `tool_choice` is only ever `auto`
//! (it rejects `required`), and missing `usage` reads as zero rather than failing.

use serde::{Deserialize, Serialize};

/// One tool call the model asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallRequest {
    /// The model's id for the call; the tool message answering it repeats it.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The raw argument text (may be malformed: the dispatcher answers that).
    pub arguments: String,
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// The system prompt.
    System {
        /// Its text.
        content: String,
    },
    /// Input to the agent (a wake reason, a creator's message, a system notice).
    User {
        /// Its text.
        content: String,
    },
    /// The model's answer: thinking text and/or tool calls.
    Assistant {
        /// The thinking text (may be empty).
        content: String,
        /// The tool calls.
        tool_calls: Vec<ToolCallRequest>,
    },
    /// A tool's result, answering one tool call.
    Tool {
        /// The call it answers.
        tool_call_id: String,
        /// The result text (JSON).
        content: String,
    },
}

impl Message {
    /// The OpenAI wire form.
    pub fn to_wire(&self) -> serde_json::Value {
        match self {
            Self::System { content } => serde_json::json!({ "role": "system", "content": content }),
            Self::User { content } => serde_json::json!({ "role": "user", "content": content }),
            Self::Assistant {
                content,
                tool_calls,
            } => {
                let mut message = serde_json::json!({ "role": "assistant", "content": content });
                if !tool_calls.is_empty() {
                    message["tool_calls"] = tool_calls
                        .iter()
                        .map(|call| {
                            serde_json::json!({
                                "id": call.id,
                                "type": "function",
                                "function": { "name": call.name, "arguments": call.arguments },
                            })
                        })
                        .collect();
                }
                message
            }
            Self::Tool {
                tool_call_id,
                content,
            } => {
                serde_json::json!({ "role": "tool", "tool_call_id": tool_call_id, "content": content })
            }
        }
    }

    /// The text the message carries, for token counting.
    pub fn text_for_counting(&self) -> String {
        match self {
            Self::System { content } | Self::User { content } | Self::Tool { content, .. } => {
                content.clone()
            }
            Self::Assistant {
                content,
                tool_calls,
            } => {
                let mut text = content.clone();
                for call in tool_calls {
                    text.push_str(&call.name);
                    text.push_str(&call.arguments);
                }
                text
            }
        }
    }
}

/// Token counts a server reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Prompt tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Completion tokens.
    #[serde(default)]
    pub completion_tokens: u64,
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// Thinking text (empty when none).
    pub content: String,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCallRequest>,
    /// Why generation stopped.
    pub finish_reason: Option<String>,
    /// Token counts.
    pub usage: Usage,
}

/// The raw response, as read.
#[derive(Debug, Deserialize)]
pub(crate) struct RawResponse {
    #[serde(default)]
    choices: Vec<RawChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct RawChoice {
    message: RawMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<RawToolCall>,
}

#[derive(Debug, Deserialize)]
struct RawToolCall {
    #[serde(default)]
    id: String,
    function: RawFunction,
}

#[derive(Debug, Deserialize)]
struct RawFunction {
    name: String,
    #[serde(default)]
    arguments: String,
}

impl RawResponse {
    /// The first choice as a [`Completion`]; `None` when the server sent no choice.
    pub(crate) fn into_completion(self) -> Option<Completion> {
        let usage = self.usage.unwrap_or_default();
        let choice = self.choices.into_iter().next()?;
        Some(Completion {
            content: choice.message.content.unwrap_or_default(),
            tool_calls: choice
                .message
                .tool_calls
                .into_iter()
                .enumerate()
                .map(|(i, call)| ToolCallRequest {
                    // A server that omits ids still gets answers that pair up.
                    id: if call.id.is_empty() {
                        format!("call_{i}")
                    } else {
                        call.id
                    },
                    name: call.function.name,
                    arguments: call.function.arguments,
                })
                .collect(),
            finish_reason: choice.finish_reason,
            usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_only_assistant_messages_carry_empty_content() {
        let message = Message::Assistant {
            content: String::new(),
            tool_calls: vec![ToolCallRequest {
                id: "c1".into(),
                name: "exec".into(),
                arguments: "{}".into(),
            }],
        };
        let wire = message.to_wire();
        assert_eq!(wire["content"], "");
        assert_eq!(wire["tool_calls"][0]["function"]["name"], "exec");
        assert_eq!(wire["tool_calls"][0]["type"], "function");
    }

    #[test]
    fn responses_parse_leniently() {
        let raw: RawResponse = serde_json::from_value(serde_json::json!({
            "choices": [{"message": {"role": "assistant", "content": null,
                "tool_calls": [{"type": "function", "function": {"name": "exec", "arguments": "{\"command\":\"ls\"}"}}]},
                "finish_reason": "tool_calls"}]
        }))
        .unwrap();
        let completion = raw.into_completion().unwrap();
        assert_eq!(completion.content, "");
        assert_eq!(completion.tool_calls[0].id, "call_0");
        assert_eq!(completion.usage, Usage::default());
    }
}
