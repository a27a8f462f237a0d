//! Programs that take code of their own in an argument: interpreters with inline code
//! (`python -c`, `perl -e`, `node -e`, code on stdin), `awk` programs that call `system()`,
//! pipe or `print >`, and `sed` scripts with the `e` command, the `e`/`w` flags or `w`/`r`
//! files. Inline code is never `Allow`; what the gate can read in it (a `sed e` command, an
//! `awk system("…")` string, a path or a socket in Python) is judged, parsed again as shell
//! where it is shell.

use super::model::{Cmd, Facts, Src};
use super::options::{self, Spec};
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

impl Checker<'_, '_> {
    /// Python, Perl, Ruby, Node, PHP, …: inline code is a prompt (a forbid when it names a
    /// protected path or opens a reverse shell); no script means code from stdin.
    pub fn interpreter(&mut self, name: &str, args: &[Word], cmd: &Cmd, facts: &mut Facts) {
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
                    short: "rBREcdzF",
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
                }
            }
            return;
        }
        let module = opts.values_of('m', &[]).next().is_some() && stem == "python";
        match operands.first() {
            Some(script) if !module && script.text != "-" => {
                self.check_downloaded(script, &cmd.text);
            }
            Some(_) if module => {}
            _ if module => {}
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
        let home = self.ctx.user_home.to_string_lossy().into_owned();
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

    /// `awk`: `system()`, pipes and `print >` run commands or write files.
    pub fn awk(&mut self, args: &[Word], cmd: &Cmd, s: Src<'_>) {
        let spec = Spec {
            short: "Ffve",
            long: &[
                "--file",
                "--field-separator",
                "--assign",
                "--source",
                "--include",
                "--load",
            ],
        };
        let opts = options::parse(args, &spec, false);
        let files: Vec<&Word> = opts.values_of('f', &["--file", "--include"]).collect();
        let mut programs: Vec<&Word> = opts.values_of('e', &["--source"]).collect();
        if files.is_empty() && programs.is_empty() {
            programs.extend(opts.operands.first());
        }
        for program in programs {
            let code = program.text.as_str();
            let calls = code.contains("system(") || code.contains("system (");
            let pipes = code.replace("||", "").contains('|');
            if program.dynamic || calls || pipes {
                self.rule(
                    "awk_exec",
                    Decision::Prompt,
                    format!(
                        "`{}` lets awk run shell commands (system(), pipes); run the commands \
                         directly",
                        cmd.text
                    ),
                );
            }
            for command in string_after(code, "system") {
                self.reparse(&command, s, true, true);
            }
            if writes_file(code) {
                self.rule(
                    "awk_writes_file",
                    Decision::Prompt,
                    format!(
                        "`{}` makes awk write files; redirect its output instead",
                        cmd.text
                    ),
                );
                for file in string_after(code, ">") {
                    self.check_write(&Word::literal(&file), &cmd.text);
                }
            }
            self.scan_code(code, &cmd.text);
        }
    }

    /// `sed`: `e` and `s///e` run commands, `w` writes files, `-i` rewrites its operands.
    pub fn sed(&mut self, args: &[Word], cmd: &Cmd, s: Src<'_>) {
        let (mut scripts, mut files, mut script_files) = (Vec::new(), Vec::new(), Vec::new());
        let (mut in_place, mut sandbox, mut only_operands) = (false, false, false);
        let mut i = 0;
        while let Some(word) = args.get(i) {
            let text = word.text.as_str();
            i += 1;
            if only_operands || word.dynamic || !text.starts_with('-') || text == "-" {
                files.push(word.clone());
                continue;
            }
            if text == "--" {
                only_operands = true;
                continue;
            }
            if let Some(long) = text.strip_prefix("--") {
                let (name, value) = match long.split_once('=') {
                    Some((name, _)) => (name, Some(word.tail(name.len() + 3))),
                    None => (long, None),
                };
                match name {
                    "expression" | "file" | "line-length" => {
                        let value = value.or_else(|| {
                            i += 1;
                            args.get(i - 1).cloned()
                        });
                        match (name, value) {
                            ("expression", Some(v)) => scripts.push(v),
                            ("file", Some(v)) => script_files.push(v),
                            _ => {}
                        }
                    }
                    "in-place" => in_place = true,
                    "sandbox" => sandbox = true,
                    _ => {}
                }
                continue;
            }
            for (at, c) in text.char_indices().skip(1) {
                match c {
                    'i' => {
                        in_place = true;
                        break;
                    }
                    'e' | 'f' | 'l' => {
                        let rest = at + 1;
                        let value = if rest < text.len() {
                            Some(word.tail(rest))
                        } else {
                            i += 1;
                            args.get(i - 1).cloned()
                        };
                        match (c, value) {
                            ('e', Some(v)) => scripts.push(v),
                            ('f', Some(v)) => script_files.push(v),
                            _ => {}
                        }
                        break;
                    }
                    _ => {}
                }
            }
        }
        if scripts.is_empty() && script_files.is_empty() && !files.is_empty() {
            scripts.push(files.remove(0));
        }
        for file in &script_files {
            self.check_read(file, false, &cmd.text);
        }
        for script in &scripts {
            self.sed_script(script, sandbox, cmd, s);
        }
        if in_place {
            for file in &files {
                self.check_write(file, &cmd.text);
            }
        }
    }

    fn sed_script(&mut self, script: &Word, sandbox: bool, cmd: &Cmd, s: Src<'_>) {
        let effects = scan_sed(&script.text);
        if sandbox {
            return;
        }
        if script.dynamic || !effects.exec.is_empty() {
            self.rule(
                "sed_exec",
                Decision::Prompt,
                format!(
                    "`{}` lets sed run shell commands (the `e` command or flag); run them \
                     directly",
                    cmd.text
                ),
            );
        }
        for command in effects.exec.iter().filter(|c| !c.is_empty()) {
            self.reparse(command, s, true, true);
        }
        for file in &effects.writes {
            self.check_write(&Word::literal(file), &cmd.text);
        }
        for file in &effects.reads {
            self.check_read(&Word::literal(file), true, &cmd.text);
        }
    }
}

