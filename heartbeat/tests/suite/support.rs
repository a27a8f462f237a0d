//! Fixtures: a real state.db in a temp dir (WAL on, every crate's migrations), a manual
//! clock, and scripted heartbeat tasks that count their runs and do what each test asks.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use automaton_heartbeat::task::BoxFuture;
use automaton_heartbeat::{
    HeartbeatConfig, HeartbeatTask, Scheduler, TaskContext, TaskFailure, TaskOutcome, TaskRegistry,
    WakeEvents, WakeRequest,
};
use automaton_tools::clock::{Clock, ManualClock};
use automaton_tools::db::StateDb;
use automaton_tools::dispatch::SharedDb;
use automaton_tools::survival::SurvivalTier;
use chrono::{TimeZone, Utc};
use tokio::sync::Notify;

/// Epoch ms of a UTC wall time.
pub fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> i64 {
    Utc.with_ymd_and_hms(year, month, day, hour, minute, second)
        .single()
        .unwrap()
        .timestamp_millis()
}

/// 2030-01-01T00:00:00Z, a Tuesday: where most tests start.
pub fn t0() -> i64 {
    utc(2030, 1, 1, 0, 0, 0)
}

pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;

/// A home's state.db and clock.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub db: SharedDb,
    pub clock: ManualClock,
    pub wake: WakeEvents,
}

impl Harness {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(t0());
        let db = open(&dir.path().join("state.db"));
        let wake = WakeEvents::new(Arc::clone(&db), Arc::new(clock.clone()));
        Self {
            dir,
            db,
            clock,
            wake,
        }
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        Arc::new(self.clock.clone())
    }

    /// A second, independent connection to the same file (as another process would have).
    pub fn second_connection(&self) -> SharedDb {
        open(&self.dir.path().join("state.db"))
    }

    pub fn heartbeat_yml(&self) -> PathBuf {
        self.dir.path().join("heartbeat.yml")
    }

    /// A scheduler named `owner` on the first connection, with `tasks`.
    pub fn scheduler(&self, owner: &str, tasks: &[Arc<ScriptedTask>]) -> Scheduler {
        Scheduler::new(
            Arc::clone(&self.db),
            self.clock(),
            owner,
            registry(tasks),
            self.wake.clone(),
        )
    }

    /// A scheduler named `a` with `tasks`, synced with `entries` (name, schedule, task).
    pub async fn synced(
        &self,
        tasks: &[Arc<ScriptedTask>],
        entries: &[(&str, &str, &str)],
    ) -> Scheduler {
        let scheduler = self.scheduler("a", tasks);
        scheduler.sync(&config(entries)).await.unwrap();
        scheduler
    }

    /// Counts rows of `sql` (a `SELECT COUNT(*) …`).
    pub fn count(&self, sql: &str) -> i64 {
        self.db
            .lock()
            .unwrap()
            .conn()
            .query_row(sql, [], |row| row.get(0))
            .unwrap()
    }
}

pub fn open(path: &std::path::Path) -> SharedDb {
    Arc::new(Mutex::new(
        StateDb::open(
            path,
            &[automaton_tools::db::SCHEMA, automaton_heartbeat::SCHEMA],
        )
        .unwrap(),
    ))
}

pub fn registry(tasks: &[Arc<ScriptedTask>]) -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    for task in tasks {
        registry
            .register(Arc::clone(task) as Arc<dyn HeartbeatTask>)
            .unwrap();
    }
    registry
}

/// A config of `entries` given as (name, schedule, task).
pub fn config(entries: &[(&str, &str, &str)]) -> HeartbeatConfig {
    let yaml = entries_yaml(entries, 60_000, 4);
    HeartbeatConfig::parse(&yaml).unwrap()
}

pub fn entries_yaml(entries: &[(&str, &str, &str)], interval_ms: u64, multiplier: u32) -> String {
    let mut yaml = String::from("entries:\n");
    for (name, schedule, task) in entries {
        yaml.push_str(&format!(
            "  - name: {name}\n    schedule: \"{schedule}\"\n    task: {task}\n"
        ));
    }
    yaml.push_str(&format!(
        "defaultIntervalMs: {interval_ms}\nlowComputeMultiplier: {multiplier}\n"
    ));
    yaml
}

/// What one run of a [`ScriptedTask`] does.
#[derive(Debug, Clone)]
pub enum Step {
    /// Return `{"ok": true}`.
    Succeed,
    /// Return `{"ok": true}` and raise this wake event.
    Wake(WakeRequest),
    /// Return a failure.
    Fail { retryable: bool },
    /// Signal `started`, then never finish and ignore cancellation (a stuck or killed run;
    /// only a timeout or dropping the run stops it).
    Hang,
}

/// A task whose runs follow a script (then succeed), counting runs and keeping each context.
pub struct ScriptedTask {
    pub name: String,
    pub min_tier: SurvivalTier,
    pub timeout: Duration,
    pub max_retries: u32,
    script: Mutex<VecDeque<Step>>,
    pub runs: AtomicUsize,
    pub contexts: Mutex<Vec<TaskContext>>,
    pub started: Notify,
}

impl ScriptedTask {
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            min_tier: SurvivalTier::Dead,
            timeout: Duration::from_secs(60),
            max_retries: 1,
            script: Mutex::new(VecDeque::new()),
            runs: AtomicUsize::new(0),
            contexts: Mutex::new(Vec::new()),
            started: Notify::new(),
        }
    }

    pub fn with_min_tier(mut self, tier: SurvivalTier) -> Self {
        self.min_tier = tier;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn with_script(self, steps: impl IntoIterator<Item = Step>) -> Self {
        self.script.lock().unwrap().extend(steps);
        self
    }

    pub fn shared(self) -> Arc<Self> {
        Arc::new(self)
    }

    pub fn run_count(&self) -> usize {
        self.runs.load(Ordering::SeqCst)
    }

    /// (scheduled_for, attempt, tier) of every run so far.
    pub fn seen(&self) -> Vec<(i64, u32, SurvivalTier)> {
        self.contexts
            .lock()
            .unwrap()
            .iter()
            .map(|ctx| (ctx.scheduled_for, ctx.attempt, ctx.tier))
            .collect()
    }
}

impl HeartbeatTask for ScriptedTask {
    fn name(&self) -> &str {
        &self.name
    }

    fn min_tier(&self) -> SurvivalTier {
        self.min_tier
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    fn max_retries(&self) -> u32 {
        self.max_retries
    }

    fn run(&self, ctx: TaskContext) -> BoxFuture<'_, Result<TaskOutcome, TaskFailure>> {
        Box::pin(async move {
            self.runs.fetch_add(1, Ordering::SeqCst);
            self.contexts.lock().unwrap().push(ctx.clone());
            let step = self
                .script
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Step::Succeed);
            self.started.notify_one();
            match step {
                Step::Succeed => Ok(TaskOutcome::new(serde_json::json!({"ok": true}))),
                Step::Wake(request) => {
                    Ok(TaskOutcome::new(serde_json::json!({"ok": true})).with_wake(request))
                }
                Step::Fail { retryable: true } => Err(TaskFailure::transient("upstream busy")),
                Step::Fail { retryable: false } => Err(TaskFailure::permanent("bad params")),
                Step::Hang => std::future::pending().await,
            }
        })
    }
}
