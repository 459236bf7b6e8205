//! What the statistics load from a store and save to it.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::Breaker;
use super::entry::resolve;
use super::recent::RECENT;
use super::table::StatsTable;
use crate::model::{
    BreakerState, Clock, Evidence, PatternStats, RecentRun, StoredBreaker, StoredStats,
};

impl StatsTable {
    /// Loads what a store held, at the moment `clock` (one for every row of
    /// a load). Stored runs keep their wall-clock times: they age out of
    /// report windows and are saved again as they were.
    pub(crate) fn seed(&self, row: &StoredStats, clock: &Clock) {
        let (pattern, domain, stats, evidence) = (
            row.pattern.as_str(),
            row.domain.as_str(),
            &row.stats,
            &row.evidence,
        );
        let mut tables = self.lock();
        if !row.recent.is_empty() {
            tables
                .baseline_recent
                .entry((pattern.to_owned(), domain.to_owned()))
                .or_default()
                .extend(row.recent.iter().copied());
        }
        tables
            .baseline
            .entry((pattern.to_owned(), domain.to_owned()))
            .or_default()
            .merge(stats);
        tables
            .saved
            .entry((pattern.to_owned(), domain.to_owned()))
            .or_default()
            .merge(stats);
        let tables = &mut *tables;
        let slot = resolve(
            &mut tables.slots,
            &mut tables.confidence,
            &tables.not_closed,
            (pattern.to_owned(), domain.to_owned()),
        );
        let s = &mut tables.confidence[slot];
        s.evidence = *evidence;
        s.breaker = Breaker::restored(&row.breaker, clock);
        s.gate.publish(s.breaker.state());
        tables.saved_gate.insert(
            (pattern.to_owned(), domain.to_owned()),
            GateMark::of(evidence, &row.breaker),
        );
    }

    /// What changed since the store last acknowledged a save, summed by
    /// (pattern, domain), with its confidence evidence and breaker, sorted:
    /// a save writes only the rows whose counts, evidence or breaker moved.
    ///
    /// The statistics are read a chunk at a time (runs go on ending in
    /// between): a row is what its entries held when their chunk was read,
    /// and since each save adds what a row gained since the row last
    /// acknowledged, a run learned between chunks is saved now or next
    /// time, never twice.
    pub(crate) fn snapshot(&self) -> Vec<StoredStats> {
        let clock = Clock::now();
        let mut sums: HashMap<(String, String), PatternStats> = HashMap::new();
        let mut recent: HashMap<(String, String), Vec<RecentRun>> = HashMap::new();
        self.chunked(|tables, range| {
            for e in &tables.entries[range] {
                let key = ((*e.name).to_owned(), e.domain.to_string());
                let runs = recent.entry(key.clone()).or_default();
                runs.extend(e.recent.iter().map(|r| stored(&clock, r)));
                let excess = runs.len().saturating_sub(RECENT);
                runs.drain(..excess);
                sums.entry(key).or_default().merge(&e.run);
                for (step, stats) in e.steps.iter().zip(&e.step_stats) {
                    if stats.executions > 0
                        || stats.compensations > 0
                        || stats.held_back > 0
                        || stats.rejected > 0
                    {
                        sums.entry(((*step).to_owned(), e.domain.to_string()))
                            .or_default()
                            .merge(stats);
                    }
                }
            }
        });
        // Rows the store held that nothing ran since: their counts cannot
        // have moved, but their gate may have.
        let stored_only: Vec<(String, String)> = {
            let tables = self.lock();
            tables
                .baseline
                .keys()
                .filter(|key| !sums.contains_key(*key))
                .cloned()
                .collect()
        };
        let keys: Vec<(String, String)> = sums.keys().cloned().chain(stored_only).collect();
        let mut rows = Vec::new();
        for chunk in keys.chunks(super::reporting::CHUNK) {
            let tables = self.lock();
            for key in chunk {
                let mut s = tables.baseline.get(key).copied().unwrap_or_default();
                if let Some(own) = sums.get(key) {
                    s.merge(own);
                }
                let slot = tables.slot_of(key);
                let evidence = slot.map(|s| s.evidence).unwrap_or_default();
                let breaker = slot.map(|s| s.breaker.stored(&clock)).unwrap_or_default();
                let added = s.since(&tables.saved.get(key).copied().unwrap_or_default());
                let unchanged = added == PatternStats::default()
                    && tables.saved_gate.get(key) == Some(&GateMark::of(&evidence, &breaker));
                if unchanged {
                    continue;
                }
                let mut runs: Vec<RecentRun> =
                    tables.baseline_recent.get(key).cloned().unwrap_or_default();
                if let Some(new) = recent.remove(key) {
                    runs.extend(new);
                    let excess = runs.len().saturating_sub(RECENT);
                    runs.drain(..excess);
                }
                rows.push(StoredStats {
                    pattern: key.0.clone(),
                    domain: key.1.clone(),
                    stats: s,
                    added,
                    evidence,
                    breaker,
                    recent: runs,
                });
            }
        }
        rows.sort_by(|a, b| (&a.pattern, &a.domain).cmp(&(&b.pattern, &b.domain)));
        rows
    }

    /// Records that the store holds `rows`: later saves add what was
    /// learned since.
    pub(crate) fn acknowledge(&self, rows: &[StoredStats]) {
        for chunk in rows.chunks(super::reporting::CHUNK) {
            let mut tables = self.lock();
            for row in chunk {
                let key = (row.pattern.clone(), row.domain.clone());
                let mark = GateMark::of(&row.evidence, &row.breaker);
                tables.saved_gate.insert(key.clone(), mark);
                tables.saved.insert(key, row.stats);
            }
        }
    }
}

/// What a save wrote of a pattern's gate: when it is still this, the gate
/// has nothing new to save. (The breaker's time is left out: it moves
/// with the clock, not with what was learned.)
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct GateMark {
    evidence: Evidence,
    state: BreakerState,
    breaker_evidence: f64,
    calls: u64,
    failures: u32,
}

impl GateMark {
    fn of(evidence: &Evidence, breaker: &StoredBreaker) -> Self {
        Self {
            evidence: *evidence,
            state: breaker.state,
            breaker_evidence: breaker.evidence,
            calls: breaker.calls,
            failures: breaker.failures,
        }
    }
}

/// A run kept in memory as a store keeps it: on the wall clock.
fn stored(clock: &Clock, (at, latency, ok): (Instant, Duration, bool)) -> RecentRun {
    RecentRun {
        at_unix_ms: clock.unix_ms_of(at),
        latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
        ok,
    }
}
