//! The circuit breaker: after enough consecutive transient failures an endpoint is left
//! alone for a while, so a dead server is not hammered and callers fail over at once.
//!
//! Time is read from the injected [`Clock`]. Every call goes through a [`BreakerPermit`];
//! the permit records the outcome when it is dropped, so a call that is cancelled mid-way
//! (its future dropped) can never leave a half-open breaker waiting for a trial that will
//! not report back.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::clock::Clock;

use super::FailureKind;

/// When a [`CircuitBreaker`] opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Consecutive transient failures that open the breaker (at least 1).
    pub threshold: u32,
    /// How long the breaker stays open before it lets one trial call through.
    pub open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            threshold: 5,
            open_for: Duration::from_secs(60),
        }
    }
}

/// A breaker's state, for status displays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through; `failures` consecutive transient failures so far.
    Closed {
        /// Consecutive transient failures since the last success.
        failures: u32,
    },
    /// Calls are refused until `until_ms` (epoch milliseconds on the breaker's clock).
    Open {
        /// When the breaker turns half-open.
        until_ms: i64,
    },
    /// The next call is a trial: success closes the breaker, a transient failure re-opens it.
    HalfOpen,
}

/// A call refused because the breaker is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("circuit breaker open; retry in {} ms", retry_in.as_millis())]
pub struct BreakerOpen {
    /// How long until the breaker lets a trial call through; zero while another caller's
    /// half-open trial is still running (the breaker decides as soon as it finishes).
    pub retry_in: Duration,
}

/// A circuit breaker for one endpoint. Clones share the same state.
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    clock: Arc<dyn Clock>,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    phase: Phase,
    /// Bumped on every phase change, so an outcome from a call admitted under an earlier
    /// phase (say, a slow call that started before the breaker opened) is ignored.
    generation: u64,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    Closed { failures: u32 },
    Open { until_ms: i64 },
    HalfOpen { trial_in_flight: bool },
}

/// What a finished call tells the breaker.
#[derive(Debug, Clone, Copy)]
enum Outcome {
    Success,
    TransientFailure,
    /// A permanent failure or a call dropped before it finished: says nothing about the
    /// server's health.
    Neutral,
}

impl Inner {
    fn set(&mut self, phase: Phase) {
        self.phase = phase;
        self.generation = self.generation.wrapping_add(1);
    }

    /// Turns an open breaker whose time is up into a half-open one.
    fn settle(&mut self, now_ms: i64) {
        if let Phase::Open { until_ms } = self.phase
            && now_ms >= until_ms
        {
            self.set(Phase::HalfOpen {
                trial_in_flight: false,
            });
        }
    }
}

