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

use std::time::Duration;

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
