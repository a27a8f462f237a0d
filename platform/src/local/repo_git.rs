//! The forge's work on one bare git repository, with git2 and no `git` binary: creating it,
//! reading refs, logs, trees and files at a ref, committing files in one commit (creating an
//! empty repository's first branch), and exporting a commit's tree for a deploy. Every
//! function blocks: callers run them on the blocking pool.

use crate::error::{Error, ErrorCode, Result};
use crate::model::{
    Author, CommitRequest, ContentEncoding, EntryKind, MAX_COMMIT_BYTES, MAX_COMMIT_FILES,
    MAX_READ_FILE_BYTES, RepoCommit, RepoFile, RepoRef, RepoTree, TreeEntry, validate_repo_path,
};
use base64::Engine as _;
use git2::{FileMode, ObjectType, Oid, Repository};
use std::collections::BTreeSet;
use std::path::Path;

/// The branch an empty repository's HEAD names.
pub const DEFAULT_BRANCH: &str = "main";
/// Who commits through `commitRepoFiles` (and authors, unless the request names someone).
const PLATFORM_NAME: &str = "automaton platform";
const PLATFORM_EMAIL: &str = "platform@automaton.localhost";

/// An `INTERNAL_ERROR` for a git2 failure while doing `what`.
pub fn git_error(what: &str) -> impl Fn(git2::Error) -> Error + '_ {
    move |err| {
        Error::new(
            ErrorCode::InternalError,
            format!("{what}: {}", err.message()),
        )
    }
}

/// Creates an empty bare repository at `dir` whose HEAD names [`DEFAULT_BRANCH`], replacing
/// whatever a half-finished earlier create left there.
pub fn init(dir: &Path) -> Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|err| {
            Error::new(
                ErrorCode::InternalError,
                format!("removing the stale {}: {err}", dir.display()),
            )
        })?;
    }
    Repository::init_opts(
        dir,
        git2::RepositoryInitOptions::new()
            .bare(true)
            .mkpath(true)
            .initial_head(DEFAULT_BRANCH),
    )
    .map_err(git_error("creating the repository"))?;
    Ok(())
}

/// Opens the bare repository at `dir`.
pub fn open(dir: &Path) -> Result<Repository> {
    Repository::open_bare(dir).map_err(git_error("opening the repository"))
}

/// The branch HEAD names and the commit it points at (none while the repository is empty).
pub fn head(repo: &Repository) -> Result<(String, Option<Oid>)> {
    let head = repo
        .find_reference("HEAD")
        .map_err(git_error("reading HEAD"))?;
    let target = head
        .symbolic_target()
        .ok()
        .flatten()
        .unwrap_or("refs/heads/main")
        .to_owned();
    let branch = target
        .strip_prefix("refs/heads/")
        .unwrap_or(&target)
        .to_owned();
    Ok((branch, repo.refname_to_id(&target).ok()))
}

/// Points an empty repository's HEAD at its first branch once a push created one (a push of
/// `master` to a fresh repository makes `master` the default branch, as a commit does).
pub fn adopt_first_branch(repo: &Repository) -> Result<()> {
    if head(repo)?.1.is_some() {
        return Ok(());
    }
    let first = refs(repo)?
        .into_iter()
        .find(|r| r.name.starts_with("refs/heads/"));
    if let Some(branch) = first {
        repo.set_head(&branch.name)
            .map_err(git_error("pointing HEAD at the pushed branch"))?;
    }
    Ok(())
}

/// Every branch and tag with the commit it points at, branches first.
pub fn refs(repo: &Repository) -> Result<Vec<RepoRef>> {
    let mut out = Vec::new();
    for reference in repo.references().map_err(git_error("listing refs"))? {
        let reference = reference.map_err(git_error("reading a ref"))?;
        let Ok(name) = reference.name().map(str::to_owned) else {
            continue;
        };
        if !(name.starts_with("refs/heads/") || name.starts_with("refs/tags/")) {
            continue;
        }
        if let Ok(commit) = reference.peel_to_commit() {
            out.push(RepoRef {
                name,
                commit: commit.id().to_string(),
            });
        }
    }
    out.sort_by(|a, b| {
        (!a.name.starts_with("refs/heads/"), &a.name)
            .cmp(&(!b.name.starts_with("refs/heads/"), &b.name))
    });
    Ok(out)
}

