//! Classification of one unwrapped program: the checks every family shares (the files its
//! operands name, prefix assignments that hijack programs, `cd`), and dispatch to the
//! family's rules in `rules`, `network`, `code` and `programs`.

use super::family::Family;
use super::model::{Cmd, Facts, Src};
use super::options::{self, Spec};
use super::rules::{Device, Transfer};
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

/// Environment variables that make the next program run other code (loaders, shells,
/// pagers, editors, interpreters' start-up hooks) or move where names resolve.
const INJECTING_ENV: &[&str] = &[
    "PATH",
    "LD_LIBRARY_PATH",
    "BASH_ENV",
    "ENV",
    "PROMPT_COMMAND",
    "PS4",
    "SHELLOPTS",
    "BASHOPTS",
    "IFS",
    "CDPATH",
    "GIT_SSH_COMMAND",
    "GIT_SSH",
    "GIT_EXEC_PATH",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_ASKPASS",
    "GIT_EXTERNAL_DIFF",
    "GIT_PROXY_COMMAND",
    "GIT_TEMPLATE_DIR",
    "PAGER",
    "MANPAGER",
    "EDITOR",
    "VISUAL",
    "SSH_ASKPASS",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "NODE_OPTIONS",
    "NODE_PATH",
    "PERL5OPT",
    "PERL5LIB",
    "PERLLIB",
    "RUBYOPT",
    "RUBYLIB",
    "LESSOPEN",
    "LESSCLOSE",
    "GCONV_PATH",
    "BROWSER",
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
];

impl Checker<'_, '_> {
    /// Classifies program `name` whose word is `cmd.argv[at]`.
    pub fn classify(&mut self, name: &str, cmd: &Cmd, at: usize, s: Src<'_>) -> Facts {
        let args = &cmd.argv[at + 1..];
        let family = Family::of(name);
        let mut facts = Facts::default();
        if family.opens_operands() {
            for word in path_words(args) {
                self.check_read(&word, family.strict(), &cmd.text);
            }
        }
        if let Some(program) = cmd.argv.get(at).filter(|w| w.text.contains('/')) {
            self.check_generated(program, &cmd.text, s, true);
        }
        facts.decodes = super::network::decodes(name, args);
        match family {
            Family::Remove => self.remove(name, args, &cmd.text),
            Family::Wipe if name == "wipefs" => self.wipe(Device::Signatures, args, &cmd.text),
            Family::Wipe => self.wipe(Device::Shred, args, &cmd.text),
            Family::Format => self.wipe(Device::Format, args, &cmd.text),
            Family::Partition => self.wipe(Device::Partition, args, &cmd.text),
            Family::Dd => self.dd(args, &cmd.text),
            Family::Perms => self.perms(args, &cmd.text),
            Family::Kill => self.kill(args, &cmd.text),
            Family::KillByName => self.kill_by_name(name, args, &cmd.text),
            Family::Service => self.service(args, &cmd.text),
            Family::Shutdown => self.shutdown(name, args, &cmd.text),
            Family::Copy => self.copy_like(Transfer::Copy, args, &cmd.text),
            Family::Move => self.copy_like(Transfer::Move, args, &cmd.text),
            Family::Link => self.copy_like(Transfer::Link, args, &cmd.text),
            Family::Sync => self.sync(args, &cmd.text),
            Family::Tee => {
                for word in options::parse(args, &Spec::FLAGS, false).operands {
                    self.check_write(&word, &cmd.text);
                    self.note_written_word(&word);
                }
            }
            Family::Sed => self.sed(args, cmd, s),
            Family::Awk => self.awk(args, cmd, s),
            Family::Interpreter => self.interpreter(name, args, cmd, s, &mut facts),
            Family::Find => self.find(args, cmd, s),
            Family::Git => self.git(args, cmd),
            Family::Tar => self.tar(args, cmd, s),
            Family::Archive => {
                let runs = args.iter().any(|w| {
                    matches!(w.text.as_str(), "-TT" | "--unzip-command")
                        || w.text.starts_with("--unzip-command=")
                });
                if runs {
                    self.rule(
                        "archive_exec",
                        Decision::Prompt,
                        format!(
                            "`{}` makes the archiver run a command; run it directly",
                            cmd.text
                        ),
                    );
                }
                for word in options::parse(args, &Spec::FLAGS, false).operands {
                    self.check_home_tree(&word, "archives", &cmd.text);
                }
            }
            Family::Compress => self.decompress(args, &cmd.text, facts.decodes),
            Family::Reader => {
                self.reader(name, args, &cmd.text);
                self.reader_outputs(name, args, cmd, s);
            }
            Family::Curl => self.curl(args, &cmd.text, &mut facts),
            Family::Wget => self.wget(args, &cmd.text, &mut facts),
            Family::Fetcher => facts.downloads = true,
            Family::Netcat => self.netcat(args, &cmd.text, &mut facts),
            Family::Socat => self.socat(args, &cmd.text, &mut facts),
            Family::Openssl => self.openssl(args, &cmd.text, &mut facts),
            Family::Ssh => self.ssh(args, &cmd.text, &mut facts),
            Family::Editor => self.editor(name, args, cmd, s),
            Family::Debugger => self.debugger(args, cmd, s),
            Family::Writer => {
                for word in options::parse(args, &Spec::FLAGS, false).operands {
                    self.check_write(&word, &cmd.text);
                }
            }
            Family::Rename => self.rename(args, &cmd.text),
            Family::Serve => self.server(name, args, &cmd.text),
            Family::Unzip => self.unzip(args, &cmd.text),
            Family::Cd => self.change_dir(args),
            Family::Crontab => {
                self.crontab(name, args, &cmd.text);
                if matches!(name, "at" | "batch") {
                    // `at` reads the job's shell code from stdin.
                    match cmd.stdin_text() {
                        Some(code) => {
                            let code = code.clone();
                            if !self.code_source(&code, &cmd.text) {
                                self.reparse(&code.text, s, true, true);
                            }
                        }
                        None => facts.runs_stdin = cmd.stdin_file().is_none(),
                    }
                }
            }
            Family::Alias => self.alias(args, cmd, s),
            Family::Trap => self.trap(args, cmd, s),
            Family::Echo => facts.emits = emitted(name, args),
            Family::Quiet | Family::Other => {}
        }
        if name == "cat" && args.is_empty() {
            facts.emits = cmd
                .stdin_text()
                .filter(|text| !text.dynamic)
                .map(|text| text.text.clone());
        }
        facts
    }

