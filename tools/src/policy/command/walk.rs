//! The walk over a parsed script: every statement shape bash has (lists, pipelines,
//! subshells, substitutions, redirections, functions, loops, conditionals) is visited so
//! that no simple command escapes classification, and the facts a pipeline needs ("this
//! stage downloads", "that stage runs its input as code") flow up from the commands.
//!
//! The walk also tracks the working directory: `cd` adds candidates (never removes them, so
//! a conditional `cd` cannot hide a path), a `cd` inside a loop or function, or to a dynamic
//! place, makes it unknown, and subshells restore it.

use std::cell::{OnceCell, RefCell};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use tree_sitter::{Node, Parser, Tree};

use super::model::{Cmd, Cwd, Facts, Redirect, Src};
use super::word::Word;
use super::written::Generated;
use super::{CommandContext, GATE};
use crate::policy::decision::{Decision, Verdict};
use crate::policy::path::Identities;

/// How deep statement nesting may go before the gate stops following it.
const MAX_NEST: usize = 200;

/// The longest command text quoted back in a reason.
const SNIPPET: usize = 100;

thread_local! {
    /// One tree-sitter parser per thread, reused by every check (creating one and loading
    /// the grammar costs more than parsing a typical command).
    static PARSER: RefCell<Option<Parser>> = RefCell::new(new_parser());
}

fn new_parser() -> Option<Parser> {
    let mut parser = Parser::new();
    parser
        .set_language(&tree_sitter_bash::LANGUAGE.into())
        .ok()
        .map(|()| parser)
}

/// Parses `text` with this thread's parser; `None` if the grammar did not load.
pub(super) fn parse_bash(text: &str) -> Option<Tree> {
    PARSER.with(|cell| match cell.try_borrow_mut() {
        Ok(mut parser) => parser.as_mut().and_then(|p| p.parse(text, None)),
        Err(_) => new_parser().and_then(|mut p| p.parse(text, None)),
    })
}

/// The state of one check.
pub(super) struct Checker<'c, 'a> {
    /// What the check protects.
    pub ctx: &'c CommandContext<'a>,
    verdict: Verdict,
    seen: HashSet<(String, String)>,
    /// The protected files' identities, looked up once per check when first needed.
    pub ids: OnceCell<Identities>,
    /// Static values assigned to each variable anywhere so far (for indirection).
    pub vars: HashMap<String, Vec<String>>,
    /// Where the shell may be.
    pub cwd: Cwd,
    /// Files this command writes, downloads or decodes, in the order it does.
    pub generated: Vec<Generated>,
    /// Links this command creates: `(link, target)`.
    pub links: Vec<(PathBuf, PathBuf)>,
    /// Directories this command makes git repositories (`git init`).
    pub repos: Vec<PathBuf>,
    /// The directories the last `cd` went to, when it could be followed.
    pub last_cd: Option<Vec<PathBuf>>,
    /// Names of the functions the script defines (a function named `cd` is not `cd`).
    pub functions: HashSet<String>,
    /// Redirections tree-sitter attached to a list or pipeline, waiting for the last command
    /// (by node id) that bash attaches them to.
    pub trailing: Option<(usize, Vec<Redirect>)>,
    commands: usize,
    limit_reported: bool,
    nest: usize,
    /// Inside a loop or function body: a `cd` there cannot be followed.
    pub in_body: usize,
}

impl<'c, 'a> Checker<'c, 'a> {
    /// A fresh check in `ctx`.
    pub fn new(ctx: &'c CommandContext<'a>) -> Self {
        Self {
            ctx,
            verdict: Verdict::default(),
            seen: HashSet::new(),
            ids: OnceCell::new(),
            vars: HashMap::new(),
            cwd: Cwd {
                dirs: vec![super::paths::normalize(ctx.cwd)],
                unknown: false,
            },
            generated: Vec::new(),
            links: Vec::new(),
            repos: Vec::new(),
            last_cd: None,
            functions: HashSet::new(),
            trailing: None,
            commands: 0,
            limit_reported: false,
            nest: 0,
            in_body: 0,
        }
    }

    /// The verdict so far.
    pub fn finish(self) -> Verdict {
        self.verdict
    }

    /// Simple commands counted so far.
    pub fn commands(&self) -> usize {
        self.commands
    }

    /// Whether the sub-command limit has been exceeded (nothing more is worth walking).
    pub fn over_limit(&self) -> bool {
        self.limit_reported
    }

