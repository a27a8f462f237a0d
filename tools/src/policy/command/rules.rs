//! The rules for programs whose danger is in their operands: destroying files, disks and
//! permissions (`rm`, `dd`, `mkfs`, `shred`, `chmod -R`), moving, copying and linking onto
//! protected files, copying or searching the whole home, and signalling the runtime (`kill`,
//! `pkill`, `systemctl`, `shutdown`).

use super::options::{self, Spec};
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

const COPY: Spec = Spec {
    short: "tSmog",
    long: &[
        "--target-directory",
        "--suffix",
        "--mode",
        "--owner",
        "--group",
    ],
};
const RSYNC: Spec = Spec {
    short: "eBfTiPo",
    long: &[
        "--rsh",
        "--rsync-path",
        "--filter",
        "--exclude",
        "--include",
        "--files-from",
        "--temp-dir",
        "--backup-dir",
        "--chown",
        "--chmod",
        "--log-file",
        "--password-file",
        "--port",
    ],
};
const PKILL: Spec = Spec {
    short: "ugUGPstFcoy",
    long: &[
        "--euid",
        "--uid",
        "--group",
        "--parent",
        "--session",
        "--terminal",
        "--pidfile",
        "--signal",
        "--older-than",
        "--younger-than",
        "--user",
    ],
};
/// What a device-level destroyer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Device {
    /// `mkfs*`, `mke2fs`, `mkswap`.
    Format,
    /// `wipefs`.
    Signatures,
    /// `shred`.
    Shred,
    /// `fdisk`, `parted`, ….
    Partition,
}

/// How `cp`/`install`, `mv` and `ln` treat their operands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Transfer {
    /// `cp`, `install`: sources are read, the destination written.
    Copy,
    /// `mv`: sources are removed too.
    Move,
    /// `ln`: the link name is written.
    Link,
}

impl Checker<'_, '_> {
    /// `rm -r` of the root, the home or a system directory; every operand is a write.
    pub fn remove(&mut self, name: &str, args: &[Word], text: &str) {
        let opts = options::parse(args, &Spec::FLAGS, false);
        let recursive =
            name == "rmdir" || opts.has('r', &["--recursive"]) || opts.flags.contains('R');
        for word in &opts.operands {
            if recursive {
                self.check_destroy(
                    word,
                    "rm_recursive_protected",
                    "delete",
                    "delete the specific directory you created instead (e.g. `rm -rf ./build`)",
                    text,
                );
                if word.dynamic {
                    self.rule(
                        "rm_recursive_dynamic",
                        Decision::Prompt,
                        format!(
                            "`{text}` deletes recursively a path built from an expansion the \
                             gate cannot evaluate; spell the path out"
                        ),
                    );
                }
                if !word.dynamic
                    && self
                        .word_paths(word)
                        .iter()
                        .any(|p| p.starts_with(self.ctx.home))
                {
                    self.rule(
                        "recursive_in_home",
                        Decision::Prompt,
                        format!(
                            "`{text}` deletes a tree inside the automaton's home; use the tools \
                             that own that state"
                        ),
                    );
                }
            }
            self.check_write(word, text);
        }
    }

    /// `shred`, `wipefs`, `mkfs*`, partitioners.
    pub fn wipe(&mut self, device: Device, args: &[Word], text: &str) {
        let listing = args
            .iter()
            .any(|w| matches!(w.text.as_str(), "-l" | "--list" | "print"));
        let (rule, decision, what) = match device {
            Device::Partition if listing => return,
            Device::Partition => (
                "partition_disk",
                Decision::Prompt,
                "rewrites a partition table",
            ),
            Device::Format => (
                "format_disk",
                Decision::Forbid,
                "formats a filesystem, erasing it",
            ),
            Device::Signatures => (
                "format_disk",
                Decision::Forbid,
                "erases filesystem signatures",
            ),
            Device::Shred => (
                "shred",
                Decision::Forbid,
                "destroys file contents irrecoverably",
            ),
        };
        self.rule(
            rule,
            decision,
            format!("`{text}` {what}; delete files with `rm` inside your project instead"),
        );
    }

    /// `dd of=/dev/sda`, `dd if=wallet.json`.
    pub fn dd(&mut self, args: &[Word], text: &str) {
        for word in args {
            if let Some(value) = word.text.strip_prefix("of=") {
                let target = word.tail(word.text.len() - value.len());
                self.check_write(&target, text);
            }
        }
    }

    /// `chmod`, `chown`, `chattr`, …: every operand is a write; `-R` on a tree that holds the
    /// system or the home is forbidden.
    pub fn perms(&mut self, args: &[Word], text: &str) {
        let opts = options::parse(args, &Spec::FLAGS, false);
        let recursive = opts.flags.contains('R') || opts.long.iter().any(|l| l == "--recursive");
        for word in &opts.operands {
            if recursive {
                self.check_destroy(
                    word,
                    "recursive_perm_protected",
                    "recursively change permissions or owners of",
                    "change only the files of your project",
                    text,
                );
            }
            self.check_write(word, text);
        }
    }

