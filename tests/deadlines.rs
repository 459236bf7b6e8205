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