/// The commit `git_ref` names (a branch, tag, full ref or commit id; default HEAD). `None`
/// for HEAD of an empty repository; `NOT_FOUND` naming the refs that exist otherwise.
pub fn resolve<'r>(
    repo: &'r Repository,
    git_ref: Option<&str>,
) -> Result<Option<git2::Commit<'r>>> {
    let Some(spec) = git_ref.map(str::trim).filter(|spec| !spec.is_empty()) else {
        let (_, head) = head(repo)?;
        return match head {
            Some(id) => repo
                .find_commit(id)
                .map(Some)
                .map_err(git_error("reading HEAD's commit")),
            None => Ok(None),
        };
    };
    let found = if spec.len() > 256 || spec.starts_with('-') {
        None
    } else {
        repo.revparse_single(spec)
            .ok()
            .and_then(|object| object.peel_to_commit().ok())
    };
    match found {
        Some(commit) => Ok(Some(commit)),
        None => {
            let known: Vec<String> = refs(repo)?
                .into_iter()
                .map(|r| {
                    r.name
                        .trim_start_matches("refs/heads/")
                        .trim_start_matches("refs/")
                        .to_owned()
                })
                .collect();
            let hint = if known.is_empty() {
                "the repository is empty: commit files or push first".to_owned()
            } else {
                format!(
                    "name a branch, tag or commit id; it has {}",
                    known.join(", ")
                )
            };
            Err(Error::new(
                ErrorCode::NotFound,
                format!("no ref `{spec}` in this repository"),
            )
            .with_hint(hint)
            .with_state(serde_json::json!({ "refs": known })))
        }
    }
}

/// The commit `git_ref` names, or `NOT_FOUND` when the repository is empty.
fn resolve_existing<'r>(repo: &'r Repository, git_ref: Option<&str>) -> Result<git2::Commit<'r>> {
    resolve(repo, git_ref)?.ok_or_else(|| {
        Error::new(
            ErrorCode::NotFound,
            "the repository is empty: it has no commits",
        )
        .with_hint("commit files (commitRepoFiles) or `git push` first")
    })
}

/// Up to `limit` commits from `git_ref`, newest first (empty for an empty repository).
pub fn log(repo: &Repository, git_ref: Option<&str>, limit: usize) -> Result<Vec<RepoCommit>> {
    let Some(start) = resolve(repo, git_ref)? else {
        return Ok(Vec::new());
    };
    let mut walk = repo.revwalk().map_err(git_error("walking the history"))?;
    walk.set_sorting(git2::Sort::TIME | git2::Sort::TOPOLOGICAL)
        .map_err(git_error("walking the history"))?;
    walk.push(start.id())
        .map_err(git_error("walking the history"))?;
    let mut out = Vec::new();
    for id in walk.take(limit) {
        let id = id.map_err(git_error("walking the history"))?;
        let commit = repo
            .find_commit(id)
            .map_err(git_error("reading a commit"))?;
        let author = commit.author();
        out.push(RepoCommit {
            id: id.to_string(),
            message: String::from_utf8_lossy(commit.message_bytes()).into_owned(),
            author_name: String::from_utf8_lossy(author.name_bytes()).into_owned(),
            author_email: String::from_utf8_lossy(author.email_bytes()).into_owned(),
            time_ms: author.when().seconds() * 1000,
            parents: commit.parent_ids().map(|p| p.to_string()).collect(),
        });
    }
    Ok(out)
}

fn kind_of(mode: i32) -> EntryKind {
    match mode {
        0o040000 => EntryKind::Dir,
        0o120000 => EntryKind::Symlink,
        0o160000 => EntryKind::Submodule,
        _ => EntryKind::File,
    }
}

