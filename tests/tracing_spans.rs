//! With a subscriber listening, each workflow run and each step attempt is
//! a span carrying pattern, step, domain, attempt and outcome.

mod common;

use std::sync::{Arc, Mutex};

use common::Captured;
use ndf::prelude::*;
use tracing_subscriber::fmt::format::FmtSpan;

#[derive(Clone, Default)]
struct Flaky(Arc<Mutex<u32>>);

#[pattern(retry(max = 2, initial = "1ms", jitter = false))]
async fn fetch(f: Flaky) -> Result<u32, StepError> {
    let mut n = f.0.lock().unwrap();
    *n += 1;
    if *n == 1 {
        Err(StepError::msg("first attempt fails"))
    } else {
        Ok(*n)
    }
}

#[pattern]
async fn store(n: u32) -> u32 {
    n
}

#[pattern]
async fn precise(n: u32) -> Result<u32, StepError> {
    let _ = n;
    Err(StepError::msg("model unavailable"))
}

#[pattern]
async fn rough(n: u32) -> u32 {
    n
}

#[tokio::test(start_paused = true)]
async fn a_degraded_run_records_its_level_on_the_workflow_span() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let flow = sequential!(name = "sync.estimate"; degrade!(precise | rough));
    ndf.run(&flow, 3, &PatternContext::new("sync"))
        .await
        .unwrap();
    let logs = captured.text();
    assert!(
        logs.lines().any(|l| l.contains("ndf.workflow")
            && l.contains("degradation_level=1")
            && l.contains("close")),
        "{logs}"
    );
}

#[tokio::test(start_paused = true)]
async fn runs_and_attempts_are_spans() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let flow = sequential!(name = "sync.orders"; fetch => store);
    let ctx = PatternContext::new("sync").attribute("api_key", "k-123");
    ndf.run(&flow, Flaky::default(), &ctx).await.unwrap();

    let logs = captured.text();
    let closes: Vec<&str> = logs.lines().filter(|l| l.contains("close")).collect();
    let step = |name: &str, attempt: u32| {
        closes.iter().any(|l| {
            l.contains("ndf.step")
                && l.contains(&format!("step=\"{name}\""))
                && l.contains(&format!("attempt={attempt}"))
                && l.contains("pattern=\"sync.orders\"")
                && l.contains("domain=\"sync\"")
        })
    };
    assert!(
        step("fetch", 1) && step("fetch", 2) && step("store", 1),
        "{logs}"
    );
    assert!(
        closes
            .iter()
            .any(|l| l.contains("outcome=\"error\"") && l.contains("attempt=1")),
        "{logs}"
    );
    assert!(
        closes.iter().any(|l| l.contains("ndf.workflow")
            && l.contains("outcome=\"ok\"")
            && l.contains("pattern=\"sync.orders\"")),
        "{logs}"
    );
    assert!(!logs.contains("k-123"), "no attribute value is recorded");
}

/// Logs when dropped: what a step's own code may hold while it waits.
struct LogsOnDrop;

impl Drop for LogsOnDrop {
    fn drop(&mut self) {
        tracing::info!("the waiting step's guard is dropped");
    }
}

#[pattern]
async fn waits_forever(n: u32) -> u32 {
    let _guard = LogsOnDrop;
    std::future::pending::<()>().await;
    n
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_run_drops_its_steps_inside_its_span() {
    let (captured, _guard) = common::capture_at_info();
    let ndf = common::ndf();
    let flow = sequential!(name = "sync.stuck"; waits_forever);
    let ctx = PatternContext::new("sync");
    let run = ndf.run(&flow, 1, &ctx);
    // The caller gives up first: the run's future is dropped mid-step.
    let gave_up = tokio::time::timeout(std::time::Duration::from_millis(10), run).await;
    assert!(gave_up.is_err(), "the step never ends");
    let logs = captured.text();
    let dropped = logs
        .lines()
        .find(|l| l.contains("the waiting step's guard is dropped"))
        .unwrap_or_else(|| panic!("the guard logged nothing: {logs}"));
    assert!(
        dropped.contains("ndf.workflow{pattern=\"sync.stuck\""),
        "the step was dropped outside its run's span: {dropped}"
    );
}
