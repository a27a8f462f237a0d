//! `check_request`, table-driven: conversations that keep every invariant pass, and each
//! broken invariant is reported with a message naming it.

use automaton_test_support::check_request;
use serde_json::{Value, json};

/// `system`, `user`, then `rest`, with the given tools.
fn conversation(rest: Value, tools: Value) -> Value {
    let mut messages = vec![
        json!({"role": "system", "content": "You are an automaton."}),
        json!({"role": "user", "content": "Do the thing."}),
    ];
    messages.extend(rest.as_array().unwrap().iter().cloned());
    let mut body = json!({"model": "gpt-test", "messages": messages});
    if !tools.is_null() {
        body["tools"] = tools;
    }
    body
}

fn call(id: &str) -> Value {
    json!({"id": id, "type": "function", "function": {"name": "ls", "arguments": "{}"}})
}

fn calls(ids: &[&str]) -> Value {
    json!({"role": "assistant", "content": null, "tool_calls": ids.iter().map(|id| call(id)).collect::<Vec<_>>()})
}

fn answer(id: &str) -> Value {
    json!({"role": "tool", "tool_call_id": id, "content": "ok"})
}

fn tool(name: &str, parameters: Value) -> Value {
    json!({"type": "function", "function": {"name": name, "description": "d", "parameters": parameters}})
}

fn object_schema() -> Value {
    json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]})
}

#[test]
fn valid_conversations_pass() {
    let cases: Vec<(&str, Value)> = vec![
        ("system and user only", conversation(json!([]), Value::Null)),
        (
            "parallel calls answered out of order, then text, then a new user turn",
            conversation(
                json!([
                    calls(&["call_a", "call_b"]),
                    answer("call_b"),
                    answer("call_a"),
                    {"role": "assistant", "content": "Done."},
                    {"role": "user", "content": "Thanks."},
                ]),
                Value::Null,
            ),
        ),
        (
            "two tool rounds in a row",
            conversation(
                json!([calls(&["c1"]), answer("c1"), calls(&["c2"]), answer("c2")]),
                Value::Null,
            ),
        ),
        (
            "assistant text alongside a call; empty tool output",
            conversation(
                json!([
                    {"role": "assistant", "content": "Looking.", "tool_calls": [call("c1")]},
                    {"role": "tool", "tool_call_id": "c1", "content": ""},
                ]),
                Value::Null,
            ),
        ),
        (
            "content as text parts; a later developer message; empty assistant text",
            json!({"model": "m", "messages": [
                {"role": "system", "content": [{"type": "text", "text": "You are an automaton."}]},
                {"role": "user", "content": [{"type": "text", "text": "hi"}]},
                {"role": "assistant", "content": ""},
                {"role": "developer", "content": "Wake-up: heartbeat."},
            ]}),
        ),
        (
            "tools with object schemas",
            conversation(
                json!([]),
                json!([
                    tool("read_file", object_schema()),
                    tool("noop", json!({"type": "object", "properties": {}}))
                ]),
            ),
        ),
    ];
    for (name, body) in cases {
        assert_eq!(check_request(&body), Ok(()), "case {name:?}");
    }
}