/// A path argument: "" (or "/") is the root; anything else must be a valid repository path.
fn normalised(path: &str) -> Result<String> {
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Ok(String::new());
    }
    validate_repo_path(path)?;
    Ok(path.to_owned())
}

/// The entries of the directory `dir` ("" for the root) of `tree`, directories first.
fn entries(repo: &Repository, tree: &git2::Tree<'_>, dir: &str) -> Result<Vec<TreeEntry>> {
    let odb = repo.odb().map_err(git_error("opening the object store"))?;
    let mut out: Vec<TreeEntry> = tree
        .iter()
        .map(|entry| {
            let name = entry.name().unwrap_or_default();
            let kind = kind_of(entry.filemode());
            let size = (kind == EntryKind::File)
                .then(|| {
                    odb.read_header(entry.id())
                        .ok()
                        .map(|(size, _)| size as u64)
                })
                .flatten();
            TreeEntry {
                path: if dir.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dir}/{name}")
                },
                kind,
                size,
            }
        })
        .collect();
    out.sort_by(|a, b| {
        (a.kind != EntryKind::Dir, &a.path).cmp(&(b.kind != EntryKind::Dir, &b.path))
    });
    Ok(out)
}

/// `NOT_FOUND` for `path` at `commit`, naming what its nearest existing directory holds.
fn path_not_found(repo: &Repository, tree: &git2::Tree<'_>, path: &str, commit: Oid) -> Error {
    let mut dir = path;
    let (dir, siblings) = loop {
        dir = dir.rsplit_once('/').map_or("", |(parent, _)| parent);
        let found = parent_tree(repo, tree, dir).and_then(|sub| entries(repo, &sub, dir).ok());
        if let Some(list) = found {
            break (dir, list.into_iter().map(|e| e.path).collect::<Vec<_>>());
        }
        if dir.is_empty() {
            break (dir, Vec::new());
        }
    };
    let place = if dir.is_empty() { "the root" } else { dir };
    let hint = if siblings.is_empty() {
        format!("{place} is empty")
    } else {
        format!("{place} holds: {}", siblings.join(", "))
    };
    Error::new(
        ErrorCode::NotFound,
        format!("no `{path}` at commit {}", &commit.to_string()[..12]),
    )
    .with_hint(hint)
    .with_state(serde_json::json!({ "directory": dir, "entries": siblings }))
}

fn parent_tree<'r>(
    repo: &'r Repository,
    tree: &git2::Tree<'r>,
    dir: &str,
) -> Option<git2::Tree<'r>> {
    if dir.is_empty() {
        return Some(tree.clone());
    }
    tree.get_path(Path::new(dir))
        .ok()
        .and_then(|entry| entry.to_object(repo).ok())
        .and_then(|object| object.into_tree().ok())
}

/// The directory `path` at `git_ref`.
pub fn tree(repo: &Repository, git_ref: Option<&str>, path: &str) -> Result<RepoTree> {
    let path = normalised(path)?;
    let commit = resolve_existing(repo, git_ref)?;
    let root = commit.tree().map_err(git_error("reading the tree"))?;
    let dir = if path.is_empty() {
        root.clone()
    } else {
        let entry = root
            .get_path(Path::new(&path))
            .map_err(|_| path_not_found(repo, &root, &path, commit.id()))?;
        if entry.kind() != Some(ObjectType::Tree) {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!("`{path}` is a file, not a directory"),
            )
            .with_hint("read it with getRepoFile"));
        }
        entry
            .to_object(repo)
            .and_then(|object| object.peel_to_tree())
            .map_err(git_error("reading the tree"))?
    };
    Ok(RepoTree {
        commit: commit.id().to_string(),
        entries: entries(repo, &dir, &path)?,
        path,
    })
}

