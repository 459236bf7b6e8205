//! Runs are learned in batches, off the hot path: a thread queues up to
//! `learning_batch` runs before it applies them, the learner applies what
//! waits after `learning_interval`, and reading statistics applies first.
//! Gating sees a run once it is applied.

use std::time::Duration;

use ndf::prelude::*;

#[pattern]
async fn flaky(n: u32) -> Result<u32, StepError> {
    Err(StepError::msg(format!("{n}: down")))
}

/// Held back after two failures: two outcomes gate, and a lenient
/// `gate_alpha` makes two failures credible evidence.
fn ndf(batch: usize, interval: Duration) -> Ndf {
    let mut config = Config::default();
    config.min_samples = 2;
    config.learning_rate = 0.0;
    config.confidence_threshold = 0.6;
    config.gate_alpha = 0.5;
    config.break_duration = Duration::from_hours(1);
    config.learning_batch = batch;
    config.learning_interval = interval;
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap()
}

/// Runs `flaky` once: `true` when it ran (and failed), `false` when it was
/// held back.
async fn ran(ndf: &Ndf) -> bool {
    let flow = sequential!(name = "batch.flaky"; flaky);
    match ndf.run(&flow, 1, &PatternContext::new("batch")).await {
        Err(ndf::Error::Execution { .. }) => true,
        Err(ndf::Error::ConfidenceThreshold { .. }) => false,
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn each_run_is_learned_at_once_with_a_batch_of_one() {
    let ndf = ndf(1, Duration::from_hours(1));
    assert!(ran(&ndf).await && ran(&ndf).await);
    assert!(!ran(&ndf).await, "two failures learned: held back");
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_is_learned_by_the_run_that_fills_it() {
    let ndf = ndf(4, Duration::from_hours(1));
    for n in 1..=4 {
        assert!(ran(&ndf).await, "run {n} ran: its gates saw no outcome yet");
    }
    assert!(!ran(&ndf).await, "the fourth run applied all four");
}

#[tokio::test(start_paused = true)]
async fn the_learner_applies_waiting_runs_after_the_interval() {
    let ndf = ndf(100, Duration::from_millis(50));
    for _ in 0..3 {
        assert!(ran(&ndf).await);
    }
    assert!(ran(&ndf).await, "still queued");
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(!ran(&ndf).await, "the learner applied the four runs");
}

#[tokio::test(start_paused = true)]
async fn reading_statistics_applies_what_waits_first() {
    let ndf = ndf(100, Duration::from_hours(1));
    for _ in 0..3 {
        assert!(ran(&ndf).await);
    }
    let stats = ndf.stats("batch.flaky", "batch").unwrap();
    assert_eq!((stats.executions, stats.failures), (3, 3));
    assert!(
        !ran(&ndf).await,
        "the read applied them, and gating sees them"
    );
}

#[pattern]
async fn bump(n: u32) -> u32 {
    n + 1
}

#[tokio::test(start_paused = true)]
async fn long_workflows_are_learned_step_by_step_too() {
    // Fourteen steps: more than a queued run holds inline.
    let flow = sequential!(name = "batch.long";
        bump => bump => bump => bump => bump => bump => bump
        => bump => bump => bump => bump => bump => bump => bump);
    let ndf = ndf(3, Duration::from_hours(1));
    for n in 0..10 {
        let out = ndf.run(&flow, n, &PatternContext::new("batch")).await;
        assert_eq!(out.unwrap(), n + 14);
    }
    assert_eq!(ndf.stats("batch.long", "batch").unwrap().executions, 10);
    assert_eq!(ndf.stats("bump", "batch").unwrap().executions, 140);
}

#[tokio::test(start_paused = true)]
async fn a_thread_whose_queue_is_full_learns_before_it_queues_more() {
    // A batch larger than a thread's queue holds (1024 runs): the run that
    // finds it full learns what waits, and nothing is lost.
    let ndf = ndf(5000, Duration::from_hours(1));
    let flow = sequential!(name = "batch.many"; bump);
    for n in 0..3000 {
        ndf.run(&flow, n, &PatternContext::new("batch"))
            .await
            .unwrap();
    }
    assert_eq!(ndf.stats("batch.many", "batch").unwrap().executions, 3000);
    assert_eq!(ndf.stats("bump", "batch").unwrap().executions, 3000);
}
