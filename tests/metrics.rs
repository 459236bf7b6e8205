//! Metrics through the `metrics` facade: names, bounded labels and values
//! of one workflow run, captured with a local recorder.

use std::collections::BTreeMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use ndf::prelude::*;

mod common;

#[derive(Clone, Default)]
struct Flaky(std::sync::Arc<std::sync::Mutex<u32>>);

#[pattern(retry(max = 2, initial = "1ms", jitter = false))]
async fn fetch(f: Flaky) -> Result<u32, StepError> {
    let mut n = f.0.lock().unwrap();
    *n += 1;
    if *n == 1 {
        Err(StepError::msg("first attempt fails"))
    } else {
        Ok(*n)
    }
}

#[pattern]
async fn store(n: u32) -> u32 {
    n
}

/// What the recorder holds, keyed `name{label=value,…}` with the labels
/// sorted.
fn snapshot(snapshotter: &Snapshotter) -> BTreeMap<String, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            (format!("{}{{{}}}", key.name(), labels.join(",")), value)
        })
        .collect()
}

/// A runtime that learns each run as it ends: metrics are emitted as runs
/// are learned. Build it after the local recorder is set.
fn runtime() -> Ndf {
    let mut config = Config::default();
    config.learning_batch = 1;
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn one_run_is_counted_with_bounded_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let ndf = runtime();
    let flow = sequential!(name = "sync.orders"; fetch => store);
    let ctx = PatternContext::new("sync-tenant-4711").attribute("api_key", "k-123");
    ndf.run(&flow, Flaky::default(), &ctx).await.unwrap();

    let seen = snapshot(&snapshotter);
    for key in seen.keys() {
        assert!(
            !key.contains("4711") && !key.contains("k-123"),
            "unbounded label in {key}"
        );
    }
    let counter = |k: &str| match seen.get(k) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{k}: {other:?} in {:#?}", seen.keys().collect::<Vec<_>>()),
    };
    assert_eq!(counter("ndf_runs_total{outcome=ok,pattern=sync.orders}"), 1);
    assert_eq!(
        counter("ndf_runs_total{outcome=error,pattern=sync.orders}"),
        0
    );
    assert_eq!(
        counter("ndf_step_executions_total{outcome=ok,pattern=sync.orders,step=fetch}"),
        1
    );
    assert_eq!(
        counter("ndf_step_retries_total{pattern=sync.orders,step=fetch}"),
        1
    );
    assert_eq!(
        counter("ndf_step_executions_total{outcome=ok,pattern=sync.orders,step=store}"),
        1
    );
    assert!(
        matches!(seen.get("ndf_run_duration_seconds{pattern=sync.orders}"), Some(DebugValue::Histogram(h)) if h.len() == 1)
    );
    assert!(
        matches!(seen.get("ndf_confidence{pattern=fetch}"), Some(DebugValue::Gauge(g)) if (g.into_inner() - 2.0 / 3.0).abs() < 1e-9)
    );
}

#[pattern]
async fn double(n: u32) -> u32 {
    n * 2
}

/// Runs whose every step succeeded at its first attempt are learned into
/// their steps together: the run itself is counted as it ends, its steps'
/// counters and confidence gauges within `learning_interval` of the first
/// of them, with nothing reading the statistics.
#[tokio::test(start_paused = true)]
async fn clean_runs_are_counted_within_the_learning_interval() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let ndf = runtime();
    let flow = sequential!(name = "sync.clean"; store => double);
    let ctx = PatternContext::new("sync");
    for n in 0..3 {
        assert_eq!(ndf.run(&flow, n, &ctx).await.unwrap(), n * 2);
    }
    let seen = snapshot(&snapshotter);
    assert!(
        matches!(
            seen.get("ndf_runs_total{outcome=ok,pattern=sync.clean}"),
            Some(DebugValue::Counter(3))
        ),
        "{seen:?}"
    );
    // The learner folds them on tokio's blocking pool, which paused time
    // waits for.
    tokio::time::sleep(ndf.config().learning_interval * 2).await;
    let seen = snapshot(&snapshotter);
    for step in ["store", "double"] {
        let key = format!("ndf_step_executions_total{{outcome=ok,pattern=sync.clean,step={step}}}");
        assert!(
            matches!(seen.get(&key), Some(DebugValue::Counter(3))),
            "{key}: {:?}",
            seen.get(&key)
        );
    }
    // Learning rate 0.2, prior Beta(1, 1): three successes are
    // 1 + 0.8 + 0.64 of evidence.
    let successes = 1.0 + 0.8 + 0.64;
    let expected = (successes + 1.0) / (successes + 2.0);
    assert!(
        matches!(seen.get("ndf_confidence{pattern=double}"), Some(DebugValue::Gauge(g)) if (g.into_inner() - expected).abs() < 1e-9),
        "{:?}",
        seen.get("ndf_confidence{pattern=double}")
    );
    // What the statistics read says is the same.
    let stats = ndf.stats("double", "sync").unwrap();
    assert_eq!((stats.executions, stats.successes), (3, 3));
    let confidence = ndf.confidence("double", "sync").unwrap();
    assert!((confidence.mean - expected).abs() < 1e-9, "{confidence:?}");
    assert_eq!(confidence.samples, 3);
}

