//! Signalling processes: `kill` of the runtime, of init, of the whole session or of
//! everything; `pkill`/`killall`/`skill` whose pattern, session, group or parent reaches the
//! runtime or every process; `fuser -k`; stopping the automaton's service; shutting the
//! machine down.

use super::options::{self, Spec};
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

const PKILL: Spec = Spec {
    short: "gGPstuUFOrQLd",
    long: &[
        "--euid",
        "--uid",
        "--group",
        "--pgroup",
        "--parent",
        "--session",
        "--terminal",
        "--pidfile",
        "--logpidfile",
        "--signal",
        "--older",
        "--runstates",
        "--queue",
        "--ns",
        "--nslist",
        "--cgroup",
        "--delimiter",
    ],
};
const KILLALL: Spec = Spec {
    short: "yosunZ",
    long: &[
        "--younger-than",
        "--older-than",
        "--signal",
        "--user",
        "--ns",
        "--context",
    ],
};

/// Signal names (without `SIG`), as `kill -NAME`, `pkill -NAME` and `killall -NAME` take them.
const SIGNALS: &[&str] = &[
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "IOT", "BUS", "FPE", "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CLD", "CONT", "STOP", "TSTP", "TTIN",
    "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
];

/// Whether `text` is a `-SIGNAL` option (`-9`, `-KILL`, `-SIGTERM`, `-RTMIN+1`).
fn is_signal_option(text: &str) -> bool {
    let Some(name) = text.strip_prefix('-') else {
        return false;
    };
    if !name.is_empty() && name.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    let upper = name.to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    SIGNALS.contains(&bare) || bare.starts_with("RTMIN") || bare.starts_with("RTMAX")
}

impl Checker<'_, '_> {
    /// `kill` of the runtime, of init, of the whole process group or session, of every
    /// process (`-1`), or of a pid the gate cannot see.
    pub fn kill(&mut self, args: &[Word], text: &str) {
        if args
            .iter()
            .any(|w| matches!(w.text.as_str(), "-l" | "-L" | "--list"))
        {
            return;
        }
        let mut signal_given = false;
        let mut probe = false;
        let mut pids = Vec::new();
        let mut i = 0;
        let mut only_pids = false;
        while let Some(word) = args.get(i) {
            let arg = word.text.as_str();
            if !only_pids && !word.dynamic {
                if arg == "--" {
                    only_pids = true;
                    i += 1;
                    continue;
                }
                if matches!(arg, "-s" | "-n" | "--signal") {
                    probe |= args.get(i + 1).is_some_and(|s| s.text == "0");
                    signal_given = true;
                    i += 2;
                    continue;
                }
                if !signal_given && arg.starts_with('-') && arg.len() > 1 {
                    probe |= arg == "-0";
                    signal_given = true;
                    i += 1;
                    continue;
                }
            }
            pids.push(word);
            i += 1;
        }
        if probe {
            return;
        }
        let runtime = self.ctx.runtime_pid.to_string();
        for pid in pids {
            let arg = pid.text.as_str();
            let (rule, decision, what) = if pid.dynamic && self.names_runtime(arg) {
                (
                    "kill_runtime",
                    Decision::Forbid,
                    "the runtime (found by name or as the shell's parent)",
                )
            } else if pid.dynamic {
                (
                    "kill_dynamic",
                    Decision::Prompt,
                    "a process the gate cannot identify",
                )
            } else if arg == runtime || arg.strip_prefix('-') == Some(runtime.as_str()) {
                (
                    "kill_runtime",
                    Decision::Forbid,
                    "the automaton runtime itself",
                )
            } else if arg == "-1" {
                (
                    "kill_all",
                    Decision::Forbid,
                    "every process you may signal, the runtime included",
                )
            } else if matches!(arg, "0" | "-0") {
                (
                    "kill_all",
                    Decision::Forbid,
                    "the whole process group, which includes the runtime's tool process",
                )
            } else if matches!(arg, "1" | "-1") {
                (
                    "kill_init",
                    Decision::Forbid,
                    "init (pid 1), which takes the whole machine or container down",
                )
            } else {
                continue;
            };
            self.rule(
                rule,
                decision,
                format!("`{text}` signals {what}; stop only processes you started, by their pid"),
            );
        }
    }

