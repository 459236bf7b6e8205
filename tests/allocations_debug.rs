//! At debug level each step attempt has an `ndf.step` span, boxed in its
//! attempt so that the attempt's future keeps a word for it, not the 40
//! bytes of a span. That box is the only allocation it costs: with a
//! subscriber that takes every span and allocates nothing itself, a warm
//! run allocates exactly one block per step attempt, and at info level
//! (no step spans) none at all; nor does a warm run that is a latency
//! outlier, noted for the log. In a binary of its own: dhat counts the
//! whole process, and the subscriber is thread-wide state.

use std::sync::atomic::{AtomicU64, Ordering};

use ndf::prelude::*;
use tracing::span;

mod common;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[pattern]
async fn parse(x: u64) -> u64 {
    x * 3
}

#[pattern(timeout = "5s")]
async fn check(x: u64) -> u64 {
    x + 1
}

#[pattern(retries = 2)]
async fn save(x: u64) -> Result<u64, StepError> {
    Ok(x)
}

/// Takes every span and event up to `level`, and allocates nothing.
struct Quiet {
    level: tracing::level_filters::LevelFilter,
    next: AtomicU64,
}

impl tracing::Subscriber for Quiet {
    fn enabled(&self, meta: &tracing::Metadata<'_>) -> bool {
        *meta.level() <= self.level
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(self.level)
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(self.next.fetch_add(1, Ordering::Relaxed))
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, _: &tracing::Event<'_>) {}

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// Heap blocks allocated while `runs` warm runs of `flow` complete.
fn blocks<W>(rt: &tokio::runtime::Runtime, ndf: &Ndf, flow: &W, runs: u64) -> u64
where
    W: ndf::Workflow<Input = u64, Output = u64>,
{
    let ctx = PatternContext::new("shop");
    rt.block_on(async {
        // Warm: every ring filled, every slot resolved.
        for i in 0..300 {
            assert_eq!(ndf.run(flow, i, &ctx).await.unwrap(), i * 3 + 1);
        }
        let before = dhat::HeapStats::get();
        for i in 0..runs {
            assert_eq!(ndf.run(flow, i, &ctx).await.unwrap(), i * 3 + 1);
        }
        dhat::HeapStats::get().total_blocks - before.total_blocks
    })
}

#[test]
fn a_step_span_costs_its_box_and_nothing_more() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let rt = common::runtime();
    let ndf = common::ndf_alone();
    // Three steps: plain, plain with a timeout of its own, retried.
    let flow = sequential!(name = "shop.parse_check_save"; parse => check => save);

    let debug = tracing::subscriber::set_default(Quiet {
        level: tracing::level_filters::LevelFilter::DEBUG,
        next: AtomicU64::new(1),
    });
    assert!(tracing::enabled!(tracing::Level::DEBUG));
    let traced = blocks(&rt, &ndf, &flow, 100);
    dhat::assert_eq!(traced, 100 * 3, "one box per step attempt");
    drop(debug);

    let info = tracing::subscriber::set_default(Quiet {
        level: tracing::level_filters::LevelFilter::INFO,
        next: AtomicU64::new(1),
    });
    assert!(!tracing::enabled!(tracing::Level::DEBUG));
    let untraced = blocks(&rt, &ndf, &flow, 100);
    dhat::assert_eq!(untraced, 0, "no step span, no box");
    a_warm_outlier_allocates_nothing();
    drop(info);
}

/// Waits `ms` milliseconds.
#[pattern]
async fn napping(ms: u64) -> u64 {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    ms
}

/// A warm run that is a latency outlier (on a busy machine, any run may
/// be one) is noted for the log, which a subscriber at info level sees,
/// without allocating. On paused time, so that every warm run takes
/// exactly a millisecond and only the slow one is an outlier; an `Ndf` of
/// its own, whose outlier log is new.
fn a_warm_outlier_allocates_nothing() {
    assert!(tracing::enabled!(target: "ndf::outlier", tracing::Level::WARN));
    let rt = common::paused_runtime();
    let ndf = common::ndf_alone();
    let ctx = PatternContext::new("shop");
    let napping = sequential!(name = "shop.napping"; napping);
    rt.block_on(async {
        for _ in 0..300 {
            ndf.run(&napping, 1, &ctx).await.unwrap();
        }
        assert_eq!(ndf.stats("shop.napping", "shop").unwrap().outliers, 0);
        let before = dhat::HeapStats::get();
        assert_eq!(ndf.run(&napping, 50, &ctx).await.unwrap(), 50);
        let blocks = dhat::HeapStats::get().total_blocks - before.total_blocks;
        let stats = ndf.stats("shop.napping", "shop").unwrap();
        assert_eq!(stats.outliers, 1, "the slow run is an outlier: {stats:?}");
        dhat::assert_eq!(blocks, 0, "an outlier noted for the log allocates nothing");
    });
}
