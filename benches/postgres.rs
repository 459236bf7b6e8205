//! `PostgresStore` on a real server (`DATABASE_URL`, or the throwaway
//! cluster of `.ci/postgres start`): rows per second saved in one batched
//! save of 10 000 rows, against a hand-written sqlx `UNNEST` upsert of the
//! same counts (the least a batched save can do), and a run's hot path
//! with the store attached against `MemoryStore` (the store is never on a
//! run's path, so the two should match).

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group};
use ndf::prelude::*;
use ndf::{Evidence, LearningStore, PatternStats, PostgresStore, StoredStats};

#[path = "support/hot_path.rs"]
mod hot_path;
#[path = "support/ratio.rs"]
mod ratio;
#[path = "support/rig.rs"]
mod rig;

const ROWS: u64 = 10_000;
const SCHEMA: &str = "ndf_bench";

fn rows() -> Vec<StoredStats> {
    let mut added = PatternStats::default();
    added.executions = 3;
    added.successes = 2;
    added.failures = 1;
    (0..ROWS)
        .map(|i| StoredStats {
            pattern: format!("bench.pattern_{i}"),
            domain: "bench".to_owned(),
            stats: added,
            added,
            evidence: Evidence {
                successes: 2.0,
                failures: 1.0,
                samples: 3,
            },
            ..StoredStats::default()
        })
        .collect()
}

/// The baseline: the same rows' counts in one hand-written upsert.
async fn hand_written(pool: &sqlx::PgPool, rows: &[StoredStats]) {
    let pattern: Vec<&str> = rows.iter().map(|r| r.pattern.as_str()).collect();
    let domain: Vec<&str> = rows.iter().map(|r| r.domain.as_str()).collect();
    let executions: Vec<i64> = rows
        .iter()
        .map(|r| r.added.executions.cast_signed())
        .collect();
    let successes: Vec<i64> = rows
        .iter()
        .map(|r| r.added.successes.cast_signed())
        .collect();
    let failures: Vec<i64> = rows
        .iter()
        .map(|r| r.added.failures.cast_signed())
        .collect();
    sqlx::query(
        "INSERT INTO bench_counts AS c (pattern, domain, executions, successes, failures)
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[])
         ON CONFLICT (pattern, domain) DO UPDATE SET
           executions = c.executions + excluded.executions,
           successes = c.successes + excluded.successes,
           failures = c.failures + excluded.failures",
    )
    .bind(&pattern)
    .bind(&domain)
    .bind(&executions)
    .bind(&successes)
    .bind(&failures)
    .execute(pool)
    .await
    .unwrap();
}

fn bench_save(c: &mut Criterion) {
    let url = rig::database_url();
    let rt = rig::current_thread();
    let pool = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::raw_sql(
            "DROP SCHEMA IF EXISTS ndf_bench CASCADE;
             DROP TABLE IF EXISTS bench_counts;
             CREATE TABLE bench_counts (pattern TEXT, domain TEXT, executions BIGINT,
               successes BIGINT, failures BIGINT, PRIMARY KEY (pattern, domain));",
        )
        .execute(&pool)
        .await
        .unwrap();
        pool
    });
    let store = PostgresStore::builder(&url)
        .schema(SCHEMA)
        .connect()
        .unwrap();
    let mut group = c.benchmark_group("postgres_save_10k_rows");
    group.throughput(Throughput::Elements(ROWS));
    group.sample_size(20);
    group.bench_function("hand_written_unnest", |b| {
        b.iter_batched(
            rows,
            |r| rt.block_on(hand_written(&pool, black_box(&r))),
            BatchSize::LargeInput,
        );
    });
    group.bench_function("postgres_store", |b| {
        b.iter_batched(
            rows,
            |r| store.save(black_box(&r)).unwrap(),
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn bench_hot_path(c: &mut Criterion) {
    let rt = rig::current_thread();
    let with_memory = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let with_postgres = rt.block_on(async {
        Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .store(
                PostgresStore::builder(&rig::database_url())
                    .schema(SCHEMA)
                    .connect()
                    .unwrap(),
            )
            .build()
            .unwrap()
    });
    hot_path::bench(
        c,
        &rt,
        "postgres_hot_path",
        &[
            ("memory_store", &with_memory),
            ("postgres_store", &with_postgres),
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
    ratio::throughput("postgres_save_10k_rows", "postgres_store", ROWS);
    ratio::throughput("postgres_save_10k_rows", "hand_written_unnest", ROWS);
    ratio::report(
        "postgres_save_10k_rows",
        "postgres_store",
        "hand_written_unnest",
    );
    ratio::report("postgres_hot_path", "postgres_store", "memory_store");
}
