//! Latency outliers in the log without a flood: the first of a workflow
//! in a domain is logged at once, the others of its interval counted and
//! logged as one line when the interval is over.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// How long the outliers of a workflow in a domain are counted before
/// one line says how many there were: the first is logged at once, the
/// rest of its interval in one line.
pub const OUTLIER_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The outliers of one workflow in one domain, since its interval began.
#[derive(Debug)]
struct OutlierCount {
    pattern: &'static str,
    domain: Arc<str>,
    since: Instant,
    /// The first outlier of the interval, not logged yet.
    first: Option<Duration>,
    /// Outliers after the first, not logged yet, and the worst of them.
    more: u64,
    worst: Duration,
}

/// The workflows (in a domain) whose outliers the log has room for when
/// the runtime is made: their first outlier allocates nothing. A run's
/// latency depends on the machine, so any warm run may be an outlier.
const OUTLIERS_KEPT: usize = 8;

/// The latency outliers waiting to be logged.
#[derive(Debug)]
pub(super) struct Outliers {
    counts: Vec<OutlierCount>,
    /// When the earliest interval with outliers to report ends.
    pub(super) due: Option<Instant>,
}

impl Default for Outliers {
    fn default() -> Self {
        Self {
            counts: Vec::with_capacity(OUTLIERS_KEPT),
            due: None,
        }
    }
}

impl Outliers {
    pub(super) fn note(
        &mut self,
        pattern: &'static str,
        domain: &Arc<str>,
        latency: Duration,
        now: Instant,
    ) {
        let found = self
            .counts
            .iter_mut()
            .find(|c| std::ptr::eq(c.pattern, pattern) && *c.domain == **domain);
        match found {
            Some(c) => {
                c.more += 1;
                c.worst = c.worst.max(latency);
                let ends = c.since + OUTLIER_LOG_INTERVAL;
                self.due = Some(self.due.map_or(ends, |due| due.min(ends)));
            }
            None => self.counts.push(OutlierCount {
                pattern,
                domain: Arc::clone(domain),
                since: now,
                first: Some(latency),
                more: 0,
                worst: Duration::ZERO,
            }),
        }
    }

    /// Logs the first outliers at once and the counts of the intervals
    /// that ended; forgets the workflows whose interval ended quietly.
    /// Whether anything is left to log later.
    pub(super) fn log(&mut self, now: Instant) -> bool {
        let due = self.due.is_some_and(|due| now >= due);
        let mut next_due: Option<Instant> = None;
        self.counts.retain_mut(|c| {
            if let Some(latency) = c.first.take() {
                tracing::warn!(target: "ndf::outlier", pattern = c.pattern, domain = &*c.domain, latency = ?latency, "latency outlier");
            }
            let ended = now.saturating_duration_since(c.since) >= OUTLIER_LOG_INTERVAL;
            if ended && c.more > 0 && due {
                tracing::warn!(
                    target: "ndf::outlier",
                    pattern = c.pattern,
                    domain = &*c.domain,
                    count = c.more,
                    worst = ?c.worst,
                    "latency outliers: {} more in the last {:?}",
                    c.more,
                    now.saturating_duration_since(c.since)
                );
                c.more = 0;
                c.worst = Duration::ZERO;
                c.since = now;
                return true;
            }
            if c.more > 0 {
                let ends = c.since + OUTLIER_LOG_INTERVAL;
                next_due = Some(next_due.map_or(ends, |d| d.min(ends)));
            }
            // An interval that ended without more outliers: the next one
            // is logged at once again.
            !ended || c.more > 0
        });
        self.due = next_due;
        next_due.is_some()
    }
}
