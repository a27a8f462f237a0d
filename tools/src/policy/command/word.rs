//! Words as the shell will see them: quotes and escapes removed (`r''m`, `\rm`, `"rm"` are
//! all `rm`), `$'…'` decoded, `~` and `$HOME` expanded to the user's home, and every other
//! expansion (`$VAR`, `${…}`, `$(…)`, backticks, arithmetic) marked dynamic so that no rule
//! mistakes it for a literal.
//!
//! Alongside the text a word keeps a pattern spelling (quoted pattern characters escaped) so
//! brace and glob expansion treat `"*"` and `*` differently, as bash does.

use std::path::Path;

use tree_sitter::Node;

use super::model::{Facts, Src};
use super::paths::escape;
use super::walk::Checker;

/// One shell word after parsing.
#[derive(Debug, Clone, Default)]
pub(super) struct Word {
    /// The text after quote removal; dynamic parts keep their source spelling (`$x`).
    pub text: String,
    /// The text with quoted pattern characters escaped, for brace and glob expansion.
    pub pattern: String,
    /// Whether unquoted glob or brace characters are present.
    pub globby: bool,
    /// Whether some part comes from an expansion the gate cannot evaluate.
    pub dynamic: bool,
    /// Whether the word is a process substitution (`<(…)`, `>(…)`).
    pub procsub: bool,
    /// What the commands nested in the word (substitutions) do.
    pub facts: Facts,
}

impl Word {
    /// A word spelling `text` literally.
    pub fn literal(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            pattern: escape(text),
            ..Self::default()
        }
    }

    /// The part of the word after its first `skip` bytes, as a literal with the same
    /// dynamism (for `--opt=value`, `if=path`, `@file`).
    pub fn tail(&self, skip: usize) -> Self {
        let text = self.text.get(skip..).unwrap_or_default();
        Self {
            dynamic: self.dynamic,
            ..Self::literal(text)
        }
    }

    fn lit(&mut self, text: &str, quoted: bool) {
        self.text.push_str(text);
        if quoted {
            self.pattern.push_str(&escape(text));
        } else {
            self.globby |= text.contains(['*', '?', '[', '{']);
            self.pattern.push_str(text);
        }
    }

    fn unknown(&mut self, source: &str) {
        self.dynamic = true;
        self.text.push_str(source);
        self.pattern.push_str(&escape(source));
    }
}

impl Checker<'_, '_> {
    /// Builds the word for `node`, walking (and so classifying) the commands nested in it.
    pub(super) fn word(&mut self, node: Node<'_>, s: Src<'_>) -> Word {
        let mut word = Word::default();
        self.word_part(node, s, &mut word, false);
        word
    }

    fn word_part(&mut self, node: Node<'_>, s: Src<'_>, word: &mut Word, quoted: bool) {
        let text = s.of(node);
        match node.kind() {
            "raw_string" => {
                let inner = text.strip_prefix('\'').unwrap_or(text);
                word.lit(inner.strip_suffix('\'').unwrap_or(inner), true);
            }
            "string" => self.sequence(node, s, word, true),
            "\"" => {}
            "string_content" => word.lit(&unescape_double_quoted(text), true),
            "ansi_c_string" => match decode_ansi_c(text) {
                Some(decoded) => word.lit(&decoded, true),
                None => word.unknown(text),
            },
            "simple_expansion" | "expansion" => self.expansion(node, s, word),
            "command_substitution" | "arithmetic_expansion" => {
                let facts = self.walk(node, s);
                word.facts.union(facts);
                word.unknown(text);
            }
            "process_substitution" => {
                let facts = self.walk(node, s);
                word.facts.union(facts);
                word.procsub = true;
                word.lit("/dev/fd/63", true);
            }
            _ if node.child_count() == 0 => {
                if quoted {
                    word.lit(text, true);
                } else {
                    self.unquoted(text, word);
                }
            }
            _ => self.sequence(node, s, word, quoted),
        }
    }

    /// Children in order, with the source text between them taken literally.
    fn sequence(&mut self, node: Node<'_>, s: Src<'_>, word: &mut Word, quoted: bool) {
        let mut pos = node.start_byte();
        let mut cursor = node.walk();
        let children: Vec<Node<'_>> = node.children(&mut cursor).collect();
        for child in children {
            if child.start_byte() > pos {
                let gap = s.text.get(pos..child.start_byte()).unwrap_or_default();
                self.literal_gap(gap, word, quoted);
            }
            self.word_part(child, s, word, quoted);
            pos = child.end_byte();
        }
        if node.end_byte() > pos {
            let gap = s.text.get(pos..node.end_byte()).unwrap_or_default();
            self.literal_gap(gap, word, quoted);
        }
    }

    fn literal_gap(&mut self, gap: &str, word: &mut Word, quoted: bool) {
        if quoted {
            word.lit(&unescape_double_quoted(gap), true);
        } else {
            self.unquoted(gap, word);
        }
    }