    /// `kill` of the runtime, of every process (`-1`) or of a pid the gate cannot see.
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
            let (rule, decision, what) = if pid.dynamic && arg.contains("PPID") {
                (
                    "kill_runtime",
                    Decision::Forbid,
                    "the shell's parent, the runtime",
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
            } else if arg == "0" || arg == "-0" {
                (
                    "kill_all",
                    Decision::Prompt,
                    "the whole process group, which may include the runtime",
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

    /// `pkill`/`killall` of the runtime by name, or of everything.
    pub fn kill_by_name(&mut self, name: &str, args: &[Word], text: &str) {
        if name == "killall5" {
            self.rule(
                "kill_all",
                Decision::Forbid,
                format!("`{text}` signals every process, the runtime included"),
            );
            return;
        }
        let opts = options::parse(args, &PKILL, false);
        let full = opts.has('f', &["--full"]);
        let exe = self.ctx.runtime_exe.to_string_lossy().into_owned();
        let base = super::unwrap::program_name(&exe).to_owned();
        let mut targets = vec!["automaton".to_owned(), base];
        if full {
            targets.push(exe);
        }
        let by_user = opts
            .values_of('u', &["--user", "--euid", "--uid"])
            .next()
            .is_some()
            || opts.values_of('U', &[]).next().is_some();
        if opts.operands.is_empty() && by_user {
            self.rule(
                "kill_all",
                Decision::Forbid,
                format!("`{text}` signals every process of a user, the runtime included"),
            );
        }
        for pattern in &opts.operands {
            if pattern.dynamic {
                self.rule(
                    "kill_dynamic",
                    Decision::Prompt,
                    format!(
                        "`{text}` signals processes matching `{}`, a pattern the gate cannot \
                         evaluate; name the process",
                        pattern.text
                    ),
                );
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
                        "`{text}` may signal the automaton runtime (pattern `{}`); stop only \
                         processes you started, by their pid",
                        pattern.text
                    ),
                );
            }
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

    /// `cp`, `install`, `mv`, `ln`: destinations (and the file each source becomes in a
    /// destination directory) are writes; `mv` also removes its sources.
    pub fn copy_like(&mut self, transfer: Transfer, args: &[Word], text: &str) {
        let opts = options::parse(args, &COPY, false);
        let target_dir = opts.values_of('t', &["--target-directory"]).next().cloned();
        let mut operands = opts.operands.clone();
        let dest = match target_dir {
            Some(dir) => Some(dir),
            None if transfer == Transfer::Link && operands.len() == 1 => {
                let source = &operands[0].text;
                Some(Word::literal(super::unwrap::program_name(source)))
            }
            None if operands.len() >= 2 => operands.pop(),
            None => None,
        };
        let recursive =
            opts.has('r', &["--recursive", "--archive"]) || opts.flags.contains(['R', 'a']);
        if let Some(dest) = &dest {
            self.check_destination(dest, &operands, text);
        }
        for source in &operands {
            match transfer {
                Transfer::Move => {
                    self.check_destroy(
                        source,
                        "move_protected_tree",
                        "move away",
                        "move only files of your project",
                        text,
                    );
                    self.check_write(source, text);
                }
                Transfer::Copy if recursive => self.check_home_tree(source, "copies", text),
                Transfer::Copy | Transfer::Link => {}
            }
        }
    }

    /// `rsync`, `scp`: local destinations are writes; copying the home copies its secrets.
    pub fn sync(&mut self, args: &[Word], text: &str) {
        let opts = options::parse(args, &RSYNC, false);
        let mut operands = opts.operands.clone();
        let Some(dest) = operands.pop() else {
            return;
        };
        for source in &operands {
            self.check_home_tree(source, "copies", text);
        }
        let remote = dest
            .text
            .find(':')
            .is_some_and(|colon| !dest.text[..colon].contains('/'));
        if !remote {
            self.check_destination(&dest, &operands, text);
        }
        for shell in opts.values_of('e', &["--rsh", "--rsync-path"]) {
            let program = shell.text.split_whitespace().next().unwrap_or_default();
            if shell.dynamic || !matches!(program, "ssh" | "rsh" | "rsync") {
                self.rule(
                    "remote_shell_command",
                    Decision::Prompt,
                    format!(
                        "`{text}` runs `{}` as its transport; use plain ssh",
                        shell.text
                    ),
                );
            }
        }
    }

    /// Readers: recursive searches over the home read its secrets.
    pub fn reader(&mut self, name: &str, args: &[Word], text: &str) {
        let opts = options::parse(
            args,
            &Spec {
                short: "efmABCd",
                long: &[],
            },
            false,
        );
        let recursive = matches!(name, "rgrep" | "rg" | "ag" | "ack")
            || opts.has('r', &["--recursive", "--dereference-recursive"])
            || opts.flags.contains('R');
        if !recursive {
            return;
        }
        let mut operands = opts.operands.clone();
        if opts.values_of('e', &["--regexp"]).next().is_none()
            && opts.values_of('f', &[]).next().is_none()
            && !operands.is_empty()
        {
            operands.remove(0);
        }
        if operands.is_empty() {
            operands.push(Word::literal("."));
        }
        for word in &operands {
            self.check_home_tree(word, "searches", text);
        }
    }
}

/// Whether a `pkill` regex (or `killall` name) may match `target`: its literal fragments
/// all occur in it. Over-matching only makes the check stricter.
fn pattern_may_match(pattern: &str, target: &str) -> bool {
    let fragments: Vec<String> = pattern
        .to_ascii_lowercase()
        .split(|c: char| "^$.*+?()[]{}|\\".contains(c))
        .filter(|f| !f.is_empty())
        .map(str::to_owned)
        .collect();
    let target = target.to_ascii_lowercase();
    fragments.iter().all(|f| target.contains(f.as_str()))
}
