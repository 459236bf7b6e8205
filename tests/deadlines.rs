//! A workflow's `deadline`: the compiler checks that its worst case fits
//! (tests/ui/deadline/), and at run time no attempt or wait outlives it:
//! past it, the run fails with `Error::DeadlineExceeded` naming the step.

use std::time::Duration;

use ndf::prelude::*;
use ndf::{ResourceProbe, ResourceUsage};
use tokio::time::Instant;

/// A machine whose memory is nearly full: a memory budget waits for room.
struct Full;

impl ResourceProbe for Full {
    fn sample(&self) -> ResourceUsage {
        ResourceUsage {
            cpu: 0.1,
            memory: 0.99,
        }
    }

    fn total_memory(&self) -> Option<u64> {
        Some(8 << 30)
    }
}

#[pattern(timeout = "200ms")]
async fn prepare(n: u32) -> u32 {
    n
}

#[pattern(timeout = "300ms", memory = "1GB")]
async fn join_tables(n: u32) -> u32 {
    n + 1
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_the_deadline_is_deadline_exceeded_naming_the_step() {
    // The steps' worst case (0.5 s) fits in 1 s; waiting for memory (up to
    // `resource_wait`, 5 s) is what runs past it.
    let ndf = Ndf::builder().resource_probe(Full).build().unwrap();
    let flow = sequential!(name = "etl.join", deadline = "1s"; prepare => join_tables);
    let started = Instant::now();
    let err = ndf
        .run(&flow, 1, &PatternContext::new("etl"))
        .await
        .unwrap_err();
    match &err {
        ndf::Error::DeadlineExceeded { step, deadline, .. } => {
            assert_eq!(step, "join_tables");
            assert_eq!(*deadline, Duration::from_secs(1));
        }
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(1),
        "not a moment past it"
    );
}

#[pattern(timeout = "400ms", retry(max = 3, initial = "100ms", jitter = false))]
async fn flaky(n: u32) -> Result<u32, StepError> {
    tokio::time::sleep(Duration::from_millis(300)).await;
    Err(StepError::msg(format!("{n}: not yet")))
}

#[tokio::test(start_paused = true)]
async fn no_retry_starts_past_the_deadline() {
    // Worst case: 4 × 400 ms + 100 + 200 + 400 ms = 2.3 s, within 3 s.
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let flow = sequential!(name = "api.flaky", deadline = "3s"; flaky);
    let err = ndf
        .run(&flow, 1, &PatternContext::new("api"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, ndf::Error::Execution { .. }),
        "within the deadline, the step's own error: {err}"
    );
}

/// Works 2.4 s before it returns, past its own timeout: synchronous work
/// cannot be interrupted, and its timeout counts from a first wait that
/// never comes.
#[pattern(timeout = "500ms")]
async fn busy(n: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(2400));
    n
}

/// Works 0.5 s, then waits for ever.
#[pattern(timeout = "1s")]
async fn busy_then_stuck(n: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(500));
    std::future::pending::<()>().await;
    n
}

/// The same, retried.
#[pattern(timeout = "1s", retry(max = 1, initial = "10ms", jitter = false))]
async fn busy_then_stuck_retried(n: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(500));
    std::future::pending::<()>().await;
    n
}

/// Runs `flow` on real time, with the default configuration: it fails
/// with `DeadlineExceeded` naming `step`. How long it took.
async fn exceeded_at<W: Workflow<Input = u32, Output = u32>>(flow: &W, step: &str) -> Duration {
    let ndf = Ndf::builder().build().unwrap();
    let started = std::time::Instant::now();
    let err = ndf
        .run(flow, 1, &PatternContext::new("etl"))
        .await
        .unwrap_err();
    let took = started.elapsed();
    match &err {
        ndf::Error::DeadlineExceeded { step: named, .. } => assert_eq!(named, step),
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
    took
}

/// Runs `flow` (deadline 3 s; its first step works 2.4 s, its second
/// 0.5 s and then waits) on real time: the run ends at its deadline, in
/// `DeadlineExceeded` naming `step`.
async fn ends_at_the_deadline<W: Workflow<Input = u32, Output = u32>>(flow: &W, step: &str) {
    let took = exceeded_at(flow, step).await;
    // The second step's attempt is made at 2.4 s, when 0.6 s are left,
    // and first waits at 2.9 s, when 0.1 s is. Its timeout cut to the
    // first (0.6 s from its wait) ended the run at 3.5 s; cut to the
    // second, at 3.0 s. The margin is half that gap, not a speed.
    assert!(
        took < Duration::from_millis(3250),
        "the run ended {took:?} after its start, past its 3 s deadline"
    );
}

#[tokio::test]
async fn an_attempt_that_works_before_it_waits_ends_at_the_deadline() {
    // Worst case: 0.5 s + 1 s, within 3 s.
    let flow = sequential!(name = "etl.busy", deadline = "3s"; busy => busy_then_stuck);
    ends_at_the_deadline(&flow, "busy_then_stuck").await;
}

#[tokio::test]
async fn a_retried_attempt_that_works_before_it_waits_ends_at_the_deadline() {
    // Worst case: 0.5 s + 2 × 1 s + 10 ms, within 3 s.
    let flow =
        sequential!(name = "etl.busy_retried", deadline = "3s"; busy => busy_then_stuck_retried);
    ends_at_the_deadline(&flow, "busy_then_stuck_retried").await;
}

/// Works 1.1 s before it returns: past the deadline of the run below.
#[pattern(timeout = "100ms")]
async fn overrun(n: u32) -> u32 {
    std::thread::sleep(Duration::from_millis(1100));
    n
}

static RETRIED_RAN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
static PLAIN_RAN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Would complete at once, without waiting.
#[pattern(timeout = "200ms", retry(max = 1, initial = "10ms", jitter = false))]
async fn retried_after_overrun(n: u32) -> u32 {
    RETRIED_RAN.store(true, std::sync::atomic::Ordering::SeqCst);
    n
}

/// The same, without retries.
#[pattern(timeout = "200ms")]
async fn plain_after_overrun(n: u32) -> u32 {
    PLAIN_RAN.store(true, std::sync::atomic::Ordering::SeqCst);
    n
}

/// Runs `flow` (deadline 1 s; its first step works 1.1 s): its second
/// step, `step`, is refused with `DeadlineExceeded`, and `ran` stays false.
async fn refused_past_the_deadline<W: Workflow<Input = u32, Output = u32>>(
    flow: &W,
    step: &str,
    ran: &std::sync::atomic::AtomicBool,
) {
    exceeded_at(flow, step).await;
    assert!(
        !ran.load(std::sync::atomic::Ordering::SeqCst),
        "the step started past the deadline"
    );
}

#[tokio::test]
async fn a_retried_step_does_not_start_past_the_deadline() {
    // Worst case: 0.1 s + 2 × 0.2 s + 10 ms, within 1 s; the first step's
    // synchronous work takes the run past it.
    let flow = sequential!(name = "etl.overrun", deadline = "1s"; overrun => retried_after_overrun);
    refused_past_the_deadline(&flow, "retried_after_overrun", &RETRIED_RAN).await;
}

#[tokio::test]
async fn a_plain_step_does_not_start_past_the_deadline() {
    let flow =
        sequential!(name = "etl.overrun_plain", deadline = "1s"; overrun => plain_after_overrun);
    refused_past_the_deadline(&flow, "plain_after_overrun", &PLAIN_RAN).await;
}
