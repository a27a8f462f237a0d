//! One skill: a `SKILL.md` with YAML front matter (`name`, `description`, `auto-activate`,
//! `triggers`) and a markdown body of instructions.
//!
//! It owns the format and its rules — a `[a-z0-9-]` name that matches the skill's directory,
//! no unknown keys — so a typo such as `auto_activate:` is an error rather than a skill that
//! silently never activates.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// The longest skill name, in bytes.
const MAX_NAME_LEN: usize = 64;

/// A parsed `SKILL.md`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skill {
    /// The skill's name (`[a-z0-9-]+`, at most 64 characters), equal to its directory's name.
    pub name: String,
    /// One line on what the skill is for.
    pub description: String,
    /// Whether the skill's instructions join every prompt (`auto-activate`, default false).
    pub auto_activate: bool,
    /// Words that activate the skill when they appear in the conversation.
    pub triggers: Vec<String>,
    /// The markdown body, trimmed. Untrusted: the prompt builder fences it.
    pub instructions: String,
    /// The `SKILL.md` it was read from.
    pub path: PathBuf,
}

/// The front matter of a `SKILL.md`.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FrontMatter {
    name: String,
    description: String,
    #[serde(default)]
    auto_activate: bool,
    #[serde(default)]
    triggers: Vec<String>,
}

impl Skill {
    /// The file every skill directory holds.
    pub const FILE_NAME: &str = "SKILL.md";

    /// Reads and parses the `SKILL.md` at `path` (`<skills>/<name>/SKILL.md`).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses the text of the `SKILL.md` that lives (or is about to be written) at `path`; the
    /// name must match the name of `path`'s directory.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let missing = || Error::MissingFrontMatter {
            path: path.to_owned(),
        };
        let rest = text
            .strip_prefix("---\n")
            .or_else(|| text.strip_prefix("---\r\n"))
            .ok_or_else(missing)?;
        let mut front_len = 0;
        let mut body = None;
        for line in rest.split_inclusive('\n') {
            if line.trim_end() == "---" {
                body = Some(&rest[front_len + line.len()..]);
                break;
            }
            front_len += line.len();
        }
        let body = body.ok_or_else(missing)?;
        // Parsed with its opening `---` (a YAML document marker) so error lines match the file.
        let front = &text[..text.len() - rest.len() + front_len];
        let front: FrontMatter =
            serde_yaml::from_str(front).map_err(|error| Error::FrontMatter {
                path: path.to_owned(),
                detail: error.to_string(),
            })?;

        let name_problem = if front.name.is_empty() {
            Some("it is empty")
        } else if front.name.len() > MAX_NAME_LEN {
            Some("it is longer than 64 characters")
        } else if !front
            .name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
        {
            Some("only a-z, 0-9 and `-` are allowed")
        } else {
            None
        };
        if let Some(reason) = name_problem {
            return Err(Error::InvalidName {
                path: path.to_owned(),
                name: front.name,
                reason,
            });
        }
        let directory = path
            .parent()
            .and_then(Path::file_name)
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        if directory != front.name {
            return Err(Error::NameMismatch {
                path: path.to_owned(),
                name: front.name,
                directory,
            });
        }

        let empty = |field| Error::EmptyField {
            path: path.to_owned(),
            field,
        };
        let description = front.description.trim();
        if description.is_empty() {
            return Err(empty("description"));
        }
        let triggers: Vec<String> = front
            .triggers
            .iter()
            .map(|trigger| trigger.trim().to_owned())
            .collect();
        if triggers.iter().any(String::is_empty) {
            return Err(empty("a trigger"));
        }
        let instructions = body.trim();
        if instructions.is_empty() {
            return Err(empty("the body"));
        }
        Ok(Self {
            name: front.name,
            description: description.to_owned(),
            auto_activate: front.auto_activate,
            triggers,
            instructions: instructions.to_owned(),
            path: path.to_owned(),
        })
    }
}
