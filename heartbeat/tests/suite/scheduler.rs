//! The scheduler over a real state.db: sync, ticks, at-most-once with two schedulers,
//! coalescing, restarts, pacing by tier, minimum tiers, manual runs and the list.

use std::sync::Arc;

use automaton_heartbeat::{Error, RunStatus, RunTrigger, SyncReport};
use automaton_tools::survival::SurvivalTier;

use super::support::{HOUR, Harness, MINUTE, ScriptedTask, config, registry, t0, utc};

#[tokio::test(start_paused = true)]
async fn sync_adds_updates_and_removes_and_leaves_unchanged_entries_alone() {
    let h = Harness::new();
    let ping = ScriptedTask::new("ping").shared();
    let other = ScriptedTask::new("other").shared();
    let scheduler = h.scheduler("a", &[ping, other]);

    let report = scheduler
        .sync(&config(&[
            ("ping", "*/15 * * * *", "ping"),
            ("b", "0 * * * *", "other"),
        ]))
        .await
        .unwrap();
    assert_eq!(report.added, ["ping", "b"]);
    let views = scheduler.list().await.unwrap();
    assert_eq!(views[1].name, "ping");
    assert_eq!(views[1].next_run_at, Some(t0() + 15 * MINUTE));
    assert_eq!(views[1].cron, "0 */15 * * * *");
    assert_eq!(views[0].next_run_at, Some(t0() + HOUR));

    h.clock.advance(5 * MINUTE);
    let report = scheduler
        .sync(&config(&[
            ("ping", "*/15 * * * *", "other"),
            ("c", "0 0 * * *", "ping"),
        ]))
        .await
        .unwrap();
    assert_eq!(
        report,
        SyncReport {
            added: vec!["c".into()],
            updated: vec!["ping".into()],
            removed: vec!["b".into()],
            unchanged: 0,
        }
    );
    let views = scheduler.list().await.unwrap();
    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["c", "ping"]);
    // Only the task changed: the next firing stays.
    assert_eq!(views[1].task, "other");
    assert_eq!(views[1].next_run_at, Some(t0() + 15 * MINUTE));

    // A changed expression is rescheduled from now.
    let report = scheduler
        .sync(&config(&[
            ("ping", "*/2 * * * *", "other"),
            ("c", "0 0 * * *", "ping"),
        ]))
        .await
        .unwrap();
    assert_eq!(report.updated, ["ping"]);
    assert_eq!(report.unchanged, 1);
    let views = scheduler.list().await.unwrap();
    assert_eq!(views[1].next_run_at, Some(t0() + 6 * MINUTE));
}

#[tokio::test(start_paused = true)]
async fn sync_refuses_an_unknown_task_naming_the_entry_and_changes_nothing() {
    let h = Harness::new();
    let scheduler = h
        .synced(
            &[ScriptedTask::new("ping").shared()],
            &[("ping", "* * * * *", "ping")],
        )
        .await;
    let error = scheduler
        .sync(&config(&[
            ("ping", "*/5 * * * *", "ping"),
            ("report", "* * * * *", "report_metrics"),
        ]))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UnknownTask { entry, task, known }
            if entry == "report" && task == "report_metrics" && known == &["ping"]),
        "{error:?}"
    );
    assert!(error.to_string().contains("\"report\""), "{error}");
    assert!(error.hint().contains("ping"), "{}", error.hint());
    let views = scheduler.list().await.unwrap();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].schedule, "* * * * *");
}

