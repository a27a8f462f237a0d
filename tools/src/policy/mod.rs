//! The policy engine and its gates. Every gate answers with a [`Decision`]; the engine
//! takes the strictest and records every matched rule.

pub mod authority;
pub mod command;
pub mod decision;
pub mod engine;
pub mod path;
pub mod rate;
pub mod shell;
pub mod validate;

pub use decision::{Decision, RuleMatch, Verdict};
pub use engine::{CallHistory, Gate, NoHistory, PolicyEngine, PolicyOutcome, PolicyRequest};
