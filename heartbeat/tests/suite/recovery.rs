//! Runs that go wrong: killed mid-run (lease lapses, retried once, then abandoned), timed
//! out (cancelled, token fired), failed (retried after a backoff, or not), panicked.

use std::sync::Arc;
use std::time::Duration;

use automaton_heartbeat::scheduler::LEASE_GRACE;
use automaton_heartbeat::{RunStatus, Scheduler};
use automaton_tools::survival::SurvivalTier;

use super::support::{Harness, MINUTE, ScriptedTask, Step, config, t0};

/// How long a lease outlives a 60 s task's timeout, in ms.
fn grace_ms() -> i64 {
    i64::try_from(LEASE_GRACE.as_millis()).unwrap()
}

/// Starts a tick in its own task, waits until `task` started, then drops the tick with
/// everything it runs: the process running the task died mid-run.
async fn tick_killed_mid_run(scheduler: &Scheduler, task: &ScriptedTask) {
    let started = task.started.notified();
    let tick = tokio::spawn({
        let scheduler = scheduler.clone();
        async move { scheduler.tick(SurvivalTier::Normal).await }
    });
    started.await;
    tick.abort();
    assert!(tick.await.unwrap_err().is_cancelled());
}

fn run_row(h: &Harness, id: i64) -> (String, u32, Option<String>) {
    h.db.lock()
        .unwrap()
        .conn()
        .query_row(
            "SELECT status, attempt, error FROM heartbeat_runs WHERE id = ?1",
            [id],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_run_killed_mid_run_is_retried_once_then_abandoned() {
    let h = Harness::new();
    let ping = ScriptedTask::new("ping")
        .with_script([Step::Hang, Step::Hang])
        .shared();
    let scheduler = h
        .synced(&[Arc::clone(&ping)], &[("ping", "* * * * *", "ping")])
        .await;
    let lease = 60_000 + grace_ms();

    h.clock.set(t0() + MINUTE);
    tick_killed_mid_run(&scheduler, &ping).await;
    assert_eq!(run_row(&h, 1).0, "running");
    let view = &scheduler.list().await.unwrap()[0];
    assert_eq!(
        view.lease.as_ref().unwrap().expires_at,
        t0() + MINUTE + lease
    );

    // Before the lease lapses nothing is taken over (the schedule is due, but leased).
    h.clock.set(t0() + MINUTE + lease - 1);
    assert!(
        scheduler
            .tick(SurvivalTier::Normal)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    assert_eq!(ping.run_count(), 1);
    assert_eq!(
        scheduler.next_due_at().await.unwrap(),
        Some(t0() + MINUTE + lease)
    );

    // The lease lapses: the same run is retried (attempt 2), and dies again.
    h.clock.set(t0() + MINUTE + lease);
    tick_killed_mid_run(&scheduler, &ping).await;
    let (status, attempt, error) = run_row(&h, 1);
    assert_eq!((status.as_str(), attempt), ("running", 2));
    assert!(error.unwrap().contains("lost its lease"));
    assert_eq!(ping.seen()[1], (t0() + MINUTE, 2, SurvivalTier::Normal));

    // Its retry spent, it is abandoned; the schedule moves on to the latest firing.
    let now = t0() + MINUTE + 2 * lease;
    h.clock.set(now);
    let report = scheduler.tick(SurvivalTier::Normal).await.unwrap();
    let abandoned: Vec<_> = report.with_status(RunStatus::Abandoned).collect();
    assert_eq!(abandoned.len(), 1);
    assert_eq!((abandoned[0].run_id, abandoned[0].attempt), (1, 2));
    assert!(
        abandoned[0]
            .error
            .as_deref()
            .unwrap()
            .contains("retries are spent")
    );
    let ok: Vec<_> = report.with_status(RunStatus::Ok).collect();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].scheduled_for, now - now % MINUTE);
    assert_eq!(
        ping.run_count(),
        3,
        "two attempts of the killed run, one new firing"
    );
    assert_eq!(run_row(&h, 1).0, "abandoned");
}

#[tokio::test(start_paused = true)]
async fn a_run_killed_once_succeeds_on_its_retry() {
    let h = Harness::new();
    let ping = ScriptedTask::new("ping").with_script([Step::Hang]).shared();
    let scheduler = h
        .synced(&[Arc::clone(&ping)], &[("ping", "0 * * * *", "ping")])
        .await;
    h.clock.set(t0() + 60 * MINUTE);
    tick_killed_mid_run(&scheduler, &ping).await;

    // Another scheduler (the restarted process) takes the run over once the lease lapses.
    let restarted = Scheduler::new(
        h.second_connection(),
        h.clock(),
        "restarted",
        super::support::registry(&[Arc::clone(&ping)]),
        h.wake.clone(),
    );
    h.clock.advance(60_000 + grace_ms());
    let report = restarted.tick(SurvivalTier::Normal).await.unwrap();
    assert_eq!(report.runs.len(), 1);
    assert_eq!(report.runs[0].status, RunStatus::Ok);
    assert_eq!((report.runs[0].run_id, report.runs[0].attempt), (1, 2));
    assert_eq!(report.runs[0].scheduled_for, t0() + 60 * MINUTE);
    let view = &restarted.list().await.unwrap()[0];
    assert_eq!(view.lease, None);
    assert_eq!(view.last_status, Some(RunStatus::Ok));
}

#[tokio::test(start_paused = true)]
async fn a_task_past_its_timeout_is_cancelled_and_retried() {
    let h = Harness::new();
    let slow = ScriptedTask::new("slow")
        .with_timeout(Duration::from_secs(5))
        .with_script([Step::Hang])
        .shared();
    let scheduler = h
        .synced(&[Arc::clone(&slow)], &[("slow", "* * * * *", "slow")])
        .await;
    h.clock.set(t0() + MINUTE);

    let started = tokio::time::Instant::now();
    let report = scheduler.tick(SurvivalTier::Normal).await.unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(5));
    let run = &report.runs[0];
    assert_eq!(run.status, RunStatus::TimedOut);
    assert!(run.error.as_deref().unwrap().contains("5 s timeout"));
    let token = slow.contexts.lock().unwrap()[0].cancel.clone();
    assert!(token.is_cancelled(), "the task's cancellation token fired");
    // Retried after the 30 s backoff, before the next firing.
    assert_eq!(run.retry_at, Some(t0() + MINUTE + 30_000));
    let view = &scheduler.list().await.unwrap()[0];
    assert_eq!(view.last_status, Some(RunStatus::TimedOut));
    assert_eq!(view.lease, None);

    h.clock.advance(29_999);
    assert!(
        scheduler
            .tick(SurvivalTier::Normal)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    h.clock.advance(1);
    let report = scheduler.tick(SurvivalTier::Normal).await.unwrap();
    assert_eq!(report.runs.len(), 1);
    assert_eq!(
        (report.runs[0].status, report.runs[0].attempt),
        (RunStatus::Ok, 2)
    );
    assert_eq!(report.runs[0].run_id, run.run_id);
}

#[tokio::test(start_paused = true)]
async fn failures_are_retried_per_policy() {
    let h = Harness::new();
    let flaky = ScriptedTask::new("flaky")
        .with_script([
            Step::Fail { retryable: true },
            Step::Fail { retryable: true },
            Step::Fail { retryable: false },
        ])
        .shared();
    let scheduler = h
        .synced(&[Arc::clone(&flaky)], &[("flaky", "*/10 * * * *", "flaky")])
        .await;

    h.clock.set(t0() + 10 * MINUTE);
    let first = scheduler.tick(SurvivalTier::Normal).await.unwrap().runs;
    assert_eq!(first[0].status, RunStatus::Failed);
    assert_eq!(first[0].error.as_deref(), Some("upstream busy"));
    assert_eq!(first[0].retry_at, Some(t0() + 10 * MINUTE + 30_000));
    assert_eq!(
        scheduler.list().await.unwrap()[0].last_error.as_deref(),
        Some("upstream busy")
    );
    assert_eq!(scheduler.next_due_at().await.unwrap(), first[0].retry_at);

    // The retry fails too: max_retries (1) is spent, so it waits for the next firing.
    h.clock.set(t0() + 10 * MINUTE + 30_000);
    let second = scheduler.tick(SurvivalTier::Normal).await.unwrap().runs;
    assert_eq!(
        (second[0].status, second[0].attempt),
        (RunStatus::Failed, 2)
    );
    assert_eq!(second[0].retry_at, None);
    assert_eq!(
        scheduler.next_due_at().await.unwrap(),
        Some(t0() + 20 * MINUTE)
    );

    // A permanent failure is not retried.
    h.clock.set(t0() + 20 * MINUTE);
    let third = scheduler.tick(SurvivalTier::Normal).await.unwrap().runs;
    assert_eq!((third[0].status, third[0].attempt), (RunStatus::Failed, 1));
    assert_eq!(third[0].retry_at, None);

    // A success clears the error.
    h.clock.set(t0() + 30 * MINUTE);
    scheduler.tick(SurvivalTier::Normal).await.unwrap();
    let view = &scheduler.list().await.unwrap()[0];
    assert_eq!(view.last_status, Some(RunStatus::Ok));
    assert_eq!(view.last_error, None);
    assert_eq!(flaky.run_count(), 4);
}

#[tokio::test(start_paused = true)]
async fn no_retry_when_the_next_firing_comes_first() {
    let h = Harness::new();
    let flaky = ScriptedTask::new("flaky")
        .with_script([Step::Fail { retryable: true }])
        .shared();
    // Every 20 seconds: the 30 s backoff would land after the next firing.
    let scheduler = h
        .synced(
            &[Arc::clone(&flaky)],
            &[("flaky", "*/20 * * * * *", "flaky")],
        )
        .await;
    h.clock.set(t0() + 20_000);
    let runs = scheduler.tick(SurvivalTier::Normal).await.unwrap().runs;
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert_eq!(runs[0].retry_at, None);
}

/// A task that panics: a bug in the task, not in the scheduler.
struct Panics;

impl automaton_heartbeat::HeartbeatTask for Panics {
    fn name(&self) -> &str {
        "panics"
    }

    fn run(
        &self,
        _ctx: automaton_heartbeat::TaskContext,
    ) -> automaton_heartbeat::task::BoxFuture<
        '_,
        Result<automaton_heartbeat::TaskOutcome, automaton_heartbeat::TaskFailure>,
    > {
        Box::pin(async { panic!("boom") })
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_task_is_recorded_as_failed_and_releases_its_lease() {
    let h = Harness::new();
    let mut tasks = automaton_heartbeat::TaskRegistry::new();
    tasks.register(Arc::new(Panics)).unwrap();
    let scheduler = Scheduler::new(Arc::clone(&h.db), h.clock(), "a", tasks, h.wake.clone());
    scheduler
        .sync(&config(&[("panics", "* * * * *", "panics")]))
        .await
        .unwrap();
    h.clock.set(t0() + MINUTE);
    let runs = scheduler.tick(SurvivalTier::Normal).await.unwrap().runs;
    assert_eq!(runs[0].status, RunStatus::Failed);
    assert!(runs[0].error.as_deref().unwrap().contains("panicked"));
    assert_eq!(runs[0].retry_at, None);
    assert_eq!(scheduler.list().await.unwrap()[0].lease, None);
}
