//! Judging a workflow's recent runs for the success-rate and latency
//! alerts: a fixed window with running counts, raising and resolving
//! alerts on the board once per crossing, with hysteresis.

use std::time::Duration;

use super::alert::{AlertBoard, AlertKind, alert, nearest_rank, select_percentile};

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
        // Judged on the run before too: the window held enough runs.
        let judged = self.len as u64 >= rules.min_samples.max(1);
        let evicted = if self.len == ALERT_WINDOW {
            self.ok -= usize::from(self.ring[self.next].1);
            Some(self.ring[self.next].0)
        } else {
            self.len += 1;
            None
        };
        self.ring[self.next] = (latency, ok);
        self.ok += usize::from(ok);
        self.next += 1;
        if self.next == ALERT_WINDOW {
            self.next = 0;
        }
        if let Some(limit) = rules.latency_alert {
            self.count_slow(limit, evicted, latency);
        }
        if (self.len as u64) < rules.min_samples.max(1) {
            return;
        }
        // A success cannot lower the rate: with no alert raised on the
        // last run's judgement, none is raised now.
        if !(ok && judged && !self.success_rate) {
            self.judge_success_rate(who, rules, board);
        }
        if let Some(limit) = rules.latency_alert {
            self.judge_latency(who, limit, board);
        }
    }

    /// Raises or resolves the success-rate alert for the window.
    fn judge_success_rate(&mut self, who: (&str, &str), rules: AlertRules, board: &AlertBoard) {
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
    }

    /// Raises or resolves the latency alert for the window and `limit`.
    fn judge_latency(&mut self, who: (&str, &str), limit: Duration, board: &AlertBoard) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::alert::{Alert, percentile};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
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

    #[test]
    fn a_success_that_completes_the_minimum_still_judges_the_window() {
        // Four failures, then a success: the first judgement (at
        // `min_samples` = 5) sees 20 % and raises, though the run that
        // made it is a success.
        let mut state = AlertState::default();
        let board = AlertBoard::default();
        feed_on(&board, &mut state, 4, (ms(1), false), rules(None));
        assert!(board.take().is_empty(), "too few runs to judge");
        feed_on(&board, &mut state, 1, (ms(1), true), rules(None));
        let raised = board.take();
        assert_eq!(raised.len(), 1, "{raised:?}");
        assert_eq!(raised[0].kind, AlertKind::SuccessRate);
        // Raised: successes are judged again, and enough resolve it.
        feed_on(&board, &mut state, 100, (ms(1), true), rules(None));
        assert_eq!(board.take_resolved().len(), 1);
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
