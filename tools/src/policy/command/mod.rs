//! The command-safety gate: decides whether a shell command given to the `exec` tool may run.
//!
//! A regex list is never the boundary here. The command is parsed with tree-sitter-bash; a
//! parse error is a `Forbid`, never a fallback to allow. Every simple command, wherever it sits
//! (pipelines, lists, subshells, `$(…)` and backticks in any position, process substitution,
//! here-strings and heredocs fed to shells, function bodies, loops, `if`/`case` bodies), is
//! unwrapped through its wrappers (`sudo`, `env`, `timeout`, `xargs`, `busybox`, `sh -c '…'`
//! re-parsed recursively, …) and classified. Dynamic command positions are never `Allow`, and
//! every file path a command reads or writes is resolved (`~`, `$HOME`, the working directory,
//! `..`, `//`, braces and globs) and judged by a [`PathGuard`].
//!
//! Layout, in the order a command flows through it:
//! - `parse`: tree-sitter parsing and the refusals before classification (syntax errors,
//!   size, re-parse depth, the sub-command limit);
//! - `walk`: every statement shape, the working directory, pipelines; `model` holds the
//!   values it passes around; `word` turns words into text; `indirection` substitutes the
//!   values a script gave its variables (`c=rm; $c -rf /`);
//! - `unwrap` peels wrappers (`sudo`, `env`, `xargs`, …) and `shell` handles code in strings
//!   (`sh -c`, `eval`, `source`, here-strings);
//! - `classify` sorts a program into its `family` and dispatches to `rules` (destruction,
//!   copies, processes), `network` (downloads, sockets, pipe-to-shell), `code` (interpreters,
//!   awk, sed) and `programs` (find, git, tar);
//! - `access` judges the paths a command touches through the [`PathGuard`], using `paths`
//!   for the arithmetic and `options` for command lines; `guard` holds [`NamePathGuard`].

mod access;
mod classify;
mod code;
mod family;
mod guard;
mod indirection;
mod model;
mod network;
mod options;
mod parse;
mod paths;
mod programs;
mod rules;
mod shell;
mod unwrap;
mod walk;
mod word;

#[cfg(test)]
#[path = "corpus_tests.rs"]
mod corpus_tests;
#[cfg(test)]
#[path = "gate_tests.rs"]
mod gate_tests;

use std::path::Path;

pub use guard::NamePathGuard;

use crate::policy::decision::{Decision, Verdict};

/// The gate name every rule of this module is recorded under.
pub const GATE: &str = "command_safety";

/// The default limit on simple commands in one `exec` call.
pub const DEFAULT_MAX_SUBCOMMANDS: usize = 64;

/// How many times a command may nest re-parsed code (`sh -c`, `eval`, here-strings fed to a
/// shell, …) before the gate refuses to look further.
pub const MAX_REPARSE_DEPTH: usize = 8;

/// Where the check runs and what it protects.
#[derive(Clone, Copy)]
pub struct CommandContext<'a> {
    /// The automaton's home, e.g. `/root/.automaton`.
    pub home: &'a Path,
    /// The `$HOME` of the shell that will run the command: what `~` and `$HOME` expand to.
    pub user_home: &'a Path,
    /// The working directory the command starts in; relative paths resolve against it.
    pub cwd: &'a Path,
    /// The runtime's own pid: signalling it is forbidden.
    pub runtime_pid: u32,
    /// The runtime's binary: `pkill`/`killall` of its name is forbidden.
    pub runtime_exe: &'a Path,
    /// More simple commands than this is a `Forbid` (see [`DEFAULT_MAX_SUBCOMMANDS`]).
    pub max_subcommands: usize,
    /// Judges every file path a command reads or writes.
    pub paths: &'a dyn PathGuard,
}

/// How a command touches a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathAccess {
    /// The command reads the file's content (or copies, encodes or uploads it).
    Read,
    /// The command creates, modifies, moves, deletes or changes the metadata of the file.
    Write,
}

/// Judges the paths a command touches. Implemented by the path-protection gate (by inode);
/// [`NamePathGuard`] is a name-based implementation.
pub trait PathGuard {
    /// Returns why `path` (absolute and lexically normalised) must not be accessed as
    /// `access`, or `None` when it may.
    fn check(&self, path: &Path, access: PathAccess) -> Option<String>;
}

/// Classifies `command` for the `exec` tool and returns every rule that matched, recorded
/// under the gate [`GATE`]. With no rule matched the verdict holds one `Allow` rule,
/// `static_command`.
pub fn check_command(command: &str, ctx: &CommandContext<'_>) -> Verdict {
    let mut checker = walk::Checker::new(ctx);
    checker.script(command, 0, true);
    let commands = checker.commands();
    let mut verdict = checker.finish();
    if verdict.rules.is_empty() {
        verdict.push(
            GATE,
            "static_command",
            Decision::Allow,
            format!("{commands} static simple command(s), none matched a rule"),
        );
    }
    verdict
}