/// What a sed script does besides editing text.
#[derive(Debug, Default)]
struct SedEffects {
    /// `e command` and `s///e`: commands run by the shell (empty: the pattern space).
    exec: Vec<String>,
    /// `w file`, `s///w file`.
    writes: Vec<String>,
    /// `r file`, `R file`.
    reads: Vec<String>,
}

/// Whether an awk program writes files with `print >` / `printf >`.
fn writes_file(code: &str) -> bool {
    code.match_indices("print").any(|(at, _)| {
        let rest = &code[at..];
        let end = rest.find([';', '}', '\n']).unwrap_or(rest.len());
        rest[..end].contains('>')
    })
}

/// The double-quoted string literals that follow each `marker` in `code`.
fn string_after(code: &str, marker: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (at, _) in code.match_indices(marker) {
        let rest = &code[at + marker.len()..];
        let Some(open) = rest.find('"') else {
            continue;
        };
        if rest[..open].contains([';', '}', '\n']) {
            continue;
        }
        let mut literal = String::new();
        let mut chars = rest[open + 1..].chars();
        while let Some(c) = chars.next() {
            match c {
                '"' => break,
                '\\' => literal.extend(chars.next()),
                _ => literal.push(c),
            }
        }
        out.push(literal);
    }
    out
}

