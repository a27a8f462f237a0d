//! Interpreters: inline code (`python -c`, `perl -e`, `node -e`, code on stdin) is never
//! `Allow`, and what the gate can read in it (a path, a socket) is judged; modules (`python -m
//! sqlite3 ../state.db`, `python -m http.server --directory ..`) and scripts are judged by the
//! files their arguments name. `awk` and `sed` programs are in `awksed`.

use super::PathAccess;
use super::model::{Cmd, Facts, Src};
use super::options::{self, Spec};
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

impl Checker<'_, '_> {
    /// Python, Perl, Ruby, Node, PHP, …: inline code is a prompt (a forbid when it names a
    /// protected path or opens a reverse shell); no script means code from stdin.
    pub fn interpreter(
        &mut self,
        name: &str,
        args: &[Word],
        cmd: &Cmd,
        s: Src<'_>,
        facts: &mut Facts,
    ) {
        let stem = name
            .to_ascii_lowercase()
            .trim_end_matches(|c: char| c.is_ascii_digit() || c == '.')
            .to_owned();
        let (inline, spec): (&str, Spec) = match stem.as_str() {
            "python" | "pypy" => (
                "c",
                Spec {
                    short: "cmWXQ",
                    long: &[],
                },
            ),
            "perl" => (
                "eE",
                Spec {
                    short: "eEIMm",
                    long: &[],
                },
            ),
            "ruby" | "jruby" => (
                "e",
                Spec {
                    short: "erIECFT",
                    long: &[],
                },
            ),
            "node" | "nodejs" | "bun" => (
                "ep",
                Spec {
                    short: "epr",
                    long: &["--eval", "--print", "--require", "--import", "--loader"],
                },
            ),
            "php" => (
                "rBRE",
                Spec {
                    short: "rBREcdzFSt",
                    long: &[],
                },
            ),
            "lua" | "luajit" => (
                "e",
                Spec {
                    short: "el",
                    long: &[],
                },
            ),
            "rscript" | "osascript" => (
                "e",
                Spec {
                    short: "e",
                    long: &["--expr"],
                },
            ),
            "pwsh" | "powershell" => (
                "c",
                Spec {
                    short: "c",
                    long: &["--command"],
                },
            ),
            "expect" => (
                "c",
                Spec {
                    short: "cf",
                    long: &[],
                },
            ),
            _ => ("", Spec::FLAGS),
        };
        if matches!(stem.as_str(), "python" | "pypy")
            && let Some((module, module_args)) = python_module(args)
        {
            // Python stops reading its own options at `-m`: the rest is the module's.
            self.module(&module, module_args, &cmd.text);
            return;
        }
        let opts = options::parse(args, &spec, true);
        let mut code: Vec<&Word> = opts
            .values
            .iter()
            .filter(|(option, _)| {
                let short = option.len() == 2 && inline.contains(option.trim_start_matches('-'));
                short
                    || matches!(
                        option.as_str(),
                        "--eval" | "--print" | "--command" | "--expr"
                    )
            })
            .map(|(_, word)| word)
            .collect();
        let operands = &args[opts.end.min(args.len())..];
        let deno_eval = stem == "deno" && operands.first().is_some_and(|w| w.text == "eval");
        if deno_eval {
            code.extend(operands.get(1));
        }
        let pwsh_command = matches!(stem.as_str(), "pwsh" | "powershell")
            && args
                .iter()
                .any(|w| w.text.to_ascii_lowercase().starts_with("-e"));
        if !code.is_empty() || pwsh_command {
            self.rule(
                "interpreter_inline_code",
                Decision::Prompt,
                format!(
                    "`{}` runs inline {name} code the gate cannot classify; write it to a file, \
                     review it, and run the file",
                    cmd.text
                ),
            );
            for word in code {
                self.code_source(word, &cmd.text);
                self.scan_code(&word.text, &cmd.text);
            }
            if opts.flags.contains('i') && matches!(stem.as_str(), "perl" | "ruby" | "jruby") {
                for file in operands {
                    self.check_write(file, &cmd.text);
                    self.note_written_word(file);
                }
            }
            return;
        }
        if stem == "php" && opts.values_of('S', &[]).next().is_some() {
            let roots: Vec<Word> = opts.values_of('t', &[]).cloned().collect();
            self.serve(&roots, &cmd.text);
        }
        match operands.first() {
            Some(script) if script.text != "-" => {
                self.check_generated(script, &cmd.text, s, false);
                self.script_arguments(&operands[1..], &cmd.text);
            }
            _ => match cmd.stdin_text() {
                Some(text) => {
                    self.rule(
                        "interpreter_stdin_code",
                        Decision::Prompt,
                        format!(
                            "`{}` feeds {name} code through stdin; write it to a file, review \
                             it, and run the file",
                            cmd.text
                        ),
                    );
                    let text = text.text.clone();
                    self.scan_code(&text, &cmd.text);
                }
                None if cmd.stdin_file().is_some() => {}
                None => facts.runs_stdin = true,
            },
        }
    }

