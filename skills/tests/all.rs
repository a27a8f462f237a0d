//! The integration tests of `automaton-skills`, one binary to save link time.

// `cfg(test)` is always set here; it tells clippy the helpers in `suite` are test code too.
#[cfg(test)]
mod suite;
