//! `automaton init`: files, modes, idempotence, refusals, encryption.

use super::*;

#[test]
fn init_creates_every_file_with_the_right_mode() {
    let home = TestHome::new();
    let report = home.init();
    assert_eq!(report["created"], true);
    assert_eq!(report["name"], "Atlas");
    assert_eq!(report["creator"], CREATOR);
    assert!(report["address"].as_str().unwrap().starts_with("0x"));
    let expected = [
        ("", 0o700),
        ("automaton.json", 0o600),
        ("wallet.json", 0o600),
        ("constitution.md", 0o444),
        ("SOUL.md", 0o600),
        ("heartbeat.yml", 0o600),
        ("state.db", 0o600),
        ("skills", 0o700),
        ("keys", 0o700),
        ("logs", 0o700),
    ];
    for (rel, mode) in expected {
        assert_eq!(home.mode(rel), mode, "{rel}");
    }
    let soul = std::fs::read_to_string(home.path("SOUL.md")).unwrap();
    assert!(soul.contains("soul/v1") && soul.contains("# Atlas"));
    assert!(soul.contains("Build small web tools and sell them."));
    // The initial state is committed, and secrets stay out of history.
    let tracked = automaton_runtime::home_git::tracked_paths(&home.root()).unwrap();
    for path in [
        "automaton.json",
        "constitution.md",
        "SOUL.md",
        "heartbeat.yml",
        ".gitignore",
    ] {
        assert!(
            tracked.contains(&path.to_owned()),
            "{path} not committed: {tracked:?}"
        );
    }
    for secret in ["wallet.json", "state.db"] {
        assert!(!tracked.contains(&secret.to_owned()), "{secret} committed");
    }
    // The log is JSON lines and holds no key material.
    let log = std::fs::read_to_string(home.path("logs/automaton.log")).unwrap();
    let wallet: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.path("wallet.json")).unwrap()).unwrap();
    let key = wallet["privateKey"].as_str().unwrap();
    assert!(!log.contains(&key[2..]), "private key leaked into the log");
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap();
    }
    assert!(log.contains("automaton home created"));
}

