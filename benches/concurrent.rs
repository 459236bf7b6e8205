//! Runs ended side by side on two threads: 2 × 1000 runs of a one-step
//! workflow through `Ndf` (learning batch 1 and 16) against the same step
//! counted by hand under a `Mutex` (what a hand-rolled loop keeping
//! statistics pays) and against the bare step, in the same run, on a
//! two-worker runtime. Prints the ratios.
//!
//! Then how runs scale with threads: 1000 runs of the workflow on each of
//! one and of two OS threads, each thread with a current-thread runtime
//! of its own (so that the two surely run at once), one `Ndf` shared.
//! Prints the runs a second of each and their ratio: 2.0 is perfect
//! scaling, 1.0 none.

use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use ndf::prelude::*;

#[path = "support/ratio.rs"]
mod ratio;
#[path = "support/rig.rs"]
mod rig;

const RUNS: u64 = 1000;

#[pattern]
async fn inc(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[allow(
    clippy::unused_async,
    reason = "the baseline: the same step as a plain async fn"
)]
async fn bare(x: u64) -> u64 {
    x.wrapping_add(1)
}

/// What the hand-written baseline counts per run.
#[derive(Default)]
struct Counts {
    runs: u64,
    ok: u64,
    latency: Duration,
}

/// Runs `work` on two spawned tasks, `RUNS` times each, and waits for both.
async fn two_tasks<F, Fut>(work: F)
where
    F: Fn(u64) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let work = work.clone();
            tokio::spawn(async move {
                for i in 0..RUNS {
                    work(i).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

fn runtime(batch: usize) -> Ndf {
    let mut config = Config::default();
    config.learning_batch = batch;
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = rig::two_threads();
    let _guard = rt.enter();
    let mut group = c.benchmark_group("two_threads");
    group.bench_function("bare", |b| {
        b.to_async(&rt).iter(|| {
            two_tasks(|i| async move {
                black_box(bare(black_box(i)).await);
            })
        });
    });
    let counts = Arc::new(Mutex::new(Counts::default()));
    group.bench_function("hand_counted", |b| {
        b.to_async(&rt).iter(|| {
            let counts = Arc::clone(&counts);
            two_tasks(move |i| {
                let counts = Arc::clone(&counts);
                async move {
                    let started = tokio::time::Instant::now();
                    let out = bare(black_box(i)).await;
                    let mut c = counts.lock().unwrap();
                    c.runs += 1;
                    c.ok += u64::from(out > 0);
                    c.latency += started.elapsed();
                }
            })
        });
    });
    for batch in [1, 16] {
        let ndf = runtime(batch);
        group.bench_function(format!("ndf_batch_{batch}"), |b| {
            b.to_async(&rt).iter(|| {
                let ndf = ndf.clone();
                two_tasks(move |i| {
                    let ndf = ndf.clone();
                    async move {
                        let flow = sequential!(name = "bench.inc"; inc);
                        let ctx = PatternContext::new("bench");
                        black_box(ndf.run(&flow, black_box(i), &ctx).await.unwrap());
                    }
                })
            });
        });
    }
    group.finish();
}

/// Runs `RUNS` runs of the workflow on each of `threads` OS threads per
/// iteration, `iters` iterations, and returns the time they took.
fn on_threads(ndf: &Ndf, threads: usize, iters: u64) -> Duration {
    let start = std::sync::Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let rt = rig::current_thread();
                    let flow = sequential!(name = "bench.inc"; inc);
                    let ctx = PatternContext::new("bench");
                    start.wait();
                    rt.block_on(async {
                        for i in 0..iters * RUNS {
                            black_box(ndf.run(&flow, black_box(i), &ctx).await.unwrap());
                        }
                    });
                })
            })
            .collect();
        start.wait();
        let began = std::time::Instant::now();
        for worker in workers {
            worker.join().unwrap();
        }
        began.elapsed()
    })
}

fn bench_threads(c: &mut Criterion) {
    let rt = rig::two_threads();
    let ndf = {
        let _inside = rt.enter();
        runtime(1)
    };
    let mut group = c.benchmark_group("threads");
    for threads in [1, 2] {
        group.bench_function(format!("ndf_{threads}"), |b| {
            b.iter_custom(|iters| on_threads(&ndf, threads, iters));
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench, bench_threads
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    for candidate in ["ndf_batch_1", "ndf_batch_16"] {
        ratio::report("two_threads", candidate, "hand_counted");
    }
    ratio::throughput("two_threads", "ndf_batch_16", 2 * RUNS);
    ratio::throughput("two_threads", "hand_counted", 2 * RUNS);
    ratio::throughput("threads", "ndf_1", RUNS);
    ratio::throughput("threads", "ndf_2", 2 * RUNS);
    ratio::scaling("threads", "ndf_1", "ndf_2", 2);
}
