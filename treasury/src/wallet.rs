//! The automaton's wallet: one secp256k1 key, how it is stored at rest, and what it signs.
//!
//! The file is created once, with `O_EXCL` and mode 0600, and never overwritten: losing a key
//! that holds funds is the one mistake that cannot be undone. On load the file is opened
//! without following links and checked (owner, mode, links) before a byte is parsed. Two
//! formats exist: the plaintext `automaton-wallet/v1` JSON (the key protected only by the file
//! mode, for sandboxes with no one to type a passphrase) and an encrypted Web3 Secret Storage
//! v3 keystore (see the `keystore` module).

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use alloy_dyn_abi::eip712::TypedData;
use alloy_primitives::{Address, Signature};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::{Eip712Domain, SolStruct};
use automaton_tools::clock::{Clock, SystemClock};
use automaton_tools::secure_fs::{self, FileSafetyIssue};
use serde::Deserialize;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::keystore;
use crate::passphrase::Passphrase;

/// The `format` tag of the plaintext wallet file.
const PLAINTEXT_FORMAT: &str = "automaton-wallet/v1";
/// Wallet files are a few hundred bytes; anything far larger is not a wallet.
const MAX_WALLET_FILE_BYTES: u64 = 64 * 1024;

/// How a new wallet file protects its key.
#[derive(Debug)]
pub enum WalletProtection {
    /// The key in plain JSON; only the file's 0600 mode protects it.
    Plaintext,
    /// A v3 keystore encrypted under this passphrase (scrypt n = 2^18, aes-128-ctr).
    Encrypted(Passphrase),
}

/// The automaton's signing key. `Debug` shows only the address.
pub struct Wallet {
    signer: PrivateKeySigner,
}

impl Wallet {
    /// A new random key, held in memory only.
    pub fn generate() -> Self {
        Self {
            signer: PrivateKeySigner::random(),
        }
    }

    /// The wallet's address (its `Display` is the EIP-55 checksummed form).
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// Generates a key and writes it to a NEW file at `path` (mode 0600).
    ///
    /// Never overwrites: if anything exists at `path`, fails with [`Error::WalletExists`] and
    /// leaves it untouched.
    pub fn create(path: &Path, protection: &WalletProtection) -> Result<Self> {
        let exists = || Error::WalletExists {
            path: path.to_path_buf(),
        };
        // Checked up front only to fail before a second of scrypt; the O_EXCL/NOREPLACE write
        // below is what guarantees nothing is replaced.
        if path.symlink_metadata().is_ok() {
            return Err(exists());
        }
        let wallet = Self::generate();
        let secret = Zeroizing::new(wallet.signer.to_bytes().0);
        let bytes = match protection {
            WalletProtection::Plaintext => {
                plaintext_json(&secret, wallet.address(), SystemClock.now_ms())
            }
            WalletProtection::Encrypted(passphrase) => {
                Zeroizing::new(keystore::encrypt(&secret, wallet.address(), passphrase)?)
            }
        };
        secure_fs::create_new_atomic(path, &bytes, 0o600).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                exists()
            } else {
                Error::Io {
                    action: "write",
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        Ok(wallet)
    }

    /// Loads the wallet file at `path`, after checking that only this user can read or replace
    /// it. An encrypted keystore needs `passphrase`; a plaintext file ignores it.
    pub fn load(path: &Path, passphrase: Option<&Passphrase>) -> Result<Self> {
        let bytes = read_wallet_file(path)?;
        let malformed = |reason: String| Error::WalletMalformed {
            path: path.to_path_buf(),
            reason,
        };
        if keystore::looks_like_keystore(&bytes) {
            let passphrase = passphrase.ok_or_else(|| Error::PassphraseRequired {
                path: path.to_path_buf(),
            })?;
            let (secret, claimed) = keystore::decrypt(path, &bytes, passphrase)?;
            let signer = PrivateKeySigner::from_slice(secret.as_slice()).map_err(|_| {
                malformed("the decrypted key is not a valid secp256k1 private key".to_owned())
            })?;
            if let Some(claimed) = claimed.filter(|claimed| *claimed != signer.address()) {
                return Err(malformed(format!(
                    "address {claimed} does not match the encrypted key (which is for {})",
                    signer.address()
                )));
            }
            return Ok(Self { signer });
        }
        parse_plaintext(&bytes).map_err(malformed)
    }

    /// Signs `message` as an EIP-191 `personal_sign` message.
    pub fn sign_message(&self, message: &[u8]) -> Result<Signature> {
        Ok(self.signer.sign_message_sync(message)?)
    }

    /// Signs an EIP-712 struct (a `sol!` type) under `domain`.
    pub fn sign_typed_data<T: SolStruct>(
        &self,
        payload: &T,
        domain: &Eip712Domain,
    ) -> Result<Signature> {
        Ok(self.signer.sign_typed_data_sync(payload, domain)?)
    }

    /// Signs EIP-712 typed data given as JSON (`eth_signTypedData_v4`'s argument).
    pub fn sign_typed_data_json(&self, typed: &TypedData) -> Result<Signature> {
        let hash = typed.eip712_signing_hash()?;
        Ok(self.signer.sign_hash_sync(&hash)?)
    }
}

impl fmt::Debug for Wallet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wallet")
            .field("address", &format_args!("{}", self.address()))
            .finish()
    }
}

/// Whether the wallet file at `path` is an encrypted keystore, i.e. whether `load` will need a
/// passphrase. Applies the same file checks as [`Wallet::load`].
pub fn is_encrypted_file(path: &Path) -> Result<bool> {
    Ok(keystore::looks_like_keystore(&read_wallet_file(path)?))
}

