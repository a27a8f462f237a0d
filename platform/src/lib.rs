//! `automaton-platform`: the Conway platform the agent deploys to (seed 000). So far it
//! holds the platform's error model, shared by the backends and the tools built on it.

pub mod error;

pub use error::{Error, ErrorCode, Result};
