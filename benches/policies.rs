//! One step run through `Ndf` with every policy armed (timeout, retries,
//! confidence threshold and gating, fallback, resource admission, learning,
//! outliers and alerts) against the bare async fn, in the same run, on a
//! current-thread runtime. Prints the time added per step.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use ndf::prelude::*;

#[path = "support/ratio.rs"]
mod ratio;
#[path = "support/rig.rs"]
mod rig;

#[pattern(timeout = "5s", retries = 3, confidence_threshold = 0.5, fallback = spare)]
async fn guarded(x: u64) -> Result<u64, StepError> {
    Ok(x.wrapping_mul(3).wrapping_add(1))
}

#[pattern]
async fn spare(x: u64) -> u64 {
    x
}

#[allow(
    clippy::unused_async,
    reason = "the baseline: the same step as a plain async fn"
)]
async fn bare(x: u64) -> Result<u64, StepError> {
    Ok(x.wrapping_mul(3).wrapping_add(1))
}

fn bench(c: &mut Criterion) {
    let rt = rig::current_thread();
    let mut config = Config::default();
    config.latency_alert = Some(Duration::from_secs(1));
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let ctx = PatternContext::new("bench").attribute("region", "eu-west-1");
    let flow = sequential!(name = "bench.one_step"; guarded);

    let mut group = c.benchmark_group("one_step");
    group.bench_function("bare", |b| b.to_async(&rt).iter(|| bare(black_box(1))));
    group.bench_function("ndf", |b| {
        b.to_async(&rt).iter(|| ndf.run(&flow, black_box(1), &ctx));
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
    ratio::report("one_step", "ndf", "bare");
    ratio::added("one_step", "ndf", "bare");
}
