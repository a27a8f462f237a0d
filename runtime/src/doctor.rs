//! `automaton doctor`: checks the home without changing it and prints every finding with its
//! fix. Exit status 1 when anything is wrong, 0 when all is well (warnings included).

use crate::config::AutomatonConfig;
use crate::home::{CONSTITUTION_MODE, DIR_MODE, GITIGNORE, Home, PRIVATE_FILE_MODE};
use crate::output::{OutputMode, print_json};
use crate::{constitution, home_git, state};
use automaton_tools::db::StateDb;
use automaton_tools::secure_fs::check_private_file;
use serde::Serialize;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// As it should be.
    Ok,
    /// Worth attention, not broken.
    Warn,
    /// Wrong: the agent must not run like this.
    Fail,
}

/// One check's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// What was checked (`constitution`, `wallet`, `state_db.integrity`, …).
    pub check: &'static str,
    /// Its outcome.
    pub severity: Severity,
    /// What was found.
    pub message: String,
    /// How to fix it (empty when ok).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub fix: String,
}

/// The doctor's report.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    /// True when no finding failed.
    pub healthy: bool,
    /// Every finding, in check order.
    pub findings: Vec<Finding>,
}

struct Findings(Vec<Finding>);

impl Findings {
    fn ok(&mut self, check: &'static str, message: impl Into<String>) {
        self.push(check, Severity::Ok, message, "");
    }
    fn push(
        &mut self,
        check: &'static str,
        severity: Severity,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Finding {
            check,
            severity,
            message: message.into(),
            fix: fix.into(),
        });
    }
    fn fail(&mut self, check: &'static str, message: impl Into<String>, fix: impl Into<String>) {
        self.push(check, Severity::Fail, message, fix);
    }
}

/// Runs every check on `home`.
pub fn examine(home: &Home) -> DoctorReport {
    let mut findings = Findings(Vec::new());
    let root = home.root();
    match std::fs::symlink_metadata(root) {
        Err(err) => {
            findings.fail(
                "home",
                format!("{} cannot be read: {err}", root.display()),
                "run `automaton init --name NAME --genesis-prompt TEXT --creator 0x…`",
            );
            return finish(findings);
        }
        Ok(meta) => check_mode(&mut findings, "home.mode", root, meta.mode(), DIR_MODE),
    }

    let config = match AutomatonConfig::load(&home.config()) {
        Ok(config) => {
            findings.ok("config", "automaton.json is valid");
            Some(config)
        }
        Err(err) => {
            findings.fail("config", err.to_string(), err.hint());
            None
        }
    };
    if let Ok(meta) = std::fs::symlink_metadata(home.config()) {
        check_mode(
            &mut findings,
            "config.mode",
            &home.config(),
            meta.mode(),
            PRIVATE_FILE_MODE,
        );
    }

    check_wallet(&mut findings, home, config.as_ref());
    check_constitution(&mut findings, home, config.as_ref());
    check_home_files(&mut findings, home);
    check_state_db(&mut findings, home);
    check_git(&mut findings, home);
    finish(findings)
}

fn finish(findings: Findings) -> DoctorReport {
    DoctorReport {
        healthy: findings.0.iter().all(|f| f.severity != Severity::Fail),
        findings: findings.0,
    }
}

fn check_mode(findings: &mut Findings, check: &'static str, path: &Path, mode: u32, want: u32) {
    let mode = mode & 0o7777;
    if mode == want {
        findings.ok(check, format!("{} has mode {want:04o}", path.display()));
    } else {
        findings.fail(
            check,
            format!(
                "{} has mode {mode:04o}; expected {want:04o}",
                path.display()
            ),
            format!("chmod {want:o} {}", path.display()),
        );
    }
}

