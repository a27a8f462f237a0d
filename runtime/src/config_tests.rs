//! Tests of automaton.json: defaults, every rejected key named, the checked-in schema.

use super::*;

const CREATOR: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";
const WALLET: &str = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359";

fn valid() -> serde_json::Value {
    serde_json::json!({
        "configVersion": 1,
        "name": "Atlas",
        "genesisPrompt": "Build small web tools and sell them.",
        "creatorAddress": CREATOR,
        "walletAddress": WALLET,
        "walletEncrypted": false,
        "constitutionSha256": "a".repeat(64),
        "createdAtMs": 1_763_000_000_000_i64,
    })
}

fn parse(value: &serde_json::Value) -> Result<AutomatonConfig> {
    AutomatonConfig::parse(&value.to_string())
}

fn key_of(err: Error) -> String {
    match err {
        Error::InvalidConfig { key, hint, .. } => {
            assert!(!hint.is_empty());
            key
        }
        other => panic!("expected InvalidConfig, got {other:?}"),
    }
}

#[test]
fn a_minimal_config_gets_documented_defaults() {
    let config = parse(&valid()).unwrap();
    assert_eq!(config.max_children, 3);
    assert_eq!(config.log_level, LogLevel::Info);
    let policy = &config.treasury_policy;
    assert_eq!(policy.max_single_transfer_micro_usdc, Usdc(50_000_000));
    assert_eq!(policy.minimum_reserve_micro_usdc, Usdc(10_000_000));
    assert_eq!(policy.max_x402_payment_micro_usdc, Usdc(1_000_000));
    // Round trip through the canonical text.
    assert_eq!(AutomatonConfig::parse(&config.to_json()).unwrap(), config);
    assert!(
        config.to_json().contains(CREATOR),
        "addresses written EIP-55"
    );
}

#[test]
fn unknown_and_bad_keys_are_named() {
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (
            {
                let mut v = valid();
                v["nmae"] = "x".into();
                v
            },
            "nmae",
        ),
        (
            {
                let mut v = valid();
                v["treasuryPolicy"] = serde_json::json!({"maxSingleTransferCents": 5});
                v
            },
            "treasuryPolicy.maxSingleTransferCents",
        ),
        (
            {
                let mut v = valid();
                v["creatorAddress"] = "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into();
                v
            },
            "creatorAddress",
        ),
        (
            {
                let mut v = valid();
                v["creatorAddress"] = "0x0000000000000000000000000000000000000000".into();
                v
            },
            "creatorAddress",
        ),
        (
            {
                let mut v = valid();
                v["creatorAddress"] = "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed".into();
                v
            },
            "creatorAddress",
        ),
        (
            {
                let mut v = valid();
                v["logLevel"] = "loud".into();
                v
            },
            "logLevel",
        ),
        (
            {
                let mut v = valid();
                v["maxChildren"] = (-1).into();
                v
            },
            "maxChildren",
        ),
        (
            {
                let mut v = valid();
                v["name"] = "".into();
                v
            },
            "name",
        ),
        (
            {
                let mut v = valid();
                v["genesisPrompt"] = "  ".into();
                v
            },
            "genesisPrompt",
        ),
        (
            {
                let mut v = valid();
                v["configVersion"] = 2.into();
                v
            },
            "configVersion",
        ),
        (
            {
                let mut v = valid();
                v["constitutionSha256"] = "xyz".into();
                v
            },
            "constitutionSha256",
        ),
        (
            {
                let mut v = valid();
                v["walletAddress"] = CREATOR.into();
                v
            },
            "creatorAddress",
        ),
        (
            {
                let mut v = valid();
                v.as_object_mut().unwrap().remove("name");
                v
            },
            "(root)",
        ),
        (
            {
                let mut v = valid();
                v["treasuryPolicy"] = serde_json::to_value(TreasuryPolicy::default()).unwrap();
                v["treasuryPolicy"]["maxX402PaymentMicroUsdc"] = 1.5.into();
                v
            },
            "treasuryPolicy.maxX402PaymentMicroUsdc",
        ),
        (
            {
                let mut v = valid();
                v["treasuryPolicy"] = serde_json::to_value(TreasuryPolicy::default()).unwrap();
                v["treasuryPolicy"]["x402AllowedDomains"] =
                    serde_json::json!(["conway.tech", "https://evil"]);
                v
            },
            "treasuryPolicy.x402AllowedDomains[1]",
        ),
        (
            {
                let mut v = valid();
                v["providers"] = serde_json::json!([{"name": "a", "baseUrl": "ftp://x"}]);
                v
            },
            "providers[0].baseUrl",
        ),
        (
            {
                let mut v = valid();
                v["providers"] = serde_json::json!([{"name": "a", "baseUrl": "https://x", "apiKeyFile": "../k"}]);
                v
            },
            "providers[0].apiKeyFile",
        ),
    ];
    for (value, want) in cases {
        let key = key_of(parse(&value).unwrap_err());
        assert_eq!(key, want, "for {value}");
    }
}

#[test]
fn lower_case_creator_is_accepted() {
    let mut value = valid();
    value["creatorAddress"] = CREATOR.to_lowercase().into();
    let config = parse(&value).unwrap();
    assert_eq!(config.creator_address.to_checksum(None), CREATOR);
}

#[test]
fn checked_in_schema_matches_the_code() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/automaton.schema.json");
    let checked_in = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        checked_in == json_schema(),
        "docs/automaton.schema.json is out of date: run `cargo run -p automaton-runtime -- config schema > docs/automaton.schema.json`"
    );
}

#[test]
fn schema_documents_every_key() {
    let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
    let props = schema["properties"].as_object().unwrap();
    for (key, prop) in props {
        assert!(
            prop.get("description").is_some(),
            "automaton.json key `{key}` has no description"
        );
    }
    assert!(props.contains_key("treasuryPolicy"));
}

#[test]
fn survival_thresholds_must_fall_and_the_grace_cannot_be_trivial() {
    let mut value = valid();
    value["survival"] = serde_json::json!({
        "highAboveMicroUsdc": 500000, "normalAboveMicroUsdc": 5000000,
        "lowComputeAboveMicroUsdc": 100000, "deadAfterZeroMs": 3600000, "staleAfterMs": 900000
    });
    assert_eq!(key_of(parse(&value).unwrap_err()), "survival");
    value["survival"]["highAboveMicroUsdc"] = 5_000_000.into();
    value["survival"]["normalAboveMicroUsdc"] = 500_000.into();
    value["survival"]["deadAfterZeroMs"] = 1_000.into();
    assert_eq!(
        key_of(parse(&value).unwrap_err()),
        "survival.deadAfterZeroMs"
    );
    value["survival"]["deadAfterZeroMs"] = 3_600_000.into();
    assert_eq!(
        parse(&value).unwrap().survival,
        crate::config::SurvivalThresholds::default()
    );
}