    /// Prefix and standalone assignments that hijack what programs run.
    pub fn check_env(&mut self, name: &str, value: &Word, text: &str, prefix: bool) {
        let scope = if prefix {
            "for this command"
        } else {
            "for every later command"
        };
        match name {
            "LD_PRELOAD" | "LD_AUDIT" => self.rule(
                "ld_preload",
                Decision::Forbid,
                format!(
                    "`{text}` sets {name}, loading a library into every program {scope}; run \
                     the program without it"
                ),
            ),
            _ if INJECTING_ENV.contains(&name)
                || name.starts_with("BASH_FUNC_")
                || name.starts_with("GIT_CONFIG")
                || name.starts_with("LD_") =>
            {
                self.rule(
                    "env_injection",
                    Decision::Prompt,
                    format!(
                        "`{text}` sets {name}={}, changing which code runs {scope}; use the \
                         program's full path or options instead",
                        value.text
                    ),
                );
            }
            _ => {}
        }
    }

    /// `cd DIR`: adds the candidate directory (never removes one), or makes the working
    /// directory unknown.
    pub fn change_dir(&mut self, args: &[Word]) {
        let opts = options::parse(args, &Spec::FLAGS, false);
        let Some(target) = opts.operands.first() else {
            let home = super::paths::normalize(self.ctx.paths.user_home());
            if !self.cwd.dirs.contains(&home) {
                self.cwd.dirs.push(home.clone());
            }
            self.last_cd = (self.in_body == 0).then(|| vec![home]);
            return;
        };
        if target.text == "-" {
            return;
        }
        if self.in_body > 0 || target.dynamic || target.globby {
            self.cwd.unknown = true;
            return;
        }
        let added: Vec<_> = self.word_paths(target);
        for dir in &added {
            if !self.cwd.dirs.contains(dir) {
                self.cwd.dirs.push(dir.clone());
            }
        }
        if self.cwd.dirs.len() > 16 {
            self.cwd.unknown = true;
        }
        self.last_cd = Some(added);
    }

