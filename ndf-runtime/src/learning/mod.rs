//! What the runtime learns from every run.

mod stats;

pub use stats::PatternStats;
pub(crate) use stats::StatsTable;
