//! A retry allocates nothing of ndf's own: the retried attempts of a step
//! reuse the room of its first (its cell), so what a run with three
//! failed attempts allocates more than a run with one is what the step's
//! two more errors allocate, and nothing else.

use std::sync::atomic::{AtomicU32, Ordering};

use ndf::prelude::*;

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// How many of `flaky`'s next attempts fail.
static FAILING: AtomicU32 = AtomicU32::new(0);

/// The error of a failed attempt of `flaky`.
fn down() -> StepError {
    StepError::msg("the dependency is down")
}

#[pattern(timeout = "5s", retries = 3)]
async fn flaky(x: u64) -> Result<u64, StepError> {
    if FAILING
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
        .is_ok()
    {
        return Err(down());
    }
    Ok(x + 1)
}

/// The blocks allocated by `runs` runs of `flow` whose first `failing`
/// attempts fail, after as many to warm up.
fn allocated(
    rt: &tokio::runtime::Runtime,
    ndf: &Ndf,
    flow: &impl Workflow<Input = u64, Output = u64>,
    failing: u32,
) -> u64 {
    let ctx = PatternContext::new("retries");
    let run = |i| {
        FAILING.store(failing, Ordering::Relaxed);
        let out = rt.block_on(ndf.run(flow, i, &ctx)).unwrap();
        assert_eq!(out, i + 1);
        assert_eq!(FAILING.load(Ordering::Relaxed), 0, "every failure retried");
    };
    for i in 0..200 {
        run(i);
    }
    let before = dhat::HeapStats::get().total_blocks;
    for i in 0..100 {
        run(i);
    }
    dhat::HeapStats::get().total_blocks - before
}

#[test]
fn a_retry_allocates_only_the_steps_own_error() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = common::paused_runtime();
    let ndf = common::ndf_alone();
    let flow = sequential!(name = "retries.flaky"; flaky);
    let before = dhat::HeapStats::get().total_blocks;
    drop(std::hint::black_box(down()));
    let per_error = dhat::HeapStats::get().total_blocks - before;

    let once = allocated(&rt, &ndf, &flow, 1);
    let thrice = allocated(&rt, &ndf, &flow, 3);
    println!(
        "100 runs: {once} blocks with one failed attempt, {thrice} with three; an error: {per_error}"
    );
    assert!(once > 0, "a failed first attempt goes on in a boxed future");
    dhat::assert_eq!(thrice - once, 100 * 2 * per_error);
}
