//! The encrypted wallet format: a Web3 Secret Storage v3 keystore (scrypt + aes-128-ctr).
//!
//! Hand-written rather than taken from `eth-keystore` (which `alloy-signer-local` offers behind
//! its `keystore` feature) because that crate writes scrypt `n = 2^13`, cheap enough to
//! brute-force a weak passphrase on one GPU, and has no way to refuse such files on load. Here
//! keystores are written with `n = 2^18` (geth's standard), and anything below that floor,
//! any other KDF or cipher, or a cost that would exhaust memory is refused. Every derived key
//! and decrypted byte lives in [`Zeroizing`] buffers.

use std::path::Path;

use aes::cipher::{KeyIvInit, StreamCipher};
use alloy_primitives::{Address, keccak256};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::passphrase::Passphrase;

/// log2 of the scrypt `n` written, and the minimum accepted on load.
const SCRYPT_LOG_N: u8 = 18;
/// The minimum scrypt `n` accepted on load.
const MIN_SCRYPT_N: u64 = 1 << SCRYPT_LOG_N;
const SCRYPT_R: u32 = 8;
const SCRYPT_P: u32 = 1;
/// Largest scrypt memory (`128 · r · n` bytes) a keystore may demand: 1 GiB, four times the
/// standard; beyond that a crafted file would make loading it an out-of-memory abort.
const MAX_SCRYPT_MEMORY: u64 = 1 << 30;
/// Largest scrypt work (`128 · r · n · p`) a keystore may demand, in the same units.
const MAX_SCRYPT_WORK: u64 = 1 << 32;
const DERIVED_KEY_LEN: usize = 32;
const IV_LEN: usize = 16;
const SALT_LEN: usize = 32;

type Aes128Ctr = ctr::Ctr128BE<aes::Aes128>;

/// The keystore document as read; the KDF parameters stay raw JSON until the KDF is known to
/// be scrypt, so an unknown KDF is named in the error instead of failing to parse.
#[derive(Deserialize)]
struct Keystore {
    version: u64,
    #[serde(default)]
    address: Option<String>,
    // Files written by old geth versions spell it `Crypto`.
    #[serde(alias = "Crypto")]
    crypto: Crypto,
}

#[derive(Deserialize)]
struct Crypto {
    cipher: String,
    cipherparams: CipherParams,
    ciphertext: String,
    kdf: String,
    kdfparams: serde_json::Value,
    mac: String,
}

#[derive(Deserialize)]
struct CipherParams {
    iv: String,
}

#[derive(Deserialize)]
struct ScryptParams {
    dklen: u64,
    n: u64,
    r: u32,
    p: u32,
    salt: String,
}

/// Encrypts `secret` (a private key) under `passphrase`; returns the keystore JSON.
pub(crate) fn encrypt(
    secret: &[u8; 32],
    address: Address,
    passphrase: &Passphrase,
) -> Result<Vec<u8>> {
    let mut salt = [0u8; SALT_LEN];
    let mut iv = [0u8; IV_LEN];
    getrandom::fill(&mut salt).map_err(Error::Random)?;
    getrandom::fill(&mut iv).map_err(Error::Random)?;

    let params = scrypt::Params::new(SCRYPT_LOG_N, SCRYPT_R, SCRYPT_P, DERIVED_KEY_LEN)
        .map_err(|error| Error::KeyDerivation(error.to_string()))?;
    let derived = derive_key(passphrase, &salt, &params)?;
    let mut ciphertext = *secret;
    apply_cipher(&derived, &iv, &mut ciphertext);

    let keystore = serde_json::json!({
        "version": 3,
        "id": uuid::Uuid::new_v4().to_string(),
        "address": hex::encode(address),
        "crypto": {
            "cipher": "aes-128-ctr",
            "cipherparams": { "iv": hex::encode(iv) },
            "ciphertext": hex::encode(ciphertext),
            "kdf": "scrypt",
            "kdfparams": {
                "dklen": DERIVED_KEY_LEN,
                "n": MIN_SCRYPT_N,
                "r": SCRYPT_R,
                "p": SCRYPT_P,
                "salt": hex::encode(salt),
            },
            "mac": hex::encode(mac(&derived, &ciphertext)),
        },
    });
    Ok(format!("{keystore:#}\n").into_bytes())
}

