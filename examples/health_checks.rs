//! Parallel service health checks: six services checked side by side, at
//! most four at a time, tolerating one unhealthy service.
//!
//! Run it with `cargo run --example health_checks`.

use std::sync::Arc;
use std::time::Duration;

use ndf::prelude::*;
use tokio::time::Instant;

/// What every check gets: when the round started, to print timings.
#[derive(Clone)]
struct Round {
    started: Instant,
    in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

#[derive(Debug)]
struct Health {
    service: &'static str,
    latency: Duration,
}

#[derive(Debug, thiserror::Error)]
#[error("{service} is unhealthy: {reason}")]
struct Unhealthy {
    service: &'static str,
    reason: &'static str,
}

async fn probe(
    round: &Round,
    service: &'static str,
    latency_ms: u64,
    fail: Option<&'static str>,
) -> Result<Health, Unhealthy> {
    use std::sync::atomic::Ordering;
    let now = round.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    println!(
        "  {:>5} ms  start  {service:<9} ({now} in flight)",
        round.started.elapsed().as_millis()
    );
    tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    round.in_flight.fetch_sub(1, Ordering::SeqCst);
    println!(
        "  {:>5} ms  done   {service}",
        round.started.elapsed().as_millis()
    );
    match fail {
        Some(reason) => Err(Unhealthy { service, reason }),
        None => Ok(Health {
            service,
            latency: Duration::from_millis(latency_ms),
        }),
    }
}

#[pattern(domain = "ops", timeout = "2s")]
async fn check_database(round: Round) -> Result<Health, Unhealthy> {
    probe(&round, "database", 120, None).await
}

#[pattern(domain = "ops", timeout = "2s")]
async fn check_api(round: Round) -> Result<Health, Unhealthy> {
    probe(&round, "api", 80, None).await
}

#[pattern(domain = "ops", timeout = "2s")]
async fn check_cache(round: Round) -> Result<Health, Unhealthy> {
    probe(&round, "cache", 40, Some("eviction rate 94%")).await
}

#[pattern(domain = "ops", timeout = "2s")]
async fn check_queue(round: Round) -> Result<Health, Unhealthy> {
    probe(&round, "queue", 60, None).await
}

#[pattern(domain = "ops", timeout = "2s")]
async fn check_search(round: Round) -> Result<Health, Unhealthy> {
    probe(&round, "search", 150, None).await
}

#[pattern(domain = "ops", timeout = "2s")]
async fn check_auth(round: Round) -> Result<Health, Unhealthy> {
    probe(&round, "auth", 30, None).await
}

#[tokio::main]
async fn main() -> Result<(), ndf::Error> {
    let ndf = Ndf::builder().build()?;
    let health = parallel!(name = "ops.service_health_checks", max_concurrent = 4, min_success = 5;
        check_database, check_api, check_cache, check_queue, check_search, check_auth);

    let round = Round {
        started: Instant::now(),
        in_flight: Arc::default(),
    };
    println!("running {} (6 checks, at most 4 at a time)", health.name());
    let results = ndf
        .run(
            &health,
            round,
            &PatternContext::new("ops").agent_type("monitor"),
        )
        .await?;

    let (db, api, cache, queue, search, auth) = results;
    println!("\nservice    status");
    let services = ["database", "api", "cache", "queue", "search", "auth"];
    for (service, result) in services.iter().zip([db, api, cache, queue, search, auth]) {
        match result {
            Ok(h) => println!("{:<10} healthy ({} ms)", h.service, h.latency.as_millis()),
            Err(e) => println!(
                "{service:<10} UNHEALTHY: {}",
                e.source()
                    .map_or_else(|| e.to_string(), ToString::to_string)
            ),
        }
    }
    let stats = ndf
        .stats(health.name(), "ops")
        .expect("the run was recorded");
    println!(
        "\n{} runs of {}, {} succeeded (one unhealthy service is tolerated: min_success = 5)",
        stats.executions,
        health.name(),
        stats.successes
    );
    ndf.shutdown().await
}
