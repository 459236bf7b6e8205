//! What the runtime learns from every run: counters, confidence and the
//! breaker of every pattern in every domain, judged at the start of a run
//! and learned at its end. What learning observes goes to an
//! [`Observer`]; learning itself raises no alert and touches no metric.

mod breaker;
mod entry;
mod fleet;
mod gates;
mod observe;
mod outliers;
mod pending;
mod persist;
mod phases;
mod recent;
mod reporting;
mod sliding;
mod slot;
mod table;
mod views;
mod windows;

pub(crate) use breaker::Transition;
pub use breaker::{FAILING_MARGIN, HEALTHY_MARGIN};
pub(crate) use entry::Learned;
pub use entry::OVERFLOW_DOMAIN;
pub(crate) use gates::{Blocked, GateQuery};
pub(crate) use observe::{BreakerChange, Observer, RunObservation, StepObservation};
pub(crate) use reporting::{InWindow, ReportRow, WorkflowReading};
pub(crate) use table::{RunRecord, StatsTable};
