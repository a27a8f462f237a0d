//! The command-safety gate: decides whether a shell command given to the `exec` tool may run.
//!
//! A regex list is never the boundary here. The command is parsed with tree-sitter-bash; a
//! parse error is a `Forbid`, never a fallback to allow. Every simple command, wherever it sits
//! (pipelines, lists, subshells, `$(…)` and backticks in any position, process substitution,
//! here-strings and heredocs fed to shells, function bodies, loops, `if`/`case` bodies), is
//! unwrapped through its wrappers (`sudo`, `env`, `timeout`, `xargs`, `busybox`, `sh -c '…'`
//! re-parsed recursively, …) and classified. Dynamic command positions are never `Allow`, and
//! every file path a command reads or writes is resolved (`~`, `$HOME`, the working directory,
//! `..`, `//`, braces and globs) and judged by the runtime's one path guard,
//! [`ProtectedPaths`], the same set the path-protection gate uses.
//!
//! Layout, in the order a command flows through it:
//! - `parse`: tree-sitter parsing (one parser per thread) and the refusals before
//!   classification (syntax errors, size, re-parse depth, the sub-command limit);
//! - `walk`: every statement shape, the working directory (`cd`, narrowed along a `cd … &&`
//!   chain), pipelines; `redirect` parses redirections and gives a trailing one to the
//!   command bash gives it to; `model` holds the values the walk passes around; `word` turns
//!   words into text; `indirection` substitutes the values a script gave its variables (`c=rm;
//!   $c -rf /`);
//! - `unwrap` peels wrappers (`sudo`, `env`, `xargs`, `npx`, …), `shell` handles code in
//!   strings (`sh -c`, `eval`, `source`, here-strings) and `session` the multiplexers (`tmux
//!   new 'CMD'`, `screen -dm CMD`);
//! - `classify` sorts a program into its `family` and dispatches to `rules` (destruction,
//!   copies, trees), `signals` (kill, pkill, fuser), `network` (downloads, sockets,
//!   pipe-to-shell, `file://` URLs), `code` (interpreters, modules), `awksed` (awk and sed
//!   programs), `editors` (editor and debugger commands), `git` (config that runs commands,
//!   and the home's repository), `outputs` (output files hidden in options or operand
//!   positions: `sort -o`, `uniq IN OUT`, `rename`, `gunzip`; unpacking; HTTP servers of a
//!   directory) and `programs` (find, tar);
//! - `access` judges the paths a command touches through [`ProtectedPaths`], one path at a
//!   time or whole trees, using `paths` for the arithmetic and `options` for command lines;
//!   `written` remembers what the command itself creates (files it writes, downloads or
//!   decodes, links it makes), so running a generated script or reaching a protected file
//!   through a fresh link is judged as what it is.

mod access;
mod awksed;
mod classify;
mod code;
mod editors;
mod family;
mod git;
mod indirection;
mod model;
mod network;
mod options;
mod outputs;
mod parse;
mod paths;
mod programs;
mod redirect;
mod rules;
mod session;
mod shell;
mod signals;
mod unwrap;
mod walk;
mod word;
mod written;

#[cfg(test)]
#[path = "corpus_files_tests.rs"]
mod corpus_files_tests;
#[cfg(test)]
#[path = "corpus_tests.rs"]
mod corpus_tests;
#[cfg(test)]
#[path = "gate_tests.rs"]
mod gate_tests;

use std::path::Path;

use crate::policy::decision::{Decision, Verdict};
pub use crate::policy::path::PathAccess;
use crate::policy::path::ProtectedPaths;

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
    /// The working directory the command starts in; relative paths resolve against it.
    pub cwd: &'a Path,
    /// The runtime's own pid: signalling it is forbidden.
    pub runtime_pid: u32,
    /// More simple commands than this is a `Forbid` (see [`DEFAULT_MAX_SUBCOMMANDS`]).
    pub max_subcommands: usize,
    /// The protected set: the automaton's home, the user's home (what `~` and `$HOME`
    /// expand to), the runtime's binary, and the files no command may read or write.
    pub paths: &'a ProtectedPaths,
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