/// The file `path` at `git_ref`: UTF-8 text as is, anything else base64; refused past
/// [`MAX_READ_FILE_BYTES`].
pub fn file(repo: &Repository, git_ref: Option<&str>, path: &str) -> Result<RepoFile> {
    let path = normalised(path)?;
    if path.is_empty() {
        return Err(Error::new(ErrorCode::InvalidInput, "no file path given")
            .with_hint("name a file, e.g. `README.md`; getRepoTree lists them"));
    }
    let commit = resolve_existing(repo, git_ref)?;
    let root = commit.tree().map_err(git_error("reading the tree"))?;
    let entry = root
        .get_path(Path::new(&path))
        .map_err(|_| path_not_found(repo, &root, &path, commit.id()))?;
    if entry.kind() != Some(ObjectType::Blob) {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("`{path}` is a directory, not a file"),
        )
        .with_hint("list it with getRepoTree"));
    }
    let blob = repo
        .find_blob(entry.id())
        .map_err(git_error("reading the file"))?;
    let size = blob.size() as u64;
    if size > MAX_READ_FILE_BYTES {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            format!("`{path}` is {size} bytes, over the {MAX_READ_FILE_BYTES}-byte read limit"),
        )
        .with_hint("clone the repository with git to read large files")
        .with_state(serde_json::json!({ "size": size })));
    }
    let (encoding, content) = match std::str::from_utf8(blob.content()) {
        Ok(text) if !blob.is_binary() => (ContentEncoding::Utf8, text.to_owned()),
        _ => (
            ContentEncoding::Base64,
            base64::engine::general_purpose::STANDARD.encode(blob.content()),
        ),
    };
    Ok(RepoFile {
        commit: commit.id().to_string(),
        path,
        size,
        encoding,
        content,
    })
}

/// A change checked and decoded: the path, and its bytes (`None`: delete it).
struct Change {
    path: String,
    bytes: Option<Vec<u8>>,
}

/// Checks a commit request before anything is written; the branch it names.
fn checked(request: &CommitRequest) -> Result<(Option<String>, Vec<Change>)> {
    let invalid = |message: String, hint: &str| {
        Error::new(ErrorCode::InvalidInput, message).with_hint(hint.to_owned())
    };
    if request.message.trim().is_empty() {
        return Err(invalid(
            "the commit message is empty".to_owned(),
            "say what the commit changes, e.g. \"add the landing page\"",
        ));
    }
    if request.message.len() > 64 * 1024 {
        return Err(invalid(
            "the commit message is longer than 64 KB".to_owned(),
            "keep the message short; put long text in a file",
        ));
    }
    if request.files.is_empty() {
        return Err(invalid(
            "the commit names no files".to_owned(),
            "send files as [{\"path\": \"index.html\", \"content\": \"…\"}]",
        ));
    }
    if request.files.len() > MAX_COMMIT_FILES {
        return Err(invalid(
            format!(
                "the commit names {} files, over the limit of {MAX_COMMIT_FILES}",
                request.files.len()
            ),
            "split it into several commits, or push with git",
        ));
    }
    let branch = match request.branch.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(branch) => {
            let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
            if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
                return Err(invalid(
                    format!("`{branch}` is not a valid branch name"),
                    "use a name like `main` or `feature/login` (no spaces, `..`, `~`, `^`, `:`)",
                ));
            }
            Some(branch.to_owned())
        }
    };
    if let Some(author) = &request.author {
        check_author(author)?;
    }
    let mut seen = BTreeSet::new();
    let mut total = 0_usize;
    let mut changes = Vec::with_capacity(request.files.len());
    for file in &request.files {
        validate_repo_path(&file.path)?;
        if !seen.insert(file.path.as_str()) {
            return Err(invalid(
                format!("`{}` appears twice in the commit", file.path),
                "name each path once",
            ));
        }
        let bytes = match (&file.content, file.delete) {
            (Some(_), true) => {
                return Err(invalid(
                    format!("`{}` has content and `delete`", file.path),
                    "either give content or set delete, not both",
                ));
            }
            (None, false) => {
                return Err(invalid(
                    format!("`{}` has no content", file.path),
                    "give its content (an empty string for an empty file), or set delete: true",
                ));
            }
            (None, true) => None,
            (Some(content), false) => Some(match file.encoding {
                ContentEncoding::Utf8 => content.as_bytes().to_vec(),
                ContentEncoding::Base64 => base64::engine::general_purpose::STANDARD
                    .decode(content.trim())
                    .map_err(|err| {
                        invalid(
                            format!("`{}` is not valid base64: {err}", file.path),
                            "encode binary content with standard base64 (with padding)",
                        )
                    })?,
            }),
        };
        total += bytes.as_ref().map_or(0, Vec::len);
        if total > MAX_COMMIT_BYTES {
            return Err(Error::new(
                ErrorCode::SourceTooLarge,
                format!("the commit's files exceed {MAX_COMMIT_BYTES} bytes"),
            )
            .with_hint("split it into several commits, or push large files with git"));
        }
        changes.push(Change {
            path: file.path.clone(),
            bytes,
        });
    }
    Ok((branch, changes))
}

