//! The dashboard: its data counts every run, its timeline is a bounded ring
//! that survives a restart, and its server answers on loopback only, with a
//! page, a JSON endpoint and 404 for anything else, never showing a secret.

mod common;

use std::time::Duration;

use ndf::prelude::*;
use ndf::{Dashboard, DashboardOptions, LearningStore as _};

const SECRET: &str = "tok-5ecret-never-shown";

#[pattern]
async fn settle(amount: u32) -> Result<u32, StepError> {
    if amount.is_multiple_of(3) {
        return Err(StepError::msg("the bank refused"));
    }
    Ok(amount)
}

#[pattern(fallback = settle_later)]
async fn settle_now(amount: u32) -> Result<u32, StepError> {
    Err(StepError::msg(format!("{amount}: bank offline")))
}

#[pattern]
async fn settle_later(amount: u32) -> Result<u32, StepError> {
    Ok(amount)
}

fn ctx() -> PatternContext {
    PatternContext::new("payments").attribute("api_token", SECRET)
}

fn config(points: usize) -> Config {
    let mut config = Config::default();
    config.timeline_interval = Duration::from_secs(1);
    config.timeline_points = points;
    // Nothing is held back by low confidence: every run counts.
    config.confidence_threshold = 0.0;
    config
}

/// Runs `ledger.settle` on `amounts`; one run in three fails.
async fn run_settle(ndf: &Ndf, amounts: std::ops::Range<u32>) {
    let flow = sequential!(name = "ledger.settle"; settle);
    for amount in amounts {
        let _ = ndf.run(&flow, amount, &ctx()).await;
    }
}

/// Lets the sampler, a background task, take its point: paused time moves
/// past the next tick, then the sampler runs.
async fn next_tick() {
    tokio::time::sleep(Duration::from_millis(1001)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
}

fn series<'a>(d: &'a Dashboard, pattern: &str) -> &'a ndf::ResponseSeries {
    d.response_time
        .iter()
        .find(|s| s.pattern == pattern)
        .unwrap_or_else(|| panic!("no series of {pattern} in {:?}", d.response_time))
}

#[tokio::test(start_paused = true)]
async fn the_dashboard_counts_every_run_and_shows_what_failed() {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config(100))
        .build()
        .unwrap();
    run_settle(&ndf, 1..16).await; // 15 runs: 3, 6, 9, 12, 15 fail
    next_tick().await;
    run_settle(&ndf, 16..19).await; // 3 runs: 18 fails
    let fallback = sequential!(name = "ledger.fallback"; settle_now);
    ndf.run(&fallback, 4, &ctx()).await.unwrap();

    let d = ndf.dashboard();
    let o = d.overview;
    assert_eq!((o.executions_24h, o.failures_24h), (19, 6));
    assert_eq!(o.executions_today, 19);
    assert_eq!(o.success_rate_24h, Some(13.0 / 19.0));
    assert_eq!(o.active_patterns, 2);
    let settle = series(&d, "ledger.settle");
    let counts: Vec<(u64, u64)> = settle
        .points
        .iter()
        .map(|p| (p.executions, p.failures))
        .collect();
    assert_eq!(
        counts,
        [(15, 5), (3, 1)],
        "one point sampled at the tick, one of the runs since"
    );
    assert!(settle.points[0].at_unix_ms <= settle.points[1].at_unix_ms);
    assert!(
        settle
            .points
            .iter()
            .all(|p| p.confidence > 0.0 && p.confidence < 1.0)
    );

    let row = |pattern: &str| {
        d.patterns
            .iter()
            .find(|p| p.pattern == pattern)
            .unwrap_or_else(|| panic!("no row of {pattern}"))
    };
    let workflow = row("ledger.settle");
    assert_eq!(
        (workflow.kind, workflow.executions, workflow.failures),
        ("workflow", 18, 6)
    );
    assert_eq!(workflow.success_rate, Some(12.0 / 18.0));
    assert_eq!(
        workflow.status, "trusted",
        "18 outcomes, mean above the threshold"
    );
    assert_eq!(row("settle_now").fallbacks, 1);
    assert_eq!(row("settle_now").status, "learning", "one outcome of ten");
    assert_eq!(
        d.usage
            .iter()
            .map(|u| (u.pattern.as_str(), u.executions))
            .collect::<Vec<_>>(),
        [("ledger.settle", 18), ("ledger.fallback", 1)],
        "the busiest first"
    );
    // Every pattern with outcomes in one bin: workflows and steps.
    assert_eq!(d.confidence_histogram.len(), 10);
    let binned: usize = d.confidence_histogram.iter().map(|b| b.count).sum();
    assert_eq!(binned, d.patterns.len());
    let learning: Vec<&str> = d
        .patterns
        .iter()
        .filter(|p| p.status == "learning")
        .map(|p| p.pattern.as_str())
        .collect();
    assert_eq!(
        learning,
        ["ledger.fallback", "settle_now"],
        "one outcome each"
    );
    assert_eq!(o.learning_patterns, 2);
    // 6 failures in 18 runs crossed the 90% the development config asks.
    assert!(
        d.alerts
            .iter()
            .any(|a| a.pattern == "ledger.settle" && a.kind == ndf::AlertKind::SuccessRate),
        "{:?}",
        d.alerts
    );
    let json = serde_json::to_string(&d).unwrap();
    assert!(!json.contains(SECRET), "{json}");
}

