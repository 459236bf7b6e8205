//! Saving learning data: rows per second into `SQLite` (WAL, one transaction
//! per save) against `MemoryStore`, and a run's hot path with each store
//! attached — the hot path never touches the store, so the two should match.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use ndf::prelude::*;
use ndf::{Evidence, LearningStore, SqliteStore, StoredStats};

#[path = "support/hot_path.rs"]
mod hot_path;
#[path = "support/ratio.rs"]
mod ratio;
#[path = "support/rig.rs"]
mod rig;

const ROWS: u64 = 10_000;

fn rows(round: u64) -> Vec<StoredStats> {
    (0..ROWS)
        .map(|i| StoredStats {
            pattern: format!("bench.pattern_{i}"),
            domain: "bench".to_owned(),
            stats: ndf::PatternStats::default(),
            added: ndf::PatternStats::default(),
            evidence: Evidence {
                successes: round as f64,
                failures: 1.0,
                samples: round + 1,
            },
            recent: Vec::new(),
            ..StoredStats::default()
        })
        .collect()
}

fn bench_save(c: &mut Criterion) {
    let dir = std::env::temp_dir().join("ndf-bench-store");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = SqliteStore::open(dir.join("ndf.db")).unwrap();
    let memory = MemoryStore::new();
    let mut group = c.benchmark_group("save_10k_rows");
    group.throughput(Throughput::Elements(ROWS));
    group.bench_function("memory", |b| {
        b.iter_batched(
            || rows(1),
            |r| memory.save(black_box(&r)).unwrap(),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("sqlite", |b| {
        b.iter_batched(
            || rows(1),
            |r| sqlite.save(black_box(&r)).unwrap(),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn bench_hot_path(c: &mut Criterion) {
    let rt = rig::current_thread();
    let dir = std::env::temp_dir().join("ndf-bench-hot");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let with_memory = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let with_sqlite = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .store(SqliteStore::open(dir.join("ndf.db")).unwrap())
        .build()
        .unwrap();
    hot_path::bench(
        c,
        &rt,
        "hot_path",
        &[
            ("memory_store", &with_memory),
            ("sqlite_store", &with_sqlite),
        ],
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_save, bench_hot_path
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio::throughput("save_10k_rows", "sqlite", ROWS);
    ratio::throughput("save_10k_rows", "memory", ROWS);
    ratio::report("hot_path", "sqlite_store", "memory_store");
}
