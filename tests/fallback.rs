//! A step's `fallback` runs in its place when the step fails.

mod common;

use common::Trace;
use ndf::prelude::*;

#[pattern(retries = 1, fallback = cached_quote)]
async fn live_quote(t: Trace) -> Result<u32, StepError> {
    t.push("live_quote");
    Err(StepError::msg("pricing service unavailable"))
}

#[pattern]
async fn cached_quote(t: Trace) -> u32 {
    t.push("cached_quote");
    42
}

#[pattern(fallback = broken_cache)]
async fn live_quote_no_cache(t: Trace) -> Result<u32, StepError> {
    t.push("live_quote");
    Err(StepError::msg("pricing service unavailable"))
}

#[pattern]
async fn broken_cache(t: Trace) -> Result<u32, StepError> {
    t.push("broken_cache");
    Err(StepError::msg("cache empty"))
}

#[tokio::test(start_paused = true)]
async fn the_fallback_serves_after_the_retries() {
    let ndf = common::ndf();
    let t = Trace::default();
    let out = ndf
        .run(
            &sequential!(name = "pricing.quote"; live_quote),
            t.clone(),
            &PatternContext::new("pricing"),
        )
        .await;
    assert_eq!(out.unwrap(), 42);
    assert_eq!(t.events(), ["live_quote", "live_quote", "cached_quote"]);
    let stats = ndf.stats("live_quote", "pricing").unwrap();
    assert_eq!((stats.successes, stats.fallbacks, stats.retries), (1, 1, 1));
}

#[tokio::test]
async fn when_the_fallback_fails_too_the_step_error_is_returned() {
    let ndf = common::ndf();
    let t = Trace::default();
    let err = ndf
        .run(
            &sequential!(live_quote_no_cache),
            t.clone(),
            &PatternContext::new("pricing"),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ndf::Error::Execution { step, source, .. }
            if step == "live_quote_no_cache" && source.to_string() == "pricing service unavailable"),
        "{err}"
    );
    assert_eq!(t.events(), ["live_quote", "broken_cache"]);
}
