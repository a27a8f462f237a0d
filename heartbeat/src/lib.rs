//! `automaton-heartbeat`: the background schedule that keeps the automaton alive between turns.
//!
//! For now it owns the `heartbeat.yml` model (what runs when) and the cron normalisation the
//! scheduler will share; the scheduler itself comes later.

pub mod config;
pub mod error;
pub mod schedule;

pub use config::{HeartbeatConfig, HeartbeatEntry};
pub use error::{EntryRef, Error, Result};
pub use schedule::normalize_schedule;
