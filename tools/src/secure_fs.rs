//! Private files in the automaton's home: writing them atomically and checking them before use.
//!
//! The wallet key and the config must never be readable by anyone but the automaton's user,
//! not even for the instant between `open` and `chmod`, and a crash mid-write must leave either
//! the old file or the new one, never half of one. So every write goes to a temp file created
//! with `O_EXCL` and its final mode in the same directory, is synced, then renamed into place,
//! and the directory is synced. Before a private file is used it is checked without following
//! links: a symlink, a second hard link, a group/other permission bit or a foreign owner each
//! mean someone else may read or swap the secret, and each is refused with a fix to run.

use std::fmt;
use std::fs::{File, Metadata, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{Mode, OFlags, RenameFlags};
use rustix::io::Errno;

/// Replaces `path` atomically with `bytes`; the file ends with exactly `mode` (umask aside,
/// it is never wider than `mode` at any instant).
///
/// A symlink at `path` is replaced by the new file, never followed.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let target = Target::of(path)?;
    let mut temp = TempFile::write(&target, bytes, mode)?;
    rustix::fs::renameat(&target.dir, &temp.name, &target.dir, &target.name)?;
    temp.disarm();
    rustix::fs::fsync(&target.dir)?;
    Ok(())
}

/// Creates `path` atomically with `bytes` and exactly `mode`; never replaces an existing file.
///
/// An existing `path` (file, directory or symlink, even a dangling one) fails with
/// [`io::ErrorKind::AlreadyExists`] and is left untouched. The temp file is removed on every
/// failure path.
pub fn create_new_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let target = Target::of(path)?;
    let mut temp = TempFile::write(&target, bytes, mode)?;
    match rustix::fs::renameat_with(
        &target.dir,
        &temp.name,
        &target.dir,
        &target.name,
        RenameFlags::NOREPLACE,
    ) {
        Ok(()) => temp.disarm(),
        // Filesystems without renameat2 flags: link(2) never replaces either.
        Err(Errno::INVAL | Errno::NOSYS) => {
            rustix::fs::linkat(
                &target.dir,
                &temp.name,
                &target.dir,
                &target.name,
                rustix::fs::AtFlags::empty(),
            )?;
            // The guard unlinks the temp name; the data lives on under `path`.
        }
        Err(errno) => return Err(errno.into()),
    }
    drop(temp);
    rustix::fs::fsync(&target.dir)?;
    Ok(())
}

/// Why a file may not be trusted to hold a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSafetyIssue {
    /// Nothing exists at the path.
    Missing,
    /// The path could not be inspected (a parent is not a directory, permission denied, …).
    Inaccessible {
        /// What the operating system answered.
        kind: io::ErrorKind,
    },
    /// The path is a symbolic link; whoever controls the link controls what is read.
    Symlink,
    /// The path is a directory, FIFO, socket or device, not a regular file.
    NotRegularFile,
    /// The file has more than one name; another name may sit where others can read it.
    HardLinked {
        /// The number of names (`st_nlink`).
        links: u64,
    },
    /// Group or other users have some permission on the file.
    TooPermissive {
        /// The file's permission bits (`st_mode & 0o7777`).
        mode: u32,
    },
    /// The file belongs to another user, who can read or replace it.
    ForeignOwner {
        /// The file's owner.
        owner_uid: u32,
        /// The effective uid of this process.
        expected_uid: u32,
    },
}

impl FileSafetyIssue {
    /// A sentence naming the file and what is wrong with it.
    pub fn message(&self, path: &Path) -> String {
        format!("{} {self}", path.display())
    }

