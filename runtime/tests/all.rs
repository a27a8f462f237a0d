//! The runtime's integration tests: the real `automaton` binary against real homes in temp
//! directories.

// `cfg(test)` lets clippy treat the helpers as test code (unwrap allowed there).
#[cfg(test)]
mod suite;
