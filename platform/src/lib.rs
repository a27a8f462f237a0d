//! `automaton-platform`: the Conway platform the agent deploys to (seed 000): its error
//! model, the packing of a deploy's source, and the detection of how to build and start it.
//! The `Platform` trait, its local and HTTP backends and the agent's tools build on these.

pub mod detect;
pub mod error;
pub mod source;

pub use error::{Error, ErrorCode, Result};
