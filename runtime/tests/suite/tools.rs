//! The tool system as the creator meets it: `policy check`, `audit verify`, `tools`, and the
//! token cost of every registered tool spec.

use super::*;
use automaton_runtime::home::Home;
use automaton_runtime::toolbox::{self, ProcessFacts};
use automaton_tools::clock::SystemClock;
use automaton_tools::dispatch::CallRequest;
use automaton_tools::tool::Provenance;
use std::sync::Arc;

fn facts() -> ProcessFacts {
    ProcessFacts {
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        user_home: "/root".into(),
        exe: "/usr/local/bin/automaton".into(),
        pid: std::process::id(),
    }
}

fn check(home: &TestHome, tool: &str, args: &str, provenance: &str) -> serde_json::Value {
    let out = home.run(&[
        "policy",
        "check",
        "--tool",
        tool,
        "--args",
        args,
        "--provenance",
        provenance,
    ]);
    assert!(
        out.status.success(),
        "policy check exits 0: {}",
        stderr(&out)
    );
    json(&out)
}

#[test]
fn policy_check_explains_without_running() {
    let home = TestHome::new();
    home.init();
    let wallet = home.path("wallet.json").display().to_string();
    let cases = [
        (
            "exec",
            r#"{"command":"ls -la"}"#.to_owned(),
            "self",
            "allow",
        ),
        (
            "exec",
            r#"{"command":"rm -rf ~"}"#.to_owned(),
            "self",
            "forbid",
        ),
        (
            "exec",
            format!(r#"{{"command":"cat {wallet}"}}"#),
            "self",
            "forbid",
        ),
        (
            "read_file",
            format!(r#"{{"path":"{wallet}"}}"#),
            "self",
            "forbid",
        ),
        (
            "write_file",
            r#"{"path":"notes.md","content":"hi"}"#.to_owned(),
            "external:relay_message",
            "allow",
        ),
        ("reed_file", r#"{"path":"x"}"#.to_owned(), "self", "forbid"),
        // A shell is dangerous: outside input never drives it, however harmless the command.
        (
            "exec",
            r#"{"command":"ls -la"}"#.to_owned(),
            "external:relay_message",
            "forbid",
        ),
        (
            "exec",
            r#"{"command":"ls -la"}"#.to_owned(),
            "child",
            "forbid",
        ),
    ];
    for (tool, args, provenance, want) in cases {
        let answer = check(&home, tool, &args, provenance);
        assert_eq!(
            answer["decision"], want,
            "{tool} {args} as {provenance}: {answer:#}"
        );
        let rules = answer["rules"].as_array().unwrap();
        assert!(!rules.is_empty(), "{answer}");
        for rule in rules {
            assert!(
                rule["gate"].is_string() && rule["reason"].is_string(),
                "{rule}"
            );
        }
    }
    let unknown = check(&home, "reed_file", "{}", "self");
    assert!(
        unknown.to_string().contains("read_file"),
        "did you mean: {unknown}"
    );
    // Nothing ran and nothing was recorded.
    let conn = rusqlite::Connection::open(home.path("state.db")).unwrap();
    let calls: i64 = conn
        .query_row("SELECT COUNT(*) FROM tool_calls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(calls, 0);
}

#[test]
fn policy_check_rejects_bad_input_clearly() {
    let home = TestHome::new();
    home.init();
    let out = home.run(&[
        "policy", "check", "--tool", "exec", "--args", "{nope", "--json",
    ]);
    assert_eq!(error_json(&out)["code"], "INVALID_INPUT");
    let out = home.run(&[
        "policy",
        "check",
        "--tool",
        "exec",
        "--provenance",
        "stranger",
        "--json",
    ]);
    let err = error_json(&out);
    assert!(
        err["message"].as_str().unwrap().contains("stranger"),
        "{err}"
    );
}

#[test]
fn audit_verify_names_the_first_broken_link() {
    let home = TestHome::new();
    home.init();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    {
        let toolbox =
            toolbox::build(&Home::at(home.root()), &facts(), Arc::new(SystemClock)).unwrap();
        runtime.block_on(async {
            for i in 0..3 {
                let record = toolbox
                    .dispatcher
                    .dispatch(
                        CallRequest {
                            name: "write_file".into(),
                            arguments: format!(r#"{{"path":"f{i}.txt","content":"{i}"}}"#),
                            provenance: Provenance::SelfDirected,
                            turn_id: None,
                            timeout: None,
                        },
                        &tokio_util::sync::CancellationToken::new(),
                    )
                    .await;
                assert!(record.receipt.is_some(), "{:?}", record.result);
            }
        });
    }
    let out = home.run(&["audit", "verify", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["ok"], true);
    assert_eq!(report["receipts"], 3);

    let conn = rusqlite::Connection::open(home.path("state.db")).unwrap();
    conn.execute(
        "UPDATE tool_calls SET args_json = '{\"content\":\"evil\",\"path\":\"f1.txt\"}'
         WHERE id = (SELECT call_id FROM receipts WHERE seq = 2)",
        [],
    )
    .unwrap();
    let out = home.run(&["audit", "verify", "--json"]);
    assert!(
        !out.status.success(),
        "a rewritten record must fail verification"
    );
    let report = json(&out);
    assert_eq!(report["ok"], false);
    assert_eq!(report["first_broken"]["seq"], 2);
    assert!(
        report["first_broken"]["problem"]
            .as_str()
            .unwrap()
            .contains("args_json")
    );
}

#[test]
fn tool_specs_token_count_is_visible_and_bounded() {
    let home = TestHome::new();
    home.init();
    let toolbox = toolbox::build(&Home::at(home.root()), &facts(), Arc::new(SystemClock)).unwrap();
    let bpe = tiktoken_rs::o200k_base().unwrap();
    let mut total = 0;
    for spec in toolbox.dispatcher.registry().specs() {
        let text = spec.to_openai_function().to_string();
        let tokens = bpe.encode_with_special_tokens(&text).len();
        println!("tool spec tokens: {:<14} {tokens}", spec.name);
        total += tokens;
    }
    println!("tool spec tokens: TOTAL          {total}");
    assert!(total > 0);
    // Seed 002: every description costs tokens on every request. Growth past this is a
    // decision to make consciously (raise the bound in the same commit). 18 tools since the
    // platform's ten (about 110 tokens each, ~35 of them the function wrapper itself): 2,090.
    // 19 with the forge's one `repo` tool (282 tokens: eight actions in one spec instead of
    // eight specs of ~110), 20 with `token` (~200: issue, list and revoke in one): 2,571.
    // 21 with `datastore` (255: nine actions in one spec instead of nine of ~100): 2,826.
    assert!(total < 2_900, "tool specs cost {total} tokens");
    let out = home.run(&["tools", "--json"]);
    let listed = json(&out);
    assert_eq!(
        listed.as_array().unwrap().len(),
        toolbox.dispatcher.registry().len()
    );
}
