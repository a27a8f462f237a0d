//! Editors and debuggers: programs with a command language of their own. `vim -c '!cmd'`,
//! `ex`/`ed` scripts on stdin, `emacs --batch --eval …`, `gdb -batch -ex 'shell …'` run shell
//! commands or write files through that language. Such invocations are never `Allow`; the
//! parts the gate can read (`!cmd`, `w FILE`, `r FILE`, `shell cmd`) are judged like any
//! other command or path, so a hidden `rm -rf /` or a write to the constitution is a `Forbid`.

use super::model::{Cmd, Src};
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

/// What an ex/ed script does besides editing the buffer.
#[derive(Debug, Default, PartialEq, Eq)]
struct ExEffects {
    /// `!cmd`, `r !cmd`, `w !cmd`: shell commands.
    shell: Vec<String>,
    /// `w FILE`, `saveas FILE`.
    writes: Vec<String>,
    /// `r FILE`.
    reads: Vec<String>,
    /// Commands whose effect the gate cannot read (`source`, `python`, `call`, `normal`, …).
    opaque: bool,
}

/// Ex commands that run code the gate cannot read.
const OPAQUE_EX: &[&str] = &[
    "so", "source", "runtime", "ru", "py", "python", "py3", "python3", "pyx", "pythonx", "pyf",
    "pyfile", "lua", "luafile", "perl", "perldo", "ruby", "rub", "rubydo", "tcl", "mz", "call",
    "cal", "exe", "execute", "norm", "normal", "let", "terminal", "term", "mak", "make", "sh",
    "shell", "au", "autocmd", "map", "nmap", "imap", "com", "command", "fu", "function", "redir",
    "argdo", "bufdo", "windo", "cdo", "ldo", "e", "edit",
];

/// Scans ex/ed commands (one per line, `|`-separated in vim) for shell commands and files.
fn scan_ex(script: &str) -> ExEffects {
    let mut effects = ExEffects::default();
    for line in script.lines() {
        scan_ex_line(line, &mut effects, 0);
    }
    effects
}

fn scan_ex_line(line: &str, effects: &mut ExEffects, depth: usize) {
    let mut rest = line;
    while !rest.trim().is_empty() {
        let command = rest.trim_start_matches([':', ' ', '\t']);
        let command = skip_range(command);
        if let Some(shell) = command.strip_prefix('!') {
            effects.shell.push(shell.trim().to_owned());
            return;
        }
        let name_len = command
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(command.len());
        let (name, after) = command.split_at(name_len);
        let after = after.strip_prefix('!').unwrap_or(after);
        let (argument, next) = match after.find('|') {
            Some(bar) if !matches!(name, "g" | "global" | "v" | "vglobal") => {
                (&after[..bar], Some(&after[bar + 1..]))
            }
            _ => (after, None),
        };
        let argument = argument.trim();
        match name {
            "w" | "write" | "wq" | "x" | "xit" | "exi" | "exit" | "sav" | "saveas" | "up"
            | "update" | "wn" | "wnext" | "wN" | "wNext" | "wp" | "wprevious" | "W" => {
                if let Some(shell) = argument.strip_prefix('!') {
                    effects.shell.push(shell.trim().to_owned());
                    return;
                }
                let file = argument.trim_start_matches(">>").trim();
                if !file.is_empty() {
                    effects.writes.push(file.to_owned());
                }
            }
            "r" | "read" => {
                if let Some(shell) = argument.strip_prefix('!') {
                    effects.shell.push(shell.trim().to_owned());
                    return;
                }
                if !argument.is_empty() {
                    effects.reads.push(argument.to_owned());
                }
            }
            "g" | "global" | "v" | "vglobal" if depth < 4 => {
                // `g/pattern/command`: the command runs on every matching line.
                let mut chars = argument.chars();
                if let Some(delimiter) = chars.next() {
                    let body = chars.as_str();
                    let end = body.find(delimiter).map_or(body.len(), |e| e + 1);
                    scan_ex_line(&body[end.min(body.len())..], effects, depth + 1);
                }
                return;
            }
            _ if OPAQUE_EX.contains(&name) => {
                // `e !cmd` (ed) is a shell command too.
                if let Some(shell) = argument.strip_prefix('!') {
                    effects.shell.push(shell.trim().to_owned());
                    return;
                }
                if !matches!(name, "e" | "edit") {
                    effects.opaque = true;
                }
            }
            _ => {}
        }
        match next {
            Some(next) => rest = next,
            None => return,
        }
    }
}

