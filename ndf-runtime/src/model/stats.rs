//! The counters learned of a pattern in a domain.

use super::record::StepOutcome;

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
    /// Runs whose latency was an outlier against the recent ones (median
    /// absolute deviation).
    pub outliers: u64,
    /// Times the pattern was held back by its gate and did not run: a
    /// refused workflow run, or a step whose fallback or next degradation
    /// level served instead (counted in `fallbacks` when its fallback
    /// served).
    pub held_back: u64,
    /// Runs that ended with a rejected error (the caller's fault or an
    /// expected business outcome, see [`ErrorClass::Rejected`]): neither
    /// successes nor failures, and never learned as the pattern's failure.
    ///
    /// [`ErrorClass::Rejected`]: crate::ErrorClass::Rejected
    pub rejected: u64,
    /// Sum of run latencies of workflows, in nanoseconds (a run under a
    /// microsecond still counts: 33 million runs of 25 ns are 0.8 s, not
    /// nothing).
    pub total_latency_ns: u64,
}

impl PatternStats {
    /// Successes over executions; `None` before the first execution.
    #[must_use]
    pub fn success_rate(&self) -> Option<f64> {
        (self.executions > 0).then(|| self.successes as f64 / self.executions as f64)
    }

    /// What these counts added to `earlier` ones (each count's difference,
    /// never below zero): what a runtime learned between two snapshots.
    #[must_use]
    pub fn since(&self, earlier: &Self) -> Self {
        Self {
            executions: self.executions.saturating_sub(earlier.executions),
            successes: self.successes.saturating_sub(earlier.successes),
            failures: self.failures.saturating_sub(earlier.failures),
            retries: self.retries.saturating_sub(earlier.retries),
            fallbacks: self.fallbacks.saturating_sub(earlier.fallbacks),
            compensations: self.compensations.saturating_sub(earlier.compensations),
            compensation_failures: self
                .compensation_failures
                .saturating_sub(earlier.compensation_failures),
            degradations: self.degradations.saturating_sub(earlier.degradations),
            outliers: self.outliers.saturating_sub(earlier.outliers),
            held_back: self.held_back.saturating_sub(earlier.held_back),
            rejected: self.rejected.saturating_sub(earlier.rejected),
            total_latency_ns: self
                .total_latency_ns
                .saturating_sub(earlier.total_latency_ns),
        }
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
        self.outliers += other.outliers;
        self.held_back += other.held_back;
        self.rejected += other.rejected;
        self.total_latency_ns = self.total_latency_ns.saturating_add(other.total_latency_ns);
    }

    /// `n` steps that succeeded at their first attempt: the same as
    /// [`PatternStats::add_step`] of each.
    pub(crate) fn add_successes(&mut self, n: u64) {
        self.executions += n;
        self.successes += n;
    }

    pub(crate) fn add_step(&mut self, o: StepOutcome) {
        if o.rejected {
            self.rejected += 1;
        } else if o.ran {
            self.executions += 1;
            if o.ok {
                self.successes += 1;
            } else {
                self.failures += 1;
            }
        }
        self.retries += u64::from(o.retries);
        self.held_back += u64::from(o.held);
        self.degradations += u64::from(o.degraded());
        self.fallbacks += u64::from(o.fallback);
        self.compensations += u64::from(o.compensated);
        self.compensation_failures += u64::from(o.compensation_failed);
    }
}
