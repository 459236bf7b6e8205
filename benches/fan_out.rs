//! Dynamic fan-out, `parallel!(max_concurrent = 8; each t)`, over 10 000
//! items against hand-written code doing the same: a `FuturesUnordered`
//! with at most 8 in flight, the outputs put back in input order. Both on a
//! current-thread runtime in the same run; prints the ratio. Twice: with
//! steps that finish at their first poll, and with steps that are pending
//! once (they yield to the runtime) and so go through the wakers, against
//! the hand-written code without and with a timeout on each item (ndf's
//! steps always have one). Then one run
//! over 1 000 000 items, printing the peak RSS before and after it: what
//! grows is the output `Vec` (8 B an item), not the items in flight.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use ndf::prelude::*;

#[path = "support/ratio.rs"]
mod ratio;
#[path = "support/rig.rs"]
mod rig;

const ITEMS: u64 = 10_000;
const BOUND: usize = 8;

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

/// The hand-written fan-out: at most `BOUND` in flight, outputs in input
/// order.
/// A step that really waits: pending once, then done.
#[pattern]
async fn w(x: u64) -> u64 {
    tokio::task::yield_now().await;
    x.wrapping_mul(3).wrapping_add(1)
}

/// The baseline of [`w`].
async fn hw(x: u64) -> u64 {
    tokio::task::yield_now().await;
    x.wrapping_mul(3).wrapping_add(1)
}

/// The same items through a `FuturesUnordered` of at most [`BOUND`],
/// outputs in input order.
async fn hand_written(items: Vec<u64>) -> Vec<u64> {
    hand_written_with(items, h).await
}

async fn hand_written_with<F: Future<Output = u64>>(
    items: Vec<u64>,
    step: impl Fn(u64) -> F,
) -> Vec<u64> {
    let mut outs = vec![0; items.len()];
    let mut running = FuturesUnordered::new();
    let mut items = items.into_iter().enumerate();
    loop {
        while running.len() < BOUND {
            let Some((i, x)) = items.next() else { break };
            let item = step(x);
            running.push(async move { (i, item.await) });
        }
        match running.next().await {
            Some((i, out)) => outs[i] = out,
            None => return outs,
        }
    }
}

fn bench_fan_out(c: &mut Criterion) {
    let (rt, ndf, ctx) = rig::rig();
    let flow = parallel!(name = "bench.each", max_concurrent = 8; each t);
    let input: Vec<u64> = (0..ITEMS).collect();
    let mut group = c.benchmark_group("fan_out");
    group.bench_function("futures_unordered_10000", |b| {
        b.to_async(&rt)
            .iter(|| hand_written(black_box(input.clone())));
    });
    group.bench_function("ndf_10000", |b| {
        b.to_async(&rt)
            .iter(|| ndf.run(&flow, black_box(input.clone()), &ctx));
    });
    // Items that are pending once: each goes through the set's wakers.
    let flow = parallel!(name = "bench.each_waiting", max_concurrent = 8; each w);
    group.bench_function("futures_unordered_10000_waiting", |b| {
        b.to_async(&rt)
            .iter(|| hand_written_with(black_box(input.clone()), hw));
    });
    // The same, each item under a timeout as ndf's steps are (its default
    // `step_timeout`, armed at the item's first wait).
    group.bench_function("futures_unordered_10000_waiting_timeout", |b| {
        b.to_async(&rt).iter(|| {
            hand_written_with(black_box(input.clone()), |x| async move {
                tokio::time::timeout(Duration::from_secs(30), hw(x))
                    .await
                    .unwrap_or(0)
            })
        });
    });
    group.bench_function("ndf_10000_waiting", |b| {
        b.to_async(&rt)
            .iter(|| ndf.run(&flow, black_box(input.clone()), &ctx));
    });
    group.finish();
}

/// The peak resident set of this process, in KiB (Linux).
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn million() {
    let (rt, ndf, ctx) = rig::rig();
    let flow =
        sequential!(name = "bench.each_range"; seq_to => parallel!(max_concurrent = 64; each t));
    let before = peak_rss_kib();
    let started = std::time::Instant::now();
    // A range, not a `Vec`: nothing of the input is held.
    let out = rt.block_on(ndf.run(&flow, 1_000_000, &ctx));
    let elapsed = started.elapsed();
    let after = peak_rss_kib();
    let out = out.unwrap();
    assert_eq!(out.len(), 1_000_000);
    println!(
        "fan_out: 1 000 000 items (bound 64) in {elapsed:?}; peak RSS {} KiB before, {} KiB after (the output Vec is {} KiB)",
        before.unwrap_or(0),
        after.unwrap_or(0),
        out.len() * 8 / 1024
    );
}

#[pattern]
async fn seq_to(n: u64) -> std::ops::Range<u64> {
    0..n
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_millis(500));
    targets = bench_fan_out
}

fn main() {
    million();
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio::report("fan_out", "ndf_10000", "futures_unordered_10000");
    ratio::report(
        "fan_out",
        "ndf_10000_waiting",
        "futures_unordered_10000_waiting",
    );
    ratio::report(
        "fan_out",
        "ndf_10000_waiting",
        "futures_unordered_10000_waiting_timeout",
    );
}
