//! Path protection: files no tool may write, and files no tool may read.
//!
//! The set ([`ProtectedPaths`]) is the one path guard of the runtime: the path gate judges
//! tool subjects with it and the command gate judges every path a shell command touches with
//! it. Never written: the constitution, wallet, state.db (and its journals), configuration,
//! SOUL.md, heartbeat schedule, the home's whole `.git/`, `.gitignore` and
//! `.gitattributes`, the runtime's binary, the user's login files, `~/.ssh/`,
//! `~/.gitconfig`, autostart and systemd user units, and the cron and at spools. Never read:
//! the wallet, `keys/`, `/proc/**/environ`, `/proc/**/mem` and credential-looking names
//! (`.env*`, `*.key`, `id_rsa*`, …).
//!
//! Paths are normalised (`..`, `//`), resolved through symlinks (including
//! `/proc/self/root`-style aliases), and compared by (device, inode) with the protected set,
//! so a hard link, a symlink or another spelling of wallet.json is still wallet.json. Names
//! with zero-width, bidi-control or NFKC-unstable characters (lookalikes) are refused outright.

use crate::policy::engine::{Gate, PolicyRequest};
use crate::policy::{Decision, Verdict};
use crate::tool::Subject;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use unicode_normalization::UnicodeNormalization;

/// How a tool or a command touches a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathAccess {
    /// The content is read (or copied, encoded, uploaded, served).
    Read,
    /// The file is created, modified, moved, deleted, or its metadata changed.
    Write,
}

/// One protected path and why.
#[derive(Debug, Clone)]
struct Protected {
    /// The path as configured, lexically normalised.
    path: PathBuf,
    /// The path with symlinks of its existing prefix resolved when the set was built.
    real: PathBuf,
    why: &'static str,
}

impl Protected {
    fn new(path: &Path, why: &'static str) -> Self {
        let path = normalize(path);
        let real = resolve(&path);
        Self { path, real, why }
    }

    /// Whether `dir` (normalised, and resolved) is this path or one of its ancestors.
    fn inside(&self, normal: &Path, resolved: &Path) -> bool {
        self.path.starts_with(normal) || self.real.starts_with(resolved)
    }
}

/// Why a login file of the user's home must not change.
const LOGIN_WHY: &str = "login and shell start-up files run code in every future shell";
/// Why the user's and the system's git configuration must not change.
const GITCONFIG_WHY: &str = "git configuration can make git run commands (hooks path, pagers, fsmonitor), including \
     the runtime's own commits";
/// Why schedulers' files must not change.
const CRON_WHY: &str = "scheduled jobs run code outside any tool call; use the heartbeat tools";

/// A path being judged, in the spellings it is compared by.
struct Target<'t> {
    normal: &'t Path,
    resolved: &'t Path,
    identity: Option<(u64, u64)>,
}

impl Target<'_> {
    /// The protected file of `set` this path is (by name, resolved name, or inode).
    fn same<'p>(
        &self,
        set: &'p [Protected],
        ids: Option<&[Option<(u64, u64)>]>,
    ) -> Option<&'p Protected> {
        set.iter().enumerate().find_map(|(i, p)| {
            let by_name =
                self.resolved == p.real || self.normal == p.path || self.resolved == p.path;
            let by_inode = self.identity.is_some()
                && ids.and_then(|ids| ids.get(i).copied().flatten()) == self.identity;
            (by_name || by_inode).then_some(p)
        })
    }

    /// The protected tree of `set` this path lies in.
    fn under<'p>(&self, set: &'p [Protected]) -> Option<&'p Protected> {
        set.iter()
            .find(|p| self.resolved.starts_with(&p.real) || self.normal.starts_with(&p.path))
    }
}

/// The protected set of one home: files no command or tool may write, files none may read,
/// and trees whose wholesale reading would leak credentials.
#[derive(Debug, Clone)]
pub struct ProtectedPaths {
    home: PathBuf,
    user_home: PathBuf,
    runtime_exe: PathBuf,
    never_write: Vec<Protected>,
    never_write_under: Vec<Protected>,
    never_read: Vec<Protected>,
    never_read_under: Vec<Protected>,
    secret_trees: Vec<Protected>,
}

/// The (device, inode) identities of the protected files, taken once so that many paths can
/// be judged against them cheaply (see [`ProtectedPaths::identities`]).
#[derive(Debug, Clone, Default)]
pub struct Identities {
    write: Vec<Option<(u64, u64)>>,
    read: Vec<Option<(u64, u64)>>,
}

