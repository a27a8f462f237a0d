use super::*;
use crate::clock::ManualClock;

const START_MS: i64 = 1_700_000_000_000;
const TRANSIENT: FailureKind = FailureKind::Transient { retry_after: None };

fn breaker() -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new(START_MS);
    let breaker = CircuitBreaker::new(BreakerConfig::default(), Arc::new(clock.clone()));
    (breaker, clock)
}

fn fail(breaker: &CircuitBreaker, kind: FailureKind, times: u32) {
    for _ in 0..times {
        breaker.try_acquire().unwrap().failed(kind);
    }
}

fn succeed(breaker: &CircuitBreaker) {
    breaker.try_acquire().unwrap().succeeded();
}

/// Opens the breaker and lets its open period run out.
fn half_open() -> (CircuitBreaker, ManualClock) {
    let (breaker, clock) = breaker();
    fail(&breaker, TRANSIENT, 5);
    clock.advance(60_000);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    (breaker, clock)
}

#[test]
fn defaults_are_five_failures_and_sixty_seconds() {
    assert_eq!(
        BreakerConfig::default(),
        BreakerConfig {
            threshold: 5,
            open_for: Duration::from_secs(60),
        }
    );
}

#[test]
fn opens_after_five_consecutive_transient_failures() {
    let (breaker, _clock) = breaker();
    fail(&breaker, TRANSIENT, 4);
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 4 });
    fail(&breaker, TRANSIENT, 1);
    assert_eq!(
        breaker.state(),
        BreakerState::Open {
            until_ms: START_MS + 60_000
        }
    );
}

#[test]
fn refuses_while_open_with_the_time_left() {
    let (breaker, clock) = breaker();
    fail(&breaker, TRANSIENT, 5);
    clock.advance(59_000);
    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.retry_in, Duration::from_secs(1));
    assert_eq!(
        refused.to_string(),
        "circuit breaker open; retry in 1000 ms"
    );
}

#[test]
fn turns_half_open_after_open_for() {
    let (breaker, clock) = breaker();
    fail(&breaker, TRANSIENT, 5);
    clock.advance(59_999);
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    clock.advance(1);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[test]
fn successful_trial_closes_it() {
    let (breaker, _clock) = half_open();
    succeed(&breaker);
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
    // Closed for real: it takes a full threshold of failures to open again.
    fail(&breaker, TRANSIENT, 4);
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 4 });
}

#[test]
fn failed_trial_reopens_it_for_another_period() {
    let (breaker, clock) = half_open();
    fail(&breaker, TRANSIENT, 1);
    let reopened_until = START_MS + 120_000;
    assert_eq!(
        breaker.state(),
        BreakerState::Open {
            until_ms: reopened_until
        }
    );
    assert_eq!(
        breaker.try_acquire().unwrap_err().retry_in,
        Duration::from_secs(60)
    );
    clock.advance(60_000);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[test]
fn permanent_failures_do_not_open_it_nor_reset_the_count() {
    let (breaker, _clock) = breaker();
    fail(&breaker, FailureKind::Permanent, 20);
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
    fail(&breaker, TRANSIENT, 4);
    fail(&breaker, FailureKind::Permanent, 1);
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 4 });
}

#[test]
fn a_success_resets_the_failure_count() {
    let (breaker, _clock) = breaker();
    fail(&breaker, TRANSIENT, 4);
    succeed(&breaker);
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
    fail(&breaker, TRANSIENT, 4);
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 4 });
}

#[test]
fn half_open_admits_one_trial_at_a_time() {
    let (breaker, _clock) = half_open();
    let trial = breaker.try_acquire().unwrap();
    let refused = breaker.try_acquire().unwrap_err();
    assert_eq!(refused.retry_in, Duration::ZERO);
    trial.succeeded();
    assert!(breaker.try_acquire().is_ok());
}

#[test]
fn a_dropped_trial_frees_the_slot() {
    let (breaker, _clock) = half_open();
    drop(breaker.try_acquire().unwrap());
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    let trial = breaker.try_acquire().unwrap();
    trial.failed(TRANSIENT);
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
}

#[test]
fn a_permanent_failure_in_the_trial_leaves_it_half_open() {
    let (breaker, _clock) = half_open();
    fail(&breaker, FailureKind::Permanent, 1);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert!(breaker.try_acquire().is_ok());
}

#[test]
fn an_outcome_from_before_it_opened_is_ignored() {
    let (breaker, clock) = breaker();
    let slow_call = breaker.try_acquire().unwrap();
    let slower_call = breaker.try_acquire().unwrap();
    fail(&breaker, TRANSIENT, 5);
    slow_call.succeeded();
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));

    // Nor may a call from the closed period decide the half-open trial.
    clock.advance(60_000);
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    slower_call.succeeded();
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
}

#[test]
fn clones_share_one_state() {
    let (breaker, _clock) = breaker();
    let clone = breaker.clone();
    fail(&clone, TRANSIENT, 5);
    assert!(breaker.try_acquire().is_err());
}
