//! Integration tests of the tool system: the real dispatcher, a real state.db in a temp
//! directory, real processes and sockets.

// `cfg(test)` lets clippy treat the helpers as test code (unwrap allowed there).
#[cfg(test)]
mod suite;
