//! A step's `breaker(…)`: a circuit breaker on a sliding window of its
//! outcomes, in Polly's and resilience4j's terms. It opens once the window
//! holds `min_calls` outcomes and `failure_ratio` of them failed, refuses
//! runs for `break_for`, admits `probes`, and closes again once enough of
//! them succeed. On paused tokio time.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use ndf::prelude::*;
use ndf::{BreakerState, Error};

static DOWN: AtomicBool = AtomicBool::new(true);
static CALLS: AtomicU32 = AtomicU32::new(0);

#[pattern(breaker(
    window = 10,
    failure_ratio = 0.5,
    min_calls = 10,
    break_for = "5s",
    probes = 2
))]
async fn charge(x: u32) -> Result<u32, StepError> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    if DOWN.load(Ordering::SeqCst) {
        Err(StepError::msg("card service unavailable"))
    } else {
        Ok(x)
    }
}

/// A runtime whose workflows hold nothing back themselves: only the
/// steps' own breakers act.
fn ndf() -> Ndf {
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(Config::default().confidence_threshold(0.0))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_window_opens_the_breaker_refuses_then_probes_close_it() {
    let ndf = ndf();
    let flow = sequential!(name = "shop.checkout"; charge);
    let ctx = PatternContext::new("shop");
    // Nine failures: the window does not hold `min_calls` yet.
    for _ in 0..9 {
        assert!(ndf.run(&flow, 1, &ctx).await.is_err());
    }
    assert_eq!(ndf.breaker("charge", "shop"), Some(BreakerState::Closed));
    assert!(ndf.run(&flow, 1, &ctx).await.is_err());
    assert_eq!(ndf.breaker("charge", "shop"), Some(BreakerState::Open));
    assert_eq!(CALLS.load(Ordering::SeqCst), 10);
    let alerts = ndf.alerts();
    let alert = alerts
        .iter()
        .find(|a| a.kind == ndf::AlertKind::Confidence && a.pattern == "charge")
        .expect("the opening raises an alert");
    assert!(
        alert
            .message
            .contains("10 of the last 10 outcomes in its `breaker(…)` window failed")
            && alert.message.contains("probes in 5s"),
        "{}",
        alert.message
    );

    // Open: refused without calling the step, for `break_for`.
    match ndf.run(&flow, 1, &ctx).await {
        Err(
            err @ Error::ConfidenceThreshold {
                state,
                retry_in,
                failures,
                calls,
                window,
                ..
            },
        ) => {
            assert_eq!(state, BreakerState::Open);
            assert_eq!(retry_in, Some(Duration::from_secs(5)));
            assert_eq!((failures, calls), (10, 10), "what the window held");
            assert!(window, "held back by the step's own breaker");
            let message = err.to_string();
            assert!(
                message.contains("10 of the last 10 outcomes in its `breaker(…)` window failed, reaching its `failure_ratio` of 0.50")
                    && message.contains("next probe in 5.0s (its `break_for`)")
                    && !message.contains("confidence_threshold"),
                "{message}"
            );
        }
        other => panic!("expected the breaker to refuse, got {other:?}"),
    }
    tokio::time::advance(Duration::from_millis(4_900)).await;
    assert!(ndf.run(&flow, 1, &ctx).await.is_err());
    assert_eq!(CALLS.load(Ordering::SeqCst), 10, "nothing reached the step");

    // After the break, a failed probe opens it again at once.
    tokio::time::advance(Duration::from_millis(100)).await;
    assert!(ndf.run(&flow, 1, &ctx).await.is_err());
    assert_eq!(CALLS.load(Ordering::SeqCst), 11, "one probe ran");
    // ⌈2 × (1 − 0.5)⌉ = 1 of the 2 probes must succeed: one more failure
    // reopens it.
    assert!(ndf.run(&flow, 1, &ctx).await.is_err());
    assert_eq!(ndf.breaker("charge", "shop"), Some(BreakerState::Open));
    assert_eq!(CALLS.load(Ordering::SeqCst), 12);

    // The service is back: the next probe closes it, with an empty window.
    DOWN.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(ndf.run(&flow, 7, &ctx).await.unwrap(), 7);
    assert_eq!(ndf.breaker("charge", "shop"), Some(BreakerState::Closed));
    // Four failures in a fresh window of ten do not open it again.
    DOWN.store(true, Ordering::SeqCst);
    for _ in 0..4 {
        assert!(ndf.run(&flow, 1, &ctx).await.is_err());
    }
    DOWN.store(false, Ordering::SeqCst);
    for _ in 0..5 {
        ndf.run(&flow, 1, &ctx).await.unwrap();
    }
    assert_eq!(ndf.breaker("charge", "shop"), Some(BreakerState::Closed));
}

static LOOKUPS_DOWN: AtomicBool = AtomicBool::new(true);

#[pattern(breaker(window = "10s", failure_ratio = 0.75, min_calls = 4))]
async fn lookup(x: u32) -> Result<u32, StepError> {
    if LOOKUPS_DOWN.load(Ordering::SeqCst) {
        Err(StepError::msg("directory unavailable"))
    } else {
        Ok(x)
    }
}

#[tokio::test(start_paused = true)]
async fn a_time_window_forgets_failures_older_than_its_period() {
    let ndf = ndf();
    let flow = sequential!(name = "shop.lookup"; lookup);
    let ctx = PatternContext::new("shop");
    // One failure every 4 s: never four in ten seconds.
    for _ in 0..6 {
        assert!(ndf.run(&flow, 1, &ctx).await.is_err());
        tokio::time::advance(Duration::from_secs(4)).await;
    }
    assert_eq!(ndf.breaker("lookup", "shop"), Some(BreakerState::Closed));
    // A burst: four within the window (with two of the spaced ones) opens.
    for _ in 0..2 {
        assert!(ndf.run(&flow, 1, &ctx).await.is_err());
    }
    assert_eq!(ndf.breaker("lookup", "shop"), Some(BreakerState::Open));
    // Break and probes are the config's: `break_duration` and
    // `half_open_probes`.
    match ndf.run(&flow, 1, &ctx).await {
        Err(Error::ConfidenceThreshold { retry_in, .. }) => {
            assert_eq!(retry_in, Some(Config::default().break_duration));
        }
        other => panic!("expected the breaker to refuse, got {other:?}"),
    }
    LOOKUPS_DOWN.store(false, Ordering::SeqCst);
}

#[pattern(slow_call = "1s", breaker(window = 4, failure_ratio = 0.5))]
async fn report(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

#[tokio::test(start_paused = true)]
async fn slow_calls_count_as_failures_in_the_window() {
    let ndf = ndf();
    let flow = sequential!(name = "shop.report"; report);
    let ctx = PatternContext::new("shop");
    // `min_calls` defaults to the window's 4 (at most 20).
    for ms in [10, 2_000, 10] {
        assert_eq!(ndf.run(&flow, ms, &ctx).await.unwrap(), ms);
    }
    assert_eq!(ndf.breaker("report", "shop"), Some(BreakerState::Closed));
    // Two slow of four: the ratio is reached.
    assert_eq!(ndf.run(&flow, 2_000, &ctx).await.unwrap(), 2_000);
    assert_eq!(ndf.breaker("report", "shop"), Some(BreakerState::Open));
    assert!(matches!(
        ndf.run(&flow, 10, &ctx).await,
        Err(Error::ConfidenceThreshold { .. })
    ));
}

static PRICING_DOWN: AtomicBool = AtomicBool::new(true);

#[pattern(fallback = list_price, breaker(window = 4, failure_ratio = 0.5))]
async fn live_price(sku: u32) -> Result<u32, StepError> {
    if PRICING_DOWN.load(Ordering::SeqCst) {
        Err(StepError::msg("pricing unavailable"))
    } else {
        Ok(sku * 2)
    }
}

#[pattern]
async fn list_price(sku: u32) -> u32 {
    sku
}

#[tokio::test(start_paused = true)]
async fn calls_served_by_the_fallback_count_as_failures() {
    let ndf = ndf();
    let flow = sequential!(name = "shop.price"; live_price);
    let ctx = PatternContext::new("shop");
    // Every run succeeds for the caller, served by the fallback.
    for _ in 0..4 {
        assert_eq!(ndf.run(&flow, 5, &ctx).await.unwrap(), 5);
    }
    assert_eq!(ndf.breaker("live_price", "shop"), Some(BreakerState::Open));
    // Held back, the fallback still serves, without calling the step.
    PRICING_DOWN.store(false, Ordering::SeqCst);
    assert_eq!(ndf.run(&flow, 5, &ctx).await.unwrap(), 5);
}

static AUDIT_DOWN: AtomicBool = AtomicBool::new(true);

#[pattern(breaker(window = 1000, min_calls = 500))]
async fn audit(x: u32) -> Result<u32, StepError> {
    if AUDIT_DOWN.load(Ordering::SeqCst) {
        Err(StepError::msg("audit log unavailable"))
    } else {
        Ok(x)
    }
}

#[tokio::test(start_paused = true)]
async fn the_workflow_around_it_keeps_its_own_learned_gate() {
    // Defaults left as they are: the workflow is gated on its evidence.
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let flow = sequential!(name = "shop.audit"; audit);
    let ctx = PatternContext::new("shop");
    let mut refused = 0;
    for _ in 0..100 {
        if let Err(Error::ConfidenceThreshold { pattern, .. }) = ndf.run(&flow, 1, &ctx).await {
            assert_eq!(pattern, "shop.audit", "the workflow's gate, not the step's");
            refused += 1;
        }
    }
    assert!(refused > 0, "the workflow's learned gate held it back");
    assert_eq!(ndf.breaker("shop.audit", "shop"), Some(BreakerState::Open));
    // The step's window wants 500 outcomes: still closed.
    assert_eq!(ndf.breaker("audit", "shop"), Some(BreakerState::Closed));
    AUDIT_DOWN.store(false, Ordering::SeqCst);
}