fn check_author(author: &Author) -> Result<()> {
    let bad = |field: &str| {
        field.trim().is_empty()
            || field.len() > 256
            || field
                .chars()
                .any(|c| c.is_control() || c == '<' || c == '>')
    };
    if bad(&author.name) || bad(&author.email) {
        return Err(Error::new(
            ErrorCode::InvalidInput,
            "the author needs a name and an email without `<`, `>` or control characters",
        )
        .with_hint(
            "e.g. {\"name\": \"Ada\", \"email\": \"ada@example.com\"}, or leave the author out",
        ));
    }
    Ok(())
}

/// What [`commit`] did.
pub struct Committed {
    /// The new commit, or the branch's head when nothing changed.
    pub commit: Oid,
    /// The branch.
    pub branch: String,
    /// Whether a commit was made.
    pub changed: bool,
    /// Whether the branch was created.
    pub created_branch: bool,
    /// Whether the branch is the one HEAD names.
    pub default_branch: bool,
}

/// Commits `request`'s files on its branch in one commit. A missing branch starts from the
/// default branch's head (or from nothing in an empty repository, whose HEAD then names it).
/// The branch moves only if nobody moved it meanwhile (`CONFLICT`, retryable, otherwise).
pub fn commit(repo: &Repository, request: &CommitRequest, now_ms: i64) -> Result<Committed> {
    let (branch, changes) = checked(request)?;
    let (default_branch, head) = head(repo)?;
    let branch = branch.unwrap_or_else(|| default_branch.clone());
    let refname = format!("refs/heads/{branch}");
    let current = repo.refname_to_id(&refname).ok();
    let parent = match (current, head) {
        (Some(id), _) | (None, Some(id)) => Some(
            repo.find_commit(id)
                .map_err(git_error("reading the branch's commit"))?,
        ),
        (None, None) => None,
    };
    let baseline = match &parent {
        Some(parent) => parent.tree().map_err(git_error("reading the tree"))?,
        None => {
            let empty = repo
                .treebuilder(None)
                .and_then(|builder| builder.write())
                .map_err(git_error("writing the empty tree"))?;
            repo.find_tree(empty)
                .map_err(git_error("reading the empty tree"))?
        }
    };
    let mut update = git2::build::TreeUpdateBuilder::new();
    for change in &changes {
        let existing = baseline.get_path(Path::new(&change.path)).ok();
        match &change.bytes {
            None => {
                if existing.is_none() {
                    let at = parent
                        .as_ref()
                        .map_or_else(|| Oid::ZERO_SHA1, git2::Commit::id);
                    return Err(path_not_found(repo, &baseline, &change.path, at));
                }
                update.remove(change.path.as_str());
            }
            Some(bytes) => {
                if existing
                    .as_ref()
                    .is_some_and(|entry| entry.kind() == Some(ObjectType::Tree))
                {
                    return Err(Error::new(
                        ErrorCode::InvalidInput,
                        format!("`{}` is a directory; a file cannot replace it", change.path),
                    )
                    .with_hint("delete the files in it first, or pick another path"));
                }
                let mode = match existing.map(|entry| entry.filemode()) {
                    Some(0o100755) => FileMode::BlobExecutable,
                    _ => FileMode::Blob,
                };
                let blob = repo.blob(bytes).map_err(git_error("writing a file"))?;
                update.upsert(change.path.as_str(), blob, mode);
            }
        }
    }
    let tree_id = update.create_updated(repo, &baseline).map_err(|err| {
        Error::new(
            ErrorCode::InvalidInput,
            format!("the files do not fit the tree: {}", err.message()),
        )
        .with_hint("a path cannot pass through an existing file (e.g. `a.txt/b`); pick other paths")
    })?;
    let is_default = branch == default_branch;
    if let (Some(id), Some(parent)) = (current, &parent)
        && parent.tree_id() == tree_id
    {
        return Ok(Committed {
            commit: id,
            branch,
            changed: false,
            created_branch: false,
            default_branch: is_default,
        });
    }
    let tree = repo
        .find_tree(tree_id)
        .map_err(git_error("reading the tree"))?;
    let time = git2::Time::new(now_ms.div_euclid(1000), 0);
    let committer = git2::Signature::new(PLATFORM_NAME, PLATFORM_EMAIL, &time)
        .map_err(git_error("signing the commit"))?;
    let author = match &request.author {
        Some(author) => git2::Signature::new(author.name.trim(), author.email.trim(), &time)
            .map_err(git_error("signing the commit"))?,
        None => committer.clone(),
    };
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let id = repo
        .commit(None, &author, &committer, &request.message, &tree, &parents)
        .map_err(git_error("writing the commit"))?;
    let log_message = format!(
        "commitRepoFiles: {}",
        request.message.lines().next().unwrap_or("")
    );
    let moved = match current {
        Some(old) => repo.reference_matching(&refname, id, true, old, &log_message),
        None => repo.reference(&refname, id, false, &log_message),
    };
    moved.map_err(|_| {
        Error::new(
            ErrorCode::Conflict,
            format!("branch {branch} moved while this commit was being made"),
        )
        .with_hint("send the commit again: it will apply on top of the new head")
        .retryable_anyway()
    })?;
    if head.is_none() && !is_default {
        // An empty repository's first branch becomes its default.
        repo.set_head(&refname)
            .map_err(git_error("pointing HEAD at the branch"))?;
    }
    Ok(Committed {
        commit: id,
        branch,
        changed: true,
        created_branch: current.is_none(),
        default_branch: is_default || head.is_none(),
    })
}

