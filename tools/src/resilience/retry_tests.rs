use super::*;
use crate::clock::ManualClock;
use crate::resilience::BreakerConfig;
use std::sync::Arc;
use tokio::time::Instant;

/// An error as a client would classify it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum Failure {
    #[error("service unavailable")]
    Unavailable,
    #[error("rate limited")]
    RateLimited(Duration),
    #[error("bad request")]
    BadRequest,
}

impl Classify for Failure {
    fn failure_kind(&self) -> FailureKind {
        match self {
            Self::Unavailable => FailureKind::Transient { retry_after: None },
            Self::RateLimited(wait) => FailureKind::Transient {
                retry_after: Some(*wait),
            },
            Self::BadRequest => FailureKind::Permanent,
        }
    }
}

const fn secs(secs: u64) -> Duration {
    Duration::from_secs(secs)
}

const fn millis(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

/// The default policy without jitter, so every sleep is exact.
fn exact(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        jitter: 0.0,
        ..RetryPolicy::default()
    }
}

/// Runs [`retry`] over `answer` and returns the result with the tokio time of each call,
/// measured from the start.
async fn run(
    policy: &RetryPolicy,
    breaker: Option<&CircuitBreaker>,
    mut answer: impl FnMut(u32) -> Result<u32, Failure>,
) -> (Result<u32, RetryError<Failure>>, Vec<Duration>) {
    let start = Instant::now();
    let mut calls = Vec::new();
    let result = retry(policy, breaker, |attempt| {
        calls.push(start.elapsed());
        std::future::ready(answer(attempt))
    })
    .await;
    (result, calls)
}

fn gaps(calls: &[Duration]) -> Vec<Duration> {
    calls.windows(2).map(|pair| pair[1] - pair[0]).collect()
}

#[test]
fn defaults_match_the_contract() {
    let policy = RetryPolicy::default();
    assert_eq!(policy.max_attempts, 4);
    assert_eq!(policy.base_delay, millis(500));
    assert_eq!(policy.max_delay, secs(30));
    assert!((policy.jitter - 0.2).abs() < f64::EPSILON);
    assert_eq!(policy.max_retry_after, secs(120));
}

