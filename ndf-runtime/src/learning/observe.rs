//! What learning reports, to whoever watches it. Learning raises no alert,
//! logs no outlier and touches no metric itself: it tells an [`Observer`]
//! what a learned run observed, under the statistics lock, in the order it
//! learned it; the observer (telemetry) decides what an operator sees.

use std::time::Duration;

use super::breaker::Transition;
use crate::model::{RunEnd, StepOutcome};

/// What learning one run observed of its workflow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunObservation<'a> {
    /// The id of the run's entry (see [`Observer::entry_added`]).
    pub(crate) entry: usize,
    pub(crate) workflow: &'static str,
    pub(crate) domain: &'a str,
    pub(crate) end: RunEnd,
    pub(crate) latency: Duration,
    /// Its latency was an outlier against the recent runs'.
    pub(crate) outlier: bool,
    /// The outcome the run taught the workflow's confidence (success or
    /// not), when it taught one.
    pub(crate) taught: Option<bool>,
}

/// What learning one run observed of one of its step records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StepObservation {
    pub(crate) entry: usize,
    /// The record's index in the workflow.
    pub(crate) index: usize,
    pub(crate) outcome: StepOutcome,
    /// The outcome the run taught the step's confidence (served by its
    /// fallback is a failure of the step), when it taught one.
    pub(crate) taught: Option<bool>,
}

/// A pattern's breaker changed state.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BreakerChange<'a> {
    pub(crate) pattern: &'a str,
    pub(crate) domain: &'a str,
    pub(crate) transition: Transition,
    /// The pattern's confidence mean.
    pub(crate) confidence: f64,
    /// The threshold it is held to.
    pub(crate) threshold: f64,
    /// Failures and outcomes behind the evidence.
    pub(crate) failures: u32,
    pub(crate) calls: u64,
    /// How long it is now held back (an opening).
    pub(crate) break_duration: Duration,
    /// Whether the other processes sharing the store opened it (their
    /// evidence, pulled), rather than this process's own outcomes.
    pub(crate) fleet: bool,
    /// Whether it is a step's `breaker(…)`, judged on its window
    /// (`threshold` is then `1 − failure_ratio`).
    pub(crate) window: bool,
}

/// Watches what learning learns. Called under the statistics lock: keep
/// each call short, allocate only on rare events.
pub(crate) trait Observer: Send {
    /// Entry `entry` (ids count up from 0) now holds `workflow` in `domain`.
    fn entry_added(
        &mut self,
        entry: usize,
        workflow: &'static str,
        steps: &'static [&'static str],
        domain: &str,
    );

    /// Entry `entry` was idle and is evicted: forget what is kept of it
    /// beyond what its next run needs (it may run again).
    fn entry_evicted(&mut self, entry: usize, workflow: &'static str, domain: &str);

    /// A run was learned; its steps follow.
    fn run(&mut self, run: &RunObservation<'_>);

    /// A step record of the run just reported was learned.
    fn step(&mut self, step: &StepObservation);

    /// `runs` clean runs of `entry` (reported as they ended) were learned
    /// into its slots: each of their `steps` step records was
    /// [`StepOutcome::CLEAN`] and taught its slot a success. The same as
    /// [`Observer::step`] of each, in one call. Called when they are folded
    /// (see `Tables::fold`): before any other run is learned, so that the
    /// outcomes of a pattern are observed in their order.
    fn clean_steps(&mut self, entry: usize, steps: usize, runs: u64) {
        for _ in 0..runs {
            for index in 0..steps {
                self.step(&StepObservation {
                    entry,
                    index,
                    outcome: StepOutcome::CLEAN,
                    taught: Some(true),
                });
            }
        }
    }

    /// A breaker opened, opened again or closed (a reset closes it too).
    fn breaker(&mut self, change: &BreakerChange<'_>);
}

/// An observer that watches nothing (statistics without telemetry, in
/// tests).
#[derive(Debug, Default)]
pub(crate) struct Unobserved;

impl Observer for Unobserved {
    fn entry_added(&mut self, _: usize, _: &'static str, _: &'static [&'static str], _: &str) {}
    fn entry_evicted(&mut self, _: usize, _: &'static str, _: &str) {}
    fn run(&mut self, _: &RunObservation<'_>) {}
    fn step(&mut self, _: &StepObservation) {}
    fn breaker(&mut self, _: &BreakerChange<'_>) {}
}

/// The observer the statistics report to.
pub(super) struct Watcher(pub(super) Box<dyn Observer>);

impl Default for Watcher {
    fn default() -> Self {
        Self(Box::new(Unobserved))
    }
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watcher")
    }
}
