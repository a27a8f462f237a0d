//! Shells and code in strings: `sh -c 'STRING'` (and `-lc`, `bash -s`, `sh -`), a shell fed
//! by a here-string, heredoc or redirected file, `source`/`.`, `su -c`, `script -c`. Code the
//! gate can see is parsed again one level deeper; code it cannot see is a prompt, and code
//! that comes from a download or a decoder is forbidden.

use super::model::{Cmd, Facts, Src};
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

impl Checker<'_, '_> {
    /// `su`/`runuser`/`sg`: `-c 'STRING'`, `runuser -u USER cmd`, or an interactive shell.
    pub fn switch_user(&mut self, cmd: &Cmd, at: usize, s: Src<'_>, facts: &mut Facts) {
        let args = &cmd.argv[at + 1..];
        let group_mode = cmd.argv.get(at).is_some_and(|w| w.text.ends_with("sg"));
        let mut user_mode = false;
        let mut operands = 0;
        let mut i = 0;
        while let Some(word) = args.get(i) {
            let text = word.text.as_str();
            match text {
                _ if is_dash_c(text) => {
                    if let Some(code) = args.get(i + 1) {
                        facts.union(self.shell_code(code, &[], s, &cmd.text));
                    }
                    return;
                }
                _ if text.starts_with("--command=") => {
                    let code = word.tail("--command=".len());
                    facts.union(self.shell_code(&code, &[], s, &cmd.text));
                    return;
                }
                "-u" | "--user" => {
                    user_mode = true;
                    i += 2;
                }
                "-s" | "--shell" | "-g" | "--group" | "-G" | "--supp-group" | "-w" => i += 2,
                "--" if user_mode => {
                    if i + 1 < args.len() {
                        facts.union(self.run(cmd, at + 1 + i + 1, s));
                    }
                    return;
                }
                _ if text.starts_with('-') => i += 1,
                _ if user_mode => {
                    // `runuser -u USER cmd …`: the first operand is the command.
                    facts.union(self.run(cmd, at + 1 + i, s));
                    return;
                }
                _ => {
                    operands += 1;
                    i += 1;
                    if group_mode && operands == 1 && i < args.len() {
                        let code = joined(&args[i..]);
                        facts.union(self.shell_code(&code, &[], s, &cmd.text));
                        return;
                    }
                }
            }
        }
        facts.runs_stdin = true;
    }

    /// A shell: `-c STRING` (flags may cluster, `-lc`), a script file, or code on stdin.
    pub fn shell(&mut self, cmd: &Cmd, at: usize, s: Src<'_>, facts: &mut Facts) {
        if let Some(file) = cmd.stdin_file().filter(|f| f.procsub) {
            // `sh < <(curl …)`: the program arrives on stdin from another command.
            let file = file.clone();
            self.script_file(&file, cmd, s, facts);
            return;
        }
        let args = &cmd.argv[at + 1..];
        let (mut i, mut command_mode, mut stdin_mode) = (0, false, false);
        while let Some(word) = args.get(i) {
            let text = word.text.as_str();
            if word.dynamic {
                break;
            }
            if text == "--" || text == "-" {
                stdin_mode |= text == "-";
                i += 1;
                break;
            }
            if text.starts_with("--") {
                i += if matches!(text, "--rcfile" | "--init-file") {
                    2
                } else {
                    1
                };
                continue;
            }
            if text.len() > 1 && (text.starts_with('-') || text.starts_with('+')) {
                for c in text.chars().skip(1) {
                    match c {
                        'c' => command_mode = true,
                        's' => stdin_mode = true,
                        'o' | 'O' => i += 1,
                        _ => {}
                    }
                }
                i += 1;
                continue;
            }
            break;
        }
        if command_mode {
            if let Some(code) = args.get(i) {
                let positional = args.get(i + 1..).unwrap_or_default();
                facts.union(self.shell_code(code, positional, s, &cmd.text));
            }
            return;
        }
        match args.get(i) {
            Some(script) if !stdin_mode => self.script_file(script, cmd, s, facts),
            _ => self.stdin_code(cmd, s, facts),
        }
    }

