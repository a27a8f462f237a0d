//! The agent: how its context is assembled (the system prompt, token counts). The loop that
//! drives it is built on these pieces.

pub mod prompt;
pub mod tokens;
