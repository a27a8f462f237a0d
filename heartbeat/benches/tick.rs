//! The heartbeat's cost: one tick's overhead with 1,000 schedules, and the CPU a sleeping
//! automaton's driver uses.
//!
//! Plain `std::time` sampling (harness = false), on a real state.db in a temp dir (WAL,
//! `synchronous=FULL`, on this machine's disk):
//!
//! - `none due`: 1,000 enabled schedules, none due; each sample is one `tick`.
//! - `all due`: 1,000 every-second schedules with a no-op task; the clock moves one second
//!   before each sample, so every tick claims, runs and records 1,000 runs (two
//!   transactions: the claim and the results).
//! - `sleeping driver`: the default `heartbeat.yml` (six entries, no-op tasks) driven by
//!   `Scheduler::run` on the wall clock for 60 s; CPU time is read from `/proc/self/stat`
//!   (user + system, in the kernel's 10 ms ticks).
//!
//! Run with `cargo bench -p automaton-heartbeat --bench tick`.

use std::error::Error;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use automaton_heartbeat::task::BoxFuture;
use automaton_heartbeat::{
    HeartbeatConfig, HeartbeatEntry, HeartbeatTask, Scheduler, TaskContext, TaskFailure,
    TaskOutcome, TaskRegistry, WakeEvents,
};
use automaton_tools::clock::{Clock, ManualClock, SystemClock};
use automaton_tools::db::StateDb;
use automaton_tools::dispatch::SharedDb;
use automaton_tools::survival::SurvivalTier;
use tokio_util::sync::CancellationToken;

const SCHEDULES: usize = 1_000;
const NONE_DUE_SAMPLES: usize = 300;
const ALL_DUE_SAMPLES: usize = 30;
const SLEEP_FOR: Duration = Duration::from_secs(60);

/// A task that does nothing, under any name.
struct Noop(String);

impl HeartbeatTask for Noop {
    fn name(&self) -> &str {
        &self.0
    }

    fn run(&self, _ctx: TaskContext) -> BoxFuture<'_, Result<TaskOutcome, TaskFailure>> {
        Box::pin(async { Ok(TaskOutcome::new(serde_json::Value::Null)) })
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>, per: usize) {
    samples.sort();
    let p50 = percentile(&samples, 0.50);
    let p99 = percentile(&samples, 0.99);
    println!(
        "{name:<34} p50 {:>10.3} ms   p99 {:>10.3} ms   ({:.1} µs per schedule at p50, {} samples)",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        p50.as_secs_f64() * 1e6 / per as f64,
        samples.len()
    );
}

fn open(dir: &std::path::Path) -> Result<SharedDb, Box<dyn Error>> {
    Ok(Arc::new(Mutex::new(StateDb::open(
        &dir.join("state.db"),
        &[automaton_tools::db::SCHEMA, automaton_heartbeat::SCHEMA],
    )?)))
}

fn scheduler(
    db: &SharedDb,
    clock: Arc<dyn Clock>,
    tasks: &[&str],
) -> Result<Scheduler, Box<dyn Error>> {
    let mut registry = TaskRegistry::new();
    for task in tasks {
        registry.register(Arc::new(Noop((*task).to_owned())))?;
    }
    let wake = WakeEvents::new(Arc::clone(db), Arc::clone(&clock));
    Ok(Scheduler::new(
        Arc::clone(db),
        clock,
        "bench",
        registry,
        wake,
    ))
}

fn config(schedule: &str) -> Result<HeartbeatConfig, Box<dyn Error>> {
    let mut config = HeartbeatConfig::default_schedule();
    config.entries = (0..SCHEDULES)
        .map(|index| HeartbeatEntry {
            name: format!("entry_{index:04}"),
            schedule: schedule.to_owned(),
            task: "noop".to_owned(),
            enabled: true,
            params: serde_json::Map::new(),
        })
        .collect();
    config.validate()?;
    Ok(config)
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Result<Duration, Box<dyn Error>> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    // /proc reports in USER_HZ, which Linux fixes at 100.
    Ok(Duration::from_millis(ticks * 10))
}

fn main() -> Result<(), Box<dyn Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        println!("heartbeat tick, {SCHEDULES} schedules");

        let dir = tempfile::tempdir()?;
        let clock = ManualClock::new(1_893_456_000_000);
        let db = open(dir.path())?;
        let idle = scheduler(&db, Arc::new(clock.clone()), &["noop"])?;
        idle.sync(&config("0 0 1 1 *")?).await?;
        let mut samples = Vec::with_capacity(NONE_DUE_SAMPLES);
        for _ in 0..NONE_DUE_SAMPLES {
            clock.advance(1_000);
            let started = Instant::now();
            let tick = idle.tick(SurvivalTier::Normal).await?;
            samples.push(started.elapsed());
            assert!(tick.runs.is_empty());
        }
        report("none due", samples, SCHEDULES);

        let dir = tempfile::tempdir()?;
        let db = open(dir.path())?;
        let busy = scheduler(&db, Arc::new(clock.clone()), &["noop"])?;
        busy.sync(&config("* * * * * *")?).await?;
        let mut samples = Vec::with_capacity(ALL_DUE_SAMPLES);
        for _ in 0..ALL_DUE_SAMPLES {
            clock.advance(1_000);
            let started = Instant::now();
            let tick = busy.tick(SurvivalTier::Normal).await?;
            samples.push(started.elapsed());
            assert_eq!(tick.runs.len(), SCHEDULES);
        }
        report("all due (no-op task)", samples, SCHEDULES);

        let dir = tempfile::tempdir()?;
        let db = open(dir.path())?;
        let defaults = HeartbeatConfig::default_schedule();
        let path = dir.path().join("heartbeat.yml");
        std::fs::write(&path, defaults.to_yaml()?)?;
        let names: Vec<&str> = defaults.entries.iter().map(|e| e.task.as_str()).collect();
        let driver = scheduler(&db, Arc::new(SystemClock), &names)?;
        let (_tier, tier_rx) = tokio::sync::watch::channel(SurvivalTier::Normal);
        let cancel = CancellationToken::new();
        let handle = tokio::spawn(driver.clone().run(cancel.clone(), tier_rx, path));
        // Let it sync and settle before measuring.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let cpu_before = cpu_time()?;
        let wall = Instant::now();
        tokio::time::sleep(SLEEP_FOR).await;
        let cpu = cpu_time()?.saturating_sub(cpu_before);
        let wall = wall.elapsed();
        cancel.cancel();
        handle.await?;
        println!(
            "{:<34} {:.0} ms CPU over {:.0} s wall = {:.3}% of one core",
            "sleeping driver (default schedule)",
            cpu.as_secs_f64() * 1e3,
            wall.as_secs_f64(),
            cpu.as_secs_f64() / wall.as_secs_f64() * 100.0
        );
        Ok(())
    })
}
