//! The one integration-test binary of `automaton-treasury` (one binary saves link time).
//!
//! Real files in temp dirs, real scrypt, real signatures recovered with alloy; nothing mocked.

// `cfg(test)` so clippy treats the helpers, not only the `#[test]` fns, as test code.
#[cfg(test)]
mod suite {
    pub mod support;

    mod files;
    mod keystore;
    mod signing;
}
