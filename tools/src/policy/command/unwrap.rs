//! Wrappers: programs that run another program (`sudo`, `env`, `timeout`, `nice`, `nohup`,
//! `xargs`, `busybox`, …). The wrapped command is what gets classified: `sudo rm -rf /` is
//! judged as `rm -rf /`. Shells, `eval` and `source` are wrappers too; the code they run is
//! handled in `shell`. A command word that is an expansion or a pattern stops here: never
//! `Allow`.

use super::indirection::render;
use super::model::{Cmd, Facts, Src};
use super::options::{self, Spec};
use super::paths::{EXPANSION_CAP, expand_braces, glob, has_glob, unescape};
use super::shell::{is_dash_c, joined};
use super::walk::Checker;
use crate::policy::decision::Decision;

/// How many wrappers one command may stack (`sudo env nice timeout …`) before the gate stops.
const MAX_HOPS: usize = 32;

const SUDO: Spec = Spec {
    short: "CDghpRrTtUu",
    long: &[
        "--user",
        "--group",
        "--host",
        "--prompt",
        "--chdir",
        "--role",
        "--type",
        "--other-user",
        "--close-from",
        "--command-timeout",
    ],
};
const DOAS: Spec = Spec {
    short: "uC",
    long: &[],
};
const ENV: Spec = Spec {
    short: "uCSP",
    long: &["--unset", "--chdir", "--split-string"],
};
const TIMEOUT: Spec = Spec {
    short: "sk",
    long: &["--signal", "--kill-after"],
};
const NICE: Spec = Spec {
    short: "n",
    long: &["--adjustment"],
};
const EXEC: Spec = Spec {
    short: "a",
    long: &[],
};
const STDBUF: Spec = Spec {
    short: "ioe",
    long: &["--input", "--output", "--error"],
};
const IONICE: Spec = Spec {
    short: "cn",
    long: &["--class", "--classdata"],
};
const TIME: Spec = Spec {
    short: "fo",
    long: &["--format", "--output"],
};
const XARGS: Spec = Spec {
    short: "adEILnPs",
    long: &[
        "--arg-file",
        "--delimiter",
        "--eof",
        "--replace",
        "--max-lines",
        "--max-args",
        "--max-procs",
        "--max-chars",
        "--process-slot-var",
    ],
};
const PARALLEL: Spec = Spec {
    short: "jSNndaI",
    long: &[
        "--jobs",
        "--sshlogin",
        "--delimiter",
        "--arg-file",
        "--max-args",
        "--colsep",
    ],
};
const CHROOT: Spec = Spec {
    short: "",
    long: &["--userspec", "--groups"],
};
const NAMESPACE: Spec = Spec {
    short: "tSGRw",
    long: &["--target", "--setuid", "--setgid", "--root", "--wd"],
};
const FLOCK: Spec = Spec {
    short: "wEc",
    long: &["--timeout", "--conflict-exit-code", "--command"],
};
const WATCH: Spec = Spec {
    short: "n",
    long: &["--interval"],
};
const TRACE: Spec = Spec {
    short: "abeEIoOpPsSuX",
    long: &[
        "--output", "--attach", "--trace", "--signal", "--env", "--user",
    ],
};
const SYSTEMD_RUN: Spec = Spec {
    short: "pEuMH",
    long: &[
        "--property",
        "--setenv",
        "--unit",
        "--machine",
        "--host",
        "--uid",
        "--gid",
        "--nice",
        "--working-directory",
        "--description",
        "--slice",
        "--on-calendar",
        "--on-active",
        "--on-boot",
        "--on-startup",
        "--on-unit-active",
        "--on-unit-inactive",
        "--timer-property",
        "--service-type",
    ],
};

