//! The encrypted wallet: Web3 Secret Storage v3 keystores, written with scrypt n = 2^18 and
//! refused when weaker or unknown. Each real scrypt run costs ~256 MB and about a second, so
//! the encrypted fixture is derived once and shared.

use std::sync::OnceLock;

use automaton_treasury::{Address, Error, Passphrase, Wallet, WalletProtection, is_encrypted_file};

use super::support::{home, mode_of, write_private};

const PASSPHRASE: &str = "correct horse battery staple";

/// A keystore made by `Wallet::create` (one scrypt derivation) and its wallet's address.
fn created_keystore() -> &'static (Vec<u8>, Address) {
    static KEYSTORE: OnceLock<(Vec<u8>, Address)> = OnceLock::new();
    KEYSTORE.get_or_init(|| {
        let home = home();
        let protection = WalletProtection::Encrypted(Passphrase::new(PASSPHRASE.into()).unwrap());
        let wallet = Wallet::create(&home.wallet, &protection).unwrap();
        assert_eq!(mode_of(&home.wallet), 0o600);
        (std::fs::read(&home.wallet).unwrap(), wallet.address())
    })
}

#[test]
fn encrypted_create_then_load_round_trips() {
    let (bytes, address) = created_keystore();
    let home = home();
    write_private(&home.wallet, bytes);
    assert!(is_encrypted_file(&home.wallet).unwrap());

    let passphrase = Passphrase::new(PASSPHRASE.into()).unwrap();
    let wallet = Wallet::load(&home.wallet, Some(&passphrase)).unwrap();
    assert_eq!(wallet.address(), *address);
}

