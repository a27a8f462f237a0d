//! Programs whose output files hide in options or operand positions (`sort -o FILE`, `uniq
//! IN OUT`, `xxd IN OUT`, `split IN PREFIX`, `gunzip FILE.gz` writing `FILE`, `rename FROM TO
//! FILES`), programs that unpack into a directory (`tar -x`, `unzip -d`), and servers that
//! publish a directory (`python3 -m http.server --directory ..`, `php -S`, `http-server`).

use std::path::PathBuf;

use super::PathAccess;
use super::model::{Cmd, Src};
use super::options::{self, Spec};
use super::paths::destroys;
use super::walk::Checker;
use super::word::Word;
use super::written::Origin;
use crate::policy::decision::Decision;

const SORT: Spec = Spec {
    short: "ktToS",
    long: &[
        "--key",
        "--field-separator",
        "--temporary-directory",
        "--output",
        "--buffer-size",
        "--compress-program",
        "--files0-from",
        "--random-source",
        "--parallel",
        "--batch-size",
    ],
};
const SPLIT: Spec = Spec {
    short: "abClnt",
    long: &[
        "--suffix-length",
        "--bytes",
        "--line-bytes",
        "--lines",
        "--number",
        "--separator",
        "--filter",
        "--additional-suffix",
    ],
};

/// Suffixes decompressors strip to name their output, and what replaces them.
const SUFFIXES: &[(&str, &str)] = &[
    (".tgz", ".tar"),
    (".taz", ".tar"),
    (".tbz2", ".tar"),
    (".txz", ".tar"),
    (".gz", ""),
    (".z", ""),
    (".bz2", ""),
    (".bz", ""),
    (".xz", ""),
    (".lzma", ""),
    (".zst", ""),
    (".lz4", ""),
    (".lz", ""),
    (".br", ""),
    ("-gz", ""),
    ("_z", ""),
];

impl Checker<'_, '_> {
    /// Output files of readers and filters.
    pub fn reader_outputs(&mut self, name: &str, args: &[Word], cmd: &Cmd, s: Src<'_>) {
        let text = &cmd.text;
        match name {
            "sort" | "shuf" => {
                let opts = options::parse(args, &SORT, false);
                for file in opts.values_of('o', &["--output"]) {
                    self.check_write(file, text);
                    self.note_written_word(file);
                }
                if opts
                    .values_of(' ', &["--compress-program"])
                    .next()
                    .is_some()
                {
                    self.rule(
                        "reader_exec",
                        Decision::Prompt,
                        format!("`{text}` makes sort run a compression program; drop the option"),
                    );
                }
            }
            "uniq" | "xxd" => {
                let short = if name == "uniq" { "fsw" } else { "cglosn" };
                let opts = options::parse(args, &Spec { short, long: &[] }, false);
                if let Some(out) = opts.operands.get(1) {
                    self.check_write(out, text);
                    let origin = if name == "xxd" && opts.flags.contains('r') {
                        Origin::Decode
                    } else {
                        Origin::Written(None)
                    };
                    if !out.dynamic {
                        let paths = self.word_paths(out);
                        self.note_generated(paths, &origin);
                    }
                }
            }
            "split" | "csplit" => self.split(name, args, cmd, s),
            "gpg" | "gpg2" | "age" | "iconv" | "uudecode" => {
                let spec = Spec {
                    short: "oftr",
                    long: &["--output", "--output-file", "--from-code", "--to-code"],
                };
                let opts = options::parse(args, &spec, false);
                for file in opts.values_of('o', &["--output", "--output-file"]) {
                    self.check_write(file, text);
                    let paths = if file.dynamic {
                        Vec::new()
                    } else {
                        self.word_paths(file)
                    };
                    self.note_generated(paths, &Origin::Decode);
                }
            }
            "gunzip" | "bunzip2" | "unxz" | "unzstd" | "unlzma" | "uncompress" | "lunzip" => {
                self.decompress(args, text, true);
            }
            "rg" => {
                let runs = args
                    .iter()
                    .any(|w| w.text == "--pre" || w.text.starts_with("--pre="));
                if runs {
                    self.rule(
                        "reader_exec",
                        Decision::Prompt,
                        format!(
                            "`{text}` makes rg run a preprocessor command on every file; drop \
                             --pre"
                        ),
                    );
                }
            }
            "yq" => {
                let opts = options::parse(args, &Spec::FLAGS, false);
                if opts.has('i', &["--inplace"]) {
                    for file in opts.operands.iter().skip(1) {
                        self.check_write(file, text);
                    }
                }
            }
            _ => {}
        }
    }

