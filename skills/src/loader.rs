//! Loading a skills directory (`<dir>/<name>/SKILL.md` for every subdirectory) with partial
//! failure: each broken skill becomes an error in the report and the rest still load, because
//! one bad download must not take every skill, or the agent's start, down with it.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::skill::Skill;

/// What [`load_skills`] found: the skills that loaded and why the others did not.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The skills that loaded, sorted by directory name.
    pub skills: Vec<Skill>,
    /// One error per skill (or directory entry) that did not load, each naming its path.
    pub errors: Vec<Error>,
}

/// Loads `<dir>/<name>/SKILL.md` for every subdirectory of `dir`, sorted by name.
///
/// A missing `dir` is an empty report (nothing is installed yet). Plain files and hidden
/// directories (`.git`, editors' scratch) are skipped; a subdirectory without a `SKILL.md` is an
/// error. Symbolic links are followed.
pub fn load_skills(dir: &Path) -> LoadReport {
    let mut report = LoadReport::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(source) if source.kind() == ErrorKind::NotFound => return report,
        Err(source) => {
            report.errors.push(Error::Io {
                path: dir.to_owned(),
                source,
            });
            return report;
        }
    };
    let mut skill_dirs: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let path = match entry {
            Ok(entry) => entry.path(),
            Err(source) => {
                report.errors.push(Error::Io {
                    path: dir.to_owned(),
                    source,
                });
                continue;
            }
        };
        if path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with('.'))
        {
            continue;
        }
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_dir() => skill_dirs.push(path),
            Ok(_) => {}
            Err(source) => report.errors.push(Error::Io { path, source }),
        }
    }
    skill_dirs.sort();
    for skill_dir in skill_dirs {
        match Skill::load(&skill_dir.join(Skill::FILE_NAME)) {
            Ok(skill) => report.skills.push(skill),
            Err(error) => report.errors.push(error),
        }
    }
    report
}
