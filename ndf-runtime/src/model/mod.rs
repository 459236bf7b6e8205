//! The model: plain data every layer shares: what the macros know of a
//! step, what a run records, the counters and confidence learned of a
//! pattern, and what a store keeps. It imports nothing of the runtime but
//! the leaves (`error`, `policy`).

mod clock;
mod confidence;
mod gate;
mod record;
mod stats;
mod step;
mod stored;

pub(crate) use clock::{Clock, LATENCY_NOISE};
pub use confidence::{Confidence, Evidence, Prior};
pub use gate::{BreakerState, StoredBreaker};
pub(crate) use record::{RunEnd, StepOutcome};
pub use record::{RunLog, StepRecord};
pub use stats::PatternStats;
pub use step::{Bulkhead, Hedge, Rate, Shape, SlidingWindow, StepMeta, WindowBreaker};
pub use stored::{MemberBreaker, RecentRun, StoredPoint, StoredStats, TimelinePoint};
