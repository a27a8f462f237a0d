//! Targeted tests of the command gate beyond the corpus: the rule and reason recorded, parse
//! errors, the sub-command and nesting limits, and the name-based path guard.

use std::path::Path;

use super::corpus_tests::{fixture, show};
use super::{NamePathGuard, check_command};
use crate::policy::decision::Decision::{Allow as A, Forbid as F};

#[test]
fn allowed_commands_record_static_command() {
    let fx = fixture();
    let verdict = fx.check("git log -n 5 | head -20 && ls -la src");
    assert_eq!(verdict.decision(), A, "{}", show(&verdict));
    assert_eq!(verdict.rules.len(), 1);
    assert_eq!(verdict.rules[0].rule, "static_command");
}

#[test]
fn forbid_names_the_rule_and_what_to_do() {
    let fx = fixture();
    let verdict = fx.check("rm -rf /");
    let rule = verdict
        .rules
        .iter()
        .find(|r| r.decision == F)
        .expect("a forbid rule");
    assert_eq!(rule.rule, "rm_recursive_protected");
    assert!(rule.reason.contains("instead"), "{}", rule.reason);
}

#[test]
fn parse_errors_forbid() {
    let fx = fixture();
    for text in [
        "echo \"unterminated",
        "ls ((",
        "if true; then",
        "exec 3<>/dev/tcp/1.2.3.4/80",
        "echo $(",
    ] {
        let verdict = fx.check(text);
        assert_eq!(verdict.decision(), F, "{text:?}\n{}", show(&verdict));
        assert!(
            verdict.rules.iter().any(|r| r.rule == "parse_error"),
            "{text:?}\n{}",
            show(&verdict)
        );
    }
}

#[test]
fn subcommand_limit() {
    let fx = fixture();
    let chain = |n: usize| vec!["echo a"; n].join("; ");
    let at_limit = check_command(&chain(64), &fx.context(64));
    assert_eq!(at_limit.decision(), A, "{}", show(&at_limit));
    let over = check_command(&chain(65), &fx.context(64));
    assert_eq!(over.decision(), F, "{}", show(&over));
    assert!(over.rules.iter().any(|r| r.rule == "too_many_subcommands"));
    let hidden = format!("sh -c '{}'", chain(64));
    let over = check_command(&hidden, &fx.context(64));
    assert!(
        over.rules.iter().any(|r| r.rule == "too_many_subcommands"),
        "{}",
        show(&over)
    );
    let long = check_command(&chain(1000), &fx.context(2000));
    assert_eq!(long.decision(), A, "{}", show(&long));
}

#[test]
fn oversized_commands_are_refused_before_parsing() {
    let fx = fixture();
    let text = format!("echo '{}'", "x".repeat(300 * 1024));
    let verdict = fx.check(&text);
    assert_eq!(verdict.decision(), F, "{}", show(&verdict));
    assert_eq!(verdict.rules[0].rule, "command_too_long");
}

#[test]
fn reparse_depth_limit() {
    let fx = fixture();
    let shallow = format!("{}echo hi", "eval ".repeat(8));
    assert!(
        !fx.check(&shallow)
            .rules
            .iter()
            .any(|r| r.rule == "nesting_too_deep")
    );
    let deep = format!("{}echo hi", "eval ".repeat(9));
    let verdict = fx.check(&deep);
    assert_eq!(verdict.decision(), F, "{}", show(&verdict));
    assert!(verdict.rules.iter().any(|r| r.rule == "nesting_too_deep"));
}

#[test]
fn deep_statement_nesting_is_refused_not_overflowed() {
    let fx = fixture();
    let text = format!("{}echo hi{}", "$(".repeat(400), ")".repeat(400));
    let verdict = fx.check(&text);
    assert_eq!(verdict.decision(), F, "{}", show(&verdict));
}

#[test]
fn name_guard_protects_by_name() {
    use super::{PathAccess, PathGuard};
    let guard = NamePathGuard::new("/root/.automaton", "/root");
    let read = |p: &str| guard.check(Path::new(p), PathAccess::Read).is_some();
    let write = |p: &str| guard.check(Path::new(p), PathAccess::Write).is_some();
    assert!(read("/root/.automaton/wallet.json"));
    assert!(read("/srv/app/.env.local"));
    assert!(read("/proc/123/environ"));
    assert!(read("/root/.ssh/id_ed25519.pub"));
    assert!(!read("/root/.automaton/constitution.md"));
    assert!(write("/root/.automaton/constitution.md"));
    assert!(write("/root/.automaton/state.db-wal"));
    assert!(write("/root/.automaton/.git/hooks/pre-commit"));
    assert!(write("/root/.bashrc"));
    assert!(write("/root/.ssh/authorized_keys"));
    assert!(!write("/root/project/constitution.md"));
    assert!(!write("/root/.automaton/skills/x/SKILL.md"));
}
