//! What a command creates for its own later steps: files it writes, downloads or decodes
//! (`printf 'cat ../wallet.json' > x.sh && bash x.sh`), links it makes to other files (`ln
//! ../state.db s && sqlite3 s …`), so that running a generated file, or reaching a protected
//! file through a fresh link, is judged as what it really is. None of these exist on disk
//! when the gate runs, so the inode-based path guard alone cannot see them.

use std::path::{Path, PathBuf};

use super::model::{Cmd, Facts, RedirectKind, Src};
use super::paths::normalize;
use super::walk::Checker;
use super::word::Word;
use crate::policy::decision::Decision;

/// Where the content of a file this command writes comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    /// Fetched from the network (`curl -o f`, `wget`, `curl … > f`).
    Download,
    /// Decoded or de-obfuscated (`base64 -d > f`, `xxd -r in f`, `gunzip f.gz`).
    Decode,
    /// Written by the command; the static text, when the gate knows it.
    Written(Option<String>),
}

/// A file the command itself creates or changes.
#[derive(Debug, Clone)]
pub(super) struct Generated {
    /// Where.
    pub path: PathBuf,
    /// With what.
    pub origin: Origin,
}

impl Checker<'_, '_> {
    /// Remembers that `paths` receive content of `origin`.
    pub fn note_generated(&mut self, paths: Vec<PathBuf>, origin: &Origin) {
        for path in paths {
            if self.generated.len() >= 256 {
                return;
            }
            self.generated.push(Generated {
                path,
                origin: origin.clone(),
            });
        }
    }

    /// Remembers the files `word` names as written by the command with unknown content.
    pub fn note_written_word(&mut self, word: &Word) {
        if !word.dynamic && !word.procsub {
            let paths = self.word_paths(word);
            self.note_generated(paths, &Origin::Written(None));
        }
    }

    /// Remembers the files a command's stdout redirections write, and with what.
    pub fn note_written(&mut self, cmd: &Cmd, facts: &Facts) {
        let origin = if facts.downloads {
            Origin::Download
        } else if facts.decodes {
            Origin::Decode
        } else {
            Origin::Written(facts.emits.clone())
        };
        for redirect in &cmd.redirects {
            let stdout = redirect.fd.is_none_or(|fd| fd == 1);
            if redirect.kind == RedirectKind::Write
                && stdout
                && !redirect.target.dynamic
                && !redirect.target.procsub
            {
                let paths = self.word_paths(&redirect.target);
                self.note_generated(paths, &origin);
            }
        }
    }

    /// Judges running `word` (a script for a shell when `shell`, otherwise a program or
    /// an interpreter's script) that this same command wrote, downloaded or decoded.
    pub fn check_generated(&mut self, word: &Word, text: &str, s: Src<'_>, shell: bool) {
        if word.dynamic || self.generated.is_empty() {
            return;
        }
        let paths = self.word_paths(word);
        let found: Vec<Origin> = self
            .generated
            .iter()
            .filter(|g| paths.contains(&g.path))
            .map(|g| g.origin.clone())
            .collect();
        if found.contains(&Origin::Download) {
            self.rule(
                "download_then_exec",
                Decision::Forbid,
                format!(
                    "`{text}` runs a file this command just downloaded, unseen; download it, \
                     read it, then run it in a separate call"
                ),
            );
        }
        if found.contains(&Origin::Decode) {
            self.rule(
                "decode_then_exec",
                Decision::Forbid,
                format!(
                    "`{text}` runs a file this command just decoded, hiding what runs; decode \
                     it, read it, then run the reviewed commands in a separate call"
                ),
            );
        }
        let contents: Vec<Option<String>> = found
            .into_iter()
            .filter_map(|origin| match origin {
                Origin::Written(content) => Some(content),
                Origin::Download | Origin::Decode => None,
            })
            .collect();
        if contents.is_empty() {
            return;
        }
        self.rule(
            "run_written_file",
            Decision::Prompt,
            format!(
                "`{text}` runs a file this same command writes, so the gate cannot see what it \
                 will contain; write the file in one call, review it, then run it"
            ),
        );
        if shell {
            for content in contents.into_iter().flatten() {
                self.reparse(&content, s, true, true);
            }
        }
    }

    /// Remembers that `link` will lead to `target` (`ln`, `cp -l`, `cp -s`).
    pub fn note_link(&mut self, link: PathBuf, target: PathBuf) {
        if self.links.len() < 64 && !self.links.contains(&(link.clone(), target.clone())) {
            self.links.push((link, target));
        }
    }

    /// `path` and every path it reaches through a link this command created.
    pub fn aliases(&self, path: &Path) -> Vec<PathBuf> {
        let mut out = vec![path.to_owned()];
        let mut i = 0;
        while i < out.len() && out.len() < 32 {
            let current = out[i].clone();
            for (link, target) in &self.links {
                if let Ok(rest) = current.strip_prefix(link) {
                    let alias = normalize(&target.join(rest));
                    if !out.contains(&alias) {
                        out.push(alias);
                    }
                }
            }
            i += 1;
        }
        out
    }

    /// Remembers the links `ln`-like commands create: each source under `dest` (a
    /// directory) or at `dest` itself.
    pub fn note_links(&mut self, sources: &[Word], dest: &Word, symbolic: bool) {
        if dest.dynamic {
            return;
        }
        let into_dir = sources.len() > 1 || dest.text.ends_with('/');
        for place in self.word_paths(dest) {
            let is_dir = into_dir || place.is_dir();
            for source in sources.iter().filter(|w| !w.dynamic) {
                for target in self.word_paths(source) {
                    let link = match (is_dir, target.file_name()) {
                        (true, Some(name)) => place.join(name),
                        _ => place.clone(),
                    };
                    if symbolic
                        && !source.text.starts_with('/')
                        && let Some(parent) = link.parent()
                    {
                        // A relative symlink target is relative to the link's directory.
                        let relative = normalize(&parent.join(&source.text));
                        self.note_link(link.clone(), relative);
                    }
                    self.note_link(link, target);
                }
            }
        }
    }
}
