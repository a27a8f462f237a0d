//! The rules for programs whose danger is in their operands: destroying files, disks and
//! permissions (`rm`, `dd`, `mkfs`, `shred`, `chmod -R`), moving, copying and linking onto
//! protected files or into trees that hold them, and copying or searching trees that hold
//! secrets. Signals live in `signals`.

use super::PathAccess;
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
                self.check_tree(
                    word,
                    PathAccess::Write,
                    "rm_recursive_protected",
                    "deletes the tree",
                    text,
                );
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
                self.note_written_word(&target);
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
                self.check_tree(
                    word,
                    PathAccess::Write,
                    "recursive_perm_protected",
                    "recursively changes permissions or owners of",
                    text,
                );
            }
            self.check_write(word, text);
        }
    }

    /// `cp`, `install`, `mv`, `ln`: destinations (and the file each source becomes in a
    /// destination directory) are writes; `mv` also removes its sources; a recursive copy
    /// into a tree that holds protected files (`cp -r . ..`) is forbidden because the names
    /// it writes there cannot be listed; links are remembered for the rest of the command.
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
        let symbolic = opts.has('s', &["--symbolic", "--symbolic-link"]);
        let links = transfer == Transfer::Link || opts.has('l', &["--link"]) || symbolic;
        if let Some(dest) = &dest {
            self.check_destination(dest, &operands, text);
            if recursive && transfer != Transfer::Link {
                self.check_tree(
                    dest,
                    PathAccess::Write,
                    "copy_over_protected",
                    "copies a tree into",
                    text,
                );
            }
            if links {
                self.note_links(&operands, dest, symbolic);
            }
            let from_stream = operands.iter().any(|w| {
                w.procsub
                    || w.dynamic
                    || w.text.starts_with("/dev/")
                    || w.text.starts_with("/proc/self/fd")
            });
            if from_stream {
                self.note_written_word(dest);
            }
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
                    self.check_tree(
                        source,
                        PathAccess::Write,
                        "move_protected_tree",
                        "moves the tree",
                        text,
                    );
                    self.check_write(source, text);
                }
                Transfer::Copy if recursive => self.check_home_tree(source, "copies", text),
                Transfer::Copy | Transfer::Link => {}
            }
        }
    }

    /// `rsync`, `scp`: local destinations are writes; copying a tree that holds secrets
    /// copies them; a recursive copy into a tree that holds protected files is forbidden.
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
        let recursive = opts.has('r', &["--recursive", "--archive"]) || opts.flags.contains('a');
        if !remote {
            self.check_destination(&dest, &operands, text);
            if recursive {
                self.check_tree(
                    &dest,
                    PathAccess::Write,
                    "copy_over_protected",
                    "copies a tree into",
                    text,
                );
            }
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
