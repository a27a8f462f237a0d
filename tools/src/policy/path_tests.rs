//! Tests of [`ProtectedPaths`]: aliases of protected files, what is protected from writes and
//! reads (the home, the user's login files and keys, cron spools, `/proc`), lookalike names,
//! and whole trees that hold protected files.

use super::*;
use std::fs;

struct Fixture {
    _dir: tempfile::TempDir,
    home: PathBuf,
    user: PathBuf,
    outside: PathBuf,
    paths: ProtectedPaths,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    let user = root.join("user");
    let home = user.join(".automaton");
    let outside = root.join("work");
    fs::create_dir_all(home.join(".git/hooks")).unwrap();
    fs::create_dir_all(home.join("keys")).unwrap();
    fs::create_dir_all(&outside).unwrap();
    for name in [
        "wallet.json",
        "constitution.md",
        "state.db",
        "automaton.json",
        "SOUL.md",
    ] {
        fs::write(home.join(name), name).unwrap();
    }
    fs::write(home.join("keys/openai.key"), "sk-test").unwrap();
    let exe = root.join("automaton-bin");
    fs::write(&exe, "binary").unwrap();
    fs::create_dir_all(home.join("workspace")).unwrap();
    let paths = ProtectedPaths::for_home(&home, &user, &exe);
    Fixture {
        _dir: dir,
        home,
        user,
        outside,
        paths,
    }
}

fn rule(f: &Fixture, path: &Path, access: PathAccess) -> Option<&'static str> {
    f.paths.violation(path, access).map(|(rule, _)| rule)
}

#[test]
fn aliases_of_the_wallet_are_the_wallet() {
    let f = fixture();
    let wallet = f.home.join("wallet.json");
    let symlink = f.outside.join("w.json");
    std::os::unix::fs::symlink(&wallet, &symlink).unwrap();
    let hardlink = f.outside.join("innocent.txt");
    fs::hard_link(&wallet, &hardlink).unwrap();
    let dotdot = f.home.join("skills/../wallet.json");
    let slashes = PathBuf::from(format!("{}//wallet.json", f.home.display()));
    let procfs = PathBuf::from(format!("/proc/self/root{}", wallet.display()));
    let link_dir = f.outside.join("h");
    std::os::unix::fs::symlink(&f.home, &link_dir).unwrap();
    let via_dir_link = link_dir.join("wallet.json");
    for alias in [
        &wallet,
        &symlink,
        &hardlink,
        &dotdot,
        &slashes,
        &procfs,
        &via_dir_link,
    ] {
        assert_eq!(
            rule(&f, alias, PathAccess::Read),
            Some("secret_read"),
            "{alias:?}"
        );
        assert!(rule(&f, alias, PathAccess::Write).is_some(), "{alias:?}");
    }
}

#[test]
fn protected_files_refuse_writes_but_allow_reads() {
    let f = fixture();
    for name in [
        "constitution.md",
        "state.db",
        "state.db-wal",
        "automaton.json",
        "SOUL.md",
        "heartbeat.yml",
    ] {
        let path = f.home.join(name);
        assert_eq!(
            rule(&f, &path, PathAccess::Write),
            Some("protected_write"),
            "{name}"
        );
    }
    assert_eq!(
        rule(&f, &f.home.join("constitution.md"), PathAccess::Read),
        None
    );
    assert_eq!(
        rule(&f, &f.home.join(".git/hooks/pre-commit"), PathAccess::Write),
        Some("protected_write")
    );
    assert_eq!(
        rule(&f, &f.home.join("keys/openai.key"), PathAccess::Read),
        Some("secret_read")
    );
    // A hard link to the constitution, written through another name.
    let alias = f.outside.join("notes.md");
    fs::hard_link(f.home.join("constitution.md"), &alias).unwrap();
    assert_eq!(rule(&f, &alias, PathAccess::Write), Some("protected_write"));
}

#[test]
fn secret_looking_names_are_never_read() {
    let f = fixture();
    for name in [
        ".env",
        ".env.production",
        "id_rsa",
        "server.key",
        "credentials.json",
        "/proc/1/environ",
        "/proc/self/environ",
        "/proc/1/task/1/environ",
        "/proc/self/task/1/environ",
        "/proc/1/mem",
        ".envrc",
    ] {
        let path = if name.starts_with('/') {
            PathBuf::from(name)
        } else {
            f.outside.join(name)
        };
        assert_eq!(
            rule(&f, &path, PathAccess::Read),
            Some("secret_read"),
            "{name}"
        );
    }
}

