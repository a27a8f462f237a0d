//! A deploy's source: a directory packed as a gzipped tarball (seed 000: 512 MB at most,
//! `.git`, `node_modules`, `.conway`, `__pycache__` and `.venv` always left out, more in
//! `.conwayignore`), and the safe unpacking of such a tarball into a release directory.
//!
//! Packing is deterministic — entries sorted by name, owners and times zeroed, modes reduced
//! to `0644`/`0755` — so the same source always gives the same SHA-256, and a release is
//! content-addressed by it: deploying an unchanged directory twice names the same release.
//!
//! Unpacking trusts nothing about the archive (the REST gateway accepts uploads): every path
//! must stay inside the destination, symlinks may only point inside it, no file is written
//! through a symlink, hard links and device files are refused, and the unpacked size is
//! capped so a small archive cannot fill the disk.

use crate::error::{Error, ErrorCode, Result};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Component, Path, PathBuf};

/// The largest source archive accepted, in bytes (seed 000).
pub const MAX_SOURCE_BYTES: u64 = 512 * 1024 * 1024;
/// The most an archive may unpack to, in bytes.
pub const MAX_UNPACKED_BYTES: u64 = 4 * MAX_SOURCE_BYTES;
/// Names never packed, wherever they appear in the tree.
pub const ALWAYS_EXCLUDED: [&str; 5] = [".git", "node_modules", ".conway", "__pycache__", ".venv"];
/// The file at the source root listing more prefixes to leave out, one per line.
pub const IGNORE_FILE: &str = ".conwayignore";

/// What `.conwayignore` (and the fixed list) leaves out of a source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreRules {
    /// Path prefixes relative to the source root, by whole components (`dist` leaves out
    /// `dist` and `dist/…`, not `distribution`).
    prefixes: Vec<Vec<String>>,
}

impl IgnoreRules {
    /// Reads `<root>/.conwayignore` (blank lines and `#` comments skipped; a leading `/` or
    /// `./` and a trailing `/` are allowed). No file means no extra rules.
    pub fn load(root: &Path) -> Result<Self> {
        match std::fs::read_to_string(root.join(IGNORE_FILE)) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(Error::new(
                ErrorCode::InvalidInput,
                format!("{IGNORE_FILE} cannot be read: {err}"),
            )
            .with_hint(format!(
                "make {IGNORE_FILE} a readable text file of path prefixes, one per line"
            ))),
        }
    }

    /// The rules in `text`.
    pub fn parse(text: &str) -> Self {
        let prefixes = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                line.trim_start_matches("./")
                    .split('/')
                    .filter(|part| !part.is_empty() && *part != ".")
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter(|parts| !parts.is_empty())
            .collect();
        Self { prefixes }
    }

    /// Whether the entry at `relative` (its components from the root) is left out.
    pub fn excludes(&self, relative: &[String]) -> bool {
        relative
            .iter()
            .any(|part| ALWAYS_EXCLUDED.contains(&part.as_str()))
            || self.prefixes.iter().any(|prefix| {
                relative.len() >= prefix.len() && relative[..prefix.len()] == prefix[..]
            })
    }
}

/// A packed source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackedSource {
    /// The archive written.
    pub path: PathBuf,
    /// SHA-256 of the archive, lowercase hex: the release's content address.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Regular files and symlinks packed.
    pub files: u64,
}