    /// Adds `count` simple commands; `false` (and a `Forbid`) once over the limit.
    pub fn count(&mut self, count: usize) -> bool {
        self.commands += count;
        if self.commands <= self.ctx.max_subcommands {
            return true;
        }
        if !self.limit_reported {
            self.limit_reported = true;
            let limit = self.ctx.max_subcommands;
            self.rule(
                "too_many_subcommands",
                Decision::Forbid,
                format!(
                    "the command holds more than {limit} simple commands; split it into \
                     smaller exec calls or write a script file and review it"
                ),
            );
        }
        false
    }

    /// Records a matched rule once.
    pub fn rule(&mut self, rule: &str, decision: Decision, reason: impl Into<String>) {
        let reason = reason.into();
        if self.seen.insert((rule.to_owned(), reason.clone())) {
            self.verdict.push(GATE, rule, decision, reason);
        }
    }

    /// Visits any node, classifying every simple command inside it.
    pub fn walk(&mut self, node: Node<'_>, s: Src<'_>) -> Facts {
        if self.limit_reported {
            // Already a `Forbid`; walking the rest cannot change the decision.
            return Facts::default();
        }
        if self.nest >= MAX_NEST {
            self.rule(
                "nesting_too_deep",
                Decision::Forbid,
                "the command nests deeper than the gate follows; split it into separate commands",
            );
            return Facts::default();
        }
        self.nest += 1;
        let facts = match node.kind() {
            "command" => self.simple(node, s, &[]),
            "redirected_statement" => self.redirected(node, s),
            "pipeline" => self.pipeline(node, s),
            "list" => self.list(node, s),
            "subshell" | "command_substitution" | "process_substitution" => {
                let saved = self.cwd.clone();
                let mut facts = self.children(node, s);
                let text = s.of(node);
                if let Some(inner) = text.strip_prefix('`').and_then(|t| t.strip_suffix('`'))
                    && inner.contains('\\')
                {
                    // Inside backticks bash removes the backslash before `, \ and $ and
                    // parses again, so `echo \`rm -rf /\`` nested in backticks runs rm.
                    let unescaped = inner
                        .replace("\\\\", "\u{0}")
                        .replace("\\`", "`")
                        .replace("\\$", "$")
                        .replace('\u{0}', "\\");
                    facts.union(self.reparse(&unescaped, s, false, true));
                }
                self.cwd = saved;
                facts
            }
            "function_definition" => self.function(node, s),
            "for_statement" | "c_style_for_statement" | "while_statement" => self.looped(node, s),
            "variable_assignment" => {
                let (name, value) = self.assignment(node, s);
                self.check_env(&name, &value, s.of(node), false);
                value.facts
            }
            "file_redirect" | "herestring_redirect" | "heredoc_redirect" => {
                let mut cmd = Cmd {
                    text: snippet(s.of(node)),
                    ..Cmd::default()
                };
                cmd.redirects = self.redirect(node, s);
                self.check_redirects(&cmd);
                let mut facts = Facts::default();
                for redirect in cmd.redirects {
                    facts.union(redirect.target.facts);
                }
                facts
            }
            "comment" => Facts::default(),
            _ => self.children(node, s),
        };
        self.nest -= 1;
        facts
    }

    /// Visits every named child.
    pub fn children(&mut self, node: Node<'_>, s: Src<'_>) -> Facts {
        let mut facts = Facts::default();
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        for child in children {
            facts.union(self.walk(child, s));
        }
        facts
    }

    /// `a && b || c` nests to the left; flattened so long chains do not recurse. A command
    /// after `&& ` that follows a `cd` runs only if the `cd` succeeded, so there (and along
    /// the rest of the `&&` chain) the working directory is the `cd`'s target alone; after
    /// `||` every candidate is back.
    fn list(&mut self, node: Node<'_>, s: Src<'_>) -> Facts {
        let mut pending = vec![node];
        let mut facts = Facts::default();
        let mut operator = "";
        let mut cd_targets: Option<Vec<PathBuf>> = None;
        let mut widened: Option<Cwd> = None;
        while let Some(next) = pending.pop() {
            if next.kind() == "list" {
                let mut cursor = next.walk();
                let children: Vec<Node<'_>> = next.children(&mut cursor).collect();
                pending.extend(children.into_iter().rev());
                continue;
            }
            if !next.is_named() {
                operator = next.kind();
                continue;
            }
            if next.kind() == "comment" {
                continue;
            }
            match (operator, cd_targets.take()) {
                ("&&", Some(targets)) => {
                    if widened.is_none() {
                        widened = Some(self.cwd.clone());
                    }
                    self.cwd.dirs = targets;
                }
                ("&&", None) => {}
                _ => self.widen(widened.take()),
            }
            self.last_cd = None;
            facts.union(self.walk(next, s));
            let plain = next.kind() == "command"
                || next.kind() == "redirected_statement"
                    && next
                        .child_by_field_name("body")
                        .is_some_and(|body| body.kind() == "command");
            let overridden = ["cd", "pushd"]
                .iter()
                .any(|name| self.functions.contains(*name));
            if plain && !overridden {
                cd_targets = self.last_cd.take();
            }
        }
        self.widen(widened);
        facts
    }

