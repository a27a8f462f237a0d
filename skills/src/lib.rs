//! `automaton-skills`: the `SKILL.md` files that give the automaton domain instructions.
//!
//! It owns the file format and loading a skills directory so that one broken skill is
//! reported and skipped instead of keeping the others, or the agent, from starting.

pub mod error;
pub mod loader;
pub mod skill;

pub use error::{Error, Result};
pub use loader::{LoadReport, load_skills};
pub use skill::Skill;
