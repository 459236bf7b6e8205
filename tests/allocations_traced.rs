//! The happy path allocates nothing under the conditions a service runs
//! in: a `fmt` subscriber listening at INFO (so every run has its
//! `ndf.workflow` span) and steps that really wait on tokio's timer (so
//! their timeouts are armed: a step's own, and the alarm the tasks of a
//! `parallel!` share). The `fmt` layer allocates to format each
//! span's fields; ndf adds nothing to that: a run costs the allocations of
//! the same span made by hand, and none at all without a span. In a
//! binary of its own: the subscriber is thread-wide state.

use std::time::Duration;

use ndf::prelude::*;
use tracing::Instrument as _;
use tracing_subscriber::layer::SubscriberExt as _;

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[pattern(timeout = "5s", retries = 3, memory = "1MB")]
async fn fetch(x: u64) -> Result<u64, StepError> {
    tokio::time::sleep(Duration::from_micros(50)).await;
    Ok(x.wrapping_mul(3))
}

#[pattern(timeout = "5s")]
async fn store(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_micros(50)).await;
    x + 1
}

/// The first of the outputs of the `parallel!`.
#[pattern]
async fn first_of(outs: (u64, u64)) -> u64 {
    outs.0
}

/// What the hand-written equivalent of one run does: the same waits in
/// the same span, its outcome recorded.
async fn by_hand(x: u64) -> u64 {
    let span = tracing::info_span!(
        "ndf.workflow",
        pattern = "shop.fetch_store",
        domain = "shop",
        outcome = tracing::field::Empty,
        degradation_level = tracing::field::Empty,
    );
    let out = async {
        tokio::time::sleep(Duration::from_micros(50)).await;
        tokio::join!(
            tokio::time::sleep(Duration::from_micros(50)),
            tokio::time::sleep(Duration::from_micros(50))
        );
        x * 3 + 1
    }
    .instrument(span.clone())
    .await;
    span.record("outcome", "ok");
    out
}

/// Heap blocks allocated while `runs` runs of `run` complete, after as
/// many to warm up.
async fn blocks<F: std::future::Future<Output = u64>>(runs: u64, run: impl Fn(u64) -> F) -> u64 {
    for i in 0..runs {
        assert_eq!(run(i).await, i * 3 + 1);
    }
    let before = dhat::HeapStats::get();
    for i in 0..runs {
        assert_eq!(run(i).await, i * 3 + 1);
    }
    dhat::HeapStats::get().total_blocks - before.total_blocks
}

#[test]
fn a_warm_traced_run_of_waiting_steps_allocates_nothing() {
    let _profiler = dhat::Profiler::builder().testing().build();
    // Steps that really wait take what the machine gives them: on a busy
    // one, any run may be a latency outlier, whose warn line the `fmt`
    // layer allocates to format (its own, as the span's). Those lines are
    // left out here; `tests/allocations_debug.rs` holds that noting an
    // outlier allocates nothing.
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .finish()
        .with(
            tracing_subscriber::filter::Targets::new()
                .with_default(tracing::Level::INFO)
                .with_target("ndf::outlier", tracing::level_filters::LevelFilter::OFF),
        );
    let guard = tracing::subscriber::set_default(subscriber);
    assert!(tracing::enabled!(tracing::Level::INFO));
    let rt = common::runtime();
    // Without background tasks: the learner's batches are the runtime's
    // allocations, not a run's (see `common::ndf_alone`).
    let ndf = common::ndf_alone();
    let ctx = PatternContext::new("shop");
    let flow = sequential!(name = "shop.fetch_store"; fetch => parallel!(store, store) => first_of);
    rt.block_on(async {
        // Warm: every ring filled, every slot resolved.
        for i in 0..300 {
            ndf.run(&flow, i, &ctx).await.unwrap();
        }
        let span_alone = blocks(100, by_hand).await;
        let ndf_run = blocks(100, |i| {
            let (ndf, ctx, flow) = (&ndf, &ctx, &flow);
            async move { ndf.run(flow, i, ctx).await.unwrap() }
        })
        .await;
        assert!(span_alone > 0, "the fmt layer formats each span");
        dhat::assert_eq!(ndf_run, span_alone, "ndf adds no allocation to its span's");
    });
    drop(guard);
    rt.block_on(async {
        let untraced = blocks(100, |i| {
            let (ndf, ctx, flow) = (&ndf, &ctx, &flow);
            async move { ndf.run(flow, i, ctx).await.unwrap() }
        })
        .await;
        dhat::assert_eq!(untraced, 0, "without a span, nothing at all");
    });
}
