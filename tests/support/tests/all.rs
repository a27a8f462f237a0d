//! The one integration-test binary of `automaton-test-support`.

#[cfg(test)]
mod suite;