/// Packs `dir` into a gzipped tarball at `out`, refusing past `limit` compressed bytes with
/// `SOURCE_TOO_LARGE` (which names the largest entries so the caller knows what to ignore).
pub fn pack(dir: &Path, out: &Path, limit: u64) -> Result<PackedSource> {
    let root_meta = std::fs::metadata(dir).map_err(|err| {
        Error::new(
            ErrorCode::InvalidInput,
            format!(
                "the source directory {} cannot be read: {err}",
                dir.display()
            ),
        )
        .with_hint("give the directory that holds the app's source (`--dir`), e.g. `.`")
    })?;
    if !root_meta.is_dir() {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("{} is not a directory", dir.display()),
        )
        .with_hint("give the directory that holds the app's source, not a file"));
    }
    let rules = IgnoreRules::load(dir)?;
    let mut entries = Vec::new();
    collect(dir, &mut Vec::new(), &rules, &mut entries)
        .map_err(|err| internal("reading the source", &err))?;
    let file = File::create(out).map_err(|err| internal("writing the archive", &err))?;
    let over_limit = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let counter = Counting {
        inner: BufWriter::new(file),
        hasher: Sha256::new(),
        written: 0,
        limit,
        over_limit: std::sync::Arc::clone(&over_limit),
    };
    let gzip = flate2::GzBuilder::new()
        .mtime(0)
        .write(counter, flate2::Compression::default());
    let mut builder = tar::Builder::new(gzip);
    builder.follow_symlinks(false);
    let mut files = 0_u64;
    let written = (|| -> io::Result<Counting<BufWriter<File>>> {
        for entry in &entries {
            append(&mut builder, dir, entry)?;
            if entry.kind != Kind::Dir {
                files += 1;
            }
        }
        let gzip = builder.into_inner()?;
        let mut counter = gzip.finish()?;
        counter.inner.flush()?;
        Ok(counter)
    })();
    let counter = match written {
        Ok(counter) => counter,
        Err(_) if over_limit.load(std::sync::atomic::Ordering::Relaxed) => {
            let _ = std::fs::remove_file(out);
            return Err(too_large(limit, &entries));
        }
        Err(err) => {
            let _ = std::fs::remove_file(out);
            return Err(internal("packing the source", &err));
        }
    };
    counter
        .inner
        .get_ref()
        .sync_all()
        .map_err(|err| internal("writing the archive", &err))?;
    Ok(PackedSource {
        path: out.to_owned(),
        sha256: hex::encode(counter.hasher.finalize()),
        bytes: counter.written,
        files,
    })
}

/// SHA-256 of the file at `path` and its size, for an archive that arrived already packed.
pub fn digest(path: &Path) -> Result<(String, u64)> {
    let mut file = File::open(path).map_err(|err| internal("reading the archive", &err))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut total = 0_u64;
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|err| internal("reading the archive", &err))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        total += read as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Unpacks the gzipped tarball at `archive` into `dest` (created; it must not exist) and
/// returns the number of files and symlinks written.
pub fn unpack(archive: &Path, dest: &Path) -> Result<u64> {
    std::fs::create_dir_all(dest.parent().unwrap_or(dest))
        .map_err(|err| internal("creating the release directory", &err))?;
    std::fs::create_dir(dest).map_err(|err| internal("creating the release directory", &err))?;
    let file = File::open(archive).map_err(|err| internal("reading the archive", &err))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(io::BufReader::new(file)));
    let bad = |message: String| {
        Error::new(ErrorCode::InvalidInput, message).with_hint(
            "upload a gzipped tarball of the source directory (what `automaton platform deploy --dir` packs)",
        )
    };
    let mut files = 0_u64;
    let mut unpacked = 0_u64;
    let entries = tar
        .entries()
        .map_err(|err| bad(format!("the source is not a readable tarball: {err}")))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|err| bad(format!("the source tarball is damaged: {err}")))?;
        let path = entry
            .path()
            .map_err(|err| bad(format!("an entry has an unreadable name: {err}")))?
            .into_owned();
        let Some(relative) = contained(&path) else {
            return Err(bad(format!(
                "the entry `{}` would land outside the source",
                path.display()
            )));
        };
        if relative.as_os_str().is_empty() {
            continue;
        }
        let target = dest.join(&relative);
        no_symlinked_parent(dest, &relative).map_err(|_| {
            bad(format!(
                "the entry `{}` would be written through a symlink",
                path.display()
            ))
        })?;
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(|err| internal("unpacking", &err))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                unpacked += entry.size();
                if unpacked > MAX_UNPACKED_BYTES {
                    return Err(Error::new(
                        ErrorCode::SourceTooLarge,
                        format!(
                            "the source unpacks to more than {} MB",
                            MAX_UNPACKED_BYTES / (1024 * 1024)
                        ),
                    ));
                }
                ensure_parent(&target)?;
                remove_existing(&target)?;
                let executable = entry.header().mode().is_ok_and(|mode| mode & 0o111 != 0);
                let mut out = File::create(&target).map_err(|err| internal("unpacking", &err))?;
                io::copy(&mut entry, &mut out).map_err(|err| internal("unpacking", &err))?;
                set_mode(&target, if executable { 0o755 } else { 0o644 })?;
                files += 1;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|err| bad(format!("a symlink has an unreadable target: {err}")))?
                    .map(std::borrow::Cow::into_owned)
                    .unwrap_or_default();
                // Judged by text only, a link may climb (`u -> d/..` where `d -> .`): so no
                // link may be absolute or contain `..` at all; links can only point down.
                let climbs = link.components().any(|part| {
                    matches!(
                        part,
                        Component::ParentDir | Component::RootDir | Component::Prefix(_)
                    )
                });
                if link.is_absolute() || climbs {
                    return Err(bad(format!(
                        "the symlink `{}` points outside the source (to `{}`)",
                        path.display(),
                        link.display()
                    )));
                }
                ensure_parent(&target)?;
                remove_existing(&target)?;
                std::os::unix::fs::symlink(&link, &target)
                    .map_err(|err| internal("unpacking", &err))?;
                files += 1;
            }
            other => {
                return Err(bad(format!(
                    "the entry `{}` is a {other:?}; only files, directories and symlinks are deployed",
                    path.display()
                )));
            }
        }
    }
    Ok(files)
}

