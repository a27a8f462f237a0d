//! Wake events: one pending per cause, consumed exactly once by competing consumers, an
//! in-process waiter woken at once, another process's waiter within its poll interval, and
//! a task's wake event committed with its result.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use automaton_heartbeat::{Error, Raised, RunStatus, WakeEvents, WakeRequest, Woken};
use automaton_tools::survival::SurvivalTier;
use tokio_util::sync::CancellationToken;

use super::support::{Harness, MINUTE, ScriptedTask, Step, t0};

#[tokio::test(start_paused = true)]
async fn one_pending_event_per_cause_refreshed_with_the_latest_reason() {
    let h = Harness::new();
    let first = h
        .wake
        .raise(
            WakeRequest::new("credits_low", "balance is $0.50"),
            "heartbeat:check_credits",
        )
        .await
        .unwrap();
    assert!(matches!(first, Raised::Queued(_)));
    h.clock.advance(MINUTE);
    let again = h
        .wake
        .raise(
            WakeRequest::new("credits_low", "balance is $0.10")
                .with_payload(serde_json::json!({"micro_usdc": 100_000})),
            "heartbeat:check_credits",
        )
        .await
        .unwrap();
    assert_eq!(again, Raised::Refreshed(first.id()));
    h.wake
        .raise(
            WakeRequest::new("new_commits", "2 upstream commits"),
            "heartbeat:updates",
        )
        .await
        .unwrap();

    let pending = h.wake.pending().await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!(pending[0].cause, "credits_low");
    assert_eq!(pending[0].reason, "balance is $0.10");
    assert_eq!(
        pending[0].payload,
        serde_json::json!({"micro_usdc": 100_000})
    );
    assert_eq!(
        (pending[0].created_at, pending[0].updated_at),
        (t0(), t0() + MINUTE)
    );

    // Oldest first, and once consumed a cause can be raised anew.
    let taken = h.wake.take_next("loop").await.unwrap().unwrap();
    assert_eq!(taken.id, first.id());
    assert_eq!(taken.consumed_by.as_deref(), Some("loop"));
    assert_eq!(taken.consumed_at, Some(t0() + MINUTE));
    let anew = h
        .wake
        .raise(
            WakeRequest::new("credits_low", "balance is $0"),
            "heartbeat:check_credits",
        )
        .await
        .unwrap();
    assert!(matches!(anew, Raised::Queued(id) if id != first.id()));
    assert_eq!(
        h.wake.take_next("loop").await.unwrap().unwrap().cause,
        "new_commits"
    );
    assert_eq!(
        h.wake.take_next("loop").await.unwrap().unwrap().id,
        anew.id()
    );
    assert_eq!(h.wake.take_next("loop").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn two_consumers_on_two_connections_never_get_the_same_event() {
    let h = Harness::new();
    for index in 0..60 {
        h.wake
            .raise(
                WakeRequest::new(format!("cause_{index}"), "something happened"),
                "test",
            )
            .await
            .unwrap();
    }
    let other = WakeEvents::new(h.second_connection(), h.clock());
    let drain = |queue: WakeEvents, consumer: &'static str| async move {
        let mut ids = Vec::new();
        while let Some(event) = queue.take_next(consumer).await.unwrap() {
            assert_eq!(event.consumed_by.as_deref(), Some(consumer));
            ids.push(event.id);
        }
        ids
    };
    let (a, b) = tokio::join!(
        tokio::spawn(drain(h.wake.clone(), "a")),
        tokio::spawn(drain(other, "b"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let all: BTreeSet<i64> = a.iter().chain(&b).copied().collect();
    assert_eq!(a.len() + b.len(), 60, "no event consumed twice");
    assert_eq!(all.len(), 60, "every event consumed");
    assert_eq!(
        h.count("SELECT COUNT(*) FROM wake_events WHERE consumed_at IS NULL"),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn an_in_process_waiter_wakes_at_once() {
    let h = Harness::new();
    let cancel = CancellationToken::new();
    let waiter = tokio::spawn({
        let wake = h.wake.clone();
        let cancel = cancel.clone();
        async move {
            let started = tokio::time::Instant::now();
            let woken = wake.wait(&cancel, Duration::from_secs(3600)).await.unwrap();
            (woken, started.elapsed())
        }
    });
    // Let the waiter look at the empty queue and go to sleep.
    tokio::time::sleep(Duration::from_secs(10)).await;
    h.wake
        .raise(WakeRequest::new("distress", "tier is critical"), "test")
        .await
        .unwrap();
    let (woken, elapsed) = waiter.await.unwrap();
    assert_eq!(woken, Woken::Pending);
    assert_eq!(
        elapsed,
        Duration::from_secs(10),
        "woken by the raise, not by a poll"
    );
}

#[tokio::test(start_paused = true)]
async fn another_process_notices_within_its_poll_interval() {
    let h = Harness::new();
    let other_process = WakeEvents::new(h.second_connection(), h.clock());
    let cancel = CancellationToken::new();
    let waiter = tokio::spawn({
        let cancel = cancel.clone();
        async move {
            let started = tokio::time::Instant::now();
            let woken = other_process
                .wait(&cancel, Duration::from_secs(3))
                .await
                .unwrap();
            (woken, started.elapsed())
        }
    });
    tokio::time::sleep(Duration::from_secs(4)).await;
    h.wake
        .raise(WakeRequest::new("new_commits", "upstream moved"), "test")
        .await
        .unwrap();
    let (woken, elapsed) = waiter.await.unwrap();
    assert_eq!(woken, Woken::Pending);
    assert_eq!(
        elapsed,
        Duration::from_secs(6),
        "the poll after the raise saw it"
    );
}

#[tokio::test(start_paused = true)]
async fn wait_returns_at_once_when_an_event_is_pending_and_stops_on_cancel() {
    let h = Harness::new();
    let cancel = CancellationToken::new();
    cancel.cancel();
    assert_eq!(
        h.wake.wait(&cancel, Duration::from_secs(5)).await.unwrap(),
        Woken::Cancelled
    );
    h.wake
        .raise(WakeRequest::new("distress", "critical"), "test")
        .await
        .unwrap();
    assert_eq!(
        h.wake
            .wait(&CancellationToken::new(), Duration::from_secs(5))
            .await
            .unwrap(),
        Woken::Pending
    );
}

#[tokio::test(start_paused = true)]
async fn malformed_wake_requests_are_refused() {
    let h = Harness::new();
    let cases = [
        (WakeRequest::new("", "r"), "test", "cause"),
        (WakeRequest::new("Credits Low", "r"), "test", "cause"),
        (WakeRequest::new("c".repeat(65), "r"), "test", "cause"),
        (WakeRequest::new("ok", "  "), "test", "reason"),
        (WakeRequest::new("ok", "r"), "", "source"),
    ];
    for (request, source, field) in cases {
        let error = h.wake.raise(request, source).await.unwrap_err();
        assert!(
            matches!(&error, Error::InvalidWake { field: f, .. } if *f == field),
            "{error:?}"
        );
        assert!(error.hint().contains("credits_low"));
    }
    assert!(h.wake.pending().await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_task_outcome_raises_its_wake_event_with_the_result() {
    let h = Harness::new();
    let updates = ScriptedTask::new("check_for_updates")
        .with_script([
            Step::Wake(
                WakeRequest::new("new_commits", "3 new upstream commits")
                    .with_payload(serde_json::json!({"head": "abc1234"})),
            ),
            Step::Wake(WakeRequest::new("Not Valid", "dropped")),
        ])
        .shared();
    let scheduler = h
        .synced(
            &[Arc::clone(&updates)],
            &[("updates", "* * * * *", "check_for_updates")],
        )
        .await;

    let cancel = CancellationToken::new();
    let waiter = tokio::spawn({
        let wake = h.wake.clone();
        let cancel = cancel.clone();
        async move { wake.wait(&cancel, Duration::from_secs(3600)).await.unwrap() }
    });
    tokio::task::yield_now().await;
    h.clock.set(t0() + MINUTE);
    let started = tokio::time::Instant::now();
    scheduler.tick(SurvivalTier::Normal).await.unwrap();
    assert_eq!(waiter.await.unwrap(), Woken::Pending);
    assert!(started.elapsed() < Duration::from_secs(1));
    let pending = h.wake.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].source, "heartbeat:updates");
    assert_eq!(pending[0].payload, serde_json::json!({"head": "abc1234"}));

    // An invalid event from a task is dropped; its run still counts.
    h.clock.set(t0() + 2 * MINUTE);
    let report = scheduler.tick(SurvivalTier::Normal).await.unwrap();
    assert_eq!(report.runs[0].status, RunStatus::Ok);
    assert_eq!(h.wake.pending().await.unwrap().len(), 1);
}