/// Skips a line range (`1,$`, `%`, `.,+3`, `'a,'b`, `/re/`).
fn skip_range(command: &str) -> &str {
    let mut rest = command;
    loop {
        let trimmed = rest.trim_start_matches(|c: char| {
            c.is_ascii_digit() || matches!(c, '.' | ',' | '$' | '%' | '+' | '-' | ';' | ' ')
        });
        let trimmed = match trimmed.strip_prefix('\'') {
            Some(mark) => mark.get(1..).unwrap_or_default(),
            None => trimmed,
        };
        let trimmed = match trimmed.chars().next() {
            Some(delimiter @ ('/' | '?')) => {
                let body = &trimmed[1..];
                body.find(delimiter).map_or("", |end| &body[end + 1..])
            }
            _ => trimmed,
        };
        if trimmed.len() == rest.len() {
            return rest;
        }
        rest = trimmed;
    }
}

impl Checker<'_, '_> {
    /// Editors: command options and scripts are judged, every file operand is a write.
    pub fn editor(&mut self, name: &str, args: &[Word], cmd: &Cmd, s: Src<'_>) {
        let vi = matches!(
            name,
            "vi" | "vim" | "nvim" | "view" | "ex" | "gvim" | "vimdiff" | "rvim" | "vim.tiny"
        );
        let mut ex_mode = matches!(name, "ex" | "ed" | "red");
        let mut scripts: Vec<Word> = Vec::new();
        let mut opaque = false;
        let mut files = Vec::new();
        let mut only_files = false;
        let mut i = 0;
        while let Some(word) = args.get(i) {
            let t = word.text.as_str();
            let value = args.get(i + 1).cloned();
            i += 1;
            if only_files || word.dynamic || !(t.starts_with('-') || vi && t.starts_with('+')) {
                files.push(word.clone());
                continue;
            }
            match (name, t) {
                (_, "--") => only_files = true,
                (_, "-c" | "--cmd") if vi => {
                    scripts.extend(value);
                    i += 1;
                }
                (_, _) if vi && !t.starts_with("--") && t.len() > 2 && t.ends_with('c') => {
                    // A cluster such as `-sc` or `-esc`: the last flag takes the command.
                    ex_mode |= t.contains(['e', 'E']);
                    scripts.extend(value);
                    i += 1;
                }
                (_, _) if vi && t.starts_with('+') => {
                    let command = &t[1..];
                    let plain = command.is_empty()
                        || command.chars().all(|c| c.is_ascii_digit())
                        || command.starts_with(['/', '?']);
                    if !plain {
                        scripts.push(word.tail(1));
                    }
                }
                (_, "-e" | "-E" | "-es" | "-Es" | "-em" | "-eM") if vi => ex_mode = true,
                (_, "-s") if vi && !ex_mode => {
                    opaque = true;
                    i += 1;
                }
                (_, "-S" | "-u" | "-U") if vi => {
                    let harmless = value
                        .as_ref()
                        .is_some_and(|v| matches!(v.text.as_str(), "NONE" | "NORC" | "DEFAULTS"));
                    opaque |= !harmless;
                    i += 1;
                }
                (_, "-w" | "-W") if vi => {
                    if let Some(file) = &value {
                        self.check_write(file, &cmd.text);
                    }
                    i += 1;
                }
                ("emacs" | "emacsclient", _) => {
                    let takes = [
                        "--eval",
                        "-eval",
                        "--execute",
                        "-l",
                        "--load",
                        "-f",
                        "--funcall",
                        "--script",
                        "-x",
                        "--insert",
                        "--directory",
                        "-L",
                    ];
                    let code = takes.contains(&t)
                        || [
                            "--eval=",
                            "--execute=",
                            "--load=",
                            "--funcall=",
                            "--script=",
                        ]
                        .iter()
                        .any(|p| t.starts_with(p));
                    if code || matches!(t, "-batch" | "--batch") {
                        opaque = true;
                    }
                    if takes.contains(&t) {
                        if let Some(code) = &value {
                            self.scan_code(&code.text, &cmd.text);
                        }
                        i += 1;
                    }
                }
                ("kak", "-e" | "-E") | ("micro", "-plugin") | ("nano", "-Y") => {
                    opaque = true;
                    i += 1;
                }
                ("ed" | "red", "-p") => i += 1,
                _ => {}
            }
        }
        if ex_mode {
            match cmd.stdin_text() {
                Some(stdin) => scripts.push(stdin.clone()),
                None => opaque = true,
            }
        }
        // Any script is a prompt: even one the gate reads fully can do what it cannot list
        // (`normal`, `source`, …); what it can read is judged below.
        let commands = !scripts.is_empty() || opaque;
        for script in scripts.iter().filter(|script| !script.dynamic) {
            let effects = scan_ex(&script.text);
            for shell in &effects.shell {
                if !shell.is_empty() {
                    self.reparse(shell, s, true, true);
                }
            }
            for file in &effects.writes {
                self.check_write(&Word::literal(file), &cmd.text);
            }
            for file in &effects.reads {
                self.check_read(&Word::literal(file), true, &cmd.text);
            }
        }
        if commands {
            self.rule(
                "editor_command",
                Decision::Prompt,
                format!(
                    "`{}` makes the editor run commands (a script, `-c`, `--eval`, or commands \
                     on its input) that can run shell code or write any file; change files \
                     with explicit commands instead",
                    cmd.text
                ),
            );
        }
        for file in &files {
            self.check_write(file, &cmd.text);
        }
    }

