//! Alerts: raised when a pattern crosses a threshold, once per crossing.

use std::time::Duration;

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

/// Where alerts go. The default sink logs them with `tracing` at warn level.
pub trait AlertSink: Send + Sync + 'static {
    /// Delivers one alert. Called outside the runtime's locks; keep it quick
    /// (hand the alert to a channel for slow delivery).
    fn send(&self, alert: &Alert);
}

/// The default sink: a `tracing` warning per alert.
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingSink;

impl AlertSink for TracingSink {
    fn send(&self, alert: &Alert) {
        tracing::warn!(
            pattern = %alert.pattern,
            domain = %alert.domain,
            kind = ?alert.kind,
            value = alert.value,
            threshold = alert.threshold,
            "{}",
            alert.message
        );
    }
}

/// Whether each kind of alert is raised for one pattern in one domain, so
/// that an alert fires when a threshold is crossed, not on every run.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct AlertState {
    latency: bool,
    success_rate: bool,
}

impl AlertState {
    /// Judges the recent runs; returns the alerts newly raised.
    pub(crate) fn judge(
        &mut self,
        who: (&str, &str),
        recent: &[(Duration, bool)],
        min_samples: u64,
        error_tolerance: f64,
        latency_alert: Option<Duration>,
        out: &mut Vec<Alert>,
    ) {
        if (recent.len() as u64) < min_samples.max(1) {
            return;
        }
        let ok = recent.iter().filter(|(_, ok)| *ok).count();
        let rate = ok as f64 / recent.len() as f64;
        let floor = 1.0 - error_tolerance;
        let low = rate < floor;
        if low && !self.success_rate {
            out.push(alert(
                who,
                AlertKind::SuccessRate,
                rate,
                floor,
                &format!(
                    "success rate of the last {} runs is {:.1}%, below {:.1}%",
                    recent.len(),
                    rate * 100.0,
                    floor * 100.0
                ),
            ));
        }
        self.success_rate = low;
        if let Some(limit) = latency_alert {
            let mut latencies: Vec<Duration> = recent.iter().map(|(d, _)| *d).collect();
            latencies.sort_unstable();
            let p95 = percentile(&latencies, 0.95);
            let slow = p95 > limit;
            if slow && !self.latency {
                out.push(alert(
                    who,
                    AlertKind::Latency,
                    p95.as_secs_f64(),
                    limit.as_secs_f64(),
                    &format!(
                        "p95 latency of the last {} runs is {p95:?}, above {limit:?}",
                        recent.len()
                    ),
                ));
            }
            self.latency = slow;
        }
    }
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

/// The `q` quantile (0..=1) of `sorted` (ascending), nearest rank; zero
/// when empty.
pub(crate) fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let values = sorted;
    if values.is_empty() {
        return Duration::ZERO;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "q is in 0..=1, the rank within len"
    )]
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
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
    }

    #[test]
    fn an_alert_fires_once_per_crossing() {
        let mut state = AlertState::default();
        let mut out = Vec::new();
        let bad = vec![(ms(1), false); 10];
        let good = vec![(ms(1), true); 10];
        state.judge(("a.b", "d"), &bad, 5, 0.1, None, &mut out);
        state.judge(("a.b", "d"), &bad, 5, 0.1, None, &mut out);
        assert_eq!(out.len(), 1, "still low: no second alert");
        state.judge(("a.b", "d"), &good, 5, 0.1, None, &mut out);
        state.judge(("a.b", "d"), &bad, 5, 0.1, None, &mut out);
        assert_eq!(out.len(), 2, "recovered, then crossed again");
        assert_eq!(out[0].kind, AlertKind::SuccessRate);
    }

    #[test]
    fn slow_runs_raise_a_latency_alert_when_configured() {
        let mut state = AlertState::default();
        let mut out = Vec::new();
        let slow = vec![(ms(900), true); 10];
        state.judge(("a.b", "d"), &slow, 5, 0.1, None, &mut out);
        assert!(out.is_empty(), "no latency threshold configured");
        state.judge(("a.b", "d"), &slow, 5, 0.1, Some(ms(500)), &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, AlertKind::Latency);
        assert!(out[0].message.contains("above 500ms"), "{}", out[0].message);
    }
}
