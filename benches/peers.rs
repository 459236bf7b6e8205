//! One step with retries and a timeout armed, through `Ndf::run`, against
//! the same step through the retry libraries users compare ndf with:
//! tower-resilience's `RetryLayer` (with its `TimeLimiterLayer`, as a tower
//! service, cloned per call as a shared service is), and backon's `retry`
//! under `tokio::time::timeout`; tower-resilience's `RetryLayer` alone is
//! measured too, without a timeout. All in the same run, on a
//! current-thread runtime; prints the ratios and what each adds to the bare
//! call. The same step as a plain one (no retries, the default timeout)
//! through `Ndf::run` shows what retries add to an ndf run.
//!
//! Then a closed breaker (ndf's gate, which every run passes) against
//! failsafe's and tower-resilience's circuit breakers, and what a step's
//! own sliding-window breaker (`breaker(window = 100, …)`) adds to that
//! run; and a rate limit that never waits (`rate = "…/s"`) against
//! governor alone; and what the rate limit adds to an ndf run of the same
//! step without one, against what governor adds to the bare call. Both
//! read the same clock: governor, built without quanta, reads
//! `std::time::Instant`, which tokio's clock is outside paused time.
//!
//! ndf's run also learns: it updates the step's and the workflow's
//! confidence and breaker, counts metrics and judges alerts, none of which
//! the peers do.

use std::hint::black_box;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable as _};
use criterion::{Criterion, criterion_group};
use ndf::prelude::*;
use tower::{ServiceBuilder, ServiceExt as _};
use tower_resilience::retry::RetryLayer;
use tower_resilience::timelimiter::TimeLimiterLayer;

#[path = "support/ratio.rs"]
mod ratio;
#[path = "support/rig.rs"]
mod rig;

#[derive(Debug, Clone)]
struct Flaky;

impl std::fmt::Display for Flaky {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("flaky")
    }
}

impl std::error::Error for Flaky {}

#[pattern(timeout = "5s", retries = 3)]
async fn step(x: u64) -> Result<u64, Flaky> {
    Ok(x.wrapping_mul(3).wrapping_add(1))
}

/// A step with no policy of its own: what every run passes is the gate.
#[pattern]
async fn gated(x: u64) -> Result<u64, Flaky> {
    Ok(x.wrapping_mul(3).wrapping_add(1))
}

/// The same step with a breaker on a sliding window of its own, as
/// failsafe's and tower-resilience's are.
#[pattern(breaker(window = 100, failure_ratio = 0.5))]
async fn windowed(x: u64) -> Result<u64, Flaky> {
    Ok(x.wrapping_mul(3).wrapping_add(1))
}

/// A step under a rate limit that never makes it wait.
#[pattern(rate = "1000000000/s")]
async fn limited(x: u64) -> Result<u64, Flaky> {
    Ok(x.wrapping_mul(3).wrapping_add(1))
}

#[allow(
    clippy::unused_async,
    reason = "the baseline: the same step as a plain async fn"
)]
async fn bare(x: u64) -> Result<u64, Flaky> {
    Ok(x.wrapping_mul(3).wrapping_add(1))
}

fn bench(c: &mut Criterion) {
    let (rt, ndf, ctx) = rig::rig();
    let flow = sequential!(name = "bench.peer_step"; step);
    let plain_flow = sequential!(name = "bench.peer_plain"; gated);
    let service = rt.block_on(async {
        ServiceBuilder::new()
            .layer(
                RetryLayer::<u64, u64, _>::builder()
                    .max_attempts(4)
                    .exponential_backoff(Duration::from_millis(100))
                    .build(),
            )
            .layer(
                TimeLimiterLayer::builder()
                    .timeout_duration(Duration::from_secs(5))
                    .build(),
            )
            .service(tower::service_fn(bare))
    });
    let retry_only = ServiceBuilder::new()
        .layer(
            RetryLayer::<u64, u64, _>::builder()
                .max_attempts(4)
                .exponential_backoff(Duration::from_millis(100))
                .build(),
        )
        .service(tower::service_fn(bare));

    let mut group = c.benchmark_group("peers");
    group.bench_function("bare", |b| b.to_async(&rt).iter(|| bare(black_box(1))));
    group.bench_function("backon", |b| {
        b.to_async(&rt).iter(|| {
            let x = black_box(1);
            tokio::time::timeout(
                Duration::from_secs(5),
                (move || bare(x)).retry(ExponentialBuilder::default().with_max_times(3)),
            )
        });
    });
    group.bench_function("tower_resilience", |b| {
        b.to_async(&rt)
            .iter(|| service.clone().oneshot(black_box(1)));
    });
    group.bench_function("tower_resilience_retry_only", |b| {
        b.to_async(&rt)
            .iter(|| retry_only.clone().oneshot(black_box(1)));
    });
    group.bench_function("ndf", |b| {
        b.to_async(&rt).iter(|| ndf.run(&flow, black_box(1), &ctx));
    });
    group.bench_function("ndf_plain", |b| {
        b.to_async(&rt)
            .iter(|| ndf.run(&plain_flow, black_box(1), &ctx));
    });
    group.finish();
}