    /// Whether a dynamic pid word finds the runtime (`$PPID`, `$(pgrep automaton)`).
    fn names_runtime(&self, text: &str) -> bool {
        let exe = self.ctx.paths.runtime_exe().to_string_lossy().into_owned();
        let base = super::unwrap::program_name(&exe);
        text.contains("PPID")
            || text.contains("automaton")
            || (!base.is_empty() && text.contains(base))
    }

    /// `pkill`/`killall`/`pgrep`-style signalling by name, user, session, group or parent.
    pub fn kill_by_name(&mut self, name: &str, args: &[Word], text: &str) {
        if name == "killall5" {
            self.rule(
                "kill_all",
                Decision::Forbid,
                format!("`{text}` signals every process, the runtime included"),
            );
            return;
        }
        if matches!(name, "skill" | "snice") {
            self.skill(name, args, text);
            return;
        }
        if name == "fuser" {
            self.fuser(args, text);
            return;
        }
        let args: Vec<Word> = args
            .iter()
            .filter(|w| w.dynamic || !is_signal_option(&w.text))
            .cloned()
            .collect();
        let killall = name == "killall";
        let spec = if killall { &KILLALL } else { &PKILL };
        let opts = options::parse(&args, spec, false);
        let runtime = self.ctx.runtime_pid.to_string();
        let everyone =
            |value: &Word| value.text == "0" || value.text == "1" || value.text == runtime;
        if !killall {
            let scopes = [
                ('s', "--session", "the whole session"),
                ('g', "--pgroup", "the whole process group"),
                ('P', "--parent", "the children of init or of the runtime"),
            ];
            for (short, long, what) in scopes {
                let values: Vec<Word> = opts.values_of(short, &[long]).cloned().collect();
                for value in values {
                    if value.dynamic {
                        self.kill_dynamic(text, &value.text);
                    } else if everyone(&value) {
                        self.rule(
                            "kill_all",
                            Decision::Forbid,
                            format!(
                                "`{text}` signals {what} (`{}`), which includes the runtime or \
                                 the machine's services; stop only processes you started, by pid",
                                value.text
                            ),
                        );
                    }
                }
            }
            if opts.values_of('F', &["--pidfile"]).next().is_some() {
                self.kill_dynamic(text, "a pid file");
            }
        }
        let by_user = opts
            .values_of('u', &["--user", "--euid", "--uid"])
            .chain(opts.values_of('U', &[]))
            .chain(opts.values_of('G', &["--group"]))
            .next()
            .is_some();
        if opts.operands.is_empty() && by_user {
            self.rule(
                "kill_all",
                Decision::Forbid,
                format!("`{text}` signals every process of a user, the runtime included"),
            );
        }
        let full = opts.has('f', &["--full"]);
        let exe = self.ctx.paths.runtime_exe().to_string_lossy().into_owned();
        let base = super::unwrap::program_name(&exe).to_owned();
        let mut targets = vec!["automaton".to_owned(), base];
        if full {
            targets.push(exe);
        }
        for pattern in &opts.operands {
            if pattern.dynamic {
                self.kill_dynamic(text, &pattern.text);
                continue;
            }
            let hits = targets
                .iter()
                .any(|target| pattern_may_match(&pattern.text, target));
            if hits {
                self.rule(
                    "kill_runtime",
                    Decision::Forbid,
                    format!(
                        "`{text}` may signal the automaton runtime (pattern `{}` matches it); \
                         stop only processes you started, by their pid",
                        pattern.text
                    ),
                );
            }
        }
    }

    fn kill_dynamic(&mut self, text: &str, what: &str) {
        self.rule(
            "kill_dynamic",
            Decision::Prompt,
            format!(
                "`{text}` signals processes chosen by `{what}`, which the gate cannot evaluate; \
                 name the process"
            ),
        );
    }

