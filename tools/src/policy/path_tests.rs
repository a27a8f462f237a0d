use super::*;
use std::fs;

struct Fixture {
    _dir: tempfile::TempDir,
    home: PathBuf,
    outside: PathBuf,
    paths: ProtectedPaths,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    let home = root.join("home");
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
    let paths = ProtectedPaths::for_home(&home, &exe);
    Fixture {
        _dir: dir,
        home,
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
