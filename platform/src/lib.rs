//! `automaton-platform`: the Conway platform the agent deploys to (seed 000): its error
//! model and wire types, the one [`Platform`] trait over its verbs, the packing of a deploy's
//! source, the detection of how to build and start it, and [`local::LocalPlatform`], the
//! backend that hosts on this machine.

pub mod api;
pub mod credits;
pub mod detect;
pub mod error;
pub mod gateway;
pub mod http;
pub mod inference;
pub mod local;
pub mod model;
pub mod source;
pub mod tools;

#[cfg(test)]
mod datastore_scenarios;
#[cfg(test)]
mod http_tests;
#[cfg(test)]
mod test_support;

pub use api::Platform;
pub use error::{Error, ErrorCode, HttpFailure, Result};
pub use http::HttpPlatform;
pub use local::LocalPlatform;
