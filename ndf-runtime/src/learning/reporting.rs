//! What the statistics hold for a report.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::recent::Recent;
use super::table::StatsTable;
use super::windows::WindowSummary;
use crate::model::{BreakerState, Clock, Confidence, Evidence, PatternStats, Prior};

/// What the statistics hold of one (pattern, domain) for a report (the
/// read view telemetry builds reports from).
#[derive(Debug)]
pub(crate) struct ReportRow {
    pub(crate) pattern: String,
    pub(crate) domain: String,
    pub(crate) workflow: bool,
    pub(crate) totals: PatternStats,
    /// Runs in the window (workflows only).
    pub(crate) runs: InWindow,
    /// Refusals in the window (workflows only).
    pub(crate) refused: u64,
    pub(crate) confidence: Option<Confidence>,
    pub(crate) breaker: BreakerState,
    pub(crate) trend: Vec<f64>,
    /// The step of the workflow that failed most, with its failures.
    pub(crate) worst_step: Option<(String, u64)>,
}

/// Entries read per hold of the statistics lock: a report or dashboard of
/// thousands of domains lets runs end between chunks instead of stalling
/// them for its whole read.
pub(super) const CHUNK: usize = 128;

/// The runs of a workflow in a report's window.
#[derive(Debug)]
pub(crate) enum InWindow {
    /// Each run (latency, success): its ring of recent runs holds every
    /// run of the window.
    Listed(Vec<(Duration, bool)>),
    /// Counted by period: the window holds more runs than the ring.
    Binned(Box<WindowSummary>),
}

impl StatsTable {
    /// Calls `f` with the tables and each next range of at most [`CHUNK`]
    /// entries, taking the lock afresh for each (entries are only ever
    /// appended, so the ranges cover every entry present at the end).
    pub(super) fn chunked(&self, mut f: impl FnMut(&super::entry::Tables, std::ops::Range<usize>)) {
        let mut start = 0;
        loop {
            let tables = self.lock();
            let end = (start + CHUNK).min(tables.entries.len());
            f(&tables, start..end);
            if end >= tables.entries.len() {
                return;
            }
            start = end;
        }
    }

    /// What a report shows of every (pattern, domain): workflows with their
    /// runs in the last `window`, steps with their totals. Runs are in the
    /// window by their age: no instant before the monotonic clock's start
    /// is ever needed, and stored runs are judged on the wall clock. The
    /// lock is held a chunk of entries at a time, and confidences are
    /// worked out after it is released.
    pub(crate) fn report_rows(&self, window: Duration, prior: Prior) -> Vec<ReportRow> {
        let clock = Clock::now();
        let since_unix_ms = clock.unix_ms_ago(window);
        let start = clock.instant.checked_sub(window);
        let in_window = |at: Instant| clock.instant.saturating_duration_since(at) <= window;
        let mut rows: Vec<(ReportRow, Option<Evidence>)> = Vec::new();
        let mut steps: HashMap<(String, String), PatternStats> = HashMap::new();
        self.chunked(|tables, range| {
            for e in &tables.entries[range] {
                let name = &e.name;
                let slot = &tables.confidence[e.run_slot];
                let worst_step = e
                    .steps
                    .iter()
                    .zip(&e.step_stats)
                    .filter(|(_, s)| s.failures > 0)
                    .max_by_key(|(_, s)| s.failures)
                    .map(|(step, s)| ((*step).to_owned(), s.failures));
                let earlier = tables
                    .baseline_recent
                    .get(&((*name).to_owned(), e.domain.to_string()))
                    .into_iter()
                    .flatten()
                    .filter(|r| r.at_unix_ms >= since_unix_ms)
                    .map(|r| (Duration::from_micros(r.latency_us), r.ok));
                // Every run of the window, or its counts by period when
                // there were more than the ring keeps.
                let binned = e
                    .windows
                    .as_ref()
                    .filter(|_| !e.recent.covers(start))
                    .map(|w| Box::new(w.summary(e.recent.offset(clock.instant), window)));
                let refused = match &binned {
                    Some(summary) if !e.refused.covers(start) => summary.refused,
                    _ => e.refused.iter().filter(|at| in_window(*at)).count() as u64,
                };
                let runs = match binned {
                    Some(mut summary) => {
                        for (latency, ok) in earlier {
                            summary.add(latency, ok);
                        }
                        InWindow::Binned(summary)
                    }
                    None => InWindow::Listed(
                        earlier
                            .chain(
                                e.recent
                                    .iter()
                                    .filter(|(at, _, _)| in_window(*at))
                                    .map(|(_, d, ok)| (d, ok)),
                            )
                            .collect(),
                    ),
                };
                rows.push((
                    ReportRow {
                        pattern: (*name).to_owned(),
                        domain: e.domain.to_string(),
                        workflow: true,
                        totals: e.run,
                        runs,
                        refused,
                        confidence: None,
                        breaker: slot.breaker.state(),
                        trend: slot.trend.iter().collect(),
                        worst_step,
                    },
                    Some(slot.evidence),
                ));
                for (step, stats) in e.steps.iter().zip(&e.step_stats) {
                    if stats.executions > 0 || stats.held_back > 0 || stats.rejected > 0 {
                        steps
                            .entry(((*step).to_owned(), e.domain.to_string()))
                            .or_default()
                            .merge(stats);
                    }
                }
            }
        });
        // A step that is also a workflow (a `degrade!` at the top) has its
        // row already: a set, not a scan of the rows per step.
        let workflows: std::collections::HashSet<(String, String)> = rows
            .iter()
            .map(|(r, _)| (r.pattern.clone(), r.domain.clone()))
            .collect();
        let step_rows = self.step_rows(steps, &workflows);
        let mut rows: Vec<ReportRow> = rows
            .into_iter()
            .chain(step_rows)
            .map(|(mut row, evidence)| {
                row.confidence = evidence.map(|e| e.confidence(prior));
                row
            })
            .collect();
        rows.sort_by(|a, b| (&a.pattern, &a.domain).cmp(&(&b.pattern, &b.domain)));
        rows
    }