/// A program that runs another program or code.
#[derive(Clone, Copy)]
enum Wrapper {
    /// Options, then `skip` positional words (a duration, a directory, a mask), then the
    /// command; a flag in `no_command` means no command follows (`ionice -p PID`).
    Prefix {
        spec: &'static Spec,
        skip: usize,
        no_command: &'static str,
    },
    /// `sudo`/`doas`: `-e` edits files, `-s`/`-i` alone start a shell, `-D` changes directory.
    Sudo(&'static Spec),
    /// `env`: options, `NAME=value` pairs, `-S 'string'`.
    Env,
    /// `command -v` only looks a name up.
    Command,
    /// `time`: GNU `-o FILE` writes a file.
    Time,
    /// `xargs`/`parallel`: the command gets arguments the gate cannot see.
    Xargs(&'static Spec),
    /// `busybox APPLET …`.
    Busybox,
    /// `coproc [NAME] cmd` or `coproc [NAME] { …; }` (which tree-sitter splits at `;`).
    Coproc,
    /// `chroot`/`nsenter`/`unshare`: a command or an interactive shell in another root.
    Root(&'static Spec, usize),
    /// `flock FILE cmd` or `flock FILE -c 'STRING'`.
    Flock,
    /// `watch cmd args` runs `sh -c "cmd args"`.
    Watch,
    /// `su`/`runuser`/`sg`: `-c 'STRING'` or an interactive shell.
    SwitchUser,
    /// `script -c 'STRING'` or an interactive shell.
    Script,
    /// `strace`/`ltrace`: `-o FILE` writes a file.
    Trace,
    /// `systemd-run`: runs the command outside the exec tool's supervision.
    SystemdRun,
    /// A shell: `-c STRING`, a script file, or code on stdin.
    Shell,
    /// `eval`: its arguments joined are code.
    Eval,
    /// `tmux`/`byobu`: commands chained with `;`, some of which start shell commands.
    Tmux,
    /// `screen`: a program to start, or `-X stuff` keys typed into a shell.
    Screen,
    /// `npx`/`bunx`: a package's program, or `-c 'STRING'` shell code.
    Npx,
    /// `source FILE` / `. FILE`.
    Source,
}

impl Wrapper {
    fn of(name: &str) -> Option<Self> {
        let prefix = |spec, skip, no_command| Wrapper::Prefix {
            spec,
            skip,
            no_command,
        };
        Some(match name {
            "sudo" => Wrapper::Sudo(&SUDO),
            "doas" => Wrapper::Sudo(&DOAS),
            "env" => Wrapper::Env,
            "timeout" => prefix(&TIMEOUT, 1, ""),
            "nice" => prefix(&NICE, 0, ""),
            "coproc" => Wrapper::Coproc,
            "nohup" | "builtin" | "setsid" | "nocache" | "unbuffer" | "torsocks" | "catchsegv"
            | "pkexec" => prefix(&Spec::FLAGS, 0, ""),
            "exec" => prefix(&EXEC, 0, ""),
            "stdbuf" => prefix(&STDBUF, 0, ""),
            "ionice" => prefix(&IONICE, 0, "pPu"),
            "taskset" => prefix(&Spec::FLAGS, 1, "p"),
            "chrt" => prefix(&Spec::FLAGS, 1, "pm"),
            "faketime" => prefix(&Spec::FLAGS, 1, ""),
            "command" => Wrapper::Command,
            "time" => Wrapper::Time,
            "xargs" => Wrapper::Xargs(&XARGS),
            "parallel" => Wrapper::Xargs(&PARALLEL),
            "busybox" | "toybox" => Wrapper::Busybox,
            "chroot" => Wrapper::Root(&CHROOT, 1),
            "nsenter" | "unshare" => Wrapper::Root(&NAMESPACE, 0),
            "flock" => Wrapper::Flock,
            "watch" => Wrapper::Watch,
            "su" | "runuser" | "sg" => Wrapper::SwitchUser,
            "script" => Wrapper::Script,
            "strace" | "ltrace" => Wrapper::Trace,
            "systemd-run" => Wrapper::SystemdRun,
            "sh" | "bash" | "dash" | "zsh" | "ksh" | "ash" | "mksh" | "yash" | "rbash" | "posh"
            | "pdksh" | "fish" | "tcsh" | "csh" => Wrapper::Shell,
            "eval" => Wrapper::Eval,
            "tmux" | "byobu" | "byobu-tmux" => Wrapper::Tmux,
            "screen" | "byobu-screen" => Wrapper::Screen,
            "npx" | "bunx" | "pnpx" => Wrapper::Npx,
            "source" | "." => Wrapper::Source,
            _ => return None,
        })
    }
}

/// The program a command word names: quotes are already gone, so only the directory part is
/// dropped (`/bin/rm` → `rm`).
pub(super) fn program_name(text: &str) -> &str {
    text.rsplit('/').next().unwrap_or(text)
}

impl Checker<'_, '_> {
    /// Unwraps and classifies the command whose word is `cmd.argv[at]`.
    pub fn run(&mut self, cmd: &Cmd, at: usize, s: Src<'_>) -> Facts {
        let mut facts = Facts::default();
        let mut at = at;
        for _ in 0..MAX_HOPS {
            let Some(word) = cmd.argv.get(at) else {
                return facts;
            };
            if word.dynamic || word.procsub {
                self.rule(
                    "dynamic_command",
                    Decision::Prompt,
                    format!(
                        "`{}`: the command name `{}` comes from an expansion the gate cannot \
                         evaluate; spell the command out",
                        cmd.text, word.text
                    ),
                );
                facts.dynamic_command = true;
                return facts;
            }
            if let Some((name, _)) = word.text.split_once('=')
                && is_identifier(name)
            {
                // `sudo NAME=value cmd`, `env NAME=value cmd`: an assignment, not a command.
                self.check_env(name, &word.tail(name.len() + 1), &cmd.text, true);
                at += 1;
                continue;
            }
            if word.globby {
                self.pattern_command(cmd, at, s);
                facts.dynamic_command = true;
                return facts;
            }
            let name = program_name(&word.text);
            let Some(wrapper) = Wrapper::of(name) else {
                facts.union(self.classify(name, cmd, at, s));
                return facts;
            };
            match self.unwrap_one(wrapper, cmd, at, s, &mut facts) {
                Some(next) => at = next,
                None => return facts,
            }
        }
        self.rule(
            "nesting_too_deep",
            Decision::Forbid,
            format!("`{}` stacks more wrappers than the gate follows", cmd.text),
        );
        facts
    }

    /// A command word bash would brace- or glob-expand (`/bin/r? -rf /`, `{rm,-rf,/}`): never
    /// allowed, and the expansion bash would run is classified too.
    fn pattern_command(&mut self, cmd: &Cmd, at: usize, s: Src<'_>) {
        let word = &cmd.argv[at];
        self.rule(
            "dynamic_command",
            Decision::Prompt,
            format!(
                "`{}`: the command name `{}` is a pattern bash expands; spell the command out",
                cmd.text, word.text
            ),
        );
        let mut words = Vec::new();
        for alternative in expand_braces(&word.pattern, EXPANSION_CAP) {
            if !has_glob(&alternative) {
                words.push(unescape(&alternative));
                continue;
            }
            let mut matches: Vec<String> = glob(&alternative, EXPANSION_CAP)
                .iter()
                .map(|p| p.to_string_lossy().into_owned())
                .collect();
            if !alternative.starts_with('/') {
                matches = vec![unescape(&alternative)];
            }
            matches.sort();
            words.extend(matches);
        }
        words.extend(cmd.argv[at + 1..].iter().map(|w| w.text.clone()));
        let text: Vec<String> = words.iter().map(|w| render(w, false)).collect();
        self.reparse(&text.join(" "), s, false, true);
    }

    /// Peels one wrapper; the index of the wrapped command word, or `None` when nothing is
    /// left to classify (the wrapper's code was handled here).
    fn unwrap_one(
        &mut self,
        wrapper: Wrapper,
        cmd: &Cmd,
        at: usize,
        s: Src<'_>,
        facts: &mut Facts,
    ) -> Option<usize> {
        let args = &cmd.argv[at + 1..];
        let next = |end: usize| Some(at + 1 + end);
        match wrapper {
            Wrapper::Prefix {
                spec,
                skip,
                no_command,
            } => {
                let opts = options::parse(args, spec, true);
                if opts.flags.contains(|c| no_command.contains(c)) {
                    return None;
                }
                next(opts.end + skip)
            }
            Wrapper::Sudo(spec) => {
                let opts = options::parse(args, spec, true);
                if opts.flags.contains('e') {
                    facts.union(self.classify("sudoedit", cmd, at, s));
                    return None;
                }
                for dir in opts.values_of('D', &["--chdir"]) {
                    self.change_dir(std::slice::from_ref(dir));
                }
                if opts.end >= args.len() && opts.flags.contains(['s', 'i']) {
                    facts.runs_stdin = true;
                    return None;
                }
                next(opts.end)
            }
            Wrapper::Env => self.unwrap_env(cmd, at, s, facts),
            Wrapper::Command => {
                let opts = options::parse(args, &Spec::FLAGS, true);
                if opts.flags.contains(['v', 'V']) {
                    return None;
                }
                next(opts.end)
            }
            Wrapper::Time => {
                let opts = options::parse(args, &TIME, true);
                for file in opts.values_of('o', &["--output"]) {
                    self.check_write(file, &cmd.text);
                }
                next(opts.end)
            }
            Wrapper::Xargs(spec) => {
                let opts = options::parse(args, spec, true);
                for file in opts.values_of('a', &["--arg-file"]) {
                    self.check_read(file, true, &cmd.text);
                }
                self.rule(
                    "xargs_dynamic",
                    Decision::Prompt,
                    format!(
                        "`{}` runs a command with arguments read from its input, which the gate \
                         cannot see; run the command on explicit paths instead",
                        cmd.text
                    ),
                );
                next(opts.end)
            }
            Wrapper::Coproc => {
                let brace = args
                    .iter()
                    .take(2)
                    .position(|w| w.text == "{" || w.text == "(");
                next(brace.map_or(0, |i| i + 1))
            }
            Wrapper::Busybox => match args.first() {
                Some(applet) if !applet.dynamic && applet.text.starts_with('-') => None,
                _ => next(0),
            },
            Wrapper::Root(spec, skip) => {
                self.rule(
                    "namespace_escape",
                    Decision::Prompt,
                    format!(
                        "`{}` runs in another root or namespace, outside what the gate can \
                         judge; run the command directly",
                        cmd.text
                    ),
                );
                let opts = options::parse(args, spec, true);
                let end = opts.end + skip;
                if end >= args.len() {
                    facts.runs_stdin = true;
                    return None;
                }
                next(end)
            }
            Wrapper::Flock => {
                let opts = options::parse(args, &FLOCK, true);
                if let Some(code) = opts.values_of('c', &["--command"]).next() {
                    facts.union(self.shell_code(code, &[], s, &cmd.text));
                    return None;
                }
                let after = opts.end + 1;
                match args.get(after).map(|w| w.text.as_str()) {
                    Some("-c" | "--command") => {
                        if let Some(code) = args.get(after + 1) {
                            facts.union(self.shell_code(code, &[], s, &cmd.text));
                        }
                        None
                    }
                    _ => next(after),
                }
            }
            Wrapper::Watch => {
                let opts = options::parse(args, &WATCH, true);
                if opts.flags.contains('x') || opts.long.iter().any(|l| l == "--exec") {
                    return next(opts.end);
                }
                let code = joined(&args[opts.end..]);
                facts.union(self.shell_code(&code, &[], s, &cmd.text));
                None
            }
            Wrapper::SwitchUser => {
                self.switch_user(cmd, at, s, facts);
                None
            }
            Wrapper::Script => {
                let code = args
                    .iter()
                    .enumerate()
                    .find_map(|(i, w)| match w.text.as_str() {
                        text if is_dash_c(text) => args.get(i + 1).cloned(),
                        text => text
                            .strip_prefix("--command=")
                            .map(|_| w.tail("--command=".len())),
                    });
                match code {
                    Some(code) => facts.union(self.shell_code(&code, &[], s, &cmd.text)),
                    None => facts.runs_stdin = true,
                }
                None
            }
            Wrapper::Trace => {
                let opts = options::parse(args, &TRACE, true);
                for file in opts.values_of('o', &["--output"]) {
                    self.check_write(file, &cmd.text);
                }
                next(opts.end)
            }
            Wrapper::SystemdRun => {
                self.rule(
                    "systemd_run",
                    Decision::Prompt,
                    format!(
                        "`{}` starts a unit that outlives the exec call and its supervision; \
                         run the command directly",
                        cmd.text
                    ),
                );
                next(options::parse(args, &SYSTEMD_RUN, true).end)
            }
            Wrapper::Shell => {
                self.shell(cmd, at, s, facts);
                None
            }
            Wrapper::Eval => {
                self.rule(
                    "eval",
                    Decision::Prompt,
                    format!(
                        "`{}` builds code at run time; run the command it would build directly",
                        cmd.text
                    ),
                );
                if !args.is_empty() {
                    let code = joined(args);
                    self.code_source(&code, &cmd.text);
                    facts.union(self.reparse(&code.text, s, true, false));
                }
                None
            }
            Wrapper::Tmux => {
                self.tmux(cmd, at, s, facts);
                None
            }
            Wrapper::Screen => {
                self.screen(cmd, at, s, facts);
                None
            }
            Wrapper::Npx => {
                let spec = Spec {
                    short: "pc",
                    long: &["--package", "--call"],
                };
                let opts = options::parse(args, &spec, true);
                if let Some(code) = opts.values_of('c', &["--call"]).next() {
                    facts.union(self.shell_code(code, &[], s, &cmd.text));
                    return None;
                }
                next(opts.end)
            }
            Wrapper::Source => {
                if let Some(file) = args.first() {
                    self.script_file(file, cmd, s, facts);
                }
                None
            }
        }
    }

    fn unwrap_env(&mut self, cmd: &Cmd, at: usize, s: Src<'_>, facts: &mut Facts) -> Option<usize> {
        let args = &cmd.argv[at + 1..];
        let opts = options::parse(args, &ENV, true);
        for dir in opts.values_of('C', &["--chdir"]) {
            self.change_dir(std::slice::from_ref(dir));
        }
        if let Some(split) = opts.values_of('S', &["--split-string"]).next() {
            let mut code = split.clone();
            for word in &args[opts.end..] {
                code.text.push(' ');
                code.text.push_str(&word.text);
                code.dynamic |= word.dynamic;
            }
            facts.union(self.shell_code(&code, &[], s, &cmd.text));
            return None;
        }
        let mut end = opts.end;
        while let Some(word) = args.get(end) {
            match word.text.split_once('=') {
                Some((name, _)) if is_identifier(name) && !word.dynamic => {
                    self.check_env(name, &word.tail(name.len() + 1), &cmd.text, true);
                    end += 1;
                }
                _ => break,
            }
        }
        Some(at + 1 + end)
    }
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