#[test]
fn lookalike_names_are_refused() {
    let f = fixture();
    for name in [
        "wallet\u{200B}.json",
        "ｗａｌｌｅｔ.json",
        "constitution\u{202E}dm.txt",
        "a\u{FEFF}b",
    ] {
        let path = f.outside.join(name);
        assert_eq!(
            rule(&f, &path, PathAccess::Read),
            Some("suspicious_name"),
            "{name:?}"
        );
    }
}

#[test]
fn ordinary_paths_pass() {
    let f = fixture();
    for name in [
        "README.md",
        "src/main.rs",
        "out/index.html",
        "new/dir/file.txt",
    ] {
        let path = f.outside.join(name);
        assert_eq!(rule(&f, &path, PathAccess::Read), None, "{name}");
        assert_eq!(rule(&f, &path, PathAccess::Write), None, "{name}");
    }
    assert_eq!(
        rule(&f, &f.home.join("skills/x/SKILL.md"), PathAccess::Write),
        None
    );
}

#[test]
fn the_home_history_and_the_users_login_files_are_protected() {
    let f = fixture();
    for path in [
        f.home.join(".git"),
        f.home.join(".git/config"),
        f.home.join(".git/refs/heads/main"),
        f.home.join(".gitignore"),
        f.home.join("state.db-journal"),
        f.user.join(".bashrc"),
        f.user.join(".bash_profile"),
        f.user.join(".profile"),
        f.user.join(".zshrc"),
        f.user.join(".ssh"),
        f.user.join(".ssh/authorized_keys"),
        f.user.join(".gitconfig"),
        f.user.join(".config/autostart/x.desktop"),
        PathBuf::from("/var/spool/cron/crontabs/root"),
        PathBuf::from("/etc/cron.d/job"),
        PathBuf::from("/etc/crontab"),
    ] {
        assert_eq!(
            rule(&f, &path, PathAccess::Write),
            Some("protected_write"),
            "{path:?}"
        );
    }
    for path in [
        f.home.join("workspace/.git/config"),
        f.home.join("workspace/build/out.js"),
        f.user.join(".config/app.toml"),
    ] {
        assert_eq!(rule(&f, &path, PathAccess::Write), None, "{path:?}");
    }
}

#[test]
fn trees_that_hold_protected_files() {
    let f = fixture();
    let holds = |dir: &Path, access| f.paths.tree_violation(dir, access).is_some();
    for dir in [
        f.home.clone(),
        f.user.clone(),
        PathBuf::from("/"),
        f.home.join(".git"),
        f.home.join("keys"),
        f.user.join(".config"),
        PathBuf::from("/var/spool"),
    ] {
        assert!(holds(&dir, PathAccess::Write), "{dir:?}");
    }
    for dir in [f.home.clone(), f.user.join(".ssh"), f.home.join("keys")] {
        assert!(holds(&dir, PathAccess::Read), "{dir:?}");
    }
    for dir in [
        f.home.join("workspace"),
        f.home.join("workspace/node_modules"),
        f.home.join("skills"),
        f.outside.clone(),
        PathBuf::from("/usr/share"),
    ] {
        assert!(!holds(&dir, PathAccess::Write), "{dir:?}");
        assert!(!holds(&dir, PathAccess::Read), "{dir:?}");
    }
    assert!(holds(&f.home.join(".git"), PathAccess::Write));
    assert!(!holds(&f.home.join(".git"), PathAccess::Read));
}

#[test]
fn prefixes_that_could_name_protected_files() {
    let f = fixture();
    assert!(f.paths.prefix_violation(&f.home.join("state.")).is_some());
    assert!(f.paths.prefix_violation(&f.home.join("wal")).is_some());
    assert!(
        f.paths
            .prefix_violation(&f.home.join("workspace/x"))
            .is_none()
    );
    assert!(f.paths.prefix_violation(&f.home.join("zz")).is_none());
}
