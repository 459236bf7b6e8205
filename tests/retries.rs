//! Retries: attempts are counted, delays follow the policy (paused tokio
//! time makes them exact and the tests instant), the last error is returned.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ndf::prelude::*;
use tokio::time::Instant;

#[derive(Clone, Default)]
struct Job {
    attempts: Arc<AtomicU32>,
    started: Arc<Mutex<Vec<Instant>>>,
    fail_first: u32,
}

impl Job {
    fn failing(times: u32) -> Self {
        Self {
            fail_first: times,
            ..Self::default()
        }
    }

    fn attempts(&self) -> u32 {
        self.attempts.load(Ordering::SeqCst)
    }

    /// Milliseconds between consecutive attempts.
    fn gaps_ms(&self) -> Vec<u128> {
        let started = self.started.lock().unwrap();
        started
            .windows(2)
            .map(|w| (w[1] - w[0]).as_millis())
            .collect()
    }

    fn attempt(&self) -> Result<u32, StepError> {
        self.started.lock().unwrap().push(Instant::now());
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        if n <= self.fail_first {
            Err(StepError::msg(format!("transient failure {n}")))
        } else {
            Ok(n)
        }
    }
}

#[pattern(retry(
    max = 3,
    initial = "100ms",
    multiplier = 2.0,
    max_delay = "10s",
    jitter = false
))]
async fn flaky(job: Job) -> Result<u32, StepError> {
    job.attempt()
}

#[pattern(retries = 3)]
async fn flaky_jittered(job: Job) -> Result<u32, StepError> {
    job.attempt()
}

#[pattern(retry(
    max = 4,
    initial = "1s",
    multiplier = 10.0,
    max_delay = "3s",
    jitter = false
))]
async fn flaky_capped(job: Job) -> Result<u32, StepError> {
    job.attempt()
}

#[pattern]
async fn once(job: Job) -> Result<u32, StepError> {
    job.attempt()
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_retried_until_success() {
    let ndf = common::ndf();
    let job = Job::failing(2);
    let out = ndf
        .run(
            &sequential!(name = "jobs.flaky"; flaky),
            job.clone(),
            &PatternContext::new("jobs"),
        )
        .await;
    assert_eq!(out.unwrap(), 3);
    assert_eq!(job.attempts(), 3);
    let stats = ndf.stats("flaky", "jobs").unwrap();
    assert_eq!(
        (stats.executions, stats.successes, stats.retries),
        (1, 1, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn retries_are_bounded_and_the_last_error_is_returned() {
    let ndf = common::ndf();
    let job = Job::failing(u32::MAX);
    let err = ndf
        .run(
            &sequential!(name = "jobs.flaky"; flaky),
            job.clone(),
            &PatternContext::new("jobs"),
        )
        .await
        .unwrap_err();
    assert_eq!(job.attempts(), 4, "one attempt and three retries");
    match err {
        ndf::Error::Execution { step, source, .. } => {
            assert_eq!(step, "flaky");
            assert_eq!(source.to_string(), "transient failure 4");
        }
        other => panic!("expected Execution, got {other:?}"),
    }
    let stats = ndf.stats("flaky", "jobs").unwrap();
    assert_eq!((stats.failures, stats.retries), (1, 3));
}

#[tokio::test(start_paused = true)]
async fn backoff_doubles_from_the_initial_delay() {
    let ndf = common::ndf();
    let job = Job::failing(3);
    ndf.run(
        &sequential!(name = "jobs.flaky"; flaky),
        job.clone(),
        &PatternContext::new("jobs"),
    )
    .await
    .unwrap();
    assert_eq!(job.gaps_ms(), [100, 200, 400]);
}

#[tokio::test(start_paused = true)]
async fn backoff_is_capped_at_max_delay() {
    let ndf = common::ndf();
    let job = Job::failing(4);
    ndf.run(
        &sequential!(name = "jobs.capped"; flaky_capped),
        job.clone(),
        &PatternContext::new("jobs"),
    )
    .await
    .unwrap();
    assert_eq!(job.gaps_ms(), [1000, 3000, 3000, 3000]);
}

#[tokio::test(start_paused = true)]
async fn jitter_keeps_each_delay_between_half_and_all_of_the_planned_one() {
    let ndf = common::ndf();
    for _ in 0..20 {
        let job = Job::failing(3);
        ndf.run(
            &sequential!(flaky_jittered),
            job.clone(),
            &PatternContext::new("jobs"),
        )
        .await
        .unwrap();
        let gaps = job.gaps_ms();
        for (gap, planned) in gaps.iter().zip([100, 200, 400]) {
            assert!(
                (planned / 2..=planned).contains(gap),
                "gap {gap} ms for planned {planned} ms: {gaps:?}"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_without_retries_runs_once() {
    let ndf = common::ndf();
    let job = Job::failing(1);
    assert!(
        ndf.run(
            &sequential!(once),
            job.clone(),
            &PatternContext::new("jobs")
        )
        .await
        .is_err()
    );
    assert_eq!(job.attempts(), 1);
    let started = Instant::now();
    let _ = ndf
        .run(
            &sequential!(once),
            Job::failing(1),
            &PatternContext::new("jobs"),
        )
        .await;
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "no backoff without retries"
    );
}
