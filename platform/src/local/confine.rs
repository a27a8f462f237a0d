//! Confinement of the apps and builds the local platform runs: a deploy is code execution,
//! and without this an app could read whatever the platform's user can (an automaton's
//! wallet, the platform's admin token, other projects' releases). With Landlock (Linux 5.13
//! and later, enforced even for root) a confined process and all its children may read and
//! execute only the system's directories and its `PATH`, and write only its own release
//! directory (its `TMPDIR` is `<release>/.tmp`: `/tmp` is shared by everyone, so it is
//! closed), `/dev/shm` and a few device files; everything else is `EACCES`.
//!
//! Landlock restricts the calling thread, so the rules are applied by a small wrapper between
//! fork and exec: `automaton platform confine --rw DIR -- sh -c …` calls [`restrict`] and then
//! execs the command. The platform uses the wrapper when [`LocalOptions::confine_with`] names
//! it (`platform serve` does, when [`available`] says the kernel enforces Landlock).
//!
//! [`LocalOptions::confine_with`]: super::LocalOptions::confine_with

use landlock::{
    ABI, Access, AccessFs, CompatLevel, Compatible, RestrictionStatus, Ruleset, RulesetAttr,
    RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use std::path::{Path, PathBuf};

/// The Landlock ABI the rules are written for (6: signals and abstract unix sockets are
/// scoped, so a confined process cannot signal or connect to a process outside its domain).
const TARGET_ABI: ABI = ABI::V6;

/// System directories a confined process may read and execute from.
const SYSTEM_DIRS: [&str; 10] = [
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/proc",
];
/// Device files a confined process may read and write.
const DEVICES: [&str; 5] = [
    "/dev/null",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];
/// Directories anyone may write (besides the process's own). Not `/tmp`: other programs of
/// the machine keep files there, so confined processes get a private `TMPDIR` instead.
const SHARED_WRITABLE: [&str; 1] = ["/dev/shm"];
/// The private temporary directory inside the first writable directory.
pub const PRIVATE_TMP: &str = ".tmp";
/// The prefix the app's own env travels under through the wrapper: the wrapper runs
/// unconfined, so none of it (`LD_PRELOAD`, `LD_LIBRARY_PATH`, `PATH`, …) may act on it. The
/// wrapper strips the prefix once the rules apply, just before it execs the app.
pub const APP_ENV_PREFIX: &str = "AUTOMATON_CONFINED_ENV_";

/// Why a process could not be confined.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    /// The kernel does not enforce Landlock (too old, or disabled at boot).
    #[error("this kernel does not enforce Landlock ({0})")]
    Unsupported(String),
    /// Building or applying the rules failed.
    #[error("the confinement rules could not be applied: {0}")]
    Rules(String),
}

/// Whether this kernel enforces Landlock: probed in a short-lived thread, which is the only
/// one it restricts.
pub fn available() -> bool {
    std::thread::spawn(|| restrict(&[], &[]).is_ok())
        .join()
        .unwrap_or(false)
}

