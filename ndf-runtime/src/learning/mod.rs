//! What the runtime learns from every run.

mod record;
mod stats;

pub use record::{RunLog, StepRecord};
pub use stats::PatternStats;
pub(crate) use stats::StatsTable;