/// `path` with `.` removed, if it has no root, prefix or `..` that climbs above the start.
fn contained(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// Fails when a directory on the way from `dest` to `relative`'s parent is a symlink.
fn no_symlinked_parent(dest: &Path, relative: &Path) -> io::Result<()> {
    let mut at = dest.to_owned();
    if let Some(parent) = relative.parent() {
        for part in parent.components() {
            at.push(part);
            match std::fs::symlink_metadata(&at) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(io::Error::other("symlinked parent"));
                }
                Ok(_) => {}
                Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(err) => return Err(err),
            }
        }
    }
    Ok(())
}

fn ensure_parent(target: &Path) -> Result<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|err| internal("unpacking", &err))?;
    }
    Ok(())
}

fn remove_existing(target: &Path) -> Result<()> {
    match std::fs::symlink_metadata(target) {
        Ok(meta) if meta.is_dir() => Err(Error::new(
            ErrorCode::InvalidInput,
            format!(
                "the tarball has both a directory and a file at `{}`",
                target.display()
            ),
        )),
        Ok(_) => std::fs::remove_file(target).map_err(|err| internal("unpacking", &err)),
        Err(_) => Ok(()),
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|err| internal("unpacking", &err))
}

fn internal(doing: &str, err: &io::Error) -> Error {
    Error::new(ErrorCode::InternalError, format!("{doing}: {err}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File { executable: bool },
    Symlink,
}

#[derive(Debug)]
struct Entry {
    relative: PathBuf,
    kind: Kind,
    size: u64,
}

/// Every entry under `dir` not excluded, depth first, names sorted bytewise.
fn collect(
    root: &Path,
    relative: &mut Vec<String>,
    rules: &IgnoreRules,
    out: &mut Vec<Entry>,
) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = relative
        .iter()
        .fold(root.to_owned(), |path, part| path.join(part));
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&dir)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
    for name in names {
        relative.push(name.to_string_lossy().into_owned());
        if !rules.excludes(relative) {
            let path = dir.join(&name);
            let meta = std::fs::symlink_metadata(&path)?;
            let entry_relative: PathBuf = relative.iter().collect();
            let file_type = meta.file_type();
            if file_type.is_dir() {
                out.push(Entry {
                    relative: entry_relative,
                    kind: Kind::Dir,
                    size: 0,
                });
                collect(root, relative, rules, out)?;
            } else if file_type.is_file() {
                out.push(Entry {
                    relative: entry_relative,
                    kind: Kind::File {
                        executable: meta.permissions().mode() & 0o111 != 0,
                    },
                    size: meta.len(),
                });
            } else if file_type.is_symlink() {
                out.push(Entry {
                    relative: entry_relative,
                    kind: Kind::Symlink,
                    size: 0,
                });
            }
            // Sockets, FIFOs and devices are not source.
        }
        relative.pop();
    }
    Ok(())
}

fn append<W: Write>(builder: &mut tar::Builder<W>, root: &Path, entry: &Entry) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    match entry.kind {
        Kind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_mode(0o755);
            header.set_size(0);
            builder.append_data(&mut header, &entry.relative, io::empty())
        }
        Kind::File { executable } => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_mode(if executable { 0o755 } else { 0o644 });
            header.set_size(entry.size);
            let file = File::open(root.join(&entry.relative))?;
            // A file that grew since it was listed is packed at its listed size.
            builder.append_data(&mut header, &entry.relative, file.take(entry.size))
        }
        Kind::Symlink => {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_mode(0o777);
            header.set_size(0);
            let target = std::fs::read_link(root.join(&entry.relative))?;
            builder.append_link(&mut header, &entry.relative, target)
        }
    }
}

