//! Every save carries what the runtime added since its last acknowledged
//! save, so a store shared by several processes (a fleet on one Postgres)
//! can add counts instead of overwriting each other's.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use ndf::prelude::*;
use ndf::{LearningStore, PatternStats, StoreError, StoredStats};

#[pattern]
async fn count(n: u32) -> u32 {
    n
}

/// A store shared by a fleet: it adds what each save added (as an upsert
/// `executions = executions + $added` would), and can be made to fail.
#[derive(Clone, Default)]
struct FleetStore {
    rows: Arc<Mutex<BTreeMap<(String, String), PatternStats>>>,
    saves: Arc<Mutex<Vec<Vec<StoredStats>>>>,
    failing: Arc<AtomicBool>,
}

impl FleetStore {
    fn executions(&self, pattern: &str) -> u64 {
        let rows = self.rows.lock().unwrap();
        rows.iter()
            .find(|((p, _), _)| p == pattern)
            .map_or(0, |(_, s)| s.executions)
    }

    /// (total, added) executions of `pattern` in each save so far.
    fn saved(&self, pattern: &str) -> Vec<(u64, u64)> {
        let saves = self.saves.lock().unwrap();
        saves
            .iter()
            .filter_map(|rows| rows.iter().find(|r| r.pattern == pattern))
            .map(|r| (r.stats.executions, r.added.executions))
            .collect()
    }
}

impl LearningStore for FleetStore {
    fn load(&self) -> Result<Vec<StoredStats>, StoreError> {
        let rows = self.rows.lock().unwrap();
        Ok(rows
            .iter()
            .map(|((pattern, domain), stats)| StoredStats {
                pattern: pattern.clone(),
                domain: domain.clone(),
                stats: *stats,
                ..StoredStats::default()
            })
            .collect())
    }

    fn save(&self, new: &[StoredStats]) -> Result<(), StoreError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(StoreError::new("connection reset"));
        }
        self.saves.lock().unwrap().push(new.to_vec());
        let mut rows = self.rows.lock().unwrap();
        for row in new {
            rows.entry((row.pattern.clone(), row.domain.clone()))
                .or_default()
                .merge(&row.added);
        }
        Ok(())
    }
}

async fn run(ndf: &Ndf, times: u32) {
    let flow = sequential!(name = "fleet.count"; count);
    for n in 0..times {
        ndf.run(&flow, n, &PatternContext::new("fleet"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_save_adds_what_was_learned_since_the_last_acknowledged_one() {
    let store = FleetStore::default();
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(store.clone())
        .build()
        .unwrap();
    run(&ndf, 3).await;
    ndf.flush().unwrap();
    run(&ndf, 2).await;
    ndf.flush().unwrap();
    assert_eq!(store.saved("fleet.count"), [(3, 3), (5, 2)]);

    // A failed save acknowledges nothing: the next one adds its runs too.
    store.failing.store(true, Ordering::SeqCst);
    run(&ndf, 1).await;
    assert!(ndf.flush().is_err());
    store.failing.store(false, Ordering::SeqCst);
    run(&ndf, 1).await;
    ndf.flush().unwrap();
    assert_eq!(store.saved("fleet.count").last(), Some(&(7, 2)));
    // Saving again without a run writes nothing: only what changed is saved.
    let saves = store.saved("fleet.count").len();
    ndf.flush().unwrap();
    assert_eq!(store.saved("fleet.count").len(), saves);
    assert_eq!(store.executions("fleet.count"), 7);
}

#[tokio::test]
async fn two_processes_sharing_a_store_lose_no_count() {
    let store = FleetStore::default();
    let first = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(store.clone())
        .build()
        .unwrap();
    run(&first, 4).await;
    first.flush().unwrap();
    // The second starts from what the first saved, then both keep going.
    let second = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(store.clone())
        .build()
        .unwrap();
    assert_eq!(second.stats("fleet.count", "fleet").unwrap().executions, 4);
    for _ in 0..3 {
        run(&first, 5).await;
        run(&second, 7).await;
        second.flush().unwrap();
        first.flush().unwrap();
    }
    first.shutdown().await.unwrap();
    second.shutdown().await.unwrap();
    assert_eq!(
        store.executions("fleet.count"),
        4 + 3 * (5 + 7),
        "each process added its own runs; none overwrote the other's"
    );
}
