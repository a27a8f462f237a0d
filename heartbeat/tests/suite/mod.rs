//! Test modules of the `automaton-heartbeat` integration binary.

mod config;
