//! `automaton-tools`: the bottom of the crate graph.
//!
//! It owns the tool contract ([`tool`]), the registry and the one dispatch path
//! ([`registry`], [`dispatch`]), the policy engine and its generic gates ([`policy`]), the
//! audit trail and receipts ([`audit`]), the sandbox basics ([`sandbox`]), the retry and
//! circuit-breaker policy every HTTP client shares ([`resilience`]), and the plumbing
//! every other crate shares: the one `state.db` ([`db`]), private-file handling
//! ([`secure_fs`]), money in atomic units ([`money`]), the survival tier
//! names ([`survival`]) and the injected [`clock`].

pub mod audit;
pub mod clock;
pub mod db;
pub mod dispatch;
pub mod error;
pub mod money;
pub mod policy;
pub mod registry;
pub mod resilience;
pub mod sandbox;
pub mod secure_fs;
pub mod survival;
pub mod tool;

pub use error::{Error, Result};