    /// A concrete command (or step) that makes the file safe to use.
    pub fn fix(&self, path: &Path) -> String {
        let quoted = shell_quote(path);
        match self {
            Self::Missing => format!(
                "create {quoted} (or restore it from a backup) with mode 0600, or check the path"
            ),
            Self::Inaccessible { .. } => format!(
                "check that every directory above {quoted} exists and is searchable by this user (`ls -ld {}`)",
                shell_quote(path.parent().unwrap_or(Path::new("/")))
            ),
            Self::Symlink => format!(
                "replace the link with the file it points to: `cp --remove-destination \"$(readlink -f {quoted})\" {quoted} && chmod 600 {quoted}`"
            ),
            Self::NotRegularFile => format!(
                "move it aside (`mv {quoted} {}`) and put a regular file with mode 0600 there",
                shell_quote(&with_suffix(path, ".bad"))
            ),
            Self::HardLinked { .. } => format!(
                "`find / -xdev -samefile {quoted}` lists every name of this file; `rm` each one except {quoted}"
            ),
            Self::TooPermissive { .. } => format!("chmod 600 {quoted}"),
            Self::ForeignOwner { expected_uid, .. } => {
                format!("chown {expected_uid} {quoted} && chmod 600 {quoted}")
            }
        }
    }
}

impl fmt::Display for FileSafetyIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => f.write_str("does not exist"),
            Self::Inaccessible { kind } => write!(f, "cannot be inspected: {kind}"),
            Self::Symlink => {
                f.write_str("is a symbolic link; a private file must be the file itself")
            }
            Self::NotRegularFile => f.write_str("is not a regular file"),
            Self::HardLinked { links } => write!(
                f,
                "has {links} hard links; another name for it may be readable by others"
            ),
            Self::TooPermissive { mode } => write!(
                f,
                "has mode {mode:04o}; group and other users must have no access (want 0600)"
            ),
            Self::ForeignOwner {
                owner_uid,
                expected_uid,
            } => write!(
                f,
                "is owned by uid {owner_uid}, not by this process's uid {expected_uid}"
            ),
        }
    }
}

impl std::error::Error for FileSafetyIssue {}

/// Checks, without following links, that `path` is a regular file with one name, owned by this
/// process's effective user, with no group or other permission bits.
pub fn check_private_file(path: &Path) -> Result<Metadata, FileSafetyIssue> {
    let metadata = std::fs::symlink_metadata(path).map_err(|error| issue_from_io(&error))?;
    check_private_metadata(&metadata)?;
    Ok(metadata)
}

/// Opens `path` for reading with the checks of [`check_private_file`] applied to the opened
/// file itself (`O_NOFOLLOW`, then `fstat`), so the file read is the file checked.
pub fn open_private_file(path: &Path) -> Result<File, FileSafetyIssue> {
    // O_NONBLOCK: opening a FIFO planted at the path must not hang; it is refused below.
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let file = match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(Errno::LOOP) => return Err(FileSafetyIssue::Symlink),
        Err(errno) => return Err(issue_from_io(&errno.into())),
    };
    let metadata = file.metadata().map_err(|error| issue_from_io(&error))?;
    check_private_metadata(&metadata)?;
    Ok(file)
}

fn check_private_metadata(metadata: &Metadata) -> Result<(), FileSafetyIssue> {
    let file_type = metadata.file_type();
    if file_type.is_symlink() {
        return Err(FileSafetyIssue::Symlink);
    }
    if !file_type.is_file() {
        return Err(FileSafetyIssue::NotRegularFile);
    }
    if metadata.nlink() > 1 {
        return Err(FileSafetyIssue::HardLinked {
            links: metadata.nlink(),
        });
    }
    let mode = metadata.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(FileSafetyIssue::TooPermissive { mode });
    }
    let expected_uid = rustix::process::geteuid().as_raw();
    if metadata.uid() != expected_uid {
        return Err(FileSafetyIssue::ForeignOwner {
            owner_uid: metadata.uid(),
            expected_uid,
        });
    }
    Ok(())
}

fn issue_from_io(error: &io::Error) -> FileSafetyIssue {
    match error.kind() {
        io::ErrorKind::NotFound => FileSafetyIssue::Missing,
        kind => FileSafetyIssue::Inaccessible { kind },
    }
}

/// The directory (opened, for `*at` calls and fsync) and final name of a file being written.
struct Target {
    dir_path: PathBuf,
    dir: rustix::fd::OwnedFd,
    name: std::ffi::OsString,
}

