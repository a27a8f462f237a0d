//! The policy engine's building blocks: the decision lattice and the generic gates.

pub mod decision;

pub use decision::{Decision, RuleMatch, Verdict};