/// Writes the tree of `commit` into the empty directory `dest` (files and their executable
/// bit; symbolic links and submodules are left out, so nothing points outside). Returns the
/// number of files.
pub fn export(repo: &Repository, commit: Oid, dest: &Path) -> Result<u64> {
    let tree = repo
        .find_commit(commit)
        .and_then(|commit| commit.tree())
        .map_err(git_error("reading the commit to deploy"))?;
    let mut files = 0;
    export_tree(repo, &tree, dest, &mut files)?;
    Ok(files)
}

fn export_tree(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    dir: &Path,
    files: &mut u64,
) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let io = |path: &Path, err: std::io::Error| {
        Error::new(
            ErrorCode::InternalError,
            format!("exporting to {}: {err}", path.display()),
        )
    };
    std::fs::create_dir_all(dir).map_err(|err| io(dir, err))?;
    for entry in tree {
        let Ok(name) = entry.name() else { continue };
        // Trees written by git never hold these, but a pushed tree is untrusted input.
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            continue;
        }
        let path = dir.join(name);
        match entry.filemode() {
            0o040000 => {
                let sub = repo
                    .find_tree(entry.id())
                    .map_err(git_error("reading a directory to deploy"))?;
                export_tree(repo, &sub, &path, files)?;
            }
            mode @ (0o100644 | 0o100755 | 0o100664) => {
                let blob = repo
                    .find_blob(entry.id())
                    .map_err(git_error("reading a file to deploy"))?;
                std::fs::write(&path, blob.content()).map_err(|err| io(&path, err))?;
                if mode == 0o100755 {
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
                        .map_err(|err| io(&path, err))?;
                }
                *files += 1;
            }
            _ => {}
        }
    }
    Ok(())
}