    /// `gdb`/`lldb`: commands (`-ex`, `-o`, on stdin) and attaching to a process run code.
    pub fn debugger(&mut self, args: &[Word], cmd: &Cmd, s: Src<'_>) {
        const COMMANDS: &[&str] = &[
            "-ex",
            "--ex",
            "-eval-command",
            "--eval-command",
            "-iex",
            "--init-eval-command",
            "-o",
            "--one-line",
            "-O",
            "--one-line-before-file",
            "-k",
            "--one-line-on-crash",
        ];
        const FILES: &[&str] = &[
            "-x",
            "--command",
            "-ix",
            "--init-command",
            "-s",
            "--source",
            "-S",
            "--source-before-file",
        ];
        const ATTACH: &[&str] = &["-p", "--pid", "--attach-pid", "-n", "--attach-name"];
        let text = &cmd.text;
        let mut commands: Vec<Word> = Vec::new();
        let mut opaque = false;
        let mut i = 0;
        while let Some(word) = args.get(i) {
            let t = word.text.as_str();
            let (name, value) = match t.split_once('=') {
                Some((name, _)) if t.starts_with("--") => (name, Some(word.tail(name.len() + 1))),
                _ => (t, args.get(i + 1).cloned()),
            };
            let attached = t.contains('=') && t.starts_with("--");
            i += 1;
            if name == "--args" {
                break;
            }
            let known = COMMANDS.contains(&name) || FILES.contains(&name) || ATTACH.contains(&name);
            if !known {
                continue;
            }
            if !attached {
                i += 1;
            }
            let Some(value) = value else {
                continue;
            };
            if COMMANDS.contains(&name) {
                commands.push(value);
            } else if FILES.contains(&name) {
                opaque = true;
            } else {
                self.attach(&value, text);
            }
        }
        if let Some(stdin) = cmd.stdin_text() {
            commands.extend(stdin.text.lines().map(Word::literal));
        }
        for command in &commands {
            let line = command.text.trim();
            let shell = line
                .strip_prefix("shell ")
                .or_else(|| line.strip_prefix('!'))
                .or_else(|| line.strip_prefix("platform shell "))
                .or_else(|| line.strip_prefix("pipe "));
            match shell {
                Some(code) if !command.dynamic => {
                    self.reparse(code, s, true, true);
                }
                _ => {}
            }
            self.scan_code(line, text);
        }
        if opaque || !commands.is_empty() {
            self.rule(
                "debugger_commands",
                Decision::Prompt,
                format!(
                    "`{text}` runs debugger commands, which can run shell commands and change \
                     any process; run the program directly or inspect it with read-only tools"
                ),
            );
        }
    }

    /// A debugger attaching to a process can make it run anything.
    fn attach(&mut self, target: &Word, text: &str) {
        let runtime = self.ctx.runtime_pid.to_string();
        let exe = self.ctx.paths.runtime_exe().to_string_lossy().into_owned();
        let base = super::unwrap::program_name(&exe).to_owned();
        let t = target.text.as_str();
        if target.dynamic || t == runtime || t == "1" || t.contains("automaton") || t == base {
            self.rule(
                "debug_runtime",
                Decision::Forbid,
                format!(
                    "`{text}` attaches a debugger to the runtime, init or a process the gate \
                     cannot identify, which can make it run anything"
                ),
            );
        } else {
            self.rule(
                "debugger_commands",
                Decision::Prompt,
                format!("`{text}` attaches a debugger to a running process"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::scan_ex;

    #[test]
    fn scans_ex_scripts() {
        let e = scan_ex("!rm -rf /");
        assert_eq!(e.shell, vec!["rm -rf /"]);
        let e = scan_ex("%s/a/b/g | w ../constitution.md");
        assert_eq!(e.writes, vec!["../constitution.md"]);
        let e = scan_ex("1,$d\nw !sh\nq");
        assert_eq!(e.shell, vec!["sh"]);
        let e = scan_ex("r /etc/passwd");
        assert_eq!(e.reads, vec!["/etc/passwd"]);
        let e = scan_ex("g/x/!id");
        assert_eq!(e.shell, vec!["id"]);
        assert!(scan_ex("source x.vim").opaque);
        assert_eq!(scan_ex("%s/foo/bar/g\nwq"), Default::default());
    }
}
