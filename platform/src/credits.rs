//! Credits' wire types: the prepaid balance inference through the platform spends, its ledger
//! entries, and grants. Amounts are integer micro-USD (1 USD = 1_000_000 atomic units, the
//! same unit as micro-USDC), never floats; [`parse_usd`] turns what a person types (`5`,
//! `0.25`) into them exactly.

use crate::error::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};

/// Micro-USD in one USD.
pub const MICRO_USD_PER_USD: i64 = 1_000_000;

/// The largest single grant (1,000,000 USD): a typo should not mint a fortune.
pub const MAX_GRANT_MICRO_USD: i64 = 1_000_000 * MICRO_USD_PER_USD;

/// The most ledger entries one history read returns.
pub const MAX_HISTORY_LIMIT: usize = 200;

/// An account's balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditBalance {
    /// The account (the local platform's one account is `owner`; sub-accounts come later).
    pub account: String,
    /// The balance, micro-USD.
    pub balance_micro_usd: i64,
    /// The balance in whole cents, rounded down.
    pub balance_cents: i64,
    /// When the balance last changed, epoch ms (`null`: never).
    pub updated_at_ms: Option<i64>,
}

impl CreditBalance {
    /// The balance of `account` after its newest entry (`None`: no entry yet).
    pub fn new(account: &str, balance_micro_usd: i64, updated_at_ms: Option<i64>) -> Self {
        Self {
            account: account.to_owned(),
            balance_micro_usd,
            balance_cents: balance_micro_usd.div_euclid(MICRO_USD_PER_USD / 100),
            updated_at_ms,
        }
    }
}

/// What a ledger entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CreditKind {
    /// Money added by an admin.
    Grant,
    /// A model call through the inference proxy.
    Inference,
}

impl CreditKind {
    /// The wire (and stored) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grant => "grant",
            Self::Inference => "inference",
        }
    }

    /// The kind of a stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "grant" => Some(Self::Grant),
            "inference" => Some(Self::Inference),
            _ => None,
        }
    }
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditEntry {
    /// Its id; ids grow with time.
    pub id: i64,
    /// The account.
    pub account: String,
    /// When, epoch ms.
    pub at_ms: i64,
    /// Signed: grants positive, charges negative (what the charge took).
    pub amount_micro_usd: i64,
    /// What it records.
    pub kind: CreditKind,
    /// Why.
    pub reason: String,
    /// What it is about (a request id, the granting token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    /// What a charge could not take because the balance ran out.
    #[serde(default)]
    pub shortfall_micro_usd: i64,
    /// The balance after it.
    pub balance_after_micro_usd: i64,
}

/// A page of the ledger, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreditHistory {
    /// The account.
    pub account: String,
    /// The entries, newest first.
    pub entries: Vec<CreditEntry>,
    /// Pass as `before` for the next (older) page; `null` when this is the last.
    pub next_before: Option<i64>,
}

/// `grantCredits`' request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditGrant {
    /// How much, micro-USD (positive, at most [`MAX_GRANT_MICRO_USD`]).
    pub amount_micro_usd: i64,
    /// Why (kept in the ledger).
    pub reason: String,
}

impl CreditGrant {
    /// `INVALID_INPUT` unless the amount is positive and sane and a reason is given.
    pub fn validate(&self) -> Result<()> {
        if self.amount_micro_usd <= 0 || self.amount_micro_usd > MAX_GRANT_MICRO_USD {
            return Err(Error::new(
                ErrorCode::InvalidInput,
                format!(
                    "a grant must be more than 0 and at most {MAX_GRANT_MICRO_USD} micro-USD; got {}",
                    self.amount_micro_usd
                ),
            )
            .with_hint("grant a positive amount, e.g. `automaton platform credits grant 5 --reason \"top-up\"` (5 USD = 5000000 micro-USD)"));
        }
        if self.reason.trim().is_empty() {
            return Err(
                Error::new(ErrorCode::InvalidInput, "a grant needs a reason").with_hint(
                    "say why with --reason TEXT (`reason` in the API); the ledger keeps it",
                ),
            );
        }
        Ok(())
    }
}

/// `grantCredits`' answer: the entry written and the balance after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantedCredits {
    /// The ledger entry.
    pub entry: CreditEntry,
    /// The balance after it.
    pub balance: CreditBalance,
}

/// A USD amount as a person writes it (`5`, `0.25`, `$1.50`, at most six decimals) in
/// micro-USD, exactly.
pub fn parse_usd(text: &str) -> Result<i64> {
    let invalid = || {
        Error::new(
            ErrorCode::InvalidInput,
            format!("`{text}` is not an amount of USD"),
        )
        .with_hint("write dollars with at most six decimals, e.g. 5, 0.25 or 12.50")
    };
    let trimmed = text.trim().trim_start_matches('$');
    let (whole, fraction) = trimmed.split_once('.').unwrap_or((trimmed, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty())
        || !digits(whole)
        || !digits(fraction)
        || fraction.len() > 6
    {
        return Err(invalid());
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| invalid())?
    };
    let fraction: i64 = format!("{fraction:0<6}").parse().map_err(|_| invalid())?;
    whole
        .checked_mul(MICRO_USD_PER_USD)
        .and_then(|micro| micro.checked_add(fraction))
        .ok_or_else(invalid)
}

/// Micro-USD as `$1.234567`, trailing zeros trimmed to two decimals.
pub fn format_usd(micro_usd: i64) -> String {
    let sign = if micro_usd < 0 { "-" } else { "" };
    let abs = micro_usd.unsigned_abs();
    let per = MICRO_USD_PER_USD.unsigned_abs();
    let mut digits = format!("{:06}", abs % per);
    while digits.len() > 2 && digits.ends_with('0') {
        digits.pop();
    }
    format!("{sign}${}.{digits}", abs / per)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usd_amounts_parse_exactly() {
        for (text, micro) in [
            ("5", 5_000_000),
            ("0.25", 250_000),
            ("$1.50", 1_500_000),
            (".5", 500_000),
            ("0.000001", 1),
            ("12.", 12_000_000),
        ] {
            assert_eq!(parse_usd(text).unwrap(), micro, "{text}");
        }
        for bad in [
            "",
            "-1",
            "1e3",
            "0.0000001",
            "abc",
            "1.2.3",
            ".",
            "99999999999999999",
        ] {
            let err = parse_usd(bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidInput, "{bad}");
            assert!(err.hint.contains("0.25"), "{err:?}");
        }
    }

    #[test]
    fn balances_floor_to_cents_and_format_as_dollars() {
        assert_eq!(
            CreditBalance::new("owner", 1_239_999, None).balance_cents,
            123
        );
        assert_eq!(format_usd(1_500_000), "$1.50");
        assert_eq!(format_usd(-1_234_567), "-$1.234567");
    }
}
