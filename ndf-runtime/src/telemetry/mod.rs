//! What the runtime tells its operators: alerts and reports.

mod alert;
mod dashboard;
mod metrics;
#[cfg(feature = "prometheus")]
mod prometheus;
mod report;
mod timeline;

pub use alert::{Alert, AlertKind, AlertSink, TracingSink};
pub(crate) use alert::{AlertRules, AlertState, alert, percentile};
pub(crate) use dashboard::build as build_dashboard;
pub(crate) use dashboard::{DAY, Sources};
pub use dashboard::{
    Dashboard, HistogramBin, Overview, PatternPanel, Resources, ResponseSeries, Usage,
};
#[cfg(feature = "dashboard")]
pub use dashboard::{DashboardHandle, DashboardOptions};
pub(crate) use metrics::EntryMetrics;
#[cfg(feature = "prometheus")]
pub use prometheus::serve_prometheus;
pub use report::{PatternReport, Percentiles, Report};
pub(crate) use report::{ReportRow, build};
pub use timeline::{StoredPoint, TimelinePoint};
pub(crate) use timeline::{Timeline, start_sampler};
