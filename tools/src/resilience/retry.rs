//! The retry loop: exponential backoff with jitter, a server's `Retry-After` honoured, and
//! every attempt reported to the endpoint's [`CircuitBreaker`].

use std::time::Duration;

use super::{BreakerOpen, BreakerState, CircuitBreaker, Classify, FailureKind};

/// How often and how patiently to retry a transient failure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Calls in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The wait after the first failure; it doubles after each further one.
    pub base_delay: Duration,
    /// The longest backoff, jitter included. A server's `Retry-After` may exceed it, up to
    /// `max_retry_after`.
    pub max_delay: Duration,
    /// Spread of each backoff as a fraction: 0.2 draws it from ±20 % (clamped to 0..=1).
    pub jitter: f64,
    /// The longest `Retry-After` worth waiting for; a server asking for more makes
    /// [`retry`] give up at once so the caller can fail over or report the wait.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            jitter: 0.2,
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The backoff before jitter after `failed_attempt` (from 1) failed:
    /// `base_delay * 2^(failed_attempt - 1)`, capped at `max_delay`.
    pub fn backoff(&self, failed_attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(failed_attempt.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait after `failed_attempt` failed: the backoff spread by `unit` (in -1..=1) times
    /// the jitter and capped at `max_delay`, but never shorter than the server's
    /// `retry_after`. The server's figure is a floor, not a replacement, so a server that
    /// keeps answering `Retry-After: 0` still gets the backoff.
    fn delay_after(
        &self,
        failed_attempt: u32,
        retry_after: Option<Duration>,
        unit: f64,
    ) -> Duration {
        let backoff = self.backoff(failed_attempt);
        let spread = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let factor = 1.0 + spread * unit.clamp(-1.0, 1.0);
        // Skipping the float round trip at factor 1 keeps zero-jitter waits exact.
        let jittered = if factor == 1.0 {
            backoff
        } else {
            Duration::try_from_secs_f64(backoff.as_secs_f64() * factor).unwrap_or(backoff)
        };
        jittered
            .min(self.max_delay)
            .max(retry_after.unwrap_or(Duration::ZERO))
    }
}

/// Why [`retry`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum RetryError<E> {
    /// Every attempt failed transiently, or retrying was pointless: the server asked for a
    /// wait longer than `max_retry_after` (see [`RetryError::retry_after`]) or the breaker
    /// opened. `last` is the final attempt's error.
    #[error("gave up after {attempts} attempt(s): {last}")]
    Exhausted {
        /// How many times the operation was called.
        attempts: u32,
        /// The last attempt's error.
        last: E,
    },
    /// The operation failed in a way that retrying cannot fix; it was not retried.
    #[error("{0}")]
    Permanent(E),
    /// The endpoint's breaker refused the first attempt; the operation was never called.
    #[error(transparent)]
    BreakerOpen(BreakerOpen),
}

impl<E> RetryError<E> {
    /// The last error the operation returned; `None` when it was never called.
    pub fn last(&self) -> Option<&E> {
        match self {
            Self::Exhausted { last, .. } | Self::Permanent(last) => Some(last),
            Self::BreakerOpen(_) => None,
        }
    }

    /// The last error the operation returned, by value; `None` when it was never called.
    pub fn into_last(self) -> Option<E> {
        match self {
            Self::Exhausted { last, .. } | Self::Permanent(last) => Some(last),
            Self::BreakerOpen(_) => None,
        }
    }
}

impl<E: Classify> RetryError<E> {
    /// How long until trying again may help, when known: the server's `Retry-After` on the
    /// last error, or the time until the breaker lets a trial through.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Exhausted { last, .. } => match last.failure_kind() {
                FailureKind::Transient { retry_after } => retry_after,
                FailureKind::Permanent => None,
            },
            Self::Permanent(_) => None,
            Self::BreakerOpen(open) => Some(open.retry_in),
        }
    }
}