/// The successes counted of `pattern`'s `double` step, in what
/// `snapshotter` holds now: `None` if it holds no counter of them.
fn doubles(snapshotter: &Snapshotter, pattern: &str) -> Option<u64> {
    let key = format!("ndf_step_executions_total{{outcome=ok,pattern={pattern},step=double}}");
    match snapshot(snapshotter).remove(&key)? {
        DebugValue::Counter(n) => Some(n),
        _ => None,
    }
}

/// The tasks alive on the tokio runtime this is called in.
fn alive_tasks() -> usize {
    tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks()
}

/// Outside any tokio runtime there is no background learner: clean runs'
/// steps are counted as each run ends, with nothing reading.
#[test]
fn outside_tokio_clean_runs_are_counted_as_they_end() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let ndf = runtime();
    let flow = sequential!(name = "sync.unattended"; store => double);
    let ctx = PatternContext::new("sync");
    for n in 0..3 {
        let out = futures::executor::block_on(ndf.run(&flow, n, &ctx));
        assert_eq!(out.unwrap(), n * 2);
        // (A snapshot takes the counters' values: each holds one run's.)
        let seen = doubles(&snapshotter, "sync.unattended");
        assert_eq!(seen, Some(1), "after run {n}");
    }
}

/// A runtime built outside tokio (in a `static`, before `main` enters
/// tokio) starts its background tasks at its first run inside a tokio
/// runtime, and again on the next one when that one shuts down: its runs
/// leave what waits for a learner to it, as a runtime built inside does.
#[test]
fn a_runtime_built_outside_tokio_starts_its_tasks_where_it_runs() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    let ndf = runtime();
    let flow = sequential!(name = "sync.late"; store => double);
    let ctx = PatternContext::new("sync");
    let interval = ndf.config().learning_interval;
    for round in 0..2 {
        let rt = common::paused_runtime();
        rt.block_on(async {
            assert_eq!(alive_tasks(), 0, "round {round}: before the first run");
            assert_eq!(ndf.run(&flow, 1, &ctx).await.unwrap(), 2);
            assert!(
                alive_tasks() >= 3,
                "round {round}: learner, sampler and saver"
            );
            for n in 2..4 {
                assert_eq!(ndf.run(&flow, n, &ctx).await.unwrap(), n * 2);
            }
            tokio::time::sleep(interval * 2).await;
        });
        // Folded by the learner of this round's runtime: three runs more.
        let seen = doubles(&snapshotter, "sync.late");
        assert_eq!(seen, Some(3), "round {round}");
        // The runtime shuts down here, and its tasks with it.
        drop(rt);
    }
}

/// Built with `background_tasks(false)`, a runtime starts none, inside
/// tokio as outside: its runs learn what waits for a learner as they end.
#[test]
fn without_background_tasks_none_starts_and_runs_are_counted_as_they_end() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    common::paused_runtime().block_on(async {
        let mut config = Config::default();
        config.learning_batch = 1;
        let ndf = Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .config(config)
            .background_tasks(false)
            .build()
            .unwrap();
        let flow = sequential!(name = "sync.alone"; store => double);
        let ctx = PatternContext::new("sync");
        for n in 0..3 {
            assert_eq!(ndf.run(&flow, n, &ctx).await.unwrap(), n * 2);
            assert_eq!(alive_tasks(), 0, "after run {n}");
            assert_eq!(
                doubles(&snapshotter, "sync.alone"),
                Some(1),
                "after run {n}"
            );
        }
    });
}

#[pattern]
async fn down(n: u32) -> Result<u32, StepError> {
    Err(StepError::msg(format!("{n}: down")))
}

#[pattern]
async fn refuse_odd(n: u32) -> Result<u32, StepError> {
    if n % 2 == 1 {
        Err(StepError::rejected(StepError::msg("odd input")))
    } else {
        Ok(n)
    }
}

/// Refused and rejected runs have outcomes of their own, beside `ok` and
/// `error`.
#[tokio::test(start_paused = true)]
async fn refused_and_rejected_runs_have_their_own_outcome() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let mut config = Config::default();
    config.min_samples = 4;
    config.gate_alpha = 0.2;
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let ctx = PatternContext::new("ops");
    let failing = sequential!(name = "ops.down"; down);
    for _ in 0..7 {
        let _ = ndf.run(&failing, 1, &ctx).await;
    }
    let picky = sequential!(name = "ops.picky"; refuse_odd);
    for n in 0..5 {
        let _ = ndf.run(&picky, n, &ctx).await;
    }
    let counters: BTreeMap<String, u64> = snapshot(&snapshotter)
        .into_iter()
        .filter_map(|(key, value)| match value {
            DebugValue::Counter(n) => Some((key, n)),
            _ => None,
        })
        .collect();
    let runs = |outcome: &str, pattern: &str| {
        counters[&format!("ndf_runs_total{{outcome={outcome},pattern={pattern}}}")]
    };
    assert_eq!(
        (runs("error", "ops.down"), runs("refused", "ops.down")),
        (4, 3)
    );
    assert_eq!(
        (
            runs("ok", "ops.picky"),
            runs("rejected", "ops.picky"),
            runs("error", "ops.picky")
        ),
        (3, 2, 0)
    );
}

