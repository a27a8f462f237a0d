//! The home as a git repository: every state change the runtime makes to files in the home
//! is committed, so the creator can read the file-level history with `git log`. What must
//! never be in history (keys, the database, logs) is kept out by the home's `.gitignore`.

use crate::error::Result;
use git2::{IndexAddOption, Repository, Signature};
use std::path::Path;

/// The author of commits the runtime makes.
const AUTHOR_EMAIL: &str = "automaton@localhost";

/// Stages every non-ignored file under `root` and commits it, initialising the repository on
/// first use. Returns the new commit id, or `None` when nothing changed.
pub fn commit_all(root: &Path, author: &str, message: &str) -> Result<Option<git2::Oid>> {
    let repo = match Repository::open(root) {
        Ok(repo) => repo,
        Err(_) => Repository::init(root)?,
    };
    let mut index = repo.index()?;
    // Whatever .gitignore says, key material, the database and logs are never staged.
    let mut never = |path: &Path, _: &[u8]| -> i32 { i32::from(is_never_committed(path)) };
    index.add_all(["*"], IndexAddOption::DEFAULT, Some(&mut never))?;
    index.update_all(["*"], Some(&mut never))?;
    for secret in index
        .iter()
        .filter_map(|entry| String::from_utf8(entry.path).ok())
        .filter(|path| is_never_committed(Path::new(path)))
        .collect::<Vec<_>>()
    {
        index.remove_path(Path::new(&secret))?;
    }
    index.write()?;
    let tree_id = index.write_tree()?;
    let parent = match repo.head() {
        Ok(head) => Some(head.peel_to_commit()?),
        Err(_) => None,
    };
    if let Some(parent) = &parent
        && parent.tree_id() == tree_id
    {
        return Ok(None);
    }
    let tree = repo.find_tree(tree_id)?;
    let signature = Signature::now(author, AUTHOR_EMAIL)?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    let oid = repo.commit(
        Some("HEAD"),
        &signature,
        &signature,
        message,
        &tree,
        &parents,
    )?;
    Ok(Some(oid))
}

/// Whether a home-relative path must never enter the home's history.
pub fn is_never_committed(path: &Path) -> bool {
    let text = path.to_string_lossy();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    text.starts_with("keys/")
        || text.starts_with("logs/")
        || text.starts_with("workspace/")
        || name == "wallet.json"
        || name.starts_with("wallet.json.")
        || name.starts_with("state.db")
        || name.ends_with(".key")
        || name.starts_with("keystore")
        || name == "api-key"
        || name == ".env"
        || name.starts_with(".env.")
}

/// The paths tracked at HEAD (for doctor and tests).
pub fn tracked_paths(root: &Path) -> Result<Vec<String>> {
    let repo = Repository::open(root)?;
    let tree = repo.head()?.peel_to_tree()?;
    let mut paths = Vec::new();
    tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
        if entry.kind() == Some(git2::ObjectType::Blob) {
            paths.push(format!("{dir}{}", entry.name().unwrap_or("")));
        }
        git2::TreeWalkResult::Ok
    })?;
    Ok(paths)
}
