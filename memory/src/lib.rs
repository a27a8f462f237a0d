//! `automaton-memory`: what the automaton knows about itself and keeps across restarts.
//!
//! For now it owns the soul document (`SOUL.md`, format soul/v1); the memory tiers come later.

pub mod error;
pub mod soul;

pub use error::{Error, Result};
pub use soul::{SoulDocument, SoulSection};
