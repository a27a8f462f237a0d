//! The error type of `automaton-treasury`: everything that can go wrong storing, loading or
//! using the wallet. Each variant says what happened ([`std::fmt::Display`]) and what to do
//! about it ([`Error::hint`]); none ever carries key material or a passphrase.

use std::path::PathBuf;

use automaton_tools::secure_fs::FileSafetyIssue;

/// Errors from the wallet, its files and the passphrase that protects them.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `create` found something already at the wallet path; it was not touched.
    #[error("a wallet already exists at {path}; it was left unchanged")]
    WalletExists {
        /// The wallet file.
        path: PathBuf,
    },
    /// There is no wallet file at the path.
    #[error("no wallet at {path}")]
    WalletMissing {
        /// The expected wallet file.
        path: PathBuf,
    },
    /// The wallet file exists but may be read or swapped by someone else, so it is not used.
    #[error("refusing to use wallet file: {}", issue.message(path))]
    UnsafeWalletFile {
        /// The wallet file.
        path: PathBuf,
        /// What is wrong with it.
        issue: FileSafetyIssue,
    },
    /// The wallet file is not a valid wallet (bad JSON, missing field, bad hex, wrong address).
    #[error("wallet file {path} is malformed: {reason}")]
    WalletMalformed {
        /// The wallet file.
        path: PathBuf,
        /// What is wrong, never including key material.
        reason: String,
    },
    /// The wallet is an encrypted keystore and no passphrase was given.
    #[error("wallet file {path} is encrypted and no passphrase was given")]
    PassphraseRequired {
        /// The wallet file.
        path: PathBuf,
    },
    /// The passphrase does not open the keystore (its MAC did not match).
    #[error("wrong passphrase for the keystore at {path}")]
    WrongPassphrase {
        /// The keystore file.
        path: PathBuf,
    },
    /// The keystore's scrypt cost is below the floor this runtime accepts.
    #[error(
        "keystore {path} uses scrypt n = {n}, below the required minimum {min}; it is too cheap to brute-force"
    )]
    WeakKeystore {
        /// The keystore file.
        path: PathBuf,
        /// The keystore's scrypt `n`.
        n: u64,
        /// The minimum accepted `n`.
        min: u64,
    },
    /// The keystore uses a version, KDF, cipher or parameter this runtime does not support.
    #[error("keystore {path} is not supported: {what}")]
    UnsupportedKeystore {
        /// The keystore file.
        path: PathBuf,
        /// The unsupported part.
        what: String,
    },
    /// A passphrase was empty.
    #[error("the passphrase from {source_name} is empty")]
    PassphraseEmpty {
        /// Where the passphrase came from (a file, a descriptor, the caller).
        source_name: String,
    },
    /// A passphrase file or descriptor could not be read.
    #[error("cannot read the passphrase from {source_name}: {source}")]
    PassphraseRead {
        /// Where the passphrase was read from.
        source_name: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The passphrase file could be read or swapped by someone else.
    #[error("refusing to read the passphrase from {}: {}", path.display(), issue.message(path))]
    UnsafePassphraseFile {
        /// The passphrase file.
        path: PathBuf,
        /// What is wrong with it.
        issue: automaton_tools::secure_fs::FileSafetyIssue,
    },
    /// Reading or writing the wallet file failed.
    #[error("cannot {action} wallet file {path}: {source}")]
    Io {
        /// What was being done (`read`, `write`).
        action: &'static str,
        /// The wallet file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The system's random number source failed.
    #[error("the operating system's random source failed: {0}")]
    Random(getrandom::Error),
    /// scrypt refused its parameters (a bug: they are checked before it is called).
    #[error("key derivation failed: {0}")]
    KeyDerivation(String),
    /// The EIP-712 typed data given for signing is invalid (unknown type, bad value, …).
    #[error("invalid EIP-712 typed data: {0}")]
    InvalidTypedData(#[from] alloy_dyn_abi::Error),
    /// The signer failed on a well-formed request.
    #[error("signing failed: {0}")]
    Signing(#[from] alloy_signer::Error),
}

impl Error {
    /// The next action for whoever sees this error.
    pub fn hint(&self) -> String {
        match self {
            Self::WalletExists { path } => format!(
                "the existing key may hold funds: load it instead of creating one; to start over, first move it aside (`mv {0} {0}.bak`)",
                path.display()
            ),
            Self::WalletMissing { path } => format!(
                "restore your wallet file to {} with mode 0600 from your backup (a new home gets one from `automaton init`)",
                path.display()
            ),
            Self::UnsafePassphraseFile { path, issue } => issue.fix(path),
            Self::UnsafeWalletFile { path, issue } => issue.fix(path),
            Self::WalletMalformed { path, .. } => format!(
                "restore {} from a backup; if you edited it by hand, compare it with the documented format (automaton-wallet/v1 or a Web3 Secret Storage v3 keystore)",
                path.display()
            ),
            Self::PassphraseRequired { .. } => {
                "give the passphrase with --passphrase-file <path> or --passphrase-fd <n>, or run interactively to be asked for it".to_owned()
            }
            Self::WrongPassphrase { .. } => {
                "check the passphrase (a passphrase file must hold it on its first line; one trailing newline is ignored) and try again".to_owned()
            }
            Self::WeakKeystore { path, .. } => format!(
                "re-encrypt {} with scrypt n >= 262144: `geth account update` does this, or decrypt it with the tool that made it and import the key into a new automaton wallet",
                path.display()
            ),
            Self::UnsupportedKeystore { .. } => {
                "re-encrypt the key as a v3 keystore with scrypt (n >= 262144, r = 8, p = 1) and aes-128-ctr, e.g. with `geth account update`".to_owned()
            }
            Self::PassphraseEmpty { .. } => {
                "choose a non-empty passphrase; a passphrase file must hold it on its first line".to_owned()
            }
            Self::PassphraseRead { .. } => {
                "check that the passphrase file exists and is readable, or that the descriptor is open in this process".to_owned()
            }
            Self::Io { path, .. } => format!(
                "check that the directory of {} exists and is writable by this user, and that the disk is not full",
                path.display()
            ),
            Self::Random(_) => {
                "the kernel's random source is unavailable; check /dev/urandom and the getrandom syscall (seccomp)".to_owned()
            }
            Self::InvalidTypedData(_) => {
                "fix the typed data: every type referenced in `types` must be defined, `primaryType` must name one of them, and values must match their types".to_owned()
            }
            Self::KeyDerivation(_) | Self::Signing(_) => {
                "this is a bug in the automaton; report it with `automaton doctor --json` output".to_owned()
            }
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