    /// `python -m MODULE ARGS…`: a module is code the gate cannot see, so arguments naming
    /// protected files are forbidden (`python3 -m sqlite3 ../state.db`), and `http.server`
    /// may not publish a directory that holds protected files.
    fn module(&mut self, module: &Word, args: &[Word], text: &str) {
        if matches!(module.text.as_str(), "http.server" | "SimpleHTTPServer") {
            let mut dirs = Vec::new();
            let mut i = 0;
            while let Some(word) = args.get(i) {
                i += 1;
                match word.text.as_str() {
                    "-d" | "--directory" => {
                        dirs.extend(args.get(i).cloned());
                        i += 1;
                    }
                    t if t.starts_with("--directory=") => dirs.push(word.tail(12)),
                    _ => {}
                }
            }
            self.serve(&dirs, text);
            return;
        }
        for word in super::classify::path_words(args) {
            if word.dynamic {
                continue;
            }
            let found = self
                .word_paths(&word)
                .into_iter()
                .find_map(|path| Some((self.protected(&path)?, path)));
            if let Some((reason, path)) = found {
                self.rule(
                    "module_protected_argument",
                    Decision::Forbid,
                    format!(
                        "`{text}` hands {} to the module `{}`, which may read or write it: \
                         {reason}",
                        path.display(),
                        module.text
                    ),
                );
            }
        }
    }

    /// A script's arguments that name write-protected files: the script may write them.
    fn script_arguments(&mut self, args: &[Word], text: &str) {
        for word in super::classify::path_words(args) {
            if word.dynamic {
                continue;
            }
            let found = self
                .word_paths(&word)
                .into_iter()
                .find_map(|path| Some((self.guard(&path, PathAccess::Write)?, path)));
            if let Some((reason, path)) = found {
                self.rule(
                    "script_protected_argument",
                    Decision::Prompt,
                    format!(
                        "`{text}` hands {} to a script the gate cannot see, which may write \
                         it: {reason}",
                        path.display()
                    ),
                );
            }
        }
    }

    /// Inline code that names a protected path or builds a reverse shell is forbidden.
    pub fn scan_code(&mut self, code: &str, text: &str) {
        let lower = code.to_ascii_lowercase();
        let socket = [
            "socket",
            "fsockopen",
            "tcpsocket",
            "/dev/tcp",
            "/inet/tcp",
            "/inet/udp",
        ]
        .iter()
        .any(|s| lower.contains(s));
        let spawns = [
            "pty",
            "subprocess",
            "dup2",
            "/bin/sh",
            "/bin/bash",
            "exec",
            "spawn",
            "popen",
            "system",
            "proc_open",
            "sh -i",
        ]
        .iter()
        .any(|s| lower.contains(s));
        if socket && spawns || lower.contains("/dev/tcp/") || lower.contains("/inet/tcp/") {
            self.reverse_shell(text);
        }
        let home = self.ctx.paths.user_home().to_string_lossy().into_owned();
        let code = code.replace("${HOME}", &home).replace("$HOME", &home);
        let tokens = code
            .split(|c: char| !(c.is_alphanumeric() || "._/~+@%-".contains(c)))
            .filter(|t| t.contains(['.', '/']) && t.len() > 1);
        for token in tokens {
            let token = match token.strip_prefix('~') {
                Some(rest) if rest.is_empty() || rest.starts_with('/') => format!("{home}{rest}"),
                _ => token.to_owned(),
            };
            for path in self.word_paths(&Word::literal(&token)) {
                if let Some(reason) = self.protected(&path) {
                    self.rule(
                        "inline_code_protected_path",
                        Decision::Forbid,
                        format!("`{text}` names {} in inline code: {reason}", path.display()),
                    );
                }
            }
        }
    }
}

/// `python [options] -m MODULE ARGS…`: the module and everything after it (Python stops
/// reading its own options at `-m`).
fn python_module(args: &[Word]) -> Option<(Word, &[Word])> {
    let mut i = 0;
    while let Some(word) = args.get(i) {
        let t = word.text.as_str();
        if word.dynamic || !t.starts_with('-') || t == "-" || t == "--" || t.starts_with("--") {
            return None;
        }
        if matches!(t, "-W" | "-X" | "-Q") {
            i += 2;
            continue;
        }
        let cluster = &t[1..];
        let (code_at, module_at) = (cluster.find('c'), cluster.find('m'));
        if let Some(code_at) = code_at
            && module_at.is_none_or(|m| code_at < m)
        {
            // `-c CODE` (possibly clustered, `-Bc`) comes first: inline code, not a module.
            return None;
        }
        if let Some(at) = module_at {
            let rest = &cluster[at + 1..];
            return if rest.is_empty() {
                Some((
                    args.get(i + 1)?.clone(),
                    args.get(i + 2..).unwrap_or_default(),
                ))
            } else {
                Some((word.tail(at + 2), &args[i + 1..]))
            };
        }
        i += 1;
    }
    None
}
