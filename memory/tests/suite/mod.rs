//! Test modules of the `automaton-memory` integration binary.

mod soul;