#[pattern]
async fn lookup(fail: bool) -> Result<u32, StepError> {
    if fail {
        Err(StepError::msg("down in this region"))
    } else {
        Ok(1)
    }
}

/// `ndf_confidence{pattern}` is the pattern's confidence over all its
/// domains: the domain of the last run does not overwrite the others'.
#[tokio::test(start_paused = true)]
async fn the_confidence_gauge_is_the_patterns_over_all_its_domains() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let flow = sequential!(name = "geo.lookup"; lookup);
    ndf.run(&flow, false, &PatternContext::new("eu"))
        .await
        .unwrap();
    assert!(
        ndf.run(&flow, true, &PatternContext::new("us"))
            .await
            .is_err()
    );
    // Development preset: learning rate 0.2, prior Beta(1, 1). One success
    // then one failure: successes 0.8, failures 1.
    let expected = (0.8 + 1.0) / (0.8 + 1.0 + 2.0);
    let seen = snapshot(&snapshotter);
    for key in [
        "ndf_confidence{pattern=lookup}",
        "ndf_confidence{pattern=geo.lookup}",
    ] {
        assert!(
            matches!(seen.get(key), Some(DebugValue::Gauge(g)) if (g.into_inner() - expected).abs() < 1e-9),
            "{key}: {:?}",
            seen.get(key)
        );
    }
    // Each domain keeps its own confidence for the gate.
    let us = ndf.confidence("lookup", "us").unwrap().mean;
    assert!((us - 1.0 / 3.0).abs() < 1e-9, "{us}");
}

/// A breaker's changes of state are counted by pattern and state.
#[tokio::test(start_paused = true)]
async fn breaker_transitions_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(Config::default().min_samples(4).gate_alpha(0.2))
        .build()
        .unwrap();
    let flow = sequential!(name = "ops.down"; down);
    for n in 0..8 {
        let _ = ndf.run(&flow, n, &PatternContext::new("ops")).await;
    }
    assert_eq!(ndf.breaker("down", "ops"), Some(ndf::BreakerState::Open));
    let seen = snapshot(&snapshotter);
    assert!(
        matches!(
            seen.get("ndf_breaker_transitions_total{pattern=down,to=open}"),
            Some(DebugValue::Counter(1))
        ),
        "{:?}",
        seen.keys()
            .filter(|k| k.contains("breaker"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn a_runtime_built_after_the_recorder_gives_every_metric_a_description() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let ndf = runtime();
    let flow = sequential!(name = "obs.described"; fetch => store);
    ndf.run(&flow, Flaky::default(), &PatternContext::new("obs"))
        .await
        .unwrap();
    let described: Vec<(String, Option<metrics::Unit>, bool)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, unit, description, _)| {
            let name = key.key().name().to_owned();
            (name, unit, description.is_some_and(|d| d.len() > 20))
        })
        .collect();
    assert!(described.len() >= 5, "{described:?}");
    for (name, unit, has_text) in &described {
        assert!(has_text, "{name} has no description");
        if name.ends_with("_total") {
            assert_eq!(*unit, Some(metrics::Unit::Count), "{name}");
        }
        if name.ends_with("_seconds") {
            assert_eq!(*unit, Some(metrics::Unit::Seconds), "{name}");
        }
    }
}

/// A store whose every save fails.
struct Broken;

impl ndf::LearningStore for Broken {
    fn load(&self) -> Result<Vec<ndf::StoredStats>, ndf::StoreError> {
        Ok(Vec::new())
    }

    fn save(&self, _rows: &[ndf::StoredStats]) -> Result<(), ndf::StoreError> {
        Err(ndf::StoreError::new("the disk is full"))
    }
}

#[tokio::test]
async fn background_saves_that_fail_are_counted() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(Config::default().flush_interval(std::time::Duration::from_millis(50)))
        .store(Broken)
        .build()
        .unwrap();
    let flow = sequential!(name = "obs.saved"; store);
    let key = "ndf_store_failures_total{op=save}";
    // The recorder hands out what counters added since its last snapshot.
    let mut failed = 0;
    for round in 1..=3u32 {
        ndf.run(&flow, round, &PatternContext::new("obs"))
            .await
            .unwrap();
        // The saver's next interval: its save fails, and is tried again.
        for _ in 0..400 {
            if let Some(DebugValue::Counter(n)) = snapshot(&snapshotter).get(key) {
                failed += n;
            }
            if failed >= u64::from(round) {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert!(
            failed >= u64::from(round),
            "round {round}: {failed} failures counted"
        );
    }
    // Nothing was lost: the runs wait for a store that works.
    assert_eq!(ndf.stats("obs.saved", "obs").unwrap().executions, 3);
}
