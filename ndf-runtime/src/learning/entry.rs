//! The tables behind the statistics lock: an entry per (workflow, domain),
//! a confidence slot per (pattern, domain), and learning one run into them.

use std::collections::HashMap;
use std::time::Duration;

use rustc_hash::FxHashMap;

use super::breaker::Transition;
use super::observe::{BreakerChange, RunObservation, StepObservation, Watcher};
use super::outliers::LatencyWindow;
use super::pending::{PendingRun, RunHead};
use super::recent::{Recent, Refusals};
use super::slot::{NotClosed, Slot};
use super::windows::Windows;
use crate::config::Config;
use crate::model::{PatternStats, Prior, RecentRun, RunEnd, StepMeta, StepOutcome};
use tokio::time::Instant;

/// The domain under which runs in new domains are learned once the
/// statistics hold `Config::max_entries` (workflow, domain) entries.
pub const OVERFLOW_DOMAIN: &str = "(overflow)";

/// (pattern, domain).
pub(super) type Key = (String, String);

/// What was learned of one workflow in one domain: its runs, and its
/// steps by record index, with the confidence slots they update.
#[derive(Debug)]
pub(super) struct WorkflowEntry {
    pub(super) name: &'static str,
    pub(super) domain: Box<str>,
    pub(super) steps: &'static [&'static str],
    pub(super) run: PatternStats,
    pub(super) step_stats: Vec<PatternStats>,
    pub(super) run_slot: usize,
    pub(super) step_slots: Vec<usize>,
    /// Recent latencies for outliers, made at the first run (and again
    /// after an eviction).
    pub(super) latencies: Option<Box<LatencyWindow>>,
    /// Recent runs: when, how long, whether they succeeded.
    pub(super) recent: Recent,
    /// When recent runs were refused by the gate.
    pub(super) refused: Refusals,
    /// Every run and refusal by minute and hour, for reports over a
    /// window; made at the first run (and again after an eviction).
    pub(super) windows: Option<Box<Windows>>,
    /// When its last run was learned.
    pub(super) last: Instant,
    /// Idle past `Config::evict_idle_after` and saved: its rings are freed
    /// (its counters and its gate stay); its next run brings them back.
    pub(super) evicted: bool,
    /// Clean runs counted but not yet learned into the slots and the
    /// steps' counters (see [`Tables::fold`]).
    pub(super) clean: Option<Clean>,
    /// The [`Tables::epoch`] at which its slots were last all found steady
    /// for the metas (by address) of its workflow.
    pub(super) steady: Option<(u64, usize)>,
}

/// Clean runs of one entry waiting to be learned into its slots (the
/// workflow's and its steps') and its steps' counters: runs that
/// succeeded, each step at its first attempt, while each of those slots was
/// [steady](Slot::steady). Such successes change no gate and commute, so
/// they are counted as the runs end and learned together. (The run's own
/// counters, latency, rings, alerts and metrics are learned as it ends.)
#[derive(Debug, Clone, Copy)]
pub(super) struct Clean {
    runs: u64,
    /// When the last of them ended.
    at: Instant,
    /// What they are learned with (the configuration they were counted
    /// under).
    learning_rate: f64,
    prior: Prior,
}

impl WorkflowEntry {
    /// Counts one run of the workflow; `None` for a run its gate refused,
    /// else whether its latency was an outlier.
    fn count(&mut self, run: &RunHead) -> Option<bool> {
        self.last = self.last.max(run.at);
        self.evicted = false;
        match run.end {
            RunEnd::Refused => {
                // Refused by its gate before it started: not an execution,
                // but a call that was not served.
                self.run.held_back += 1;
                self.refused.push(run.at);
                let at = self.recent.offset(run.at);
                self.windows.get_or_insert_with(Box::default).refusal(at);
                return None;
            }
            RunEnd::Rejected => {
                self.run.rejected += 1;
                return Some(false);
            }
            RunEnd::Ok | RunEnd::Failed => {}
        }
        let ok = run.end == RunEnd::Ok;
        self.run.executions += 1;
        if ok {
            self.run.successes += 1;
        } else {
            self.run.failures += 1;
        }
        let nanos = super::recent::nanos(run.latency);
        self.run.total_latency_ns = self.run.total_latency_ns.saturating_add(nanos);
        let outlier = self
            .latencies
            .get_or_insert_with(Box::default)
            .observe(run.latency);
        self.run.outliers += u64::from(outlier);
        // One reading of the clock for the ring and the counts by period.
        let at = self.recent.offset(run.at);
        self.recent.push(at, run.latency, ok);
        self.windows
            .get_or_insert_with(Box::default)
            .run(at, run.latency, ok);
        Some(outlier)
    }