    /// Restores the candidates a `cd … &&` chain narrowed, keeping any added since.
    fn widen(&mut self, saved: Option<Cwd>) {
        if let Some(saved) = saved {
            for dir in saved.dirs {
                if !self.cwd.dirs.contains(&dir) {
                    self.cwd.dirs.push(dir);
                }
            }
            self.cwd.unknown |= saved.unknown;
        }
    }

    fn pipeline(&mut self, node: Node<'_>, s: Src<'_>) -> Facts {
        let mut cursor = node.walk();
        let stages: Vec<Node<'_>> = node
            .named_children(&mut cursor)
            .filter(|n| n.kind() != "comment")
            .collect();
        let facts = stages
            .into_iter()
            .map(|stage| {
                let saved = self.cwd.clone();
                let facts = self.walk(stage, s);
                self.cwd = saved;
                facts
            })
            .collect();
        self.pipe_rules(facts, &snippet(s.of(node)), s)
    }

    fn function(&mut self, node: Node<'_>, s: Src<'_>) -> Facts {
        if let Some(name) = node.child_by_field_name("name")
            && self.functions.len() < 64
        {
            self.functions.insert(s.of(name).to_owned());
        }
        if let (Some(name), Some(body)) = (
            node.child_by_field_name("name"),
            node.child_by_field_name("body"),
        ) && is_fork_bomb(s.of(name), body, s)
        {
            self.rule(
                "fork_bomb",
                Decision::Forbid,
                format!(
                    "`{}` is a fork bomb: the function spawns copies of itself until the \
                     machine stops; write a bounded loop instead",
                    snippet(s.of(node))
                ),
            );
        }
        self.in_body += 1;
        let facts = self.children(node, s);
        self.in_body -= 1;
        facts
    }

    fn looped(&mut self, node: Node<'_>, s: Src<'_>) -> Facts {
        let variable = node
            .child_by_field_name("variable")
            .map(|v| s.of(v).to_owned());
        let mut facts = Facts::default();
        let children = fielded_children(node);
        for (field, child) in children {
            if !child.is_named() {
                continue;
            }
            match (field, &variable) {
                (Some("body"), _) => {
                    self.in_body += 1;
                    facts.union(self.walk(child, s));
                    self.in_body -= 1;
                }
                (Some("value"), Some(name)) => {
                    let value = self.word(child, s);
                    if !value.dynamic {
                        self.remember(name, &value.text);
                    }
                    facts.union(value.facts);
                }
                _ => facts.union(self.walk(child, s)),
            }
        }
        facts
    }

    /// `NAME=value`: the name and the value's word; static values are remembered.
    pub fn assignment(&mut self, node: Node<'_>, s: Src<'_>) -> (String, Word) {
        let name_node = node.child_by_field_name("name");
        let name = name_node.map(|n| s.of(n).to_owned()).unwrap_or_default();
        let mut facts = Facts::default();
        if let Some(subscript) = name_node.filter(|n| n.kind() == "subscript") {
            facts.union(self.walk(subscript, s));
        }
        let mut value = match node.child_by_field_name("value") {
            Some(value) => {
                let word = self.word(value, s);
                if !word.dynamic {
                    let text = word.text.as_str();
                    let text = match value.kind() {
                        "array" => text.trim_start_matches('(').trim_end_matches(')'),
                        _ => text,
                    };
                    self.remember(&name, text);
                }
                word
            }
            None => {
                self.remember(&name, "");
                Word::default()
            }
        };
        value.facts.union(facts);
        (name, value)
    }

    /// Remembers a static value of a variable (bounded, for indirection).
    pub fn remember(&mut self, name: &str, value: &str) {
        let values = self.vars.entry(name.to_owned()).or_default();
        if values.len() < 8 && !values.iter().any(|v| v == value) {
            values.push(value.to_owned());
        }
    }

