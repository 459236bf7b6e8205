//! What the runtime learns from every run.

mod breaker;
mod confidence;
mod gates;
mod outliers;
mod pending;
mod record;
mod reporting;
mod stats;

pub use breaker::{BreakerState, FAILING_MARGIN, HEALTHY_MARGIN, StoredBreaker};
pub use confidence::{Confidence, Evidence, Prior};
pub(crate) use gates::GateQuery;
pub(crate) use pending::RunEnd;
pub(crate) use record::StepOutcome;
pub use record::{RunLog, StepRecord};
pub(crate) use reporting::WorkflowReading;
pub(crate) use stats::{Clock, Learned, RunRecord, StatsTable};
pub use stats::{OVERFLOW_DOMAIN, PatternStats};

/// Starts the learner when the runtime is built inside tokio: woken when
/// runs were left queued, it applies them after `learning_interval`. It
/// holds only a weak reference: it ends when the last `Ndf` is dropped.
pub(crate) fn start_learner(inner: &std::sync::Arc<crate::ndf::Inner>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let weak = std::sync::Arc::downgrade(inner);
    let wake = std::sync::Arc::clone(&inner.learning);
    let interval = inner.config.learning_interval;
    handle.spawn(async move {
        loop {
            wake.notified().await;
            tokio::time::sleep(interval).await;
            let Some(inner) = weak.upgrade() else { return };
            inner.learn(true);
        }
    });
}
