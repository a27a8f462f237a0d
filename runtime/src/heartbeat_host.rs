//! The heartbeat as this runtime hosts it: one [`Scheduler`] over the home's state.db with
//! the runtime's tasks ([`crate::heartbeat_tasks`]), the wake-event queue, and the published
//! survival tier. `automaton run` drives it between (and during) stretches; the stretch
//! process builds one so `modify_heartbeat` can sync the table; `automaton heartbeat list/run`
//! build one to show and run schedules.

use crate::config::AutomatonConfig;
use crate::error::{Error, Result};
use crate::heartbeat_tasks::{self, TaskDeps};
use crate::home::Home;
use crate::inference::Endpoint;
use crate::output::{OutputMode, print_json};
use crate::survival;
use automaton_heartbeat::{HeartbeatConfig, RunReport, ScheduleView, Scheduler, WakeEvents};
use automaton_tools::clock::Clock;
use automaton_tools::dispatch::SharedDb;
use automaton_tools::survival::SurvivalTier;
use std::sync::Arc;
use tokio::sync::watch;

/// The hosted heartbeat.
#[derive(Debug, Clone)]
pub struct HeartbeatHost {
    /// The scheduler.
    pub scheduler: Scheduler,
    /// The wake-event queue.
    pub wake: WakeEvents,
    /// The tier the scheduler paces by (updated by `check_credits`).
    pub tier: watch::Receiver<SurvivalTier>,
}

/// Turns a heartbeat error into the runtime's, keeping its hint.
pub fn heartbeat_error(err: &automaton_heartbeat::Error) -> Error {
    Error::InvalidInput {
        message: format!("heartbeat: {err}"),
        hint: err.hint(),
    }
}

/// Builds the heartbeat of `home`. `role` names this process in leases (`run`, `stretch`, `cli`);
/// `credits` is where `check_credits` reads the balance.
pub fn build(
    home: &Home,
    config: Arc<AutomatonConfig>,
    db: SharedDb,
    endpoints: Vec<Endpoint>,
    credits: Option<Arc<dyn heartbeat_tasks::CreditSource>>,
    clock: Arc<dyn Clock>,
    role: &str,
) -> Result<HeartbeatHost> {
    let now = clock.now_ms();
    let tier = {
        let guard = db.lock().map_err(|_| Error::InvalidInput {
            message: "state.db's lock was poisoned by a crashed task".to_owned(),
            hint: "run the command again".to_owned(),
        })?;
        survival::current(&guard, &config.survival, now)?.effective_tier()
    };
    let (tier_tx, tier_rx) = watch::channel(tier);
    let deps = TaskDeps {
        home: home.clone(),
        config,
        db: Arc::clone(&db),
        credits,
        endpoints: Arc::new(endpoints),
        tier: Arc::new(tier_tx),
    };
    let tasks = heartbeat_tasks::registry(&deps).map_err(|err| heartbeat_error(&err))?;
    let wake = WakeEvents::new(Arc::clone(&db), Arc::clone(&clock));
    let owner = format!("{role}:{}:{now}", std::process::id());
    let scheduler = Scheduler::new(db, clock, owner, tasks, wake.clone());
    Ok(HeartbeatHost {
        scheduler,
        wake,
        tier: tier_rx,
    })
}

/// The heartbeat for a CLI command on `home`: its own state.db connection, the configured
/// providers (when they resolve), the platform's credits, the runtime's tasks.
pub fn for_cli(
    home: &Home,
    facts: &crate::toolbox::ProcessFacts,
    clock: Arc<dyn Clock>,
) -> Result<HeartbeatHost> {
    let config = AutomatonConfig::load(&home.config())?;
    let endpoints = crate::inference::endpoints(&config, home, &facts.env)?;
    let credits = crate::platform_credits::for_home(facts, &config, home)?;
    let db: SharedDb = Arc::new(std::sync::Mutex::new(crate::state::open(home)?));
    build(
        home,
        Arc::new(config),
        db,
        endpoints,
        Some(credits),
        clock,
        "cli",
    )
}

impl HeartbeatHost {
    /// Loads `heartbeat.yml` and makes the table match it.
    pub async fn sync_file(&self, home: &Home) -> Result<automaton_heartbeat::SyncReport> {
        let config = HeartbeatConfig::load(&home.heartbeat()).map_err(|err| Error::HomeFile {
            file: "heartbeat.yml",
            message: err.to_string(),
            hint: err.hint(),
        })?;
        self.scheduler
            .sync(&config)
            .await
            .map_err(|err| Error::HomeFile {
                file: "heartbeat.yml",
                message: err.to_string(),
                hint: err.hint(),
            })
    }

    /// Every schedule, after syncing the file.
    pub async fn list(&self, home: &Home) -> Result<Vec<ScheduleView>> {
        self.sync_file(home).await?;
        self.scheduler
            .list()
            .await
            .map_err(|err| heartbeat_error(&err))
    }

    /// Runs schedule `name` now, after syncing the file.
    pub async fn run_now(&self, home: &Home, name: &str) -> Result<RunReport> {
        self.sync_file(home).await?;
        let tier = *self.tier.borrow();
        self.scheduler
            .run_now(name, tier)
            .await
            .map_err(|err| heartbeat_error(&err))
    }
}

/// Prints `heartbeat list`.
pub fn print_list(schedules: &[ScheduleView], mode: OutputMode) {
    match mode {
        OutputMode::Json => print_json(&schedules),
        OutputMode::Human => {
            println!(
                "{:<20} {:<14} {:<8} {:<15} {:<10}",
                "NAME", "SCHEDULE", "ENABLED", "NEXT RUN (ms)", "LAST"
            );
            for view in schedules {
                println!(
                    "{:<20} {:<14} {:<8} {:<15} {:<10}",
                    view.name,
                    view.schedule,
                    view.enabled,
                    view.next_run_at
                        .map_or_else(|| "-".to_owned(), |at| at.to_string()),
                    view.last_status.map_or("-", |status| status.as_str()),
                );
                if let Some(error) = &view.last_error {
                    println!("    last error: {error}");
                }
            }
        }
    }
}