fn check_wallet(findings: &mut Findings, home: &Home, config: Option<&AutomatonConfig>) {
    let path = home.wallet();
    if let Err(issue) = check_private_file(&path) {
        findings.fail("wallet", issue.message(&path), issue.fix(&path));
        return;
    }
    match automaton_treasury::wallet_address_on_disk(&path) {
        Ok(address) => match config {
            Some(config) if config.wallet_address != address => findings.fail(
                "wallet",
                format!(
                    "wallet.json holds {address} but automaton.json names {}",
                    config.wallet_address
                ),
                "restore the wallet.json that belongs to this automaton from your backup",
            ),
            _ => findings.ok(
                "wallet",
                format!("wallet.json is private and holds {address}"),
            ),
        },
        Err(err) => findings.fail("wallet", err.to_string(), err.hint()),
    }
}

fn check_constitution(findings: &mut Findings, home: &Home, config: Option<&AutomatonConfig>) {
    let Some(config) = config else {
        findings.fail(
            "constitution",
            "cannot verify constitution.md without a valid automaton.json (the hash is pinned there)",
            "fix automaton.json first",
        );
        return;
    };
    match constitution::verify(&home.constitution(), &config.constitution_sha256) {
        Ok(()) => findings.ok(
            "constitution",
            format!("constitution.md matches its pinned hash and mode {CONSTITUTION_MODE:04o}"),
        ),
        Err(problem) => findings.fail(
            "constitution",
            format!("constitution.md {problem}"),
            format!(
                "restore it: `git -C {0} checkout -- constitution.md && chmod 444 {0}/constitution.md`; the agent refuses to run until then",
                home.root().display()
            ),
        ),
    }
}

fn check_home_files(findings: &mut Findings, home: &Home) {
    match automaton_heartbeat::HeartbeatConfig::load(&home.heartbeat()) {
        Ok(config) => findings.ok(
            "heartbeat",
            format!("heartbeat.yml is valid ({} entries)", config.entries.len()),
        ),
        Err(err) => findings.fail("heartbeat", err.to_string(), err.hint()),
    }
    match std::fs::read_to_string(home.soul()) {
        Ok(text) => match automaton_memory::SoulDocument::parse(&text) {
            Ok(_) => findings.ok("soul", "SOUL.md is a valid soul/v1 document"),
            Err(err) => findings.fail("soul", format!("SOUL.md: {err}"), err.hint()),
        },
        Err(err) => findings.fail(
            "soul",
            format!("SOUL.md cannot be read: {err}"),
            format!(
                "restore it: `git -C {} checkout -- SOUL.md`",
                home.root().display()
            ),
        ),
    }
    let skills = automaton_skills::load_skills(&home.skills());
    if skills.errors.is_empty() {
        findings.ok("skills", format!("{} skills load", skills.skills.len()));
    }
    for error in &skills.errors {
        findings.push("skills", Severity::Warn, error.to_string(), error.hint());
    }
    for (check, file) in [
        ("soul.mode", home.soul()),
        ("heartbeat.mode", home.heartbeat()),
    ] {
        if let Ok(meta) = std::fs::symlink_metadata(&file) {
            check_mode(findings, check, &file, meta.mode(), PRIVATE_FILE_MODE);
        }
    }
    if let Ok(entries) = std::fs::read_dir(home.keys()) {
        for entry in entries.flatten() {
            let path = entry.path();
            if let Err(issue) = check_private_file(&path) {
                findings.fail("keys", issue.message(&path), issue.fix(&path));
            }
        }
    }
    for (check, dir) in [
        ("skills.mode", home.skills()),
        ("keys.mode", home.keys()),
        ("logs.mode", home.logs()),
    ] {
        match std::fs::symlink_metadata(&dir) {
            Ok(meta) => check_mode(findings, check, &dir, meta.mode(), DIR_MODE),
            Err(err) => findings.fail(
                check,
                format!("{} is missing: {err}", dir.display()),
                format!("mkdir -m 700 {}", dir.display()),
            ),
        }
    }
}

