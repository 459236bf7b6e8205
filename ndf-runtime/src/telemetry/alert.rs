//! Alerts: raised when a pattern crosses a threshold, once per crossing,
//! and resolved when it is well clear of it again (hysteresis: a reading
//! that hovers at the threshold neither pages twice nor flaps).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::outlier_log::Outliers;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The 95th percentile of recent run latencies rose above the
    /// configured `latency_alert`.
    Latency,
    /// The success rate of recent runs fell below `1 - error_tolerance`.
    SuccessRate,
    /// The confidence fell below the pattern's threshold.
    Confidence,
}

/// A threshold crossed by a pattern in a domain.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Alert {
    /// The pattern (workflow or step).
    pub pattern: String,
    /// The domain of the runs.
    pub domain: String,
    /// Which threshold.
    pub kind: AlertKind,
    /// The reading that crossed it (seconds for latency, a fraction otherwise).
    pub value: f64,
    /// The threshold.
    pub threshold: f64,
    /// The alert in words.
    pub message: String,
}

/// Where alerts go. The default sink logs them with `tracing`: a warning
/// when an alert fires, an info line when it resolves.
pub trait AlertSink: Send + Sync + 'static {
    /// Delivers one alert that fired. Called outside the runtime's locks;
    /// keep it quick (hand the alert to a channel for slow delivery).
    fn send(&self, alert: &Alert);

    /// Delivers the resolution of an alert sent before: the condition has
    /// cleared, so an incident opened for it can close. `alert` has the
    /// pattern, domain, kind and threshold of the one that fired, the
    /// reading that cleared it and a message saying so. Called as
    /// [`AlertSink::send`] is; the default does nothing.
    fn resolve(&self, alert: &Alert) {
        let _ = alert;
    }
}

/// The default sink: a `tracing` warning per alert.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl AlertSink for TracingSink {
    fn send(&self, alert: &Alert) {
        tracing::warn!(
            target: "ndf::alert",
            pattern = %alert.pattern,
            domain = %alert.domain,
            kind = ?alert.kind,
            value = alert.value,
            threshold = alert.threshold,
            "{}",
            alert.message
        );
    }

    fn resolve(&self, alert: &Alert) {
        tracing::info!(
            target: "ndf::alert",
            pattern = %alert.pattern,
            domain = %alert.domain,
            kind = ?alert.kind,
            value = alert.value,
            threshold = alert.threshold,
            "resolved: {}",
            alert.message
        );
    }
}

/// The alerts raised and not cleared, and those not yet delivered. Learning
/// raises them under the statistics lock; whoever learned delivers them
/// to the sink after letting go of it.
#[derive(Debug)]
pub(crate) struct AlertBoard {
    active: Mutex<Vec<Alert>>,
    outbox: Mutex<Vec<Alert>>,
    /// Resolutions of alerts sent before, not yet delivered.
    resolved: Mutex<Vec<Alert>>,
    /// Latency outliers to log, kept to log them outside the statistics
    /// lock, counted per interval.
    outliers: Mutex<Outliers>,
    /// Breaker changes to log, outside the statistics lock.
    breakers: Mutex<Vec<BreakerEvent>>,
    /// Whether the outbox or the outliers hold anything: read on every
    /// run, locked rarely.
    waiting: AtomicBool,
    /// When counted outliers are due to be logged (nanoseconds after
    /// `epoch`; `u64::MAX`: none are counted).
    outliers_due: AtomicU64,
    epoch: Instant,
}

impl Default for AlertBoard {
    fn default() -> Self {
        Self {
            active: Mutex::default(),
            outbox: Mutex::default(),
            resolved: Mutex::default(),
            outliers: Mutex::default(),
            breakers: Mutex::default(),
            waiting: AtomicBool::new(false),
            outliers_due: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
        }
    }
}

/// A breaker's change of state, to be logged.
#[derive(Debug)]
pub(crate) struct BreakerEvent {
    pub(crate) pattern: String,
    pub(crate) domain: String,
    /// `open`, `open` again (`reopened`) or `closed`.
    pub(crate) to: &'static str,
    pub(crate) failures: u32,
    pub(crate) calls: u64,
}

impl AlertBoard {
    /// Raises `alert`: active until cleared, and delivered next.
    pub(crate) fn raise(&self, alert: Alert) {
        lock(&self.active).push(alert.clone());
        lock(&self.outbox).push(alert);
        self.waiting.store(true, Ordering::Release);
    }

    /// Clears the `kind` alert of `pattern` in `domain`, if it is raised:
    /// its resolution, with the reading `value` that cleared it and
    /// `message`, is delivered next.
    pub(crate) fn clear(
        &self,
        (pattern, domain): (&str, &str),
        kind: AlertKind,
        value: f64,
        message: &str,
    ) {
        let mut active = lock(&self.active);
        let Some(at) = active
            .iter()
            .position(|a| a.kind == kind && a.pattern == pattern && a.domain == domain)
        else {
            return;
        };
        let fired = active.swap_remove(at);
        drop(active);
        let resolution = alert((pattern, domain), kind, value, fired.threshold, message);
        lock(&self.resolved).push(resolution);
        self.waiting.store(true, Ordering::Release);
    }

