//! The passphrase that encrypts the wallet keystore: held zeroized, never printed.
//!
//! It comes from a file or an inherited file descriptor (or the interactive wizard), never from
//! an environment variable: the environment is copied into every child process the agent
//! spawns and is readable in `/proc/<pid>/environ`, so a passphrase there would leak to every
//! tool the automaton runs.

use std::fmt;
use std::io::Read;
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// A non-empty wallet passphrase; zeroized on drop, redacted in `Debug`.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase typed by the user (the wizard) or made up by a test.
    ///
    /// An empty passphrase is refused: it would encrypt the key with no secret at all.
    pub fn new(passphrase: String) -> Result<Self> {
        Self::checked(Zeroizing::new(passphrase), "the caller")
    }

    /// Reads the passphrase from a file: its whole content, minus one trailing newline. The
    /// file must be private (mode 0600 or stricter, owned by this user, not a symlink).
    pub fn from_file(path: &Path) -> Result<Self> {
        automaton_tools::secure_fs::check_private_file(path).map_err(|issue| {
            Error::UnsafePassphraseFile {
                path: path.to_owned(),
                issue,
            }
        })?;
        Self::read(path, &path.display().to_string())
    }

    /// Reads the passphrase from an inherited file descriptor (e.g. `--passphrase-fd 3` with
    /// `3<secret` or a pipe), minus one trailing newline.
    ///
    /// Reads through `/proc/self/fd/<fd>`, which needs no `unsafe` and leaves the descriptor
    /// itself open and untouched.
    pub fn from_fd(fd: i32) -> Result<Self> {
        let source_name = format!("file descriptor {fd}");
        if fd < 0 {
            return Err(Error::PassphraseRead {
                source_name,
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            });
        }
        Self::read(Path::new(&format!("/proc/self/fd/{fd}")), &source_name)
    }

    /// The passphrase's bytes, for the key derivation.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    fn read(path: &Path, source_name: &str) -> Result<Self> {
        let read_error = |source| Error::PassphraseRead {
            source_name: source_name.to_owned(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_error)?;
        // Reserve up front so the buffer is not reallocated (leaving unzeroized copies behind)
        // for any passphrase of a sane length.
        let mut text = Zeroizing::new(String::with_capacity(1024));
        file.read_to_string(&mut text).map_err(read_error)?;
        let trimmed_len = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .map(str::len);
        if let Some(len) = trimmed_len {
            text.truncate(len);
        }
        Self::checked(text, source_name)
    }

    fn checked(text: Zeroizing<String>, source_name: &str) -> Result<Self> {
        if text.is_empty() {
            return Err(Error::PassphraseEmpty {
                source_name: source_name.to_owned(),
            });
        }
        Ok(Self(text))
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn from_file_with(content: &[u8]) -> Result<Passphrase> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        Passphrase::from_file(&path)
    }

    #[test]
    fn a_passphrase_file_others_can_read_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "correct horse").unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .unwrap();
        let error = Passphrase::from_file(&path).unwrap_err();
        assert!(
            matches!(error, Error::UnsafePassphraseFile { .. }),
            "{error:?}"
        );
        assert!(error.hint().contains("chmod 600"), "{}", error.hint());
    }

    #[test]
    fn from_file_trims_exactly_one_trailing_newline() {
        let cases: [(&[u8], &str); 5] = [
            (b"hunter2", "hunter2"),
            (b"hunter2\n", "hunter2"),
            (b"hunter2\r\n", "hunter2"),
            (b"hunter2\n\n", "hunter2\n"),
            (b" spaced out \n", " spaced out "),
        ];
        for (content, expected) in cases {
            let passphrase = from_file_with(content).unwrap();
            assert_eq!(passphrase.as_bytes(), expected.as_bytes());
        }
    }

    #[test]
    fn empty_passphrases_are_refused() {
        for content in [&b""[..], b"\n", b"\r\n"] {
            let error = from_file_with(content).unwrap_err();
            assert!(matches!(error, Error::PassphraseEmpty { .. }), "{error:?}");
        }
        let error = Passphrase::new(String::new()).unwrap_err();
        assert!(matches!(error, Error::PassphraseEmpty { .. }), "{error:?}");
    }

    #[test]
    fn from_file_reports_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent");
        let error = Passphrase::from_file(&path).unwrap_err();
        assert!(
            matches!(error, Error::UnsafePassphraseFile { .. }),
            "{error:?}"
        );
        assert!(error.to_string().contains("absent"));
    }

    #[test]
    fn from_fd_reads_an_open_descriptor() {
        let mut file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut file, b"from a descriptor\n").unwrap();
        let passphrase = Passphrase::from_fd(file.as_raw_fd()).unwrap();
        assert_eq!(passphrase.as_bytes(), b"from a descriptor");
    }

    #[test]
    fn from_fd_reads_a_pipe() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        std::io::Write::write_all(&mut writer, b"piped secret\n").unwrap();
        drop(writer);
        let passphrase = Passphrase::from_fd(reader.as_raw_fd()).unwrap();
        assert_eq!(passphrase.as_bytes(), b"piped secret");
    }

    #[test]
    fn from_fd_refuses_bad_descriptors() {
        for fd in [-1, 987_654] {
            let error = Passphrase::from_fd(fd).unwrap_err();
            assert!(matches!(error, Error::PassphraseRead { .. }), "{error:?}");
            assert!(error.to_string().contains(&fd.to_string()));
        }
    }

    #[test]
    fn debug_is_redacted() {
        let passphrase = Passphrase::new("correct horse battery staple".to_owned()).unwrap();
        let debug = format!("{passphrase:?}");
        assert_eq!(debug, "Passphrase(<redacted>)");
        assert!(!debug.contains("horse"));
    }
}
