//! Parsing with tree-sitter-bash, and the refusals that happen before any classification:
//! text the grammar rejects (an `ERROR` or `MISSING` node is a `Forbid`, never a fallback to
//! allow), re-parses nested deeper than [`MAX_REPARSE_DEPTH`], and more simple commands than
//! the context allows, and text over 256 KiB.
//!
//! Re-parsing is how code hidden in strings is seen: `sh -c 'STRING'`, `eval`, here-strings
//! and heredocs fed to a shell, `echo 'code' | sh`, `find -exec sh -c`, `tar
//! --checkpoint-action=exec=…` all come back through [`Checker::script`].

use tree_sitter::Node;

use super::MAX_REPARSE_DEPTH;
use super::model::{Facts, Src};
use super::walk::{Checker, snippet};
use crate::policy::decision::Decision;

/// The longest command text the gate parses; longer input is refused before parsing so
/// decision time stays bounded.
const MAX_COMMAND_BYTES: usize = 256 * 1024;

/// What one pass over a tree found before the walk.
struct Survey {
    commands: usize,
    error: Option<(usize, String)>,
}

/// Counts simple commands and finds the first syntax error, without recursion.
fn survey(root: Node<'_>, text: &str) -> Survey {
    let mut survey = Survey {
        commands: 0,
        error: None,
    };
    let mut cursor = root.walk();
    loop {
        let node = cursor.node();
        if node.kind() == "command" {
            survey.commands += 1;
        }
        if survey.error.is_none() && (node.is_error() || node.is_missing()) {
            let found = if node.is_missing() {
                format!("missing `{}`", node.kind())
            } else {
                format!(
                    "unexpected `{}`",
                    snippet(text.get(node.byte_range()).unwrap_or_default())
                )
            };
            survey.error = Some((node.start_byte(), found));
        }
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return survey;
            }
        }
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
        let Some(tree) = self.parser().and_then(|parser| parser.parse(text, None)) else {
            self.rule(
                "parse_error",
                Decision::Forbid,
                "the command could not be parsed as bash; nothing unparsed may run",
            );
            return Facts::default();
        };
        let root = tree.root_node();
        let survey = survey(root, text);
        if let Some((offset, found)) = survey.error {
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
        if counted && !self.count(survey.commands) {
            return Facts::default();
        }
        self.walk(root, Src { text, depth })
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
