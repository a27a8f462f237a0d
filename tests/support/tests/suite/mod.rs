//! The scripted model's tests, one module per concern.

mod capture;
mod http;
mod invariants;
mod lifecycle;
mod replies;
