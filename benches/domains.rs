//! A three-step `sequential!` through `Ndf` in one known domain against the
//! same workflow run in a new domain every time (tenant or request ids used
//! as domains), on to past `max_entries` (whose runs are learned under the
//! overflow domain), in the same run, on a current-thread runtime. Each
//! sample starts a fresh runtime; contexts are made before the clock runs.
//! Prints the ratio: a run in a new domain should cost about what a run in
//! a known one does.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group};
use ndf::prelude::*;

#[path = "support/ratio.rs"]
mod ratio;
#[path = "support/rig.rs"]
mod rig;

#[pattern]
async fn parse(x: u64) -> u64 {
    x.wrapping_add(1)
}

#[pattern]
async fn price(x: u64) -> u64 {
    x.wrapping_mul(3)
}

#[pattern]
async fn total(x: u64) -> u64 {
    x ^ 7
}

const GROUP: &str = "three_steps_by_domain";

fn runtime() -> Ndf {
    let mut config = Config::default();
    // Small enough that long samples run past it.
    config.max_entries = 2_000;
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = rig::current_thread();
    let flow = sequential!(name = "bench.checkout"; parse => price => total);

    let mut group = c.benchmark_group(GROUP);
    group.bench_function("known_domain", |b| {
        b.iter_custom(|iters| {
            let ndf = rt.block_on(async { runtime() });
            let ctx = PatternContext::new("tenant");
            rt.block_on(async {
                let start = Instant::now();
                for i in 0..iters {
                    black_box(ndf.run(&flow, black_box(i), &ctx).await.unwrap());
                }
                start.elapsed()
            })
        });
    });
    group.bench_function("new_domains", |b| {
        b.iter_custom(|iters| {
            let ndf = rt.block_on(async { runtime() });
            let contexts: Vec<PatternContext> = (0..iters)
                .map(|i| PatternContext::new(format!("tenant-{i}")))
                .collect();
            rt.block_on(async {
                let start = Instant::now();
                for (i, ctx) in contexts.iter().enumerate() {
                    black_box(ndf.run(&flow, black_box(i as u64), ctx).await.unwrap());
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio::report(GROUP, "new_domains", "known_domain");
}
