//! Judging the files a command touches: every path word is expanded (braces, globs against
//! the real filesystem), resolved against each candidate working directory, and handed to
//! [`ProtectedPaths`](crate::policy::path::ProtectedPaths) (through the links the command
//! itself creates); redirections, raw devices, `/dev/tcp`, system trees, "destroy the home"
//! targets and whole trees that hold protected files are judged here too.

use std::path::{Path, PathBuf};

use super::PathAccess;
use super::model::{Cmd, RedirectKind};
use super::paths::{
    EXPANSION_CAP, destroys, escape, expand_braces, glob, glob_dir, has_glob, is_net_device,
    is_raw_device, is_system_path, normalize, resolve, unescape,
};
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

impl Checker<'_, '_> {
    /// The absolute paths a word may name, with each brace alternative and glob match.
    pub fn word_paths(&self, word: &Word) -> Vec<PathBuf> {
        if !word.globby {
            let text = self.tilde(&word.text, false);
            return self
                .cwd
                .dirs
                .iter()
                .map(|dir| resolve(&text, dir))
                .collect();
        }
        let mut out = Vec::new();
        for pattern in expand_braces(&word.pattern, EXPANSION_CAP) {
            for base in self.bases(&pattern) {
                if has_glob(&base) {
                    out.extend(glob(&base, EXPANSION_CAP));
                } else {
                    out.push(normalize(Path::new(&unescape(&base))));
                }
                if out.len() >= EXPANSION_CAP {
                    return out;
                }
            }
        }
        out
    }

    /// An absolute pattern for each candidate working directory.
    fn bases(&self, pattern: &str) -> Vec<String> {
        let pattern = self.tilde(pattern, true);
        if pattern.starts_with('/') {
            return vec![pattern.to_owned()];
        }
        self.cwd
            .dirs
            .iter()
            .map(|dir| format!("{}/{pattern}", escape(&dir.to_string_lossy())))
            .collect()
    }

    /// A leading `~` left in a word (after `=` in `of=~/x`, or from an option value) is
    /// taken as the user's home: bash expands it there too, and guessing wider is safe.
    fn tilde(&self, text: &str, pattern: bool) -> String {
        match text.strip_prefix('~') {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => {
                let home = self.ctx.paths.user_home().to_string_lossy();
                let home = if pattern {
                    escape(&home)
                } else {
                    home.into_owned()
                };
                format!("{home}{rest}")
            }
            _ => text.to_owned(),
        }
    }

    /// A relative path while the working directory is unknown cannot be judged.
    fn unknown_cwd(&mut self, word: &Word, text: &str) {
        if self.cwd.unknown && !word.text.starts_with('/') {
            self.rule(
                "unknown_cwd",
                Decision::Prompt,
                format!(
                    "`{text}` uses the relative path `{}` after a `cd` the gate could not \
                     follow; use absolute paths",
                    word.text
                ),
            );
        }
    }

    /// Judges a path the command reads. `strict` commands (those that print, copy, encode or
    /// upload file content) may not read a path the gate cannot evaluate.
    pub fn check_read(&mut self, word: &Word, strict: bool, text: &str) {
        if word.procsub {
            return;
        }
        if strict && word.dynamic {
            self.rule(
                "dynamic_argument",
                Decision::Prompt,
                format!(
                    "`{text}` reads `{}`, a path built from an expansion the gate cannot \
                     evaluate; spell the path out",
                    word.text
                ),
            );
        }
        if strict {
            self.unknown_cwd(word, text);
        }
        for path in self.word_paths(word) {
            if is_net_device(&path) {
                self.reverse_shell(text);
            } else if let Some(reason) = self.guard(&path, PathAccess::Read) {
                self.rule(
                    "read_protected_path",
                    Decision::Forbid,
                    format!("`{text}` reads {}: {reason}", path.display()),
                );
                // One forbidden match is enough (a glob may name hundreds).
                return;
            }
        }
    }

    /// Why `path` must not be accessed as `access`, directly or through a link this command
    /// created.
    pub fn guard(&self, path: &Path, access: PathAccess) -> Option<String> {
        let ids = self.ids.get_or_init(|| self.ctx.paths.identities());
        self.aliases(path).into_iter().find_map(|alias| {
            let reason = self.ctx.paths.check(&alias, access, ids)?;
            Some(if alias == path {
                reason
            } else {
                format!(
                    "it is a link this command creates to {}: {reason}",
                    alias.display()
                )
            })
        })
    }

    /// Why acting on the whole tree at `dir` as `access` reaches protected files.
    pub fn guard_tree(&self, dir: &Path, access: PathAccess) -> Option<String> {
        self.aliases(dir)
            .into_iter()
            .find_map(|alias| self.ctx.paths.tree_violation(&alias, access))
    }

    /// Why `path` is protected for reading or for writing, if it is: for code and patterns
    /// the gate cannot tell which of the two they will do.
    pub fn protected(&self, path: &Path) -> Option<String> {
        self.guard(path, PathAccess::Read)
            .or_else(|| self.guard(path, PathAccess::Write))
    }

