//! Targeted tests of the command gate beyond the corpus: the rule and reason recorded, parse
//! errors, the sub-command and nesting limits, links the inode-based guard sees, and how `cd
//! … &&` narrows the working directory.

use super::check_command;
use super::corpus_tests::{fixture, show};
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
fn the_production_guard_sees_links_made_before_the_command() {
    // ProtectedPaths compares inodes: a hard link made earlier is still the wallet, and a
    // symlink to the home still leads to it.
    let fx = fixture();
    std::fs::hard_link(fx.home.join("wallet.json"), fx.cwd.join("innocent.txt")).unwrap();
    std::os::unix::fs::symlink(&fx.home, fx.cwd.join("h")).unwrap();
    for text in [
        "cat innocent.txt",
        "cat h/wallet.json",
        "echo x > h/constitution.md",
    ] {
        let verdict = fx.check(text);
        assert_eq!(verdict.decision(), F, "{text}\n{}", show(&verdict));
    }
}

#[test]
fn cd_and_narrows_the_working_directory() {
    let fx = fixture();
    // After `cd app &&` only `app` is the working directory; after `;` or `||` the
    // workspace (whose git repository is the home's) is possible again.
    for (text, expected) in [
        ("cd app && git commit -m x", A),
        ("cd app && git add -A && git commit -m x", A),
        ("cd app; git commit -m x", F),
        ("cd app || git commit -m x", F),
        ("cd app && true || git commit -m x", F),
        ("cd app && git add -A; git commit -m x", F),
        ("cd app 2>/dev/null && git commit -m x", A),
        ("cd() { :; }; cd app && git commit -m x", F),
    ] {
        let verdict = fx.check(text);
        assert_eq!(verdict.decision(), expected, "{text}\n{}", show(&verdict));
    }
}
