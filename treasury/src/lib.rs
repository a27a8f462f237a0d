//! `automaton-treasury`: the automaton's wallet.
//!
//! It owns the one private key: generating it, storing it at rest (plaintext behind mode 0600,
//! or an encrypted v3 keystore), refusing wallet files others could read or swap, and signing
//! (EIP-191 messages, EIP-712 typed data). Callers see addresses and signatures, never the key.

pub mod error;
mod keystore;
pub mod passphrase;
pub mod wallet;

pub use alloy_primitives::{Address, Signature};
pub use error::{Error, Result};
pub use passphrase::Passphrase;
pub use wallet::{Wallet, WalletProtection, is_encrypted_file, wallet_address_on_disk};
