//! Runs across processes on a real Postgres (`DATABASE_URL`, or the
//! throwaway cluster of `.ci/postgres start`): enqueue-to-done throughput
//! of ndf's run queue with two workers, against plain apalis jobs doing
//! the same work (double a number, keep the result) with two workers in
//! the same run, both polling with a heartbeat of one second; and what one checkpoint per stage costs (a three-stage
//! durable run against a one-stage run of the same work).

use std::time::{Duration, Instant};

use apalis::prelude::{BoxDynError, Data, WorkerBuilder, WorkerBuilderExt as _};
use apalis_core::backend::TaskSink as _;
use apalis_postgres::{Config as ApalisConfig, PostgresStorage};
use criterion::{Criterion, criterion_group};
use ndf::RunQueue;
use ndf::prelude::*;
use sqlx::PgPool;

#[path = "support/ratio.rs"]
mod ratio;
#[path = "support/rig.rs"]
mod rig;

/// Runs per measured batch.
const RUNS: u64 = 200;

#[pattern]
async fn double(x: u64) -> u64 {
    x.wrapping_mul(2)
}

#[pattern]
async fn add_one(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[pattern]
async fn triple(x: u64) -> u64 {
    x.wrapping_mul(3)
}

/// The same work as `add_one => double => triple`, in one stage.
#[pattern]
async fn all_three(x: u64) -> u64 {
    x.wrapping_add(1).wrapping_mul(2).wrapping_mul(3)
}

/// Waits until every run of `ids` has succeeded.
async fn all_done(pool: &PgPool, ids: &[String]) {
    loop {
        let (done,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM ndf_queued_runs WHERE id = ANY($1) AND status = 'succeeded'",
        )
        .bind(ids)
        .fetch_one(pool)
        .await
        .unwrap();
        if usize::try_from(done).unwrap() == ids.len() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The baseline's job: double the number and keep the result.
async fn apalis_double(x: u64, pool: Data<PgPool>) -> Result<(), BoxDynError> {
    sqlx::query("INSERT INTO bench_apalis_done (x, doubled) VALUES ($1, $2)")
        .bind(i64::try_from(x).unwrap())
        .bind(i64::try_from(x.wrapping_mul(2)).unwrap())
        .execute(&*pool)
        .await?;
    Ok(())
}

/// `RUNS` runs of `workflow` enqueued and waited for, `iters` times.
async fn ndf_batches(queue: &RunQueue, pool: &PgPool, workflow: &str, iters: u64) -> Duration {
    let ctx = PatternContext::new("bench");
    let started = Instant::now();
    for _ in 0..iters {
        let mut ids = Vec::new();
        for x in 0..RUNS {
            ids.push(queue.enqueue(workflow, &x, &ctx).await.unwrap());
        }
        all_done(pool, &ids).await;
    }
    started.elapsed()
}

fn bench(c: &mut Criterion) {
    let rt = rig::two_threads();
    let url = rig::database_url();
    let pid = std::process::id();
    let (pool, queue, apalis) = rt.block_on(async {
        let pool = PgPool::connect(&url).await.unwrap();
        let ndf = Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .build()
            .unwrap();
        ndf.register_durable(sequential!(name = "bench.double"; double))
            .unwrap();
        ndf.register_durable(sequential!(name = "bench.three_stages"; add_one => double => triple))
            .unwrap();
        ndf.register_durable(sequential!(name = "bench.one_stage"; all_three))
            .unwrap();
        let queue = RunQueue::connect(&ndf, &url)
            .await
            .unwrap()
            .named(&format!("bench.ndf.{pid}"));
        for name in ["w1", "w2"] {
            let worker = queue
                .worker()
                .name(format!("bench-{name}-{pid}"))
                .concurrency(8);
            tokio::spawn(worker.run_until(std::future::pending()));
        }
        sqlx::query("CREATE TABLE IF NOT EXISTS bench_apalis_done (x BIGINT, doubled BIGINT)")
            .execute(&pool)
            .await
            .unwrap();
        let apalis: PostgresStorage<u64> = PostgresStorage::new(&pool).with_config(
            ApalisConfig::default()
                .queue(format!("bench.apalis.{pid}"))
                .heartbeat_interval(Duration::from_secs(1)),
        );
        for name in ["a1", "a2"] {
            let worker = WorkerBuilder::new(format!("bench-{name}-{pid}").as_str())
                .backend(apalis.clone())
                .data(pool.clone())
                .concurrency(8)
                .build(apalis_double);
            tokio::spawn(worker.run());
        }
        (pool, queue, apalis)
    });

    let mut group = c.benchmark_group("queue_200_runs");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("ndf_two_workers", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| ndf_batches(&queue, &pool, "bench.double", iters));
    });
    group.bench_function("apalis_two_workers", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let (mut apalis, pool) = (apalis.clone(), pool.clone());
            async move {
                let started = Instant::now();
                for _ in 0..iters {
                    sqlx::query("TRUNCATE bench_apalis_done")
                        .execute(&pool)
                        .await
                        .unwrap();
                    for x in 0..RUNS {
                        apalis.push(x).await.unwrap();
                    }
                    loop {
                        let (done,): (i64,) =
                            sqlx::query_as("SELECT count(*) FROM bench_apalis_done")
                                .fetch_one(&pool)
                                .await
                                .unwrap();
                        if u64::try_from(done).unwrap() >= RUNS {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                started.elapsed()
            }
        });
    });
    group.finish();

    let mut group = c.benchmark_group("queue_checkpoints");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.bench_function("three_stages", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| ndf_batches(&queue, &pool, "bench.three_stages", iters));
    });
    group.bench_function("one_stage", |b| {
        b.to_async(&rt)
            .iter_custom(|iters| ndf_batches(&queue, &pool, "bench.one_stage", iters));
    });
    group.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio::report("queue_200_runs", "ndf_two_workers", "apalis_two_workers");
    ratio::throughput("queue_200_runs", "ndf_two_workers", RUNS);
    ratio::throughput("queue_200_runs", "apalis_two_workers", RUNS);
    ratio::report("queue_checkpoints", "three_stages", "one_stage");
    // Two more checkpoints per run in the three-stage workflow.
    ratio::added("queue_checkpoints", "three_stages", "one_stage");
    println!("queue_checkpoints: one checkpoint costs the difference / (2 x {RUNS} runs)");
}