fn check_state_db(findings: &mut Findings, home: &Home) {
    let path = home.state_db();
    if !path.exists() {
        findings.fail(
            "state_db",
            format!("{} is missing", path.display()),
            "run `automaton status` to create it (all history would be lost: restore a backup if there was one)",
        );
        return;
    }
    if let Ok(meta) = std::fs::metadata(&path) {
        let mode = meta.permissions().mode() & 0o077;
        if mode != 0 {
            findings.fail(
                "state_db.mode",
                format!("{} is readable by group or others", path.display()),
                format!("chmod 600 {}", path.display()),
            );
        }
    }
    let db = match StateDb::open_existing(&path) {
        Ok(db) => db,
        Err(err) => {
            findings.fail("state_db", err.to_string(), err.hint());
            return;
        }
    };
    match db.integrity_check() {
        Ok(()) => findings.ok("state_db.integrity", "PRAGMA integrity_check: ok"),
        Err(err) => findings.fail("state_db.integrity", err.to_string(), err.hint()),
    }
    if let Err(err) = db.refuse_newer(state::ALL_SCHEMAS) {
        findings.fail("state_db.schema", err.to_string(), err.hint());
        return;
    }
    match db.pending(state::ALL_SCHEMAS) {
        Ok(pending) if pending.is_empty() => {
            findings.ok("state_db.schema", "all migrations applied")
        }
        Ok(pending) => findings.push(
            "state_db.schema",
            Severity::Warn,
            format!(
                "{} pending migrations: {}",
                pending.len(),
                pending
                    .iter()
                    .map(|p| format!("{} v{}", p.crate_name, p.version))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "they are applied at the next start (`automaton status` applies them now)",
        ),
        Err(err) => findings.fail("state_db.schema", err.to_string(), err.hint()),
    }
}

fn check_git(findings: &mut Findings, home: &Home) {
    let fix_repo = format!(
        "the home should be a git repository: `git -C {} init` and commit, or re-create the home",
        home.root().display()
    );
    match home_git::tracked_paths(home.root()) {
        Ok(paths) => {
            let leaked: Vec<_> = paths
                .iter()
                .filter(|path| {
                    path.as_str() == "wallet.json"
                        || path.starts_with("state.db")
                        || path.starts_with("logs/")
                        || path.starts_with("keys/")
                        || path.ends_with(".key")
                })
                .cloned()
                .collect();
            if leaked.is_empty() {
                findings.ok(
                    "git",
                    format!("home history tracks {} files, no secrets", paths.len()),
                );
            } else {
                findings.fail(
                    "git",
                    format!("secret or private files are in the home's git history: {}", leaked.join(", ")),
                    "remove them from history (`git filter-repo` or re-create the repository) and rotate the wallet",
                );
            }
        }
        Err(err) => findings.fail(
            "git",
            format!("home git history unreadable: {err}"),
            fix_repo,
        ),
    }
    match std::fs::read_to_string(home.gitignore()) {
        Ok(text) => {
            let missing: Vec<&str> = ["wallet.json", "state.db", "logs/", "keys/", "*.key"]
                .into_iter()
                .filter(|entry| !text.lines().any(|line| line.trim() == *entry))
                .collect();
            if missing.is_empty() {
                findings.ok(
                    "gitignore",
                    ".gitignore keeps keys, state.db and logs out of history",
                );
            } else {
                findings.fail(
                    "gitignore",
                    format!(".gitignore lacks: {}", missing.join(", ")),
                    format!(
                        "add those lines to {} (see the default:\n{GITIGNORE})",
                        home.gitignore().display()
                    ),
                );
            }
        }
        Err(err) => findings.fail(
            "gitignore",
            format!(".gitignore cannot be read: {err}"),
            format!(
                "restore it: `git -C {} checkout -- .gitignore`",
                home.root().display()
            ),
        ),
    }
}

/// Prints the report in `mode`.
pub fn print(report: &DoctorReport, mode: OutputMode) {
    match mode {
        OutputMode::Json => print_json(report),
        OutputMode::Human => {
            for finding in &report.findings {
                let mark = match finding.severity {
                    Severity::Ok => "ok  ",
                    Severity::Warn => "warn",
                    Severity::Fail => "FAIL",
                };
                println!("[{mark}] {}: {}", finding.check, finding.message);
                if !finding.fix.is_empty() {
                    println!("       fix: {}", finding.fix);
                }
            }
            println!(
                "{}",
                if report.healthy {
                    "All is well."
                } else {
                    "Problems found."
                }
            );
        }
    }
}
