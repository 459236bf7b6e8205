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

/// Answers "429, retry after `hint`" until its last failure.
#[derive(Clone, Default)]
struct Busy {
    job: Job,
    hint_ms: u64,
}

#[pattern(retry(max = 3, initial = "100ms", max_delay = "5s", jitter = false))]
async fn busy_api(b: Busy) -> Result<u32, StepError> {
    let job = &b.job;
    job.started.lock().unwrap().push(Instant::now());
    let n = job.attempts.fetch_add(1, Ordering::SeqCst);
    if n < job.fail_first {
        return Err(
            StepError::msg("429 Too Many Requests").retry_after(Duration::from_millis(b.hint_ms))
        );
    }
    Ok(n)
}

#[tokio::test(start_paused = true)]
async fn a_retry_waits_at_least_what_the_error_asks() {
    let ndf = common::ndf();
    let busy = Busy {
        job: Job::failing(2),
        hint_ms: 1_500,
    };
    let flow = sequential!(busy_api);
    assert_eq!(
        ndf.run(&flow, busy.clone(), &PatternContext::new("api"))
            .await
            .unwrap(),
        2
    );
    // The backoff planned 100 ms and 200 ms; the API asked for 1.5 s.
    assert_eq!(busy.job.gaps_ms(), [1_500, 1_500]);
}

#[tokio::test(start_paused = true)]
async fn a_hint_shorter_than_the_backoff_changes_nothing() {
    let ndf = common::ndf();
    let busy = Busy {
        job: Job::failing(2),
        hint_ms: 10,
    };
    ndf.run(
        &sequential!(busy_api),
        busy.clone(),
        &PatternContext::new("api"),
    )
    .await
    .unwrap();
    assert_eq!(busy.job.gaps_ms(), [100, 200]);
}

#[tokio::test(start_paused = true)]
async fn a_hint_past_max_delay_ends_the_retries() {
    let ndf = common::ndf();
    let busy = Busy {
        job: Job::failing(5),
        hint_ms: 60_000,
    };
    let started = Instant::now();
    let err = ndf
        .run(
            &sequential!(busy_api),
            busy.clone(),
            &PatternContext::new("api"),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("429"), "{err}");
    assert_eq!(busy.job.attempts(), 1, "no retry waits a minute");
    assert_eq!(started.elapsed(), Duration::ZERO);
}

/// A typed error that carries the dependency's advice.
#[derive(Debug, thiserror::Error)]
#[error("rate limited, retry after {0:?}")]
struct RateLimitedByApi(Duration);

impl ndf::Classify for RateLimitedByApi {
    fn class(&self) -> ndf::ErrorClass {
        ndf::ErrorClass::Transient
    }

    fn retry_after(&self) -> Option<Duration> {
        Some(self.0)
    }
}

#[pattern(retry(max = 1, initial = "100ms", max_delay = "5s", jitter = false))]
async fn typed_busy(job: Job) -> Result<u32, RateLimitedByApi> {
    job.started.lock().unwrap().push(Instant::now());
    if job.attempts.fetch_add(1, Ordering::SeqCst) < job.fail_first {
        return Err(RateLimitedByApi(Duration::from_millis(700)));
    }
    Ok(7)
}

#[tokio::test(start_paused = true)]
async fn a_typed_error_gives_its_hint_through_classify() {
    let job = Job::failing(1);
    let out = common::ndf()
        .run(
            &sequential!(typed_busy),
            job.clone(),
            &PatternContext::new("api"),
        )
        .await
        .unwrap();
    assert_eq!(out, 7);
    assert_eq!(job.gaps_ms(), [700]);
}

#[pattern(retries = 3)]
async fn always_down(job: Job) -> Result<u32, StepError> {
    job.attempts.fetch_add(1, Ordering::SeqCst);
    Err(StepError::msg("connection refused"))
}

/// Attempts made by 100 runs of a step that always fails, 3 retries each.
async fn attempts_of_100_runs(config: Config) -> u32 {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config.confidence_threshold(0.0))
        .build()
        .unwrap();
    let job = Job::default();
    let flow = sequential!(always_down);
    for _ in 0..100 {
        assert!(
            ndf.run(&flow, job.clone(), &PatternContext::new("api"))
                .await
                .is_err()
        );
    }
    job.attempts()
}

#[tokio::test(start_paused = true)]
async fn a_retry_budget_stops_a_retry_storm_against_a_dead_dependency() {
    assert_eq!(
        attempts_of_100_runs(Config::default()).await,
        400,
        "without a budget, every call retries 3 times"
    );
    let attempts = attempts_of_100_runs(Config::default().retry_budget(0.2)).await;
    assert_eq!(attempts, 100 + 20, "retries add at most 20 % of the calls");
}