#[tokio::test(start_paused = true)]
async fn the_timeline_is_a_bounded_ring_that_survives_a_restart() {
    let store = MemoryStore::new();
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config(3))
        .store(store.clone())
        .build()
        .unwrap();
    for round in 0..5 {
        run_settle(&ndf, round * 10 + 1..round * 10 + 3).await;
        next_tick().await;
    }
    let points = |ndf: &Ndf| {
        series(&ndf.dashboard(), "ledger.settle")
            .points
            .iter()
            .map(|p| p.executions)
            .collect::<Vec<_>>()
    };
    assert_eq!(points(&ndf), [2, 2, 2], "five points taken, three kept");
    ndf.shutdown().await.unwrap();

    assert_eq!(
        store.load_timeline(0).unwrap().len(),
        5,
        "the store keeps every point within the retention"
    );

    let restarted = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config(3))
        .store(store.clone())
        .build()
        .unwrap();
    assert_eq!(
        points(&restarted),
        [2, 2, 2],
        "the ring is refilled from the store"
    );
    assert_eq!(restarted.dashboard().overview.executions_24h, 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_answers_on_loopback_with_the_page_the_json_and_404() {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config(100))
        .build()
        .unwrap();
    run_settle(&ndf, 1..7).await;
    let server = ndf
        .serve_dashboard_with(
            DashboardOptions::new(([127, 0, 0, 1], 0)).refresh(Duration::from_secs(7)),
        )
        .await
        .unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0);
    let get =
        |path: &'static str| tokio::task::spawn_blocking(move || common::http_get(addr, path));

    let (status, page) = get("/").await.unwrap();
    assert_eq!(status, 200);
    for id in [
        "chart-response-time",
        "chart-success-rate",
        "chart-usage",
        "chart-confidence",
        "patterns",
        "alerts",
        "resources",
    ] {
        assert!(
            page.contains(&format!("id=\"{id}\"")),
            "no #{id} in the page"
        );
    }
    assert!(page.contains(r#"data-refresh-secs="7""#));
    let outside = page.replace("http://www.w3.org/2000/svg", "");
    assert!(
        !outside.contains("http://") && !outside.contains("https://") && !outside.contains("src="),
        "the page loads nothing from elsewhere"
    );

    let (status, body) = get("/api/dashboard").await.unwrap();
    assert_eq!(status, 200);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["overview"]["executions_24h"], 6);
    assert_eq!(json["overview"]["failures_24h"], 2);
    assert!(!body.contains(SECRET) && !page.contains(SECRET));

    let (status, body) = get("/api/nothing-here").await.unwrap();
    assert_eq!(status, 404);
    assert!(body.contains("/api/dashboard"), "{body}");
    assert_eq!(get("/favicon.ico").await.unwrap().0, 404);

    server.shutdown().await;
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "stopped: nothing listens on {addr}"
    );
}

