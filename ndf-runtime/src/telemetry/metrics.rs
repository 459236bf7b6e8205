//! Counters, histograms and gauges through the `metrics` facade, with
//! bounded label sets: pattern and step names and outcomes, never ids,
//! domains or attribute values. Handles are registered once per workflow
//! entry, so a run only increments them (no key is built on the hot path);
//! install the recorder before building the runtime.

use std::time::Duration;

use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram,
    histogram,
};

use crate::model::{RunEnd, StepOutcome};

/// Gives every metric of ndf its `# HELP` text and unit, on the recorder
/// installed now. `serve_prometheus` and every runtime's build call it;
/// with a recorder of your own, build the runtime after installing it.
pub fn describe_metrics() {
    describe_counter!(
        "ndf_runs_total",
        Unit::Count,
        "Workflow runs that ended, by pattern and outcome (ok, error, rejected, refused)."
    );
    describe_histogram!(
        "ndf_run_duration_seconds",
        Unit::Seconds,
        "How long workflow runs took, by pattern."
    );
    describe_counter!(
        "ndf_latency_outliers_total",
        Unit::Count,
        "Runs flagged as latency outliers against their pattern's recent runs, by pattern."
    );
    describe_counter!(
        "ndf_step_executions_total",
        Unit::Count,
        "Step runs, by workflow pattern, step and outcome (ok, error)."
    );
    describe_counter!(
        "ndf_step_retries_total",
        Unit::Count,
        "Retries of steps, by workflow pattern and step."
    );
    describe_counter!(
        "ndf_step_fallbacks_total",
        Unit::Count,
        "Steps served by their fallback, by workflow pattern and step."
    );
    describe_counter!(
        "ndf_step_held_back_total",
        Unit::Count,
        "Steps held back by their gate (breaker open or half-open), by workflow pattern and step."
    );
    describe_counter!(
        "ndf_degradations_total",
        Unit::Count,
        "degrade! chains served below their preferred level, by workflow pattern and chain."
    );
    describe_counter!(
        "ndf_breaker_transitions_total",
        Unit::Count,
        "Changes of a pattern's breaker, by pattern and new state (open, reopened, closed)."
    );
    describe_counter!(
        "ndf_store_failures_total",
        Unit::Count,
        "Background saves and fleet syncs of learning data that failed, by operation (save, sync); what was learned stays in memory and is tried again."
    );
    describe_gauge!(
        "ndf_confidence",
        "The confidence in a pattern over all its domains: the posterior mean of its success rate."
    );
}

/// Counts a background save or fleet sync (`op`) that failed.
pub(crate) fn store_failed(op: &'static str) {
    counter!("ndf_store_failures_total", "op" => op).increment(1);
}

/// The handles of one step record of a workflow.
struct StepMetrics {
    ok: Counter,
    failed: Counter,
    retries: Counter,
    fallbacks: Counter,
    held_back: Counter,
    degraded: Counter,
}

/// The handles of one workflow (and its steps).
pub(crate) struct EntryMetrics {
    runs_ok: Counter,
    runs_failed: Counter,
    runs_rejected: Counter,
    runs_refused: Counter,
    duration: Histogram,
    outliers: Counter,
    steps: Vec<StepMetrics>,
}

impl std::fmt::Debug for EntryMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EntryMetrics")
            .field("steps", &self.steps.len())
            .finish_non_exhaustive()
    }
}

impl EntryMetrics {
    pub(crate) fn register(workflow: &'static str, steps: &'static [&'static str]) -> Self {
        Self {
            runs_ok: counter!("ndf_runs_total", "pattern" => workflow, "outcome" => "ok"),
            runs_failed: counter!("ndf_runs_total", "pattern" => workflow, "outcome" => "error"),
            runs_rejected: counter!("ndf_runs_total", "pattern" => workflow, "outcome" => "rejected"),
            runs_refused: counter!("ndf_runs_total", "pattern" => workflow, "outcome" => "refused"),
            duration: histogram!("ndf_run_duration_seconds", "pattern" => workflow),
            outliers: counter!("ndf_latency_outliers_total", "pattern" => workflow),
            steps: steps
                .iter()
                .map(|step| StepMetrics {
                    ok: counter!("ndf_step_executions_total", "pattern" => workflow, "step" => *step, "outcome" => "ok"),
                    failed: counter!("ndf_step_executions_total", "pattern" => workflow, "step" => *step, "outcome" => "error"),
                    retries: counter!("ndf_step_retries_total", "pattern" => workflow, "step" => *step),
                    fallbacks: counter!("ndf_step_fallbacks_total", "pattern" => workflow, "step" => *step),
                    held_back: counter!("ndf_step_held_back_total", "pattern" => workflow, "step" => *step),
                    degraded: counter!("ndf_degradations_total", "pattern" => workflow, "step" => *step),
                })
                .collect(),
        }
    }

    /// A run that started and ended `end`.
    pub(crate) fn run(&self, end: RunEnd, latency: Duration, outlier: bool) {
        match end {
            RunEnd::Ok => &self.runs_ok,
            RunEnd::Failed => &self.runs_failed,
            RunEnd::Rejected => &self.runs_rejected,
            RunEnd::Refused => &self.runs_refused,
        }
        .increment(1);
        self.duration.record(latency.as_secs_f64());
        if outlier {
            self.outliers.increment(1);
        }
    }

    /// A run its gate refused before it started.
    pub(crate) fn refused(&self) {
        self.runs_refused.increment(1);
    }

    /// Step record `index` was [`StepOutcome::CLEAN`] in `runs` runs: what
    /// [`EntryMetrics::step`] counts of each.
    pub(crate) fn clean_steps(&self, index: usize, runs: u64) {
        if let Some(m) = self.steps.get(index) {
            m.ok.increment(runs);
        }
    }

    /// What step record `index` did in a run.
    pub(crate) fn step(&self, index: usize, outcome: StepOutcome) {
        let Some(m) = self.steps.get(index) else {
            return;
        };
        if outcome.ran {
            if outcome.ok { &m.ok } else { &m.failed }.increment(1);
        }
        if outcome.retries > 0 {
            m.retries.increment(u64::from(outcome.retries));
        }
        if outcome.fallback {
            m.fallbacks.increment(1);
        }
        if outcome.held {
            m.held_back.increment(1);
        }
        if outcome.degraded() {
            m.degraded.increment(1);
        }
    }
}