/// Calls `op` (with the attempt number, from 1) until it succeeds, fails permanently, or
/// `policy` says to stop, sleeping between attempts on tokio's clock. With a `breaker`, each
/// attempt asks it first and reports its outcome to it; once the breaker is open the loop
/// stops instead of sleeping towards a refusal.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    breaker: Option<&CircuitBreaker>,
    mut op: F,
) -> Result<T, RetryError<E>>
where
    E: Classify,
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let max_attempts = policy.max_attempts.max(1);
    // Seeded only when a retry is actually needed, so the happy path makes no syscall.
    let mut rng: Option<JitterRng> = None;
    let mut previous: Option<E> = None;
    let mut attempt = 1;
    loop {
        let permit = match breaker.map(CircuitBreaker::try_acquire).transpose() {
            Ok(permit) => permit,
            // Another caller's failures may have opened the breaker while we slept.
            Err(open) => {
                return Err(match previous {
                    None => RetryError::BreakerOpen(open),
                    Some(last) => RetryError::Exhausted {
                        attempts: attempt - 1,
                        last,
                    },
                });
            }
        };
        let error = match op(attempt).await {
            Ok(value) => {
                if let Some(permit) = permit {
                    permit.succeeded();
                }
                return Ok(value);
            }
            Err(error) => error,
        };
        let kind = error.failure_kind();
        if let Some(permit) = permit {
            permit.failed(kind);
        }
        let retry_after = match kind {
            FailureKind::Permanent => return Err(RetryError::Permanent(error)),
            FailureKind::Transient { retry_after } => retry_after,
        };
        if attempt >= max_attempts {
            return Err(RetryError::Exhausted {
                attempts: attempt,
                last: error,
            });
        }
        if let Some(wait) = retry_after
            && wait > policy.max_retry_after
        {
            tracing::warn!(
                attempt,
                retry_after_ms = wait.as_millis(),
                max_retry_after_ms = policy.max_retry_after.as_millis(),
                "server asked for a longer wait than allowed; giving up"
            );
            return Err(RetryError::Exhausted {
                attempts: attempt,
                last: error,
            });
        }
        if let Some(breaker) = breaker
            && let BreakerState::Open { .. } = breaker.state()
        {
            tracing::warn!(attempt, "circuit breaker is open; giving up");
            return Err(RetryError::Exhausted {
                attempts: attempt,
                last: error,
            });
        }
        let unit = rng.get_or_insert_with(JitterRng::from_os).next_unit();
        let delay = policy.delay_after(attempt, retry_after, unit);
        tracing::warn!(
            attempt,
            delay_ms = delay.as_millis(),
            retry_after_ms = retry_after.map(|wait| wait.as_millis()),
            "transient failure; retrying"
        );
        tokio::time::sleep(delay).await;
        previous = Some(error);
        attempt += 1;
    }
}

/// A xorshift64* generator for jitter. Jitter only has to keep clients that failed together
/// from retrying together, so statistical quality and unpredictability do not matter;
/// this avoids pulling in `rand` for a few draws per outage. The seed comes from the OS
/// (`getrandom`) so separate processes draw different sequences.
#[derive(Debug)]
struct JitterRng(u64);

impl JitterRng {
    fn from_os() -> Self {
        // Without OS randomness the draws still spread one client's retries; only the
        // de-correlation between processes is lost, which is no reason to fail a call.
        let seed = getrandom::u64().unwrap_or(0x9E37_79B9_7F4A_7C15);
        // xorshift's state must never be zero.
        Self(seed | 1)
    }

    /// A draw in -1..1.
    fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        // 53 bits convert to f64 exactly, giving a uniform draw in 0..1.
        let unit = bits as f64 / (1u64 << 53) as f64;
        unit * 2.0 - 1.0
    }
}

#[cfg(test)]
#[path = "retry_tests.rs"]
mod tests;
