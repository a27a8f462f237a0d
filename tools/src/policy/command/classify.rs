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
            self.check_downloaded(program, &cmd.text);
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
                }
            }
            Family::Sed => self.sed(args, cmd, s),
            Family::Awk => self.awk(args, cmd, s),
            Family::Interpreter => self.interpreter(name, args, cmd, &mut facts),
            Family::Find => self.find(args, cmd, s),
            Family::Git => self.git(args, &cmd.text),
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
            Family::Compress => {
                let opts = options::parse(args, &Spec::FLAGS, false);
                if !opts.has('c', &["--stdout", "--to-stdout"]) {
                    for word in &opts.operands {
                        self.check_write(word, &cmd.text);
                    }
                }
            }
            Family::Reader => self.reader(name, args, &cmd.text),
            Family::Curl => self.curl(args, &cmd.text, &mut facts),
            Family::Wget => self.wget(args, &cmd.text, &mut facts),
            Family::Fetcher => facts.downloads = true,
            Family::Netcat => self.netcat(args, &cmd.text, &mut facts),
            Family::Socat => self.socat(args, &cmd.text, &mut facts),
            Family::Openssl => self.openssl(args, &mut facts),
            Family::Ssh => self.ssh(args, &cmd.text, &mut facts),
            Family::Editor | Family::Writer => {
                let commands = family == Family::Editor
                    && args.iter().any(|w| {
                        let t = w.text.as_str();
                        t.starts_with('+') || t.starts_with("-c") || t == "--cmd" || t == "-S"
                    });
                if commands {
                    self.rule(
                        "editor_command",
                        Decision::Prompt,
                        format!(
                            "`{}` makes the editor run commands; change files with explicit \
                             commands instead",
                            cmd.text
                        ),
                    );
                }
                for word in options::parse(args, &Spec::FLAGS, false).operands {
                    self.check_write(&word, &cmd.text);
                }
            }
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
            let home = super::paths::normalize(self.ctx.user_home);
            if !self.cwd.dirs.contains(&home) {
                self.cwd.dirs.push(home);
            }
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
        for dir in added {
            if !self.cwd.dirs.contains(&dir) {
                self.cwd.dirs.push(dir);
            }
        }
        if self.cwd.dirs.len() > 16 {
            self.cwd.unknown = true;
        }
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
/// operands (`if=…`), and `@file` references. URLs and `host:path` are not local files.
pub(super) fn path_words(args: &[Word]) -> Vec<Word> {
    let mut out = Vec::new();
    let mut only_operands = false;
    for word in args {
        let text = word.text.as_str();
        if text == "--" {
            only_operands = true;
            continue;
        }
        if text.contains("://") || text == "-" {
            continue;
        }
        if !only_operands && text.starts_with('-') {
            if let Some((name, _)) = text.split_once('=').filter(|_| text.starts_with("--")) {
                out.push(word.tail(name.len() + 1));
            }
            continue;
        }
        if let Some(file) = text.strip_prefix('@') {
            out.push(word.tail(text.len() - file.len()));
            continue;
        }
        let remote = text
            .find(':')
            .is_some_and(|colon| !text[..colon].contains('/') && !text.starts_with('/'));
        if remote {
            continue;
        }
        if let Some((name, _)) = text.split_once('=') {
            out.push(word.tail(name.len() + 1));
        }
        out.push(word.clone());
    }
    out
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