    /// The rows of steps (with their summed totals) that are not also
    /// workflows, their gates read a chunk at a time.
    fn step_rows(
        &self,
        steps: HashMap<(String, String), PatternStats>,
        workflows: &std::collections::HashSet<(String, String)>,
    ) -> Vec<(ReportRow, Option<Evidence>)> {
        let mut step_rows = Vec::new();
        for chunk in steps
            .into_iter()
            .filter(|key| !workflows.contains(&key.0))
            .collect::<Vec<_>>()
            .chunks(CHUNK)
        {
            let tables = self.lock();
            for (key, totals) in chunk {
                let slot = tables.slot_of(key);
                step_rows.push((
                    ReportRow {
                        confidence: None,
                        breaker: slot.map(|s| s.breaker.state()).unwrap_or_default(),
                        refused: 0,
                        trend: slot.map(|s| s.trend.iter().collect()).unwrap_or_default(),
                        pattern: key.0.clone(),
                        domain: key.1.clone(),
                        workflow: false,
                        totals: *totals,
                        runs: InWindow::Listed(Vec::new()),
                        worst_step: None,
                    },
                    slot.map(|s| s.evidence),
                ));
            }
        }
        step_rows
    }
}

/// What the timeline reads of one workflow in one domain.
pub(crate) struct WorkflowReading<'a> {
    pub(crate) pattern: &'static str,
    pub(crate) domain: &'a str,
    /// Its runs since the runtime started.
    pub(crate) totals: &'a PatternStats,
    /// Its most recent runs: when they ended, how long they took.
    pub(crate) recent: &'a Recent,
    /// The mean of its confidence.
    pub(crate) confidence: f64,
}

impl StatsTable {
    /// Calls `f` with every workflow's reading, under the statistics lock
    /// (keep `f` short), taken a chunk of entries at a time.
    pub(crate) fn for_each_workflow(&self, prior: Prior, mut f: impl FnMut(WorkflowReading<'_>)) {
        self.chunked(|tables, range| {
            for e in &tables.entries[range] {
                let name = &e.name;
                f(WorkflowReading {
                    pattern: name,
                    domain: &e.domain,
                    totals: &e.run,
                    recent: &e.recent,
                    confidence: tables.confidence[e.run_slot].evidence.mean(prior),
                });
            }
        });
    }

    /// The confidence of every (pattern, domain) with outcomes.
    /// (Only the evidence is copied under the lock; the credible intervals
    /// are worked out after.)
    pub(crate) fn confidences(&self, prior: Prior) -> Vec<(String, String, Confidence)> {
        let evidence: Vec<((String, String), Evidence)> = {
            let tables = self.lock();
            tables
                .slots
                .iter()
                .map(|(key, slot)| (key, tables.confidence[*slot].evidence))
                .filter(|(_, evidence)| evidence.samples > 0)
                .map(|(key, evidence)| (key.clone(), evidence))
                .collect()
        };
        let mut out: Vec<_> = evidence
            .into_iter()
            .map(|((p, d), evidence)| (p, d, evidence.confidence(prior)))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
    }
}
