//! Judging, at the start of a run, what confidence holds back.

use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use tokio::time::Instant;

use super::breaker::Admission;
use super::entry::{Tables, entry_index};
use super::slot::SlotGate;
use super::table::StatsTable;
use crate::config::Config;
use crate::error::Error;
use crate::model::{BreakerState, StepMeta};

/// Why a record is held back: its breaker, its confidence and the
/// threshold it missed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Blocked {
    pub(crate) confidence: f64,
    pub(crate) threshold: f64,
    pub(crate) state: BreakerState,
    pub(crate) retry_in: Option<Duration>,
    pub(crate) failures: u32,
    pub(crate) calls: u64,
    pub(crate) domain: Box<str>,
}

impl Blocked {
    /// The error of a run refused by this gate.
    pub(crate) fn into_error(self, pattern: &str) -> Error {
        Error::ConfidenceThreshold {
            pattern: pattern.to_owned(),
            domain: self.domain.into(),
            confidence: self.confidence,
            threshold: self.threshold,
            state: self.state,
            retry_in: self.retry_in,
            failures: self.failures,
            calls: self.calls,
        }
    }
}

/// What gating reads of one entry without the lock.
#[derive(Debug)]
pub(super) struct EntryGate {
    pub(super) domain: Box<str>,
    pub(super) steps: &'static [&'static str],
    /// The entry's id.
    pub(super) index: usize,
    pub(super) run: Arc<SlotGate>,
    pub(super) step_gates: Box<[Arc<SlotGate>]>,
}

/// Entries' gates by workflow name.
pub(super) type GateIndex = FxHashMap<&'static str, Vec<Arc<EntryGate>>>;

/// What [`StatsTable::gates`] needs of a run.
pub(crate) struct GateQuery<'a> {
    pub(crate) workflow: &'static str,
    pub(crate) steps: &'static [&'static str],
    pub(crate) metas: &'static [Option<&'static StepMeta>],
    pub(crate) domain: &'a str,
}

/// What a run may not run, and where it records what it learns.
#[derive(Debug, Default)]
pub(crate) struct Gates {
    /// The id of the run's entry.
    pub(crate) entry: usize,
    pub(crate) workflow: Option<Blocked>,
    pub(crate) steps: Vec<(usize, Blocked)>,
}

impl StatsTable {
    /// The records of a run held back by their gates, and whether the
    /// workflow itself is: a pattern whose breaker is open is held back
    /// until its break is over; a half-open one admits its probes and holds
    /// back the rest (see [`Breaker`](super::breaker)).
    pub(crate) fn gates(&self, query: &GateQuery<'_>, config: &Config, now: Instant) -> Gates {
        if let Some(gates) = self.gates_unlocked(query) {
            return gates;
        }
        let mut guard = self.lock();
        let tables = &mut *guard;
        let known = tables.entries.len();
        let index = entry_index(
            tables,
            query.workflow,
            query.steps,
            query.domain,
            config.max_entries,
        );
        if index >= known {
            self.publish_entry(tables, index);
        }
        let entry = &tables.entries[index];
        let domain = &entry.domain;
        let mut judge = |slot: usize, threshold: f64| -> Option<Blocked> {
            let s = &mut tables.confidence[slot];
            match s.breaker.admit(now, config) {
                // A probe leaves the published flag as it is: not closed
                // since the breaker opened (or was restored half-open).
                Admission::Serve | Admission::Probe => None,
                Admission::Refuse { state, retry_in } => Some(Blocked {
                    confidence: s.evidence.mean(config.prior),
                    threshold,
                    state,
                    retry_in,
                    failures: s.breaker.failures(),
                    calls: s.breaker.calls(),
                    domain: domain.clone(),
                }),
            }
        };
        let workflow = judge(entry.run_slot, config.confidence_threshold);
        if workflow.is_some() {
            return Gates {
                entry: index,
                workflow,
                steps: Vec::new(),
            };
        }
        let entry = &tables.entries[index];
        let mut steps = Vec::new();
        for (i, meta) in query.metas.iter().enumerate() {
            let Some(meta) = meta else { continue };
            let threshold = config.threshold_of(meta);
            if let Some(blocked) = entry
                .step_slots
                .get(i)
                .and_then(|slot| judge(*slot, threshold))
            {
                steps.push((i, blocked));
            }
        }
        Gates {
            entry: index,
            workflow,
            steps,
        }
    }
}

impl StatsTable {
    /// The gates of a run judged without the lock, from what learning
    /// published: `Some` when its entry exists and nothing is held back or
    /// cooling down (the happy path); `None` sends the run to the lock.
    fn gates_unlocked(&self, query: &GateQuery<'_>) -> Option<Gates> {
        let index = self.index.load();
        let entry = index.get(query.workflow)?.iter().find(|e| {
            &*e.domain == query.domain
                && (std::ptr::eq(e.steps, query.steps) || e.steps == query.steps)
        })?;
        if !entry.run.passes() {
            return None;
        }
        for (gate, meta) in entry.step_gates.iter().zip(query.metas) {
            if meta.is_some() && !gate.passes() {
                return None;
            }
        }
        Some(Gates {
            entry: entry.index,
            workflow: None,
            steps: Vec::new(),
        })
    }

    /// Adds the gates of the new entry `index` to the index
    /// that runs read without the lock (called under the lock).
    fn publish_entry(&self, tables: &Tables, index: usize) {
        let e = &tables.entries[index];
        let gate = |slot: usize| Arc::clone(&tables.confidence[slot].gate);
        let entry = Arc::new(EntryGate {
            domain: e.domain.clone(),
            steps: e.steps,
            index,
            run: gate(e.run_slot),
            step_gates: e.step_slots.iter().map(|s| gate(*s)).collect(),
        });
        let mut next = GateIndex::clone(&self.index.load());
        next.entry(e.name).or_default().push(entry);
        self.index.store(Arc::new(next));
    }
}