#[tokio::test]
async fn a_non_loopback_address_is_an_explicit_choice_and_needs_a_token() {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let err = ndf.serve_dashboard(([0, 0, 0, 0], 0)).await.unwrap_err();
    let ndf::Error::Config(e) = &err else {
        panic!("expected a config error, got {err:?}");
    };
    assert_eq!(e.key, "dashboard address");
    assert!(e.to_string().contains("0.0.0.0:0"), "{e}");
    assert!(e.to_string().contains("allow_remote"), "{e}");

    // Reachable from elsewhere, it needs a token: it has no other lock.
    let err = ndf
        .serve_dashboard_with(DashboardOptions::new(([0, 0, 0, 0], 0)).allow_remote())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bearer_token"), "{err}");

    let server = ndf
        .serve_dashboard_with(
            DashboardOptions::new(([0, 0, 0, 0], 0))
                .allow_remote()
                .bearer_token("s3cret-token"),
        )
        .await
        .unwrap();
    assert!(server.local_addr().ip().is_unspecified());
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], server.local_addr().port()));
    let get = |path: &'static str, headers: &'static [(&'static str, &'static str)]| {
        tokio::task::spawn_blocking(move || common::http_get_with(addr, path, headers))
    };
    let (status, body) = get("/api/dashboard", &[]).await.unwrap();
    assert_eq!(status, 401, "{body}");
    assert!(!body.contains("executions_24h"));
    let wrong: &'static [(&str, &str)] = &[("Authorization", "Bearer s3cret-tokem")];
    assert_eq!(get("/", wrong).await.unwrap().0, 401);
    let right: &'static [(&str, &str)] = &[("Authorization", "Bearer s3cret-token")];
    assert_eq!(get("/", right).await.unwrap().0, 200);
    let (status, body) = get("/api/dashboard", right).await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("executions_24h"));
    server.shutdown().await;
}

/// The JSON endpoint's shape: every key of every object, so that a change
/// to it is a deliberate one.
#[tokio::test(start_paused = true)]
async fn the_json_shape_is_stable() {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config(100))
        .build()
        .unwrap();
    run_settle(&ndf, 1..4).await;
    let json = serde_json::to_value(ndf.dashboard()).unwrap();
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k.join(",")
    };
    assert_eq!(
        keys(&json),
        "alerts,confidence_histogram,generated_at_unix_ms,overview,patterns,patterns_total,resources,response_time,usage"
    );
    assert_eq!(
        keys(&json["overview"]),
        "active_patterns,avg_response_ms,executions_24h,executions_today,failures_24h,learning_patterns,refused_24h,success_rate_24h"
    );
    assert_eq!(
        keys(&json["patterns"][0]),
        "breaker,confidence,confidence_trend,degradations,domain,executions,failures,fallbacks,held_back,kind,p50_ms,p95_ms,pattern,recommendations,refused,retries,status,success_rate"
    );
    assert_eq!(
        keys(&json["patterns"][0]["confidence"]),
        "lower_bound,mean,samples"
    );
    assert_eq!(
        keys(&json["resources"]),
        "cpu,cpu_limit,memory,memory_limit"
    );
    assert_eq!(keys(&json["response_time"][0]), "domain,pattern,points");
    assert_eq!(
        keys(&json["response_time"][0]["points"][0]),
        "at_unix_ms,confidence,executions,failures,mean_ms,p95_ms,refused"
    );
    assert_eq!(keys(&json["usage"][0]), "domain,executions,pattern");
    assert_eq!(keys(&json["confidence_histogram"][0]), "count,from,to");
}

#[pattern]
async fn bank_down(amount: u32) -> Result<u32, StepError> {
    Err(StepError::msg(format!("{amount}: bank down")))
}

