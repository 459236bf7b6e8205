//! Resource gating: what the machine's load is, and holding back new work
//! while it is too high.

mod admission;
mod budget;
mod lifecycle;
mod limits;
mod probe;
mod sysinfo;

pub(crate) use admission::{Admission, Limits};
pub(crate) use budget::RetryBudgets;
pub(crate) use lifecycle::{InFlight, Lifecycle};
pub use limits::{Held, LimitsCell, NoPlace, Place};
pub(crate) use limits::{Limited, RateTaken, StepLimits};
pub use probe::{IdleProbe, ResourceProbe, ResourceUsage};
pub use sysinfo::SysinfoProbe;