    /// A shell reading its program from stdin: a here-string or heredoc is re-parsed, a
    /// redirected file is a script file, anything else comes from the pipeline.
    pub fn stdin_code(&mut self, cmd: &Cmd, s: Src<'_>, facts: &mut Facts) {
        if let Some(text) = cmd.stdin_text() {
            let text = text.clone();
            self.code_source(&text, &cmd.text);
            facts.union(self.reparse(&text.text, s, true, true));
        } else if let Some(file) = cmd.stdin_file() {
            let file = file.clone();
            self.script_file(&file, cmd, s, facts);
        } else {
            facts.runs_stdin = true;
        }
    }

    /// A shell or `source` running the script named by `file`.
    pub fn script_file(&mut self, file: &Word, cmd: &Cmd, s: Src<'_>, facts: &mut Facts) {
        if file.procsub {
            if !self.code_source(file, &cmd.text) {
                self.rule(
                    "process_substitution_code",
                    Decision::Prompt,
                    format!(
                        "`{}` runs the output of another command as code; run that command's \
                         steps directly",
                        cmd.text
                    ),
                );
            }
            return;
        }
        if file.dynamic {
            self.rule(
                "dynamic_source",
                Decision::Prompt,
                format!(
                    "`{}` runs a script whose path comes from an expansion; name the script",
                    cmd.text
                ),
            );
            return;
        }
        if matches!(
            file.text.as_str(),
            "/dev/stdin" | "/dev/fd/0" | "/proc/self/fd/0"
        ) {
            self.stdin_code(cmd, s, facts);
            return;
        }
        self.check_read(file, true, &cmd.text);
        self.check_generated(file, &cmd.text, s, true);
    }

    /// Code given as a string: positional parameters are remembered for indirection, the
    /// string's origin is judged, and the code is parsed again one level deeper.
    pub fn shell_code(
        &mut self,
        code: &Word,
        positional: &[Word],
        s: Src<'_>,
        text: &str,
    ) -> Facts {
        for (i, arg) in positional.iter().enumerate().filter(|(_, a)| !a.dynamic) {
            self.remember(&i.to_string(), &arg.text);
        }
        if positional.len() > 1 {
            let all = joined(&positional[1..]);
            if !all.dynamic {
                self.remember("@", &all.text);
                self.remember("*", &all.text);
            }
        }
        self.code_source(code, text);
        self.reparse(&code.text, s, true, true)
    }

    /// Judges where code text comes from; `true` when a rule matched.
    pub fn code_source(&mut self, code: &Word, text: &str) -> bool {
        if code.facts.decodes {
            self.rule(
                "decode_pipe_shell",
                Decision::Forbid,
                format!(
                    "`{text}` runs decoded text as code, hiding what runs; run the decoded \
                     commands as plain text instead"
                ),
            );
        } else if code.facts.downloads || code.facts.network {
            self.rule(
                "download_pipe_shell",
                Decision::Forbid,
                format!(
                    "`{text}` runs code fetched from the network unseen; download it to a file, \
                     read it, then run the reviewed commands"
                ),
            );
        } else if code.dynamic {
            self.rule(
                "dynamic_shell_code",
                Decision::Prompt,
                format!(
                    "`{text}` runs code assembled from expansions the gate cannot evaluate; \
                     write the commands out literally"
                ),
            );
        } else {
            return false;
        }
        true
    }
}

/// Words joined with spaces into one word, as `eval` and `watch` do.
pub(super) fn joined(words: &[Word]) -> Word {
    let mut out = Word::default();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.text.push(' ');
        }
        out.text.push_str(&word.text);
        out.dynamic |= word.dynamic;
        out.procsub |= word.procsub;
        out.facts.union(word.facts.clone());
    }
    out
}

/// `-c`, `--command`, or a flag cluster ending in `c` (`-lc`, `-qc`): the next word is code.
pub(super) fn is_dash_c(text: &str) -> bool {
    text == "--command"
        || (text.starts_with('-')
            && !text.starts_with("--")
            && text.len() > 1
            && text.ends_with('c'))
}