    /// Unquoted text: backslash escapes and a leading tilde.
    fn unquoted(&mut self, text: &str, word: &mut Word) {
        let mut rest = text;
        if word.text.is_empty() && !word.dynamic && rest.starts_with('~') {
            let end = rest.find('/').unwrap_or(rest.len());
            let (head, tail) = rest.split_at(end);
            match head {
                "~" => word.lit(&self.ctx.paths.user_home().to_string_lossy(), true),
                "~+" => match self.single_cwd() {
                    Some(cwd) => word.lit(&cwd.to_string_lossy(), true),
                    None => word.unknown(head),
                },
                _ => word.unknown(head),
            }
            rest = tail;
        }
        let mut chars = rest.chars();
        let mut run = String::new();
        while let Some(c) = chars.next() {
            if c != '\\' {
                run.push(c);
                continue;
            }
            word.lit(&run, false);
            run.clear();
            match chars.next() {
                Some('\n') | None => {}
                Some(escaped) => word.lit(escaped.encode_utf8(&mut [0; 4]), true),
            }
        }
        word.lit(&run, false);
    }

    /// `$NAME` / `${NAME}`: `HOME` and `PWD` are known (unless the script assigns them);
    /// everything else is dynamic.
    fn expansion(&mut self, node: Node<'_>, s: Src<'_>, word: &mut Word) {
        let text = s.of(node);
        let name = plain_variable(node, s);
        match name {
            Some("HOME") if !self.vars.contains_key("HOME") => {
                word.lit(&self.ctx.paths.user_home().to_string_lossy(), true);
            }
            Some("PWD") if !self.vars.contains_key("PWD") => match self.single_cwd() {
                Some(cwd) => word.lit(&cwd.to_string_lossy(), true),
                None => word.unknown(text),
            },
            _ => {
                let facts = self.children(node, s);
                word.facts.union(facts);
                word.unknown(text);
            }
        }
    }

    fn single_cwd(&self) -> Option<&Path> {
        match (self.cwd.unknown, self.cwd.dirs.as_slice()) {
            (false, [only]) => Some(only),
            _ => None,
        }
    }
}

/// The variable of `$NAME` or `${NAME}` with no operator, subscript or indirection.
pub(super) fn plain_variable<'s>(node: Node<'_>, s: Src<'s>) -> Option<&'s str> {
    let mut cursor = node.walk();
    let named: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
    let has_operator = node.child_by_field_name("operator").is_some();
    match named.as_slice() {
        [only]
            if !has_operator
                && matches!(only.kind(), "variable_name" | "special_variable_name") =>
        {
            Some(s.of(*only))
        }
        _ => None,
    }
}

/// Removes the escapes bash honours inside double quotes.
fn unescape_double_quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some('$' | '`' | '"' | '\\') => {
                    if let Some(next) = chars.next() {
                        out.push(next);
                    }
                    continue;
                }
                Some('\n') => {
                    chars.next();
                    continue;
                }
                _ => {}
            }
        }
        out.push(c);
    }
    out
}

/// Decodes `$'…'`; `None` for escapes the gate does not model.
pub(super) fn decode_ansi_c(text: &str) -> Option<String> {
    let inner = text.strip_prefix("$'")?.strip_suffix('\'')?;
    let mut out = String::new();
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let escaped = chars.next()?;
        let decoded = match escaped {
            'a' => '\x07',
            'b' => '\x08',
            'e' | 'E' => '\x1b',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            '\\' | '\'' | '"' | '?' => escaped,
            '0'..='7' => {
                let mut value = escaped.to_digit(8)?;
                for _ in 0..2 {
                    match chars.peek().and_then(|d| d.to_digit(8)) {
                        Some(digit) => {
                            value = value * 8 + digit;
                            chars.next();
                        }
                        None => break,
                    }
                }
                char::from_u32(value)?
            }
            'x' | 'u' | 'U' => {
                let max = match escaped {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let mut value = 0u32;
                let mut digits = 0;
                while digits < max {
                    match chars.peek().and_then(|d| d.to_digit(16)) {
                        Some(digit) => {
                            value = value.checked_mul(16)?.checked_add(digit)?;
                            chars.next();
                            digits += 1;
                        }
                        None => break,
                    }
                }
                if digits == 0 {
                    return None;
                }
                char::from_u32(value)?
            }
            _ => return None,
        };
        out.push(decoded);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_ansi_c_strings() {
        assert_eq!(decode_ansi_c("$'\\x72m'").as_deref(), Some("rm"));
        assert_eq!(decode_ansi_c("$'\\162\\155'").as_deref(), Some("rm"));
        assert_eq!(decode_ansi_c("$'\\u0072m'").as_deref(), Some("rm"));
        assert_eq!(decode_ansi_c("$'a\\tb'").as_deref(), Some("a\tb"));
        assert_eq!(decode_ansi_c("$'\\cA'"), None);
    }

    #[test]
    fn unescapes_double_quotes() {
        assert_eq!(unescape_double_quoted(r#"a\"b\$c\d"#), r#"a"b$c\d"#);
    }
}
