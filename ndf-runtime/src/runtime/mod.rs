//! The runtime: [`Ndf`] and its builder, the workflows registered by name,
//! saving to the store, and the background tasks. The top layer: it wires
//! configuration, admission, learning, telemetry and the store together and
//! runs workflows through the run path (`exec`); nothing below imports it.

mod builder;
#[cfg(feature = "dashboard")]
mod dashboard;
mod dynamic;
mod inner;
mod ndf;
mod persist;
mod polled;
#[cfg(feature = "fleet")]
mod queue;
mod registry;
#[cfg(feature = "tower")]
mod service;
mod tasks;

pub use builder::NdfBuilder;
pub use dynamic::DynWorkflow;
pub use ndf::Ndf;
#[cfg(feature = "fleet")]
pub use queue::{QueueWorker, RunOutcome, RunQueue, RunStatus};
#[cfg(feature = "tower")]
pub use service::WorkflowService;
