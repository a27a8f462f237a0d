//! `automaton-tools`: the bottom of the crate graph.
//!
//! It owns the tool contract and the policy engine, and the plumbing every other crate
//! shares: the one `state.db` (pragmas, per-crate migrations), private-file handling,
//! money in atomic units and the injected clock.

pub mod clock;
pub mod db;
pub mod error;
pub mod money;
pub mod policy;
pub mod secure_fs;

pub use error::{Error, Result};