impl ProtectedPaths {
    /// The protected set of the automaton home at `home`, for a user whose `$HOME` is
    /// `user_home` and a runtime whose binary is `runtime_exe`.
    pub fn for_home(home: &Path, user_home: &Path, runtime_exe: &Path) -> Self {
        let at = |name: &str, why| Protected::new(&home.join(name), why);
        let user = |name: &str, why| Protected::new(&user_home.join(name), why);
        let system = |path: &str, why| Protected::new(Path::new(path), why);
        let wallet_why = "wallet.json holds the private key; use the treasury tools to sign or pay";
        let db_why = "state.db is the audit record; it changes only through the runtime's tools";
        let mut never_write = vec![
            at(
                "constitution.md",
                "the constitution is immutable; propose changes to your creator instead",
            ),
            at("wallet.json", wallet_why),
            at("state.db", db_why),
            at("state.db-wal", db_why),
            at("state.db-shm", db_why),
            at("state.db-journal", db_why),
            at(
                "automaton.json",
                "automaton.json is the creator's configuration; it changes through the \
                 runtime's setup and config commands",
            ),
            at(
                "heartbeat.yml",
                "heartbeat.yml changes only through the modify_heartbeat tool",
            ),
            at("SOUL.md", "SOUL.md changes only through the soul tools"),
            at(
                "audit-head.json",
                "audit-head.json anchors the receipt chain for the creator's audit; only the runtime writes it",
            ),
            at(
                ".gitignore",
                "the home's .gitignore keeps the wallet and keys out of the home's history",
            ),
            at(
                ".gitattributes",
                "the home's .gitattributes selects filters and drivers for the runtime's commits",
            ),
            Protected::new(runtime_exe, "the runtime's own binary"),
            user(".gitconfig", GITCONFIG_WHY),
            system("/etc/gitconfig", GITCONFIG_WHY),
            system("/etc/crontab", CRON_WHY),
            system("/etc/anacrontab", CRON_WHY),
        ];
        for name in [
            ".bashrc",
            ".bash_profile",
            ".bash_login",
            ".bash_logout",
            ".profile",
            ".zshrc",
            ".zprofile",
            ".zshenv",
            ".zlogin",
            ".zlogout",
            ".pam_environment",
        ] {
            never_write.push(user(name, LOGIN_WHY));
        }
        let mut never_write_under = vec![
            at(
                ".git",
                "the home's git repository is the audit trail of state changes, and its config \
                 and hooks run code on every commit",
            ),
            user(".ssh", "~/.ssh controls who can log in to this machine"),
            user(
                ".config/autostart",
                "autostart entries run code at every login",
            ),
            user(
                ".config/systemd",
                "user units run code outside any tool call; use the heartbeat tools",
            ),
            user(".config/git", GITCONFIG_WHY),
            user(".config/fish", LOGIN_WHY),
        ];
        for path in [
            "/var/spool/cron",
            "/var/spool/at",
            "/var/spool/anacron",
            "/etc/cron.d",
            "/etc/cron.hourly",
            "/etc/cron.daily",
            "/etc/cron.weekly",
            "/etc/cron.monthly",
        ] {
            never_write_under.push(system(path, CRON_WHY));
        }
        let ssh_why = "~/.ssh holds private keys";
        Self {
            home: normalize(home),
            user_home: normalize(user_home),
            runtime_exe: normalize(runtime_exe),
            never_write,
            never_write_under,
            never_read: vec![at("wallet.json", wallet_why)],
            never_read_under: vec![at("keys", "keys/ holds provider API keys")],
            secret_trees: vec![
                user(".ssh", ssh_why),
                user(".gnupg", "~/.gnupg holds private keys"),
                user(".aws", "~/.aws holds cloud credentials"),
            ],
        }
    }

    /// Adds a directory nothing under which may be read, copied or written: another
    /// program's private state the agent reaches only through its tools (the local
    /// platform's admin token, database and releases).
    #[must_use]
    pub fn with_private_tree(mut self, dir: &Path, why: &'static str) -> Self {
        self.never_read_under.push(Protected::new(dir, why));
        self
    }

    /// The automaton's home.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The user's `$HOME`: what `~` means to the shell that runs commands.
    pub fn user_home(&self) -> &Path {
        &self.user_home
    }

    /// The runtime's binary.
    pub fn runtime_exe(&self) -> &Path {
        &self.runtime_exe
    }

    /// The identities of the protected files as they are now.
    pub fn identities(&self) -> Identities {
        let ids = |set: &[Protected]| set.iter().map(|p| file_id(&p.path)).collect();
        Identities {
            write: ids(&self.never_write),
            read: ids(&self.never_read),
        }
    }

    /// Why `path` (absolute) must not be accessed as `access`: `(rule, reason)`.
    pub fn violation(&self, path: &Path, access: PathAccess) -> Option<(&'static str, String)> {
        self.violation_in(path, access, None)
    }

    /// Why `path` must not be accessed as `access`, judged against `ids` (taken earlier with
    /// [`Self::identities`]) instead of looking every protected file up again.
    pub fn check(&self, path: &Path, access: PathAccess, ids: &Identities) -> Option<String> {
        self.violation_in(path, access, Some(ids))
            .map(|(_, reason)| reason)
    }