    /// Counts a clean run ended at `at`, to be learned into its slots with
    /// the others waiting; whether it is the first waiting.
    fn wait_clean(&mut self, at: Instant, config: &Config) -> bool {
        let first = self.clean.is_none();
        let waiting = self.clean.get_or_insert(Clean {
            runs: 0,
            at,
            learning_rate: config.learning_rate,
            prior: config.prior,
        });
        waiting.runs += 1;
        waiting.at = waiting.at.max(at);
        first
    }
}

/// What applying queued runs found.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    /// Another thread held the statistics: nothing was applied.
    pub(crate) busy: bool,
    /// Runs applied.
    pub(crate) runs: u64,
    /// Clean runs started waiting to be folded (see [`Tables::fold`]):
    /// whoever learns must see that they are, within `learning_interval`.
    pub(crate) clean_waiting: bool,
}

/// Everything behind the one lock a run takes when it ends.
#[derive(Debug, Default)]
pub(super) struct Tables {
    /// Every workflow's entries (one per domain), by id: a queued run names
    /// its entry by id, so learning it needs no lookup.
    pub(super) entries: Vec<WorkflowEntry>,
    /// Entry ids by workflow name and domain (several only for different
    /// workflows of one name).
    pub(super) ids: FxHashMap<&'static str, HashMap<Box<str>, Vec<usize>>>,
    /// Whether new domains have been folded into [`OVERFLOW_DOMAIN`].
    pub(super) overflowed: bool,
    /// Confidence by slot; a slot is one (pattern, domain).
    pub(super) confidence: Vec<Slot>,
    pub(super) slots: HashMap<Key, usize>,
    /// How many of the slots' breakers are not closed (shared with the
    /// [`GateIndex`](super::gates::GateIndex) runs read).
    pub(super) not_closed: NotClosed,
    /// What the store held when the runtime started, by (pattern, domain).
    pub(super) baseline: HashMap<Key, PatternStats>,
    /// Recent runs the store held for workflows, by (pattern, domain), as
    /// stored: on the wall clock.
    pub(super) baseline_recent: HashMap<Key, Vec<RecentRun>>,
    /// The counters as the store last acknowledged them, by (pattern,
    /// domain): what a save adds is measured from these.
    pub(super) saved: HashMap<Key, PatternStats>,
    /// The gates as the store last acknowledged them.
    pub(super) saved_gate: HashMap<Key, super::persist::GateMark>,
    /// Who hears what is learned.
    pub(super) watcher: Watcher,
    /// The slots whose breaker holds evidence pulled from other processes
    /// (see `fleet.rs`): the next pull visits these and its own, no others.
    pub(super) fleet_slots: Vec<usize>,
    /// The entries with [`Clean`] runs waiting.
    pub(super) dirty: Vec<usize>,
    /// Counts the times a slot may have stopped being steady: each run
    /// learned one by one, and each lock of the statistics other than to
    /// learn a run (reads, saves, fleet pulls, resets, new entries) adds
    /// one. A clean run only keeps steady slots steady.
    pub(super) epoch: u64,
    /// Learns every run one by one, the steps of clean runs too: what the
    /// tests compare learning clean runs together with.
    #[cfg(test)]
    pub(super) one_by_one: bool,
}

impl Tables {
    /// Learns one queued run.
    pub(super) fn learn_queued(
        &mut self,
        run: &PendingRun,
        config: &Config,
        learned: &mut Learned,
    ) {
        self.learn(&run.head, run.steps.iter().copied(), config, learned);
    }