#[test]
fn created_keystore_has_the_v3_shape_and_standard_scrypt_cost() {
    let (bytes, address) = created_keystore();
    let json: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    assert_eq!(json["version"], 3);
    let id = uuid::Uuid::parse_str(json["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 4);
    assert_eq!(json["address"], hex::encode(address));
    let crypto = &json["crypto"];
    assert_eq!(crypto["cipher"], "aes-128-ctr");
    assert_eq!(crypto["kdf"], "scrypt");
    let params = &crypto["kdfparams"];
    assert_eq!(params["n"], 262_144);
    assert_eq!(params["r"], 8);
    assert_eq!(params["p"], 1);
    assert_eq!(params["dklen"], 32);
    let hex_len = |value: &serde_json::Value| hex::decode(value.as_str().unwrap()).unwrap().len();
    assert_eq!(hex_len(&params["salt"]), 32);
    assert_eq!(hex_len(&crypto["cipherparams"]["iv"]), 16);
    assert_eq!(hex_len(&crypto["ciphertext"]), 32);
    assert_eq!(hex_len(&crypto["mac"]), 32);
}

#[test]
fn wrong_passphrase_fails_cleanly() {
    let (bytes, _) = created_keystore();
    let home = home();
    write_private(&home.wallet, bytes);
    let wrong = Passphrase::new("Tr0ub4dor&3".into()).unwrap();
    let error = Wallet::load(&home.wallet, Some(&wrong)).unwrap_err();
    assert!(matches!(error, Error::WrongPassphrase { .. }), "{error:?}");
    assert!(!format!("{error} {error:?} {}", error.hint()).contains("Tr0ub4dor"));
}

#[test]
fn an_encrypted_wallet_without_a_passphrase_asks_for_one() {
    let (bytes, _) = created_keystore();
    let home = home();
    write_private(&home.wallet, bytes);
    let error = Wallet::load(&home.wallet, None).unwrap_err();
    assert!(
        matches!(error, Error::PassphraseRequired { .. }),
        "{error:?}"
    );
    assert!(
        error.hint().contains("--passphrase-file"),
        "{}",
        error.hint()
    );
}

/// The Web3 Secret Storage definition's scrypt test vector has r = 1, p = 8: the `scrypt`
/// crate (like OpenSSL) enforces RFC 7914's `log2(n) < 16 · r`, so it cannot be opened here
/// and must be refused with a reason, not a panic. (Its cipher and MAC are checked against
/// the published derived key in `keystore`'s unit tests.)
#[test]
fn the_r_1_test_vector_is_refused_with_a_reason() {
    let error = load_with_passphrase(TEST_VECTOR.as_bytes());
    assert!(
        matches!(error, Error::UnsupportedKeystore { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("r = 1"), "{error}");
}

const TEST_VECTOR: &str = r#"{
    "crypto" : {
        "cipher" : "aes-128-ctr",
        "cipherparams" : { "iv" : "83dbcc02d8ccb40e466191a123791e0e" },
        "ciphertext" : "d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c",
        "kdf" : "scrypt",
        "kdfparams" : {
            "dklen" : 32,
            "n" : 262144,
            "p" : 8,
            "r" : 1,
            "salt" : "ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19"
        },
        "mac" : "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097"
    },
    "id" : "3198bc9c-6672-5ab3-d995-4942343ae5b6",
    "version" : 3
}"#;

/// The test vector with one field replaced (no scrypt runs for any of these: each is refused
/// before the key derivation).
fn vector_with(pointer: &str, value: serde_json::Value) -> Vec<u8> {
    let mut json: serde_json::Value = serde_json::from_str(TEST_VECTOR).unwrap();
    *json.pointer_mut(pointer).unwrap() = value;
    serde_json::to_vec(&json).unwrap()
}

fn load_with_passphrase(bytes: &[u8]) -> Error {
    let home = home();
    write_private(&home.wallet, bytes);
    let passphrase = Passphrase::new("testpassword".into()).unwrap();
    Wallet::load(&home.wallet, Some(&passphrase)).unwrap_err()
}

#[test]
fn a_weak_keystore_is_refused_with_how_to_re_encrypt() {
    // What eth-keystore (and so `cast wallet new`) writes: n = 2^13.
    let error = load_with_passphrase(&vector_with("/crypto/kdfparams/n", 8192.into()));
    match &error {
        Error::WeakKeystore { n, min, .. } => assert_eq!((*n, *min), (8192, 262_144)),
        other => panic!("expected WeakKeystore, got {other:?}"),
    }
    assert!(error.to_string().contains("8192"), "{error}");
    assert!(error.hint().contains("re-encrypt"), "{}", error.hint());
}

#[test]
fn unknown_kdfs_ciphers_and_costs_are_refused() {
    let cases = [
        ("/crypto/kdf", serde_json::json!("pbkdf2"), "pbkdf2"),
        (
            "/crypto/cipher",
            serde_json::json!("aes-128-cbc"),
            "aes-128-cbc",
        ),
        ("/version", serde_json::json!(1), "version 1"),
        // 2^24 · 128 · 8 bytes = 16 GiB: must be refused, not attempted.
        ("/crypto/kdfparams/n", serde_json::json!(1u64 << 24), "MiB"),
        ("/crypto/kdfparams/dklen", serde_json::json!(64), "dklen"),
    ];
    for (pointer, value, expected) in cases {
        let error = load_with_passphrase(&vector_with(pointer, value));
        assert!(
            matches!(error, Error::UnsupportedKeystore { .. }),
            "{pointer}: {error:?}"
        );
        assert!(error.to_string().contains(expected), "{pointer}: {error}");
    }
}

#[test]
fn malformed_keystores_are_named() {
    let cases = [
        (
            "/crypto/kdfparams/n",
            serde_json::json!(300_000),
            "power of two",
        ),
        ("/crypto/mac", serde_json::json!("abcd"), "mac"),
        ("/crypto/cipherparams/iv", serde_json::json!("zz"), "iv"),
        ("/crypto/ciphertext", serde_json::json!(""), "ciphertext"),
        ("/crypto/kdfparams/salt", serde_json::json!(7), "kdfparams"),
    ];
    for (pointer, value, expected) in cases {
        let error = load_with_passphrase(&vector_with(pointer, value));
        assert!(
            matches!(error, Error::WalletMalformed { .. }),
            "{pointer}: {error:?}"
        );
        assert!(error.to_string().contains(expected), "{pointer}: {error}");
    }
}