/// `SOURCE_TOO_LARGE`, naming the largest top-level entries.
fn too_large(limit: u64, entries: &[Entry]) -> Error {
    let mut by_top: BTreeMap<String, u64> = BTreeMap::new();
    for entry in entries {
        if let Some(Component::Normal(top)) = entry.relative.components().next() {
            *by_top
                .entry(top.to_string_lossy().into_owned())
                .or_default() += entry.size;
        }
    }
    let mut largest: Vec<(String, u64)> = by_top.into_iter().collect();
    largest.sort_by_key(|(_, bytes)| std::cmp::Reverse(*bytes));
    largest.truncate(5);
    let named = largest
        .iter()
        .map(|(name, bytes)| format!("{name} ({} MB)", bytes / (1024 * 1024)))
        .collect::<Vec<_>>()
        .join(", ");
    Error::new(
        ErrorCode::SourceTooLarge,
        format!(
            "the packed source exceeds {} MB; the largest entries are {named}",
            limit / (1024 * 1024)
        ),
    )
    .with_hint(format!(
        "list build output and data directories (e.g. `{}`) in {IGNORE_FILE} at the source root, one per line, and deploy again",
        largest.first().map_or("dist", |(name, _)| name.as_str())
    ))
    .with_state(serde_json::json!({
        "limit_bytes": limit,
        "largest": largest
            .iter()
            .map(|(name, bytes)| serde_json::json!({"path": name, "bytes": bytes}))
            .collect::<Vec<_>>(),
    }))
}

