//! Per-step policies: retry with backoff, per-attempt timeout.

mod retry;
mod timeout;

pub use retry::RetryPolicy;
pub(crate) use timeout::{Timer, deadline_from};