    fn crontab(&mut self, name: &str, args: &[Word], text: &str) {
        let listing = name == "crontab" && args.iter().any(|w| w.text == "-l");
        if !listing {
            self.rule(
                "scheduled_persistence",
                Decision::Prompt,
                format!(
                    "`{text}` schedules commands that run outside this exec call; use the \
                     heartbeat tools to schedule work"
                ),
            );
        }
    }

    fn alias(&mut self, args: &[Word], cmd: &Cmd, s: Src<'_>) {
        let definitions: Vec<&Word> = args.iter().filter(|w| w.text.contains('=')).collect();
        if definitions.is_empty() {
            return;
        }
        self.rule(
            "alias_definition",
            Decision::Prompt,
            format!(
                "`{}` defines an alias, which changes what a command name runs; call the \
                 command directly",
                cmd.text
            ),
        );
        for word in definitions {
            if let Some((_, value)) = word.text.split_once('=') {
                self.reparse(value, s, false, false);
            }
        }
    }

    fn trap(&mut self, args: &[Word], cmd: &Cmd, s: Src<'_>) {
        let Some(code) = args.first() else {
            return;
        };
        if code.text.starts_with('-') && !code.dynamic || code.text.is_empty() {
            return;
        }
        if !self.code_source(code, &cmd.text) {
            self.reparse(&code.text, s, true, false);
        }
    }
}

/// The words among `args` that may name files: operands, values of `--opt=value`, `key=value`
/// operands (`if=…`), `@file` references and `file://` URLs. Other URLs and `host:path` are
/// not local files.
pub(super) fn path_words(args: &[Word]) -> Vec<Word> {
    let mut out = Vec::new();
    let mut only_operands = false;
    let push = |word: Word, out: &mut Vec<Word>| {
        if let Some(file) = file_url(&word) {
            out.push(file);
        } else if !word.text.contains("://") {
            out.push(word);
        }
    };
    for word in args {
        let text = word.text.as_str();
        if text == "--" {
            only_operands = true;
            continue;
        }
        if text == "-" {
            continue;
        }
        if !only_operands && text.starts_with('-') {
            if let Some((name, _)) = text.split_once('=').filter(|_| text.starts_with("--")) {
                push(word.tail(name.len() + 1), &mut out);
            }
            continue;
        }
        if let Some(file) = text.strip_prefix('@') {
            push(word.tail(text.len() - file.len()), &mut out);
            continue;
        }
        if file_url(word).is_some() || text.contains("://") {
            push(word.clone(), &mut out);
            continue;
        }
        let remote = text
            .find(':')
            .is_some_and(|colon| !text[..colon].contains('/') && !text.starts_with('/'));
        if remote {
            continue;
        }
        if let Some((name, _)) = text.split_once('=') {
            push(word.tail(name.len() + 1), &mut out);
        }
        out.push(word.clone());
    }
    out
}

/// The local path a `file:` URL names (`file:///p`, `file://localhost/p`, `file:/p`),
/// percent-decoded. curl expands `{a,b}` and `[a-z]` in URLs itself, so the path keeps them
/// as patterns to be expanded against the filesystem.
pub(super) fn file_url(word: &Word) -> Option<Word> {
    let text = word.text.as_str();
    let scheme = text.get(..5)?;
    if !scheme.eq_ignore_ascii_case("file:") {
        return None;
    }
    let rest = &text[5..];
    let path = match rest.strip_prefix("//") {
        Some(authority) => &authority[authority.find('/')?..],
        None => rest,
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(path);
    let mut file = Word::literal(&decoded);
    file.pattern = decoded.replace('\\', "\\\\");
    file.globby = decoded.contains(['{', '[', '*', '?']);
    file.dynamic = word.dynamic;
    Some(file)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(value)) => {
                out.push(value);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The text `echo`/`printf` writes, when it is static and free of escapes.
fn emitted(name: &str, args: &[Word]) -> Option<String> {
    if args.iter().any(|w| w.dynamic || w.text.contains('\\')) {
        return None;
    }
    let mut words = args.iter().map(|w| w.text.as_str()).peekable();
    if name == "printf" {
        let format = words.next()?;
        return (!format.contains('%') && words.peek().is_none()).then(|| format.to_owned());
    }
    let mut flags_done = false;
    let mut out = Vec::new();
    for word in words {
        if !flags_done
            && word.len() > 1
            && word.starts_with('-')
            && word[1..].chars().all(|c| "neE".contains(c))
        {
            continue;
        }
        flags_done = true;
        out.push(word);
    }
    Some(out.join(" "))
}
