//! What a run in flight holds in memory, which is what a service that
//! spawns 100 000 workflows pays: the heap bytes live per spawned task
//! (tokio's task cell, the future inside it, anything the run allocates)
//! while each task waits in its first step. A 10-step `sequential!` run
//! through `Ndf::run`, against the same chain written by hand, with plain
//! awaits and with a `tokio::time::timeout` around each step (what ndf
//! does for every step: each attempt has a timeout). The steps wait on a
//! gate that never opens; the runtime, dropped, cancels them.
//!
//! Prints the bytes per run in flight and the ratios; `size_of_val` of
//! each future beside them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ndf::prelude::*;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Runs spawned for each measure.
const RUNS: usize = 100_000;

/// Tasks parked in their first step.
static PARKED: AtomicUsize = AtomicUsize::new(0);

/// The gate every step waits at: it never opens.
fn gate() -> &'static tokio::sync::Notify {
    static GATE: std::sync::OnceLock<tokio::sync::Notify> = std::sync::OnceLock::new();
    GATE.get_or_init(tokio::sync::Notify::new)
}

/// A step that waits at the gate.
async fn wait(x: u64) -> u64 {
    PARKED.fetch_add(1, Ordering::Relaxed);
    gate().notified().await;
    x.wrapping_add(1)
}

macro_rules! steps {
    ($($step:ident),*) => {$(
        #[pattern]
        async fn $step(x: u64) -> u64 {
            wait(x).await
        }
    )*};
}

steps!(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9);

async fn hand_written(x: u64) -> u64 {
    let mut x = x;
    for _ in 0..10 {
        x = wait(x).await;
    }
    x
}

/// Ten steps, each under a timeout of its own, as ndf bounds each attempt.
async fn hand_written_with_timeouts(x: u64) -> Result<u64, tokio::time::error::Elapsed> {
    let mut x = x;
    for _ in 0..10 {
        x = tokio::time::timeout(Duration::from_secs(30), wait(x)).await?;
    }
    Ok(x)
}

/// The heap bytes live per task, once `RUNS` tasks that `spawn` makes are
/// all parked in their first step.
fn per_run(spawn: impl Fn(&tokio::runtime::Runtime)) -> usize {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // The runtime's own first allocations, before the count starts.
    rt.block_on(tokio::task::yield_now());
    PARKED.store(0, Ordering::Relaxed);
    let before = dhat::HeapStats::get().curr_bytes;
    for _ in 0..RUNS {
        spawn(&rt);
    }
    rt.block_on(async {
        while PARKED.load(Ordering::Relaxed) < RUNS {
            tokio::task::yield_now().await;
        }
    });
    let after = dhat::HeapStats::get().curr_bytes;
    drop(rt);
    (after - before) / RUNS
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let ctx = Arc::new(PatternContext::new("bench"));
    let flow = sequential!(name = "bench.in_flight"; s0 => s1 => s2 => s3 => s4 => s5 => s6 => s7 => s8 => s9);

    // Each measure once first: what a first spawn allocates (tokio's
    // queues growing, ndf's statistics entry) is not a run's.
    let ndf_run = || {
        per_run(|rt| {
            let (ndf, ctx) = (ndf.clone(), ctx.clone());
            rt.spawn(async move { ndf.run(&flow, 1, &ctx).await });
        })
    };
    let plain = || {
        per_run(|rt| {
            rt.spawn(hand_written(1));
        })
    };
    let timed = || {
        per_run(|rt| {
            rt.spawn(hand_written_with_timeouts(1));
        })
    };
    let (_, _, _) = (ndf_run(), plain(), timed());
    let (ndf_bytes, plain_bytes, timed_bytes) = (ndf_run(), plain(), timed());

    println!("bytes per run in flight ({RUNS} spawned, each waiting in its first step):");
    println!(
        "  ndf: {ndf_bytes} B (future {} B)",
        size_of_val(&ndf.run(&flow, 1, &ctx))
    );
    println!(
        "  hand-written, plain awaits: {plain_bytes} B (future {} B)",
        size_of_val(&hand_written(1))
    );
    println!(
        "  hand-written, a timeout per step: {timed_bytes} B (future {} B)",
        size_of_val(&hand_written_with_timeouts(1))
    );
    #[allow(clippy::cast_precision_loss, reason = "byte counts well below 2^52")]
    {
        println!(
            "  ratio: {:.2}x plain, {:.2}x with timeouts",
            ndf_bytes as f64 / plain_bytes as f64,
            ndf_bytes as f64 / timed_bytes as f64
        );
    }
}
