//! The error type of `automaton-skills`: why a `SKILL.md` was not loaded.
//!
//! Every variant names the file, says what is wrong, and [`Error::hint`] says how to fix it, so
//! a load report can be shown to the agent or its creator as it is.

use std::io::ErrorKind;
use std::path::PathBuf;

/// Errors from reading or parsing one `SKILL.md` (or the skills directory itself).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file does not start with a `---` front matter block closed by another `---` line.
    #[error("{}: no YAML front matter (a `---` line, the keys, another `---` line)", path.display())]
    MissingFrontMatter {
        /// The `SKILL.md`.
        path: PathBuf,
    },
    /// The front matter is not YAML, lacks a key, has an unknown key or a wrongly typed value.
    #[error("{}: front matter: {detail}", path.display())]
    FrontMatter {
        /// The `SKILL.md`.
        path: PathBuf,
        /// What the YAML parser said, with the line.
        detail: String,
    },
    /// The skill's name is empty, too long, or uses characters outside `[a-z0-9-]`.
    #[error("{}: name {name:?} is invalid: {reason}", path.display())]
    InvalidName {
        /// The `SKILL.md`.
        path: PathBuf,
        /// The name as written.
        name: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// The skill's name differs from the name of the directory holding it.
    #[error("{}: name {name:?} does not match its directory {directory:?}", path.display())]
    NameMismatch {
        /// The `SKILL.md`.
        path: PathBuf,
        /// The name in the front matter.
        name: String,
        /// The directory's name.
        directory: String,
    },
    /// A field that must say something is empty.
    #[error("{}: {field} is empty", path.display())]
    EmptyField {
        /// The `SKILL.md`.
        path: PathBuf,
        /// Which field (`description`, `a trigger`, `the body`).
        field: &'static str,
    },
}

impl Error {
    /// The next action for whoever sees this error.
    pub fn hint(&self) -> String {
        match self {
            Self::Io { path, source } if source.kind() == ErrorKind::NotFound => format!(
                "create {} with front matter (`name`, `description`) and instructions, or \
                 remove its directory",
                path.display()
            ),
            Self::Io { path, .. } => format!(
                "check that {} is a readable UTF-8 file or directory",
                path.display()
            ),
            Self::MissingFrontMatter { .. } => "start the file with `---`, then `name: \
                 <skill-name>` and `description: \"…\"`, then a closing `---` and the \
                 instructions"
                .to_owned(),
            Self::FrontMatter { .. } => "fix the key named above; the keys are `name`, \
                 `description`, and optionally `auto-activate` (true/false) and `triggers` (a \
                 list of words)"
                .to_owned(),
            Self::InvalidName { .. } => {
                "use 1 to 64 characters from a-z, 0-9 and `-`, e.g. `conway-payments`".to_owned()
            }
            Self::NameMismatch {
                name, directory, ..
            } => format!(
                "rename the directory to {name:?}, or set `name: {directory}` in the front matter"
            ),
            Self::EmptyField { field, .. } => {
                format!("write {field}, or remove the skill if it has nothing to say")
            }
        }
    }
}

/// Results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
