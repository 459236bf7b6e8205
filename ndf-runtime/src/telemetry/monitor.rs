//! What an operator sees of what learning observes: the [`Observer`] that
//! turns learned runs into alerts, metrics and log events.

use std::sync::Arc;

use super::alert::{AlertBoard, AlertKind, AlertRules, AlertState, alert};
use super::metrics::EntryMetrics;
use crate::config::Config;
use crate::learning::{BreakerChange, Observer, RunObservation, StepObservation, Transition};
use crate::model::RunEnd;

/// The alert state and metric handles of one statistics entry.
#[derive(Debug)]
struct EntryMonitor {
    domain: Arc<str>,
    alerts: AlertState,
    metrics: EntryMetrics,
}

/// Alerts, metrics and log events of every entry, by entry id.
#[derive(Debug)]
pub(crate) struct Monitor {
    entries: Vec<EntryMonitor>,
    rules: AlertRules,
    board: Arc<AlertBoard>,
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
        }
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
        self.entries.push(EntryMonitor {
            domain: domain.into(),
            alerts: AlertState::default(),
            metrics: EntryMetrics::register(workflow, steps),
        });
    }

    fn run(&mut self, run: &RunObservation<'_>) {
        let Some(e) = self.entries.get_mut(run.entry) else {
            return;
        };
        let who = (run.workflow, run.domain);
        if run.end == RunEnd::Refused {
            // A call that was not served counts against the success rate.
            e.alerts
                .observe(who, run.latency, false, self.rules, &self.board);
            e.metrics.refused();
            return;
        }
        if run.end != RunEnd::Rejected {
            let ok = run.end == RunEnd::Ok;
            e.alerts
                .observe(who, run.latency, ok, self.rules, &self.board);
        }
        e.metrics
            .run(run.end, run.latency, run.outlier, run.confidence);
        if run.outlier {
            // Logged when the alerts are delivered, outside the lock.
            self.board.outlier(run.workflow, &e.domain, run.latency);
        }
    }

    fn step(&mut self, step: &StepObservation) {
        if let Some(e) = self.entries.get(step.entry) {
            e.metrics.step(step.index, step.outcome, step.confidence);
        }
    }

    fn breaker(&mut self, c: &BreakerChange<'_>) {
        let who = (c.pattern, c.domain);
        match c.transition {
            Transition::Opened => {
                let (threshold, mean) = (c.threshold, c.confidence);
                self.board.raise(alert(
                    who,
                    AlertKind::Confidence,
                    mean,
                    threshold,
                    &format!(
                        "held back: its success rate is credibly below {threshold:.2} ({} of its last {} outcomes failed; confidence {mean:.2}); probes in {:?}",
                        c.failures, c.calls, c.break_duration
                    ),
                ));
            }
            // Still held back: the alert raised at the opening stands.
            Transition::Reopened => {}
            Transition::Closed => self.board.clear(who, AlertKind::Confidence),
        }
    }
}
