use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::exec::Cx;
use crate::step::Step;

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
    /// Sum of run latencies, in microseconds.
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
        self.total_latency_us += other.total_latency_us;
    }
}

/// The live table of statistics, keyed by pattern then domain.
#[derive(Debug, Default)]
pub(crate) struct StatsTable {
    table: Mutex<HashMap<String, HashMap<String, PatternStats>>>,
}

impl StatsTable {
    fn update(&self, pattern: &str, domain: &str, f: impl FnOnce(&mut PatternStats)) {
        let mut table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let domains = match table.get_mut(pattern) {
            Some(domains) => domains,
            None => table.entry(pattern.to_owned()).or_default(),
        };
        let stats = match domains.get_mut(domain) {
            Some(stats) => stats,
            None => domains.entry(domain.to_owned()).or_default(),
        };
        f(stats);
    }

    pub(crate) fn get(&self, pattern: &str, domain: &str) -> Option<PatternStats> {
        let table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table.get(pattern)?.get(domain).copied()
    }

    pub(crate) fn snapshot(&self) -> Vec<(String, String, PatternStats)> {
        let table = self
            .table
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut rows: Vec<_> = table
            .iter()
            .flat_map(|(p, ds)| ds.iter().map(|(d, s)| (p.clone(), d.clone(), *s)))
            .collect();
        rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        rows
    }

    pub(crate) fn seed(&self, pattern: &str, domain: &str, stats: &PatternStats) {
        self.update(pattern, domain, |s| s.merge(stats));
    }

    pub(crate) fn run_finished(&self, pattern: &str, domain: &str, ok: bool, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.update(pattern, domain, |s| {
            s.executions += 1;
            if ok {
                s.successes += 1
            } else {
                s.failures += 1
            }
            s.total_latency_us = s.total_latency_us.saturating_add(micros);
        });
    }

    pub(crate) fn step_succeeded<S: Step>(
        &self,
        cx: Cx<'_>,
        retries: u32,
        fallback: bool,
        out: S::Output,
    ) -> (S::Output, S::Undo) {
        self.update(S::NAME, cx.ctx.domain(), |s| {
            s.executions += 1;
            s.successes += 1;
            s.retries += u64::from(retries);
            s.fallbacks += u64::from(fallback);
        });
        let undo = S::keep(&out);
        (out, undo)
    }

    pub(crate) fn step_failed<S: Step>(&self, cx: Cx<'_>, retries: u32) {
        self.update(S::NAME, cx.ctx.domain(), |s| {
            s.executions += 1;
            s.failures += 1;
            s.retries += u64::from(retries);
        });
    }

    pub(crate) fn compensated<S: Step>(&self, cx: Cx<'_>, ok: bool) {
        self.update(S::NAME, cx.ctx.domain(), |s| {
            s.compensations += 1;
            s.compensation_failures += u64::from(!ok);
        });
    }
}
