//! `parallel!` with k ready tasks against `tokio::join!` of the same plain
//! async fns, and `orchestrate!` shapes (a 1 → 100 fan-out, a 4-task
//! diamond) against hand-written `FuturesUnordered` code, each pair in the
//! same run on a current-thread runtime. Prints the ratios.
//!
//! The stage lists are written out: each `parallel!` is one concrete state
//! machine with one slot per task.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use ndf::prelude::*;

#[path = "support/ratio.rs"]
mod ratio;
#[path = "support/rig.rs"]
mod rig;

#[pattern]
async fn t(x: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(1)
}

#[allow(
    clippy::unused_async,
    reason = "the baseline: the same step as a plain async fn"
)]
async fn h(x: u64) -> u64 {
    x.wrapping_mul(3).wrapping_add(1)
}

#[pattern]
async fn seed(x: u64) -> u64 {
    x ^ 0x5555
}

#[pattern]
async fn join_pair(pair: (u64, u64)) -> u64 {
    pair.0.wrapping_add(pair.1)
}

#[allow(
    clippy::unused_async,
    reason = "the baseline: the same step as a plain async fn"
)]
async fn hand_seed(x: u64) -> u64 {
    x ^ 0x5555
}

/// `h(black_box(x))`, once for each stage named: the baseline's task list
/// stays as long as the `parallel!` it is measured against.
macro_rules! baseline_task {
    ($stage:ident, $x:ident) => {
        h(black_box($x))
    };
}

/// For one k: `parallel!` over the stages given against `tokio::join!` of
/// as many plain calls, both benchmarked in `group`; prints the sizes of
/// both futures.
macro_rules! bench_k {
    ($group:ident, $rt:ident, $ndf:ident, $ctx:ident; $k:literal, $name:literal; $($stage:ident),+) => {{
        let flow = parallel!(name = $name; $($stage),+);
        let join = || async {
            let x = 1;
            tokio::join!($(baseline_task!($stage, x)),+)
        };
        $group.bench_with_input(BenchmarkId::new("tokio_join", $k), &$k, |b, _| {
            b.to_async(&$rt).iter(join);
        });
        $group.bench_with_input(BenchmarkId::new("ndf", $k), &$k, |b, _| {
            b.to_async(&$rt).iter(|| $ndf.run(&flow, black_box(1), &$ctx));
        });
        let size_ndf = size_of_val(&$ndf.run(&flow, 1, &$ctx));
        let size_join = size_of_val(&join());
        println!(
            "parallel k={}: future size ndf {size_ndf} B, tokio::join! {size_join} B",
            $k
        );
    }};
}

fn bench_parallel(c: &mut Criterion) {
    let (rt, ndf, ctx) = rig::rig();
    let mut group = c.benchmark_group("parallel");
    bench_k!(group, rt, ndf, ctx; 2, "bench.parallel_2"; t, t);
    bench_k!(group, rt, ndf, ctx; 8, "bench.parallel_8"; t, t, t, t, t, t, t, t);
    bench_k!(group, rt, ndf, ctx; 31, "bench.parallel_31"; t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t);
    bench_k!(group, rt, ndf, ctx; 64, "bench.parallel_64"; t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t);
    group.finish();
}

fn bench_orchestrate(c: &mut Criterion) {
    let (rt, ndf, ctx) = rig::rig();
    let mut group = c.benchmark_group("orchestrate");

    let fan_out = orchestrate!(name = "bench.fan_out";
        source: sequential!(seed);
        fan: parallel!(t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t, t));
    group.bench_function("fan_out_100_futures_unordered", |b| {
        b.to_async(&rt).iter(|| async {
            let x = hand_seed(black_box(1)).await;
            let mut tasks: FuturesUnordered<_> = (0..100).map(|_| h(x)).collect();
            let mut outs = Vec::with_capacity(100);
            while let Some(out) = tasks.next().await {
                outs.push(out);
            }
            outs
        });
    });
    group.bench_function("fan_out_100_ndf", |b| {
        b.to_async(&rt)
            .iter(|| ndf.run(&fan_out, black_box(1), &ctx));
    });

    let diamond = orchestrate!(name = "bench.diamond";
        top: sequential!(seed);
        middle: parallel!(t, t);
        bottom: sequential!(join_pair));
    group.bench_function("diamond_4_futures_unordered", |b| {
        b.to_async(&rt).iter(|| async {
            let x = hand_seed(black_box(1)).await;
            let mut middle: FuturesUnordered<_> = [h(x), h(x)].into_iter().collect();
            let mut sum = 0u64;
            while let Some(out) = middle.next().await {
                sum = sum.wrapping_add(out);
            }
            sum
        });
    });
    group.bench_function("diamond_4_ndf", |b| {
        b.to_async(&rt)
            .iter(|| ndf.run(&diamond, black_box(1), &ctx));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500));
    targets = bench_parallel, bench_orchestrate
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio::report("parallel", "ndf/2", "tokio_join/2");
    ratio::report("parallel", "ndf/8", "tokio_join/8");
    ratio::report("parallel", "ndf/31", "tokio_join/31");
    ratio::report("parallel", "ndf/64", "tokio_join/64");
    ratio::report(
        "orchestrate",
        "fan_out_100_ndf",
        "fan_out_100_futures_unordered",
    );
    ratio::report(
        "orchestrate",
        "diamond_4_ndf",
        "diamond_4_futures_unordered",
    );
}
