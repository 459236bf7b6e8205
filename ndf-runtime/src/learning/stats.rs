use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::record::{StepOutcome, StepRecord};

/// Counters kept per (pattern, domain).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct PatternStats {
    /// Completed runs, successful or not.
    pub executions: u64,
    /// Runs that succeeded (possibly after retries or through the fallback).
    pub successes: u64,
    /// Runs that failed.
    pub failures: u64,
    /// Retries made.
    pub retries: u64,
    /// Runs served by the fallback step.
    pub fallbacks: u64,
    /// Compensations run for this step.
    pub compensations: u64,
    /// Compensations that failed.
    pub compensation_failures: u64,
    /// Runs of a `degrade!` served below its preferred level.
    pub degradations: u64,
    /// Sum of run latencies of workflows, in microseconds.
    pub total_latency_us: u64,
}

impl PatternStats {
    /// Successes over executions; `None` before the first execution.
    #[must_use]
    pub fn success_rate(&self) -> Option<f64> {
        (self.executions > 0).then(|| self.successes as f64 / self.executions as f64)
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &Self) {
        self.executions += other.executions;
        self.successes += other.successes;
        self.failures += other.failures;
        self.retries += other.retries;
        self.fallbacks += other.fallbacks;
        self.compensations += other.compensations;
        self.compensation_failures += other.compensation_failures;
        self.degradations += other.degradations;
        self.total_latency_us = self.total_latency_us.saturating_add(other.total_latency_us);
    }

    fn add_step(&mut self, o: StepOutcome) {
        if o.ran {
            self.executions += 1;
            if o.ok {
                self.successes += 1;
            } else {
                self.failures += 1;
            }
        }
        self.retries += u64::from(o.retries);
        self.degradations += u64::from(o.level.is_some_and(|level| level > 0));
        self.fallbacks += u64::from(o.fallback);
        self.compensations += u64::from(o.compensated);
        self.compensation_failures += u64::from(o.compensation_failed);
    }
}

/// What was learned of one workflow in one domain: its runs, and its steps by
/// index.
#[derive(Debug)]
struct WorkflowEntry {
    domain: Box<str>,
    steps: &'static [&'static str],
    run: PatternStats,
    step_stats: Vec<PatternStats>,
}

/// The live statistics. A run takes the lock once, when it ends; per-step
/// statistics are kept per workflow, by step index, and summed by name when
/// asked for (which is rare).
#[derive(Debug, Default)]
pub(crate) struct StatsTable {
    workflows: Mutex<HashMap<&'static str, Vec<WorkflowEntry>>>,
    /// What the store held when the runtime started, by (pattern, domain).
    baseline: Mutex<HashMap<(String, String), PatternStats>>,
    /// Recent durations of `orchestrate!` phases, by (workflow, phase,
    /// domain), for their learned median.
    phases: Mutex<HashMap<PhaseKey, VecDeque<Duration>>>,
}

/// (workflow, phase, domain).
type PhaseKey = (&'static str, &'static str, Box<str>);

/// Durations kept per phase for its median.
const PHASE_SAMPLES: usize = 64;
/// Durations needed before a phase's median counts.
const PHASE_MIN_SAMPLES: usize = 5;

impl StatsTable {
    pub(crate) fn seed(&self, pattern: &str, domain: &str, stats: &PatternStats) {
        let mut baseline = self.baseline.lock().unwrap_or_else(PoisonError::into_inner);
        baseline
            .entry((pattern.to_owned(), domain.to_owned()))
            .or_default()
            .merge(stats);
    }