    /// `skill`/`snice`: their arguments may be commands, users, terminals or pids, guessed.
    fn skill(&mut self, name: &str, args: &[Word], text: &str) {
        let runtime = self.ctx.runtime_pid.to_string();
        let exe = self.ctx.paths.runtime_exe().to_string_lossy().into_owned();
        let base = super::unwrap::program_name(&exe).to_owned();
        let mut i = 0;
        let mut hits = false;
        let mut any = false;
        while let Some(word) = args.get(i) {
            let arg = word.text.as_str();
            i += 1;
            if !word.dynamic && arg.starts_with('-') {
                if matches!(arg, "-u" | "--user") {
                    hits = true;
                }
                if matches!(
                    arg,
                    "-t" | "-u" | "-p" | "-c" | "--tty" | "--user" | "--pid" | "--command"
                ) {
                    if let Some(value) = args.get(i) {
                        hits |= value.dynamic
                            || value.text == runtime
                            || pattern_may_match(&value.text, "automaton")
                            || pattern_may_match(&value.text, &base);
                        any = true;
                    }
                    i += 1;
                }
                continue;
            }
            any = true;
            hits |= word.dynamic
                || arg == runtime
                || matches!(arg, "1" | "root")
                || pattern_may_match(arg, "automaton")
                || pattern_may_match(arg, &base);
        }
        let (rule, decision) = match (name, hits) {
            ("skill", true) => ("kill_runtime", Decision::Forbid),
            _ if any => ("skill_ambiguous", Decision::Prompt),
            _ => return,
        };
        self.rule(
            rule,
            decision,
            format!(
                "`{text}` acts on processes chosen by guessing whether each argument is a \
                 command, a user, a terminal or a pid, and may reach the runtime; use kill with \
                 the pid of a process you started"
            ),
        );
    }

    /// `fuser -k`: kills every process using a file, whichever they are.
    pub fn fuser(&mut self, args: &[Word], text: &str) {
        let kills = args.iter().any(|w| {
            let t = w.text.as_str();
            w.dynamic
                || t == "--kill"
                || (t.starts_with('-') && !t.starts_with("--") && t.contains('k'))
        });
        if kills {
            self.rule(
                "kill_all",
                Decision::Forbid,
                format!(
                    "`{text}` kills every process using the named files or ports, which can \
                     include the runtime; stop only processes you started, by their pid"
                ),
            );
        }
    }

    /// `systemctl stop automaton`, `systemctl poweroff`.
    pub fn service(&mut self, args: &[Word], text: &str) {
        let words: Vec<&str> = args.iter().map(|w| w.text.as_str()).collect();
        let halts = words.iter().any(|w| {
            matches!(
                *w,
                "poweroff" | "reboot" | "halt" | "kexec" | "rescue" | "emergency"
            )
        });
        if halts {
            self.shutdown("systemctl", args, text);
        }
        let stops = words
            .iter()
            .any(|w| matches!(*w, "stop" | "kill" | "restart" | "disable" | "mask"));
        if stops && words.iter().any(|w| w.contains("automaton")) {
            self.rule(
                "kill_runtime",
                Decision::Forbid,
                format!("`{text}` stops the automaton's own service"),
            );
        }
    }

    /// `shutdown`, `reboot`, `init 0`.
    pub fn shutdown(&mut self, name: &str, args: &[Word], text: &str) {
        let runlevel = matches!(name, "init" | "telinit");
        if runlevel
            && !args
                .iter()
                .any(|w| matches!(w.text.as_str(), "0" | "6" | "1" | "s" | "S"))
        {
            return;
        }
        self.rule(
            "system_shutdown",
            Decision::Forbid,
            format!("`{text}` halts or reboots the machine the automaton lives on"),
        );
    }
}

