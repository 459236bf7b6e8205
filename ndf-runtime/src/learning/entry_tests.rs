//! Learning clean runs together ([`Tables::fold`]) against learning every
//! run one by one.

use std::time::Duration;

use super::*;
use crate::learning::GateQuery;
use crate::learning::StatsTable;
use crate::learning::table::RunRecord;
use crate::model::{StepMeta, StepRecord};

const W1: &[&str] = &["a", "b", "a"];
const W2: &[&str] = &["b", "c"];

fn tables(one_by_one: bool) -> Tables {
    Tables {
        one_by_one,
        ..Tables::default()
    }
}

/// Ends a step's record: mostly a clean success; failed at `fail_rate`,
/// and retried or slow now and then. Returns whether it succeeded.
fn finish_step(record: &StepRecord, rng: &mut fastrand::Rng, fail_rate: f64) -> bool {
    let x = rng.f64();
    if x < fail_rate {
        record.finish(0, false, false);
        return false;
    }
    if x < fail_rate + 0.002 {
        record.finish(1, true, false);
    } else {
        record.finish(0, true, false);
        if rng.u16(..500) == 0 {
            record.slow();
        }
    }
    true
}

/// What learning left in every slot and entry, to compare bit for bit.
fn learned(t: &Tables) -> Vec<String> {
    let slots = t.confidence.iter().map(|s| {
        let trend: Vec<u64> = s.trend.iter().map(f64::to_bits).collect();
        format!("{:?} {:?} {trend:?}", s.evidence, s.breaker)
    });
    let entries = t
        .entries
        .iter()
        .map(|e| format!("{} {}: {:?} {:?}", e.name, e.domain, e.run, e.step_stats));
    slots.chain(entries).collect()
}

static A: StepMeta = StepMeta::new("a");
static B: StepMeta = StepMeta::new("b");
static C: StepMeta = StepMeta::new("c");
static M1: &[Option<&StepMeta>] = &[Some(&A), Some(&B), Some(&A)];
static M2: &[Option<&StepMeta>] = &[Some(&B), Some(&C)];

/// One run as `Ndf::run` makes it: its gates first (a refused run, or
/// steps held back), then its records, learned.
fn run(table: &StatsTable, rng: &mut fastrand::Rng, fail_rate: f64, at: Instant) {
    let (workflow, steps, metas) = if rng.bool() {
        ("w1", W1, M1)
    } else {
        ("w2", W2, M2)
    };
    let domain = if rng.u8(..4) == 0 { "other" } else { "d" };
    let config = Config::default();
    let query = GateQuery {
        workflow,
        steps,
        metas,
        domain,
    };
    let gates = table.gates(&query, &config, at);
    let log: Vec<StepRecord> = steps.iter().map(|_| StepRecord::default()).collect();
    let mut end = RunEnd::Ok;
    if gates.workflow.is_some() {
        end = RunEnd::Refused;
    } else {
        for (i, record) in log.iter().enumerate() {
            if gates.steps.iter().any(|(held, _)| *held == i) {
                record.held(false);
                end = RunEnd::Failed;
                break;
            }
            if !finish_step(record, rng, fail_rate) {
                end = RunEnd::Failed;
                break;
            }
        }
    }
    let record = RunRecord {
        entry: gates.entry,
        workflow,
        metas,
        end,
        latency: Duration::from_millis(3),
        log: &log,
    };
    table.record_run(&record, &config, at);
}

#[test]
fn clean_runs_learned_together_leave_what_learning_them_one_by_one_does() {
    for seed in 0..12 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let (together, alone) = (StatsTable::default(), StatsTable::default());
        alone.lock().one_by_one = true;
        let mut at = Instant::now();
        let (mut most_waiting, mut opened, mut closed_again) = (0, false, false);
        for i in 0..4_000 {
            // Healthy, then an outage that opens breakers, then healthy
            // again: their probes close them.
            let fail_rate = if (1_000..1_300).contains(&i) {
                0.8
            } else {
                0.002
            };
            at += Duration::from_millis(rng.u64(1..50));
            let seed = rng.u64(..);
            for t in [&together, &alone] {
                run(t, &mut fastrand::Rng::with_seed(seed), fail_rate, at);
            }
            let t = together.lock_learning();
            let waiting = t.entries.iter().filter_map(|e| e.clean).map(|c| c.runs);
            most_waiting = most_waiting.max(waiting.max().unwrap_or(0));
            let steady = t.confidence.iter().all(Slot::steady);
            opened |= !steady;
            closed_again |= opened && steady;
            drop(t);
            // A read now and then learns what waits.
            if rng.u16(..1_000) == 0 {
                drop(together.lock());
            }
        }
        assert!(
            most_waiting > 50,
            "clean runs waited together: {most_waiting}"
        );
        assert!(
            opened && closed_again,
            "the outage opened breakers, and probes closed them"
        );
        let (together, alone) = (together.lock(), alone.lock());
        assert!(
            alone.entries.iter().all(|e| e.clean.is_none()),
            "one by one, nothing waits"
        );
        assert!(together.dirty.is_empty());
        assert_eq!(learned(&together), learned(&alone), "seed {seed}");
    }
}

#[test]
fn a_step_with_its_own_window_or_a_threshold_of_zero_is_learned_one_by_one() {
    static WINDOWED: StepMeta = StepMeta {
        breaker: Some(crate::model::WindowBreaker {
            window: crate::model::SlidingWindow::Calls(10),
            failure_ratio: 0.5,
            min_calls: 5,
            break_for: None,
            probes: None,
        }),
        ..StepMeta::new("b")
    };
    static METAS: &[Option<&StepMeta>] = &[Some(&WINDOWED), None];
    let mut t = tables(false);
    let entry = entry_index(&mut t, "w2", W2, "d", 10);
    let head = RunHead {
        workflow: "w2",
        entry,
        metas: METAS,
        end: RunEnd::Ok,
        latency: Duration::from_millis(1),
        at: Instant::now(),
    };
    let clean = StepRecord::default();
    clean.finish(0, true, false);
    let bits = [clean.bits(); 2];
    assert!(!t.clean(&head, bits.iter().copied(), &Config::default()));
    let plain = RunHead { metas: &[], ..head };
    assert!(t.clean(&plain, bits.iter().copied(), &Config::default()));
    // What was found steady is kept until a slot may change...
    let slot = t.entries[entry].step_slots[0];
    t.confidence[slot].learn(false, 0.5, None, Instant::now(), &Config::default());
    assert!(!t.confidence[slot].steady());
    assert!(t.clean(&plain, bits.iter().copied(), &Config::default()));
    // ...which learning a run one by one (or any lock but learning's) says.
    t.epoch += 1;
    assert!(!t.clean(&plain, bits.iter().copied(), &Config::default()));
    // A runtime whose threshold is zero holds nothing back.
    let mut t = tables(false);
    let entry = entry_index(&mut t, "w2", W2, "d", 10);
    let zero = Config {
        confidence_threshold: 0.0,
        ..Config::default()
    };
    assert!(!t.clean(&RunHead { entry, ..plain }, bits.iter().copied(), &zero));
}
