//! `automaton-test-support`: fixtures shared by the workspace's tests.
//!
//! Its one fixture is [`ScriptedModel`], a real OpenAI-compatible HTTP server on loopback that
//! answers chat-completion requests from a queue of scripted [`Reply`]s, so tests drive the real
//! async-openai client over real HTTP. Every request is captured ([`CapturedRequest`]) and checked
//! against the conversation invariants ([`check_request`]) the runtime must keep.

pub mod captured;
pub mod invariants;
mod render;
pub mod reply;
pub mod server;

pub use captured::CapturedRequest;
pub use invariants::check_request;
pub use reply::{Reply, ScriptedCall};
pub use server::{ScriptedModel, ScriptedModelBuilder};
