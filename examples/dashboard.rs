//! The live dashboard over a busy runtime: four workflows run in rounds —
//! a checkout whose payment step needs retries, a search that degrades to
//! its cache, a nightly report that keeps failing, and parallel health
//! checks — while the page at the printed address shows how they do.
//!
//! Run it with `cargo run --example dashboard` and open the address it
//! prints. Options: `--addr 127.0.0.1:8686` (port 0 picks a free one),
//! `--rounds N` (stop running workflows after N rounds, keep serving),
//! `--pause-ms 200` (between rounds), `--refresh-secs 2`, `--probe idle`
//! (read an idle machine instead of sampling CPU and memory with sysinfo,
//! so that no run waits for resources).

use std::time::Duration;

use ndf::DashboardOptions;
use ndf::prelude::*;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Failed(&'static str);

/// Work that takes `ms` milliseconds and fails when `fail` says so.
async fn work(ms: u64, fail: bool, why: &'static str) -> Result<u64, Failed> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    if fail { Err(Failed(why)) } else { Ok(ms) }
}

#[pattern(domain = "shop")]
async fn validate_cart(order: u64) -> Result<u64, Failed> {
    work(2 + order % 3, false, "").await.map(|_| order)
}

/// Every fifth order's first payment attempt times out upstream: retried.
#[pattern(domain = "shop", retries = 2, timeout = "500ms")]
async fn charge_card(order: u64) -> Result<u64, Failed> {
    static ATTEMPTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let attempt = ATTEMPTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    work(
        8 + order % 7,
        attempt.is_multiple_of(5),
        "payment gateway timed out",
    )
    .await
    .map(|_| order)
}

#[pattern(domain = "shop")]
async fn confirm_order(order: u64) -> Result<String, Failed> {
    work(3, false, "")
        .await
        .map(|_| format!("order {order} confirmed"))
}

/// The search index is down for one query in six: served from the cache.
#[pattern(domain = "search")]
async fn full_text_search(query: u64) -> Result<Vec<u64>, Failed> {
    work(20 + query % 11, query % 6 == 1, "search index unavailable")
        .await
        .map(|_| vec![query, query + 1, query + 2])
}

#[pattern(domain = "search")]
async fn cached_results(query: u64) -> Result<Vec<u64>, Failed> {
    work(2, false, "").await.map(|_| vec![query])
}

#[pattern(domain = "reports")]
async fn gather_figures(day: u64) -> Result<u64, Failed> {
    work(15 + day % 13, false, "").await
}

/// Fails for one run in three: the report's source is flaky.
#[pattern(domain = "reports")]
async fn render_report(figures: u64) -> Result<String, Failed> {
    work(30, figures.is_multiple_of(3), "renderer crashed")
        .await
        .map(|ms| format!("report in {ms} ms"))
}

#[pattern(domain = "ops", timeout = "1s")]
async fn check_database(round: u64) -> Result<u64, Failed> {
    work(4 + round % 4, false, "").await
}

#[pattern(domain = "ops", timeout = "1s")]
async fn check_cache(round: u64) -> Result<u64, Failed> {
    work(2 + round % 3, false, "").await
}

#[pattern(domain = "ops", timeout = "1s")]
async fn check_queue(round: u64) -> Result<u64, Failed> {
    work(6, round.is_multiple_of(9), "queue lagging").await
}

struct Args {
    addr: std::net::SocketAddr,
    rounds: Option<u64>,
    pause: Duration,
    refresh: Duration,
    sysinfo: bool,
}

fn args() -> Result<Args, String> {
    let mut out = Args {
        addr: ([127, 0, 0, 1], 8686).into(),
        rounds: None,
        pause: Duration::from_millis(200),
        refresh: Duration::from_secs(2),
        sysinfo: true,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--addr" => out.addr = value.parse().map_err(|e| bad(&e))?,
            "--rounds" => out.rounds = Some(value.parse().map_err(|e| bad(&e))?),
            "--pause-ms" => out.pause = Duration::from_millis(value.parse().map_err(|e| bad(&e))?),
            "--refresh-secs" => {
                out.refresh = Duration::from_secs(value.parse().map_err(|e| bad(&e))?);
            }
            "--probe" => {
                out.sysinfo = match value.as_str() {
                    "sysinfo" => true,
                    "idle" => false,
                    _ => return Err(bad(&"expected `sysinfo` or `idle`")),
                };
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let mut config = Config::default();
    // Points every second, so the charts move while you watch.
    config.timeline_interval = Duration::from_secs(1);
    let mut builder = Ndf::builder().config(config);
    if !args.sysinfo {
        builder = builder.resource_probe(ndf::IdleProbe);
    }
    let ndf = builder.build()?;
    let dashboard = ndf
        .serve_dashboard_with(DashboardOptions::new(args.addr).refresh(args.refresh))
        .await?;
    println!("dashboard: http://{}/", dashboard.local_addr());

    let checkout =
        sequential!(name = "shop.checkout"; validate_cart => charge_card => confirm_order);
    let search = degrade!(name = "search.query"; full_text_search | cached_results);
    let nightly = sequential!(name = "reports.nightly"; gather_figures => render_report);
    let health =
        parallel!(name = "ops.health", min_success = 2; check_database, check_cache, check_queue);
    // The token is a secret: it never shows on the dashboard, in errors or logs.
    let ctx = |domain| PatternContext::new(domain).attribute("api_token", "tok-do-not-show");
    let (shop, search_ctx, reports, ops) = (ctx("shop"), ctx("search"), ctx("reports"), ctx("ops"));

    let mut round = 0u64;
    while args.rounds.is_none_or(|n| round < n) {
        round += 1;
        let (a, b, c, d) = tokio::join!(
            ndf.run(&checkout, round, &shop),
            ndf.run(&search, round, &search_ctx),
            ndf.run(&nightly, round, &reports),
            ndf.run(&health, round, &ops),
        );
        if round.is_multiple_of(25) {
            println!(
                "round {round}: checkout {}, search {}, report {}, health {}",
                ok(&a),
                ok(&b),
                ok(&c),
                ok(&d)
            );
        }
        tokio::time::sleep(args.pause).await;
    }
    println!("ran {round} rounds; serving until interrupted (Ctrl-C)");
    tokio::signal::ctrl_c().await?;
    dashboard.shutdown().await;
    Ok(())
}

fn ok<T>(r: &Result<T, ndf::Error>) -> &'static str {
    if r.is_ok() { "ok" } else { "failed" }
}
