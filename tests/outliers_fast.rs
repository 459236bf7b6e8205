//! A workflow that runs in microseconds has no latency outliers from the
//! jitter a scheduler and cold caches add (under a millisecond), while a
//! real stall of it is still one: counted, and a WARN line. Run through
//! `Ndf::run` with the defaults and a subscriber at INFO; the steps move
//! tokio's paused clock by exact microseconds, so the latencies are the
//! same on every machine. The only test of its binary: the subscriber is
//! thread-wide state and tracing caches each callsite's interest
//! process-wide.

use std::time::Duration;

use ndf::prelude::*;

mod common;

/// A step that takes `micros` microseconds of the (paused) clock.
#[pattern]
async fn lookup(micros: u64) -> u64 {
    tokio::time::advance(Duration::from_micros(micros)).await;
    micros
}

#[test]
fn sub_millisecond_jitter_is_no_outlier_and_a_stall_is_one() {
    let (log, _guard) = common::capture_at_info();
    let rt = common::paused_runtime();
    let (stalled, healthy) = rt.block_on(async {
        let ndf = Ndf::builder().build().unwrap();
        let flow = sequential!(name = "cache.lookup"; lookup);
        let ctx = PatternContext::new("cache");
        for i in 0..3_000_u64 {
            // Mostly 2–4 µs; now and then 150–199 µs, or 900 µs.
            let micros = match i % 97 {
                0 => 900,
                1 | 2 => 150 + i % 50,
                _ => 2 + i % 3,
            };
            ndf.run(&flow, micros, &ctx).await.unwrap();
        }
        let healthy = ndf.stats("cache.lookup", "cache").unwrap();
        ndf.run(&flow, 5_000, &ctx).await.unwrap();
        (ndf.stats("cache.lookup", "cache").unwrap(), healthy)
    });
    assert_eq!(healthy.executions, 3_000);
    assert_eq!(
        healthy.outliers, 0,
        "jitter under a millisecond counted as outliers"
    );
    assert_eq!(stalled.outliers, 1, "a 5 ms stall of a 3 µs workflow");
    let text = log.text();
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("latency outlier"))
        .collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("pattern=\"cache.lookup\""),
        "{}",
        lines[0]
    );
}
