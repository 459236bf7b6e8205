//! Runtime of ndf: the traits generated code targets, the executor
//! ([`Ndf`]), policies, learning and stores.
//!
//! Users depend on the `ndf` facade, which re-exports everything here.

mod config;
mod context;
mod error;
mod exec;
mod flow;
mod flush;
mod gating;
mod join;
mod learning;
mod ndf;
mod order;
mod policy;
mod registry;
mod security;
mod step;
mod store;
mod telemetry;

#[doc(hidden)]
pub mod macro_support;

pub use config::{Config, DomainPreset, Environment};
pub use context::{PatternContext, Priority};
pub use error::{Classify, ConfigError, Error, ErrorClass, StepError, StoreError};
pub use exec::Cx;
pub use flow::PhaseRule;
pub use gating::{IdleProbe, ResourceProbe, ResourceUsage, SysinfoProbe};
pub use learning::{
    BreakerState, Confidence, Evidence, FAILING_MARGIN, HEALTHY_MARGIN, OVERFLOW_DOMAIN,
    PatternStats, Prior, RunLog, StepRecord, StoredBreaker,
};
pub use ndf::{Ndf, NdfBuilder};
pub use policy::RetryPolicy;
pub use secrecy::{ExposeSecret, SecretString};
pub use security::{REDACTED, is_secret_key};
pub use step::{Shape, Step, StepMeta, Workflow};
pub use store::{LearningStore, MemoryStore, RecentRun, SqliteStore, StoredStats};
#[cfg(feature = "prometheus")]
pub use telemetry::serve_prometheus;
pub use telemetry::{
    Alert, AlertKind, AlertSink, Dashboard, HistogramBin, Overview, PatternPanel, PatternReport,
    Percentiles, Report, Resources, ResponseSeries, StoredPoint, TimelinePoint, TracingSink, Usage,
};
#[cfg(feature = "dashboard")]
pub use telemetry::{DashboardHandle, DashboardOptions};
