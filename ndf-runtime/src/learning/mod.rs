//! What the runtime learns from every run.

mod confidence;
mod gates;
mod outliers;
mod record;
mod reporting;
mod stats;

pub use confidence::{Confidence, Evidence, Prior};
pub(crate) use gates::GateQuery;
pub(crate) use record::StepOutcome;
pub use record::{RunLog, StepRecord};
pub(crate) use reporting::WorkflowReading;
pub use stats::PatternStats;
pub(crate) use stats::{Clock, RunRecord, StatsTable};
