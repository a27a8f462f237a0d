//! A name-based [`PathGuard`]: the command gate's stand-in for the inode-based path gate.
//!
//! It judges paths by their spelling only (after the gate has resolved `~`, `..` and `//`),
//! so symlinks and hard links pass it; the inode-based gate closes those. It exists so the
//! command gate can be tested, and used, without a filesystem of real protected files.

use std::path::{Path, PathBuf};

use super::{PathAccess, PathGuard};

/// Files under the automaton's home that no command may write, with what to do instead.
const HOME_WRITE_PROTECTED: &[(&str, &str)] = &[
    (
        "constitution.md",
        "the constitution is immutable; propose changes to your creator instead",
    ),
    (
        "wallet.json",
        "the wallet file holds the private key; use the treasury tools",
    ),
    (
        "state.db",
        "state.db is the audited record; it changes only through the runtime's tools",
    ),
    (
        "state.db-wal",
        "state.db is the audited record; it changes only through the runtime's tools",
    ),
    (
        "state.db-shm",
        "state.db is the audited record; it changes only through the runtime's tools",
    ),
    (
        "state.db-journal",
        "state.db is the audited record; it changes only through the runtime's tools",
    ),
    (
        "automaton.json",
        "the configuration changes only through the runtime's setup and config commands",
    ),
    (
        "heartbeat.yml",
        "the heartbeat schedule changes only through the modify_heartbeat tool",
    ),
    ("SOUL.md", "SOUL.md changes only through the soul tools"),
    (
        ".git",
        "the home's git history is the audit trail of state changes",
    ),
    (
        ".git/config",
        "the home repository's git config can run code (hooks path, aliases, pagers)",
    ),
];

/// Dotfiles of the user's home that run code at login or grant access.
const USER_WRITE_PROTECTED: &[&str] = &[
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zprofile",
    ".zshenv",
];

/// Protects the automaton's home and the user's login files, by name.
#[derive(Debug, Clone)]
pub struct NamePathGuard {
    home: PathBuf,
    user_home: PathBuf,
}

impl NamePathGuard {
    /// A guard for the automaton home `home` of a user whose `$HOME` is `user_home`.
    pub fn new(home: impl Into<PathBuf>, user_home: impl Into<PathBuf>) -> Self {
        Self {
            home: home.into(),
            user_home: user_home.into(),
        }
    }

    fn never_read(&self, path: &Path) -> Option<String> {
        let name = path.file_name()?.to_string_lossy();
        let lower = name.to_ascii_lowercase();
        if name == "wallet.json" {
            return Some(
                "wallet.json holds the private key; use the treasury tools to sign or pay".into(),
            );
        }
        if lower.ends_with(".key") || lower.starts_with("keystore") {
            return Some(format!(
                "{name} is key material and is never read by commands"
            ));
        }
        if lower.starts_with(".env") {
            return Some(format!(
                "{name} holds secrets; the runtime passes the configuration you need"
            ));
        }
        if ["id_rsa", "id_ed25519", "id_ecdsa", "id_dsa"]
            .iter()
            .any(|key| lower.starts_with(key))
        {
            return Some(format!("{name} is an SSH private key and is never read"));
        }
        if lower.contains("credential") || lower == ".netrc" || lower == ".pgpass" {
            return Some(format!("{name} holds credentials and is never read"));
        }
        let parts: Vec<_> = path.components().collect();
        if name == "environ" && parts.len() >= 3 && path.starts_with("/proc") {
            return Some("process environments hold secrets and are never read".into());
        }
        None
    }

    fn never_written(&self, path: &Path) -> Option<String> {
        if let Ok(rest) = path.strip_prefix(&self.home) {
            let rest = rest.to_string_lossy();
            for (name, why) in HOME_WRITE_PROTECTED {
                if rest == *name {
                    return Some((*why).to_owned());
                }
            }
            if rest == ".git/hooks" || rest.starts_with(".git/hooks/") {
                return Some("git hooks in the home run code on every state commit".into());
            }
        }
        if let Ok(rest) = path.strip_prefix(&self.user_home) {
            let rest = rest.to_string_lossy();
            if USER_WRITE_PROTECTED.contains(&rest.as_ref()) {
                return Some("login files run code in every future shell".into());
            }
            if rest == ".ssh" || rest.starts_with(".ssh/") {
                return Some("~/.ssh controls who can log in".into());
            }
        }
        None
    }
}

impl PathGuard for NamePathGuard {
    fn check(&self, path: &Path, access: PathAccess) -> Option<String> {
        match access {
            PathAccess::Read => self.never_read(path),
            PathAccess::Write => self.never_written(path),
        }
    }
}
