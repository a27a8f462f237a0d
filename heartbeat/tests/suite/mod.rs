//! Test modules of the `automaton-heartbeat` integration binary.

mod config;
mod cron;
mod driver;
mod modify_tool;
mod recovery;
mod scheduler;
mod support;
mod wake;