    /// `split`/`csplit`: output files are named by a prefix; a prefix that could spell a
    /// protected file, or a `--filter` command, is judged.
    fn split(&mut self, name: &str, args: &[Word], cmd: &Cmd, s: Src<'_>) {
        let text = &cmd.text;
        let (prefix, filter) = if name == "split" {
            let opts = options::parse(args, &SPLIT, false);
            let filter = opts.values_of(' ', &["--filter"]).next().cloned();
            let prefix = opts.operands.get(1).cloned();
            (prefix.unwrap_or_else(|| Word::literal("x")), filter)
        } else {
            let spec = Spec {
                short: "bfn",
                long: &["--suffix-format", "--prefix", "--digits"],
            };
            let opts = options::parse(args, &spec, false);
            let prefix = opts.values_of('f', &["--prefix"]).next().cloned();
            (prefix.unwrap_or_else(|| Word::literal("xx")), None)
        };
        if let Some(code) = filter {
            self.rule(
                "reader_exec",
                Decision::Prompt,
                format!("`{text}` makes split run a shell command on every piece; drop --filter"),
            );
            self.shell_code(&code, &[], s, text);
        }
        self.check_write(&prefix, text);
        if prefix.dynamic {
            return;
        }
        for path in self.word_paths(&prefix) {
            let reason = self
                .aliases(&path)
                .iter()
                .find_map(|alias| self.ctx.paths.prefix_violation(alias));
            if let Some(reason) = reason {
                self.rule(
                    "write_protected_path",
                    Decision::Forbid,
                    format!(
                        "`{text}` writes files named after {}: {reason}",
                        path.display()
                    ),
                );
            }
        }
    }

    /// Decompressors rewrite `FILE.gz` as `FILE` (unless writing to stdout).
    pub fn decompress(&mut self, args: &[Word], text: &str, decompressing: bool) {
        let spec = Spec {
            short: "So",
            long: &["--suffix", "--output"],
        };
        let opts = options::parse(args, &spec, false);
        let to_stdout = opts.has('c', &["--stdout", "--to-stdout"])
            || opts.has('t', &["--test"])
            || opts.has('l', &["--list"]);
        for file in opts.values_of('o', &["--output"]) {
            self.check_write(file, text);
            self.note_written_word(file);
        }
        if to_stdout {
            return;
        }
        let custom: Vec<String> = opts
            .values_of('S', &["--suffix"])
            .map(|w| w.text.to_ascii_lowercase())
            .collect();
        for file in &opts.operands {
            self.check_write(file, text);
            if !decompressing {
                continue;
            }
            let lower = file.text.to_ascii_lowercase();
            let stripped = custom
                .iter()
                .map(|suffix| (suffix.as_str(), ""))
                .chain(SUFFIXES.iter().copied())
                .find(|(suffix, _)| !suffix.is_empty() && lower.ends_with(suffix))
                .map(|(suffix, with)| {
                    format!("{}{with}", &file.text[..file.text.len() - suffix.len()])
                });
            if let Some(output) = stripped {
                let output = Word {
                    dynamic: file.dynamic,
                    ..Word::literal(&output)
                };
                self.check_write(&output, text);
                if !output.dynamic {
                    let paths = self.word_paths(&output);
                    self.note_generated(paths, &Origin::Decode);
                }
            }
        }
    }

    /// `rename FROM TO FILES…` (util-linux) or `rename 's/…/…/' FILES…` (Perl): every file
    /// is moved, and the new names util-linux would give are writes.
    pub fn rename(&mut self, args: &[Word], text: &str) {
        let spec = Spec {
            short: "e",
            long: &[],
        };
        let opts = options::parse(args, &spec, false);
        let operands = &opts.operands;
        let perl = opts.values_of('e', &[]).next().is_some()
            || operands.first().is_some_and(|w| {
                let t = w.text.as_str();
                w.dynamic
                    || t.starts_with("s/")
                    || t.starts_with("y/")
                    || t.starts_with("tr/")
                    || t.contains(['(', ';', '$'])
            });
        if perl {
            let skip = usize::from(opts.values_of('e', &[]).next().is_none());
            for file in operands.iter().skip(skip) {
                self.check_write(file, text);
                let parents: Vec<PathBuf> = self
                    .word_paths(file)
                    .iter()
                    .filter_map(|p| p.parent().map(|p| p.to_owned()))
                    .collect();
                if parents
                    .iter()
                    .any(|dir| self.guard_tree(dir, PathAccess::Write).is_some())
                {
                    self.rule(
                        "rename_expression",
                        Decision::Prompt,
                        format!(
                            "`{text}` renames files next to protected files by an expression \
                             the gate cannot evaluate; use mv with explicit names"
                        ),
                    );
                }
            }
            return;
        }
        let [from, to, files @ ..] = operands.as_slice() else {
            for file in operands {
                self.check_write(file, text);
            }
            return;
        };
        for file in files {
            self.check_write(file, text);
            let dynamic = file.dynamic || from.dynamic || to.dynamic;
            let whole = file.text.replacen(&from.text, &to.text, 1);
            let (dir, name) = match file.text.rsplit_once('/') {
                Some((dir, name)) => (format!("{dir}/"), name),
                None => (String::new(), file.text.as_str()),
            };
            let last = format!("{dir}{}", name.replacen(&from.text, &to.text, 1));
            for renamed in [whole, last] {
                let word = Word {
                    dynamic,
                    ..Word::literal(&renamed)
                };
                self.check_write(&word, text);
            }
        }
    }

