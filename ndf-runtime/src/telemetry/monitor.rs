//! What an operator sees of what learning observes: the [`Observer`] that
//! turns learned runs into alerts, metrics and log events.

use std::sync::Arc;

use metrics::{Gauge, counter, gauge};
use rustc_hash::FxHashMap;

use super::alert::{AlertBoard, AlertKind, BreakerEvent, alert};
use super::alert_state::{AlertRules, AlertState};
use super::metrics::EntryMetrics;
use crate::config::Config;
use crate::error::held_back_why;
use crate::learning::{BreakerChange, Observer, RunObservation, StepObservation, Transition};
use crate::model::{Evidence, Prior, RunEnd};

/// The alert state and metric handles of one statistics entry.
#[derive(Debug)]
struct EntryMonitor {
    domain: Arc<str>,
    /// Made at the first run (and again after an eviction).
    alerts: Option<Box<AlertState>>,
    metrics: EntryMetrics,
    /// The [`PatternGauge`] of the workflow, and of each step record.
    run_pattern: usize,
    step_patterns: Box<[usize]>,
}

/// `ndf_confidence{pattern}`: the confidence of a pattern over all its
/// domains, learned like the gate's confidence of each (pattern, domain)
/// (same prior and learning rate) from every outcome of the pattern,
/// whatever its domain. A metric label never holds a domain; this is the
/// one value a pattern's label can mean.
struct PatternGauge {
    evidence: Evidence,
    gauge: Gauge,
}

impl PatternGauge {
    /// Learns one outcome and sets the gauge.
    fn teach(&mut self, ok: bool, learning_rate: f64, prior: Prior) {
        self.evidence.observe(ok, learning_rate);
        self.gauge.set(self.evidence.mean(prior));
    }

    /// Learns `n` successes and sets the gauge once.
    fn teach_successes(&mut self, n: u64, learning_rate: f64, prior: Prior) {
        self.evidence.observe_successes(n, learning_rate);
        self.gauge.set(self.evidence.mean(prior));
    }
}

impl std::fmt::Debug for PatternGauge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatternGauge")
            .field("evidence", &self.evidence)
            .finish_non_exhaustive()
    }
}

/// Alerts, metrics and log events of every entry, by entry id.
#[derive(Debug)]
pub(crate) struct Monitor {
    entries: Vec<EntryMonitor>,
    rules: AlertRules,
    board: Arc<AlertBoard>,
    patterns: Vec<PatternGauge>,
    by_name: FxHashMap<&'static str, usize>,
    learning_rate: f64,
    prior: Prior,
}

impl Monitor {
    /// A monitor raising alerts on `board` by `config`'s rules.
    pub(crate) fn new(config: &Config, board: Arc<AlertBoard>) -> Self {
        Self {
            entries: Vec::new(),
            rules: AlertRules {
                min_samples: config.min_samples,
                error_tolerance: config.error_tolerance,
                latency_alert: config.latency_alert,
            },
            board,
            patterns: Vec::new(),
            by_name: FxHashMap::default(),
            learning_rate: config.learning_rate,
            prior: config.prior,
        }
    }

    /// The gauge of `pattern`, registered on first use.
    fn pattern(&mut self, pattern: &'static str) -> usize {
        let patterns = &mut self.patterns;
        *self.by_name.entry(pattern).or_insert_with(|| {
            patterns.push(PatternGauge {
                evidence: Evidence::default(),
                gauge: gauge!("ndf_confidence", "pattern" => pattern),
            });
            patterns.len() - 1
        })
    }

    /// Teaches the pattern `index` one outcome and sets its gauge.
    fn teach(&mut self, index: usize, ok: bool) {
        self.patterns[index].teach(ok, self.learning_rate, self.prior);
    }
}