    /// The alerts raised and not cleared since, by pattern and domain.
    pub(crate) fn active(&self) -> Vec<Alert> {
        let mut out = lock(&self.active).clone();
        out.sort_by(|a, b| (&a.pattern, &a.domain).cmp(&(&b.pattern, &b.domain)));
        out
    }

    /// Notes a latency outlier, to be logged by [`AlertBoard::deliver`]:
    /// the first of its workflow and domain at once, the others counted
    /// for [`OUTLIER_LOG_INTERVAL`](super::OUTLIER_LOG_INTERVAL) and logged as
    /// one line.
    pub(crate) fn outlier(&self, pattern: &'static str, domain: &Arc<str>, latency: Duration) {
        let now = Instant::now();
        let mut outliers = lock(&self.outliers);
        outliers.note(pattern, domain, latency, now);
        let due = outliers.due;
        drop(outliers);
        if let Some(due) = due {
            self.outliers_due
                .fetch_min(self.epoch_nanos(due), Ordering::AcqRel);
        }
        self.waiting.store(true, Ordering::Release);
    }

    /// `at` as nanoseconds after the board's epoch.
    fn epoch_nanos(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Notes a breaker's change of state, to be logged by
    /// [`AlertBoard::deliver`].
    pub(crate) fn breaker(&self, event: BreakerEvent) {
        lock(&self.breakers).push(event);
        self.waiting.store(true, Ordering::Release);
    }

    /// Sends the alerts raised since the last delivery to `sink` and logs
    /// the latency outliers, outside every lock of the runtime.
    pub(crate) fn deliver(&self, sink: &dyn AlertSink) {
        // A load first: the common case (nothing raised) writes nothing.
        let outliers_due = self.outliers_due.load(Ordering::Acquire);
        let counted_due = outliers_due != u64::MAX && {
            let now = self.epoch_nanos(Instant::now());
            now >= outliers_due
        };
        if !counted_due
            && (!self.waiting.load(Ordering::Acquire)
                || !self.waiting.swap(false, Ordering::AcqRel))
        {
            return;
        }
        let alerts = std::mem::take(&mut *lock(&self.outbox));
        for alert in &alerts {
            sink.send(alert);
        }
        let resolved = std::mem::take(&mut *lock(&self.resolved));
        for alert in &resolved {
            sink.resolve(alert);
        }
        let changes = std::mem::take(&mut *lock(&self.breakers));
        for c in &changes {
            if c.to == "closed" {
                tracing::info!(target: "ndf::breaker", pattern = %c.pattern, domain = %c.domain, state = c.to, "breaker closed: the pattern is served again");
            } else {
                tracing::warn!(target: "ndf::breaker", pattern = %c.pattern, domain = %c.domain, state = c.to, failures = c.failures, calls = c.calls, "breaker opened: the pattern is held back");
            }
        }
        let mut outliers = lock(&self.outliers);
        self.outliers_due.store(u64::MAX, Ordering::Release);
        if outliers.log(Instant::now())
            && let Some(due) = outliers.due
        {
            self.outliers_due
                .fetch_min(self.epoch_nanos(due), Ordering::AcqRel);
        }
    }

    /// The alerts waiting for delivery, taken out.
    #[cfg(test)]
    pub(crate) fn take(&self) -> Vec<Alert> {
        self.waiting.store(false, Ordering::Release);
        std::mem::take(&mut *lock(&self.outbox))
    }

    /// The resolutions waiting for delivery, taken out.
    #[cfg(test)]
    pub(crate) fn take_resolved(&self) -> Vec<Alert> {
        std::mem::take(&mut *lock(&self.resolved))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// An alert about `pattern` in `domain`, its message prefixed with both.
pub(crate) fn alert(
    (pattern, domain): (&str, &str),
    kind: AlertKind,
    value: f64,
    threshold: f64,
    message: &str,
) -> Alert {
    Alert {
        pattern: pattern.to_owned(),
        domain: domain.to_owned(),
        kind,
        value,
        threshold,
        message: format!("`{pattern}` in `{domain}`: {message}"),
    }
}

/// The `q` quantile (0..=1) of `values`, nearest rank, by selection
/// (reorders them); zero when empty.
pub(super) fn select_percentile(values: &mut [Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = nearest_rank(values.len(), q);
    *values.select_nth_unstable(rank - 1).1
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "q is in 0..=1, the rank within len"
)]
pub(super) fn nearest_rank(len: usize, q: f64) -> usize {
    ((q * len as f64).ceil() as usize).clamp(1, len)
}

/// The `q` quantile (0..=1) of `sorted` (ascending), nearest rank; zero
/// when empty.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[nearest_rank(sorted.len(), q) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(ms).collect();
        assert_eq!(percentile(&v, 0.5), ms(50));
        assert_eq!(percentile(&v, 0.95), ms(95));
        assert_eq!(percentile(&v, 0.99), ms(99));
        assert_eq!(percentile(&[], 0.5), Duration::ZERO);
        let mut shuffled: Vec<Duration> = (1..=100).rev().map(ms).collect();
        assert_eq!(select_percentile(&mut shuffled, 0.95), ms(95));
    }
}
