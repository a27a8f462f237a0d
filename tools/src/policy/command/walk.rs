//! The walk over a parsed script: every statement shape bash has (lists, pipelines,
//! subshells, substitutions, redirections, functions, loops, conditionals) is visited so
//! that no simple command escapes classification, and the facts a pipeline needs ("this
//! stage downloads", "that stage runs its input as code") flow up from the commands.
//!
//! The walk also tracks the working directory: `cd` adds candidates (never removes them, so
//! a conditional `cd` cannot hide a path), a `cd` inside a loop or function, or to a dynamic
//! place, makes it unknown, and subshells restore it.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use tree_sitter::{Node, Parser};

use super::model::{Cmd, Cwd, Facts, Redirect, RedirectKind, Src};
use super::word::Word;
use super::{CommandContext, GATE};
use crate::policy::decision::{Decision, Verdict};

/// How deep statement nesting may go before the gate stops following it.
const MAX_NEST: usize = 200;

/// The longest command text quoted back in a reason.
const SNIPPET: usize = 100;

/// The state of one check.
pub(super) struct Checker<'c, 'a> {
    /// What the check protects.
    pub ctx: &'c CommandContext<'a>,
    verdict: Verdict,
    seen: HashSet<(String, String)>,
    parser: Option<Parser>,
    /// Static values assigned to each variable anywhere so far (for indirection).
    pub vars: HashMap<String, Vec<String>>,
    /// Where the shell may be.
    pub cwd: Cwd,
    /// Files written by downloads in this script (`curl -o f`, `curl … > f`).
    pub downloaded: Vec<PathBuf>,
    commands: usize,
    limit_reported: bool,
    nest: usize,
    /// Inside a loop or function body: a `cd` there cannot be followed.
    pub in_body: usize,
}

