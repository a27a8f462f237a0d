//! Signing: EIP-191 messages and EIP-712 typed data (a `sol!` struct and JSON), each checked by
//! recovering the signer's address from the signature.

use alloy_dyn_abi::eip712::TypedData;
use alloy_primitives::{U256, address, b256};
use alloy_sol_types::{Eip712Domain, SolStruct, eip712_domain, sol};
use automaton_treasury::{Error, Wallet};

sol! {
    /// EIP-3009, as USDC implements it: what an x402 payment signs.
    struct TransferWithAuthorization {
        address from;
        address to;
        uint256 value;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }
}

const USDC_ON_BASE: &str = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913";
const PAYEE: &str = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C";
const NONCE: &str = "0x6d7b8f3b0a5e4c3d2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b";

fn authorization(from: alloy_primitives::Address) -> TransferWithAuthorization {
    TransferWithAuthorization {
        from,
        to: address!("0x209693Bc6afc0C5328bA36FaF03C514EF312287C"),
        value: U256::from(1_000_000u64),
        validAfter: U256::ZERO,
        validBefore: U256::from(1_900_000_000u64),
        nonce: b256!("0x6d7b8f3b0a5e4c3d2b1a09f8e7d6c5b4a3928170f6e5d4c3b2a1908f7e6d5c4b"),
    }
}

/// USDC's EIP-712 domain (as on Base) on `chain_id`.
fn usdc_domain(chain_id: u64) -> Eip712Domain {
    eip712_domain! {
        name: "USD Coin",
        version: "2",
        chain_id: chain_id,
        verifying_contract: address!("0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"),
    }
}

#[test]
fn eip191_signature_recovers_to_the_wallet_address() {
    let wallet = Wallet::generate();
    let message = b"automaton: prove you hold this key";
    let signature = wallet.sign_message(message).unwrap();
    assert_eq!(
        signature.recover_address_from_msg(message).unwrap(),
        wallet.address()
    );
    // A different message does not recover to us.
    assert_ne!(
        signature
            .recover_address_from_msg(b"something else")
            .unwrap(),
        wallet.address()
    );
}

#[test]
fn eip712_sol_struct_signature_recovers_to_the_wallet_address() {
    let wallet = Wallet::generate();
    let domain = usdc_domain(8453);
    let payload = authorization(wallet.address());
    let signature = wallet.sign_typed_data(&payload, &domain).unwrap();
    let hash = payload.eip712_signing_hash(&domain);
    assert_eq!(
        signature.recover_address_from_prehash(&hash).unwrap(),
        wallet.address()
    );
    // Bound to the domain: the same payload on another chain recovers to someone else.
    let other_chain = usdc_domain(84532);
    let other_hash = payload.eip712_signing_hash(&other_chain);
    assert_ne!(
        signature.recover_address_from_prehash(&other_hash).unwrap(),
        wallet.address()
    );
}

fn typed_data_json(from: alloy_primitives::Address) -> TypedData {
    serde_json::from_value(serde_json::json!({
        "types": {
            "EIP712Domain": [
                { "name": "name", "type": "string" },
                { "name": "version", "type": "string" },
                { "name": "chainId", "type": "uint256" },
                { "name": "verifyingContract", "type": "address" }
            ],
            "TransferWithAuthorization": [
                { "name": "from", "type": "address" },
                { "name": "to", "type": "address" },
                { "name": "value", "type": "uint256" },
                { "name": "validAfter", "type": "uint256" },
                { "name": "validBefore", "type": "uint256" },
                { "name": "nonce", "type": "bytes32" }
            ]
        },
        "primaryType": "TransferWithAuthorization",
        "domain": {
            "name": "USD Coin",
            "version": "2",
            "chainId": 8453,
            "verifyingContract": USDC_ON_BASE
        },
        "message": {
            "from": from.to_string(),
            "to": PAYEE,
            "value": "1000000",
            "validAfter": "0",
            "validBefore": "1900000000",
            "nonce": NONCE
        }
    }))
    .unwrap()
}

#[test]
fn eip712_json_typed_data_recovers_and_matches_the_sol_struct() {
    let wallet = Wallet::generate();
    let typed = typed_data_json(wallet.address());
    let signature = wallet.sign_typed_data_json(&typed).unwrap();
    let hash = typed.eip712_signing_hash().unwrap();
    assert_eq!(
        signature.recover_address_from_prehash(&hash).unwrap(),
        wallet.address()
    );

    // The JSON path and the `sol!` path sign the very same digest.
    let domain = usdc_domain(8453);
    let payload = authorization(wallet.address());
    assert_eq!(hash, payload.eip712_signing_hash(&domain));
    assert_eq!(
        wallet.sign_typed_data(&payload, &domain).unwrap(),
        signature
    );
}

#[test]
fn invalid_typed_data_is_a_clear_error() {
    let wallet = Wallet::generate();
    let mut typed = typed_data_json(wallet.address());
    typed.primary_type = "NoSuchType".to_owned();
    let error = wallet.sign_typed_data_json(&typed).unwrap_err();
    assert!(matches!(error, Error::InvalidTypedData(_)), "{error:?}");
    assert!(error.hint().contains("primaryType"), "{}", error.hint());
}
