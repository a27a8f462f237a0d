//! Money as integer atomic units. USDC has 6 decimals: `Usdc(1_000_000)` is one dollar.
//! Floats and cents never appear in state.db, config or tool arguments.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Atomic units per whole USDC.
pub const USDC_ATOMS_PER_DOLLAR: u64 = 1_000_000;

/// An amount of USDC in atomic units (6 decimals).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Usdc(pub u64);

impl JsonSchema for Usdc {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Usdc".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "integer",
            "minimum": 0,
            "description": "USDC in atomic units (6 decimals): 1000000 is $1.00."
        })
    }
}

impl Usdc {
    /// Zero.
    pub const ZERO: Usdc = Usdc(0);

    /// Whole dollars, e.g. `Usdc::dollars(5)` is $5.00.
    pub const fn dollars(dollars: u64) -> Self {
        Self(dollars * USDC_ATOMS_PER_DOLLAR)
    }

    /// Hundredths of a dollar, e.g. `Usdc::cents(50)` is $0.50.
    pub const fn cents(cents: u64) -> Self {
        Self(cents * (USDC_ATOMS_PER_DOLLAR / 100))
    }

    /// The atomic units.
    pub const fn atoms(self) -> u64 {
        self.0
    }

    /// Addition that refuses to overflow.
    pub fn checked_add(self, other: Usdc) -> Option<Usdc> {
        self.0.checked_add(other.0).map(Usdc)
    }

    /// Subtraction that stops at zero.
    pub fn saturating_sub(self, other: Usdc) -> Usdc {
        Usdc(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Usdc {
    /// `$1.234567` style, trailing zeros trimmed to at least two decimals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / USDC_ATOMS_PER_DOLLAR;
        let frac = self.0 % USDC_ATOMS_PER_DOLLAR;
        let mut digits = format!("{frac:06}");
        while digits.len() > 2 && digits.ends_with('0') {
            digits.pop();
        }
        write!(f, "${whole}.{digits}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_keeps_precision() {
        let cases = [
            (Usdc(0), "$0.00"),
            (Usdc::dollars(5), "$5.00"),
            (Usdc::cents(50), "$0.50"),
            (Usdc(1), "$0.000001"),
            (Usdc(1_234_560), "$1.23456"),
        ];
        for (amount, text) in cases {
            assert_eq!(amount.to_string(), text);
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(Usdc(u64::MAX).checked_add(Usdc(1)), None);
        assert_eq!(Usdc(3).saturating_sub(Usdc(5)), Usdc::ZERO);
        assert_eq!(serde_json::to_string(&Usdc(42)).unwrap(), "42");
    }
}