/// Confines the calling thread (and every process it starts from now on): read and execute
/// only beneath the system directories and `readable`, write only beneath `writable`,
/// `/dev/shm` and the usual device files. Fails (rather than running unconfined) when the
/// kernel does not fully enforce the rules.
pub fn restrict(
    writable: &[PathBuf],
    readable: &[PathBuf],
) -> Result<RestrictionStatus, ConfineError> {
    let read = AccessFs::from_read(TARGET_ABI);
    let all = AccessFs::from_all(TARGET_ABI);
    let existing = |paths: Vec<PathBuf>| -> Vec<PathBuf> {
        paths.into_iter().filter(|path| path.exists()).collect()
    };
    let readable = existing(
        SYSTEM_DIRS
            .iter()
            .map(PathBuf::from)
            .chain(readable.iter().cloned())
            .collect(),
    );
    let writable = existing(
        SHARED_WRITABLE
            .iter()
            .chain(DEVICES.iter())
            .map(PathBuf::from)
            .chain(writable.iter().cloned())
            .collect(),
    );
    let rules_error = |err: landlock::RulesetError| ConfineError::Rules(err.to_string());
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(all)
        .map_err(rules_error)?
        .scope(Scope::Signal | Scope::AbstractUnixSocket)
        .map_err(rules_error)?
        .create()
        .map_err(rules_error)?
        .add_rules(path_beneath_rules(readable, read))
        .map_err(rules_error)?
        .add_rules(path_beneath_rules(writable, all))
        .map_err(rules_error)?
        .restrict_self()
        .map_err(rules_error)?;
    drop_capabilities()?;
    match status.ruleset {
        RulesetStatus::FullyEnforced | RulesetStatus::PartiallyEnforced => Ok(status),
        RulesetStatus::NotEnforced => {
            Err(ConfineError::Unsupported(format!("{:?}", status.landlock)))
        }
    }
}

/// Drops every capability of the calling thread, and keeps an exec from giving them back (a
/// platform running as root would otherwise run its apps with all of them: `reboot(2)`,
/// `init_module(2)`, … are no file access, and Landlock does not cover them).
fn drop_capabilities() -> Result<(), ConfineError> {
    use rustix::thread::{CapabilitySet, CapabilitySets};
    let dropping =
        |err: rustix::io::Errno| ConfineError::Rules(format!("dropping capabilities: {err}"));
    for bit in 0..64 {
        // Past the kernel's last capability, or without CAP_SETPCAP (not root: then the
        // bounding set gives nothing at exec under no_new_privs): nothing to drop.
        let _ = rustix::thread::remove_capability_from_bounding_set(
            CapabilitySet::from_bits_retain(1 << bit),
        );
    }
    let _ = rustix::thread::clear_ambient_capability_set();
    rustix::thread::set_capabilities(
        None,
        CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        },
    )
    .map_err(dropping)
}

/// What a `PATH` value opens for reading, for [`restrict`]'s `readable`: its absolute
/// directories; for a `shims` entry in a hidden tool root, that root (`~/.pyenv/shims`
/// opens `~/.pyenv`, where the shims find their interpreters); for `~/.cargo/bin`,
/// `~/.rustup` (where rustup's proxies find their toolchains) but not `~/.cargo`, which
/// holds registry credentials. Never a home directory or `/` itself.
pub fn path_dirs(path: &str) -> Vec<PathBuf> {
    let hidden = |dir: &Path| {
        dir.file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'))
    };
    let mut dirs = Vec::new();
    for dir in std::env::split_paths(path).filter(|dir| dir.is_absolute()) {
        let parent = dir.parent().filter(|parent| hidden(parent));
        let opened = match (dir.file_name(), parent) {
            (Some(name), Some(root)) if name == "shims" => Some(root.to_path_buf()),
            (Some(name), Some(root))
                if name == "bin" && root.file_name().is_some_and(|n| n == ".cargo") =>
            {
                root.parent().map(|home| home.join(".rustup"))
            }
            _ => None,
        };
        dirs.push(dir);
        dirs.extend(opened);
    }
    dirs
}