/// Decrypts the keystore JSON in `bytes` (read from `path`) with `passphrase`.
///
/// Returns the private key and the address the file claims, if it names one.
pub(crate) fn decrypt(
    path: &Path,
    bytes: &[u8],
    passphrase: &Passphrase,
) -> Result<(Zeroizing<[u8; 32]>, Option<Address>)> {
    let malformed = |reason: String| Error::WalletMalformed {
        path: path.to_path_buf(),
        reason,
    };
    let unsupported = |what: String| Error::UnsupportedKeystore {
        path: path.to_path_buf(),
        what,
    };
    let keystore: Keystore =
        serde_json::from_slice(bytes).map_err(|error| malformed(error.to_string()))?;
    if keystore.version != 3 {
        return Err(unsupported(format!(
            "version {} (only version 3 is read)",
            keystore.version
        )));
    }
    let crypto = keystore.crypto;
    if crypto.kdf != "scrypt" {
        return Err(unsupported(format!(
            "kdf `{}` (only scrypt is accepted)",
            crypto.kdf
        )));
    }
    if crypto.cipher != "aes-128-ctr" {
        return Err(unsupported(format!(
            "cipher `{}` (only aes-128-ctr is accepted)",
            crypto.cipher
        )));
    }
    let params: ScryptParams = serde_json::from_value(crypto.kdfparams)
        .map_err(|error| malformed(format!("kdfparams: {error}")))?;
    if !params.n.is_power_of_two() || params.n < 2 {
        return Err(malformed(format!(
            "scrypt n = {} is not a power of two",
            params.n
        )));
    }
    if params.n < MIN_SCRYPT_N {
        return Err(Error::WeakKeystore {
            path: path.to_path_buf(),
            n: params.n,
            min: MIN_SCRYPT_N,
        });
    }
    if params.dklen != DERIVED_KEY_LEN as u64 {
        return Err(unsupported(format!(
            "scrypt dklen = {} (only 32)",
            params.dklen
        )));
    }
    if params.r == 0 || params.p == 0 {
        return Err(malformed("scrypt r and p must be at least 1".to_owned()));
    }
    let memory = 128u64
        .saturating_mul(u64::from(params.r))
        .saturating_mul(params.n);
    if memory > MAX_SCRYPT_MEMORY || memory.saturating_mul(u64::from(params.p)) > MAX_SCRYPT_WORK {
        return Err(unsupported(format!(
            "scrypt n = {}, r = {}, p = {} would need {} MiB and too much time to open",
            params.n,
            params.r,
            params.p,
            memory >> 20
        )));
    }

    let salt = hex::decode(&params.salt).map_err(|_| malformed("salt is not hex".to_owned()))?;
    if salt.is_empty() {
        return Err(malformed("salt is empty".to_owned()));
    }
    let iv: [u8; IV_LEN] = decode_fixed(&crypto.cipherparams.iv)
        .ok_or_else(|| malformed(format!("cipherparams.iv is not {IV_LEN} bytes of hex")))?;
    let ciphertext: [u8; 32] = decode_fixed(&crypto.ciphertext)
        .ok_or_else(|| malformed("ciphertext is not 32 bytes of hex".to_owned()))?;
    let expected_mac: [u8; 32] = decode_fixed(&crypto.mac)
        .ok_or_else(|| malformed("mac is not 32 bytes of hex".to_owned()))?;
    let address = keystore
        .address
        .map(|text| {
            let text = text.strip_prefix("0x").unwrap_or(&text);
            decode_fixed::<20>(text)
                .map(Address::from)
                .ok_or_else(|| malformed("address is not 20 bytes of hex".to_owned()))
        })
        .transpose()?;

    let log_n = u8::try_from(params.n.trailing_zeros())
        .map_err(|_| malformed(format!("scrypt n = {} is out of range", params.n)))?;
    // The `scrypt` crate (0.11) enforces RFC 7914's `log2(n) < 16 · r`, so r = 1 keystores
    // (the Web3 Secret Storage test vector's shape) cannot be opened at n >= 2^16.
    if u64::from(log_n) >= 16 * u64::from(params.r) {
        return Err(unsupported(format!(
            "scrypt r = {} with n = 2^{log_n} (RFC 7914 requires log2(n) < 16 * r)",
            params.r
        )));
    }
    let scrypt_params = scrypt::Params::new(log_n, params.r, params.p, DERIVED_KEY_LEN)
        .map_err(|_| unsupported(format!("scrypt r = {}, p = {}", params.r, params.p)))?;
    let derived = derive_key(passphrase, &salt, &scrypt_params)?;
    let actual_mac = mac(&derived, &ciphertext);
    let differing = actual_mac
        .iter()
        .zip(expected_mac.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if differing != 0 {
        return Err(Error::WrongPassphrase {
            path: path.to_path_buf(),
        });
    }
    let mut secret = Zeroizing::new(ciphertext);
    apply_cipher(&derived, &iv, &mut secret);
    Ok((secret, address))
}

/// Tells a keystore from the plaintext format by its shape: a `crypto` object.
pub(crate) fn looks_like_keystore(bytes: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Probe {
        #[serde(alias = "Crypto")]
        crypto: Option<serde::de::IgnoredAny>,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|probe| probe.crypto.is_some())
}

fn derive_key(
    passphrase: &Passphrase,
    salt: &[u8],
    params: &scrypt::Params,
) -> Result<Zeroizing<[u8; DERIVED_KEY_LEN]>> {
    let mut derived = Zeroizing::new([0u8; DERIVED_KEY_LEN]);
    scrypt::scrypt(passphrase.as_bytes(), salt, params, derived.as_mut_slice())
        .map_err(|error| Error::KeyDerivation(error.to_string()))?;
    Ok(derived)
}

/// aes-128-ctr with the first half of the derived key; its own inverse.
fn apply_cipher(derived: &[u8; DERIVED_KEY_LEN], iv: &[u8; IV_LEN], data: &mut [u8; 32]) {
    let mut cipher = Aes128Ctr::new(derived[..16].into(), iv.into());
    cipher.apply_keystream(data);
}

/// keccak256(derived[16..32] ++ ciphertext), as Web3 Secret Storage defines the MAC.
fn mac(derived: &[u8; DERIVED_KEY_LEN], ciphertext: &[u8; 32]) -> [u8; 32] {
    let mut input = Zeroizing::new([0u8; 48]);
    input[..16].copy_from_slice(&derived[16..]);
    input[16..].copy_from_slice(ciphertext);
    keccak256(input.as_slice()).0
}

fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Web3 Secret Storage definition's scrypt test vector, from its published derived key
    /// onwards (its r = 1 cannot go through the `scrypt` crate at n = 2^18; see `decrypt`).
    #[test]
    fn mac_and_cipher_match_the_web3_secret_storage_test_vector() {
        let derived: [u8; 32] =
            decode_fixed("fac192ceb5fd772906bea3e118a69e8bbb5cc24229e20d8766fd298291bba6bd")
                .unwrap();
        let iv: [u8; 16] = decode_fixed("83dbcc02d8ccb40e466191a123791e0e").unwrap();
        let ciphertext: [u8; 32] =
            decode_fixed("d172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c")
                .unwrap();
        assert_eq!(
            hex::encode(mac(&derived, &ciphertext)),
            "2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097"
        );
        let mut plaintext = ciphertext;
        apply_cipher(&derived, &iv, &mut plaintext);
        assert_eq!(
            hex::encode(plaintext),
            "7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d"
        );
    }

    #[test]
    fn looks_like_keystore_tells_the_formats_apart() {
        assert!(looks_like_keystore(br#"{"version":3,"crypto":{}}"#));
        assert!(looks_like_keystore(br#"{"version":3,"Crypto":{}}"#));
        assert!(!looks_like_keystore(
            br#"{"format":"automaton-wallet/v1","privateKey":"0x00"}"#
        ));
        assert!(!looks_like_keystore(b"not json"));
    }
}
