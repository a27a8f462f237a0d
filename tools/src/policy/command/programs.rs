//! Programs that run other commands through their options: `find -exec`/`-delete` and `tar
//! --checkpoint-action=exec=…` and its helper-program options. The command they run is
//! classified like any other (a tar checkpoint action is parsed again as shell); what they act
//! on is judged as paths. `git` has its own module.

use super::family::is_interpreter;
use super::model::{Cmd, Src};
use super::unwrap::program_name;
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

/// `tar` short options that take a value, in bundle order.
const TAR_ARGS: &str = "fCTXbFgIKLNVH";

/// `tar` long options that take a value when written without `=`.
const TAR_LONG: &[&str] = &[
    "--file",
    "--directory",
    "--files-from",
    "--exclude-from",
    "--checkpoint-action",
    "--to-command",
    "--use-compress-program",
    "--info-script",
    "--new-volume-script",
    "--rsh-command",
    "--transform",
    "--exclude",
    "--owner",
    "--group",
    "--mode",
];

impl Checker<'_, '_> {
    /// `find … -exec/-execdir/-ok/-delete`: a prompt; over `/`, the home or protected names a
    /// forbid. The `-exec` command is classified like any other.
    pub fn find(&mut self, args: &[Word], cmd: &Cmd, s: Src<'_>) {
        let text = &cmd.text;
        let mut i = 0;
        while let Some(word) = args.get(i) {
            match word.text.as_str() {
                "-H" | "-L" | "-P" => i += 1,
                "-D" => i += 2,
                t if t.starts_with("-O") => i += 1,
                _ => break,
            }
        }
        let mut starts = Vec::new();
        while let Some(word) = args.get(i) {
            if !word.dynamic
                && (word.text.starts_with('-') || matches!(word.text.as_str(), "(" | "!" | ")"))
            {
                break;
            }
            starts.push(word.clone());
            i += 1;
        }
        if starts.is_empty() {
            starts.push(Word::literal("."));
        }
        let (mut acting, mut names) = (false, Vec::new());
        while let Some(word) = args.get(i) {
            match word.text.as_str() {
                "-exec" | "-execdir" | "-ok" | "-okdir" => {
                    acting = true;
                    let begin = i + 1;
                    let end = (begin..args.len())
                        .find(|&j| matches!(args[j].text.as_str(), ";" | "+"))
                        .unwrap_or(args.len());
                    self.rule(
                        "find_exec",
                        Decision::Prompt,
                        format!(
                            "`{text}` runs a command on every file found, which the gate cannot \
                             list; run the command on explicit paths"
                        ),
                    );
                    if begin < end {
                        let inner = Cmd {
                            argv: args[begin..end].to_vec(),
                            text: text.clone(),
                            ..Cmd::default()
                        };
                        self.run(&inner, 0, s);
                    }
                    i = end + 1;
                }
                "-delete" => {
                    acting = true;
                    self.rule(
                        "find_delete",
                        Decision::Prompt,
                        format!("`{text}` deletes every file found; delete explicit paths"),
                    );
                    i += 1;
                }
                "-fprint" | "-fprint0" | "-fls" | "-fprintf" => {
                    if let Some(file) = args.get(i + 1) {
                        self.check_write(file, text);
                    }
                    i += 2;
                }
                "-name" | "-iname" | "-path" | "-ipath" | "-wholename" | "-lname" => {
                    names.extend(args.get(i + 1).cloned());
                    i += 2;
                }
                _ => i += 1,
            }
        }
        if !acting {
            return;
        }
        for start in &starts {
            self.check_destroy(
                start,
                "find_exec_protected",
                "act on every file under",
                "limit find to your project directory",
                text,
            );
            for dir in self.word_paths(start) {
                for name in &names {
                    let path = dir.join(program_name(&name.text));
                    if let Some(reason) = self.protected(&path) {
                        self.rule(
                            "find_exec_protected",
                            Decision::Forbid,
                            format!(
                                "`{text}` acts on files named like {}: {reason}",
                                path.display()
                            ),
                        );
                    }
                }
            }
        }
    }

