//! Learning data reaches the store in the background: every
//! `flush_interval`, and after `flush_every` runs.

use std::time::Duration;

use ndf::LearningStore;
use ndf::prelude::*;

#[pattern]
async fn step(n: u32) -> u32 {
    n
}

/// Waits, in real time (the save runs on a blocking-pool thread, which
/// paused tokio time knows nothing of), up to five seconds for the store to
/// hold `expected` executions of `pattern`.
async fn saved(store: &MemoryStore, pattern: &str, expected: u64) -> u64 {
    for _ in 0..500 {
        if executions(store, pattern) == expected {
            break;
        }
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(10));
    }
    executions(store, pattern)
}

fn executions(store: &MemoryStore, pattern: &str) -> u64 {
    store
        .load()
        .unwrap()
        .iter()
        .find(|r| r.pattern == pattern)
        .map_or(0, |r| r.stats.executions)
}

#[tokio::test(start_paused = true)]
async fn learning_is_saved_every_flush_interval() {
    let store = MemoryStore::new();
    let mut config = Config::default();
    config.flush_interval = Duration::from_secs(5);
    let ndf = Ndf::builder()
        .config(config)
        .store(store.clone())
        .build()
        .unwrap();
    let flow = sequential!(name = "jobs.ticking"; step);
    for n in 0..3 {
        ndf.run(&flow, n, &PatternContext::new("jobs"))
            .await
            .unwrap();
    }
    assert_eq!(
        executions(&store, "jobs.ticking"),
        0,
        "nothing saved before the interval"
    );
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(saved(&store, "jobs.ticking", 3).await, 3);
}

#[tokio::test(start_paused = true)]
async fn learning_is_saved_after_flush_every_runs() {
    let store = MemoryStore::new();
    let mut config = Config::default();
    config.flush_interval = Duration::from_hours(1);
    config.flush_every = 4;
    let ndf = Ndf::builder()
        .config(config)
        .store(store.clone())
        .build()
        .unwrap();
    let flow = sequential!(name = "jobs.counting"; step);
    for n in 0..4 {
        ndf.run(&flow, n, &PatternContext::new("jobs"))
            .await
            .unwrap();
    }
    for _ in 0..100 {
        if executions(&store, "jobs.counting") == 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        executions(&store, "jobs.counting"),
        4,
        "saved without waiting an hour"
    );
}

#[tokio::test]
async fn shutdown_acknowledges_a_save() {
    let store = MemoryStore::new();
    let ndf = Ndf::builder().store(store.clone()).build().unwrap();
    ndf.run(
        &sequential!(name = "jobs.final"; step),
        1,
        &PatternContext::new("jobs"),
    )
    .await
    .unwrap();
    ndf.shutdown().await.unwrap();
    assert_eq!(executions(&store, "jobs.final"), 1);
}
