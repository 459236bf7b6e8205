//! The dashboard never stalls the service: with 5 000 domains, fetching
//! `/api/dashboard` again and again while runs go on, runs keep completing
//! while each answer is built (none waits for a whole build), and the
//! answer is bounded.

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
    let fetching = {
        let done = Arc::clone(&done);
        std::thread::spawn(move || {
            let mut fetches = Vec::new();
            for _ in 0..3 {
                let started = Instant::now();
                let (status, body) = common::http_get(addr, "/api/dashboard");
                assert_eq!(status, 200);
                fetches.push((started, Instant::now(), body.len()));
            }
            done.store(true, Ordering::SeqCst);
            fetches
        })
    };
    let mut completions = Vec::new();
    let mut runs = 0usize;
    while !done.load(Ordering::SeqCst) {
        let ctx = &contexts[(runs * 7) % DOMAINS];
        ndf.run(&flow, runs as u64, ctx).await.unwrap();
        completions.push(Instant::now());
        runs += 1;
    }
    let fetches = fetching.join().unwrap();
    let worst = completions
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    let builds: Vec<Duration> = fetches.iter().map(|(s, e, _)| *e - *s).collect();
    let sizes: Vec<usize> = fetches.iter().map(|f| f.2).collect();
    eprintln!("runs {runs}, worst gap {worst:?}, fetches {builds:?}, sizes {sizes:?}");
    assert!(runs > 0);
    // Runs go on while each answer is built: some complete during every
    // fetch, and no gap between two of them is as long as a whole build
    // (which is what a statistics lock held for the build would cause).
    for (started, ended, _) in &fetches {
        let during = completions
            .iter()
            .filter(|at| (started..=ended).contains(at))
            .count();
        assert!(
            during > 0,
            "no run completed during a fetch of {:?}",
            *ended - *started
        );
    }
    let longest = builds.iter().max().copied().unwrap_or_default();
    assert!(
        worst < longest,
        "runs stalled for {worst:?}, as long as a whole build ({longest:?})"
    );
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
}
