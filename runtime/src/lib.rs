//! `automaton-runtime`: the `automaton` binary's library half — the CLI, the home and its
//! config, setup, status and doctor. `main.rs` only reads the environment once and
//! dispatches here.

pub mod agent;
pub mod anchor;
pub mod cli;
pub mod config;
pub mod constitution;
pub mod doctor;
pub mod error;
pub mod heartbeat_host;
pub mod heartbeat_tasks;
pub mod home;
pub mod home_git;
pub mod inference;
pub mod init;
pub mod inspect;
pub mod logging;
pub mod output;
pub mod platform_cmd;
pub mod platform_credits;
pub mod platform_discovery;
pub mod preflight;
pub mod prompt_cmd;
pub mod run_cmd;
pub mod setup;
pub mod state;
pub mod status;
pub mod stretch;
pub mod survival;
pub mod toolbox;

pub use error::{Error, Result};
