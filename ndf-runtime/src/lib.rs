//! Runtime of ndf: the traits generated code targets, the executor
//! ([`Ndf`]), policies, learning and stores.
//!
//! Users depend on the `ndf` facade, which re-exports everything here.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The layers, each importing only those listed above it (checked by
// `tests/layers.rs`):
// the leaves and the model: plain data every layer shares,
mod context;
mod deadline;
mod error;
mod model;
mod order;
mod policy;
mod security;
mod stripes;
// the services,
mod config;
mod gating;
mod learning;
mod store;
mod telemetry;
// the run path,
mod exec;
// the runtime.
mod runtime;

#[doc(hidden)]
pub mod macro_support;

pub use config::{Config, DomainPreset, Environment};
pub use context::{PatternContext, Priority};
pub use error::{Classify, ConfigError, Error, ErrorClass, StepError, StoreError};
pub use exec::{Cx, PhaseRule, Step, TaskResults, Workflow};
pub use gating::{IdleProbe, ResourceProbe, ResourceUsage, SysinfoProbe};
pub use learning::{FAILING_MARGIN, HEALTHY_MARGIN, OVERFLOW_DOMAIN};
pub use model::{
    BreakerState, Bulkhead, Confidence, Evidence, Hedge, MemberBreaker, PatternStats, Prior, Rate,
    RecentRun, RunLog, Shape, SlidingWindow, StepMeta, StepRecord, StoredBreaker, StoredPoint,
    StoredStats, TimelinePoint, WindowBreaker,
};
pub use policy::RetryPolicy;
#[cfg(feature = "tower")]
pub use runtime::WorkflowService;
pub use runtime::{DynWorkflow, Ndf, NdfBuilder};
#[cfg(feature = "fleet")]
pub use runtime::{QueueWorker, RunOutcome, RunQueue, RunStatus};
pub use secrecy::{ExposeSecret, SecretString};
pub use security::{REDACTED, is_secret_key};
pub use store::{Durability, LearningStore, MemoryStore, SqliteStore};
#[cfg(feature = "postgres")]
pub use store::{PostgresStore, PostgresStoreBuilder};
pub use telemetry::{
    Alert, AlertKind, AlertSink, Dashboard, DashboardQuery, HistogramBin, OUTLIER_LOG_INTERVAL,
    Overview, PatternPanel, PatternReport, Percentiles, Report, Resources, ResponseSeries,
    TracingSink, Usage, describe_metrics,
};
#[cfg(feature = "dashboard")]
pub use telemetry::{DashboardHandle, DashboardOptions};
#[cfg(feature = "prometheus")]
pub use telemetry::{RUN_DURATION_BUCKETS, serve_prometheus, serve_prometheus_with_buckets};
