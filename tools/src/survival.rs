//! The survival tier as shared vocabulary: the runtime decides the tier from the balance, the
//! heartbeat slows down and sheds tasks by it, the router picks cheaper models by it. Only the
//! names and their order live here; the thresholds and the decision live in the runtime.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// How well funded the automaton is, from worst to best; `Ord` follows that order, so
/// `tier >= SurvivalTier::Normal` reads "at least normal".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum SurvivalTier {
    /// At zero for a continuous grace period: the loop stops, the heartbeat broadcasts distress.
    Dead,
    /// Zero (or nearly) but alive: distress signals, accepts funding, minimal work.
    Critical,
    /// Low funds: the cheaper model, a slower heartbeat, non-essential work shed.
    LowCompute,
    /// Ordinary operation.
    Normal,
    /// Well funded.
    High,
}

impl SurvivalTier {
    /// Every tier, worst first.
    pub const ALL: [SurvivalTier; 5] = [
        SurvivalTier::Dead,
        SurvivalTier::Critical,
        SurvivalTier::LowCompute,
        SurvivalTier::Normal,
        SurvivalTier::High,
    ];

    /// The snake_case name used in state.db, config and tool results.
    pub const fn as_str(self) -> &'static str {
        match self {
            SurvivalTier::Dead => "dead",
            SurvivalTier::Critical => "critical",
            SurvivalTier::LowCompute => "low_compute",
            SurvivalTier::Normal => "normal",
            SurvivalTier::High => "high",
        }
    }

    /// Whether the heartbeat runs slower in this tier (low compute and critical).
    pub const fn is_conserving(self) -> bool {
        matches!(self, SurvivalTier::LowCompute | SurvivalTier::Critical)
    }
}

impl fmt::Display for SurvivalTier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A tier name that is not one of [`SurvivalTier::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown survival tier {0:?}; expected one of dead, critical, low_compute, normal, high")]
pub struct UnknownTier(pub String);

impl FromStr for SurvivalTier {
    type Err = UnknownTier;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        SurvivalTier::ALL
            .into_iter()
            .find(|tier| tier.as_str() == name)
            .ok_or_else(|| UnknownTier(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_worst_first() {
        for tier in SurvivalTier::ALL {
            assert_eq!(tier.as_str().parse::<SurvivalTier>(), Ok(tier));
            assert_eq!(
                serde_json::to_value(tier).ok(),
                Some(serde_json::Value::String(tier.as_str().to_owned()))
            );
        }
        assert!(SurvivalTier::Dead < SurvivalTier::Critical);
        assert!(SurvivalTier::LowCompute < SurvivalTier::Normal);
        assert!(SurvivalTier::Normal < SurvivalTier::High);
        assert!("lowcompute".parse::<SurvivalTier>().is_err());
    }
}