#[tokio::test(start_paused = true)]
async fn a_due_schedule_runs_once_and_moves_on() {
    let h = Harness::new();
    let ping = ScriptedTask::new("ping").shared();
    let scheduler = h
        .synced(&[Arc::clone(&ping)], &[("ping", "*/5 * * * *", "ping")])
        .await;

    h.clock.advance(4 * MINUTE);
    assert!(
        scheduler
            .tick(SurvivalTier::Normal)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    assert_eq!(ping.run_count(), 0);

    h.clock.advance(MINUTE + 1_234);
    let report = scheduler.tick(SurvivalTier::Normal).await.unwrap();
    assert_eq!(report.runs.len(), 1);
    let run = &report.runs[0];
    assert_eq!(run.status, RunStatus::Ok);
    assert_eq!(run.scheduled_for, t0() + 5 * MINUTE);
    assert_eq!((run.attempt, run.missed), (1, 0));
    assert_eq!(run.trigger, RunTrigger::Schedule);
    assert_eq!(run.result, Some(serde_json::json!({"ok": true})));
    assert_eq!(ping.seen(), [(t0() + 5 * MINUTE, 1, SurvivalTier::Normal)]);

    // The same instant again: nothing is due.
    assert!(
        scheduler
            .tick(SurvivalTier::Normal)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    let view = &scheduler.list().await.unwrap()[0];
    assert_eq!(view.next_run_at, Some(t0() + 10 * MINUTE));
    assert_eq!(view.last_status, Some(RunStatus::Ok));
    assert_eq!(view.last_run_at, Some(t0() + 5 * MINUTE + 1_234));
    assert_eq!(view.last_result, Some(serde_json::json!({"ok": true})));
    assert_eq!(view.lease, None);
    assert_eq!(
        scheduler.next_due_at().await.unwrap(),
        Some(t0() + 10 * MINUTE)
    );
}

#[tokio::test(start_paused = true)]
async fn two_schedulers_on_one_database_run_each_firing_exactly_once() {
    let h = Harness::new();
    let ping = ScriptedTask::new("ping").shared();
    let a = h.scheduler("scheduler-a", &[Arc::clone(&ping)]);
    let b = automaton_heartbeat::Scheduler::new(
        h.second_connection(),
        h.clock(),
        "scheduler-b",
        registry(&[Arc::clone(&ping)]),
        h.wake.clone(),
    );
    let entries = config(&[("ping", "* * * * *", "ping")]);
    a.sync(&entries).await.unwrap();
    b.sync(&entries).await.unwrap();

    for minute in 1..=20 {
        h.clock.set(t0() + minute * MINUTE);
        let (ra, rb) = tokio::join!(a.tick(SurvivalTier::Normal), b.tick(SurvivalTier::Normal));
        let ran = ra.unwrap().runs.len() + rb.unwrap().runs.len();
        assert_eq!(ran, 1, "minute {minute}");
    }
    assert_eq!(ping.run_count(), 20);
    assert_eq!(
        h.count("SELECT COUNT(DISTINCT scheduled_for) FROM heartbeat_runs WHERE status = 'ok'"),
        20
    );
    // The unique key is the backstop: a second row for a recorded firing is refused.
    let duplicate = h.db.lock().unwrap().conn().execute(
        "INSERT INTO heartbeat_runs (schedule, task, trigger, scheduled_for, status, ended_at)
         VALUES ('ping', 'ping', 'schedule', ?1, 'skipped', ?1)",
        [t0() + MINUTE],
    );
    assert!(duplicate.is_err());
}

#[tokio::test(start_paused = true)]
async fn missed_firings_after_a_long_sleep_coalesce_into_one_run() {
    let h = Harness::new();
    let ping = ScriptedTask::new("ping").shared();
    let scheduler = h
        .synced(&[Arc::clone(&ping)], &[("ping", "* * * * *", "ping")])
        .await;

    h.clock.advance(10 * HOUR + 30_000);
    let report = scheduler.tick(SurvivalTier::Normal).await.unwrap();
    assert_eq!(report.runs.len(), 1);
    assert_eq!(report.runs[0].scheduled_for, t0() + 10 * HOUR);
    assert_eq!(report.runs[0].missed, 599);
    assert_eq!(ping.run_count(), 1);
    let view = &scheduler.list().await.unwrap()[0];
    assert_eq!(view.next_run_at, Some(t0() + 10 * HOUR + MINUTE));
}

#[tokio::test(start_paused = true)]
async fn a_restart_keeps_next_and_last_runs() {
    let h = Harness::new();
    let ping = ScriptedTask::new("ping").shared();
    let entries = config(&[
        ("ping", "*/10 * * * *", "ping"),
        ("hourly", "0 * * * *", "ping"),
    ]);
    let first = h.scheduler("first", &[Arc::clone(&ping)]);
    first.sync(&entries).await.unwrap();
    h.clock.advance(10 * MINUTE);
    first.tick(SurvivalTier::Normal).await.unwrap();
    let before = first.list().await.unwrap();
    drop(first);

    // The process restarts three minutes later on a fresh connection.
    h.clock.advance(3 * MINUTE);
    let second = automaton_heartbeat::Scheduler::new(
        h.second_connection(),
        h.clock(),
        "second",
        registry(&[Arc::clone(&ping)]),
        h.wake.clone(),
    );
    let report = second.sync(&entries).await.unwrap();
    assert!(!report.changed());
    assert_eq!(report.unchanged, 2);
    assert_eq!(second.list().await.unwrap(), before);
    assert_eq!(before[1].next_run_at, Some(t0() + 20 * MINUTE));
    assert_eq!(before[1].last_status, Some(RunStatus::Ok));
    assert!(
        second
            .tick(SurvivalTier::Normal)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    assert_eq!(ping.run_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn conserving_tiers_stretch_the_interval_by_the_multiplier() {
    let h = Harness::new();
    let ping = ScriptedTask::new("ping").shared();
    // lowComputeMultiplier 4 (the default in `config`).
    let scheduler = h
        .synced(
            &[Arc::clone(&ping)],
            &[
                ("every5", "*/5 * * * *", "ping"),
                ("uneven", "0,10 * * * *", "ping"),
            ],
        )
        .await;

    h.clock.set(t0() + 5 * MINUTE);
    scheduler.tick(SurvivalTier::Normal).await.unwrap();
    let next = |views: &[automaton_heartbeat::ScheduleView], name: &str| {
        views.iter().find(|v| v.name == name).unwrap().next_run_at
    };
    assert_eq!(
        next(&scheduler.list().await.unwrap(), "every5"),
        Some(t0() + 10 * MINUTE)
    );

    h.clock.set(t0() + 10 * MINUTE);
    scheduler.tick(SurvivalTier::LowCompute).await.unwrap();
    let views = scheduler.list().await.unwrap();
    assert_eq!(next(&views, "every5"), Some(t0() + 30 * MINUTE));
    // 00:10 → cron next 01:00 is 50 min away; ×4 lands at 03:30, rounded to a firing:
    // the expression fires at :00 and :10, so 03:30 → 04:00.
    assert_eq!(next(&views, "uneven"), Some(t0() + 4 * HOUR));

    h.clock.set(t0() + 30 * MINUTE);
    scheduler.tick(SurvivalTier::Critical).await.unwrap();
    assert_eq!(
        next(&scheduler.list().await.unwrap(), "every5"),
        Some(t0() + 50 * MINUTE)
    );

    // Dead and high are not conserving tiers: the cron's own pace.
    h.clock.set(t0() + 50 * MINUTE);
    scheduler.tick(SurvivalTier::Dead).await.unwrap();
    assert_eq!(
        next(&scheduler.list().await.unwrap(), "every5"),
        Some(t0() + 55 * MINUTE)
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_below_its_minimum_tier_is_skipped_and_recorded() {
    let h = Harness::new();
    let refresh = ScriptedTask::new("refresh")
        .with_min_tier(SurvivalTier::Normal)
        .shared();
    let distress = ScriptedTask::new("distress").shared();
    let scheduler = h
        .synced(
            &[Arc::clone(&refresh), Arc::clone(&distress)],
            &[
                ("refresh", "* * * * *", "refresh"),
                ("distress", "* * * * *", "distress"),
            ],
        )
        .await;

    h.clock.set(t0() + MINUTE);
    let report = scheduler.tick(SurvivalTier::Dead).await.unwrap();
    let skipped: Vec<_> = report.with_status(RunStatus::Skipped).collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].schedule, "refresh");
    let why = skipped[0].error.as_deref().unwrap();
    assert!(why.contains("dead") && why.contains("normal"), "{why}");
    assert_eq!(refresh.run_count(), 0);
    assert_eq!(
        distress.run_count(),
        1,
        "a task with min tier dead always runs"
    );
    let view = scheduler.list().await.unwrap();
    let refresh_view = view.iter().find(|v| v.name == "refresh").unwrap();
    assert_eq!(refresh_view.last_status, Some(RunStatus::Skipped));
    assert_eq!(refresh_view.next_run_at, Some(t0() + 2 * MINUTE));

    h.clock.set(t0() + 2 * MINUTE);
    let report = scheduler.tick(SurvivalTier::Normal).await.unwrap();
    assert_eq!(report.with_status(RunStatus::Ok).count(), 2);
    assert_eq!(refresh.run_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn disabled_entries_do_not_run_and_re_enabling_does_not_replay_the_gap() {
    let h = Harness::new();
    let ping = ScriptedTask::new("ping").shared();
    let scheduler = h.scheduler("a", &[Arc::clone(&ping)]);
    let yaml = |enabled: bool| {
        format!(
            "entries:\n  - name: ping\n    schedule: \"* * * * *\"\n    task: ping\n    enabled: {enabled}\n"
        )
    };
    scheduler
        .sync(&automaton_heartbeat::HeartbeatConfig::parse(&yaml(false)).unwrap())
        .await
        .unwrap();
    h.clock.advance(HOUR);
    assert!(
        scheduler
            .tick(SurvivalTier::Normal)
            .await
            .unwrap()
            .runs
            .is_empty()
    );
    assert_eq!(scheduler.next_due_at().await.unwrap(), None);

    scheduler
        .sync(&automaton_heartbeat::HeartbeatConfig::parse(&yaml(true)).unwrap())
        .await
        .unwrap();
    assert_eq!(
        scheduler.list().await.unwrap()[0].next_run_at,
        Some(t0() + HOUR + MINUTE)
    );
    h.clock.advance(MINUTE);
    let report = scheduler.tick(SurvivalTier::Normal).await.unwrap();
    assert_eq!(report.runs.len(), 1);
    assert_eq!(report.runs[0].missed, 0);
}

#[tokio::test(start_paused = true)]
async fn run_now_runs_regardless_of_schedule_and_keeps_the_next_firing() {
    let h = Harness::new();
    let refresh = ScriptedTask::new("refresh")
        .with_min_tier(SurvivalTier::High)
        .shared();
    let scheduler = h
        .synced(
            &[Arc::clone(&refresh)],
            &[("refresh", "0 0 * * *", "refresh")],
        )
        .await;
    h.clock.advance(7 * MINUTE);

    let run = scheduler
        .run_now("refresh", SurvivalTier::Critical)
        .await
        .unwrap();
    assert_eq!(run.status, RunStatus::Ok);
    assert_eq!(run.trigger, RunTrigger::Manual);
    assert_eq!(run.scheduled_for, t0() + 7 * MINUTE);
    assert_eq!(
        refresh.seen(),
        [(t0() + 7 * MINUTE, 1, SurvivalTier::Critical)]
    );
    let view = &scheduler.list().await.unwrap()[0];
    assert_eq!(view.next_run_at, Some(utc(2030, 1, 2, 0, 0, 0)));
    assert_eq!(view.last_status, Some(RunStatus::Ok));
    let history = scheduler.runs("refresh", 10).await.unwrap();
    assert_eq!(history, [run]);

    let error = scheduler
        .run_now("refersh", SurvivalTier::Normal)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UnknownSchedule { name, known } if name == "refersh" && known == &["refresh"]),
        "{error:?}"
    );
    assert!(error.hint().contains("refresh"));

    // A second manual run in the same millisecond would be the same firing: refused.
    let error = scheduler
        .run_now("refresh", SurvivalTier::Normal)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::RunExists { .. }), "{error:?}");
}

#[tokio::test(start_paused = true)]
async fn list_serialises_for_the_cli() {
    let h = Harness::new();
    let scheduler = h.scheduler("a", &[ScriptedTask::new("ping").shared()]);
    let yaml = "entries:\n  - name: ping\n    schedule: \"*/15 * * * *\"\n    task: ping\n    params:\n      notify: true\n";
    scheduler
        .sync(&automaton_heartbeat::HeartbeatConfig::parse(yaml).unwrap())
        .await
        .unwrap();
    let json = serde_json::to_value(scheduler.list().await.unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{
            "name": "ping",
            "schedule": "*/15 * * * *",
            "cron": "0 */15 * * * *",
            "task": "ping",
            "enabled": true,
            "params": {"notify": true},
            "next_run_at": t0() + 15 * MINUTE,
            "last_run_at": null,
            "last_status": null,
            "last_error": null,
            "last_result": null,
            "lease": null,
        }])
    );
}
