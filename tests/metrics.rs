//! Metrics through the `metrics` facade: names, bounded labels and values
//! of one workflow run, captured with a local recorder.

use std::collections::BTreeMap;

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use ndf::prelude::*;

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

#[tokio::test(start_paused = true)]
async fn one_run_is_counted_with_bounded_labels() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _guard = metrics::set_default_local_recorder(&recorder);

    // Metrics are emitted as runs are learned: learn each one as it ends.
    let mut config = Config::default();
    config.learning_batch = 1;
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let flow = sequential!(name = "sync.orders"; fetch => store);
    let ctx = PatternContext::new("sync-tenant-4711").attribute("api_key", "k-123");
    ndf.run(&flow, Flaky::default(), &ctx).await.unwrap();

    let mut seen: BTreeMap<String, DebugValue> = BTreeMap::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        for label in &labels {
            assert!(
                !label.contains("4711") && !label.contains("k-123"),
                "unbounded label {label}"
            );
        }
        seen.insert(format!("{}{{{}}}", key.name(), labels.join(",")), value);
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
