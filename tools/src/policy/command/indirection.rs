//! Variable indirection: `c=rm; $c -rf /`, `${!ref}`, `${x:-rm}`, `rm${IFS}-rf${IFS}/`,
//! `sh -c '$1 -rf /' _ rm`.
//!
//! A command holding an expansion is already never `Allow` where it matters (a dynamic
//! command word is `Prompt`). On top of that, when the script itself assigned static values to
//! the variables used, each combination of values is substituted into the command's source,
//! escaped the way bash would see the expanded text (split on blanks, globbed, never
//! re-interpreted as quotes or operators), and the result is classified again. A variant can
//! only add rules, so this raises `c=rm; $c -rf /` to `Forbid` without ever lowering anything.

use std::ops::Range;

use tree_sitter::Node;

use super::model::Src;
use super::walk::Checker;
use super::word::plain_variable;

/// The most substituted variants classified per command.
const MAX_VARIANTS: usize = 8;

impl Checker<'_, '_> {
    /// Classifies the variants of `node` obtained by substituting known variable values.
    pub fn indirection(&mut self, node: Node<'_>, s: Src<'_>) {
        if !s.of(node).contains('$') {
            // No expansion to substitute (the common case): skip the traversal.
            return;
        }
        let mut found: Vec<(Range<usize>, Vec<String>)> = Vec::new();
        let mut pending = vec![(node, false)];
        while let Some((next, quoted)) = pending.pop() {
            match next.kind() {
                "command_substitution" | "process_substitution" | "arithmetic_expansion" => {
                    continue;
                }
                "simple_expansion" | "expansion" => {
                    if let Some(values) = self.candidates(next, s, quoted)
                        && !values.is_empty()
                    {
                        found.push((next.byte_range(), values));
                    }
                    continue;
                }
                _ => {}
            }
            let quoted = quoted || next.kind() == "string";
            let mut cursor = next.walk();
            pending.extend(next.named_children(&mut cursor).map(|c| (c, quoted)));
        }
        if found.is_empty() {
            return;
        }
        found.sort_by_key(|(range, _)| range.start);
        let total = found
            .iter()
            .try_fold(1usize, |acc, (_, values)| acc.checked_mul(values.len()))
            .unwrap_or(usize::MAX)
            .min(MAX_VARIANTS);
        let range = node.byte_range();
        for combination in 0..total {
            let mut text = String::new();
            let mut pos = range.start;
            let mut rest = combination;
            for (span, values) in &found {
                text.push_str(s.text.get(pos..span.start).unwrap_or_default());
                text.push_str(&values[rest % values.len()]);
                rest /= values.len();
                pos = span.end;
            }
            text.push_str(s.text.get(pos..range.end).unwrap_or_default());
            self.reparse(&text, s, false, true);
        }
    }

    /// The texts an expansion may stand for, rendered for re-parsing in its quoting context.
    fn candidates(&self, node: Node<'_>, s: Src<'_>, quoted: bool) -> Option<Vec<String>> {
        let rendered = |value: &String| render(value, quoted);
        if let Some(name) = plain_variable(node, s) {
            let mut values: Vec<String> = self
                .vars
                .get(name)
                .map(|values| values.iter().map(rendered).collect())
                .unwrap_or_default();
            if name == "IFS" {
                values.push(" ".to_owned());
            }
            return Some(values);
        }
        if node.kind() != "expansion" {
            return None;
        }
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        if let Some(subscript) = children.iter().find(|c| c.kind() == "subscript") {
            // `${a[@]}` / `${a[*]}`: every element, split as separate words.
            let name = subscript.child_by_field_name("name").map(|n| s.of(n))?;
            let index = subscript.child_by_field_name("index").map(|i| s.of(i))?;
            if !matches!(index, "@" | "*") || children.len() != 3 {
                return None;
            }
            let values = self.vars.get(name)?;
            let split = |v: &String| {
                if quoted {
                    // `"${a[@]}"`: each element its own quoted word.
                    let elements: Vec<String> =
                        v.split_whitespace().map(|e| render(e, true)).collect();
                    elements.join("\" \"")
                } else {
                    render(v, false)
                }
            };
            return Some(values.iter().map(split).collect());
        }
        let variable = children.iter().find(|c| c.kind() == "variable_name")?;
        let name = s.of(*variable);
        let known = self.vars.get(name);
        match children.get(1).map(|c| c.kind()) {
            Some("!") => Some(
                known?
                    .iter()
                    .filter_map(|target| self.vars.get(target))
                    .flatten()
                    .map(rendered)
                    .collect(),
            ),
            _ => {
                let operator = children
                    .iter()
                    .position(|c| matches!(c.kind(), ":-" | "-" | ":=" | "="))?;
                let default_start = children.get(operator)?.end_byte();
                let default_end = node.end_byte().saturating_sub(1);
                let default = s.text.get(default_start..default_end).unwrap_or_default();
                let mut values: Vec<String> = known
                    .map(|v| v.iter().map(rendered).collect())
                    .unwrap_or_default();
                values.push(default.to_owned());
                Some(values)
            }
        }
    }
}

/// Escapes an expanded value so a re-parse sees what bash would: unquoted values still split
/// on blanks and glob, but never turn into quotes, operators or further expansions.
pub(super) fn render(value: &str, quoted: bool) -> String {
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if !quoted && c.is_whitespace() {
            out.push(' ');
            continue;
        }
        let special = if quoted {
            matches!(c, '"' | '\\' | '$' | '`')
        } else {
            !(c.is_alphanumeric()
                || c.is_whitespace()
                || matches!(
                    c,
                    '*' | '?' | '[' | ']' | '/' | '.' | '-' | '_' | '+' | ',' | ':' | '@' | '%'
                ))
        };
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn renders_values_inert() {
        assert_eq!(render("rm -rf /", false), "rm -rf /");
        assert_eq!(render("a;b", false), "a\\;b");
        assert_eq!(render("$(x)", true), "\\$(x)");
        assert_eq!(render("~", false), "\\~");
    }
}
