//! The assembled system prompt: constitution first, every layer present, pinned by a
//! snapshot (addresses and dates redacted).

use super::*;

#[test]
fn the_prompt_starts_with_the_constitution_and_is_pinned() {
    let home = TestHome::new();
    let init = home.init();
    let out = home.run(&["prompt", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    let prompt = report["prompt"].as_str().unwrap();
    let constitution = std::fs::read_to_string(home.path("constitution.md")).unwrap();
    assert!(
        prompt.starts_with(constitution.trim_end()),
        "the constitution comes first, verbatim"
    );
    let names: Vec<&str> = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "constitution",
            "identity",
            "soul",
            "genesis",
            "operations",
            "status",
            "tools"
        ]
    );
    let total: u64 = report["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["tokens"].as_u64().unwrap())
        .sum();
    assert!(total > 300, "{total}");
    assert!(report["tool_spec_tokens"].as_u64().unwrap() > 0);
    // Redact what changes between runs: the wallet address and the soul's timestamp and hash.
    let soul_meta = regex_free_redact(prompt, init["address"].as_str().unwrap());
    insta::assert_snapshot!("system_prompt", soul_meta);
}

fn regex_free_redact(prompt: &str, address: &str) -> String {
    prompt
        .replace(address, "[WALLET]")
        .lines()
        .map(|line| {
            if line.starts_with("lastModified:") {
                "lastModified: [MS]".to_owned()
            } else if line.starts_with("contentHash:") {
                "contentHash: [SHA256]".to_owned()
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_tampered_constitution_yields_no_prompt() {
    let home = TestHome::new();
    home.init();
    home.chmod("constitution.md", 0o644);
    let err = error_json(&home.run(&["prompt", "--json"]));
    assert_eq!(err["code"], "CONSTITUTION_TAMPERED");
}