    fn violation_in(
        &self,
        path: &Path,
        access: PathAccess,
        ids: Option<&Identities>,
    ) -> Option<(&'static str, String)> {
        if let Some(reason) = suspicious_name(path) {
            return Some(("suspicious_name", reason));
        }
        let normal = normalize(path);
        let resolved = resolve(&normal);
        let identity = file_id(&resolved);
        let owned;
        let ids = match (identity, ids) {
            (None, _) => None,
            (Some(_), Some(ids)) => Some(ids),
            (Some(_), None) => {
                owned = self.identities();
                Some(&owned)
            }
        };
        let shown = path.display();
        let target = Target {
            normal: &normal,
            resolved: &resolved,
            identity,
        };
        if access == PathAccess::Write {
            let found = target
                .same(&self.never_write, ids.map(|i| i.write.as_slice()))
                .or_else(|| target.under(&self.never_write_under));
            if let Some(p) = found {
                return Some((
                    "protected_write",
                    format!("`{shown}` is protected from writes: {}", p.why),
                ));
            }
        }
        // Anything that may not be read may not be copied, moved or overwritten either.
        let secret = target
            .same(&self.never_read, ids.map(|i| i.read.as_slice()))
            .or_else(|| target.under(&self.never_read_under));
        if let Some(p) = secret {
            return Some(("secret_read", format!("`{shown}` is secret: {}", p.why)));
        }
        if let Some(reason) = proc_secret(&resolved).or_else(|| proc_secret(&normal)) {
            return Some(("secret_read", format!("`{shown}` {reason}")));
        }
        if access == PathAccess::Read
            && let Some(reason) = secret_looking(&resolved).or_else(|| secret_looking(&normal))
        {
            return Some(("secret_read", format!("`{shown}` {reason}")));
        }
        None
    }

    /// Why acting on the whole tree at `dir` as `access` (deleting, moving, re-permissioning
    /// or copying into it for `Write`; copying, archiving, searching or serving it for
    /// `Read`) would reach a protected path: `dir` is one, lies inside one, or holds one.
    pub fn tree_violation(&self, dir: &Path, access: PathAccess) -> Option<String> {
        if let Some((_, reason)) = self.violation(dir, access) {
            return Some(reason);
        }
        let normal = normalize(dir);
        let resolved = resolve(&normal);
        let sets: &[&[Protected]] = match access {
            PathAccess::Write => &[
                &self.never_write,
                &self.never_write_under,
                &self.never_read,
                &self.never_read_under,
            ],
            PathAccess::Read => &[&self.never_read, &self.never_read_under, &self.secret_trees],
        };
        let held = sets
            .iter()
            .flat_map(|set| set.iter())
            .find(|p| p.inside(&normal, &resolved))?;
        Some(format!(
            "`{}` holds {}, which is protected: {}",
            dir.display(),
            held.path.display(),
            held.why
        ))
    }

    /// Why files whose names start with `prefix` (`split`'s output names) could be
    /// protected files.
    pub fn prefix_violation(&self, prefix: &Path) -> Option<String> {
        let normal = normalize(prefix);
        let (dir, start) = (normal.parent()?, normal.file_name()?.to_string_lossy());
        let resolved = resolve(dir);
        let sets = [&self.never_write, &self.never_read];
        let held = sets.iter().flat_map(|set| set.iter()).find(|p| {
            let parent_matches = p.path.parent() == Some(dir) || p.real.parent() == Some(&resolved);
            parent_matches
                && p.path
                    .file_name()
                    .is_some_and(|name| name.to_string_lossy().starts_with(start.as_ref()))
        })?;
        Some(format!(
            "output files named `{}…` may be {}, which is protected: {}",
            prefix.display(),
            held.path.display(),
            held.why
        ))
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

/// Process memory and environments under `/proc` (any depth: `/proc/1/task/1/environ`).
fn proc_secret(path: &Path) -> Option<String> {
    if !path.starts_with("/proc") {
        return None;
    }
    match path.file_name()?.to_str()? {
        "environ" => Some("holds a process's environment, which may carry credentials".to_owned()),
        "mem" | "kcore" => Some("is process or kernel memory, which holds secrets".to_owned()),
        _ => None,
    }
}

/// Names that usually hold credentials.
fn secret_looking(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_string_lossy().to_lowercase();
    let secret = name == "wallet.json"
        || name.starts_with(".env")
        || name.ends_with(".key")
        || name.ends_with(".pem")
        || name.ends_with(".p12")
        || name.ends_with(".keystore")
        || name.starts_with("keystore")
        || ["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"]
            .iter()
            .any(|key| name.starts_with(key))
        || name == "api-key"
        || name == ".netrc"
        || name == ".pgpass"
        || name.starts_with("credential")
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
                Subject::ReadTree(dir) => {
                    if let Some(reason) = self.paths.tree_violation(dir, PathAccess::Read) {
                        verdict.push(self.name(), "secret_read", Decision::Forbid, reason);
                    }
                    continue;
                }
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
