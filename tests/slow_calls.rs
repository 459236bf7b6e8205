//! Slow calls: a success slower than the step's `slow_call` threshold
//! counts as a failure for its confidence and breaker, while the caller
//! still gets it and the counters count it as a success.

use std::time::Duration;

use ndf::prelude::*;

#[pattern(slow_call = "100ms")]
async fn sluggish(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

fn ndf() -> Ndf {
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(Config::default().min_samples(4).gate_alpha(0.2))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn slow_successes_open_the_breaker() {
    let ndf = ndf();
    let flow = sequential!(name = "search.query"; sluggish);
    let ctx = PatternContext::new("search");
    let mut served = 0;
    for _ in 0..8 {
        if ndf.run(&flow, 500, &ctx).await.is_ok() {
            served += 1;
        }
    }
    assert_eq!(
        ndf.breaker("sluggish", "search"),
        Some(ndf::BreakerState::Open)
    );
    let stats = ndf.stats("sluggish", "search").unwrap();
    assert_eq!((stats.successes, stats.failures), (served, 0), "{stats:?}");
    assert!(served < 8, "held back once its breaker opened");
}

#[tokio::test(start_paused = true)]
async fn fast_successes_keep_it_closed() {
    let ndf = ndf();
    let flow = sequential!(name = "search.query"; sluggish);
    let ctx = PatternContext::new("search");
    for _ in 0..20 {
        assert_eq!(ndf.run(&flow, 20, &ctx).await.unwrap(), 20);
    }
    assert_eq!(
        ndf.breaker("sluggish", "search"),
        Some(ndf::BreakerState::Closed)
    );
}
