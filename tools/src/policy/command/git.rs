//! `git`: config keys and subcommands that make git run commands (`-c core.pager=…`, `ext::`
//! transports, `rebase --exec`), files its subcommands write (`checkout -- FILE`, `log
//! --output=FILE`), and which repository a command operates on. The automaton home's
//! repository is its audit trail: any git command that would change it (`git -C .. reset
//! --hard`, `git --git-dir=../.git update-ref -d HEAD`, or a plain `git commit` in a
//! workspace that is not a repository of its own) is forbidden; only read-only subcommands
//! (`status`, `log`, `diff`, `show`, …) may touch it. The same holds for a work tree that
//! holds protected files (`git --work-tree=.. checkout`).

use std::path::{Path, PathBuf};

use super::PathAccess;
use super::model::Cmd;
use super::options::{self, Spec};
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

/// Git configuration keys whose value is a command git runs.
const GIT_COMMAND_KEYS: &[&str] = &[
    "core.pager",
    "core.sshcommand",
    "core.editor",
    "core.hookspath",
    "core.fsmonitor",
    "core.askpass",
    "core.gitproxy",
    "core.alternaterefscommand",
    "core.worktree",
    "sequence.editor",
    "diff.external",
    "uploadpack.packobjectshook",
    "web.browser",
    "gpg.program",
    "interactive.difffilter",
    "init.templatedir",
    "credential.helper",
];

/// Key prefixes whose sub-keys run commands (aliases with `!`, filters, drivers, tools).
const GIT_COMMAND_PREFIXES: &[&str] = &[
    "alias.",
    "filter.",
    "diff.",
    "merge.",
    "difftool.",
    "mergetool.",
    "credential.",
    "include",
    "pager.",
    "remote.",
    "protocol.",
    "gpg.",
    "man.",
    "url.",
];

/// Subcommands that never change the repository.
const READ_ONLY: &[&str] = &[
    "",
    "status",
    "log",
    "diff",
    "show",
    "blame",
    "annotate",
    "grep",
    "ls-files",
    "ls-tree",
    "ls-remote",
    "rev-parse",
    "rev-list",
    "cat-file",
    "describe",
    "shortlog",
    "whatchanged",
    "diff-tree",
    "diff-files",
    "diff-index",
    "merge-base",
    "name-rev",
    "for-each-ref",
    "show-ref",
    "show-branch",
    "count-objects",
    "check-ignore",
    "check-attr",
    "check-ref-format",
    "var",
    "cherry",
    "range-diff",
    "help",
    "version",
    "verify-commit",
    "verify-tag",
    "format-patch",
    "archive",
];

/// Whether `git SUB REST…` only reads the repository.
fn read_only(sub: &str, rest: &[Word]) -> bool {
    if READ_ONLY.contains(&sub) || sub.starts_with("--") {
        return true;
    }
    let words: Vec<&str> = rest.iter().map(|w| w.text.as_str()).collect();
    let first = words.first().copied().unwrap_or_default();
    match sub {
        "branch" => words.iter().all(|w| {
            matches!(
                *w,
                "-a" | "-r"
                    | "-l"
                    | "-v"
                    | "-vv"
                    | "--all"
                    | "--list"
                    | "--remotes"
                    | "--verbose"
                    | "--show-current"
                    | "--no-color"
            ) || [
                "--format=",
                "--sort=",
                "--color",
                "--contains",
                "--merged",
                "--no-merged",
            ]
            .iter()
            .any(|p| w.starts_with(p))
        }),
        "tag" => words.is_empty() || matches!(first, "-l" | "--list" | "-n"),
        "remote" => words.is_empty() || matches!(first, "-v" | "--verbose" | "show" | "get-url"),
        "stash" | "notes" => matches!(first, "list" | "show") || sub == "notes" && words.is_empty(),
        "reflog" => words.is_empty() || first == "show",
        "worktree" => first == "list",
        "submodule" => words.is_empty() || first == "status",
        "config" => words.iter().any(|w| {
            matches!(
                *w,
                "--get" | "--get-all" | "--get-regexp" | "--get-urlmatch" | "--list" | "-l"
            )
        }),
        _ => false,
    }
}