impl Observer for Monitor {
    fn entry_added(
        &mut self,
        entry: usize,
        workflow: &'static str,
        steps: &'static [&'static str],
        domain: &str,
    ) {
        debug_assert_eq!(entry, self.entries.len(), "entry ids count up from 0");
        let run_pattern = self.pattern(workflow);
        let step_patterns = steps.iter().map(|step| self.pattern(step)).collect();
        self.entries.push(EntryMonitor {
            run_pattern,
            step_patterns,
            domain: domain.into(),
            alerts: None,
            metrics: EntryMetrics::register(workflow, steps),
        });
    }

    fn entry_evicted(&mut self, entry: usize, workflow: &'static str, domain: &str) {
        if let Some(e) = self.entries.get_mut(entry) {
            // The window the alerts judged is gone: so are its alerts (the
            // gate's, which stays, keeps its own).
            e.alerts = None;
            let gone = "no longer judged: its statistics were evicted after being idle";
            self.board
                .clear((workflow, domain), AlertKind::SuccessRate, f64::NAN, gone);
            self.board
                .clear((workflow, domain), AlertKind::Latency, f64::NAN, gone);
        }
    }

    fn run(&mut self, run: &RunObservation<'_>) {
        let Some(e) = self.entries.get_mut(run.entry) else {
            return;
        };
        let who = (run.workflow, run.domain);
        if run.end == RunEnd::Refused {
            // A call that was not served counts against the success rate.
            e.alerts.get_or_insert_with(Box::default).observe(
                who,
                run.latency,
                false,
                self.rules,
                &self.board,
            );
            e.metrics.refused();
            return;
        }
        if run.end != RunEnd::Rejected {
            let ok = run.end == RunEnd::Ok;
            e.alerts.get_or_insert_with(Box::default).observe(
                who,
                run.latency,
                ok,
                self.rules,
                &self.board,
            );
        }
        e.metrics.run(run.end, run.latency, run.outlier);
        // Logged when the alerts are delivered, outside the lock; noted
        // only when a subscriber would see it.
        if run.outlier && tracing::enabled!(target: "ndf::outlier", tracing::Level::WARN) {
            self.board.outlier(run.workflow, &e.domain, run.latency);
        }
        if let Some(ok) = run.taught {
            let pattern = e.run_pattern;
            self.teach(pattern, ok);
        }
    }

    fn step(&mut self, step: &StepObservation) {
        let Some(e) = self.entries.get(step.entry) else {
            return;
        };
        e.metrics.step(step.index, step.outcome);
        if let (Some(ok), Some(&pattern)) = (step.taught, e.step_patterns.get(step.index)) {
            self.teach(pattern, ok);
        }
    }

    fn clean_steps(&mut self, entry: usize, steps: usize, runs: u64) {
        let Monitor {
            entries,
            patterns,
            learning_rate,
            prior,
            ..
        } = self;
        let Some(e) = entries.get(entry) else {
            return;
        };
        for (index, &pattern) in e.step_patterns.iter().enumerate().take(steps) {
            e.metrics.clean_steps(index, runs);
            patterns[pattern].teach_successes(runs, *learning_rate, *prior);
        }
    }

    fn breaker(&mut self, c: &BreakerChange<'_>) {
        let who = (c.pattern, c.domain);
        let to = match c.transition {
            Transition::Opened => "open",
            Transition::Reopened => "reopened",
            Transition::Closed => "closed",
        };
        // A transition is rare: its labels are built here, bounded as the
        // other metrics' (pattern names and a state, never a domain).
        counter!("ndf_breaker_transitions_total", "pattern" => c.pattern.to_owned(), "to" => to)
            .increment(1);
        self.board.breaker(BreakerEvent {
            pattern: c.pattern.to_owned(),
            domain: c.domain.to_owned(),
            to,
            failures: c.failures,
            calls: c.calls,
        });
        match c.transition {
            Transition::Opened => {
                let (threshold, mean) = (c.threshold, c.confidence);
                let (failures, calls, probes) = (c.failures, c.calls, c.break_duration);
                let message = if c.window {
                    let why = held_back_why(true, threshold, failures, calls, mean);
                    format!("held back: {why}; probes in {probes:?}")
                } else if c.fleet {
                    format!(
                        "held back: the processes sharing the store found its success rate credibly below {threshold:.2} ({failures} of {calls} outcomes failed across them); probes in {probes:?}"
                    )
                } else {
                    format!(
                        "held back: its success rate is credibly below {threshold:.2} ({failures} of its last {calls} outcomes failed; confidence {mean:.2}); probes in {probes:?}"
                    )
                };
                self.board
                    .raise(alert(who, AlertKind::Confidence, mean, threshold, &message));
            }
            // Still held back: the alert raised at the opening stands.
            Transition::Reopened => {}
            Transition::Closed => self.board.clear(
                who,
                AlertKind::Confidence,
                c.confidence,
                &format!(
                    "served again: its probes succeeded (confidence {:.2})",
                    c.confidence
                ),
            ),
        }
    }
}
