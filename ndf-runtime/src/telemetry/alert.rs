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

/// Runs judged for success-rate and latency alerts.
pub(crate) const ALERT_WINDOW: usize = 100;
/// A raised success-rate alert resolves once the failure rate is at most
/// this share of the tolerance (with `error_tolerance = 0.1`: raised below
/// 90 %, resolved at 95 % or more).
const RESOLVE_FAILURES: f64 = 0.5;
/// A raised latency alert resolves once the p95 is at most this share of
/// `latency_alert`.
const RESOLVE_LATENCY: f64 = 0.8;

/// The recent runs of one workflow in one domain, and whether each kind of
/// alert is raised, so that an alert fires when a threshold is crossed, not
/// on every run. A fixed ring with running counts: no allocation per run.
#[derive(Debug, Clone)]
pub(crate) struct AlertState {
    ring: [(Duration, bool); ALERT_WINDOW],
    len: usize,
    next: usize,
    ok: usize,
    /// Runs in the window slower than `latency_alert`, and slower than the
    /// latency at which a raised alert resolves, for the limit in
    /// `counted_for`: whether the p95 is above either is then a comparison
    /// of counts, with no sorting (the p95 itself is worked out only for
    /// the message of an alert that fires or resolves).
    over: usize,
    over_resolve: usize,
    /// The limit the counts are for, and the latency that resolves it.
    counted_for: Option<(Duration, Duration)>,
    latency: bool,
    success_rate: bool,
}

impl Default for AlertState {
    fn default() -> Self {
        Self {
            ring: [(Duration::ZERO, true); ALERT_WINDOW],
            len: 0,
            next: 0,
            ok: 0,
            over: 0,
            over_resolve: 0,
            counted_for: None,
            latency: false,
            success_rate: false,
        }
    }
}

/// What a workflow's alerts are judged against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AlertRules {
    pub(crate) min_samples: u64,
    pub(crate) error_tolerance: f64,
    pub(crate) latency_alert: Option<Duration>,
}

impl AlertState {
    /// Records one run and judges the window; raises and clears alerts on
    /// `board`.
    pub(crate) fn observe(
        &mut self,
        who: (&str, &str),
        latency: Duration,
        ok: bool,
        rules: AlertRules,
        board: &AlertBoard,
    ) {
        let evicted = if self.len == ALERT_WINDOW {
            self.ok -= usize::from(self.ring[self.next].1);
            Some(self.ring[self.next].0)
        } else {
            self.len += 1;
            None
        };
        self.ring[self.next] = (latency, ok);
        self.ok += usize::from(ok);
        self.next = (self.next + 1) % ALERT_WINDOW;
        if let Some(limit) = rules.latency_alert {
            self.count_slow(limit, evicted, latency);
        }
        if (self.len as u64) < rules.min_samples.max(1) {
            return;
        }
        let rate = self.ok as f64 / self.len as f64;
        let floor = 1.0 - rules.error_tolerance;
        let resolved_at = 1.0 - rules.error_tolerance * RESOLVE_FAILURES;
        let low = if self.success_rate {
            rate < resolved_at
        } else {
            rate < floor
        };
        if low && !self.success_rate {
            board.raise(alert(
                who,
                AlertKind::SuccessRate,
                rate,
                floor,
                &format!(
                    "success rate of the last {} runs is {:.1}%, below {:.1}%",
                    self.len,
                    rate * 100.0,
                    floor * 100.0
                ),
            ));
        } else if !low && self.success_rate {
            board.clear(
                who,
                AlertKind::SuccessRate,
                rate,
                &format!(
                    "success rate of the last {} runs is back to {:.1}%, at least {:.1}%",
                    self.len,
                    rate * 100.0,
                    resolved_at * 100.0
                ),
            );
        }
        self.success_rate = low;
        if let Some(limit) = rules.latency_alert {
            // The nearest-rank p95 is above a bound when more runs than
            // `len - rank` are.
            let needed = self.len - nearest_rank(self.len, 0.95) + 1;
            let slow = if self.latency {
                self.over_resolve >= needed
            } else {
                self.over >= needed
            };
            if slow && !self.latency {
                let p95 = self.p95();
                board.raise(alert(
                    who,
                    AlertKind::Latency,
                    p95.as_secs_f64(),
                    limit.as_secs_f64(),
                    &format!(
                        "p95 latency of the last {} runs is {p95:?}, above {limit:?}",
                        self.len
                    ),
                ));
            } else if !slow && self.latency {
                let p95 = self.p95();
                board.clear(
                    who,
                    AlertKind::Latency,
                    p95.as_secs_f64(),
                    &format!(
                        "p95 latency of the last {} runs is back to {p95:?}, within {:?}",
                        self.len,
                        limit.mul_f64(RESOLVE_LATENCY)
                    ),
                );
            }
            self.latency = slow;
        }
    }

