//! Resource gating: what the machine's load is, and holding back new work
//! while it is too high.

mod probe;

pub use probe::{IdleProbe, ResourceProbe, ResourceUsage};
