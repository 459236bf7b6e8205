//! What the runtime learns from every run.

mod confidence;
mod outliers;
mod record;
mod stats;

pub use confidence::{Confidence, Evidence, Prior};
pub use record::{RunLog, StepRecord};
pub use stats::PatternStats;
pub(crate) use stats::{GateQuery, RunRecord, StatsTable};
