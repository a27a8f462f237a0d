//! Test modules of the `automaton-skills` integration binary.

mod loader;
mod skill;