impl<'c, 'a> Checker<'c, 'a> {
    /// A fresh check in `ctx`.
    pub fn new(ctx: &'c CommandContext<'a>) -> Self {
        let mut parser = Parser::new();
        let parser = parser
            .set_language(&tree_sitter_bash::LANGUAGE.into())
            .ok()
            .map(|()| parser);
        Self {
            ctx,
            verdict: Verdict::default(),
            seen: HashSet::new(),
            parser,
            vars: HashMap::new(),
            cwd: Cwd {
                dirs: vec![super::paths::normalize(ctx.cwd)],
                unknown: false,
            },
            downloaded: Vec::new(),
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

    /// The parser, if the grammar loaded.
    pub fn parser(&mut self) -> Option<&mut Parser> {
        self.parser.as_mut()
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

    /// `a && b || c; d` nests to the left; flattened so long chains do not recurse.
    fn list(&mut self, node: Node<'_>, s: Src<'_>) -> Facts {
        let mut pending = vec![node];
        let mut facts = Facts::default();
        while let Some(next) = pending.pop() {
            if next.kind() == "list" {
                let mut cursor = next.walk();
                let children: Vec<Node<'_>> = next.named_children(&mut cursor).collect();
                pending.extend(children.into_iter().rev());
            } else {
                facts.union(self.walk(next, s));
            }
        }
        facts
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

    fn redirected(&mut self, node: Node<'_>, s: Src<'_>) -> Facts {
        let mut redirects = Vec::new();
        let mut piped = Vec::new();
        let mut tails = Vec::new();
        let mut cursor = node.walk();
        for (i, child) in node.children(&mut cursor).enumerate() {
            if node.field_name_for_child(i as u32) == Some("body") {
                continue;
            }
            collect_redirects(child, &mut redirects, &mut piped, &mut tails);
        }
        let body = node.child_by_field_name("body");
        let mut facts = match body {
            Some(body) if body.kind() == "command" => self.simple(body, s, &redirects),
            other => {
                // A compound body (or a pipeline, to which tree-sitter attaches a trailing
                // redirect): its redirects are judged as a whole.
                let mut facts = other.map(|b| self.walk(b, s)).unwrap_or_default();
                let mut cmd = Cmd {
                    text: snippet(s.of(node)),
                    ..Cmd::default()
                };
                for redirect in &redirects {
                    cmd.redirects.extend(self.redirect(*redirect, s));
                }
                self.check_redirects(&cmd);
                self.process_pipes(&cmd, &facts, s);
                for redirect in &cmd.redirects {
                    facts.union(redirect.target.facts.clone());
                }
                facts
            }
        };
        if !piped.is_empty() {
            let mut stages = vec![facts];
            for stage in piped {
                let saved = self.cwd.clone();
                stages.push(self.walk(stage, s));
                self.cwd = saved;
            }
            facts = self.pipe_rules(stages, &snippet(s.of(node)), s);
        }
        for tail in tails {
            facts.union(self.walk(tail, s));
        }
        facts
    }

    fn function(&mut self, node: Node<'_>, s: Src<'_>) -> Facts {
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
        self.note_download(&cmd, &facts);
        self.indirection(node, s);
        facts
    }

    /// `cmd > >(sh)`, `sh < <(…)`, `bash -i > >(nc …)`: a process substitution is a pipe in
    /// one direction or the other, so the pipeline rules apply both ways.
    fn process_pipes(&mut self, cmd: &Cmd, own: &Facts, s: Src<'_>) {
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

    /// The redirections one redirect node stands for.
    pub fn redirect(&mut self, node: Node<'_>, s: Src<'_>) -> Vec<Redirect> {
        let fd = node
            .child_by_field_name("descriptor")
            .and_then(|d| s.of(d).parse().ok());
        match node.kind() {
            "herestring_redirect" => {
                let mut cursor = node.walk();
                let text = node
                    .named_children(&mut cursor)
                    .find(|c| c.kind() != "file_descriptor");
                text.map(|t| {
                    vec![Redirect {
                        kind: RedirectKind::HereString,
                        target: self.word(t, s),
                        fd,
                    }]
                })
                .unwrap_or_default()
            }
            "heredoc_redirect" => vec![self.heredoc(node, s, fd)],
            _ => self.file_redirect(node, s, fd),
        }
    }

    fn file_redirect(&mut self, node: Node<'_>, s: Src<'_>, fd: Option<u32>) -> Vec<Redirect> {
        let mut cursor = node.walk();
        let operator = node
            .children(&mut cursor)
            .find(|c| !c.is_named())
            .map(|c| c.kind())
            .unwrap_or(">");
        let mut cursor = node.walk();
        let targets: Vec<Node<'_>> = node
            .children_by_field_name("destination", &mut cursor)
            .collect();
        let mut out = Vec::new();
        for (i, target) in targets.into_iter().enumerate() {
            let word = self.word(target, s);
            let numeric = target.kind() == "number" || word.text == "-";
            let kind = match operator {
                _ if i > 0 && numeric => RedirectKind::Duplicate,
                "<" => RedirectKind::Read,
                ">&" | "<&" | ">&-" | "<&-" if numeric => RedirectKind::Duplicate,
                "<&" => RedirectKind::Read,
                _ => RedirectKind::Write,
            };
            out.push(Redirect {
                kind,
                target: word,
                fd,
            });
        }
        out
    }

    fn heredoc(&mut self, node: Node<'_>, s: Src<'_>, fd: Option<u32>) -> Redirect {
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
        let quoted = children
            .iter()
            .find(|c| c.kind() == "heredoc_start")
            .is_some_and(|start| s.of(*start).contains(['\'', '"', '\\']));
        let mut target = Word::default();
        if let Some(body) = children.iter().find(|c| c.kind() == "heredoc_body") {
            let facts = self.children(*body, s);
            let mut cursor = body.walk();
            let expands = body
                .named_children(&mut cursor)
                .any(|c| c.kind() != "heredoc_content");
            target = Word::literal(s.of(*body));
            target.dynamic = expands && !quoted;
            target.facts = facts;
        }
        Redirect {
            kind: RedirectKind::HereDoc,
            target,
            fd,
        }
    }
}

/// Sorts the children of a redirected statement: redirect nodes (including those nested in a
/// heredoc redirect), pipeline stages that follow a heredoc (`cat <<EOF | sh`), and statements
/// that follow one (`cat <<EOF && ls`).
fn collect_redirects<'t>(
    node: Node<'t>,
    redirects: &mut Vec<Node<'t>>,
    piped: &mut Vec<Node<'t>>,
    tails: &mut Vec<Node<'t>>,
) {
    match node.kind() {
        "file_redirect" | "herestring_redirect" => redirects.push(node),
        "heredoc_redirect" => {
            redirects.push(node);
            let mut cursor = node.walk();
            for (i, child) in node.children(&mut cursor).enumerate() {
                match (node.field_name_for_child(i as u32), child.kind()) {
                    (Some("redirect"), _) => redirects.push(child),
                    (Some("right"), _) => tails.push(child),
                    (_, "pipeline") => {
                        let mut inner = child.walk();
                        piped.extend(child.named_children(&mut inner));
                    }
                    _ => {}
                }
            }
        }
        _ => {}
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
