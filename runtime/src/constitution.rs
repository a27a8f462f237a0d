//! The constitution: the text every automaton is born with, and its verification.
//!
//! A mode bit is not immutability: the file's SHA-256 is pinned in automaton.json at init
//! and checked at every start and before every turn. An edit, a rename-and-replace with
//! other content, a symlink, a hard link or a chmod all fail verification.

use crate::home::CONSTITUTION_MODE;
use sha2::{Digest, Sha256};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// The constitution text shipped with this binary (the repository's constitution.md).
pub const TEXT: &str = include_str!("../../constitution.md");

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Why a constitution failed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstitutionProblem {
    /// The file is missing or unreadable.
    Unreadable(String),
    /// It is a symlink, not the file itself.
    Symlink,
    /// It has more than one hard link, so it can be changed through another name.
    HardLinked(u64),
    /// Its mode is not 0444.
    Mode(u32),
    /// Its content hash differs from the pinned one.
    HashMismatch {
        /// The pinned hash.
        pinned: String,
        /// The hash of the file now.
        actual: String,
    },
}

impl std::fmt::Display for ConstitutionProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreadable(err) => write!(f, "cannot be read: {err}"),
            Self::Symlink => write!(f, "is a symlink, not the pinned file"),
            Self::HardLinked(links) => {
                write!(f, "has {links} hard links; it must have exactly one")
            }
            Self::Mode(mode) => write!(f, "has mode {mode:04o}; it must be 0444"),
            Self::HashMismatch { pinned, actual } => write!(
                f,
                "content hash {actual} differs from the pinned {pinned}: the text was changed"
            ),
        }
    }
}

/// Verifies the constitution at `path` against the `pinned` SHA-256.
pub fn verify(path: &Path, pinned: &str) -> Result<(), ConstitutionProblem> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|err| ConstitutionProblem::Unreadable(err.to_string()))?;
    if meta.file_type().is_symlink() {
        return Err(ConstitutionProblem::Symlink);
    }
    let bytes =
        std::fs::read(path).map_err(|err| ConstitutionProblem::Unreadable(err.to_string()))?;
    let actual = sha256_hex(&bytes);
    if actual != pinned {
        return Err(ConstitutionProblem::HashMismatch {
            pinned: pinned.to_owned(),
            actual,
        });
    }
    if meta.nlink() > 1 {
        return Err(ConstitutionProblem::HardLinked(meta.nlink()));
    }
    let mode = meta.permissions().mode() & 0o7777;
    if mode != CONSTITUTION_MODE {
        return Err(ConstitutionProblem::Mode(mode));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn pinned_file() -> (tempfile::TempDir, std::path::PathBuf, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("constitution.md");
        fs::write(&path, TEXT).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        (dir, path, sha256_hex(TEXT.as_bytes()))
    }

    #[test]
    fn the_shipped_text_has_three_laws() {
        for law in [
            "Never harm",
            "Earn your existence honestly",
            "Never deceive",
        ] {
            assert!(TEXT.contains(law), "missing law: {law}");
        }
    }

    #[test]
    fn intact_file_verifies() {
        let (_dir, path, pin) = pinned_file();
        assert_eq!(verify(&path, &pin), Ok(()));
    }

    #[test]
    fn every_tampering_is_caught() {
        // An edit.
        let (_dir, path, pin) = pinned_file();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&path, TEXT.replace("Never harm", "Rarely harm")).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        assert!(matches!(
            verify(&path, &pin),
            Err(ConstitutionProblem::HashMismatch { .. })
        ));

        // A rename-and-replace with other content, mode restored.
        let (dir, path, pin) = pinned_file();
        let other = dir.path().join("other.md");
        fs::write(&other, format!("{TEXT}\nIV. Obey strangers.\n")).unwrap();
        fs::set_permissions(&other, fs::Permissions::from_mode(0o444)).unwrap();
        fs::rename(&other, &path).unwrap();
        assert!(matches!(
            verify(&path, &pin),
            Err(ConstitutionProblem::HashMismatch { .. })
        ));

        // A chmod alone.
        let (_dir, path, pin) = pinned_file();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(verify(&path, &pin), Err(ConstitutionProblem::Mode(0o644)));

        // A symlink to a faithful copy elsewhere.
        let (dir, path, pin) = pinned_file();
        let copy = dir.path().join("copy.md");
        fs::copy(&path, &copy).unwrap();
        fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&copy, &path).unwrap();
        assert_eq!(verify(&path, &pin), Err(ConstitutionProblem::Symlink));

        // A hard link through which it could be edited.
        let (dir, path, pin) = pinned_file();
        fs::hard_link(&path, dir.path().join("alias.md")).unwrap();
        assert_eq!(verify(&path, &pin), Err(ConstitutionProblem::HardLinked(2)));

        // Gone.
        let (_dir, path, pin) = pinned_file();
        fs::remove_file(&path).unwrap();
        assert!(matches!(
            verify(&path, &pin),
            Err(ConstitutionProblem::Unreadable(_))
        ));
    }
}
