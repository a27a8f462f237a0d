//! Fixtures shared by the suite: temp homes and hand-written wallet files.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// A temp dir and the wallet path inside it (the dir is removed when dropped).
pub struct Home {
    pub dir: tempfile::TempDir,
    pub wallet: PathBuf,
}

pub fn home() -> Home {
    let dir = tempfile::tempdir().unwrap();
    let wallet = dir.path().join("wallet.json");
    Home { dir, wallet }
}

/// Writes `bytes` as a fresh 0600 file, as a user restoring a backup would.
pub fn write_private(path: &Path, bytes: &[u8]) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

pub fn mode_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}
