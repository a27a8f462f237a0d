//! The "done when" of the foundation: init, then status and doctor on the new home.

use std::path::PathBuf;
use std::process::Command;

/// The `automaton` binary cargo built for this test run (`cargo test --workspace` builds
/// every package's binaries into the same target directory as this test).
fn automaton_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = dir.join("automaton");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo test --workspace`",
        bin.display()
    );
    bin
}

#[test]
fn done_when_init_status_doctor() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("atlas");
    let run = |args: &[&str]| {
        Command::new(automaton_bin())
            .args(args)
            .env("AUTOMATON_HOME", &home)
            .output()
            .unwrap()
    };
    let out = run(&[
        "init",
        "--name",
        "Atlas",
        "--genesis-prompt",
        "Build small, useful web tools and earn your keep.",
        "--creator",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["status", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["name"], "Atlas");
    assert_eq!(
        status["creator"],
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    );
    assert_eq!(status["home"], home.display().to_string());
    let out = run(&["doctor"]);
    assert!(
        out.status.success(),
        "doctor: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