fn bench_breakers(c: &mut Criterion) {
    let (rt, ndf, ctx) = rig::rig();
    let mut group = c.benchmark_group("breakers");
    let gated_flow = sequential!(name = "bench.peer_gated"; gated);
    let windowed_flow = sequential!(name = "bench.peer_windowed"; windowed);
    let failsafe_breaker = failsafe::Config::new().build();
    let tower_breaker = rt.block_on(async {
        ServiceBuilder::new()
            .layer(
                tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
                    .failure_rate_threshold(0.5)
                    .sliding_window_size(100)
                    .build()
                    .unwrap(),
            )
            .service(tower::service_fn(bare))
    });
    group.bench_function("bare", |b| b.to_async(&rt).iter(|| bare(black_box(1))));
    group.bench_function("failsafe", |b| {
        b.to_async(&rt).iter(|| {
            use failsafe::futures::CircuitBreaker as _;
            failsafe_breaker.call(bare(black_box(1)))
        });
    });
    group.bench_function("tower_resilience", |b| {
        b.to_async(&rt)
            .iter(|| tower_breaker.clone().oneshot(black_box(1)));
    });
    group.bench_function("ndf", |b| {
        b.to_async(&rt)
            .iter(|| ndf.run(&gated_flow, black_box(1), &ctx));
    });
    group.bench_function("ndf_window", |b| {
        b.to_async(&rt)
            .iter(|| ndf.run(&windowed_flow, black_box(1), &ctx));
    });
    group.finish();
}

fn bench_rate_limits(c: &mut Criterion) {
    let (rt, ndf, ctx) = rig::rig();
    let mut group = c.benchmark_group("rate_limits");
    let limited_flow = sequential!(name = "bench.peer_limited"; limited);
    let unlimited_flow = sequential!(name = "bench.peer_unlimited"; gated);
    let quota = governor::Quota::per_second(std::num::NonZeroU32::new(1_000_000_000).unwrap());
    let limiter = governor::RateLimiter::direct(quota);
    group.bench_function("bare", |b| b.to_async(&rt).iter(|| bare(black_box(1))));
    group.bench_function("governor", |b| {
        b.to_async(&rt).iter(|| async {
            limiter.until_ready().await;
            bare(black_box(1)).await
        });
    });
    group.bench_function("ndf", |b| {
        b.to_async(&rt)
            .iter(|| ndf.run(&limited_flow, black_box(1), &ctx));
    });
    group.bench_function("ndf_unlimited", |b| {
        b.to_async(&rt)
            .iter(|| ndf.run(&unlimited_flow, black_box(1), &ctx));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench, bench_breakers, bench_rate_limits
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    ratio::report("peers", "ndf", "tower_resilience");
    ratio::report("peers", "ndf", "tower_resilience_retry_only");
    ratio::report("peers", "ndf", "backon");
    ratio::added("peers", "ndf", "bare");
    ratio::added("peers", "tower_resilience", "bare");
    ratio::added("peers", "tower_resilience_retry_only", "bare");
    ratio::added("peers", "backon", "bare");
    ratio::added("peers", "ndf", "ndf_plain");
    ratio::report("breakers", "ndf", "failsafe");
    ratio::report("breakers", "ndf", "tower_resilience");
    ratio::added("breakers", "ndf", "bare");
    ratio::added("breakers", "failsafe", "bare");
    ratio::added("breakers", "tower_resilience", "bare");
    ratio::added("breakers", "ndf_window", "ndf");
    ratio::report("rate_limits", "ndf", "governor");
    ratio::added("rate_limits", "ndf", "bare");
    ratio::added("rate_limits", "governor", "bare");
    ratio::added("rate_limits", "ndf", "ndf_unlimited");
}
