//! A 10-step `sequential!` run through `Ndf` against the same chain written
//! by hand as plain async fns, in the same run, on a current-thread runtime,
//! with steps that complete without waiting. Prints the time ratio and the
//! size of both futures (and of the chain by hand with a timeout on each
//! step, as ndf bounds every attempt); with a one-step run of each, what
//! each extra step costs over a hand-written one, over 9 and over 99 more
//! steps (the second steadier: the fixed cost of a run, and its noise,
//! spread over more steps), and over 99 with each 100-step run timed
//! together with a 1-step run (what drifts between groups taken out:
//! see `paired`).

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use ndf::prelude::*;

#[path = "support/ratio.rs"]
mod ratio;
#[path = "support/rig.rs"]
mod rig;

macro_rules! steps {
    ($($step:ident / $hand:ident),*) => {$(
        #[pattern]
        async fn $step(x: u64) -> u64 {
            x.wrapping_mul(3).wrapping_add(1)
        }

        #[allow(clippy::unused_async, reason = "the baseline: the same step as a plain async fn")]
        async fn $hand(x: u64) -> u64 {
            x.wrapping_mul(3).wrapping_add(1)
        }
    )*};
}

steps!(
    s0 / h0,
    s1 / h1,
    s2 / h2,
    s3 / h3,
    s4 / h4,
    s5 / h5,
    s6 / h6,
    s7 / h7,
    s8 / h8,
    s9 / h9
);

async fn hand_written(x: u64) -> Result<u64, StepError> {
    let x = h0(x).await;
    let x = h1(x).await;
    let x = h2(x).await;
    let x = h3(x).await;
    let x = h4(x).await;
    let x = h5(x).await;
    let x = h6(x).await;
    let x = h7(x).await;
    let x = h8(x).await;
    Ok(h9(x).await)
}

/// The same chain with what ndf arms on every step's attempt: a timeout
/// (ndf's default, 30 s). Only its size is printed: the steps complete
/// without waiting, so the timers are never armed.
async fn hand_written_with_timeouts(x: u64) -> Result<u64, tokio::time::error::Elapsed> {
    const STEP: Duration = Duration::from_secs(30);
    let x = tokio::time::timeout(STEP, h0(x)).await?;
    let x = tokio::time::timeout(STEP, h1(x)).await?;
    let x = tokio::time::timeout(STEP, h2(x)).await?;
    let x = tokio::time::timeout(STEP, h3(x)).await?;
    let x = tokio::time::timeout(STEP, h4(x)).await?;
    let x = tokio::time::timeout(STEP, h5(x)).await?;
    let x = tokio::time::timeout(STEP, h6(x)).await?;
    let x = tokio::time::timeout(STEP, h7(x)).await?;
    let x = tokio::time::timeout(STEP, h8(x)).await?;
    tokio::time::timeout(STEP, h9(x)).await
}

/// The ten steps ten times over: 100 steps, to measure what each step
/// adds against a run's fixed cost, and its noise, spread over 99 steps.
async fn hand_written_hundred(x: u64) -> Result<u64, StepError> {
    let mut x = x;
    for _ in 0..10 {
        x = h0(x).await;
        x = h1(x).await;
        x = h2(x).await;
        x = h3(x).await;
        x = h4(x).await;
        x = h5(x).await;
        x = h6(x).await;
        x = h7(x).await;
        x = h8(x).await;
        x = h9(x).await;
    }
    Ok(x)
}

async fn hand_written_one(x: u64) -> Result<u64, StepError> {
    Ok(h0(x).await)
}

const GROUP: &str = "sequential_10_steps";
const ONE: &str = "sequential_1_step";
const HUNDRED: &str = "sequential_100_steps";
const PAIRED: &str = "sequential_99_more_steps";

