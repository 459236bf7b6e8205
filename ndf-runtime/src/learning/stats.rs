use std::collections::{HashMap, VecDeque};

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use std::time::Duration;

use tokio::time::Instant;

use super::breaker::{Breaker, BreakerState, Transition};
use super::confidence::{Confidence, Evidence, Prior};
use super::outliers::LatencyWindow;
use super::pending::{Pending, PendingRun, Queued, RunEnd, RunHead};
use super::record::{StepOutcome, StepRecord};
use crate::config::Config;
use crate::step::StepMeta;
use crate::store::{RecentRun, StoredStats};
use crate::telemetry::{Alert, AlertKind, AlertRules, AlertState, EntryMetrics, alert};

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
    /// Sum of run latencies of workflows, in microseconds.
    pub total_latency_us: u64,
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
            total_latency_us: self
                .total_latency_us
                .saturating_sub(earlier.total_latency_us),
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
        self.total_latency_us = self.total_latency_us.saturating_add(other.total_latency_us);
    }

    fn add_step(&mut self, o: StepOutcome) {
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
    pub(super) latencies: LatencyWindow,
    /// Recent runs: when, how long, whether they succeeded.
    pub(super) recent: VecDeque<Run>,
    /// When recent runs were refused by the gate.
    pub(super) refused: VecDeque<Instant>,
    pub(super) alerts: AlertState,
    pub(super) metrics: EntryMetrics,
}

/// Runs kept per workflow and domain for reports.
const RECENT: usize = 1024;

/// What applying queued runs found.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    /// Alerts raised by them.
    pub(crate) alerts: Vec<Alert>,
    /// Another thread held the statistics: nothing was applied.
    pub(crate) busy: bool,
    /// Runs applied.
    pub(crate) runs: u64,
}

/// What is learned of one (pattern, domain) besides its counters.
#[derive(Debug, Default, Clone)]
pub(crate) struct Slot {
    pub(crate) evidence: Evidence,
    /// The gate of the pattern, as a circuit breaker.
    pub(crate) breaker: Breaker,
    /// Recent confidence means, oldest first.
    pub(crate) trend: VecDeque<f64>,
    /// The low-confidence alert while it is raised (alerts fire on crossings).
    pub(crate) alerted: Option<Alert>,
    /// What gating reads of the slot without the lock.
    pub(crate) gate: Arc<SlotGate>,
}

/// What gating reads of one (pattern, domain) without a lock: whether its
/// breaker is closed, published whenever that changes (a breaker that is
/// not is judged under the lock).
#[derive(Debug, Default)]
pub(crate) struct SlotGate {
    not_closed: AtomicBool,
}

impl SlotGate {
    /// Publishes the breaker's state.
    pub(super) fn publish(&self, state: BreakerState) {
        self.not_closed
            .store(state != BreakerState::Closed, Ordering::Relaxed);
    }

    /// Whether the breaker is closed: the slot holds nothing back.
    pub(super) fn passes(&self) -> bool {
        !self.not_closed.load(Ordering::Relaxed)
    }
}

impl Slot {
    /// Learns one outcome of the pattern `who` (pattern, domain) with
    /// threshold `threshold`, ended at `at`: its confidence and its
    /// breaker; an opening breaker raises the confidence alert, a closing
    /// one clears it. Returns the new confidence mean.
    fn learn(
        &mut self,
        ok: bool,
        who: (&str, &str),
        threshold: f64,
        at: Instant,
        config: &Config,
        alerts: &mut Vec<Alert>,
    ) -> f64 {
        let mean = self.observe(ok, config.learning_rate, config.prior);
        match self.breaker.observe(ok, threshold, at, config) {
            Some(Transition::Opened) => {
                self.gate.publish(BreakerState::Open);
                let (failures, calls) = (self.breaker.failures(), self.breaker.calls());
                let raised = alert(
                    who,
                    AlertKind::Confidence,
                    mean,
                    threshold,
                    &format!(
                        "held back: its success rate is credibly below {threshold:.2} ({} of its last {} outcomes failed; confidence {mean:.2}); probes in {:?}",
                        failures, calls, config.break_duration
                    ),
                );
                self.alerted = Some(raised.clone());
                alerts.push(raised);
            }
            Some(Transition::Reopened) => self.gate.publish(BreakerState::Open),
            Some(Transition::Closed) => {
                self.gate.publish(BreakerState::Closed);
                self.alerted = None;
            }
            None => {}
        }
        mean
    }
}

