//! Wall-clock and monotonic time at one moment.

use std::time::Duration;

use tokio::time::Instant;

/// How much slower than its usual a run or a phase must be before its
/// latency says anything: tokio's timer counts in milliseconds, and a busy
/// machine's scheduler delays a run by as much. A latency closer than this
/// to its median is never an outlier, and never a slowdown to roll back,
/// however tight the usual spread: a healthy workflow that runs in
/// microseconds would otherwise be flagged (and its phases rolled back)
/// for its jitter.
pub(crate) const LATENCY_NOISE: Duration = Duration::from_millis(1);

/// Converts between the monotonic clock runs are timed with and the wall
/// clock stored runs carry, at one moment.
pub(crate) struct Clock {
    pub(crate) instant: Instant,
    pub(crate) unix_ms: u64,
}

impl Clock {
    /// The wall-clock time `ago` before this moment, in milliseconds since
    /// the Unix epoch.
    pub(crate) fn unix_ms_ago(&self, ago: Duration) -> u64 {
        self.unix_ms
            .saturating_sub(u64::try_from(ago.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn now() -> Self {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            instant: Instant::now(),
            unix_ms,
        }
    }

    /// The wall-clock time of `at`, an instant at or before this moment,
    /// in milliseconds since the Unix epoch.
    pub(crate) fn unix_ms_of(&self, at: Instant) -> u64 {
        self.unix_ms_ago(self.instant.saturating_duration_since(at))
    }
}