    /// `tar`: checkpoint actions and helper programs run commands; archives of the home copy
    /// its secrets; `-f` in create mode is a write.
    pub fn tar(&mut self, args: &[Word], cmd: &Cmd, s: Src<'_>) {
        let mut values: Vec<(String, Word)> = Vec::new();
        let (mut modes, mut operands) = (String::new(), Vec::new());
        let mut i = 0;
        let bundle = args.first().filter(|w| {
            !w.dynamic
                && !w.text.starts_with('-')
                && w.text.chars().all(|c| c.is_ascii_alphabetic())
        });
        if let Some(first) = bundle {
            i = 1;
            for c in first.text.chars() {
                modes.push(c);
                if TAR_ARGS.contains(c) {
                    values.extend(args.get(i).map(|v| (c.to_string(), v.clone())));
                    i += 1;
                }
            }
        }
        while let Some(word) = args.get(i) {
            let text = word.text.as_str();
            i += 1;
            if word.dynamic || !text.starts_with('-') || text == "-" {
                operands.push(word.clone());
            } else if text.starts_with("--") {
                match text.split_once('=') {
                    Some((name, _)) => values.push((name.to_owned(), word.tail(name.len() + 1))),
                    None if TAR_LONG.contains(&text) => {
                        values.extend(args.get(i).map(|v| (text.to_owned(), v.clone())));
                        i += 1;
                    }
                    None => modes.push_str(match text {
                        "--create" | "--append" | "--update" => "c",
                        "--extract" | "--get" => "x",
                        _ => "",
                    }),
                }
            } else {
                for (at, c) in text.char_indices().skip(1) {
                    modes.push(c);
                    if TAR_ARGS.contains(c) {
                        let value = if at + 1 < text.len() {
                            Some(word.tail(at + 1))
                        } else {
                            i += 1;
                            args.get(i - 1).cloned()
                        };
                        values.extend(value.map(|v| (c.to_string(), v)));
                        break;
                    }
                }
            }
        }
        let create = modes.contains(['c', 'r', 'u', 'A']);
        for (name, value) in &values {
            self.tar_value(name, value, create, cmd, s);
        }
        if create {
            for word in &operands {
                self.check_home_tree(word, "archives", &cmd.text);
            }
        }
        if modes.contains('x') && !modes.contains('t') {
            let target = values
                .iter()
                .find(|(n, _)| n == "C" || n == "--directory")
                .map(|(_, w)| self.word_paths(w))
                .unwrap_or_else(|| self.cwd.dirs.clone());
            self.extract_into(target, &cmd.text);
        }
    }

    fn tar_value(&mut self, name: &str, value: &Word, create: bool, cmd: &Cmd, s: Src<'_>) {
        let text = &cmd.text;
        let command = match name {
            "f" | "--file" if create => {
                self.check_write(value, text);
                return;
            }
            "T" | "--files-from" => {
                self.check_read(value, true, text);
                return;
            }
            "--checkpoint-action" => match value.text.strip_prefix("exec=") {
                Some(command) => command.to_owned(),
                None => return,
            },
            "I"
            | "F"
            | "--to-command"
            | "--use-compress-program"
            | "--info-script"
            | "--new-volume-script"
            | "--rsh-command" => value.text.clone(),
            _ => return,
        };
        self.rule(
            "tar_exec",
            Decision::Prompt,
            format!("`{text}` makes tar run `{command}`; run that command directly"),
        );
        let facts = self.reparse(&command, s, true, true);
        let program = command
            .split_whitespace()
            .next()
            .map(program_name)
            .unwrap_or_default();
        if facts.runs_stdin || is_interpreter(program) || value.dynamic {
            self.rule(
                "tar_exec_shell",
                Decision::Forbid,
                format!(
                    "`{text}` spawns a shell or interpreter from tar (a known sandbox escape); \
                     run the commands directly"
                ),
            );
        }
    }
}