    /// Keeps the counts of slow runs in the window, for `limit`: the run
    /// that came in and the one that left, or all of them again when the
    /// limit is new.
    fn count_slow(&mut self, limit: Duration, left: Option<Duration>, came: Duration) {
        if let Some((counted, resolve_at)) = self.counted_for
            && counted == limit
        {
            if let Some(old) = left {
                self.over -= usize::from(old > limit);
                self.over_resolve -= usize::from(old > resolve_at);
            }
            self.over += usize::from(came > limit);
            self.over_resolve += usize::from(came > resolve_at);
        } else {
            let resolve_at = limit.mul_f64(RESOLVE_LATENCY);
            let window = &self.ring[..self.len];
            self.over = window.iter().filter(|(d, _)| *d > limit).count();
            self.over_resolve = window.iter().filter(|(d, _)| *d > resolve_at).count();
            self.counted_for = Some((limit, resolve_at));
        }
    }

    /// The p95 latency of the window, nearest rank.
    fn p95(&self) -> Duration {
        let mut scratch = [Duration::ZERO; ALERT_WINDOW];
        let values = &mut scratch[..self.len];
        for (v, (d, _)) in values.iter_mut().zip(&self.ring) {
            *v = *d;
        }
        select_percentile(values, 0.95)
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
fn select_percentile(values: &mut [Duration], q: f64) -> Duration {
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
fn nearest_rank(len: usize, q: f64) -> usize {
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

    fn rules(latency_alert: Option<Duration>) -> AlertRules {
        AlertRules {
            min_samples: 5,
            error_tolerance: 0.1,
            latency_alert,
        }
    }

    fn feed(
        state: &mut AlertState,
        n: usize,
        run: (Duration, bool),
        rules: AlertRules,
        out: &mut Vec<Alert>,
    ) {
        let board = AlertBoard::default();
        feed_on(&board, state, n, run, rules);
        out.extend(board.take());
    }

    fn feed_on(
        board: &AlertBoard,
        state: &mut AlertState,
        n: usize,
        run: (Duration, bool),
        rules: AlertRules,
    ) {
        for _ in 0..n {
            state.observe(("a.b", "d"), run.0, run.1, rules, board);
        }
    }

    #[test]
    fn a_rate_hovering_at_the_threshold_fires_once_and_resolves_once_clear() {
        let board = AlertBoard::default();
        let mut state = AlertState::default();
        let rules = rules(None);
        feed_on(&board, &mut state, 100, (ms(1), true), rules);
        // 11 failures in the last 100: 89 %, below 90 %.
        feed_on(&board, &mut state, 11, (ms(1), false), rules);
        assert_eq!(board.take().len(), 1);
        // Hovering between 89 % and 91 %: neither a second alert nor a
        // resolution.
        for _ in 0..20 {
            feed_on(&board, &mut state, 2, (ms(1), true), rules);
            feed_on(&board, &mut state, 2, (ms(1), false), rules);
        }
        assert!(board.take().is_empty());
        assert!(board.take_resolved().is_empty(), "still within the band");
        // Healthy again: 95 % or more resolves it, once.
        feed_on(&board, &mut state, 100, (ms(1), true), rules);
        let resolved = board.take_resolved();
        assert_eq!(resolved.len(), 1, "{resolved:?}");
        assert_eq!(resolved[0].kind, AlertKind::SuccessRate);
        assert!(
            (resolved[0].threshold - 0.9).abs() < 1e-9,
            "the threshold that fired"
        );
        assert!(
            resolved[0].message.contains("back to"),
            "{}",
            resolved[0].message
        );
        assert!(board.active().is_empty());
    }

    #[test]
    fn a_latency_alert_resolves_below_four_fifths_of_its_threshold() {
        let board = AlertBoard::default();
        let mut state = AlertState::default();
        let rules = rules(Some(ms(500)));
        feed_on(&board, &mut state, 100, (ms(600), true), rules);
        assert_eq!(board.take().len(), 1);
        feed_on(&board, &mut state, 100, (ms(450), true), rules);
        assert!(
            board.take_resolved().is_empty(),
            "450 ms is within 500 ms, not yet clear of it"
        );
        // 150 runs: the window holds none of the slower runs any more.
        feed_on(&board, &mut state, 150, (ms(300), true), rules);
        let resolved = board.take_resolved();
        assert_eq!(resolved.len(), 1, "{:?}", board.active());
        assert_eq!(resolved[0].kind, AlertKind::Latency);
        assert!((resolved[0].value - 0.3).abs() < 1e-9, "{resolved:?}");
    }

    #[test]
    fn an_alert_fires_once_per_crossing() {
        let mut state = AlertState::default();
        let mut out = Vec::new();
        feed(&mut state, 10, (ms(1), false), rules(None), &mut out);
        assert_eq!(out.len(), 1, "still low: no second alert");
        feed(&mut state, 100, (ms(1), true), rules(None), &mut out);
        feed(&mut state, 100, (ms(1), false), rules(None), &mut out);
        assert_eq!(out.len(), 2, "recovered, then crossed again");
        assert_eq!(out[0].kind, AlertKind::SuccessRate);
    }

    #[test]
    fn slow_runs_raise_a_latency_alert_when_configured() {
        let mut state = AlertState::default();
        let mut out = Vec::new();
        feed(&mut state, 10, (ms(900), true), rules(None), &mut out);
        assert!(out.is_empty(), "no latency threshold configured");
        feed(
            &mut state,
            10,
            (ms(900), true),
            rules(Some(ms(500))),
            &mut out,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, AlertKind::Latency);
        assert!(out[0].message.contains("above 500ms"), "{}", out[0].message);
    }

    #[test]
    fn the_counted_p95_decides_as_sorting_the_window_would() {
        let board = AlertBoard::default();
        let mut state = AlertState::default();
        let rules = rules(Some(ms(500)));
        let mut window: Vec<Duration> = Vec::new();
        let mut rng = fastrand::Rng::with_seed(7);
        for i in 0..5_000 {
            // Phases of fast and slow runs, so that the alert fires and
            // resolves many times.
            let slow_phase = (i / 300) % 2 == 1;
            let latency = ms(if slow_phase {
                rng.u64(350..700)
            } else {
                rng.u64(50..350)
            });
            let was = state.latency;
            state.observe(("a.b", "d"), latency, true, rules, &board);
            window.push(latency);
            if window.len() > ALERT_WINDOW {
                window.remove(0);
            }
            if window.len() < 5 {
                continue;
            }
            let mut sorted = window.clone();
            sorted.sort_unstable();
            let p95 = percentile(&sorted, 0.95);
            let expected = if was { p95 > ms(400) } else { p95 > ms(500) };
            assert_eq!(
                state.latency, expected,
                "run {i}: p95 {p95:?}, raised before: {was}"
            );
        }
        let fired = board.take().len();
        let resolved = board.take_resolved().len();
        assert!(
            fired > 3 && resolved > 3,
            "{fired} fired, {resolved} resolved"
        );
    }
}
