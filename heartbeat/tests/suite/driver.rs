//! The long-running driver: it syncs heartbeat.yml at start and whenever its text changes,
//! keeps the last good table when the file goes bad, runs what is due, sleeps in between,
//! and on shutdown records runs in flight as interrupted.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use automaton_heartbeat::RunStatus;
use automaton_tools::survival::SurvivalTier;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::support::{Harness, MINUTE, ScriptedTask, Step, entries_yaml, t0};

/// Waits (in paused time) until `check` holds, failing after ten virtual minutes.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..600 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("never happened: {what}");
}

#[tokio::test(start_paused = true)]
async fn the_driver_syncs_runs_reloads_and_keeps_the_last_good_table() {
    let h = Harness::new();
    let ping = ScriptedTask::new("ping").shared();
    let report = ScriptedTask::new("report").shared();
    std::fs::write(
        h.heartbeat_yml(),
        entries_yaml(&[("ping", "* * * * *", "ping")], 60_000, 4),
    )
    .unwrap();
    let scheduler = h.scheduler("driver", &[Arc::clone(&ping), Arc::clone(&report)]);
    let (_tier, tier_rx) = watch::channel(SurvivalTier::Normal);
    let cancel = CancellationToken::new();
    let driver = tokio::spawn(
        scheduler
            .clone()
            .run(cancel.clone(), tier_rx, h.heartbeat_yml()),
    );

    eventually("the file is synced", || async {
        scheduler.list().await.unwrap().len() == 1
    })
    .await;
    assert_eq!(ping.run_count(), 0);

    // The first firing: the driver was asleep until it.
    h.clock.set(t0() + MINUTE);
    eventually("ping ran", || async { ping.run_count() == 1 }).await;
    assert_eq!(ping.seen()[0].0, t0() + MINUTE);

    // An edit is picked up within defaultIntervalMs.
    std::fs::write(
        h.heartbeat_yml(),
        entries_yaml(
            &[
                ("ping", "* * * * *", "ping"),
                ("report", "*/5 * * * *", "report"),
            ],
            60_000,
            4,
        ),
    )
    .unwrap();
    eventually("the edit is synced", || async {
        scheduler.list().await.unwrap().len() == 2
    })
    .await;

    // A broken file is refused; the last good table keeps running.
    std::fs::write(h.heartbeat_yml(), "entries: [\n").unwrap();
    tokio::time::sleep(Duration::from_secs(150)).await;
    assert_eq!(scheduler.list().await.unwrap().len(), 2);
    h.clock.set(t0() + 5 * MINUTE);
    eventually("report ran from the last good table", || async {
        report.run_count() == 1
    })
    .await;

    // So is a file naming a task this runtime does not have.
    std::fs::write(
        h.heartbeat_yml(),
        entries_yaml(&[("ping", "* * * * *", "no_such_task")], 60_000, 4),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_secs(150)).await;
    let views = scheduler.list().await.unwrap();
    assert_eq!(views.len(), 2);
    assert_eq!(views[0].task, "ping");

    cancel.cancel();
    driver.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_interrupts_runs_in_flight_and_leaves_them_to_retry() {
    let h = Harness::new();
    let stuck = ScriptedTask::new("stuck")
        .with_script([Step::Hang])
        .shared();
    std::fs::write(
        h.heartbeat_yml(),
        entries_yaml(&[("stuck", "*/10 * * * *", "stuck")], 60_000, 4),
    )
    .unwrap();
    let scheduler = h.scheduler("driver", &[Arc::clone(&stuck)]);
    scheduler
        .sync(&automaton_heartbeat::HeartbeatConfig::load(&h.heartbeat_yml()).unwrap())
        .await
        .unwrap();
    h.clock.set(t0() + 10 * MINUTE);
    let (_tier, tier_rx) = watch::channel(SurvivalTier::Normal);
    let cancel = CancellationToken::new();
    let started = stuck.started.notified();
    let driver = tokio::spawn(
        scheduler
            .clone()
            .run(cancel.clone(), tier_rx, h.heartbeat_yml()),
    );
    started.await;

    cancel.cancel();
    driver.await.unwrap();
    let token = stuck.contexts.lock().unwrap()[0].cancel.clone();
    assert!(token.is_cancelled());
    let run = &scheduler.runs("stuck", 1).await.unwrap()[0];
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.as_deref().unwrap().contains("interrupted"));
    assert_eq!(run.retry_at, Some(t0() + 10 * MINUTE + 30_000));
    assert_eq!(scheduler.list().await.unwrap()[0].lease, None);
}
