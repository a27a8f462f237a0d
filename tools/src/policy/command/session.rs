//! Terminal multiplexers: `tmux new -d 'CMD'`, `tmux run-shell 'CMD'`, `tmux send-keys 'CMD'
//! Enter`, `screen -dm CMD …`, `screen -X stuff 'CMD\n'`. Their command strings are shell
//! code (tmux hands a single string to `sh -c`), so they are parsed again like `sh -c`; a
//! command given as several words runs directly and is classified as it stands. Sessions
//! outlive the exec call, but what they run is judged like anything else.

use super::model::{Cmd, Facts, Src};
use super::options::{self, Spec};
use super::shell::joined;
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

/// Options of tmux commands that start a shell command, which take a value.
const TMUX_NEW: Spec = Spec {
    short: "cefFlnstxy",
    long: &[],
};
/// `display-popup`'s options that take a value.
const TMUX_POPUP: Spec = Spec {
    short: "bcdehsStTwxy",
    long: &[],
};
/// `run-shell`, `if-shell`, `pipe-pane`, `send-keys`: options that take a value.
const TMUX_RUN: Spec = Spec {
    short: "dtNc",
    long: &[],
};

/// Key names `send-keys` understands that are not text typed into the shell.
fn is_key_name(text: &str) -> bool {
    matches!(
        text,
        "Enter"
            | "Escape"
            | "Space"
            | "Tab"
            | "BSpace"
            | "Up"
            | "Down"
            | "Left"
            | "Right"
            | "C-m"
            | "C-j"
            | "C-c"
            | "C-d"
            | "C-z"
            | "C-l"
            | "KPEnter"
    )
}

impl Checker<'_, '_> {
    /// `tmux`/`byobu`: every command of the invocation (they chain with `;`).
    pub fn tmux(&mut self, cmd: &Cmd, at: usize, s: Src<'_>, facts: &mut Facts) {
        let args = &cmd.argv[at + 1..];
        let globals = options::parse(
            args,
            &Spec {
                short: "cfLST",
                long: &[],
            },
            true,
        );
        if let Some(code) = globals.values_of('c', &[]).next() {
            facts.union(self.shell_code(code, &[], s, &cmd.text));
        }
        if globals.values_of('f', &[]).next().is_some() {
            self.tmux_opaque(&cmd.text, "reads its commands from a configuration file");
        }
        let rest = &args[globals.end.min(args.len())..];
        for command in rest.split(|w| !w.dynamic && w.text == ";") {
            self.tmux_command(command, cmd, s, facts);
        }
    }

    fn tmux_command(&mut self, words: &[Word], cmd: &Cmd, s: Src<'_>, facts: &mut Facts) {
        let Some((name, args)) = words.split_first() else {
            return;
        };
        let text = &cmd.text;
        if name.dynamic {
            self.tmux_opaque(text, "runs a tmux command built from an expansion");
            return;
        }
        match name.text.as_str() {
            "new-session" | "new" | "new-window" | "neww" | "split-window" | "splitw"
            | "respawn-pane" | "respawnp" | "respawn-window" | "respawnw" | "display-popup"
            | "popup" => {
                let popup = matches!(name.text.as_str(), "display-popup" | "popup");
                let spec = if popup { &TMUX_POPUP } else { &TMUX_NEW };
                let opts = options::parse(args, spec, true);
                let command = &args[opts.end.min(args.len())..];
                self.session_command(command, cmd, s, facts);
            }
            "run-shell" | "run" | "if-shell" | "if" | "pipe-pane" | "pipep" => {
                let opts = options::parse(args, &TMUX_RUN, false);
                let tmux_commands = opts.flags.contains(['C', 'F']);
                match opts.operands.first() {
                    Some(code) if !tmux_commands => {
                        facts.union(self.shell_code(code, &[], s, text));
                    }
                    Some(_) => self.tmux_opaque(text, "runs tmux commands from a string"),
                    None => {}
                }
                if matches!(name.text.as_str(), "if-shell" | "if") && opts.operands.len() > 1 {
                    self.tmux_opaque(text, "runs tmux commands chosen by a shell test");
                }
            }
            "send-keys" | "send" => {
                let opts = options::parse(args, &TMUX_RUN, false);
                let typed: Vec<Word> = opts
                    .operands
                    .iter()
                    .filter(|w| w.dynamic || !is_key_name(&w.text))
                    .cloned()
                    .collect();
                if typed.is_empty() {
                    return;
                }
                self.tmux_opaque(text, "types keys into another shell");
                let code = joined(&typed);
                if !self.code_source(&code, text) {
                    self.reparse(&code.text, s, true, true);
                }
            }
            "source-file" | "source" | "set-hook" | "bind-key" | "bind" => {
                self.tmux_opaque(text, "installs tmux commands that run later");
            }
            "set-option" | "set" | "setw" | "set-window-option" => {
                let runs = args
                    .iter()
                    .any(|w| w.dynamic || w.text.contains("command") || w.text.contains("shell"));
                if runs {
                    self.tmux_opaque(text, "sets the command or shell tmux starts");
                }
            }
            _ => {}
        }
    }