    /// Learns one run from its step records' bits, counts it, and tells the
    /// watcher what it observed. A clean run (see [`Clean`]) is learned
    /// into its slots later, with the other clean runs of its entry, by
    /// [`Tables::fold`]; any other run folds them first, so that every
    /// slot learns its outcomes in order.
    pub(super) fn learn(
        &mut self,
        run: &RunHead,
        steps: impl Iterator<Item = u32> + Clone,
        config: &Config,
        learned: &mut Learned,
    ) {
        let clean = self.clean(run, steps.clone(), config);
        if !clean {
            self.fold();
            self.epoch += 1;
        }
        let Tables {
            entries,
            confidence,
            watcher,
            dirty,
            ..
        } = self;
        let observer = &mut *watcher.0;
        let Some(entry) = entries.get_mut(run.entry) else {
            return;
        };
        learned.runs += 1;
        let outlier = entry.count(run);
        let domain: &str = &entry.domain;
        let mut observation = RunObservation {
            entry: run.entry,
            workflow: run.workflow,
            domain,
            end: run.end,
            latency: run.latency,
            outlier: outlier.unwrap_or(false),
            taught: None,
        };
        if outlier.is_none() {
            observer.run(&observation);
            return;
        }
        let ran = run.end != RunEnd::Rejected;
        let ok = run.end == RunEnd::Ok;
        let at = run.at;
        // Learns one outcome of a slot; the breaker's change, if any, is
        // told after the outcome itself.
        let mut learn = |slot: usize, ok: bool, threshold: f64, policy| {
            let s = &mut confidence[slot];
            let (mean, transition) = s.learn(ok, threshold, policy, at, config);
            let change = transition.map(|transition| Change {
                transition,
                confidence: mean,
                threshold,
                failures: s.breaker.failures(),
                calls: s.breaker.calls(),
                break_for: s.breaker.break_for(config),
                window: policy.is_some(),
            });
            (mean, change)
        };
        let mut run_change = None;
        if ran {
            // A clean run's own slot learns it with its steps' (the fold).
            if !clean {
                let (_, change) = learn(entry.run_slot, ok, config.confidence_threshold, None);
                run_change = change;
            }
            observation.taught = Some(ok);
        }
        observer.run(&observation);
        if let Some(change) = run_change {
            observer.breaker(&change.of(run.workflow, domain));
        }
        if clean {
            if entry.wait_clean(at, config) {
                dirty.push(run.entry);
                learned.clean_waiting = true;
            }
            return;
        }
        for (i, (stats, bits)) in entry.step_stats.iter_mut().zip(steps).enumerate() {
            let outcome = StepOutcome::decode(bits);
            let mut step = StepObservation {
                entry: run.entry,
                index: i,
                outcome,
                taught: None,
            };
            if outcome.level.is_some() && entry.steps[i] == run.workflow {
                // A `degrade!` at the top is the workflow itself: its run is
                // counted once, above; only the level it served adds here.
                entry.run.degradations += u64::from(outcome.degraded());
                step.outcome.ran = false;
                observer.step(&step);
                continue;
            }
            stats.add_step(outcome);
            if outcome.ran && !outcome.rejected {
                let meta = run.metas.get(i).copied().flatten();
                let policy = meta.and_then(|m| m.breaker.as_ref());
                let threshold = record_threshold(config, meta);
                // Served by the fallback, or slower than its `slow_call`,
                // is a failure of the step itself.
                let ok = outcome.ok && !outcome.fallback && !outcome.slow;
                let (_, change) = learn(entry.step_slots[i], ok, threshold, policy);
                step.taught = Some(ok);
                if let Some(change) = change {
                    observer.breaker(&change.of(entry.steps[i], domain));
                }
            }
            observer.step(&step);
        }
    }