impl Target {
    fn of(path: &Path) -> io::Result<Self> {
        let name = path.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} does not name a file", path.display()),
            )
        })?;
        let dir_path = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = rustix::fs::open(
            &dir_path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Self {
            dir_path,
            dir,
            name: name.to_os_string(),
        })
    }
}

/// A written, synced temp file next to the target; removed on drop unless disarmed.
struct TempFile {
    path: PathBuf,
    name: std::ffi::OsString,
    armed: bool,
}

impl TempFile {
    fn write(target: &Target, bytes: &[u8], mode: u32) -> io::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let pid = std::process::id();
        let mut attempt = 0;
        let (temp, mut file) = loop {
            let mut name = std::ffi::OsString::from(".");
            name.push(&target.name);
            name.push(format!(
                ".{pid}.{}.tmp",
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ));
            let path = target.dir_path.join(&name);
            // create_new is O_CREAT|O_EXCL, which also refuses to follow a symlink planted there.
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&path)
            {
                Ok(file) => {
                    let temp = Self {
                        path,
                        name,
                        armed: true,
                    };
                    break (temp, file);
                }
                // A stale temp from an earlier process with the same pid: take the next name.
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => {
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        };
        // The umask may have narrowed `mode`; set it exactly (never wider than asked).
        file.set_permissions(Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        Ok(temp)
    }

    fn disarm(&mut self) {
        self.armed = false;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            // Best effort: the error that got us here is the one worth reporting.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// Quotes a path for a POSIX shell when it holds anything beyond a safe set of characters.
fn shell_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    let safe = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:@%,=~".contains(c));
    if safe {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode_of(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn dir_entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn private_file(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        create_new_atomic(&path, b"secret", 0o600).unwrap();
        path
    }

    #[test]
    fn create_new_atomic_creates_exactly_0600_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        create_new_atomic(&path, b"hello", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        assert_eq!(mode_of(&path), 0o600);
        assert_eq!(dir_entries(dir.path()), ["wallet.json"]);
    }

    #[test]
    fn create_new_atomic_refuses_to_overwrite_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        create_new_atomic(&path, b"original", 0o600).unwrap();
        let error = create_new_atomic(&path, b"replacement", 0o600).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&path).unwrap(), b"original");
        assert_eq!(dir_entries(dir.path()), ["wallet.json"]);
    }

    #[test]
    fn create_new_atomic_refuses_a_dangling_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wallet.json");
        let elsewhere = dir.path().join("elsewhere");
        symlink(&elsewhere, &path).unwrap();
        let error = create_new_atomic(&path, b"key", 0o600).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AlreadyExists);
        assert!(!elsewhere.exists());
        assert_eq!(dir_entries(dir.path()), ["wallet.json"]);
    }

    #[test]
    fn write_atomic_replaces_content_and_sets_exact_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("automaton.json");
        write_atomic(&path, b"one", 0o644).unwrap();
        write_atomic(&path, b"two", 0o600).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(mode_of(&path), 0o600);
        write_atomic(&path, b"three", 0o444).unwrap();
        assert_eq!(mode_of(&path), 0o444);
        assert_eq!(dir_entries(dir.path()), ["automaton.json"]);
    }

    #[test]
    fn write_atomic_replaces_a_symlink_instead_of_following_it() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"untouched").unwrap();
        let path = dir.path().join("config");
        symlink(&victim, &path).unwrap();
        write_atomic(&path, b"new", 0o600).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"untouched");
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
    }

    #[test]
    fn write_atomic_into_a_missing_directory_fails_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let error = write_atomic(&dir.path().join("nope/file"), b"x", 0o600).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::NotFound);
        assert!(dir_entries(dir.path()).is_empty());
    }

    #[test]
    fn check_private_file_accepts_a_private_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = private_file(dir.path(), "ok");
        assert_eq!(check_private_file(&path).unwrap().len(), 6);
        assert!(open_private_file(&path).is_ok());
    }

    #[test]
    fn check_private_file_refuses_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        assert_eq!(
            check_private_file(&path).unwrap_err(),
            FileSafetyIssue::Missing
        );
        assert_eq!(
            open_private_file(&path).unwrap_err(),
            FileSafetyIssue::Missing
        );
    }

    #[test]
    fn check_private_file_refuses_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = private_file(dir.path(), "real");
        let link = dir.path().join("link");
        symlink(&real, &link).unwrap();
        assert_eq!(
            check_private_file(&link).unwrap_err(),
            FileSafetyIssue::Symlink
        );
        assert_eq!(
            open_private_file(&link).unwrap_err(),
            FileSafetyIssue::Symlink
        );
        assert!(FileSafetyIssue::Symlink.fix(&link).contains("readlink -f"));
    }

    #[test]
    fn check_private_file_refuses_directory_and_fifo() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        std::fs::set_permissions(&sub, Permissions::from_mode(0o700)).unwrap();
        assert_eq!(
            check_private_file(&sub).unwrap_err(),
            FileSafetyIssue::NotRegularFile
        );
        let fifo = dir.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert_eq!(
            check_private_file(&fifo).unwrap_err(),
            FileSafetyIssue::NotRegularFile
        );
        // Opening must not block on the FIFO.
        assert_eq!(
            open_private_file(&fifo).unwrap_err(),
            FileSafetyIssue::NotRegularFile
        );
    }

    #[test]
    fn check_private_file_refuses_hard_link() {
        let dir = tempfile::tempdir().unwrap();
        let path = private_file(dir.path(), "key");
        std::fs::hard_link(&path, dir.path().join("copy")).unwrap();
        let issue = check_private_file(&path).unwrap_err();
        assert_eq!(issue, FileSafetyIssue::HardLinked { links: 2 });
        assert_eq!(open_private_file(&path).unwrap_err(), issue);
        assert!(issue.fix(&path).contains("-samefile"));
    }

    #[test]
    fn check_private_file_refuses_group_or_other_bits() {
        let dir = tempfile::tempdir().unwrap();
        let path = private_file(dir.path(), "key");
        for mode in [0o640, 0o604, 0o644, 0o610, 0o601] {
            std::fs::set_permissions(&path, Permissions::from_mode(mode)).unwrap();
            let issue = check_private_file(&path).unwrap_err();
            assert_eq!(issue, FileSafetyIssue::TooPermissive { mode });
            assert_eq!(open_private_file(&path).unwrap_err(), issue);
            assert_eq!(issue.fix(&path), format!("chmod 600 {}", path.display()));
        }
        // Owner-only modes are fine, including read-only.
        std::fs::set_permissions(&path, Permissions::from_mode(0o400)).unwrap();
        assert!(check_private_file(&path).is_ok());
    }

    #[test]
    fn check_private_file_refuses_foreign_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = private_file(dir.path(), "key");
        let me = rustix::process::geteuid();
        if !me.is_root() {
            // Only root can give a file away; CI runs the suites as root.
            return;
        }
        let nobody = rustix::process::Uid::from_raw(65534);
        rustix::fs::chown(&path, Some(nobody), None).unwrap();
        let issue = check_private_file(&path).unwrap_err();
        assert_eq!(
            issue,
            FileSafetyIssue::ForeignOwner {
                owner_uid: 65534,
                expected_uid: me.as_raw(),
            }
        );
        assert_eq!(open_private_file(&path).unwrap_err(), issue);
        assert!(
            issue
                .fix(&path)
                .starts_with(&format!("chown {}", me.as_raw()))
        );
    }

    #[test]
    fn fixes_quote_paths_for_the_shell() {
        let path = Path::new("/home/a b/it's");
        assert_eq!(
            FileSafetyIssue::TooPermissive { mode: 0o644 }.fix(path),
            r"chmod 600 '/home/a b/it'\''s'"
        );
        let message = FileSafetyIssue::TooPermissive { mode: 0o644 }.message(path);
        assert!(message.contains("0644"), "{message}");
    }
}