#[test]
fn re_init_changes_nothing_and_never_touches_the_wallet() {
    let home = TestHome::new();
    let first = home.init();
    let before = snapshot(&home.root());
    let out = home.run(&[
        "init",
        "--json",
        "--name",
        "Other",
        "--genesis-prompt",
        "Something else",
        "--creator",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = json(&out);
    assert_eq!(second["created"], false);
    assert_eq!(second["name"], "Atlas");
    assert_eq!(second["address"], first["address"]);
    let after = snapshot(&home.root());
    // The log may grow; nothing else may change.
    let strip = |files: Vec<(PathBuf, Vec<u8>, std::time::SystemTime)>| {
        files
            .into_iter()
            .filter(|(path, _, _)| !path.starts_with(home.path("logs")))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(before), strip(after));
}

#[test]
fn missing_or_bad_flags_create_nothing() {
    let cases: &[(&[&str], &str)] = &[
        (&["--genesis-prompt", "x", "--creator", CREATOR], "--name"),
        (&["--name", "A", "--creator", CREATOR], "--genesis-prompt"),
        (&["--name", "A", "--genesis-prompt", "x"], "--creator"),
        (
            &[
                "--name",
                "A",
                "--genesis-prompt",
                "x",
                "--creator",
                "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            ],
            "--creator",
        ),
        (
            &[
                "--name",
                "A",
                "--genesis-prompt",
                "x",
                "--creator",
                "0x0000000000000000000000000000000000000000",
            ],
            "--creator",
        ),
        (
            &[
                "--name",
                "A",
                "--genesis-prompt",
                "x",
                "--creator",
                "0x1234",
            ],
            "--creator",
        ),
        (
            &["--name", "", "--genesis-prompt", "x", "--creator", CREATOR],
            "--name",
        ),
        (
            &[
                "--name",
                "A",
                "--genesis-prompt",
                "x",
                "--creator",
                CREATOR,
                "--encrypt-wallet",
            ],
            "--passphrase-file",
        ),
    ];
    for (args, mentions) in cases {
        let home = TestHome::new();
        let mut full = vec!["init", "--json"];
        full.extend_from_slice(args);
        let out = home.run(&full);
        let err = error_json(&out);
        let text = format!("{} {}", err["message"], err["hint"]);
        assert_eq!(err["code"], "INVALID_INPUT", "{args:?}: {err}");
        assert!(
            text.contains(mentions),
            "{args:?}: {text} should mention {mentions}"
        );
        assert!(!home.root().exists(), "{args:?} left a partial home behind");
    }
}

#[test]
fn lower_case_creator_is_stored_checksummed() {
    let home = TestHome::new();
    let out = home.run(&[
        "init",
        "--json",
        "--name",
        "Atlas",
        "--genesis-prompt",
        "x",
        "--creator",
        &CREATOR.to_lowercase(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["creator"], CREATOR);
}

#[test]
fn encrypted_wallet_init_and_doctor() {
    let home = TestHome::new();
    let pass = home.passphrase_file("correct horse battery staple\n", 0o600);
    let genesis = home.dir.path().join("genesis.md");
    std::fs::write(&genesis, "Run a paid API that summarises RSS feeds.\n").unwrap();
    let out = home.run(&[
        "init",
        "--json",
        "--name",
        "Vault",
        "--genesis-file",
        genesis.to_str().unwrap(),
        "--creator",
        CREATOR,
        "--encrypt-wallet",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(report["wallet_encrypted"], true);
    let wallet: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(home.path("wallet.json")).unwrap()).unwrap();
    assert_eq!(wallet["version"], 3);
    assert_eq!(wallet["crypto"]["kdf"], "scrypt");
    assert!(wallet["crypto"]["kdfparams"]["n"].as_u64().unwrap() >= 1 << 18);
    let address = report["address"].as_str().unwrap();
    assert_eq!(
        wallet["address"].as_str().unwrap(),
        address[2..].to_lowercase()
    );
    let (healthy, doctor) = home.doctor();
    assert!(healthy, "{doctor:#}");
    let config = std::fs::read_to_string(home.path("automaton.json")).unwrap();
    assert!(config.contains("Run a paid API"));
}

#[test]
fn a_pre_existing_gitignore_never_lets_secrets_into_history() {
    let home = TestHome::new();
    std::fs::create_dir_all(home.root()).unwrap();
    std::fs::write(home.path(".gitignore"), "# mine\n*.tmp\n").unwrap();
    home.init();
    let tracked = automaton_runtime::home_git::tracked_paths(&home.root()).unwrap();
    for secret in ["wallet.json", "state.db"] {
        assert!(
            !tracked.iter().any(|p| p.starts_with(secret)),
            "{secret} committed: {tracked:?}"
        );
    }
    let gitignore = std::fs::read_to_string(home.path(".gitignore")).unwrap();
    assert!(
        gitignore.starts_with("# mine\n*.tmp\n"),
        "the user's lines are kept"
    );
    assert!(gitignore.lines().any(|l| l == "wallet.json"));
    let (healthy, report) = home.doctor();
    assert!(healthy, "{report:#}");
}

#[test]
fn an_adopted_plaintext_wallet_is_never_recorded_as_encrypted() {
    let home = TestHome::new();
    let first = home.init();
    // An interrupted init: the wallet exists, the config does not.
    std::fs::remove_file(home.path("automaton.json")).unwrap();
    let pass = home.passphrase_file("correct horse battery staple", 0o600);
    let out = home.run(&[
        "init",
        "--json",
        "--name",
        "Atlas",
        "--genesis-prompt",
        "x",
        "--creator",
        CREATOR,
        "--encrypt-wallet",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    assert_eq!(
        report["address"], first["address"],
        "the wallet was adopted, not replaced"
    );
    assert_eq!(
        report["wallet_encrypted"], false,
        "the file on disk is plaintext"
    );
}

#[test]
fn re_init_says_which_flags_it_ignored() {
    let home = TestHome::new();
    home.init();
    let out = home.run(&[
        "init",
        "--json",
        "--name",
        "Atlas",
        "--genesis-prompt",
        "Build small web tools and sell them.",
        "--creator",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    ]);
    let report = json(&out);
    assert_eq!(report["created"], false);
    let ignored = report["ignored"].as_array().unwrap();
    assert_eq!(ignored.len(), 1, "{report}");
    assert!(ignored[0].as_str().unwrap().starts_with("--creator"));
}

#[test]
fn a_readable_passphrase_file_is_refused() {
    let home = TestHome::new();
    let pass = home.passphrase_file("correct horse battery staple", 0o644);
    let out = home.run(&[
        "init",
        "--json",
        "--name",
        "A",
        "--genesis-prompt",
        "x",
        "--creator",
        CREATOR,
        "--encrypt-wallet",
        "--passphrase-file",
        pass.to_str().unwrap(),
    ]);
    let err = error_json(&out);
    assert!(err["hint"].as_str().unwrap().contains("chmod 600"), "{err}");
    assert!(!home.root().exists());
}