    fn tmux_opaque(&mut self, text: &str, what: &str) {
        self.rule(
            "multiplexer_command",
            Decision::Prompt,
            format!(
                "`{text}` {what}, which the gate cannot judge; run the commands directly in \
                 this exec call"
            ),
        );
    }

    /// The command a session starts: one word is shell code (`sh -c`), several words are
    /// a program and its arguments.
    fn session_command(&mut self, words: &[Word], cmd: &Cmd, s: Src<'_>, facts: &mut Facts) {
        match words {
            [] => {}
            [code] => facts.union(self.shell_code(code, &[], s, &cmd.text)),
            _ => {
                let inner = Cmd {
                    argv: words.to_vec(),
                    text: cmd.text.clone(),
                    ..Cmd::default()
                };
                facts.union(self.run(&inner, 0, s));
            }
        }
    }

    /// `screen [options] [cmd [args]]`, `screen -X stuff 'keys'`.
    pub fn screen(&mut self, cmd: &Cmd, at: usize, s: Src<'_>, facts: &mut Facts) {
        let args = &cmd.argv[at + 1..];
        let text = &cmd.text;
        let mut i = 0;
        while let Some(word) = args.get(i) {
            let t = word.text.as_str();
            if word.dynamic || !t.starts_with('-') {
                break;
            }
            i += 1;
            if t == "-X" || t == "-Q" {
                self.screen_command(&args[i..], cmd, s, facts);
                return;
            }
            if t == "-c" {
                self.tmux_opaque(text, "reads its commands from a configuration file");
            }
            if matches!(t, "-Logfile" | "-logfile") {
                if let Some(file) = args.get(i) {
                    self.check_write(file, text);
                }
                i += 1;
                continue;
            }
            // Option clusters (`-dmS name`): a value-taking letter takes the rest or the
            // next word.
            for (at, c) in t.char_indices().skip(1) {
                if "cehpSsTt".contains(c) {
                    if at + 1 == t.len() {
                        i += 1;
                    }
                    break;
                }
            }
        }
        self.session_command(&args[i.min(args.len())..], cmd, s, facts);
    }

    /// `screen -X COMMAND ARGS…`: `stuff` types into a shell, `exec`/`screen` start programs.
    fn screen_command(&mut self, words: &[Word], cmd: &Cmd, s: Src<'_>, facts: &mut Facts) {
        let Some((name, args)) = words.split_first() else {
            return;
        };
        let text = &cmd.text;
        match name.text.as_str() {
            _ if name.dynamic => self.tmux_opaque(text, "runs a screen command from an expansion"),
            "stuff" => {
                self.tmux_opaque(text, "types keys into another shell");
                let mut code = joined(args);
                code.text = code.text.replace("\\n", "\n").replace("^M", "\n");
                if !self.code_source(&code, text) {
                    self.reparse(&code.text, s, true, true);
                }
            }
            "exec" | "screen" => {
                let start = args
                    .iter()
                    .position(|w| !w.text.starts_with('-') || w.dynamic);
                if let Some(start) = start {
                    self.session_command(&args[start..], cmd, s, facts);
                }
            }
            "source" | "bind" | "bindkey" | "eval" | "shell" | "defshell" => {
                self.tmux_opaque(text, "changes what screen runs");
            }
            _ => {}
        }
    }
}