impl Checker<'_, '_> {
    /// `git`: its global options, the subcommand's effects, and the repository it changes.
    pub fn git(&mut self, args: &[Word], cmd: &Cmd) {
        let text = cmd.text.as_str();
        let saved = self.cwd.clone();
        let env = |name: &str| {
            cmd.assigns
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, w)| w.clone())
        };
        let (mut git_dir, mut work_tree) = (env("GIT_DIR"), env("GIT_WORK_TREE"));
        let mut i = 0;
        while let Some(word) = args.get(i) {
            let arg = word.text.as_str();
            let value = args.get(i + 1).cloned();
            match arg {
                _ if word.dynamic => break,
                "-c" => {
                    if let Some(pair) = &value {
                        self.git_config(&pair.text, pair.dynamic, text);
                    }
                    i += 2;
                }
                "-C" => {
                    if let Some(dir) = &value {
                        self.git_chdir(dir);
                    }
                    i += 2;
                }
                "--git-dir" | "--work-tree" => {
                    if arg == "--git-dir" {
                        git_dir = value;
                    } else {
                        work_tree = value;
                    }
                    i += 2;
                }
                "--namespace" | "--config-env" | "--exec-path" => {
                    if arg == "--config-env" {
                        self.git_config("", true, text);
                    }
                    i += 2;
                }
                _ if arg.starts_with("--git-dir=") => {
                    git_dir = Some(word.tail("--git-dir=".len()));
                    i += 1;
                }
                _ if arg.starts_with("--work-tree=") => {
                    work_tree = Some(word.tail("--work-tree=".len()));
                    i += 1;
                }
                _ if arg.starts_with("--config-env=") || arg.starts_with("--exec-path=") => {
                    self.git_config("", true, text);
                    i += 1;
                }
                _ if arg.starts_with('-') => i += 1,
                _ => break,
            }
        }
        let sub_word = args.get(i);
        let sub = sub_word.map(|w| w.text.as_str()).unwrap_or_default();
        let rest = args.get(i + 1..).unwrap_or_default();
        if sub_word.is_some_and(|w| w.dynamic) {
            self.rule(
                "git_dynamic_subcommand",
                Decision::Prompt,
                format!("`{text}`: the git subcommand comes from an expansion; spell it out"),
            );
        }
        self.git_effects(sub, rest, text);
        match sub {
            "init" => self.git_init(rest, text),
            "clone" => {}
            _ if read_only(sub, rest) => {}
            _ => self.git_repository_write(sub, git_dir.as_ref(), work_tree.as_ref(), text),
        }
        self.cwd = saved;
    }

    /// `git -C DIR`: relative to the directory so far, for this git command only.
    fn git_chdir(&mut self, dir: &Word) {
        if dir.dynamic {
            self.cwd.unknown = true;
            return;
        }
        let dirs = self.word_paths(dir);
        if !dirs.is_empty() {
            self.cwd.dirs = dirs;
        }
    }

    /// Files the subcommand writes and commands it runs.
    fn git_effects(&mut self, sub: &str, rest: &[Word], text: &str) {
        if matches!(sub, "rm" | "mv" | "checkout" | "restore") {
            // These rewrite or delete the working-tree files they name.
            for word in options::parse(
                rest,
                &Spec {
                    short: "bBs",
                    long: &["--source"],
                },
                false,
            )
            .operands
            {
                self.check_write(&word, text);
            }
        }
        for (j, word) in rest.iter().enumerate() {
            let t = word.text.as_str();
            let output = if let Some(file) = t.strip_prefix("--output=") {
                Some(word.tail(word.text.len() - file.len()))
            } else if t == "--output"
                || t == "--output-directory"
                || (t == "-o" && matches!(sub, "format-patch" | "archive"))
            {
                rest.get(j + 1).cloned()
            } else {
                None
            };
            if let Some(file) = output {
                self.check_write(&file, text);
                self.note_written_word(&file);
            }
        }
        if sub == "bundle"
            && rest.first().is_some_and(|w| w.text == "create")
            && let Some(file) = rest.get(1)
        {
            self.check_write(file, text);
        }
        if sub == "config" {
            let operands = options::parse(
                rest,
                &Spec {
                    short: "f",
                    long: &["--file", "--blob", "--type", "--default"],
                },
                false,
            )
            .operands;
            if let (Some(key), Some(value)) = (operands.first(), operands.get(1)) {
                self.git_config(&format!("{}={}", key.text, value.text), key.dynamic, text);
            }
        }
        let runs = rest.iter().any(|w| {
            let t = w.text.as_str();
            t.starts_with("ext::")
                || t.starts_with("--upload-pack")
                || t.starts_with("--receive-pack")
                || t.starts_with("--exec=")
                || (matches!(sub, "rebase") && (t == "-x" || t.starts_with("--exec")))
                || (sub == "filter-branch" && t.ends_with("-filter"))
                || (sub == "grep" && (t.starts_with("-O") || t.starts_with("--open-files")))
        }) || (sub == "bisect" && rest.first().is_some_and(|w| w.text == "run"))
            || (sub == "submodule" && rest.iter().any(|w| w.text == "foreach"));
        if runs {
            self.rule(
                "git_runs_command",
                Decision::Prompt,
                format!("`{text}` makes git run another command; run that command directly"),
            );
        }
    }

    /// `git init [DIR]`: re-initialising the home's repository is forbidden; a new one is
    /// remembered, so later commands of this call operate on it, not on the home's.
    fn git_init(&mut self, rest: &[Word], text: &str) {
        let spec = Spec {
            short: "b",
            long: &[
                "--template",
                "--separate-git-dir",
                "--initial-branch",
                "--object-format",
                "--ref-format",
                "--shared",
            ],
        };
        let opts = options::parse(rest, &spec, false);
        for dir in opts.values_of(' ', &["--separate-git-dir"]) {
            self.check_write(dir, text);
        }
        let dirs = match opts.operands.first() {
            Some(dir) if dir.dynamic => {
                self.check_write(dir, text);
                Vec::new()
            }
            Some(dir) => self.word_paths(dir),
            None => self.cwd.dirs.clone(),
        };
        for dir in dirs {
            let reason = self.guard(&dir.join(".git"), PathAccess::Write);
            match reason {
                Some(reason) => self.rule(
                    "home_repository_write",
                    Decision::Forbid,
                    format!("`{text}` re-initialises a protected repository: {reason}"),
                ),
                None => {
                    if self.repos.len() < 16 && !self.repos.contains(&dir) {
                        self.repos.push(dir);
                    }
                }
            }
        }
    }

    /// A subcommand that changes the repository: forbidden on the home's repository or on a
    /// work tree that holds protected files.
    fn git_repository_write(
        &mut self,
        sub: &str,
        git_dir: Option<&Word>,
        work_tree: Option<&Word>,
        text: &str,
    ) {
        let explicit: Vec<&Word> = git_dir.into_iter().chain(work_tree).collect();
        if explicit.iter().any(|w| w.dynamic) || git_dir.is_none() && self.cwd.unknown {
            self.rule(
                "git_unknown_repository",
                Decision::Prompt,
                format!(
                    "`{text}` changes a git repository the gate cannot locate; run it from the \
                     project directory without dynamic paths"
                ),
            );
        }
        let mut reasons = Vec::new();
        match git_dir.filter(|w| !w.dynamic) {
            Some(dir) => {
                for path in self.word_paths(dir) {
                    reasons.extend(self.guard(&path, PathAccess::Write));
                }
            }
            None => {
                let dirs: Vec<PathBuf> = self
                    .cwd
                    .dirs
                    .iter()
                    .flat_map(|dir| self.aliases(dir))
                    .collect();
                for dir in dirs {
                    if let Some((git, tree)) = self.repository_of(&dir) {
                        reasons.extend(self.guard(&git, PathAccess::Write));
                        if work_tree.is_none()
                            && let Some(tree) = tree
                        {
                            reasons.extend(self.guard_tree(&tree, PathAccess::Write));
                        }
                    }
                }
            }
        }
        if let Some(tree) = work_tree.filter(|w| !w.dynamic) {
            for path in self.word_paths(tree) {
                reasons.extend(self.guard_tree(&path, PathAccess::Write));
            }
        }
        if let Some(reason) = reasons.into_iter().next() {
            self.rule(
                "home_repository_write",
                Decision::Forbid,
                format!(
                    "`{text}` runs `git {sub}`, which changes the automaton home's repository \
                     or a work tree that holds protected files ({reason}); only read-only git \
                     commands (status, log, diff, show) may touch it. For your own project, \
                     `git init` a directory inside the workspace and work there"
                ),
            );
        }
    }

    /// The repository git finds from `dir`: `(git directory, work tree)`, looking upward as
    /// git does and counting repositories this command initialised.
    fn repository_of(&self, dir: &Path) -> Option<(PathBuf, Option<PathBuf>)> {
        for ancestor in dir.ancestors() {
            let dot_git = ancestor.join(".git");
            if self.repos.iter().any(|r| r == ancestor) || dot_git.exists() {
                return Some((dot_git, Some(ancestor.to_owned())));
            }
            let bare = ancestor.file_name().is_some_and(|n| n == ".git")
                || ancestor.join("HEAD").is_file() && ancestor.join("objects").is_dir();
            if bare {
                return Some((ancestor.to_owned(), None));
            }
        }
        None
    }

    fn git_config(&mut self, pair: &str, dynamic: bool, text: &str) {
        let key = pair
            .split('=')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let runs = dynamic
            || GIT_COMMAND_KEYS.contains(&key.as_str())
            || GIT_COMMAND_PREFIXES.iter().any(|p| key.starts_with(p));
        if runs {
            self.rule(
                "git_config_exec",
                Decision::Prompt,
                format!(
                    "`{text}` sets git config `{key}`, which makes git run a command; run git \
                     without it"
                ),
            );
        }
    }
}
