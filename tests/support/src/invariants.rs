//! The conversation invariants every chat-completion request from the runtime must keep.
//!
//! Real providers reject most of these with a 400 (an orphaned tool call, a tool result that
//! answers nothing, a tool without an object schema), often only deep into a long run; checking
//! every request the scripted model sees turns such a bug into a test failure at the turn that
//! caused it. The checks are a pure function of the request body so they can be tested alone.

use std::collections::HashSet;

use serde_json::Value;

/// Checks one chat-completion request body against the invariants; `Err` lists every
/// violation found, joined with `"; "`.
///
/// The invariants: the body is an object with a string `model` and a non-empty `messages`
/// array; the first message has `role: system`; system, developer and user messages have
/// non-empty content; every `role: tool` message has a `tool_call_id` answering a tool call of
/// the nearest preceding assistant message (only tool messages may come between), at most once;
/// every assistant tool call is answered before the next non-tool message and before the end
/// (nothing orphaned); an assistant message has content or at least one tool call, and each
/// call has an id, `type: function`, a name and string arguments; every tool in `tools` is a
/// `type: function` with a unique name whose `function.parameters` is a JSON object schema
/// (`type: object`).
pub fn check_request(body: &Value) -> Result<(), String> {
    let problems = violations(body, None);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Every violation in `body`, plus, when `system_prefix` is set, a system message that does not
/// start with it.
pub(crate) fn violations(body: &Value, system_prefix: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(request) = body.as_object() else {
        out.push("the request body is not a JSON object".to_owned());
        return out;
    };
    if !request.get("model").is_some_and(is_non_empty_str) {
        out.push("`model` is missing or not a non-empty string".to_owned());
    }
    match request.get("messages").and_then(Value::as_array) {
        None => out.push("`messages` is missing or not an array".to_owned()),
        Some(messages) if messages.is_empty() => out.push("`messages` is empty".to_owned()),
        Some(messages) => check_messages(messages, system_prefix, &mut out),
    }
    if let Some(tools) = request.get("tools") {
        check_tools(tools, &mut out);
    }
    out
}

/// The tool calls of one assistant message still waiting for their `role: tool` answers.
struct Pending {
    /// Index of the assistant message that made the calls.
    assistant: usize,
    /// The call ids, in order, each with whether it has been answered.
    calls: Vec<(String, bool)>,
}

impl Pending {
    fn report_unanswered(&self, before: &str, out: &mut Vec<String>) {
        let unanswered: Vec<&str> = self
            .calls
            .iter()
            .filter(|(_, answered)| !answered)
            .map(|(id, _)| id.as_str())
            .collect();
        if !unanswered.is_empty() {
            out.push(format!(
                "messages[{}] (assistant) tool call(s) {unanswered:?} are not answered by tool \
                 messages before {before}",
                self.assistant
            ));
        }
    }
}

fn check_messages(messages: &[Value], system_prefix: Option<&str>, out: &mut Vec<String>) {
    let first_role = messages[0].get("role").and_then(Value::as_str);
    if first_role != Some("system") {
        out.push(format!(
            "the first message must have role `system`, found {}",
            first_role.map_or_else(|| "no role".to_owned(), |role| format!("`{role}`"))
        ));
    } else if let Some(prefix) = system_prefix {
        let text = content_text(messages[0].get("content")).unwrap_or_default();
        if !text.starts_with(prefix) {
            let head: String = prefix.chars().take(60).collect();
            out.push(format!(
                "the system message does not start with the required prefix {head:?}"
            ));
        }
    }

    let mut pending: Option<Pending> = None;
    for (index, message) in messages.iter().enumerate() {
        let Some(role) = message.get("role").and_then(Value::as_str) else {
            out.push(format!("messages[{index}] has no string `role`"));
            continue;
        };
        if role == "tool" {
            check_tool_message(index, message, pending.as_mut(), out);
            continue;
        }
        if let Some(open) = pending.take() {
            open.report_unanswered(&format!("messages[{index}] ({role})"), out);
        }
        match role {
            "system" | "developer" | "user" => {
                if content_text(message.get("content")).is_none_or(|text| text.is_empty()) {
                    out.push(format!("messages[{index}] ({role}) has empty content"));
                }
            }
            "assistant" => pending = check_assistant_message(index, message, out),
            other => out.push(format!("messages[{index}] has unknown role `{other}`")),
        }
    }
    if let Some(open) = pending {
        open.report_unanswered("the end of the conversation", out);
    }
}

/// Checks one assistant message; returns its tool calls when it made any.
fn check_assistant_message(
    index: usize,
    message: &Value,
    out: &mut Vec<String>,
) -> Option<Pending> {
    let calls = match message.get("tool_calls") {
        None | Some(Value::Null) => None,
        Some(Value::Array(calls)) if calls.is_empty() => {
            out.push(format!(
                "messages[{index}] (assistant) has an empty `tool_calls` array (omit it instead)"
            ));
            None
        }
        Some(Value::Array(calls)) => Some(calls),
        Some(_) => {
            out.push(format!(
                "messages[{index}] (assistant) `tool_calls` is not an array"
            ));
            None
        }
    };
    let Some(calls) = calls else {
        if matches!(message.get("content"), None | Some(Value::Null)) {
            out.push(format!(
                "messages[{index}] (assistant) has neither content nor tool calls"
            ));
        }
        return None;
    };
    let mut pending = Pending {
        assistant: index,
        calls: Vec::new(),
    };
    for (position, call) in calls.iter().enumerate() {
        let at = format!("messages[{index}].tool_calls[{position}]");
        let Some(id) = call
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
        else {
            out.push(format!("{at} has no `id`"));
            continue;
        };
        if call.get("type").and_then(Value::as_str) != Some("function") {
            out.push(format!("{at} does not have `type: function`"));
        }
        let function = call.get("function");
        if !function
            .and_then(|function| function.get("name"))
            .is_some_and(is_non_empty_str)
        {
            out.push(format!("{at} has no `function.name`"));
        }
        if !function
            .and_then(|function| function.get("arguments"))
            .is_some_and(Value::is_string)
        {
            out.push(format!("{at} `function.arguments` is not a string"));
        }
        if pending.calls.iter().any(|(seen, _)| seen == id) {
            out.push(format!("{at} repeats the id {id:?}"));
        } else {
            pending.calls.push((id.to_owned(), false));
        }
    }
    Some(pending)
}

fn check_tool_message(
    index: usize,
    message: &Value,
    pending: Option<&mut Pending>,
    out: &mut Vec<String>,
) {
    if content_text(message.get("content")).is_none() {
        out.push(format!("messages[{index}] (tool) has no content"));
    }
    let Some(id) = message.get("tool_call_id").and_then(Value::as_str) else {
        out.push(format!("messages[{index}] (tool) has no `tool_call_id`"));
        return;
    };
    let Some(pending) = pending else {
        out.push(format!(
            "messages[{index}] (tool) answers {id:?} but does not follow an assistant message \
             with tool calls (only tool messages may come between)"
        ));
        return;
    };
    match pending.calls.iter_mut().find(|(call, _)| call == id) {
        None => out.push(format!(
            "messages[{index}] (tool) answers {id:?}, which is not a tool call of messages[{}]",
            pending.assistant
        )),
        Some((_, answered)) if *answered => out.push(format!(
            "messages[{index}] (tool) answers {id:?} a second time"
        )),
        Some((_, answered)) => *answered = true,
    }
}

fn check_tools(tools: &Value, out: &mut Vec<String>) {
    let Some(tools) = tools.as_array() else {
        out.push("`tools` is not an array".to_owned());
        return;
    };
    let mut names = HashSet::new();
    for (index, tool) in tools.iter().enumerate() {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            out.push(format!("tools[{index}] does not have `type: function`"));
        }
        let function = tool.get("function");
        match function
            .and_then(|function| function.get("name"))
            .and_then(Value::as_str)
        {
            Some(name) if !name.is_empty() => {
                if !names.insert(name) {
                    out.push(format!("tools[{index}] repeats the tool name {name:?}"));
                }
            }
            Some(_) | None => out.push(format!("tools[{index}] has no `function.name`")),
        }
        let parameters = function.and_then(|function| function.get("parameters"));
        let is_object_schema = parameters
            .and_then(|parameters| parameters.get("type"))
            .and_then(Value::as_str)
            == Some("object");
        if !is_object_schema {
            out.push(format!(
                "tools[{index}] `function.parameters` is not a JSON object schema (`type: object`)"
            ));
        }
    }
}

/// The text of a message's `content`: a string, or the `text` parts of an array joined;
/// `None` when absent, null or of another type.
fn content_text(content: Option<&Value>) -> Option<String> {
    match content? {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|part| part.get("text").and_then(Value::as_str))
                .collect(),
        ),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => None,
    }
}

fn is_non_empty_str(value: &Value) -> bool {
    value.as_str().is_some_and(|text| !text.is_empty())
}