/// The address a wallet file holds, without a passphrase: for a plaintext file the address of
/// its key (checked against the recorded one), for a keystore the address it records (which
/// only decryption can prove). Applies the same file checks as [`Wallet::load`].
pub fn wallet_address_on_disk(path: &Path) -> Result<Address> {
    let bytes = read_wallet_file(path)?;
    let malformed = |reason: String| Error::WalletMalformed {
        path: path.to_path_buf(),
        reason,
    };
    if !keystore::looks_like_keystore(&bytes) {
        return parse_plaintext(&bytes)
            .map(|wallet| wallet.address())
            .map_err(malformed);
    }
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|err| malformed(format!("not JSON ({err})")))?;
    let hex = value
        .get("address")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| malformed("the keystore records no address".to_owned()))?;
    let hex = hex.strip_prefix("0x").unwrap_or(hex);
    Address::from_str(&format!("0x{hex}")).map_err(|_| {
        malformed(format!(
            "the keystore's address `{hex}` is not 20 bytes of hex"
        ))
    })
}

/// Opens the wallet file without following links, checks it is private, and reads it.
fn read_wallet_file(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let file = secure_fs::open_private_file(path).map_err(|issue| match issue {
        FileSafetyIssue::Missing => Error::WalletMissing {
            path: path.to_path_buf(),
        },
        issue => Error::UnsafeWalletFile {
            path: path.to_path_buf(),
            issue,
        },
    })?;
    // Sized up front so the buffer holding the key is never reallocated (which would leave
    // unzeroized copies behind).
    let mut bytes = Zeroizing::new(Vec::with_capacity(MAX_WALLET_FILE_BYTES as usize + 1));
    file.take(MAX_WALLET_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| Error::Io {
            action: "read",
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_WALLET_FILE_BYTES {
        return Err(Error::WalletMalformed {
            path: path.to_path_buf(),
            reason: format!("larger than {MAX_WALLET_FILE_BYTES} bytes; not a wallet file"),
        });
    }
    Ok(bytes)
}

/// The plaintext file as read. Every field is optional so a missing one is named by us, and
/// the whole struct is wiped on drop because it holds the key's hex.
#[derive(Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(rename_all = "camelCase")]
struct PlaintextFile {
    format: Option<String>,
    address: Option<String>,
    private_key: Option<String>,
    created_at_ms: Option<i64>,
}

/// Parses a plaintext wallet; the error is a reason that never contains key material.
fn parse_plaintext(bytes: &[u8]) -> std::result::Result<Wallet, String> {
    let file: PlaintextFile = serde_json::from_slice(bytes).map_err(|error| {
        match error.classify() {
            // A data error quotes the offending value, which could be the key itself.
            serde_json::error::Category::Data => format!(
                "a field has the wrong JSON type at line {}, column {}",
                error.line(),
                error.column()
            ),
            serde_json::error::Category::Io
            | serde_json::error::Category::Syntax
            | serde_json::error::Category::Eof => format!("not valid JSON: {error}"),
        }
    })?;
    let missing = |field: &str| format!("missing field `{field}`");
    let format = file.format.as_deref().ok_or_else(|| missing("format"))?;
    if format != PLAINTEXT_FORMAT {
        return Err(format!(
            "`format` is not \"{PLAINTEXT_FORMAT}\" (and the file is not a v3 keystore)"
        ));
    }
    let key_hex = file
        .private_key
        .as_deref()
        .ok_or_else(|| missing("privateKey"))?;
    let key_hex = key_hex.strip_prefix("0x").unwrap_or(key_hex);
    let mut secret = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(key_hex, secret.as_mut_slice())
        .map_err(|_| "`privateKey` is not 0x followed by 64 hex digits".to_owned())?;
    let signer = PrivateKeySigner::from_slice(secret.as_slice()).map_err(|_| {
        "`privateKey` is not a valid secp256k1 private key (zero or above the curve order)"
            .to_owned()
    })?;
    let address = file.address.as_deref().ok_or_else(|| missing("address"))?;
    let address = Address::from_str(address)
        .map_err(|_| "`address` is not a 0x-prefixed 20-byte hex address".to_owned())?;
    if address != signer.address() {
        return Err(format!(
            "`address` {address} does not match the private key (which is for {})",
            signer.address()
        ));
    }
    if file.created_at_ms.is_none() {
        return Err(missing("createdAtMs"));
    }
    Ok(Wallet { signer })
}

/// The plaintext file's bytes. Built by hand, in one pre-sized buffer that is wiped on drop,
/// so the key never passes through an unzeroized `serde_json::Value` or a reallocated
/// buffer; every value is hex, digits or a constant, so nothing needs escaping.
fn plaintext_json(secret: &[u8; 32], address: Address, created_at_ms: i64) -> Zeroizing<Vec<u8>> {
    let key_hex = Zeroizing::new(hex::encode(secret));
    let address = address.to_checksum(None);
    let created_at_ms = created_at_ms.to_string();
    let mut json = Zeroizing::new(Vec::with_capacity(256));
    for part in [
        b"{\n  \"format\": \"".as_slice(),
        PLAINTEXT_FORMAT.as_bytes(),
        b"\",\n  \"address\": \"",
        address.as_bytes(),
        b"\",\n  \"privateKey\": \"0x",
        key_hex.as_bytes(),
        b"\",\n  \"createdAtMs\": ",
        created_at_ms.as_bytes(),
        b"\n}\n",
    ] {
        json.extend_from_slice(part);
    }
    json
}