/// A runtime whose gate holds back a pattern after 4 failures in a row.
fn gating() -> Ndf {
    let mut config = config(100);
    config.confidence_threshold = 0.6;
    config.min_samples = 4;
    config.gate_alpha = 0.2;
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap()
}

/// Calls refused by the gate count against the success rates of the
/// overview and of the workflow's row, whose status says it is held back.
#[tokio::test(start_paused = true)]
async fn refused_calls_lower_the_success_rate() {
    let ndf = gating();
    run_settle(&ndf, 1..3).await; // 2 successful runs
    let down = sequential!(name = "ledger.down"; bank_down);
    for amount in 0..10 {
        let _ = ndf.run(&down, amount, &ctx()).await; // 4 fail, then 6 refused
    }
    next_tick().await;
    let d = ndf.dashboard();
    let o = d.overview;
    assert_eq!((o.executions_24h, o.failures_24h, o.refused_24h), (6, 4, 6));
    assert_eq!(o.success_rate_24h, Some(2.0 / 12.0));
    let row = d
        .patterns
        .iter()
        .find(|p| p.pattern == "ledger.down")
        .unwrap();
    assert_eq!((row.executions, row.failures, row.refused), (4, 4, 6));
    assert_eq!(row.success_rate, Some(0.0));
    assert_eq!(
        (row.status, row.breaker),
        ("held back", ndf::BreakerState::Open)
    );
    let points = &series(&d, "ledger.down").points;
    assert_eq!(points.iter().map(|p| p.refused).sum::<u64>(), 6);
}

/// The dashboard is a bounded page: rows that need attention first, paged
/// and filtered by domain, in `Ndf::dashboard_with` and in the served JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_come_a_page_at_a_time_those_held_back_first() {
    let ndf = gating();
    let flow = sequential!(name = "ledger.settle"; settle);
    for domain in ["eu", "us", "apac"] {
        for amount in [1, 2, 4, 5] {
            ndf.run(&flow, amount, &PatternContext::new(domain))
                .await
                .unwrap();
        }
    }
    let down = sequential!(name = "ledger.down"; bank_down);
    for amount in 0..8 {
        let _ = ndf.run(&down, amount, &PatternContext::new("us")).await;
    }
    // 4 workflow rows and 4 step rows.
    let all = ndf.dashboard_with(&ndf::DashboardQuery::new().limit(1_000));
    assert_eq!(all.patterns_total, 8);
    assert_eq!(all.patterns.len(), 8);
    let mut first_two: Vec<(&str, &str)> = all.patterns[..2]
        .iter()
        .map(|p| (p.pattern.as_str(), p.status))
        .collect();
    first_two.sort_unstable();
    assert_eq!(
        first_two,
        [("bank_down", "held back"), ("ledger.down", "held back")],
        "what is held back first"
    );
    let page = ndf.dashboard_with(&ndf::DashboardQuery::new().offset(2).limit(3));
    assert_eq!(page.patterns_total, 8);
    let names = |d: &Dashboard| {
        d.patterns
            .iter()
            .map(|p| (p.pattern.clone(), p.domain.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(names(&page), names(&all)[2..5]);
    let us = ndf.dashboard_with(&ndf::DashboardQuery::new().domain("us"));
    assert_eq!(us.patterns_total, 4);
    assert!(us.patterns.iter().all(|p| p.domain == "us"));
    assert!(us.usage.iter().all(|u| u.domain == "us"));
    assert_eq!(us.overview, all.overview, "the overview is every domain's");

    let server = ndf
        .serve_dashboard_with(DashboardOptions::new(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = server.local_addr();
    let (status, body) = tokio::task::spawn_blocking(move || {
        common::http_get(addr, "/api/dashboard?offset=1&limit=2&domain=eu")
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["patterns_total"], 2);
    assert_eq!(json["patterns"].as_array().unwrap().len(), 1);
    let (status, body) =
        tokio::task::spawn_blocking(move || common::http_get(addr, "/api/dashboard?limit=all"))
            .await
            .unwrap();
    assert_eq!(status, 400);
    assert!(body.contains("limit"), "{body}");
}