/// Confidence means kept per slot for the report's trend.
const TREND: usize = 32;

impl Slot {
    /// Learns one outcome; returns the new posterior mean.
    fn observe(&mut self, ok: bool, learning_rate: f64, prior: Prior) -> f64 {
        self.evidence.observe(ok, learning_rate);
        let mean = self.evidence.mean(prior);
        if self.trend.len() == TREND {
            self.trend.pop_front();
        }
        self.trend.push_back(mean);
        mean
    }
}

/// Everything behind the one lock a run takes when it ends.
#[derive(Debug, Default)]
pub(super) struct Tables {
    /// Every workflow's entries (one per domain), by id: a queued run names
    /// its entry by id, so learning it needs no lookup.
    pub(super) entries: Vec<WorkflowEntry>,
    /// Entry ids by workflow name.
    pub(super) by_name: FxHashMap<&'static str, Vec<usize>>,
    /// Whether new domains have been folded into [`OVERFLOW_DOMAIN`].
    pub(super) overflowed: bool,
    /// Confidence by slot; a slot is one (pattern, domain).
    pub(super) confidence: Vec<Slot>,
    pub(super) slots: HashMap<(String, String), usize>,
    /// What the store held when the runtime started, by (pattern, domain).
    pub(super) baseline: HashMap<(String, String), PatternStats>,
    /// Recent runs the store held for workflows, by (pattern, domain).
    pub(super) baseline_recent: HashMap<(String, String), Vec<Run>>,
    /// The counters as the store last acknowledged them, by (pattern,
    /// domain): what a save adds is measured from these.
    pub(super) saved: HashMap<(String, String), PatternStats>,
}

impl Tables {
    /// Learns one queued run.
    fn learn_queued(&mut self, run: &PendingRun, config: &Config, learned: &mut Learned) {
        self.learn(&run.head, run.steps.iter().copied(), config, learned);
    }