/// Scans a sed script for commands that reach outside the text stream.
fn scan_sed(script: &str) -> SedEffects {
    let b: Vec<char> = script.chars().collect();
    let mut effects = SedEffects::default();
    let mut i = 0;
    let line = |i: &mut usize| -> String {
        let start = *i;
        while *i < b.len() && b[*i] != '\n' {
            *i += 1;
        }
        b[start..*i].iter().collect::<String>().trim().to_owned()
    };
    loop {
        while i < b.len() && (b[i].is_whitespace() || b[i] == ';') {
            i += 1;
        }
        if i >= b.len() {
            return effects;
        }
        i = skip_address(&b, i);
        while i < b.len() && b[i].is_whitespace() {
            i += 1;
        }
        if b.get(i) == Some(&',') {
            i += 1;
            while i < b.len() && b[i].is_whitespace() {
                i += 1;
            }
            i = skip_address(&b, i);
        }
        while i < b.len() && (b[i].is_whitespace() || b[i] == '!') {
            i += 1;
        }
        let Some(&command) = b.get(i) else {
            return effects;
        };
        i += 1;
        match command {
            'e' => effects.exec.push(line(&mut i)),
            'w' | 'W' => effects.writes.push(line(&mut i)),
            'r' | 'R' => effects.reads.push(line(&mut i)),
            '#' | 'a' | 'i' | 'c' => {
                line(&mut i);
            }
            ':' | 'b' | 't' | 'T' | 'v' => {
                while i < b.len() && !matches!(b[i], ';' | '\n') {
                    i += 1;
                }
            }
            's' | 'y' => {
                let Some(&delimiter) = b.get(i) else {
                    return effects;
                };
                i += 1;
                for _ in 0..2 {
                    i = skip_part(&b, i, delimiter);
                }
                if command == 's' {
                    while i < b.len() && !matches!(b[i], ';' | '\n' | '}') && !b[i].is_whitespace()
                    {
                        match b[i] {
                            'e' => effects.exec.push(String::new()),
                            'w' => {
                                i += 1;
                                effects.writes.push(line(&mut i));
                                break;
                            }
                            _ => {}
                        }
                        i += 1;
                    }
                }
            }
            _ => {}
        }
    }
}

/// Skips one sed address (`12`, `$`, `/re/I`, `\%re%`, `first~step`, `+N`).
fn skip_address(b: &[char], mut i: usize) -> usize {
    match b.get(i) {
        Some('$') => i += 1,
        Some('/') => i = skip_part(b, i + 1, '/'),
        Some('\\') => {
            if let Some(&delimiter) = b.get(i + 1) {
                i = skip_part(b, i + 2, delimiter);
            }
        }
        Some(c) if c.is_ascii_digit() || *c == '+' || *c == '~' => {
            i += 1;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == '~') {
                i += 1;
            }
        }
        _ => return i,
    }
    while i < b.len() && matches!(b[i], 'I' | 'M') {
        i += 1;
    }
    i
}

/// Skips to just after the next unescaped `delimiter`.
fn skip_part(b: &[char], mut i: usize, delimiter: char) -> usize {
    while i < b.len() && b[i] != delimiter {
        if b[i] == '\\' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_sed_scripts() {
        assert!(scan_sed("1,20p").exec.is_empty());
        assert_eq!(scan_sed("1e rm -rf /").exec, vec!["rm -rf /"]);
        assert_eq!(scan_sed("s/a/b/e").exec, vec![String::new()]);
        assert_eq!(scan_sed("s/a/b/w out.txt").writes, vec!["out.txt"]);
        assert_eq!(scan_sed("/x/w /root/.bashrc").writes, vec!["/root/.bashrc"]);
        assert!(scan_sed("s/e/w/g").exec.is_empty());
        assert!(scan_sed("s|/e|/w|g;p").writes.is_empty());
        assert_eq!(scan_sed("$r /etc/passwd").reads, vec!["/etc/passwd"]);
    }

    #[test]
    fn finds_awk_effects() {
        assert_eq!(
            string_after(r#"BEGIN{system("rm -rf /")}"#, "system"),
            vec!["rm -rf /"]
        );
        assert!(writes_file(r#"{print $1 > "out"}"#));
        assert!(!writes_file("$3 > 100 {print $1}"));
    }
}