#[test]
fn backoff_doubles_then_caps() {
    let policy = RetryPolicy::default();
    let cases = [
        (1, millis(500)),
        (2, secs(1)),
        (3, secs(2)),
        (4, secs(4)),
        (5, secs(8)),
        (6, secs(16)),
        (7, secs(30)),
        (8, secs(30)),
        (40, secs(30)),
        (u32::MAX, secs(30)),
    ];
    for (failed_attempt, expected) in cases {
        assert_eq!(
            policy.backoff(failed_attempt),
            expected,
            "after attempt {failed_attempt}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn sleeps_double_and_cap_between_attempts() {
    let policy = RetryPolicy {
        max_delay: secs(3),
        ..exact(6)
    };
    let start = Instant::now();
    let (result, calls) = run(&policy, None, |_| Err(Failure::Unavailable)).await;
    assert_eq!(
        gaps(&calls),
        [millis(500), secs(1), secs(2), secs(3), secs(3)]
    );
    // No sleep after the last attempt.
    assert_eq!(start.elapsed(), millis(9_500));
    assert!(matches!(
        result,
        Err(RetryError::Exhausted { attempts: 6, .. })
    ));
}

#[test]
fn jitter_stays_within_bounds() {
    let policy = RetryPolicy::default();
    let nominal = policy.backoff(3);
    assert_eq!(nominal, secs(2));
    let mut rng = JitterRng::from_os();
    let draws: Vec<Duration> = (0..10_000)
        .map(|_| policy.delay_after(3, None, rng.next_unit()))
        .collect();
    let (low, high) = (millis(1_600), millis(2_400));
    assert!(draws.iter().all(|delay| (low..=high).contains(delay)));
    // The draws use the whole band, not one corner of it.
    let min = draws.iter().min().unwrap();
    let max = draws.iter().max().unwrap();
    assert!(
        *min < millis(1_650) && *max > millis(2_350),
        "{min:?}..{max:?}"
    );
    // The extremes of a draw are exactly ±20 %.
    assert_eq!(policy.delay_after(3, None, -1.0), low);
    assert_eq!(policy.delay_after(3, None, 1.0), high);
}

#[test]
fn jitter_never_exceeds_max_delay() {
    let policy = RetryPolicy::default();
    let mut rng = JitterRng::from_os();
    for _ in 0..1_000 {
        let delay = policy.delay_after(20, None, rng.next_unit());
        assert!((secs(24)..=secs(30)).contains(&delay), "{delay:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_sleeps_are_jittered() {
    let policy = RetryPolicy {
        max_attempts: 8,
        ..RetryPolicy::default()
    };
    let (_, calls) = run(&policy, None, |_| Err(Failure::Unavailable)).await;
    let gaps = gaps(&calls);
    assert_eq!(gaps.len(), 7);
    for (index, gap) in gaps.iter().enumerate() {
        let nominal = policy.backoff(u32::try_from(index).unwrap() + 1);
        assert!(
            *gap >= nominal.mul_f64(0.8) && *gap <= nominal.mul_f64(1.2).min(policy.max_delay),
            "gap {index} was {gap:?} around {nominal:?}"
        );
    }
    let nominal: Vec<Duration> = (1..=7).map(|attempt| policy.backoff(attempt)).collect();
    assert_ne!(gaps, nominal, "no jitter was applied");
}

/// The server's `Retry-After` is a floor on the wait: it replaces a shorter backoff, may
/// exceed `max_delay` up to `max_retry_after`, and never shortens a longer backoff.
#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_instead_of_the_backoff() {
    let cases = [
        // (base_delay, retry_after, expected wait)
        (millis(500), secs(7), secs(7)),
        (millis(500), secs(120), secs(120)),
        (secs(2), millis(100), secs(2)),
    ];
    for (base_delay, retry_after, expected) in cases {
        let policy = RetryPolicy {
            base_delay,
            ..exact(4)
        };
        let (result, calls) = run(&policy, None, |attempt| match attempt {
            1 => Err(Failure::RateLimited(retry_after)),
            _ => Ok(attempt),
        })
        .await;
        assert_eq!(result.unwrap(), 2);
        assert_eq!(gaps(&calls), [expected], "Retry-After {retry_after:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_too_long_retry_after_gives_up_at_once() {
    let start = Instant::now();
    let (result, calls) = run(&exact(4), None, |_| Err(Failure::RateLimited(secs(121)))).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
    let error = result.unwrap_err();
    assert_eq!(error.retry_after(), Some(secs(121)));
    match error {
        RetryError::Exhausted { attempts, last } => {
            assert_eq!(attempts, 1);
            assert_eq!(last, Failure::RateLimited(secs(121)));
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_not_retried() {
    let start = Instant::now();
    let (result, calls) = run(&exact(4), None, |_| Err(Failure::BadRequest)).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(start.elapsed(), Duration::ZERO);
    let error = result.unwrap_err();
    assert!(matches!(error, RetryError::Permanent(Failure::BadRequest)));
    assert_eq!(error.retry_after(), None);
    assert_eq!(error.to_string(), "bad request");
}

#[tokio::test(start_paused = true)]
async fn exhaustion_returns_the_last_error() {
    let (result, calls) = run(&exact(4), None, |attempt| match attempt {
        4 => Err(Failure::RateLimited(secs(1))),
        _ => Err(Failure::Unavailable),
    })
    .await;
    assert_eq!(calls.len(), 4);
    let error = result.unwrap_err();
    assert_eq!(
        error.to_string(),
        "gave up after 4 attempt(s): rate limited"
    );
    assert!(matches!(error, RetryError::Exhausted { attempts: 4, .. }));
    assert_eq!(error.last(), Some(&Failure::RateLimited(secs(1))));
    assert_eq!(error.into_last(), Some(Failure::RateLimited(secs(1))));
}

#[tokio::test(start_paused = true)]
async fn attempts_are_numbered_from_one_until_success() {
    let mut seen = Vec::new();
    let (result, _) = run(&exact(4), None, |attempt| {
        seen.push(attempt);
        if attempt < 3 {
            Err(Failure::Unavailable)
        } else {
            Ok(attempt * 10)
        }
    })
    .await;
    assert_eq!(result.unwrap(), 30);
    assert_eq!(seen, [1, 2, 3]);
}

#[test]
fn the_retry_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let (breaker, _clock) = breaker();
    let policy = RetryPolicy::default();
    let future = retry(&policy, Some(&breaker), |_| async {
        Err::<(), _>(Failure::Unavailable)
    });
    assert_send(&future);
}

const START_MS: i64 = 1_700_000_000_000;

fn breaker() -> (CircuitBreaker, ManualClock) {
    let clock = ManualClock::new(START_MS);
    let breaker = CircuitBreaker::new(BreakerConfig::default(), Arc::new(clock.clone()));
    (breaker, clock)
}

/// Moves the breaker's clock and tokio's paused clock forward together.
async fn pass(clock: &ManualClock, by: Duration) {
    clock.advance(i64::try_from(by.as_millis()).unwrap());
    tokio::time::advance(by).await;
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_refuses_and_closes_through_retry() {
    let (breaker, clock) = breaker();
    let once = exact(1);
    for _ in 0..5 {
        let (result, _) = run(&once, Some(&breaker), |_| Err(Failure::Unavailable)).await;
        assert!(matches!(result, Err(RetryError::Exhausted { .. })));
    }
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));

    // While open the operation is not called at all.
    pass(&clock, secs(30)).await;
    let (result, calls) = run(&exact(4), Some(&breaker), Ok).await;
    assert!(calls.is_empty());
    let error = result.unwrap_err();
    assert!(matches!(
        error,
        RetryError::BreakerOpen(BreakerOpen { retry_in }) if retry_in == secs(30)
    ));
    assert_eq!(error.last(), None);
    assert_eq!(error.retry_after(), Some(secs(30)));

    // After open_for, a failed trial re-opens it...
    pass(&clock, secs(30)).await;
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    let (result, calls) = run(&exact(4), Some(&breaker), |_| Err(Failure::Unavailable)).await;
    assert_eq!(calls.len(), 1);
    assert!(matches!(
        result,
        Err(RetryError::Exhausted { attempts: 1, .. })
    ));
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));

    // ...and a successful one closes it.
    pass(&clock, secs(60)).await;
    let (result, calls) = run(&exact(4), Some(&breaker), Ok).await;
    assert_eq!(result.unwrap(), 1);
    assert_eq!(calls.len(), 1);
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_through_retry_do_not_open_the_breaker() {
    let (breaker, _clock) = breaker();
    for _ in 0..10 {
        let (result, _) = run(&exact(4), Some(&breaker), |_| Err(Failure::BadRequest)).await;
        assert!(matches!(result, Err(RetryError::Permanent(_))));
    }
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
}

#[tokio::test(start_paused = true)]
async fn a_success_through_retry_resets_the_breaker_count() {
    let (breaker, _clock) = breaker();
    let (result, _) = run(&exact(5), Some(&breaker), |attempt| {
        if attempt < 5 {
            Err(Failure::Unavailable)
        } else {
            Ok(attempt)
        }
    })
    .await;
    assert_eq!(result.unwrap(), 5);
    assert_eq!(breaker.state(), BreakerState::Closed { failures: 0 });
}

#[tokio::test(start_paused = true)]
async fn the_loop_stops_when_its_own_failures_open_the_breaker() {
    let (breaker, _clock) = breaker();
    let start = Instant::now();
    let (result, calls) = run(&exact(10), Some(&breaker), |_| Err(Failure::Unavailable)).await;
    assert_eq!(calls.len(), 5);
    // Four backoffs, and no sleep towards a refusal after the fifth failure.
    assert_eq!(start.elapsed(), millis(7_500));
    assert!(matches!(
        result,
        Err(RetryError::Exhausted {
            attempts: 5,
            last: Failure::Unavailable
        })
    ));
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
}

#[tokio::test(start_paused = true)]
async fn a_breaker_opened_by_others_during_the_sleep_ends_with_the_last_error() {
    let (breaker, _clock) = breaker();
    let others = breaker.clone();
    let other_callers = tokio::spawn(async move {
        tokio::time::sleep(millis(100)).await;
        // With the retried call's own failure, these four make five.
        for _ in 0..4 {
            others
                .try_acquire()
                .unwrap()
                .failed(FailureKind::Transient { retry_after: None });
        }
    });
    let (result, calls) = run(&exact(4), Some(&breaker), |attempt| match attempt {
        1 => Err(Failure::RateLimited(secs(1))),
        _ => Ok(attempt),
    })
    .await;
    other_callers.await.unwrap();
    assert!(matches!(breaker.state(), BreakerState::Open { .. }));
    assert_eq!(calls.len(), 1);
    let error = result.unwrap_err();
    assert!(matches!(error, RetryError::Exhausted { attempts: 1, .. }));
    assert_eq!(error.into_last(), Some(Failure::RateLimited(secs(1))));
}
