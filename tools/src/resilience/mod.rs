//! Retries with backoff and a circuit breaker, shared by every client that talks to a remote
//! service (the inference client, the Conway platform client).
//!
//! It knows nothing about HTTP: the caller says what a failure means by implementing
//! [`Classify`] for its error type, and this module decides whether to wait and try again
//! ([`retry`], [`RetryPolicy`]) or to stop calling an endpoint that keeps failing
//! ([`CircuitBreaker`]). Failover to another endpoint is the caller's decision; keep one
//! breaker per endpoint so one provider's outage does not refuse calls to the next.
//!
//! The retry loop is hand-written rather than taken from a crate (`backoff`, `tokio-retry`)
//! because it has to honour a server's `Retry-After`, give up when that wait is too long,
//! and report every attempt to the breaker; the crates would need adapters for all three.

mod breaker;
mod retry;

pub use breaker::{BreakerConfig, BreakerOpen, BreakerPermit, BreakerState, CircuitBreaker};
pub use retry::{RetryError, RetryPolicy, retry};

use std::time::{Duration, SystemTime};

/// The wait a `Retry-After` header value asks for (RFC 9110 §10.2.3): delay-seconds (`120`),
/// or an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`, and the two obsolete forms), counted
/// from `now`; a date already past asks for no wait. `None` when the value is neither, so
/// the caller falls back to its own backoff. Every client reads the header through this one
/// parser, so a provider and the platform honour a server's date the same way.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What a failed call says about trying it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The same request may succeed later: 429, 5xx, connection errors, timeouts.
    Transient {
        /// How long the server asked us to wait (`Retry-After`), when it said.
        retry_after: Option<Duration>,
    },
    /// The same request will fail again: 4xx other than 429, bad input.
    Permanent,
}

/// Implemented by a caller's error type so [`retry`] and [`CircuitBreaker`] can tell a
/// passing outage from a request that can never succeed.
pub trait Classify {
    /// Whether this failure is worth retrying, and after how long the server asked.
    fn failure_kind(&self) -> FailureKind;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_each_http_date_form() {
        // 2015-10-21T07:28:00Z
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        let now = at - Duration::from_secs(90);
        let cases: &[(&str, Option<Duration>)] = &[
            ("120", Some(Duration::from_secs(120))),
            (" 0 ", Some(Duration::ZERO)),
            (
                "Wed, 21 Oct 2015 07:28:00 GMT",
                Some(Duration::from_secs(90)),
            ),
            (
                "Wednesday, 21-Oct-15 07:28:00 GMT",
                Some(Duration::from_secs(90)),
            ),
            ("Wed Oct 21 07:28:00 2015", Some(Duration::from_secs(90))),
            ("Wed, 21 Oct 2015 07:26:00 GMT", Some(Duration::ZERO)),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now), *expected, "{value:?}");
        }
    }
}