    /// Learns one run from its step records' bits, and counts it.
    fn learn(
        &mut self,
        run: &RunHead,
        steps: impl Iterator<Item = u32>,
        config: &Config,
        learned: &mut Learned,
    ) {
        let micros = u64::try_from(run.latency.as_micros()).unwrap_or(u64::MAX);
        let tables = self;
        let Some(entry) = tables.entries.get_mut(run.entry) else {
            return;
        };
        learned.runs += 1;
        let alerts = &mut learned.alerts;
        let rules = AlertRules {
            min_samples: config.min_samples,
            error_tolerance: config.error_tolerance,
            latency_alert: config.latency_alert,
        };
        let domain: &str = &entry.domain;
        match run.end {
            RunEnd::Refused => {
                // Refused by its gate before it started: not an execution,
                // but a call that was not served.
                entry.run.held_back += 1;
                if entry.refused.len() == RECENT {
                    entry.refused.pop_front();
                }
                entry.refused.push_back(run.at);
                entry
                    .alerts
                    .observe((run.workflow, domain), run.latency, false, rules, alerts);
                entry.metrics.refused();
                return;
            }
            RunEnd::Rejected => entry.run.rejected += 1,
            RunEnd::Ok | RunEnd::Failed => {
                let ok = run.end == RunEnd::Ok;
                entry.run.executions += 1;
                if ok {
                    entry.run.successes += 1;
                } else {
                    entry.run.failures += 1;
                }
                entry.run.total_latency_us = entry.run.total_latency_us.saturating_add(micros);
            }
        }
        let ran = run.end != RunEnd::Rejected;
        let ok = run.end == RunEnd::Ok;
        let outlier = ran && entry.latencies.observe(run.latency);
        entry.run.outliers += u64::from(outlier);
        if ran {
            if entry.recent.len() == RECENT {
                entry.recent.pop_front();
            }
            entry.recent.push_back((run.at, run.latency, ok));
            entry
                .alerts
                .observe((run.workflow, domain), run.latency, ok, rules, alerts);
        }
        let at = run.at;
        let mut learn = |slot: usize, name: &str, ok: bool, threshold: f64| {
            tables.confidence[slot].learn(ok, (name, domain), threshold, at, config, alerts)
        };
        let run_mean = ran.then(|| {
            learn(
                entry.run_slot,
                run.workflow,
                ok,
                config.confidence_threshold,
            )
        });
        entry.metrics.run(run.end, run.latency, outlier, run_mean);
        for (i, (stats, bits)) in entry.step_stats.iter_mut().zip(steps).enumerate() {
            let outcome = StepOutcome::decode(bits);
            if outcome.level.is_some() && entry.steps[i] == run.workflow {
                // A `degrade!` at the top is the workflow itself: its run is
                // counted once, above; only the level it served adds here.
                entry.run.degradations += u64::from(outcome.degraded());
                entry.metrics.step(
                    i,
                    StepOutcome {
                        ran: false,
                        ..outcome
                    },
                    None,
                );
                continue;
            }
            stats.add_step(outcome);
            let confidence = (outcome.ran && !outcome.rejected).then(|| {
                let threshold = run
                    .metas
                    .get(i)
                    .copied()
                    .flatten()
                    .map_or(config.confidence_threshold, |m| config.threshold_of(m));
                // Served by the fallback is a failure of the step itself.
                learn(
                    entry.step_slots[i],
                    entry.steps[i],
                    outcome.ok && !outcome.fallback,
                    threshold,
                )
            });
            entry.metrics.step(i, outcome, confidence);
        }
        if outlier {
            // Logged here, allocation-free: outliers are common enough.
            let domain: &str = &entry.domain;
            tracing::warn!(pattern = run.workflow, domain, latency = ?run.latency, "latency outlier");
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

/// A run as the statistics remember it: when it ended, how long it took,
/// whether it succeeded.
pub(super) type Run = (Instant, Duration, bool);

/// The live statistics and confidence. A run takes no lock on its happy
/// path: it finds its entry and judges its gates from published atomics
/// ([`GateIndex`]), and queues its outcome ([`Pending`]); queued runs are
/// applied in batches under the lock, by index. Sums by name are made when
/// asked for (rare).
#[derive(Debug, Default)]
pub(crate) struct StatsTable {
    tables: Mutex<Tables>,
    /// Runs ended and not yet learned.
    pending: Pending,
    /// Every entry's gates, for judging a run without the lock; replaced
    /// (under the lock) when an entry is added.
    pub(super) index: ArcSwap<GateIndex>,
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

/// One run, as [`StatsTable::record_run`] learns it.
pub(crate) struct RunRecord<'a> {
    /// The entry [`StatsTable::gates`] found for the run.
    pub(crate) entry: usize,
    pub(crate) workflow: &'static str,
    pub(crate) metas: &'static [Option<&'static StepMeta>],
    pub(crate) end: RunEnd,
    pub(crate) latency: Duration,
    pub(crate) log: &'a [StepRecord],
}

impl StatsTable {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The statistics, if no other thread holds them.
    fn try_lock(&self) -> Option<std::sync::MutexGuard<'_, Tables>> {
        match self.tables.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// Loads what a store held, at the moment `clock` (one for every row of
    /// a load): stored wall times become instants of the run clock.
    pub(crate) fn seed(&self, row: &StoredStats, clock: &Clock) {
        let (pattern, domain, stats, evidence) = (
            row.pattern.as_str(),
            row.domain.as_str(),
            &row.stats,
            &row.evidence,
        );
        let mut tables = self.lock();
        if !row.recent.is_empty() {
            let runs = row.recent.iter().map(|r| {
                (
                    clock.instant(r.at_unix_ms),
                    Duration::from_micros(r.latency_us),
                    r.ok,
                )
            });
            tables
                .baseline_recent
                .entry((pattern.to_owned(), domain.to_owned()))
                .or_default()
                .extend(runs);
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
            (pattern.to_owned(), domain.to_owned()),
        );
        let s = &mut tables.confidence[slot];
        s.evidence = *evidence;
        s.breaker = Breaker::restored(&row.breaker, clock);
        s.gate.publish(s.breaker.state());
    }

    /// Queues one run to be learned, without a lock, and says how many runs
    /// wait in this thread's shard. Only when that shard is full does it
    /// learn them first (what that found is returned; otherwise nothing).
    pub(crate) fn record_run(
        &self,
        run: &RunRecord<'_>,
        config: &Config,
        now: Instant,
    ) -> (Queued, Learned) {
        let head = RunHead {
            workflow: run.workflow,
            entry: run.entry,
            metas: run.metas,
            end: run.end,
            latency: run.latency,
            at: now,
        };
        if config.learning_batch == 1
            && let Some(mut tables) = self.try_lock()
        {
            // Learned at once, this thread's queued runs first: exact
            // gating for the next run, without waiting for anyone.
            let mut learned = Learned::default();
            let tables = &mut *tables;
            self.pending
                .drain_own(|queued| tables.learn_queued(queued, config, &mut learned));
            tables.learn(
                &head,
                run.log.iter().map(StepRecord::bits),
                config,
                &mut learned,
            );
            return (Queued::default(), learned);
        }
        let make = |steps| PendingRun { head, steps };
        let mut learned = Learned::default();
        loop {
            if let Ok(queued) = self.pending.push(make, run.log) {
                return (queued, learned);
            }
            // This thread's shard is full: learn what waits, then queue.
            let more = self.apply(config, true);
            learned.alerts.extend(more.alerts);
            learned.runs += more.runs;
        }
    }

    /// Learns every queued run: counters, confidence, latency outliers, and
    /// the alerts they raise (returned, to be sent outside the lock). With
    /// `wait`, waits for the statistics; otherwise does nothing if another
    /// thread holds them (that thread, or a later call, applies the runs).
    pub(crate) fn apply(&self, config: &Config, wait: bool) -> Learned {
        let mut learned = Learned::default();
        if self.pending.is_empty() {
            return learned;
        }
        let guard = if wait {
            Some(self.lock())
        } else {
            self.try_lock()
        };
        let Some(mut guard) = guard else {
            learned.busy = true;
            return learned;
        };
        let tables = &mut *guard;
        self.pending
            .drain(|run| tables.learn_queued(run, config, &mut learned));
        learned
    }

    /// Whether runs wait to be learned.
    pub(crate) fn has_queued(&self) -> bool {
        !self.pending.is_empty()
    }
    /// The confidence of `pattern` in `domain`, if it was ever learned.
    pub(crate) fn confidence(
        &self,
        pattern: &str,
        domain: &str,
        prior: Prior,
    ) -> Option<Confidence> {
        let tables = self.lock();
        let slot = tables.slots.get(&(pattern.to_owned(), domain.to_owned()))?;
        let evidence = tables.confidence[*slot].evidence;
        (evidence.samples > 0).then(|| evidence.confidence(prior))
    }

    /// The state of the breaker of `pattern` in `domain`.
    pub(crate) fn breaker(&self, pattern: &str, domain: &str) -> Option<BreakerState> {
        let tables = self.lock();
        let slot = tables.slots.get(&(pattern.to_owned(), domain.to_owned()))?;
        Some(tables.confidence[*slot].breaker.state())
    }

    /// Clears the confidence evidence and the breaker of `pattern` in
    /// `domain`; whether it had any.
    pub(crate) fn reset(&self, pattern: &str, domain: &str) -> bool {
        let mut tables = self.lock();
        let Some(slot) = tables
            .slots
            .get(&(pattern.to_owned(), domain.to_owned()))
            .copied()
        else {
            return false;
        };
        let s = &mut tables.confidence[slot];
        s.evidence = Evidence::default();
        s.breaker = Breaker::default();
        s.trend.clear();
        s.alerted = None;
        s.gate.publish(BreakerState::Closed);
        true
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

    /// Everything, summed by (pattern, domain), with its confidence
    /// evidence, sorted.
    pub(crate) fn snapshot(&self) -> Vec<StoredStats> {
        let tables = self.lock();
        let clock = Clock::now();
        let mut recent: HashMap<(String, String), Vec<RecentRun>> = HashMap::new();
        for ((pattern, domain), runs) in &tables.baseline_recent {
            recent
                .entry((pattern.clone(), domain.clone()))
                .or_default()
                .extend(runs.iter().map(|r| clock.stored(*r)));
        }
        for e in &tables.entries {
            let name = &e.name;
            let runs = recent
                .entry(((*name).to_owned(), e.domain.to_string()))
                .or_default();
            runs.extend(e.recent.iter().map(|r| clock.stored(*r)));
            let excess = runs.len().saturating_sub(RECENT);
            runs.drain(..excess);
        }
        let mut sums: HashMap<(String, String), PatternStats> = tables.baseline.clone();
        for e in &tables.entries {
            let name = &e.name;
            sums.entry(((*name).to_owned(), e.domain.to_string()))
                .or_default()
                .merge(&e.run);
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
        let mut rows: Vec<_> = sums
            .into_iter()
            .map(|((p, d), s)| {
                let slot = tables
                    .slots
                    .get(&(p.clone(), d.clone()))
                    .map(|i| &tables.confidence[*i]);
                let evidence = slot.map(|s| s.evidence).unwrap_or_default();
                let breaker = slot.map(|s| s.breaker.stored(&clock)).unwrap_or_default();
                let key = (p, d);
                let recent = recent.remove(&key).unwrap_or_default();
                let added = s.since(&tables.saved.get(&key).copied().unwrap_or_default());
                StoredStats {
                    pattern: key.0,
                    domain: key.1,
                    stats: s,
                    added,
                    evidence,
                    breaker,
                    recent,
                }
            })
            .collect();
        rows.sort_by(|a, b| (&a.pattern, &a.domain).cmp(&(&b.pattern, &b.domain)));
        rows
    }

    /// Records that the store holds `rows`: later saves add what was
    /// learned since.
    pub(crate) fn acknowledge(&self, rows: &[StoredStats]) {
        let mut tables = self.lock();
        for row in rows {
            tables
                .saved
                .insert((row.pattern.clone(), row.domain.clone()), row.stats);
        }
    }

    /// The statistics of `pattern` (a workflow or step name) in `domain`.
    pub(crate) fn get(&self, pattern: &str, domain: &str) -> Option<PatternStats> {
        let tables = self.lock();
        let mut found = tables
            .baseline
            .get(&(pattern.to_owned(), domain.to_owned()))
            .copied();
        for e in tables.entries.iter().filter(|e| &*e.domain == domain) {
            let name = &e.name;
            if *name == pattern {
                found.get_or_insert_default().merge(&e.run);
            }
            for (step, stats) in e.steps.iter().zip(&e.step_stats) {
                if *step == pattern
                    && (stats.executions > 0
                        || stats.compensations > 0
                        || stats.held_back > 0
                        || stats.rejected > 0)
                {
                    found.get_or_insert_default().merge(stats);
                }
            }
        }
        found
    }
}

/// The domain under which runs in new domains are learned once the
/// statistics hold `Config::max_entries` (workflow, domain) entries.
pub const OVERFLOW_DOMAIN: &str = "(overflow)";

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
        tables.by_name.get(workflow)?.iter().copied().find(|id| {
            let e = &tables.entries[*id];
            &*e.domain == domain && (std::ptr::eq(e.steps, steps) || e.steps == steps)
        })
    };
    if let Some(id) = find(tables, domain) {
        return id;
    }
    let domain = if tables.entries.len() >= max_entries {
        if !tables.overflowed {
            tables.overflowed = true;
            tracing::warn!(
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
        latencies: LatencyWindow::default(),
        recent: VecDeque::new(),
        refused: VecDeque::new(),
        alerts: AlertState::default(),
        metrics: EntryMetrics::register(workflow, steps),
    });
    tables.by_name.entry(workflow).or_default().push(id);
    id
}

/// Converts between the monotonic clock runs are timed with and the wall
/// clock stored runs carry, at one moment.
pub(crate) struct Clock {
    pub(crate) instant: Instant,
    pub(crate) unix_ms: u64,
}

impl Clock {
    /// The wall-clock time `ago` before this moment, in milliseconds since
    /// the Unix epoch.
    pub(crate) fn unix_ms_ago(&self, ago: Duration) -> u64 {
        self.unix_ms
            .saturating_sub(u64::try_from(ago.as_millis()).unwrap_or(u64::MAX))
    }

    pub(crate) fn now() -> Self {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            instant: Instant::now(),
            unix_ms,
        }
    }

    fn instant(&self, unix_ms: u64) -> Instant {
        let ago = Duration::from_millis(self.unix_ms.saturating_sub(unix_ms));
        self.instant.checked_sub(ago).unwrap_or(self.instant)
    }

    fn stored(&self, (at, latency, ok): Run) -> RecentRun {
        let ago = u64::try_from(self.instant.saturating_duration_since(at).as_millis())
            .unwrap_or(u64::MAX);
        RecentRun {
            at_unix_ms: self.unix_ms.saturating_sub(ago),
            latency_us: u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            ok,
        }
    }
}

/// The slot of `key`, created if new. (A free function, so that it borrows
/// the two fields, not the whole table.)
fn resolve(
    slots: &mut HashMap<(String, String), usize>,
    confidence: &mut Vec<Slot>,
    key: (String, String),
) -> usize {
    *slots.entry(key).or_insert_with(|| {
        confidence.push(Slot::default());
        confidence.len() - 1
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learning::GateQuery;

    static STEPS: &[&str] = &["a", "b", "a"];

    fn config(learning_rate: f64) -> Config {
        Config {
            learning_rate,
            ..Config::default()
        }
    }

    fn run<'a>(
        workflow: &'static str,
        domain: &'a str,
        ok: bool,
        latency: Duration,
        log: &'a [StepRecord],
    ) -> (RunRecord<'a>, &'a str) {
        let record = RunRecord {
            entry: 0,
            workflow,
            metas: &[],
            end: if ok { RunEnd::Ok } else { RunEnd::Failed },
            latency,
            log,
        };
        (record, domain)
    }

    /// Learns `run` in its domain as `Ndf::run` does: its entry first, then
    /// the run, queued and applied.
    fn record(table: &StatsTable, (run, domain): &(RunRecord<'_>, &str), config: &Config) {
        let query = GateQuery {
            workflow: run.workflow,
            steps: STEPS,
            metas: &[],
            domain,
        };
        let entry = table.gates(&query, config, Instant::now()).entry;
        table.record_run(&RunRecord { entry, ..*run }, config, Instant::now());
        let learned = table.apply(config, true);
        assert!(!learned.busy);
    }

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
        record(
            &table,
            &run("x.flow", "d", false, Duration::from_millis(3), &l),
            &config(0.1),
        );
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
        record(
            &table,
            &run("x.flow", "d", false, Duration::ZERO, &l),
            &config(0.1),
        );
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
        let evidence = Evidence {
            successes: 4.0,
            failures: 1.0,
            samples: 5,
        };
        table.seed(
            &StoredStats {
                pattern: "x.flow".into(),
                domain: "d".into(),
                stats: seeded,
                added: PatternStats::default(),
                evidence,
                recent: Vec::new(),
                ..StoredStats::default()
            },
            &Clock::now(),
        );
        let l = log([(false, false, 0); 3]);
        record(
            &table,
            &run("x.flow", "d", true, Duration::ZERO, &l),
            &config(0.0),
        );
        assert_eq!(
            table
                .confidence("x.flow", "d", Prior::default())
                .unwrap()
                .samples,
            6
        );
        assert_eq!(table.get("x.flow", "d").unwrap().executions, 6);
        let snapshot = table.snapshot();
        assert_eq!(snapshot.len(), 1, "{snapshot:?}");
        assert_eq!(snapshot[0].stats.executions, 6);
    }

    #[test]
    fn runs_teach_confidence_per_pattern_and_domain() {
        let table = StatsTable::default();
        for ok in [true, true, false, true] {
            let l = log([(true, ok, 0), (true, true, 0), (false, false, 0)]);
            record(
                &table,
                &run("x.flow", "d", ok, Duration::ZERO, &l),
                &config(0.0),
            );
        }
        let flow = table.confidence("x.flow", "d", Prior::default()).unwrap();
        assert_eq!(flow.samples, 4);
        assert!((flow.mean - 4.0 / 6.0).abs() < 1e-12, "{flow:?}");
        let b = table.confidence("b", "d", Prior::default()).unwrap();
        assert!((b.mean - 5.0 / 6.0).abs() < 1e-12, "{b:?}");
        assert!(
            table
                .confidence("x.flow", "other", Prior::default())
                .is_none()
        );
    }
}