    /// Classifies one simple command with the redirections of its enclosing statement.
    pub fn simple(&mut self, node: Node<'_>, s: Src<'_>, outer: &[Node<'_>]) -> Facts {
        if s.counted && !self.count(1) {
            return Facts::default();
        }
        let mut facts = Facts {
            commands: 1,
            ..Facts::default()
        };
        let mut cmd = Cmd {
            text: snippet(s.of(node)),
            ..Cmd::default()
        };
        let children = fielded_children(node);
        for (field, child) in children {
            match (field, child.kind()) {
                (_, "variable_assignment") => {
                    let (name, value) = self.assignment(child, s);
                    facts.union(value.facts.clone());
                    cmd.assigns.push((name, value));
                }
                (Some("name" | "argument"), _) => {
                    let word = self.word(child, s);
                    facts.union(word.facts.clone());
                    cmd.argv.push(word);
                }
                (_, "file_redirect" | "herestring_redirect" | "heredoc_redirect") => {
                    cmd.redirects.extend(self.redirect(child, s));
                }
                (_, "comment") => {}
                _ if child.is_named() => facts.union(self.walk(child, s)),
                _ => {}
            }
        }
        for redirect in outer {
            cmd.redirects.extend(self.redirect(*redirect, s));
        }
        if self
            .trailing
            .as_ref()
            .is_some_and(|(id, _)| *id == node.id())
            && let Some((_, trailing)) = self.trailing.take()
        {
            cmd.redirects.extend(trailing);
        }
        for redirect in &cmd.redirects {
            facts.union(redirect.target.facts.clone());
        }
        for (name, value) in &cmd.assigns {
            self.check_env(name, value, &cmd.text, true);
        }
        self.check_redirects(&cmd);
        let own = self.run(&cmd, 0, s);
        self.process_pipes(&cmd, &own, s);
        let substituted = facts.commands > 1;
        facts.union(own);
        if substituted {
            facts.emits = None;
        }
        self.note_written(&cmd, &facts);
        self.indirection(node, s);
        facts
    }

    /// `cmd > >(sh)`, `sh < <(…)`, `bash -i > >(nc …)`: a process substitution is a pipe in
    /// one direction or the other, so the pipeline rules apply both ways.
    pub fn process_pipes(&mut self, cmd: &Cmd, own: &Facts, s: Src<'_>) {
        let inner: Vec<Facts> = cmd
            .argv
            .iter()
            .chain(cmd.redirects.iter().map(|r| &r.target))
            .filter(|w| w.procsub && (w.facts.runs_stdin || w.facts.network || own.runs_stdin))
            .map(|w| w.facts.clone())
            .collect();
        for facts in inner {
            self.pipe_rules(vec![facts.clone(), own.clone()], &cmd.text, s);
            self.pipe_rules(vec![own.clone(), facts], &cmd.text, s);
        }
    }
}

/// The children of `node` with the field each fills (`name`, `argument`, `body`, …).
fn fielded_children<'t>(node: Node<'t>) -> Vec<(Option<&'static str>, Node<'t>)> {
    let mut cursor = node.walk();
    node.children(&mut cursor)
        .enumerate()
        .map(|(i, child)| (node.field_name_for_child(i as u32), child))
        .collect()
}

/// A function that calls itself from a pipeline or in the background.
fn is_fork_bomb(name: &str, body: Node<'_>, s: Src<'_>) -> bool {
    let mut pending = vec![(body, false)];
    let mut visited = 0;
    while let Some((node, forked)) = pending.pop() {
        visited += 1;
        if visited > 10_000 {
            return false;
        }
        let background = node.next_sibling().is_some_and(|next| next.kind() == "&");
        let forked = forked || node.kind() == "pipeline" || background;
        if node.kind() == "command"
            && forked
            && node
                .child_by_field_name("name")
                .is_some_and(|n| s.of(n) == name)
        {
            return true;
        }
        let mut cursor = node.walk();
        pending.extend(node.named_children(&mut cursor).map(|c| (c, forked)));
    }
    false
}

/// The source of a command, shortened for a reason.
pub(super) fn snippet(text: &str) -> String {
    let text = text.trim();
    if text.chars().count() <= SNIPPET {
        return text.to_owned();
    }
    let cut: String = text.chars().take(SNIPPET).collect();
    format!("{cut}…")
}