    pub(crate) fn record_run(
        &self,
        workflow: &'static str,
        steps: &'static [&'static str],
        domain: &str,
        ok: bool,
        latency: Duration,
        log: &[StepRecord],
    ) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let mut workflows = self
            .workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let entries = workflows.entry(workflow).or_default();
        let found = entries.iter().position(|e| {
            &*e.domain == domain && (std::ptr::eq(e.steps, steps) || e.steps == steps)
        });
        let index = found.unwrap_or_else(|| {
            entries.push(WorkflowEntry {
                domain: domain.into(),
                steps,
                run: PatternStats::default(),
                step_stats: vec![PatternStats::default(); steps.len()],
            });
            entries.len() - 1
        });
        let entry = &mut entries[index];
        entry.run.executions += 1;
        if ok {
            entry.run.successes += 1;
        } else {
            entry.run.failures += 1;
        }
        entry.run.total_latency_us = entry.run.total_latency_us.saturating_add(micros);
        for ((stats, record), name) in entry.step_stats.iter_mut().zip(log).zip(steps) {
            let outcome = record.read();
            if outcome.level.is_some() && *name == workflow {
                // A `degrade!` at the top is the workflow itself: its run is
                // counted once, above; only the level it served adds here.
                entry.run.degradations += u64::from(outcome.ok && outcome.level > Some(0));
                continue;
            }
            stats.add_step(outcome);
        }
    }

    /// The median of the recent durations of a phase, once there are enough.
    pub(crate) fn phase_median(
        &self,
        workflow: &'static str,
        phase: &'static str,
        domain: &str,
    ) -> Option<Duration> {
        let phases = self.phases.lock().unwrap_or_else(PoisonError::into_inner);
        let samples = phases.get(&(workflow, phase, Box::from(domain)))?;
        if samples.len() < PHASE_MIN_SAMPLES {
            return None;
        }
        let mut sorted: Vec<Duration> = samples.iter().copied().collect();
        sorted.sort_unstable();
        Some(sorted[sorted.len() / 2])
    }

    pub(crate) fn record_phase(
        &self,
        workflow: &'static str,
        phase: &'static str,
        domain: &str,
        took: Duration,
    ) {
        let mut phases = self.phases.lock().unwrap_or_else(PoisonError::into_inner);
        let samples = phases
            .entry((workflow, phase, Box::from(domain)))
            .or_default();
        if samples.len() == PHASE_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(took);
    }

    /// Everything, summed by (pattern, domain), sorted.
    pub(crate) fn snapshot(&self) -> Vec<(String, String, PatternStats)> {
        let mut sums: HashMap<(String, String), PatternStats> = self
            .baseline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let workflows = self
            .workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (name, entries) in workflows.iter() {
            for e in entries {
                sums.entry(((*name).to_owned(), e.domain.to_string()))
                    .or_default()
                    .merge(&e.run);
                for (step, stats) in e.steps.iter().zip(&e.step_stats) {
                    if stats.executions > 0 || stats.compensations > 0 {
                        sums.entry(((*step).to_owned(), e.domain.to_string()))
                            .or_default()
                            .merge(stats);
                    }
                }
            }
        }
        let mut rows: Vec<_> = sums.into_iter().map(|((p, d), s)| (p, d, s)).collect();
        rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        rows
    }

    /// The statistics of `pattern` (a workflow or step name) in `domain`.
    pub(crate) fn get(&self, pattern: &str, domain: &str) -> Option<PatternStats> {
        let mut found = self
            .baseline
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(pattern.to_owned(), domain.to_owned()))
            .copied();
        let workflows = self
            .workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (name, entries) in workflows.iter() {
            for e in entries.iter().filter(|e| &*e.domain == domain) {
                if *name == pattern {
                    found.get_or_insert_default().merge(&e.run);
                }
                for (step, stats) in e.steps.iter().zip(&e.step_stats) {
                    if *step == pattern && (stats.executions > 0 || stats.compensations > 0) {
                        found.get_or_insert_default().merge(stats);
                    }
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static STEPS: &[&str] = &["a", "b", "a"];

    fn log(outcomes: [(bool, bool, u32); 3]) -> [StepRecord; 3] {
        let log: [StepRecord; 3] = std::array::from_fn(|_| StepRecord::default());
        for (record, (ran, ok, retries)) in log.iter().zip(outcomes) {
            if ran {
                record.finish(retries, ok, false);
            }
        }
        log
    }

    #[test]
    fn step_statistics_are_summed_by_name_across_positions() {
        let table = StatsTable::default();
        let l = log([(true, true, 1), (true, true, 0), (true, false, 2)]);
        table.record_run("x.flow", STEPS, "d", false, Duration::from_millis(3), &l);
        let a = table.get("a", "d").unwrap();
        assert_eq!(
            (a.executions, a.successes, a.failures, a.retries),
            (2, 1, 1, 3)
        );
        let flow = table.get("x.flow", "d").unwrap();
        assert_eq!(
            (flow.executions, flow.failures, flow.total_latency_us),
            (1, 1, 3000)
        );
        assert!(table.get("a", "other").is_none());
    }

    #[test]
    fn steps_that_did_not_run_are_not_counted() {
        let table = StatsTable::default();
        let l = log([(true, false, 0), (false, false, 0), (false, false, 0)]);
        table.record_run("x.flow", STEPS, "d", false, Duration::ZERO, &l);
        assert!(table.get("b", "d").is_none());
        assert_eq!(table.get("a", "d").unwrap().executions, 1);
    }

    #[test]
    fn the_baseline_from_the_store_is_added() {
        let table = StatsTable::default();
        let seeded = PatternStats {
            executions: 5,
            successes: 5,
            ..PatternStats::default()
        };
        table.seed("x.flow", "d", &seeded);
        table.record_run(
            "x.flow",
            STEPS,
            "d",
            true,
            Duration::ZERO,
            &log([(false, false, 0); 3]),
        );
        assert_eq!(table.get("x.flow", "d").unwrap().executions, 6);
        let snapshot = table.snapshot();
        assert_eq!(snapshot.len(), 1, "{snapshot:?}");
        assert_eq!(snapshot[0].2.executions, 6);
    }
}
