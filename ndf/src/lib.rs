//! # ndf — the Natural Delegation Framework
//!
//! Mark async functions as steps with [`#[pattern]`](macro@pattern), compose
//! them with [`sequential!`], and run the result with [`Ndf`]: retries with
//! backoff, per-attempt timeouts, fallbacks, compensation, permission checks
//! and learning, with mistakes in how steps fit together caught by the
//! compiler.
//!
//! ```
//! use ndf::prelude::*;
//!
//! #[pattern(retries = 2)]
//! async fn fetch(id: u32) -> Result<String, StepError> { Ok(format!("record {id}")) }
//!
//! #[pattern]
//! async fn shout(s: String) -> String { s.to_uppercase() }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), ndf::Error> {
//! let ndf = Ndf::builder().build()?;
//! let flow = sequential!(name = "demo.fetch_and_shout"; fetch => shout);
//! let out = ndf.run(&flow, 7, &PatternContext::new("demo")).await?;
//! assert_eq!(out, "RECORD 7");
//! # Ok(()) }
//! ```

//! # Features
//!
//! - `prometheus`: `ndf::serve_prometheus` installs a Prometheus recorder
//!   and serves `/metrics` (`serve_prometheus_with_buckets` chooses the
//!   buckets of `ndf_run_duration_seconds`).
//! - `dashboard`: `Ndf::serve_dashboard` serves the dashboard page and its
//!   JSON (`DashboardOptions`, `DashboardHandle`).
//!
//! - `tower`: `Ndf::service` makes a workflow a `tower::Service`
//!   (`WorkflowService`).
//!
//! None is on by default.

#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use ndf_macros::{degrade, orchestrate, parallel, pattern, sequential};
#[cfg(feature = "tower")]
pub use ndf_runtime::WorkflowService;
pub use ndf_runtime::{
    Alert, AlertKind, AlertSink, BreakerState, Bulkhead, Classify, Confidence, Config, ConfigError,
    Cx, Dashboard, DashboardQuery, DomainPreset, Durability, DynWorkflow, Environment, Error,
    ErrorClass, Evidence, ExposeSecret, FAILING_MARGIN, HEALTHY_MARGIN, Hedge, HistogramBin,
    IdleProbe, LearningStore, MemberBreaker, MemoryStore, Ndf, NdfBuilder, OUTLIER_LOG_INTERVAL,
    OVERFLOW_DOMAIN, Overview, PatternContext, PatternPanel, PatternReport, PatternStats,
    Percentiles, PhaseRule, Prior, Priority, REDACTED, Rate, RecentRun, Report, ResourceProbe,
    ResourceUsage, Resources, ResponseSeries, RetryPolicy, RunLog, SecretString, Shape,
    SlidingWindow, SqliteStore, Step, StepError, StepMeta, StepRecord, StoreError, StoredBreaker,
    StoredPoint, StoredStats, SysinfoProbe, TaskResults, TimelinePoint, TracingSink, Usage,
    WindowBreaker, Workflow, describe_metrics, is_secret_key,
};
#[cfg(feature = "dashboard")]
pub use ndf_runtime::{DashboardHandle, DashboardOptions};
#[cfg(feature = "postgres")]
pub use ndf_runtime::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "fleet")]
pub use ndf_runtime::{QueueWorker, RunOutcome, RunQueue, RunStatus};
#[cfg(feature = "prometheus")]
pub use ndf_runtime::{RUN_DURATION_BUCKETS, serve_prometheus, serve_prometheus_with_buckets};

/// Everything a user of ndf imports: `use ndf::prelude::*;`.
pub mod prelude {
    pub use crate::{
        Classify, Config, Environment, ErrorClass, MemoryStore, Ndf, PatternContext, Priority,
        StepError, TaskResults, Workflow, degrade, orchestrate, parallel, pattern, sequential,
    };
}

/// Not public API: what generated code names. It changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use ndf_runtime::macro_support::*;
}

/// The README's examples are doctests, so its quick start keeps compiling.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