/// The wrapped command: `confine_with platform confine --rw DIR [--rw MORE…] -- sh -c command`.
pub fn wrapped(
    confine_with: &Path,
    writable: &Path,
    also_writable: &[PathBuf],
    command: &str,
) -> tokio::process::Command {
    let mut process = tokio::process::Command::new(confine_with);
    process.args(["platform", "confine"]);
    for dir in std::iter::once(writable).chain(also_writable.iter().map(PathBuf::as_path)) {
        process.arg("--rw").arg(dir);
    }
    process.args(["--", "sh", "-c", command]);
    process
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `work` in a fresh thread confined to `writable`; Landlock restricts only it.
    fn confined<T: Send + 'static>(
        writable: Vec<PathBuf>,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        std::thread::spawn(move || {
            restrict(&writable, &[]).unwrap();
            work()
        })
        .join()
        .unwrap()
    }

    #[test]
    fn a_confined_thread_reads_and_writes_its_own_release_and_nothing_of_the_platform_s() {
        if !available() {
            // The platform says so at start and runs apps unconfined; nothing to check here.
            eprintln!("SKIPPED: this kernel does not enforce Landlock");
            return;
        }
        let outside = tempfile::tempdir().unwrap();
        let release = outside.path().join("releases/shop/api/rel_1");
        std::fs::create_dir_all(&release).unwrap();
        std::fs::write(release.join("main.py"), "print('hi')").unwrap();
        let wallet = outside.path().join("wallet.json");
        std::fs::write(&wallet, "{\"key\": \"secret\"}").unwrap();
        let other = outside.path().join("releases/other/web/rel_2");
        std::fs::create_dir_all(&other).unwrap();

        let (own, wrote, secret, other_write, system, tmp) = confined(vec![release.clone()], {
            let (release, wallet, other) = (release.clone(), wallet.clone(), other.clone());
            move || {
                (
                    std::fs::read_to_string(release.join("main.py")).is_ok(),
                    std::fs::write(release.join("data.db"), "x").is_ok(),
                    std::fs::read_to_string(&wallet).map_err(|e| e.kind()),
                    std::fs::write(other.join("evil"), "x").map_err(|e| e.kind()),
                    std::fs::read_to_string("/etc/hostname").is_ok()
                        || std::fs::read_to_string("/etc/passwd").is_ok(),
                    std::fs::write(std::env::temp_dir().join("confined-probe"), "x")
                        .map_err(|e| e.kind()),
                )
            }
        });
        assert!(own && wrote && system);
        assert_eq!(
            tmp,
            Err(std::io::ErrorKind::PermissionDenied),
            "/tmp is closed"
        );
        assert_eq!(secret, Err(std::io::ErrorKind::PermissionDenied));
        assert_eq!(other_write, Err(std::io::ErrorKind::PermissionDenied));
        // This thread was never confined.
        assert!(std::fs::read_to_string(&wallet).is_ok());
    }

    /// Review finding: the rules do not scope signals (Landlock ABI 6), so a confined app can
    /// kill any process of the platform's user: the daemon, the agent, other projects' apps.
    #[test]
    fn a_confined_thread_cannot_signal_a_process_outside_its_confinement() {
        if !available() {
            eprintln!("SKIPPED: this kernel does not enforce Landlock");
            return;
        }
        let mut outsider = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = rustix::process::Pid::from_raw(i32::try_from(outsider.id()).unwrap()).unwrap();
        let signalled = confined(Vec::new(), move || {
            rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
        });
        let _ = outsider.kill();
        let _ = outsider.wait();
        assert!(!signalled, "a confined thread killed a process outside it");
    }

    /// Review finding: what `/proc` shows a confined thread of a process outside it (the
    /// daemon, the agent, another app of the same user): its environment (API keys, tokens)
    /// and its memory (read and write: code injection into an unconfined process) are open.
    #[test]
    fn a_confined_thread_reads_no_secret_of_an_outside_process_through_proc() {
        if !available() {
            eprintln!("SKIPPED: this kernel does not enforce Landlock");
            return;
        }
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("wallet.json"), "secret").unwrap();
        let mut outsider = std::process::Command::new("sleep")
            .arg("30")
            .env("SECRET_TOKEN", "x")
            .current_dir(outside.path())
            .spawn()
            .unwrap();
        let proc = PathBuf::from(format!("/proc/{}", outsider.id()));
        let (environ, cwd, root, mem, cmdline) = confined(Vec::new(), move || {
            (
                std::fs::read(proc.join("environ")).is_ok_and(|environ| !environ.is_empty()),
                std::fs::read(proc.join("cwd/wallet.json")).is_ok(),
                std::fs::read_dir(proc.join("root/tmp")).is_ok(),
                // The process's memory: its secrets, and with write access its code.
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(proc.join("mem"))
                    .is_ok(),
                std::fs::read(proc.join("cmdline")).is_ok(),
            )
        });
        let _ = outsider.kill();
        let _ = outsider.wait();
        assert!(
            !environ && !cwd && !root && !mem,
            "environ {environ}, cwd {cwd}, root {root}, mem {mem}"
        );
        // The command line stays readable (as to any user of the machine): secrets never go
        // on one.
        assert!(cmdline);
    }

    /// Review finding: a platform running as root (as in this test) runs its apps as root
    /// with every capability, which Landlock does not take away: `reboot(2)`,
    /// `init_module(2)`, raw sockets, `ptrace` of anything its domain allows, … are one
    /// syscall away for a deployed app.
    #[test]
    fn a_confined_thread_keeps_no_capability() {
        if !available() {
            eprintln!("SKIPPED: this kernel does not enforce Landlock");
            return;
        }
        let effective = confined(Vec::new(), || {
            std::fs::read_to_string("/proc/thread-self/status")
                .unwrap()
                .lines()
                .find_map(|line| line.strip_prefix("CapEff:").map(|v| v.trim().to_owned()))
                .unwrap()
        });
        assert_eq!(effective, "0000000000000000");
    }

    /// Review finding: the same for a platform that does not run as root (the usual case):
    /// an outside process of the same user, holding no more capability than the app.
    #[test]
    fn a_confined_thread_of_an_unprivileged_user_reads_no_environment_outside_it() {
        if !available() || !rustix::process::geteuid().is_root() {
            eprintln!("SKIPPED: needs Landlock, and root to take another user's identity");
            return;
        }
        use std::os::unix::process::CommandExt;
        let nobody = 65534;
        let mut outsider = std::process::Command::new("sleep")
            .arg("30")
            .env("SECRET_TOKEN", "x")
            .uid(nobody)
            .gid(nobody)
            .spawn()
            .unwrap();
        let proc = PathBuf::from(format!("/proc/{}", outsider.id()));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let environ = std::thread::spawn(move || {
            let uid = rustix::process::Uid::from_raw(nobody);
            let gid = rustix::process::Gid::from_raw(nobody);
            rustix::thread::set_thread_res_gid(gid, gid, gid).unwrap();
            rustix::thread::set_thread_res_uid(uid, uid, uid).unwrap();
            restrict(&[], &[]).unwrap();
            std::fs::read(proc.join("environ")).is_ok_and(|environ| !environ.is_empty())
        })
        .join()
        .unwrap();
        let _ = outsider.kill();
        let _ = outsider.wait();
        assert!(
            !environ,
            "a confined thread read the environment of a process outside it"
        );
    }

    #[test]
    fn path_dirs_open_their_entries_and_only_the_tool_roots_shims_need() {
        assert_eq!(
            path_dirs("/usr/local/bin:relative:/opt/node/bin:"),
            vec![
                PathBuf::from("/usr/local/bin"),
                PathBuf::from("/opt/node/bin")
            ]
        );
        assert_eq!(
            path_dirs("/root/.pyenv/shims:/home/me/bin:/home/me/.cargo/bin"),
            vec![
                PathBuf::from("/root/.pyenv/shims"),
                PathBuf::from("/root/.pyenv"),
                PathBuf::from("/home/me/bin"),
                PathBuf::from("/home/me/.cargo/bin"),
                PathBuf::from("/home/me/.rustup"),
            ]
        );
        assert_eq!(
            path_dirs("/home/me/.local/bin"),
            vec![PathBuf::from("/home/me/.local/bin")],
            "a bin directory opens only itself"
        );
    }
}