/// A writer that hashes and counts what passes through, and fails past `limit`.
struct Counting<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
    limit: u64,
    /// Set when a write went past the limit (the error itself may be rewrapped on the way up).
    over_limit: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            self.over_limit
                .store(true, std::sync::atomic::Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                "source over the limit",
            ));
        }
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.written += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn write(root: &Path, relative: &str, content: &str) {
        let path = root.join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn listing(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                let path = entry.path();
                let rel = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if entry.file_type().unwrap().is_dir() {
                    stack.push(path);
                    out.push(format!("{rel}/"));
                } else {
                    out.push(rel);
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn packing_leaves_out_the_fixed_names_and_the_ignore_file_s_prefixes() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path();
        write(root, "index.html", "<h1>hi</h1>");
        write(root, "app/main.py", "print(1)");
        write(root, "app/__pycache__/main.pyc", "x");
        write(root, ".git/HEAD", "ref");
        write(root, "node_modules/x/index.js", "x");
        write(root, "web/node_modules/y.js", "x");
        write(root, ".venv/bin/python", "x");
        write(root, "dist/bundle.js", "x");
        write(root, "distribution/keep.txt", "kept");
        write(root, "data/big/blob", "x");
        write(root, "data/small.txt", "kept");
        write(root, IGNORE_FILE, "# build output\ndist/\n./data/big\n\n");
        std::fs::set_permissions(
            root.join("app/main.py"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::os::unix::fs::symlink("index.html", root.join("home.html")).unwrap();

        let out = tempfile::tempdir().unwrap();
        let packed = pack(root, &out.path().join("src.tar.gz"), MAX_SOURCE_BYTES).unwrap();
        assert_eq!(packed.files, 6, "{packed:?}");
        let dest = out.path().join("release");
        assert_eq!(unpack(&packed.path, &dest).unwrap(), 6);
        assert_eq!(
            listing(&dest),
            [
                ".conwayignore",
                "app/",
                "app/main.py",
                "data/",
                "data/small.txt",
                "distribution/",
                "distribution/keep.txt",
                "home.html",
                "index.html",
                "web/",
            ]
        );
        let mode = std::fs::metadata(dest.join("app/main.py"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o777,
            0o755,
            "the exec bit survives, reduced to 0755"
        );
        assert_eq!(
            std::fs::read_link(dest.join("home.html")).unwrap(),
            Path::new("index.html")
        );
    }

    #[test]
    fn the_same_source_has_the_same_address_and_a_change_moves_it() {
        let src = tempfile::tempdir().unwrap();
        write(src.path(), "a.txt", "one");
        write(src.path(), "b/c.txt", "two");
        let out = tempfile::tempdir().unwrap();
        let first = pack(src.path(), &out.path().join("1.tgz"), MAX_SOURCE_BYTES).unwrap();
        // Times and owners do not matter.
        std::fs::write(src.path().join("a.txt"), "one").unwrap();
        let second = pack(src.path(), &out.path().join("2.tgz"), MAX_SOURCE_BYTES).unwrap();
        assert_eq!(first.sha256, second.sha256);
        assert_eq!(
            digest(&second.path).unwrap(),
            (second.sha256.clone(), second.bytes)
        );
        write(src.path(), "a.txt", "changed");
        let third = pack(src.path(), &out.path().join("3.tgz"), MAX_SOURCE_BYTES).unwrap();
        assert_ne!(first.sha256, third.sha256);
    }

    #[test]
    fn an_oversized_source_is_refused_naming_what_to_ignore() {
        let src = tempfile::tempdir().unwrap();
        write(src.path(), "index.html", "hi");
        // Incompressible bytes, so the archive really is large.
        let mut noise = Vec::with_capacity(300_000);
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..300_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            noise.push((state & 0xff) as u8);
        }
        std::fs::create_dir(src.path().join("assets")).unwrap();
        std::fs::write(src.path().join("assets/video.bin"), &noise).unwrap();
        let out = tempfile::tempdir().unwrap();
        let archive = out.path().join("src.tgz");
        let err = pack(src.path(), &archive, 100_000).unwrap_err();
        assert_eq!(err.code, ErrorCode::SourceTooLarge);
        assert!(err.message.contains("assets"), "{err:?}");
        assert!(
            err.hint.contains(".conwayignore") && err.hint.contains("assets"),
            "{err:?}"
        );
        assert_eq!(err.state.unwrap()["largest"][0]["path"], "assets");
        assert!(!archive.exists(), "no partial archive is left behind");
    }

    /// Builds a raw tarball with one entry of `kind` at `name` (bypassing the tar crate's own
    /// path checks, as a hostile uploader would).
    fn hostile(dir: &Path, entries: &[(&str, tar::EntryType, &str)]) -> PathBuf {
        let path = dir.join("hostile.tgz");
        let gzip = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut builder = tar::Builder::new(gzip);
        for (name, kind, data) in entries {
            let mut header = tar::Header::new_old();
            let bytes = name.as_bytes();
            header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            header.set_entry_type(*kind);
            header.set_mode(0o644);
            if *kind == tar::EntryType::Symlink || *kind == tar::EntryType::Link {
                let link = data.as_bytes();
                header.as_old_mut().linkname[..link.len()].copy_from_slice(link);
                header.set_size(0);
                header.set_cksum();
                builder.append(&header, io::empty()).unwrap();
            } else {
                header.set_size(data.len() as u64);
                header.set_cksum();
                builder.append(&header, data.as_bytes()).unwrap();
            }
        }
        builder.into_inner().unwrap().finish().unwrap();
        path
    }

    #[test]
    fn unpacking_refuses_whatever_would_escape_the_release() {
        let cases: Vec<Vec<(&str, tar::EntryType, &str)>> = vec![
            vec![("../escape.txt", tar::EntryType::Regular, "x")],
            vec![("/etc/escape.txt", tar::EntryType::Regular, "x")],
            vec![("a/../../escape.txt", tar::EntryType::Regular, "x")],
            vec![("link", tar::EntryType::Symlink, "/etc")],
            vec![("link", tar::EntryType::Symlink, "../..")],
            vec![
                ("d", tar::EntryType::Symlink, "."),
                ("u1", tar::EntryType::Symlink, "d/.."),
            ],
            vec![
                ("inside", tar::EntryType::Symlink, "."),
                ("dir", tar::EntryType::Symlink, "inside"),
                ("dir/file", tar::EntryType::Regular, "through a symlink"),
            ],
            vec![("hard", tar::EntryType::Link, "/etc/passwd")],
            vec![("dev", tar::EntryType::Char, "")],
        ];
        for entries in cases {
            let work = tempfile::tempdir().unwrap();
            let archive = hostile(work.path(), &entries);
            let dest = work.path().join("sandbox/release");
            let err = unpack(&archive, &dest).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidInput, "{entries:?}: {err:?}");
            assert!(!work.path().join("escape.txt").exists());
            assert!(!work.path().join("sandbox/escape.txt").exists());
        }
        // Not a tarball at all.
        let work = tempfile::tempdir().unwrap();
        let junk = work.path().join("junk.tgz");
        std::fs::write(&junk, b"not gzip").unwrap();
        let err = unpack(&junk, &work.path().join("r")).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput, "{err:?}");
    }

    #[test]
    fn missing_or_non_directory_sources_say_what_to_give() {
        let work = tempfile::tempdir().unwrap();
        let out = work.path().join("x.tgz");
        let err = pack(&work.path().join("nope"), &out, MAX_SOURCE_BYTES).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidInput);
        assert!(err.hint.contains("--dir"), "{err:?}");
        write(work.path(), "file.txt", "x");
        let err = pack(&work.path().join("file.txt"), &out, MAX_SOURCE_BYTES).unwrap_err();
        assert!(err.message.contains("not a directory"), "{err:?}");
    }
}
