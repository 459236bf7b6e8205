//! Judging, at the start of a run, what confidence holds back.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::Admission;
use super::entry::{OVERFLOW_DOMAIN, Tables, entry_index, same_steps};
use super::slot::{NotClosed, SlotGate};
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
    /// Held back by a step's `breaker(…)` window.
    pub(crate) window: bool,
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
            window: self.window,
        }
    }
}

/// What gating reads of one entry without the lock.
#[derive(Debug)]
pub(super) struct EntryGate {
    pub(super) workflow: &'static str,
    pub(super) domain: Box<str>,
    pub(super) steps: &'static [&'static str],
    /// The entry's id.
    pub(super) index: usize,
    pub(super) run: Arc<SlotGate>,
    pub(super) step_gates: Box<[Arc<SlotGate>]>,
}

/// (workflow, domain): what the gate index is keyed by.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct EntryKey {
    workflow: &'static str,
    domain: Box<str>,
}

/// An [`EntryKey`] looked up without building one (hashed alike).
#[derive(Hash)]
struct Query<'a> {
    workflow: &'static str,
    domain: &'a str,
}

impl papaya::Equivalent<EntryKey> for Query<'_> {
    fn equivalent(&self, key: &EntryKey) -> bool {
        self.workflow == key.workflow && self.domain == &*key.domain
    }
}

type Hasher = foldhash::fast::RandomState;

/// Every entry's gates, for judging a run without the lock: a concurrent
/// map by (workflow, domain), so that finding a run's entry costs one
/// lookup however many domains there are, and adding one copies nothing.
#[derive(Debug)]
pub(crate) struct GateIndex {
    /// This index among every runtime's, for the thread's last entry.
    id: u64,
    entries: papaya::HashMap<EntryKey, Arc<EntryGate>, Hasher>,
    /// Each workflow's [`OVERFLOW_DOMAIN`] entry, once it has one.
    overflow: papaya::HashMap<&'static str, Arc<EntryGate>, Hasher>,
    /// Whether the statistics hold `max_entries` entries: a domain not in
    /// `entries` is then learned as its workflow's overflow.
    full: AtomicBool,
    /// How many slots' breakers are not closed, as the slots count them.
    not_closed: NotClosed,
}

impl GateIndex {
    /// An index whose runs read `not_closed`, what the statistics' slots
    /// count.
    pub(super) fn counting(not_closed: NotClosed) -> Self {
        static IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Self {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            entries: papaya::HashMap::default(),
            overflow: papaya::HashMap::default(),
            full: AtomicBool::new(false),
            not_closed,
        }
    }
}

thread_local! {
    /// The entry this thread's last run found, with the id of its index:
    /// a thread running one workflow in one domain again and again (a
    /// worker, a loop) finds it without hashing the domain. An entry's
    /// gates never change once published, so it is never stale; it keeps
    /// one entry's few hundred bytes alive per thread after its runtime
    /// is dropped, until the thread's next run.
    static LAST: std::cell::RefCell<Option<(u64, Arc<EntryGate>)>> =
        const { std::cell::RefCell::new(None) };
}

impl GateIndex {
    /// `judge` of the gates of `workflow` in `domain` (its overflow entry
    /// once the statistics are full), if published; the gates are read in
    /// place, without touching their reference counts but on a change of
    /// the thread's last entry.
    fn judge<R>(
        &self,
        workflow: &'static str,
        domain: &str,
        judge: impl FnOnce(&EntryGate) -> Option<R>,
    ) -> Option<R> {
        let hit = LAST.with_borrow(|last| {
            last.as_ref().is_some_and(|(id, gate)| {
                *id == self.id && std::ptr::eq(gate.workflow, workflow) && *gate.domain == *domain
            })
        });
        if hit {
            // Nothing on this thread replaced it since: `judge` reads gates.
            return LAST.with_borrow(|last| last.as_ref().and_then(|(_, gate)| judge(gate)));
        }
        let query = Query { workflow, domain };
        if let Some(gate) = self.entries.pin().get(&query) {
            LAST.set(Some((self.id, Arc::clone(gate))));
            return judge(gate);
        }
        if !self.full.load(Ordering::Acquire) {
            return None;
        }
        judge(self.overflow.pin().get(workflow)?)
    }
}

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
            self.publish_entry(tables, index, config.max_entries);
        }
        let entry = &tables.entries[index];
        let domain = &entry.domain;
        let mut judge = |slot: usize, threshold: f64, policy| -> Option<Blocked> {
            let s = &mut tables.confidence[slot];
            s.breaker.govern(policy);
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
                    window: policy.is_some(),
                }),
            }
        };
        let workflow = judge(entry.run_slot, config.confidence_threshold, None);
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
                .and_then(|slot| judge(*slot, threshold, meta.breaker.as_ref()))
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
        let all_closed = &self.index.not_closed;
        self.index.judge(query.workflow, query.domain, |entry| {
            if !same_steps(entry.steps, query.steps) {
                // Another workflow of the same name: judged under the lock.
                return None;
            }
            // Every breaker of the runtime closed: nothing to read per step.
            if !all_closed.none() {
                if !entry.run.passes() {
                    return None;
                }
                for (gate, meta) in entry.step_gates.iter().zip(query.metas) {
                    if meta.is_some() && !gate.passes() {
                        return None;
                    }
                }
            }
            Some(Gates {
                entry: entry.index,
                workflow: None,
                steps: Vec::new(),
            })
        })
    }

    /// Adds the gates of the new entry `index` to the index runs read
    /// without the lock (called under the lock, so publishers never race).
    fn publish_entry(&self, tables: &Tables, index: usize, max_entries: usize) {
        let e = &tables.entries[index];
        let gate = |slot: usize| Arc::clone(&tables.confidence[slot].gate);
        let entry = Arc::new(EntryGate {
            workflow: e.name,
            domain: e.domain.clone(),
            steps: e.steps,
            index,
            run: gate(e.run_slot),
            step_gates: e.step_slots.iter().map(|s| gate(*s)).collect(),
        });
        if &*e.domain == OVERFLOW_DOMAIN {
            let overflow = self.index.overflow.pin();
            if !overflow.contains_key(e.name) {
                overflow.insert(e.name, Arc::clone(&entry));
            }
        }
        let key = EntryKey {
            workflow: e.name,
            domain: e.domain.clone(),
        };
        // The first entry of a (workflow, domain) stays: another workflow
        // of the same name is found under the lock.
        let entries = self.index.entries.pin();
        if !entries.contains_key(&key) {
            entries.insert(key, entry);
        }
        if tables.entries.len() >= max_entries {
            self.index.full.store(true, Ordering::Release);
        }
    }
}
