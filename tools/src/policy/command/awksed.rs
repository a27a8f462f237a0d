//! `awk` programs that call `system()`, pipe or `print >`, and `sed` scripts with the `e`
//! command, the `e`/`w` flags or `w`/`r` files. What the gate can read in them (a `sed e`
//! command, an `awk system("…")` string) is parsed again as shell; programs read from files
//! (`awk -f`, `sed -f`) cannot be read and are never `Allow`.

use super::model::{Cmd, Src};
use super::options::{self, Spec};
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

impl Checker<'_, '_> {
    /// `awk`: `system()`, pipes and `print >` run commands or write files.
    pub fn awk(&mut self, args: &[Word], cmd: &Cmd, s: Src<'_>) {
        let spec = Spec {
            short: "FfveEil",
            long: &[
                "--file",
                "--field-separator",
                "--assign",
                "--source",
                "--include",
                "--load",
                "--exec",
            ],
        };
        let opts = options::parse(args, &spec, false);
        let files: Vec<&Word> = opts
            .values_of('f', &["--file", "--include", "--exec", "--load"])
            .chain(opts.values_of('E', &[]))
            .chain(opts.values_of('i', &[]))
            .chain(opts.values_of('l', &[]))
            .collect();
        if !files.is_empty() {
            self.rule(
                "awk_program_file",
                Decision::Prompt,
                format!(
                    "`{}` runs an awk program (or extension) from a file the gate cannot see; \
                     pass the program inline",
                    cmd.text
                ),
            );
        }
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
                    self.note_written_word(&Word::literal(&file));
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
        if !script_files.is_empty() && !sandbox {
            self.rule(
                "sed_script_file",
                Decision::Prompt,
                format!(
                    "`{}` runs a sed script from a file the gate cannot see (sed scripts can run \
                     commands and write files); pass the script inline",
                    cmd.text
                ),
            );
        }
        for script in &scripts {
            self.sed_script(script, sandbox, cmd, s);
        }
        if in_place {
            for file in &files {
                self.check_write(file, &cmd.text);
                self.note_written_word(file);
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
            self.note_written_word(&Word::literal(file));
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
