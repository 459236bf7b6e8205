//! Timeouts bound each attempt; a hanging step is an error value.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ndf::prelude::*;

#[derive(Clone, Default)]
struct Work {
    attempts: Arc<AtomicU32>,
    /// How long each attempt takes, by attempt number (the last repeats).
    durations: Vec<Duration>,
}

impl Work {
    async fn run(&self) -> u32 {
        let n = self.attempts.fetch_add(1, Ordering::SeqCst);
        let idx = usize::try_from(n).unwrap().min(self.durations.len() - 1);
        tokio::time::sleep(self.durations[idx]).await;
        n + 1
    }
}

#[pattern(timeout = "1s")]
async fn bounded(work: Work) -> u32 {
    work.run().await
}

#[pattern(timeout = "1s", retry(max = 2, initial = "10ms", jitter = false))]
async fn bounded_retried(work: Work) -> u32 {
    work.run().await
}

#[pattern]
async fn uses_config_timeout(work: Work) -> u32 {
    work.run().await
}

fn work(durations: &[u64]) -> Work {
    Work {
        durations: durations.iter().map(|s| Duration::from_secs(*s)).collect(),
        ..Work::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_step_is_a_timeout_error_naming_the_step() {
    let ndf = common::ndf();
    let started = tokio::time::Instant::now();
    let err = ndf
        .run(
            &sequential!(name = "ops.bounded"; bounded),
            work(&[3600]),
            &PatternContext::new("ops"),
        )
        .await
        .unwrap_err();
    match err {
        ndf::Error::Timeout {
            pattern,
            step,
            after,
        } => {
            assert_eq!(
                (pattern.as_str(), step.as_str(), after),
                ("ops.bounded", "bounded", Duration::from_secs(1))
            );
        }
        other => panic!("expected Timeout, got {other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_step_finishing_in_time_succeeds() {
    let ndf = common::ndf();
    let out = ndf
        .run(
            &sequential!(bounded),
            work(&[0]),
            &PatternContext::new("ops"),
        )
        .await;
    assert_eq!(out.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn each_attempt_gets_its_own_timeout() {
    let ndf = common::ndf();
    let w = work(&[5, 5, 0]);
    let out = ndf
        .run(
            &sequential!(bounded_retried),
            w.clone(),
            &PatternContext::new("ops"),
        )
        .await;
    assert_eq!(out.unwrap(), 3);
    assert_eq!(w.attempts.load(Ordering::SeqCst), 3);
    assert_eq!(ndf.stats("bounded_retried", "ops").unwrap().retries, 2);
}

#[tokio::test(start_paused = true)]
async fn steps_without_a_timeout_use_the_configured_one() {
    let mut config = Config::default();
    config.step_timeout = Duration::from_secs(7);
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let started = tokio::time::Instant::now();
    let err = ndf
        .run(
            &sequential!(uses_config_timeout),
            work(&[100]),
            &PatternContext::new("ops"),
        )
        .await;
    assert!(
        matches!(err, Err(ndf::Error::Timeout { after, .. }) if after == Duration::from_secs(7))
    );
    assert_eq!(started.elapsed(), Duration::from_secs(7));
}

#[pattern(domain = "web_development")]
async fn render_page(work: Work) -> u32 {
    work.run().await
}

#[pattern(domain = "web_development", timeout = "2s")]
async fn render_fast(work: Work) -> u32 {
    work.run().await
}

#[tokio::test(start_paused = true)]
async fn a_steps_domain_picks_its_preset_timeout_when_it_sets_none() {
    let ndf = common::ndf();
    let started = tokio::time::Instant::now();
    let err = ndf
        .run(
            &sequential!(render_page),
            work(&[3600]),
            &PatternContext::new("web"),
        )
        .await;
    assert!(
        matches!(err, Err(ndf::Error::Timeout { after, .. }) if after == Duration::from_mins(1))
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_mins(1),
        "web_development's preset is 60 s"
    );

    let started = tokio::time::Instant::now();
    let err = ndf
        .run(
            &sequential!(render_fast),
            work(&[3600]),
            &PatternContext::new("web"),
        )
        .await;
    assert!(
        matches!(err, Err(ndf::Error::Timeout { after, .. }) if after == Duration::from_secs(2))
    );
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(2),
        "the step's own timeout wins"
    );
}
