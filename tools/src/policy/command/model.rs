//! The values the walk passes around: what a statement does for pipelines ([`Facts`]),
//! where a node's text lives ([`Src`]), the candidate working directories ([`Cwd`]), and a
//! simple command with its words and redirections ([`Cmd`], [`Redirect`]).

use std::path::PathBuf;

use tree_sitter::Node;

use super::word::Word;

/// What a command (or a statement) does, as far as pipelines care.
#[derive(Debug, Clone, Default)]
pub(super) struct Facts {
    /// Simple commands behind these facts.
    pub commands: usize,
    /// Writes data fetched from the network to stdout.
    pub downloads: bool,
    /// Decodes or de-obfuscates its input (base64 -d, xxd -r, gunzip, rev, tr, …).
    pub decodes: bool,
    /// Talks to the network (nc, socat, telnet, openssl s_client, /dev/tcp).
    pub network: bool,
    /// Runs what arrives on stdin as code (a shell or interpreter with no script).
    pub runs_stdin: bool,
    /// Has a command name the gate could not evaluate.
    pub dynamic_command: bool,
    /// The static text a lone `echo`/`printf`/`cat <<EOF` writes to stdout.
    pub emits: Option<String>,
}

impl Facts {
    /// Combines the facts of two statements.
    pub fn union(&mut self, other: Facts) {
        self.emits = if self.commands > 0 && other.commands > 0 {
            None
        } else {
            self.emits.take().or(other.emits)
        };
        self.commands += other.commands;
        self.downloads |= other.downloads;
        self.decodes |= other.decodes;
        self.network |= other.network;
        self.runs_stdin |= other.runs_stdin;
        self.dynamic_command |= other.dynamic_command;
    }
}

/// The source a node belongs to, and how many re-parses deep it is.
#[derive(Clone, Copy)]
pub(super) struct Src<'s> {
    /// The text the tree was parsed from.
    pub text: &'s str,
    /// 0 for the command itself, +1 for every `sh -c`, `eval`, here-string, … re-parse.
    pub depth: usize,
    /// Whether its simple commands count against the limit (re-parses made only for
    /// analysis, such as substituted variable values, do not).
    pub counted: bool,
}

impl<'s> Src<'s> {
    /// The source text of `node`.
    pub fn of(&self, node: Node<'_>) -> &'s str {
        self.text.get(node.byte_range()).unwrap_or_default()
    }
}

/// The candidate working directories at a point of the script.
#[derive(Debug, Clone)]
pub(super) struct Cwd {
    /// Every directory the shell may be in.
    pub dirs: Vec<PathBuf>,
    /// A `cd` the gate could not follow happened.
    pub unknown: bool,
}

/// How a redirection uses its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RedirectKind {
    /// `< file`.
    Read,
    /// `> file`, `>> file`, `&> file`, `>| file`, `<> file`.
    Write,
    /// `2>&1`, `<&0`, `>&-`: no file involved.
    Duplicate,
    /// `<<< word`: the target is the text.
    HereString,
    /// `<<EOF … EOF`: the target is the body.
    HereDoc,
}

/// One redirection of a command.
#[derive(Debug, Clone)]
pub(super) struct Redirect {
    /// How the target is used.
    pub kind: RedirectKind,
    /// The file, or the text of a here-string/heredoc.
    pub target: Word,
    /// The descriptor redirected (`2` in `2>f`); `None` means the default.
    pub fd: Option<u32>,
}

/// A simple command, its words parsed.
#[derive(Debug, Clone, Default)]
pub(super) struct Cmd {
    /// `NAME=value` prefixes.
    pub assigns: Vec<(String, Word)>,
    /// The command word and its arguments.
    pub argv: Vec<Word>,
    /// Its redirections, including those of an enclosing redirected statement.
    pub redirects: Vec<Redirect>,
    /// The source, shortened, for reasons.
    pub text: String,
}

impl Cmd {
    /// The here-string or heredoc text fed to the command's stdin, if any.
    pub fn stdin_text(&self) -> Option<&Word> {
        self.redirects
            .iter()
            .rev()
            .find(|r| {
                matches!(r.kind, RedirectKind::HereString | RedirectKind::HereDoc)
                    && r.fd.is_none_or(|fd| fd == 0)
            })
            .map(|r| &r.target)
    }

    /// The file the command's stdin is redirected from, if any.
    pub fn stdin_file(&self) -> Option<&Word> {
        self.redirects
            .iter()
            .rev()
            .find(|r| r.kind == RedirectKind::Read && r.fd.is_none_or(|fd| fd == 0))
            .map(|r| &r.target)
    }
}
