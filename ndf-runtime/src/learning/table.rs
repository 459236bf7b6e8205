//! The live statistics: one lock over the [`Tables`], a lock-free queue of
//! runs waiting to be learned, and the gates runs read without the lock.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::entry::{Learned, Tables};
use super::gates::GateIndex;
use super::observe::{Observer, Watcher};
use super::pending::{Pending, PendingRun, Queued, RunHead};
use super::phases::Phases;
use crate::config::Config;
use crate::model::{RunEnd, StepMeta, StepRecord};

/// The live statistics and confidence. A run takes no lock on its happy
/// path: it finds its entry and judges its gates from published atomics
/// ([`GateIndex`]), and queues its outcome ([`Pending`]); queued runs are
/// applied in batches under the lock, by index. Sums by name are made when
/// asked for (rare).
#[derive(Debug)]
pub(crate) struct StatsTable {
    tables: Mutex<Tables>,
    /// Runs ended and not yet learned.
    pending: Pending,
    /// Every entry's gates, for judging a run without the lock; added to
    /// (under the lock) when an entry is.
    pub(super) index: GateIndex,
    /// Recent durations of `orchestrate!` phases, by entry.
    pub(super) phases: Phases,
}

impl Default for StatsTable {
    fn default() -> Self {
        let tables = Tables::default();
        // The slots count their breakers in the count runs read.
        let index = GateIndex::counting(tables.not_closed.clone());
        Self {
            tables: Mutex::new(tables),
            pending: Pending::default(),
            index,
            phases: Phases::default(),
        }
    }
}

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
    /// Statistics that tell `observer` what they learn.
    pub(crate) fn observed_by(observer: impl Observer + 'static) -> Self {
        let table = Self::default();
        table.lock().watcher = Watcher(Box::new(observer));
        table
    }

    /// The statistics, with every clean run learned into its slots (see
    /// [`Tables::fold`]): what reads and changes other than learning take.
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        let mut tables = self.lock_learning();
        tables.fold();
        // Whoever locks may change a slot.
        tables.epoch += 1;
        tables
    }

    /// The statistics as learning a run takes them: clean runs may wait to
    /// be learned into their slots.
    pub(super) fn lock_learning(&self) -> std::sync::MutexGuard<'_, Tables> {
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
            // Learned at once, after the runs queued while the statistics
            // were busy (this thread's and others'): exact gating for the
            // next run, without waiting for anyone.
            let mut learned = Learned::default();
            let tables = &mut *tables;
            self.pending
                .drain_waiting(|queued| tables.learn_queued(queued, config, &mut learned));
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
            let applied = self.apply(config, true);
            learned.runs += applied.runs;
            learned.clean_waiting |= applied.clean_waiting;
        }
    }

    /// Learns every queued run: counters, confidence and latency outliers,
    /// told to the observer as they are learned. With
    /// `wait`, waits for the statistics; otherwise does nothing if another
    /// thread holds them (that thread, or a later call, applies the runs).
    pub(crate) fn apply(&self, config: &Config, wait: bool) -> Learned {
        let mut learned = Learned::default();
        if self.pending.is_empty() {
            return learned;
        }
        let guard = if wait {
            Some(self.lock_learning())
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

    /// Evicts the entries idle for `idle_for` (see [`Tables::evict_idle`]),
    /// and forgets their phase durations; how many were evicted.
    pub(crate) fn evict_idle(&self, idle_for: Duration) -> usize {
        let now = Instant::now();
        let Some(idle_since) = now.checked_sub(idle_for) else {
            return 0;
        };
        let evicted = self.lock().evict_idle(idle_since);
        for id in &evicted {
            self.phases.forget(*id);
        }
        evicted.len()
    }

    /// Learns the clean runs waiting into their slots, steps' counters and
    /// metrics (see [`Tables::fold`]), which reads do anyway: what the
    /// learner does within `learning_interval` of one starting to wait.
    pub(crate) fn fold_waiting(&self) {
        self.lock_learning().fold();
    }

    /// Whether runs wait to be learned.
    pub(crate) fn has_queued(&self) -> bool {
        !self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::learning::GateQuery;
    use crate::model::{Clock, Evidence, PatternStats, Prior, StoredStats};

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
    fn a_run_learned_at_once_first_learns_the_runs_other_threads_queued() {
        let (table, config) = (StatsTable::default(), Config::default());
        let query = GateQuery {
            workflow: "flow",
            steps: STEPS,
            metas: &[],
            domain: "d",
        };
        let entry = table.gates(&query, &config, Instant::now()).entry;
        let end = |table: &StatsTable| {
            let log: [StepRecord; 3] = std::array::from_fn(|_| StepRecord::default());
            let (run, _) = run("flow", "d", true, Duration::from_millis(3), &log);
            table.record_run(&RunRecord { entry, ..run }, &config, Instant::now())
        };
        // Another thread ends a run while this one holds the statistics.
        let held = table.lock_learning();
        let (queued, learned) = std::thread::scope(|s| s.spawn(|| end(&table)).join().unwrap());
        assert_eq!(
            (queued.waiting, learned.runs),
            (1, 0),
            "queued, not learned"
        );
        drop(held);
        // The next run to find them free, on this thread, learns it too:
        // not left for the learner's interval.
        let (queued, learned) = end(&table);
        assert_eq!((queued.waiting, learned.runs), (0, 2));
        assert!(!table.has_queued());
        assert_eq!(table.lock().entries[entry].run.executions, 2);
    }

    #[test]
    fn runs_shorter_than_a_microsecond_add_their_nanoseconds() {
        let table = StatsTable::default();
        let l = log([(true, true, 0), (true, true, 0), (true, true, 0)]);
        for _ in 0..1000 {
            record(
                &table,
                &run("x.flow", "d", true, Duration::from_nanos(400), &l),
                &config(0.1),
            );
        }
        let flow = table.get("x.flow", "d").unwrap();
        assert_eq!(
            flow.total_latency_ns, 400_000,
            "not truncated to whole microseconds"
        );
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
            (flow.executions, flow.failures, flow.total_latency_ns),
            (1, 1, 3_000_000)
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
