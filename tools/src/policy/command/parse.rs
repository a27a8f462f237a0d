//! Parsing with tree-sitter-bash, and the refusals that happen before any classification:
//! text the grammar rejects (an `ERROR` or `MISSING` node is a `Forbid`, never a fallback to
//! allow), re-parses nested deeper than [`MAX_REPARSE_DEPTH`], and text over 256 KiB. The
//! limit on simple commands is counted as the walk reaches each one, and the walk stops there.
//!
//! Re-parsing is how code hidden in strings is seen: `sh -c 'STRING'`, `eval`, here-strings
//! and heredocs fed to a shell, `echo 'code' | sh`, `find -exec sh -c`, `tar
//! --checkpoint-action=exec=…` all come back through [`Checker::script`].

use tree_sitter::Node;

use super::MAX_REPARSE_DEPTH;
use super::model::{Facts, Src};
use super::walk::{Checker, parse_bash, snippet};
use crate::policy::decision::Decision;

/// The longest command text the gate parses; longer input is refused before parsing so
/// decision time stays bounded.
const MAX_COMMAND_BYTES: usize = 256 * 1024;

/// The first syntax error of a tree: its offset and what was found. Only subtrees that
/// hold an error are descended into (tree-sitter keeps that flag on every node), so a tree
/// without one costs nothing.
fn first_error(root: Node<'_>, text: &str) -> Option<(usize, String)> {
    if !root.has_error() {
        return None;
    }
    let mut node = root;
    'descend: loop {
        if !(node.is_error() || node.is_missing()) {
            let mut cursor = node.walk();
            for child in node.children(&mut cursor) {
                if child.has_error() || child.is_missing() {
                    node = child;
                    continue 'descend;
                }
            }
        }
        let found = if node.is_missing() {
            format!("missing `{}`", node.kind())
        } else {
            format!(
                "unexpected `{}`",
                snippet(text.get(node.byte_range()).unwrap_or_default())
            )
        };
        return Some((node.start_byte(), found));
    }
}

impl Checker<'_, '_> {
    /// Parses and classifies `text`, `depth` re-parses deep. With `counted`, its simple
    /// commands count against the limit (re-parses made only for analysis do not count).
    pub fn script(&mut self, text: &str, depth: usize, counted: bool) -> Facts {
        if text.len() > MAX_COMMAND_BYTES {
            self.rule(
                "command_too_long",
                Decision::Forbid,
                format!(
                    "the command is longer than {} KiB; write long content to a file with the \
                     write_file tool and run a short command",
                    MAX_COMMAND_BYTES / 1024
                ),
            );
            return Facts::default();
        }
        if depth > MAX_REPARSE_DEPTH {
            self.rule(
                "nesting_too_deep",
                Decision::Forbid,
                format!(
                    "code is nested more than {MAX_REPARSE_DEPTH} levels deep (sh -c inside \
                     sh -c …); run the inner command directly"
                ),
            );
            return Facts::default();
        }
        if self.over_limit() {
            return Facts::default();
        }
        let Some(tree) = parse_bash(text) else {
            self.rule(
                "parse_error",
                Decision::Forbid,
                "the command could not be parsed as bash; nothing unparsed may run",
            );
            return Facts::default();
        };
        let root = tree.root_node();
        if let Some((offset, found)) = first_error(root, text) {
            let context = if depth == 0 {
                String::new()
            } else {
                format!(" in nested code `{}`", snippet(text))
            };
            self.rule(
                "parse_error",
                Decision::Forbid,
                format!(
                    "bash syntax error at byte {offset}{context}: {found}; fix the quoting or \
                     syntax (nothing unparsed may run)"
                ),
            );
            return Facts::default();
        }
        // Simple commands are counted as the walk reaches them (when `counted`); the walk
        // stops at the limit, so a long chain costs its parse and no more than the limit.
        self.walk(
            root,
            Src {
                text,
                depth,
                counted,
            },
        )
    }

    /// Re-parses `code` found inside a command one level deeper. `isolated` code runs in a
    /// new process, so its `cd` does not move the outer shell.
    pub fn reparse(&mut self, code: &str, s: Src<'_>, counted: bool, isolated: bool) -> Facts {
        let saved = isolated.then(|| self.cwd.clone());
        let facts = self.script(code, s.depth + 1, counted);
        if let Some(saved) = saved {
            self.cwd = saved;
        }
        facts
    }
}
