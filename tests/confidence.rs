//! What ndf learns: confidence per (pattern, domain), kept in the store,
//! with no update lost under concurrency.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use ndf::prelude::*;

#[derive(Clone, Default)]
struct Gate {
    /// Every n-th call fails (0: never).
    fail_every: u32,
    calls: Arc<AtomicU32>,
}

#[pattern]
async fn sometimes(g: Gate) -> Result<u32, StepError> {
    let n = g.calls.fetch_add(1, Ordering::SeqCst) + 1;
    if g.fail_every > 0 && n.is_multiple_of(g.fail_every) {
        return Err(StepError::msg("flaky"));
    }
    Ok(n)
}

#[pattern]
async fn steady(n: u32) -> u32 {
    n
}

#[tokio::test]
async fn confidence_follows_outcomes_per_domain() {
    let mut config = Config::default();
    config.learning_rate = 0.0;
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let flow = sequential!(name = "jobs.flaky"; sometimes => steady);
    let gate = Gate {
        fail_every: 4,
        ..Gate::default()
    };
    for _ in 0..8 {
        let _ = ndf
            .run(&flow, gate.clone(), &PatternContext::new("batch"))
            .await;
    }
    let c = ndf.confidence("jobs.flaky", "batch").unwrap();
    // 6 successes and 2 failures under a uniform prior: 7/10.
    assert!((c.mean - 0.7).abs() < 1e-9, "{c:?}");
    assert_eq!(c.samples, 8);
    assert!(c.lower_bound < c.mean);
    let step = ndf.confidence("sometimes", "batch").unwrap();
    assert!((step.mean - 0.7).abs() < 1e-9, "{step:?}");
    // `steady` ran only after `sometimes` succeeded.
    assert_eq!(ndf.confidence("steady", "batch").unwrap().samples, 6);
    assert!(ndf.confidence("jobs.flaky", "interactive").is_none());
}

#[tokio::test]
async fn a_higher_learning_rate_forgets_faster() {
    let run_all = |rate: f64| async move {
        let mut config = Config::default();
        config.learning_rate = rate;
        let ndf = Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .config(config)
            .build()
            .unwrap();
        let flow = sequential!(name = "jobs.turning_bad"; sometimes);
        let good = Gate::default();
        for _ in 0..40 {
            ndf.run(&flow, good.clone(), &PatternContext::new("batch"))
                .await
                .unwrap();
        }
        let bad = Gate {
            fail_every: 1,
            ..Gate::default()
        };
        for _ in 0..5 {
            let _ = ndf
                .run(&flow, bad.clone(), &PatternContext::new("batch"))
                .await;
        }
        ndf.confidence("jobs.turning_bad", "batch").unwrap().mean
    };
    let (production, development) = (run_all(0.05).await, run_all(0.20).await);
    assert!(
        development < production,
        "development forgets the good past sooner: {development} vs {production}"
    );
}

#[tokio::test]
async fn confidence_survives_a_restart_through_the_store() {
    let store = MemoryStore::new();
    let flow = sequential!(name = "jobs.persisted"; steady);
    let before = {
        let ndf = Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .store(store.clone())
            .build()
            .unwrap();
        for n in 0..5 {
            ndf.run(&flow, n, &PatternContext::new("batch"))
                .await
                .unwrap();
        }
        ndf.shutdown().await.unwrap();
        ndf.confidence("jobs.persisted", "batch").unwrap()
    };
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(store)
        .build()
        .unwrap();
    assert_eq!(ndf.confidence("jobs.persisted", "batch"), Some(before));
    ndf.run(&flow, 9, &PatternContext::new("batch"))
        .await
        .unwrap();
    assert_eq!(
        ndf.confidence("jobs.persisted", "batch").unwrap().samples,
        6
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_runs_lose_no_update() {
    const TASKS: u64 = 8;
    const RUNS: u64 = 10_000;
    let ndf = common::ndf();
    let handles: Vec<_> = (0..TASKS)
        .map(|_| {
            let ndf = ndf.clone();
            tokio::spawn(async move {
                let flow = sequential!(name = "jobs.hot"; steady => steady);
                let ctx = PatternContext::new("batch");
                for n in 0..RUNS {
                    ndf.run(&flow, u32::try_from(n).unwrap(), &ctx)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(
        ndf.confidence("jobs.hot", "batch").unwrap().samples,
        TASKS * RUNS
    );
    assert_eq!(
        ndf.stats("jobs.hot", "batch").unwrap().executions,
        TASKS * RUNS
    );
    assert_eq!(
        ndf.confidence("steady", "batch").unwrap().samples,
        2 * TASKS * RUNS
    );
}

#[tokio::test(start_paused = true)]
async fn past_max_entries_new_domains_are_learned_as_overflow() {
    let mut config = Config::default();
    config.max_entries = 2;
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let flow = sequential!(name = "tenants.sync"; tenant_step);
    for tenant in ["t1", "t2", "t3", "t4", "t3"] {
        ndf.run(&flow, 1, &PatternContext::new(tenant))
            .await
            .unwrap();
    }
    let runs = |domain: &str| ndf.stats("tenants.sync", domain).map(|s| s.executions);
    assert_eq!((runs("t1"), runs("t2")), (Some(1), Some(1)));
    assert_eq!((runs("t3"), runs("t4")), (None, None), "not kept apart");
    assert_eq!(runs(ndf::OVERFLOW_DOMAIN), Some(3));
    assert!(
        ndf.confidence("tenant_step", ndf::OVERFLOW_DOMAIN)
            .is_some()
    );
}

#[pattern]
async fn tenant_step(n: u32) -> u32 {
    n
}
