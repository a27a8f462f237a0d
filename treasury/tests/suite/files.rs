//! The wallet file at rest: plaintext format, creation that never overwrites, and the checks
//! that refuse a file someone else could read or swap.

use std::os::unix::fs::{PermissionsExt, symlink};

use automaton_tools::secure_fs::FileSafetyIssue;
use automaton_treasury::{Error, Wallet, WalletProtection, is_encrypted_file};

use super::support::{home, mode_of, write_private};

/// A valid key/address pair (the Web3 Secret Storage test vector's key), for hand-made files.
const KEY: &str = "0x7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d";
const ADDRESS: &str = "0x008AeEda4D805471dF9b2A5B0f38A0C3bCBA786b";

fn plaintext(address: &str, key: &str) -> String {
    format!(
        r#"{{"format":"automaton-wallet/v1","address":"{address}","privateKey":"{key}","createdAtMs":1700000000000}}"#
    )
}

#[test]
fn plaintext_create_then_load_round_trips() {
    let home = home();
    let created = Wallet::create(&home.wallet, &WalletProtection::Plaintext).unwrap();
    let loaded = Wallet::load(&home.wallet, None).unwrap();
    assert_eq!(loaded.address(), created.address());
    assert!(!is_encrypted_file(&home.wallet).unwrap());

    // The documented shape, field by field and in order.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&home.wallet).unwrap()).unwrap();
    let object = json.as_object().unwrap();
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    assert_eq!(keys, ["format", "address", "privateKey", "createdAtMs"]);
    assert_eq!(object["format"], "automaton-wallet/v1");
    assert_eq!(object["address"], created.address().to_checksum(None));
    let key = object["privateKey"].as_str().unwrap();
    assert!(key.starts_with("0x") && key.len() == 66, "{key}");
    assert!(key[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(object["createdAtMs"].as_i64().unwrap() > 1_600_000_000_000);
}

#[test]
fn a_hand_written_plaintext_wallet_loads() {
    let home = home();
    write_private(&home.wallet, plaintext(ADDRESS, KEY).as_bytes());
    let wallet = Wallet::load(&home.wallet, None).unwrap();
    assert_eq!(wallet.address().to_string(), ADDRESS);
}

#[test]
fn created_wallet_file_is_exactly_0600() {
    let home = home();
    Wallet::create(&home.wallet, &WalletProtection::Plaintext).unwrap();
    assert_eq!(mode_of(&home.wallet), 0o600);
    // Nothing else (no temp file) is left in the home.
    let names: Vec<_> = std::fs::read_dir(home.dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["wallet.json"]);
}

#[test]
fn create_refuses_an_existing_wallet_and_leaves_it_unchanged() {
    let home = home();
    let first = Wallet::create(&home.wallet, &WalletProtection::Plaintext).unwrap();
    let before = std::fs::read(&home.wallet).unwrap();

    let error = Wallet::create(&home.wallet, &WalletProtection::Plaintext).unwrap_err();
    assert!(matches!(error, Error::WalletExists { .. }), "{error:?}");
    assert!(error.hint().contains("mv "), "{}", error.hint());
    assert_eq!(std::fs::read(&home.wallet).unwrap(), before);
    assert_eq!(
        Wallet::load(&home.wallet, None).unwrap().address(),
        first.address()
    );
}

#[test]
fn create_refuses_even_a_dangling_symlink_at_the_path() {
    let home = home();
    let elsewhere = home.dir.path().join("elsewhere.json");
    symlink(&elsewhere, &home.wallet).unwrap();
    let error = Wallet::create(&home.wallet, &WalletProtection::Plaintext).unwrap_err();
    assert!(matches!(error, Error::WalletExists { .. }), "{error:?}");
    assert!(!elsewhere.exists());
}

fn unsafe_issue(error: Error) -> FileSafetyIssue {
    match error {
        Error::UnsafeWalletFile { issue, .. } => issue,
        other => panic!("expected UnsafeWalletFile, got {other:?}"),
    }
}

#[test]
fn load_refuses_a_symlink() {
    let home = home();
    let real = home.dir.path().join("real.json");
    Wallet::create(&real, &WalletProtection::Plaintext).unwrap();
    symlink(&real, &home.wallet).unwrap();

    let error = Wallet::load(&home.wallet, None).unwrap_err();
    let hint = error.hint();
    assert!(error.to_string().contains("symbolic link"), "{error}");
    assert!(hint.contains("readlink -f"), "{hint}");
    assert_eq!(unsafe_issue(error), FileSafetyIssue::Symlink);
    let error = is_encrypted_file(&home.wallet).unwrap_err();
    assert_eq!(unsafe_issue(error), FileSafetyIssue::Symlink);
}

#[test]
fn load_refuses_a_hard_link() {
    let home = home();
    Wallet::create(&home.wallet, &WalletProtection::Plaintext).unwrap();
    std::fs::hard_link(&home.wallet, home.dir.path().join("exposed.json")).unwrap();

    let error = Wallet::load(&home.wallet, None).unwrap_err();
    assert!(error.hint().contains("-samefile"), "{}", error.hint());
    assert_eq!(
        unsafe_issue(error),
        FileSafetyIssue::HardLinked { links: 2 }
    );
}

#[test]
fn load_refuses_mode_0644() {
    let home = home();
    Wallet::create(&home.wallet, &WalletProtection::Plaintext).unwrap();
    std::fs::set_permissions(&home.wallet, std::fs::Permissions::from_mode(0o644)).unwrap();

    let error = Wallet::load(&home.wallet, None).unwrap_err();
    assert!(error.to_string().contains("0644"), "{error}");
    assert_eq!(error.hint(), format!("chmod 600 {}", home.wallet.display()));
    assert_eq!(
        unsafe_issue(error),
        FileSafetyIssue::TooPermissive { mode: 0o644 }
    );
}

#[test]
fn load_refuses_a_file_owned_by_another_user() {
    let me = rustix::process::geteuid();
    if !me.is_root() {
        eprintln!("skipped: only root can chown a file to another user");
        return;
    }
    let home = home();
    Wallet::create(&home.wallet, &WalletProtection::Plaintext).unwrap();
    rustix::fs::chown(
        &home.wallet,
        Some(rustix::process::Uid::from_raw(65534)),
        None,
    )
    .unwrap();

    let error = Wallet::load(&home.wallet, None).unwrap_err();
    assert!(error.to_string().contains("65534"), "{error}");
    assert!(error.hint().starts_with("chown 0 "), "{}", error.hint());
    assert_eq!(
        unsafe_issue(error),
        FileSafetyIssue::ForeignOwner {
            owner_uid: 65534,
            expected_uid: me.as_raw(),
        }
    );
}

#[test]
fn load_reports_a_missing_wallet() {
    let home = home();
    let error = Wallet::load(&home.wallet, None).unwrap_err();
    assert!(matches!(error, Error::WalletMissing { .. }), "{error:?}");
    assert!(error.hint().contains("backup"), "{}", error.hint());
}

#[test]
fn load_refuses_malformed_files_without_echoing_the_key() {
    let other_address = "0x0000000000000000000000000000000000000001";
    let bare_key = KEY.trim_start_matches("0x");
    let cases: Vec<(String, &str)> = vec![
        ("not json at all".to_owned(), "not valid JSON"),
        (format!("{{\"format\":\"automaton-wallet/v1\",\"privateKey\":\"{KEY}\""), "not valid JSON"),
        (
            r#"{"format":"automaton-wallet/v1","address":"0x008AeEda4D805471dF9b2A5B0f38A0C3bCBA786b","createdAtMs":1}"#.to_owned(),
            "missing field `privateKey`",
        ),
        (plaintext(ADDRESS, "0x1234"), "64 hex digits"),
        (plaintext(ADDRESS, &KEY.replace('a', "z")), "64 hex digits"),
        (
            plaintext(ADDRESS, &format!("0x{}", "0".repeat(64))),
            "not a valid secp256k1 private key",
        ),
        (plaintext(other_address, KEY), "does not match the private key"),
        (plaintext("0xnothex", KEY), "`address` is not"),
        (
            plaintext(ADDRESS, KEY).replace("automaton-wallet/v1", "something-else/v9"),
            "`format` is not",
        ),
        (
            // The key in a field of the wrong type: serde would quote it; we must not.
            format!(r#"{{"format":"automaton-wallet/v1","address":"{ADDRESS}","privateKey":"{KEY}","createdAtMs":"{KEY}"}}"#),
            "wrong JSON type",
        ),
        (
            format!(r#"{{"format":"automaton-wallet/v1","address":"{ADDRESS}","privateKey":"{KEY}"}}"#),
            "missing field `createdAtMs`",
        ),
    ];
    for (content, expected) in cases {
        let home = home();
        write_private(&home.wallet, content.as_bytes());
        let error = Wallet::load(&home.wallet, None).unwrap_err();
        let shown = format!("{error} / {error:?} / {}", error.hint());
        assert!(
            matches!(error, Error::WalletMalformed { .. }),
            "{content}: {error:?}"
        );
        assert!(shown.contains(expected), "{content}: {shown}");
        assert!(
            !shown.contains(bare_key),
            "key echoed for {content}: {shown}"
        );
        assert!(
            !shown.contains(&bare_key[..16]),
            "key echoed for {content}: {shown}"
        );
    }
}

#[test]
fn wallet_debug_shows_only_the_address() {
    let home = home();
    write_private(&home.wallet, plaintext(ADDRESS, KEY).as_bytes());
    let wallet = Wallet::load(&home.wallet, None).unwrap();
    let debug = format!("{wallet:?} {wallet:#?}");
    assert!(debug.contains(ADDRESS), "{debug}");
    let bare_key = KEY.trim_start_matches("0x");
    assert!(!debug.to_lowercase().contains(&bare_key[..16]), "{debug}");
    assert_eq!(
        format!("{wallet:?}"),
        format!("Wallet {{ address: {ADDRESS} }}")
    );
}
