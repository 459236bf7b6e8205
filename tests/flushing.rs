//! Learning data reaches the store in the background: every
//! `flush_interval`, and after `flush_every` runs.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ndf::LearningStore;
use ndf::prelude::*;

#[pattern]
async fn step(n: u32) -> u32 {
    n
}

/// Waits, in real time (the save runs on a blocking-pool thread, which
/// paused tokio time knows nothing of), up to five seconds for the store to
/// hold `expected` executions of `pattern`; returns what it holds.
async fn saved(store: &MemoryStore, pattern: &str, expected: u64) -> u64 {
    eventually(|| executions(store, pattern) == expected).await;
    executions(store, pattern)
}

/// Waits in real time, as [`saved`] does, up to five seconds for `done`.
async fn eventually(done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::task::yield_now().await;
        std::thread::sleep(Duration::from_millis(10));
    }
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
        .resource_probe(ndf::IdleProbe)
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
        .resource_probe(ndf::IdleProbe)
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
    // Runs count towards `flush_every` once learned: at once here, or
    // within `learning_interval` (100 ms) when they had to queue.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(
        saved(&store, "jobs.counting", 4).await,
        4,
        "saved without waiting an hour"
    );
}

#[tokio::test]
async fn shutdown_acknowledges_a_save() {
    let store = MemoryStore::new();
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(store.clone())
        .build()
        .unwrap();
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

/// A `MemoryStore` that counts the saves asked of it, and fails the first
/// one when `fail_first` is set.
#[derive(Clone, Default)]
struct Watched {
    inner: MemoryStore,
    attempts: Arc<AtomicU32>,
    fail_first: bool,
}

impl LearningStore for Watched {
    fn load(&self) -> Result<Vec<ndf::StoredStats>, ndf::StoreError> {
        self.inner.load()
    }

    fn save(&self, rows: &[ndf::StoredStats]) -> Result<(), ndf::StoreError> {
        if self.attempts.fetch_add(1, Ordering::SeqCst) == 0 && self.fail_first {
            return Err(ndf::StoreError::new("disk full"));
        }
        self.inner.save(rows)
    }

    fn save_timeline(
        &self,
        points: &[ndf::StoredPoint],
        since: u64,
    ) -> Result<(), ndf::StoreError> {
        self.inner.save_timeline(points, since)
    }
}

/// A runtime saving to `store` every five seconds, after one run of
/// `jobs.watched`, its timeline taking a point every `timeline_interval`.
async fn ran_once(store: &Watched, timeline_interval: Duration) -> Ndf {
    let mut config = Config::default();
    config.flush_interval = Duration::from_secs(5);
    config.timeline_interval = timeline_interval;
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .store(store.clone())
        .build()
        .unwrap();
    ndf.run(
        &sequential!(name = "jobs.watched"; step),
        1,
        &PatternContext::new("jobs"),
    )
    .await
    .unwrap();
    ndf
}

#[tokio::test(start_paused = true)]
async fn an_idle_runtime_does_not_save_again() {
    let store = Watched::default();
    // A point every second: the run's point is in the first save too.
    let ndf = ran_once(&store, Duration::from_secs(1)).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(saved(&store.inner, "jobs.watched", 1).await, 1);
    // Six more intervals without a run: nothing new to write.
    tokio::time::sleep(Duration::from_secs(30)).await;
    ndf.shutdown().await.unwrap();
    assert_eq!(
        store.attempts.load(Ordering::SeqCst),
        1,
        "one save after the run; at shutdown nothing changed, so no rows are written"
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeline_point_taken_after_the_last_save_is_saved_once() {
    let store = Watched::default();
    // The default timeline interval: a point every 30 s.
    let _ndf = ran_once(&store, Duration::from_secs(30)).await;
    // Saved at 5 s; the point of the run is taken at 30 s, saved at 35 s.
    tokio::time::sleep(Duration::from_secs(6)).await;
    eventually(|| store.attempts.load(Ordering::SeqCst) == 1).await;
    assert!(store.inner.load_timeline(0).unwrap().is_empty());
    tokio::time::sleep(Duration::from_secs(30)).await;
    eventually(|| !store.inner.load_timeline(0).unwrap().is_empty()).await;
    let points = store.inner.load_timeline(0).unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(
        (points[0].pattern.as_str(), points[0].point.executions),
        ("jobs.watched", 1)
    );
    // The point was saved without writing the unchanged learning rows
    // again, and then nothing is pending: no more saves.
    tokio::time::sleep(Duration::from_mins(1)).await;
    assert_eq!(store.attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_background_save_is_tried_again() {
    let store = Watched {
        fail_first: true,
        ..Watched::default()
    };
    let _ndf = ran_once(&store, Duration::from_secs(1)).await;
    // The first interval's save fails; a later one, with no new run, saves.
    tokio::time::sleep(Duration::from_secs(6)).await;
    eventually(|| store.attempts.load(Ordering::SeqCst) > 0).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(saved(&store.inner, "jobs.watched", 1).await, 1);
}