    /// Judges a path the command creates, changes, moves or deletes.
    pub fn check_write(&mut self, word: &Word, text: &str) {
        if word.procsub {
            return;
        }
        if word.dynamic {
            self.rule(
                "dynamic_write_target",
                Decision::Prompt,
                format!(
                    "`{text}` writes `{}`, a path built from an expansion the gate cannot \
                     evaluate; spell the path out",
                    word.text
                ),
            );
        }
        self.unknown_cwd(word, text);
        for path in self.word_paths(word) {
            if self.check_write_path(&path, text) {
                return;
            }
        }
    }

    /// Judges one resolved path the command writes; `true` when it is forbidden.
    pub fn check_write_path(&mut self, path: &Path, text: &str) -> bool {
        let shown = path.display();
        if is_net_device(path) {
            self.reverse_shell(text);
        } else if is_raw_device(path) {
            self.rule(
                "raw_device_write",
                Decision::Forbid,
                format!(
                    "`{text}` writes the raw device {shown}, destroying its filesystem; write \
                     to a regular file instead"
                ),
            );
        } else if path == Path::new("/proc/sysrq-trigger") {
            self.rule(
                "system_shutdown",
                Decision::Forbid,
                format!("`{text}` writes {shown}, which can reboot or halt the machine"),
            );
        } else if let Some(reason) = self.guard(path, PathAccess::Write) {
            self.rule(
                "write_protected_path",
                Decision::Forbid,
                format!("`{text}` writes {shown}: {reason}"),
            );
        } else {
            if is_system_path(path) {
                self.rule(
                    "system_path_write",
                    Decision::Prompt,
                    format!(
                        "`{text}` changes the system file {shown}; keep changes inside your \
                         project or home"
                    ),
                );
            }
            return false;
        }
        true
    }

    /// Judges a copy/move/link destination: the destination itself, and the file each
    /// source would become inside it if it is a directory.
    pub fn check_destination(&mut self, dest: &Word, sources: &[Word], text: &str) {
        self.check_write(dest, text);
        if dest.dynamic {
            return;
        }
        for dir in self.word_paths(dest) {
            for source in sources.iter().filter(|s| !s.dynamic) {
                for path in self.word_paths(source) {
                    if let Some(name) = path.file_name() {
                        let _ = self.check_write_path(&dir.join(name), text);
                    }
                }
            }
        }
    }

    /// Forbids deleting, moving or recursively changing the root, system directories, the
    /// home or their ancestors. `advice` says what to do instead.
    pub fn check_destroy(&mut self, word: &Word, rule: &str, verb: &str, advice: &str, text: &str) {
        let patterns = if word.globby {
            expand_braces(&word.pattern, EXPANSION_CAP)
        } else {
            vec![escape(&word.text)]
        };
        for pattern in patterns {
            for base in self.bases(&pattern) {
                let found = if word.globby && has_glob(&base) {
                    destroys(
                        &glob_dir(&base),
                        self.ctx.paths.home(),
                        self.ctx.paths.user_home(),
                        true,
                    )
                } else {
                    let path = normalize(Path::new(&unescape(&base)));
                    destroys(
                        &path,
                        self.ctx.paths.home(),
                        self.ctx.paths.user_home(),
                        false,
                    )
                };
                if let Some(what) = found {
                    self.rule(
                        rule,
                        Decision::Forbid,
                        format!("`{text}` would {verb} {what}; {advice}"),
                    );
                    return;
                }
            }
        }
    }

    /// Forbids acting on a whole tree that holds protected files: reading it (copying,
    /// archiving, searching, serving: `verb`) for `Read`, deleting, moving, re-permissioning
    /// or copying into it for `Write`. Relative to the home's own files, not to the home: the
    /// workspace inside the home holds none, so `rm -rf build` there is fine.
    pub fn check_tree(
        &mut self,
        word: &Word,
        access: PathAccess,
        rule: &str,
        verb: &str,
        text: &str,
    ) {
        if word.dynamic || word.procsub {
            return;
        }
        let found = self.word_paths(word).into_iter().find_map(|path| {
            let reason = self.guard_tree(&path, access)?;
            Some((path, reason))
        });
        if let Some((path, reason)) = found {
            let advice = match access {
                PathAccess::Read => "name the specific files or subdirectories you need",
                PathAccess::Write => "act on the specific files of your project instead",
            };
            self.rule(
                rule,
                Decision::Forbid,
                format!("`{text}` {verb} {}: {reason}; {advice}", path.display()),
            );
        }
    }

    /// Forbids reading a whole tree that holds secrets (the home's wallet and keys, `~/.ssh`).
    pub fn check_home_tree(&mut self, word: &Word, verb: &str, text: &str) {
        self.check_tree(word, PathAccess::Read, "copy_key_material", verb, text);
    }

    /// Records a reverse-shell match.
    pub fn reverse_shell(&mut self, text: &str) {
        self.rule(
            "reverse_shell",
            Decision::Forbid,
            format!(
                "`{text}` connects a shell or a raw socket to the network (a reverse shell); \
                 use curl or the platform tools for network access"
            ),
        );
    }

    /// Judges every redirection of a command.
    pub fn check_redirects(&mut self, cmd: &Cmd) {
        for redirect in &cmd.redirects {
            match redirect.kind {
                RedirectKind::Read => self.check_read(&redirect.target, true, &cmd.text),
                RedirectKind::Write => self.check_write(&redirect.target, &cmd.text),
                RedirectKind::Duplicate | RedirectKind::HereString | RedirectKind::HereDoc => {}
            }
        }
    }
}
