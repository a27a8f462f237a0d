//! `automaton-heartbeat`: the background schedule that keeps the automaton alive between turns.
//!
//! - [`config`]: `heartbeat.yml` (entries, pacing), its validation and defaults;
//! - [`schedule`]: cron normalisation (5-field → the `cron` crate's form) and arithmetic;
//! - [`task`]: the [`HeartbeatTask`] contract and the [`TaskRegistry`];
//! - [`scheduler`]: the durable [`Scheduler`] over state.db (`heartbeat_schedules` is the one
//!   table of what runs; `heartbeat_runs` records every firing at most once), its tick, crash
//!   recovery, retries and the long-running driver;
//! - [`wake`]: wake events, raised by tasks and consumed exactly once by the agent loop;
//! - [`tools`]: `modify_heartbeat`, the agent's only way to change the schedule (file and
//!   table together);
//! - [`report`]: what the scheduler reports to the CLI and the logs.
//!
//! The concrete tasks live in the runtime, next to the capabilities they check.

pub mod config;
pub mod error;
pub mod report;
pub mod schedule;
pub mod scheduler;
mod store;
pub mod task;
pub mod tools;
pub mod wake;

pub use config::{HeartbeatConfig, HeartbeatEntry};
pub use error::{EntryRef, Error, Result};
pub use report::{Lease, RunReport, RunStatus, RunTrigger, ScheduleView, SyncReport, TickReport};
pub use schedule::{CronSchedule, normalize_schedule};
pub use scheduler::Scheduler;
pub use store::SCHEMA;
pub use task::{HeartbeatTask, TaskContext, TaskFailure, TaskOutcome, TaskRegistry};
pub use wake::{Raised, WakeEvent, WakeEvents, WakeRequest, Woken};