/// Benchmarks, in criterion group `group`, a run of `flow` through `ndf`
/// against `hand`, the same chain by hand, once both give the same output.
fn versus<W, F>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    (ndf, ctx): (&Ndf, &PatternContext),
    group: &str,
    flow: &W,
    hand: impl Fn(u64) -> F,
) where
    W: Workflow<Input = u64, Output = u64>,
    F: Future<Output = Result<u64, StepError>>,
{
    assert_eq!(
        rt.block_on(ndf.run(flow, 1, ctx)).unwrap(),
        rt.block_on(hand(1)).unwrap()
    );
    let mut group = c.benchmark_group(group);
    group.bench_function("hand_written", |b| {
        b.to_async(rt).iter(|| hand(black_box(1)));
    });
    group.bench_function("ndf", |b| {
        b.to_async(rt).iter(|| ndf.run(flow, black_box(1), ctx));
    });
    group.finish();
}

/// How much longer, over `iters` iterations, the runs `many` makes take
/// than those `one` makes: each iteration times one run of each, one
/// right after the other. Measured in groups of their own, the
/// two drift apart with this machine's slow and fast spells (a 1-step
/// run took 280 ns in one minute and 400 ns in another); measured in
/// pairs, the spells fall on both alike.
async fn paired<A: Future, B: Future>(
    iters: u64,
    many: impl Fn() -> A,
    one: impl Fn() -> B,
) -> Duration {
    let mut longer = Duration::ZERO;
    let mut shorter = Duration::ZERO;
    for _ in 0..iters {
        let start = std::time::Instant::now();
        black_box(many().await);
        let between = std::time::Instant::now();
        black_box(one().await);
        let end = std::time::Instant::now();
        longer += between - start;
        shorter += end - between;
    }
    longer.saturating_sub(shorter)
}

/// What 99 more steps add to a run, through `ndf` (`hundred` against
/// `one`) and by hand, each pair timed together (see [`paired`]).
fn paired_steps<W, V>(
    c: &mut Criterion,
    rt: &tokio::runtime::Runtime,
    (ndf, ctx): (&Ndf, &PatternContext),
    hundred: &W,
    one: &V,
) where
    W: Workflow<Input = u64, Output = u64>,
    V: Workflow<Input = u64, Output = u64>,
{
    let mut group = c.benchmark_group(PAIRED);
    group.bench_function("hand_written", |b| {
        b.to_async(rt).iter_custom(|iters| {
            paired(
                iters,
                || hand_written_hundred(black_box(1)),
                || hand_written_one(black_box(1)),
            )
        });
    });
    group.bench_function("ndf", |b| {
        b.to_async(rt).iter_custom(|iters| {
            paired(
                iters,
                || ndf.run(hundred, black_box(1), ctx),
                || ndf.run(one, black_box(1), ctx),
            )
        });
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let (rt, ndf, ctx) = rig::rig();
    let flow = sequential!(name = "bench.ten_steps"; s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9);
    versus(c, &rt, (&ndf, &ctx), GROUP, &flow, hand_written);

    let one = sequential!(name = "bench.one_step"; s0);
    versus(c, &rt, (&ndf, &ctx), ONE, &one, hand_written_one);

    let hundred = sequential!(name = "bench.hundred_steps";
        s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9 =>
        s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9 =>
        s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9 =>
        s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9 =>
        s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9 =>
        s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9 =>
        s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9 =>
        s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9 =>
        s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9 =>
        s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9);
    versus(
        c,
        &rt,
        (&ndf, &ctx),
        HUNDRED,
        &hundred,
        hand_written_hundred,
    );
    paired_steps(c, &rt, (&ndf, &ctx), &hundred, &one);

    println!(
        "future size: ndf {} bytes, hand-written {} bytes, hand-written with a timeout per step {} bytes",
        size_of_val(&ndf.run(&flow, 1, &ctx)),
        size_of_val(&hand_written(1)),
        size_of_val(&hand_written_with_timeouts(1)),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio::report(GROUP, "ndf", "hand_written");
    ratio::report(ONE, "ndf", "hand_written");
    ratio::report(HUNDRED, "ndf", "hand_written");
    ratio::per_extra_step(GROUP, ONE, 9);
    // The steadier figure: a run's fixed cost, and the noise of measuring
    // it, spread over 99 steps rather than 9.
    ratio::per_extra_step(HUNDRED, ONE, 99);
    // Without the drift between groups: the 100-step and the 1-step runs
    // timed in pairs.
    ratio::per_step_paired(PAIRED, 99);
}