    /// Whether `run` is clean (see [`Clean`]) and can be counted with the
    /// clean runs its entry has waiting. Its records are read every time;
    /// its slots and options only when a slot may have changed since they
    /// were last found steady ([`Tables::epoch`]).
    fn clean(&mut self, run: &RunHead, steps: impl Iterator<Item = u32>, config: &Config) -> bool {
        #[cfg(test)]
        if self.one_by_one {
            return false;
        }
        if run.end != RunEnd::Ok {
            return false;
        }
        let Some(entry) = self.entries.get(run.entry) else {
            return false;
        };
        if entry.steps.is_empty()
            || entry.clean.is_some_and(|c| {
                c.learning_rate.to_bits() != config.learning_rate.to_bits()
                    || c.prior != config.prior
            })
        {
            return false;
        }
        // Every record read, without a branch for each: a loop that stops
        // at the first record not clean is not vectorized, and cost 8
        // instructions a step (callgrind, a `sequential!` of 100).
        let (records, unclean) = steps.fold((0, false), |(records, unclean), bits| {
            (records + 1, unclean | !StepOutcome::clean(bits))
        });
        if unclean || records != entry.step_slots.len() {
            return false;
        }
        let seen = (self.epoch, run.metas.as_ptr() as usize);
        if entry.steady == Some(seen) {
            return true;
        }
        // A threshold of zero holds nothing back, and so does not count;
        // a step's `breaker(…)` window counts each outcome.
        let steady = config.confidence_threshold > 0.0
            && self.confidence[entry.run_slot].steady()
            && entry.step_slots.iter().enumerate().all(|(i, &slot)| {
                let meta = run.metas.get(i).copied().flatten();
                meta.is_none_or(|m| m.breaker.is_none())
                    && record_threshold(config, meta) > 0.0
                    && self.confidence[slot].steady()
            });
        if steady {
            self.entries[run.entry].steady = Some(seen);
        }
        steady
    }

    /// Learns the waiting clean runs into their slots and steps' counters,
    /// and tells the watcher (their steps' metrics): the same as learning
    /// each as it ended. Called before any other run is learned, whenever
    /// the statistics are read or changed other than by learning a run
    /// ([`StatsTable::lock`](super::StatsTable::lock)), and by the learner
    /// within `learning_interval` of the first one waiting.
    pub(super) fn fold(&mut self) {
        let Tables {
            entries,
            confidence,
            dirty,
            watcher,
            ..
        } = self;
        for id in dirty.drain(..) {
            let Some(entry) = entries.get_mut(id) else {
                continue;
            };
            let Some(clean) = entry.clean.take() else {
                continue;
            };
            let learn = |slot: &mut Slot| {
                slot.learn_successes(clean.runs, clean.at, clean.learning_rate, clean.prior);
            };
            learn(&mut confidence[entry.run_slot]);
            for (stats, &slot) in entry.step_stats.iter_mut().zip(&entry.step_slots) {
                stats.add_successes(clean.runs);
                learn(&mut confidence[slot]);
            }
            watcher.0.clean_steps(id, entry.steps.len(), clean.runs);
        }
    }

    /// Frees what the entries idle since before `idle_since` hold beyond
    /// their counters and gates (their rings of recent runs, refusals and
    /// latencies, and the watcher's state of them); returns the ids
    /// evicted. Called after a save: what is freed is in the store.
    pub(super) fn evict_idle(&mut self, idle_since: Instant) -> Vec<usize> {
        let mut evicted = Vec::new();
        for (id, e) in self.entries.iter_mut().enumerate() {
            if e.evicted || e.last >= idle_since {
                continue;
            }
            e.latencies = None;
            e.windows = None;
            e.recent.free();
            e.refused.free();
            for slot in std::iter::once(e.run_slot).chain(e.step_slots.iter().copied()) {
                // The report's confidence trend starts afresh too.
                self.confidence[slot].trend = super::slot::Trend::default();
            }
            e.evicted = true;
            self.baseline_recent
                .remove(&(e.name.to_owned(), e.domain.to_string()));
            self.watcher.0.entry_evicted(id, e.name, &e.domain);
            evicted.push(id);
        }
        evicted
    }

    /// The slot of `pattern` in `domain`, if it was ever learned.
    pub(super) fn slot(&self, pattern: &str, domain: &str) -> Option<&Slot> {
        self.slot_of(&(pattern.to_owned(), domain.to_owned()))
    }

    /// The slot of `key`, if it was ever learned.
    pub(super) fn slot_of(&self, key: &Key) -> Option<&Slot> {
        Some(&self.confidence[*self.slots.get(key)?])
    }

    /// Reports that the breaker of `pattern` in `domain` was closed by a
    /// reset.
    pub(super) fn reset_reported(&mut self, pattern: &str, domain: &str, slot: usize) {
        let s = &self.confidence[slot];
        self.watcher.0.breaker(&BreakerChange {
            pattern,
            domain,
            transition: Transition::Closed,
            confidence: s.evidence.mean(crate::model::Prior::default()),
            threshold: f64::NAN,
            failures: 0,
            calls: 0,
            break_duration: Duration::ZERO,
            fleet: false,
            window: false,
        });
    }
}

