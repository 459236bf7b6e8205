//! What the runtime tells its operators: alerts, metrics, the timeline,
//! reports and the dashboard, built from what learning observes and from
//! its read views. Nothing here reaches back into the runtime.

mod alert;
mod alert_state;
mod dashboard;
mod metrics;
mod monitor;
mod outlier_log;
#[cfg(feature = "prometheus")]
mod prometheus;
mod report;
mod timeline;

pub use alert::{Alert, AlertKind, AlertSink, TracingSink};
pub(crate) use alert::{AlertBoard, percentile};
pub(crate) use dashboard::build as build_dashboard;
pub(crate) use dashboard::{DAY, Sources};
pub use dashboard::{
    Dashboard, DashboardQuery, HistogramBin, Overview, PatternPanel, Resources, ResponseSeries,
    Usage,
};
#[cfg(feature = "dashboard")]
pub use dashboard::{DashboardHandle, DashboardOptions};
#[cfg(feature = "dashboard")]
pub(crate) use dashboard::{DashboardSource, router, serve};
pub use metrics::describe_metrics;
pub(crate) use metrics::store_failed;
pub(crate) use monitor::Monitor;
pub use outlier_log::OUTLIER_LOG_INTERVAL;
#[cfg(feature = "prometheus")]
pub use prometheus::{RUN_DURATION_BUCKETS, serve_prometheus, serve_prometheus_with_buckets};
pub(crate) use report::build;
pub use report::{PatternReport, Percentiles, Report};
pub(crate) use timeline::Timeline;
