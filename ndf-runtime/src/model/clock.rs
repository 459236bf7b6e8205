//! Wall-clock and monotonic time at one moment.

use std::time::Duration;

use tokio::time::Instant;

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