    /// Unpacking into `dirs`: over a tree that holds protected files archive entries can
    /// replace them (forbidden); over the home or a system directory, a prompt.
    pub fn extract_into(&mut self, dirs: Vec<PathBuf>, text: &str) {
        for dir in dirs {
            if let Some(reason) = self.guard_tree(&dir, PathAccess::Write) {
                self.rule(
                    "extract_over_protected",
                    Decision::Forbid,
                    format!(
                        "`{text}` unpacks an archive into {}, whose entries could replace \
                         protected files: {reason}; extract into an empty project directory",
                        dir.display()
                    ),
                );
                return;
            }
            let (home, user) = (self.ctx.paths.home(), self.ctx.paths.user_home());
            if destroys(&dir, home, user, true).is_some() {
                self.rule(
                    "extract_over_home",
                    Decision::Prompt,
                    format!(
                        "`{text}` extracts into the home or a system directory, where archive \
                         entries can overwrite files; extract into an empty project directory"
                    ),
                );
            }
        }
    }

    /// `unzip [-d DIR]`.
    pub fn unzip(&mut self, args: &[Word], text: &str) {
        let opts = options::parse(
            args,
            &Spec {
                short: "dxP",
                long: &[],
            },
            false,
        );
        if opts.has('l', &[]) || opts.has('v', &[]) || opts.has('t', &[]) || opts.has('p', &[]) {
            return;
        }
        let dirs = match opts.values_of('d', &[]).next() {
            Some(dir) if dir.dynamic => {
                self.check_write(dir, text);
                return;
            }
            Some(dir) => self.word_paths(dir),
            None => self.cwd.dirs.clone(),
        };
        self.extract_into(dirs, text);
    }

    /// Serving the directories `dirs` over HTTP publishes every file in them.
    pub fn serve(&mut self, dirs: &[Word], text: &str) {
        let mut paths: Vec<PathBuf> = Vec::new();
        for dir in dirs {
            if dir.dynamic {
                self.rule(
                    "serve_dynamic",
                    Decision::Prompt,
                    format!(
                        "`{text}` serves a directory built from an expansion; name the directory"
                    ),
                );
                continue;
            }
            paths.extend(self.word_paths(dir));
        }
        if dirs.is_empty() {
            paths = self.cwd.dirs.clone();
        }
        for path in paths {
            if let Some(reason) = self.guard_tree(&path, PathAccess::Read) {
                self.rule(
                    "serve_protected_tree",
                    Decision::Forbid,
                    format!(
                        "`{text}` serves {} over HTTP, publishing protected files: {reason}; \
                         serve a directory that holds only what you mean to publish",
                        path.display()
                    ),
                );
                return;
            }
        }
    }

    /// Static file servers: `http-server DIR`, `serve DIR`, `busybox httpd -h DIR`, ….
    pub fn server(&mut self, name: &str, args: &[Word], text: &str) {
        let dirs: Vec<Word> = match name {
            "httpd" | "webfsd" => {
                let flag = if name == "httpd" { "-h" } else { "-r" };
                args.iter()
                    .position(|w| w.text == flag)
                    .and_then(|i| args.get(i + 1))
                    .cloned()
                    .into_iter()
                    .collect()
            }
            _ => args
                .iter()
                .filter(|w| {
                    let t = w.text.as_str();
                    let address = t.chars().any(|c| c.is_ascii_digit())
                        && t.chars()
                            .all(|c| c.is_ascii_digit() || c == '.' || c == ':');
                    w.dynamic || !(t.starts_with('-') || address)
                })
                .take(1)
                .cloned()
                .collect(),
        };
        self.serve(&dirs, text);
    }
}
