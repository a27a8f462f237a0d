//! CLI surface: version, help with examples, setup's refusal without a terminal.

use super::*;

#[test]
fn version_prints_the_crate_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_automaton"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("automaton {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in ["init", "setup", "status", "doctor"] {
        let out = Command::new(env!("CARGO_BIN_EXE_automaton"))
            .args([command, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{command}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains("Example"),
            "{command} --help has no example:\n{help}"
        );
    }
}

#[test]
fn setup_without_a_terminal_refuses_and_names_init() {
    let home = TestHome::new();
    let out = home.run(&["setup", "--json"]);
    let err = error_json(&out);
    assert_eq!(err["code"], "NOT_A_TERMINAL");
    let hint = err["hint"].as_str().unwrap();
    for flag in ["automaton init", "--name", "--genesis-prompt", "--creator"] {
        assert!(hint.contains(flag), "hint lacks {flag}: {hint}");
    }
    assert!(!home.root().join("automaton.json").exists());
}

#[test]
fn piped_output_is_json_without_the_flag() {
    let home = TestHome::new();
    // No --json, but stdout is a pipe: errors come out as JSON all the same.
    let out = home.run(&["status"]);
    let err = error_json(&out);
    assert_eq!(err["code"], "NOT_INITIALIZED");
}

#[test]
fn config_schema_is_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_automaton"))
        .args(["config", "schema"])
        .output()
        .unwrap();
    let schema = json(&out);
    assert_eq!(schema["title"], "automaton.json");
}

#[test]
fn usage_errors_are_json_errors_with_a_hint() {
    let home = TestHome::new();
    for args in [&["statu", "--json"][..], &["init", "--bogus", "--json"][..]] {
        let out = home.run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = error_json(&out);
        assert_eq!(err["code"], "INVALID_INPUT");
        assert!(err["hint"].as_str().unwrap().contains("--help"));
    }
}
