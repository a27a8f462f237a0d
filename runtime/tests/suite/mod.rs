//! Shared helpers and the test modules.

mod agent;
mod cli;
mod doctor;
mod heartbeat;
mod inference;
mod init;
mod platform;
mod prompt;
mod status;
mod tools;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const CREATOR: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

/// A temp directory holding one home.
pub struct TestHome {
    pub dir: tempfile::TempDir,
}

impl TestHome {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    /// Runs the binary with this home (via --home; the environment is never mutated).
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_automaton"))
            .arg("--home")
            .arg(self.root())
            .args(args)
            .env_remove("AUTOMATON_HOME")
            .output()
            .unwrap()
    }

    pub fn init(&self) -> serde_json::Value {
        let out = self.run(&[
            "init",
            "--json",
            "--name",
            "Atlas",
            "--genesis-prompt",
            "Build small web tools and sell them.",
            "--creator",
            CREATOR,
        ]);
        assert!(out.status.success(), "init failed: {}", stderr(&out));
        json(&out)
    }

    pub fn mode(&self, rel: &str) -> u32 {
        std::fs::symlink_metadata(self.path(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    }

    /// A passphrase file beside the home with `mode`.
    pub fn passphrase_file(&self, text: &str, mode: u32) -> PathBuf {
        let path = self.dir.path().join("pass.txt");
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    pub fn chmod(&self, rel: &str, mode: u32) {
        std::fs::set_permissions(self.path(rel), std::fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn doctor(&self) -> (bool, serde_json::Value) {
        let out = self.run(&["doctor", "--json"]);
        let report = json(&out);
        assert_eq!(
            out.status.success(),
            report["healthy"].as_bool().unwrap(),
            "exit status agrees with the report"
        );
        (out.status.success(), report)
    }
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "stdout is not JSON ({err}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(out)
        )
    })
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The stderr JSON error of a failed command.
pub fn error_json(out: &Output) -> serde_json::Value {
    assert!(!out.status.success(), "expected failure");
    serde_json::from_str(stderr(out).trim())
        .unwrap_or_else(|err| panic!("stderr is not a JSON error ({err}): {}", stderr(out)))
}

/// The failing findings of a doctor report, as `check` names.
pub fn failed_checks(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "fail")
        .map(|f| f["check"].as_str().unwrap().to_owned())
        .collect()
}

/// Every file under `root` with its bytes and mtime, for "nothing changed" checks.
pub fn snapshot(root: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                out.push((
                    entry.path(),
                    std::fs::read(entry.path()).unwrap(),
                    meta.modified().unwrap(),
                ));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