/// Whether a `pkill` regex (or `killall` name) may match `target`. Each alternative's
/// required literal fragments must all occur in the target; optional characters (`x?`, `x*`),
/// wildcards (`.`, `[…]`) and groups holding alternatives match anything. Over-matching only
/// makes the check stricter.
pub(super) fn pattern_may_match(pattern: &str, target: &str) -> bool {
    let target = target.to_ascii_lowercase();
    let pattern = pattern.to_ascii_lowercase();
    split_alternatives(&pattern).iter().any(|alternative| {
        fragments(alternative)
            .iter()
            .all(|f| target.contains(f.as_str()))
    })
}

/// Splits a regex at its top-level `|`.
fn split_alternatives(pattern: &str) -> Vec<String> {
    let (mut out, mut current) = (Vec::new(), String::new());
    let (mut depth, mut bracket) = (0usize, false);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                current.push(c);
                current.extend(chars.next());
                continue;
            }
            '[' if !bracket => bracket = true,
            ']' if bracket => bracket = false,
            '(' if !bracket => depth += 1,
            ')' if !bracket => depth = depth.saturating_sub(1),
            '|' if !bracket && depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out
}

/// The literal runs a regex alternative requires.
fn fragments(pattern: &str) -> Vec<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let (mut out, mut current) = (Vec::new(), String::new());
    let flush = |current: &mut String, out: &mut Vec<String>| {
        if !current.is_empty() {
            out.push(std::mem::take(current));
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' => {
                match chars.get(i) {
                    Some(e) if e.is_ascii_alphanumeric() => flush(&mut current, &mut out),
                    Some(e) => current.push(*e),
                    None => {}
                }
                i += 1;
            }
            '[' => {
                flush(&mut current, &mut out);
                // Skip the bracket expression (a `]` first is literal).
                if chars.get(i) == Some(&'^') {
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    i += 1;
                }
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
                i += 1;
            }
            '(' => {
                flush(&mut current, &mut out);
                // A group: its inside is matched as a whole; alternatives inside match anything.
                let start = i;
                let mut depth = 1;
                while i < chars.len() && depth > 0 {
                    match chars[i] {
                        '\\' => i += 1,
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    i += 1;
                }
                let inner: String = chars[start..i.saturating_sub(1).max(start)]
                    .iter()
                    .collect();
                let optional = matches!(chars.get(i), Some('?' | '*'))
                    || chars.get(i) == Some(&'{') && chars.get(i + 1) == Some(&'0');
                if !optional && !inner.contains('|') {
                    out.extend(fragments(&inner));
                }
            }
            '?' | '*' => {
                current.pop();
                flush(&mut current, &mut out);
            }
            '{' => {
                if chars.get(i) == Some(&'0') {
                    current.pop();
                }
                flush(&mut current, &mut out);
                while i < chars.len() && chars[i] != '}' {
                    i += 1;
                }
                i += 1;
            }
            '.' | '^' | '$' | '+' | ')' | '|' => flush(&mut current, &mut out),
            _ => current.push(c),
        }
    }
    flush(&mut current, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::{is_signal_option, pattern_may_match};

    #[test]
    fn patterns_that_may_match_the_runtime() {
        for pattern in [
            "automaton",
            "auto",
            ".",
            ".*",
            "",
            "^a",
            "a.*n",
            "x?automaton",
            "node|auto",
            "[a-z]+",
            "(foo|bar)?maton",
            "aut[o]maton",
            "a{0,1}utomaton",
        ] {
            assert!(pattern_may_match(pattern, "automaton"), "{pattern:?}");
        }
        for pattern in ["node", "node server.js", "python|ruby", "^b", "x+automaton"] {
            assert!(!pattern_may_match(pattern, "automaton"), "{pattern:?}");
        }
    }

    #[test]
    fn signal_options() {
        for text in ["-9", "-KILL", "-SIGTERM", "-hup", "-RTMIN+2", "-CONT"] {
            assert!(is_signal_option(text), "{text}");
        }
        for text in ["-f", "-u", "--full", "kill", "-x"] {
            assert!(!is_signal_option(text), "{text}");
        }
    }
}
