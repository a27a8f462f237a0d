//! Redirections: parsing `>`, `<`, `2>&1`, here-strings and heredocs into [`Redirect`]s, and
//! redirected statements. tree-sitter attaches a trailing redirect of `a && b < f` or `a | b >
//! f` to the whole list or pipeline; bash attaches it to the last command, and so does the
//! walk, so `printf … > x.sh && sh < x.sh` is judged as `sh` reading `x.sh`.

use tree_sitter::Node;

use super::model::{Cmd, Facts, Redirect, RedirectKind, Src};
use super::walk::{Checker, snippet};
use super::word::Word;

impl Checker<'_, '_> {
    pub fn redirected(&mut self, node: Node<'_>, s: Src<'_>) -> Facts {
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
        let last = body.and_then(last_command);
        let mut facts = match (body, last) {
            (Some(body), _) if body.kind() == "command" => self.simple(body, s, &redirects),
            (Some(body), Some(last)) => {
                // `a && b < f`, `a | b > f`: tree-sitter attaches the trailing redirect to
                // the whole list or pipeline, bash to its last command.
                let mut parsed = Vec::new();
                for redirect in &redirects {
                    parsed.extend(self.redirect(*redirect, s));
                }
                self.trailing = Some((last.id(), parsed));
                let facts = self.walk(body, s);
                self.trailing = None;
                facts
            }
            (other, _) => {
                // A compound body (`{ …; } > f`, `( … ) < f`): its redirects are judged as a
                // whole.
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
                self.note_written(&cmd, &facts);
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

/// The last simple command of a list or pipeline (what a trailing redirect belongs to).
fn last_command(node: Node<'_>) -> Option<Node<'_>> {
    let mut node = node;
    loop {
        match node.kind() {
            "command" => return Some(node),
            "list" | "pipeline" => {
                let mut cursor = node.walk();
                let last = node
                    .named_children(&mut cursor)
                    .filter(|c| c.kind() != "comment")
                    .last()?;
                node = last;
            }
            _ => return None,
        }
    }
}
