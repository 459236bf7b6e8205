//! What the runtime tells its operators: alerts and reports.

mod alert;
mod metrics;
#[cfg(feature = "prometheus")]
mod prometheus;
mod report;

pub use alert::{Alert, AlertKind, AlertSink, TracingSink};
pub(crate) use alert::{AlertRules, AlertState, alert, percentile};
pub(crate) use metrics::EntryMetrics;
#[cfg(feature = "prometheus")]
pub use prometheus::serve_prometheus;
pub use report::{PatternReport, Percentiles, Report};
pub(crate) use report::{ReportRow, build};
