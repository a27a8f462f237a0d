//! The chat-completions wire shapes the runtime sends and reads. They are our own (sent
//! through async-openai's bring-your-own-types path) so that quirks of compatible servers are
//! handled in one place: an assistant message with only tool calls carries `content: ""`
//! rather than `null` (llama.cpp's server rejects `null`), `tool_choice` is only ever `auto`
//! (it rejects `required`), and missing `usage` reads as zero rather than failing.

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};

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
    /// The OpenAI wire form, serialised straight from the message (nothing is copied).
    pub fn to_wire(&self) -> WireMessage<'_> {
        WireMessage(self)
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

/// A [`Message`] in the OpenAI wire form: assistant tool calls as
/// `{id, type: "function", function: {name, arguments}}`, `tool_calls` left out when there are
/// none, and `content: ""` (never `null`) for a tool-only assistant message.
#[derive(Debug, Clone, Copy)]
pub struct WireMessage<'a>(&'a Message);

impl Serialize for WireMessage<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match self.0 {
            Message::System { content } => {
                map.serialize_entry("role", "system")?;
                map.serialize_entry("content", content)?;
            }
            Message::User { content } => {
                map.serialize_entry("role", "user")?;
                map.serialize_entry("content", content)?;
            }
            Message::Assistant {
                content,
                tool_calls,
            } => {
                map.serialize_entry("role", "assistant")?;
                map.serialize_entry("content", content)?;
                if !tool_calls.is_empty() {
                    map.serialize_entry("tool_calls", &WireCalls(tool_calls))?;
                }
            }
            Message::Tool {
                tool_call_id,
                content,
            } => {
                map.serialize_entry("role", "tool")?;
                map.serialize_entry("tool_call_id", tool_call_id)?;
                map.serialize_entry("content", content)?;
            }
        }
        map.end()
    }
}

struct WireCalls<'a>(&'a [ToolCallRequest]);

impl Serialize for WireCalls<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Call<'a> {
            id: &'a str,
            #[serde(rename = "type")]
            kind: &'static str,
            function: Function<'a>,
        }
        #[derive(Serialize)]
        struct Function<'a> {
            name: &'a str,
            arguments: &'a str,
        }
        serializer.collect_seq(self.0.iter().map(|call| Call {
            id: &call.id,
            kind: "function",
            function: Function {
                name: &call.name,
                arguments: &call.arguments,
            },
        }))
    }
}

/// A chat-completions request body, borrowing the conversation and the tool list: it is
/// serialised once, by the client, with no `serde_json::Value` copy of ~30 KB built first.
#[derive(Debug, Serialize)]
pub struct WireRequest<'a> {
    /// The model's name at the provider.
    pub model: &'a str,
    /// The conversation, in order (serialised through [`Message::to_wire`]).
    #[serde(serialize_with = "wire_messages")]
    pub messages: &'a [Message],
    /// The answer's token ceiling.
    pub max_tokens: u32,
    /// Always `false`: answers are read whole.
    pub stream: bool,
    /// Left out (with `tool_choice`) when empty or when the model cannot call tools.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub tools: &'a [serde_json::Value],
    /// Only ever `auto`: llama.cpp's server rejects `required`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<&'static str>,
}

fn wire_messages<S: Serializer>(messages: &&[Message], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(messages.iter().map(Message::to_wire))
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
        let wire = serde_json::to_value(message.to_wire()).unwrap();
        assert_eq!(wire["content"], "");
        assert_eq!(wire["tool_calls"][0]["function"]["name"], "exec");
        assert_eq!(wire["tool_calls"][0]["type"], "function");
    }

    /// The body as it was built before `WireRequest`: every message copied into a `Value`.
    fn value_body(request: &WireRequest<'_>) -> serde_json::Value {
        let messages: Vec<serde_json::Value> = request
            .messages
            .iter()
            .map(|message| match message {
                Message::System { content } => {
                    serde_json::json!({ "role": "system", "content": content })
                }
                Message::User { content } => {
                    serde_json::json!({ "role": "user", "content": content })
                }
                Message::Assistant {
                    content,
                    tool_calls,
                } => {
                    let mut wire = serde_json::json!({ "role": "assistant", "content": content });
                    if !tool_calls.is_empty() {
                        wire["tool_calls"] = tool_calls
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
                    wire
                }
                Message::Tool {
                    tool_call_id,
                    content,
                } => serde_json::json!({
                    "role": "tool", "tool_call_id": tool_call_id, "content": content
                }),
            })
            .collect();
        let mut body = serde_json::json!({
            "model": request.model,
            "messages": messages,
            "max_tokens": request.max_tokens,
            "stream": request.stream,
        });
        if !request.tools.is_empty() {
            body["tools"] = serde_json::Value::Array(request.tools.to_vec());
            body["tool_choice"] = "auto".into();
        }
        body
    }

    #[test]
    fn the_wire_body_is_byte_for_byte_the_value_built_body() {
        let messages = vec![
            Message::System {
                content: "constitution \"quoted\" and\nnewlines é".into(),
            },
            Message::User {
                content: "go".into(),
            },
            Message::Assistant {
                content: String::new(),
                tool_calls: vec![
                    ToolCallRequest {
                        id: "c1".into(),
                        name: "exec".into(),
                        arguments: r#"{"command":"ls"}"#.into(),
                    },
                    ToolCallRequest {
                        id: "c2".into(),
                        name: "sleep".into(),
                        arguments: String::new(),
                    },
                ],
            },
            Message::Tool {
                tool_call_id: "c1".into(),
                content: r#"{"ok":true}"#.into(),
            },
            Message::Tool {
                tool_call_id: "c2".into(),
                content: "{}".into(),
            },
            Message::Assistant {
                content: "thinking only".into(),
                tool_calls: Vec::new(),
            },
        ];
        let tools = [serde_json::json!({
            "type": "function",
            "function": {"name": "exec", "description": "Run", "parameters": {"type": "object"}},
        })];
        for (tools, tool_choice) in [(&tools[..], Some("auto")), (&[][..], None)] {
            let request = WireRequest {
                model: "gpt-4o-mini",
                messages: &messages,
                max_tokens: 4096,
                stream: false,
                tools,
                tool_choice,
            };
            assert_eq!(
                String::from_utf8(serde_json::to_vec(&request).unwrap()).unwrap(),
                value_body(&request).to_string()
            );
        }
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