impl CircuitBreaker {
    /// A closed breaker reading time from `clock`.
    pub fn new(config: BreakerConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            clock,
            inner: Arc::new(Mutex::new(Inner {
                phase: Phase::Closed { failures: 0 },
                generation: 0,
            })),
        }
    }

    /// The current state, with an expired open period already turned half-open.
    pub fn state(&self) -> BreakerState {
        let now_ms = self.clock.now_ms();
        let mut inner = self.lock();
        inner.settle(now_ms);
        match inner.phase {
            Phase::Closed { failures } => BreakerState::Closed { failures },
            Phase::Open { until_ms } => BreakerState::Open { until_ms },
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Asks to make one call. While open (or while another caller's half-open trial runs)
    /// the call is refused at once; otherwise the permit must see the call through and
    /// record its outcome.
    pub fn try_acquire(&self) -> Result<BreakerPermit, BreakerOpen> {
        let now_ms = self.clock.now_ms();
        let mut inner = self.lock();
        inner.settle(now_ms);
        match inner.phase {
            Phase::Closed { .. } => {}
            Phase::Open { until_ms } => {
                let retry_in = u64::try_from(until_ms.saturating_sub(now_ms)).unwrap_or(0);
                return Err(BreakerOpen {
                    retry_in: Duration::from_millis(retry_in),
                });
            }
            Phase::HalfOpen {
                trial_in_flight: true,
            } => {
                return Err(BreakerOpen {
                    retry_in: Duration::ZERO,
                });
            }
            Phase::HalfOpen {
                trial_in_flight: false,
            } => {
                // Taking the trial slot is not a phase change: the trial's outcome must
                // still match this generation.
                inner.phase = Phase::HalfOpen {
                    trial_in_flight: true,
                };
            }
        }
        Ok(BreakerPermit {
            breaker: self.clone(),
            generation: inner.generation,
            outcome: Outcome::Neutral,
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state is a few plain fields written in one statement each, so a panic
        // elsewhere cannot leave it half-updated; a poisoned lock is safe to reuse.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn record(&self, generation: u64, outcome: Outcome) {
        let now_ms = self.clock.now_ms();
        let mut inner = self.lock();
        if inner.generation != generation {
            return;
        }
        let open = Phase::Open {
            until_ms: now_ms.saturating_add(
                i64::try_from(self.config.open_for.as_millis()).unwrap_or(i64::MAX),
            ),
        };
        match (inner.phase, outcome) {
            (Phase::Closed { .. }, Outcome::Success) => {
                inner.phase = Phase::Closed { failures: 0 };
            }
            (Phase::Closed { failures }, Outcome::TransientFailure) => {
                let failures = failures.saturating_add(1);
                if failures >= self.config.threshold.max(1) {
                    tracing::warn!(
                        failures,
                        open_for_ms = self.config.open_for.as_millis(),
                        "circuit breaker opened"
                    );
                    inner.set(open);
                } else {
                    inner.phase = Phase::Closed { failures };
                }
            }
            (Phase::HalfOpen { .. }, Outcome::Success) => {
                tracing::info!("circuit breaker closed after a successful trial call");
                inner.set(Phase::Closed { failures: 0 });
            }
            (Phase::HalfOpen { .. }, Outcome::TransientFailure) => {
                tracing::warn!(
                    open_for_ms = self.config.open_for.as_millis(),
                    "circuit breaker re-opened after a failed trial call"
                );
                inner.set(open);
            }
            (Phase::HalfOpen { .. }, Outcome::Neutral) => {
                inner.phase = Phase::HalfOpen {
                    trial_in_flight: false,
                };
            }
            // A permit is only issued while closed or half-open, and every change to open
            // bumps the generation, so an open breaker never matches a live permit.
            (Phase::Closed { .. }, Outcome::Neutral) | (Phase::Open { .. }, _) => {}
        }
    }
}

/// Leave to make one call through a [`CircuitBreaker`]. Report how the call went with
/// [`succeeded`](Self::succeeded) or [`failed`](Self::failed); a permit dropped without
/// either (the call was cancelled) counts as neither and frees a half-open trial slot.
#[derive(Debug)]
#[must_use = "a permit records the call's outcome when dropped; report it with `succeeded` or `failed`"]
pub struct BreakerPermit {
    breaker: CircuitBreaker,
    generation: u64,
    outcome: Outcome,
}

impl BreakerPermit {
    /// The call succeeded: the failure count resets and a half-open breaker closes.
    pub fn succeeded(mut self) {
        self.outcome = Outcome::Success;
    }

    /// The call failed. Only a transient failure counts toward opening the breaker (or
    /// re-opens a half-open one); a permanent one says nothing about the server's health.
    pub fn failed(mut self, kind: FailureKind) {
        self.outcome = match kind {
            FailureKind::Transient { .. } => Outcome::TransientFailure,
            FailureKind::Permanent => Outcome::Neutral,
        };
    }
}

impl Drop for BreakerPermit {
    fn drop(&mut self) {
        self.breaker.record(self.generation, self.outcome);
    }
}

#[cfg(test)]
#[path = "breaker_tests.rs"]
mod tests;