#[test]
fn each_broken_invariant_is_reported() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("body not an object", json!([]), "not a JSON object"),
        (
            "no model",
            json!({"messages": [{"role": "system", "content": "s"}]}),
            "`model` is missing",
        ),
        (
            "no messages",
            json!({"model": "m"}),
            "`messages` is missing",
        ),
        (
            "empty messages",
            json!({"model": "m", "messages": []}),
            "`messages` is empty",
        ),
        (
            "first message is not system",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}),
            "the first message must have role `system`, found `user`",
        ),
        (
            "empty system prompt",
            json!({"model": "m", "messages": [{"role": "system", "content": ""}]}),
            "messages[0] (system) has empty content",
        ),
        (
            "user message with null content",
            conversation(json!([{"role": "user", "content": null}]), Value::Null),
            "messages[2] (user) has empty content",
        ),
        (
            "message without a role",
            conversation(json!([{"content": "x"}]), Value::Null),
            "messages[2] has no string `role`",
        ),
        (
            "unknown role",
            conversation(json!([{"role": "function", "content": "x"}]), Value::Null),
            "unknown role `function`",
        ),
        (
            "tool message without tool_call_id",
            conversation(
                json!([calls(&["c1"]), {"role": "tool", "content": "ok"}]),
                Value::Null,
            ),
            "messages[3] (tool) has no `tool_call_id`",
        ),
        (
            "tool message without content",
            conversation(
                json!([calls(&["c1"]), {"role": "tool", "tool_call_id": "c1"}]),
                Value::Null,
            ),
            "messages[3] (tool) has no content",
        ),
        (
            "tool result answering an unknown id",
            conversation(
                json!([calls(&["c1"]), answer("c1"), answer("c9")]),
                Value::Null,
            ),
            "messages[4] (tool) answers \"c9\", which is not a tool call of messages[2]",
        ),
        (
            "tool result answering twice",
            conversation(
                json!([calls(&["c1"]), answer("c1"), answer("c1")]),
                Value::Null,
            ),
            "answers \"c1\" a second time",
        ),
        (
            "tool result with no assistant call before it",
            conversation(json!([answer("c1")]), Value::Null),
            "messages[2] (tool) answers \"c1\" but does not follow an assistant message",
        ),
        (
            "tool result after the nearest assistant, which made no calls",
            conversation(
                json!([calls(&["c1"]), answer("c1"), {"role": "assistant", "content": "done"}, answer("c1")]),
                Value::Null,
            ),
            "messages[5] (tool) answers \"c1\" but does not follow",
        ),
        (
            "orphaned call before the next user message",
            conversation(
                json!([calls(&["c1"]), {"role": "user", "content": "and?"}]),
                Value::Null,
            ),
            "messages[2] (assistant) tool call(s) [\"c1\"] are not answered by tool messages before messages[3] (user)",
        ),
        (
            "one of two parallel calls orphaned at the end",
            conversation(json!([calls(&["c1", "c2"]), answer("c2")]), Value::Null),
            "tool call(s) [\"c1\"] are not answered by tool messages before the end of the conversation",
        ),
        (
            "assistant with null content and no tool calls",
            conversation(json!([{"role": "assistant", "content": null}]), Value::Null),
            "messages[2] (assistant) has neither content nor tool calls",
        ),
        (
            "assistant with no content field and no tool calls",
            conversation(json!([{"role": "assistant"}]), Value::Null),
            "has neither content nor tool calls",
        ),
        (
            "assistant with an empty tool_calls array",
            conversation(
                json!([{"role": "assistant", "content": "x", "tool_calls": []}]),
                Value::Null,
            ),
            "empty `tool_calls` array",
        ),
        (
            "tool call without an id",
            conversation(
                json!([{"role": "assistant", "content": null, "tool_calls": [{"type": "function", "function": {"name": "ls", "arguments": "{}"}}]}]),
                Value::Null,
            ),
            "messages[2].tool_calls[0] has no `id`",
        ),
        (
            "tool call of another type",
            conversation(
                json!([{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "custom", "function": {"name": "ls", "arguments": "{}"}}]}, answer("c1")]),
                Value::Null,
            ),
            "does not have `type: function`",
        ),
        (
            "tool call arguments as an object, not a string",
            conversation(
                json!([{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "ls", "arguments": {}}}]}, answer("c1")]),
                Value::Null,
            ),
            "`function.arguments` is not a string",
        ),
        (
            "repeated call id",
            conversation(json!([calls(&["c1", "c1"]), answer("c1")]), Value::Null),
            "messages[2].tool_calls[1] repeats the id \"c1\"",
        ),
        (
            "tool without parameters",
            conversation(
                json!([]),
                json!([{"type": "function", "function": {"name": "ls"}}]),
            ),
            "tools[0] `function.parameters` is not a JSON object schema",
        ),
        (
            "tool whose parameters are not an object schema",
            conversation(json!([]), json!([tool("ls", json!({"type": "array"}))])),
            "tools[0] `function.parameters` is not a JSON object schema",
        ),
        (
            "tool of another type",
            conversation(
                json!([]),
                json!([{"type": "custom", "function": {"name": "ls", "parameters": object_schema()}}]),
            ),
            "tools[0] does not have `type: function`",
        ),
        (
            "tool without a name",
            conversation(json!([]), json!([tool("", object_schema())])),
            "tools[0] has no `function.name`",
        ),
        (
            "duplicate tool names",
            conversation(
                json!([]),
                json!([tool("ls", object_schema()), tool("ls", object_schema())]),
            ),
            "tools[1] repeats the tool name \"ls\"",
        ),
        (
            "tools not an array",
            conversation(json!([]), json!({"ls": {}})),
            "`tools` is not an array",
        ),
    ];
    for (name, body, expected) in cases {
        match check_request(&body) {
            Ok(()) => panic!("case {name:?}: expected a violation containing {expected:?}"),
            Err(message) => assert!(
                message.contains(expected),
                "case {name:?}: {message:?} does not contain {expected:?}"
            ),
        }
    }
}

#[test]
fn every_violation_in_one_request_is_listed() {
    let body = json!({"messages": [{"role": "user", "content": ""}, calls(&["c1"])]});

    let message = check_request(&body).unwrap_err();

    for expected in [
        "`model` is missing",
        "role `system`",
        "messages[0] (user) has empty content",
        "before the end",
    ] {
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
    assert_eq!(message.matches("; ").count(), 3, "{message:?}");
}
