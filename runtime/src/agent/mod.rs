//! The agent: its loop (think, act, observe, persist), the context it sees each turn (system
//! prompt, history within the token budget) and the `sleep` tool.

pub mod history;
pub mod prompt;
pub mod run;
pub mod sleep;
pub mod switch_model;
pub mod tokens;
