//! The dashboard never stalls the service: with 5 000 domains, fetching
//! `/api/dashboard` again and again while runs go on leaves no gap of more
//! than 100 ms between runs completing, and its answer is bounded.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ndf::DashboardOptions;
use ndf::prelude::*;

#[pattern]
async fn check(n: u64) -> Result<u64, StepError> {
    Ok(n)
}

#[pattern]
async fn record(n: u64) -> Result<u64, StepError> {
    Ok(n + 1)
}

const DOMAINS: usize = 5_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetching_the_dashboard_of_5000_domains_never_stalls_runs() {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(Config::default().max_entries(20_000))
        .build()
        .unwrap();
    let flow = sequential!(name = "tenant.sync"; check => record);
    let contexts: Vec<PatternContext> = (0..DOMAINS)
        .map(|d| PatternContext::new(format!("tenant_{d}")))
        .collect();
    for round in 0..4 {
        for ctx in &contexts {
            ndf.run(&flow, round, ctx).await.unwrap();
        }
    }
    let server = ndf
        .serve_dashboard_with(DashboardOptions::new(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = server.local_addr();
    let done = Arc::new(AtomicBool::new(false));
    let fetcher = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut sizes = Vec::new();
            for _ in 0..3 {
                let (status, body) = common::http_get(addr, "/api/dashboard");
                assert_eq!(status, 200);
                sizes.push(body.len());
            }
            done.store(true, Ordering::SeqCst);
            sizes
        })
    };
    let mut worst = Duration::ZERO;
    let mut runs = 0usize;
    let mut last = Instant::now();
    while !done.load(Ordering::SeqCst) {
        let ctx = &contexts[(runs * 7) % DOMAINS];
        ndf.run(&flow, runs as u64, ctx).await.unwrap();
        let now = Instant::now();
        worst = worst.max(now - last);
        last = now;
        runs += 1;
    }
    let sizes = fetcher.join().unwrap();
    eprintln!("runs {runs}, worst gap {worst:?}, sizes {sizes:?}");
    assert!(runs > 0);
    // A page of rows and a dozen charts, not every domain: well under a
    // megabyte (it was 16 MB).
    for size in sizes {
        assert!(size < 1_000_000, "{size} bytes");
    }
    let all = ndf.dashboard();
    assert_eq!(
        all.patterns_total,
        3 * DOMAINS,
        "a workflow and two steps per domain"
    );
    assert_eq!(all.patterns.len(), 100);
    assert!(
        worst <= Duration::from_millis(100),
        "runs stalled for {worst:?} while the dashboard was built"
    );
}