/// The threshold a step record's slot learns under: its step's (see
/// [`Config::threshold_of`]), or the config's for a record without one.
fn record_threshold(config: &Config, meta: Option<&StepMeta>) -> f64 {
    meta.map_or(config.confidence_threshold, |m| config.threshold_of(m))
}

/// A breaker's change of state, before it is told.
struct Change {
    transition: Transition,
    confidence: f64,
    threshold: f64,
    failures: u32,
    calls: u64,
    /// How long an opening holds the pattern back.
    break_for: Duration,
    /// A step's `breaker(…)`.
    window: bool,
}

impl Change {
    fn of<'a>(&self, pattern: &'a str, domain: &'a str) -> BreakerChange<'a> {
        BreakerChange {
            pattern,
            domain,
            transition: self.transition,
            confidence: self.confidence,
            threshold: self.threshold,
            failures: self.failures,
            calls: self.calls,
            break_duration: self.break_for,
            fleet: false,
            window: self.window,
        }
    }
}

/// The id of the entry of a workflow in a domain, created (with its
/// confidence slots) if new. Past `max_entries` entries, a new domain is
/// learned as [`OVERFLOW_DOMAIN`]: unbounded domain values (tenant or
/// request ids) cannot grow memory without bound.
pub(super) fn entry_index(
    tables: &mut Tables,
    workflow: &'static str,
    steps: &'static [&'static str],
    domain: &str,
    max_entries: usize,
) -> usize {
    let find = |tables: &Tables, domain: &str| {
        tables
            .ids
            .get(workflow)?
            .get(domain)?
            .iter()
            .copied()
            .find(|id| {
                let e = &tables.entries[*id];
                same_steps(e.steps, steps)
            })
    };
    if let Some(id) = find(tables, domain) {
        return id;
    }
    let domain = if tables.entries.len() >= max_entries {
        if !tables.overflowed {
            tables.overflowed = true;
            tracing::warn!(
                target: "ndf::capacity",
                max_entries,
                "the statistics hold `max_entries` workflow and domain entries: runs in new domains are learned as `{OVERFLOW_DOMAIN}`"
            );
        }
        if let Some(id) = find(tables, OVERFLOW_DOMAIN) {
            return id;
        }
        OVERFLOW_DOMAIN
    } else {
        domain
    };
    let mut slot = |name: &str| {
        resolve(
            &mut tables.slots,
            &mut tables.confidence,
            &tables.not_closed,
            (name.to_owned(), domain.to_owned()),
        )
    };
    let run_slot = slot(workflow);
    let step_slots = steps.iter().map(|name| slot(name)).collect();
    let id = tables.entries.len();
    tables.entries.push(WorkflowEntry {
        name: workflow,
        domain: domain.into(),
        steps,
        run: PatternStats::default(),
        step_stats: vec![PatternStats::default(); steps.len()],
        run_slot,
        step_slots,
        latencies: None,
        windows: None,
        recent: Recent::default(),
        refused: Refusals::default(),
        last: Instant::now(),
        evicted: false,
        clean: None,
        steady: None,
    });
    tables
        .ids
        .entry(workflow)
        .or_default()
        .entry(domain.into())
        .or_default()
        .push(id);
    tables.watcher.0.entry_added(id, workflow, steps, domain);
    id
}

/// Whether two workflows' step lists are the same: the same slice (the
/// usual case, compared by address) or equal names.
pub(super) fn same_steps(a: &'static [&'static str], b: &'static [&'static str]) -> bool {
    std::ptr::eq(a, b) || a == b
}

/// The slot of `key`, created if new. (A free function, so that it borrows
/// the two fields, not the whole table.)
pub(super) fn resolve(
    slots: &mut HashMap<Key, usize>,
    confidence: &mut Vec<Slot>,
    count: &NotClosed,
    key: Key,
) -> usize {
    *slots.entry(key).or_insert_with(|| {
        confidence.push(Slot::new(count));
        confidence.len() - 1
    })
}

#[cfg(test)]
#[path = "entry_tests.rs"]
mod tests;
