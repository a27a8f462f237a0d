//! Path protection: files no tool may write, and files no tool may read.
//!
//! Paths are normalised (`..`, `//`), resolved through symlinks (including
//! `/proc/self/root`-style aliases), and compared by (device, inode) with the protected set,
//! so a hard link, a symlink or another spelling of wallet.json is still wallet.json. Names
//! with zero-width, bidi-control or NFKC-unstable characters (lookalikes) are refused outright.

use crate::policy::command::{PathAccess, PathGuard};
use crate::policy::engine::{Gate, PolicyRequest};
use crate::policy::{Decision, Verdict};
use crate::tool::Subject;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use unicode_normalization::UnicodeNormalization;

/// One protected file and why.
#[derive(Debug, Clone)]
struct Protected {
    path: PathBuf,
    why: &'static str,
}

/// The protected set of one home.
#[derive(Debug, Clone)]
pub struct ProtectedPaths {
    never_write: Vec<Protected>,
    never_write_under: Vec<Protected>,
    never_read: Vec<Protected>,
    never_read_under: Vec<Protected>,
}

impl ProtectedPaths {
    /// The protected set of the home at `home`, for a runtime whose binary is `runtime_exe`.
    pub fn for_home(home: &Path, runtime_exe: &Path) -> Self {
        let file = |name: &str, why: &'static str| Protected {
            path: home.join(name),
            why,
        };
        let wallet_why = "wallet.json holds the private key";
        let db_why = "state.db is the audit record; only the runtime writes it";
        Self {
            never_write: vec![
                file("constitution.md", "the constitution is immutable"),
                file("wallet.json", wallet_why),
                file("state.db", db_why),
                file("state.db-wal", db_why),
                file("state.db-shm", db_why),
                file(
                    "automaton.json",
                    "automaton.json is the creator's configuration",
                ),
                file(
                    "heartbeat.yml",
                    "heartbeat.yml changes only through the modify_heartbeat tool",
                ),
                file(
                    "SOUL.md",
                    "SOUL.md changes only through the update_soul tool",
                ),
                Protected {
                    path: runtime_exe.to_owned(),
                    why: "the runtime's own binary",
                },
            ],
            never_write_under: vec![Protected {
                path: home.join(".git/hooks"),
                why: "git hooks of the home would run code on every commit",
            }],
            never_read: vec![file("wallet.json", wallet_why)],
            never_read_under: vec![Protected {
                path: home.join("keys"),
                why: "keys/ holds provider API keys",
            }],
        }
    }

    /// Why `path` (absolute) must not be accessed as `access`: `(rule, reason)`.
    pub fn violation(&self, path: &Path, access: PathAccess) -> Option<(&'static str, String)> {
        if let Some(reason) = suspicious_name(path) {
            return Some(("suspicious_name", reason));
        }
        let normal = normalize(path);
        let resolved = resolve(&normal);
        let identity = file_id(&resolved);
        let shown = path.display();
        let same = |protected: &Protected| {
            resolved == protected.path
                || normal == protected.path
                || identity.is_some() && identity == file_id(&protected.path)
        };
        let under = |protected: &Protected| {
            let root = resolve(&protected.path);
            resolved.starts_with(&root) || normal.starts_with(&protected.path)
        };
        if access == PathAccess::Write {
            if let Some(p) = self.never_write.iter().find(|p| same(p)) {
                return Some((
                    "protected_write",
                    format!("`{shown}` is protected from writes: {}", p.why),
                ));
            }
            if let Some(p) = self.never_write_under.iter().find(|p| under(p)) {
                return Some((
                    "protected_write",
                    format!("`{shown}` is protected from writes: {}", p.why),
                ));
            }
        }
        // Anything that may not be read may not be copied, moved or overwritten either.
        if let Some(p) = self.never_read.iter().find(|p| same(p)) {
            return Some(("secret_read", format!("`{shown}` is secret: {}", p.why)));
        }
        if let Some(p) = self.never_read_under.iter().find(|p| under(p)) {
            return Some(("secret_read", format!("`{shown}` is secret: {}", p.why)));
        }
        if access == PathAccess::Read
            && let Some(reason) = secret_looking(&resolved).or_else(|| secret_looking(&normal))
        {
            return Some(("secret_read", format!("`{shown}` {reason}")));
        }
        None
    }
}

impl PathGuard for ProtectedPaths {
    fn check(&self, path: &Path, access: PathAccess) -> Option<String> {
        self.violation(path, access).map(|(_, reason)| reason)
    }
}

/// Lexically normalises an absolute path: removes `.`, resolves `..`, collapses `//`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
        }
    }
    out
}

/// Resolves symlinks of the longest existing prefix, keeping the rest as written.
fn resolve(path: &Path) -> PathBuf {
    let mut existing = path.to_owned();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = std::fs::canonicalize(&existing) {
            let mut out = real;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return normalize(&out);
        }
        match (
            existing.file_name().map(|n| n.to_owned()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_owned();
            }
            _ => return path.to_owned(),
        }
    }
}

fn file_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Characters that make a name look like something it is not.
fn suspicious_name(path: &Path) -> Option<String> {
    let text = path.to_string_lossy();
    let invisible = |c: char| {
        matches!(c,
            '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}' | '\u{00AD}' | '\u{061C}')
    };
    if let Some(c) = text.chars().find(|c| invisible(*c)) {
        return Some(format!(
            "the path contains an invisible or direction-changing character (U+{:04X}); write the name plainly",
            c as u32
        ));
    }
    if text.nfkc().collect::<String>() != text {
        return Some(
            "the path contains lookalike characters (it changes under NFKC normalisation, e.g. fullwidth letters); write the name in plain characters"
                .to_owned(),
        );
    }
    None
}

/// Names that usually hold credentials.
fn secret_looking(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    let text = path.to_string_lossy();
    let parts: Vec<&str> = text.split('/').collect();
    if parts.len() == 4 && parts[1] == "proc" && parts[3] == "environ" {
        return Some("holds a process's environment, which may carry credentials".to_owned());
    }
    let secret = name == "wallet.json"
        || name == ".env"
        || name.starts_with(".env.")
        || name.ends_with(".key")
        || name.ends_with(".pem")
        || name.ends_with(".p12")
        || name.ends_with(".keystore")
        || name.starts_with("keystore")
        || name.starts_with("id_rsa")
        || name.starts_with("id_ecdsa")
        || name.starts_with("id_ed25519")
        || name == "api-key"
        || name == ".netrc"
        || name == ".pgpass"
        || name.starts_with("credentials")
        || name.contains("secret");
    secret.then(|| "looks like a credential file; its content never goes to the model".to_owned())
}

/// The path-protection gate: judges the files a call reads and writes.
#[derive(Debug, Clone)]
pub struct PathGate {
    paths: ProtectedPaths,
}

impl PathGate {
    /// A gate over `paths`.
    pub fn new(paths: ProtectedPaths) -> Self {
        Self { paths }
    }
}

impl Gate for PathGate {
    fn name(&self) -> &'static str {
        "path_protection"
    }

    fn check(&self, request: &PolicyRequest<'_>, verdict: &mut Verdict) {
        for subject in &request.assessment.subjects {
            let (path, access) = match subject {
                Subject::Read(path) => (path, PathAccess::Read),
                Subject::Write(path) => (path, PathAccess::Write),
                _ => continue,
            };
            if let Some((rule, reason)) = self.paths.violation(path, access) {
                verdict.push(self.name(), rule, Decision::Forbid, reason);
            }
        }
    }
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
