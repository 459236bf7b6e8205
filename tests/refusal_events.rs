//! A run its gate refuses is an INFO event in a `ndf.workflow` span whose
//! outcome is `refused`, seen by a subscriber at INFO. The only test of its
//! binary: tracing caches each callsite's interest process-wide, so a test
//! running at the same time without a subscriber could hide the events.

mod common;

use std::time::Duration;

use ndf::prelude::*;

#[pattern]
async fn always_down(n: u32) -> Result<u32, StepError> {
    Err(StepError::msg(format!("{n}: down")))
}

#[tokio::test(start_paused = true)]
async fn a_refused_run_is_an_info_event_in_a_refused_workflow_span() {
    let (captured, _guard) = common::capture_at_info();
    let mut config = Config::default();
    config.min_samples = 4;
    config.gate_alpha = 0.2;
    config.break_duration = Duration::from_secs(30);
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let flow = sequential!(name = "pricing.strict"; always_down);
    let ctx = PatternContext::new("pricing");
    for _ in 0..4 {
        let err = ndf.run(&flow, 1, &ctx).await.unwrap_err();
        assert!(matches!(err, ndf::Error::Execution { .. }), "{err}");
    }
    for _ in 0..4 {
        let err = ndf.run(&flow, 1, &ctx).await.unwrap_err();
        assert!(
            matches!(err, ndf::Error::ConfidenceThreshold { .. }),
            "{err}"
        );
    }
    let logs = captured.text();
    assert_eq!(
        logs.matches("run refused by the workflow's gate").count(),
        4,
        "{logs}"
    );
    assert!(logs.contains(r#"outcome="refused""#), "{logs}");
    // The breaker's opening is an event of its own, on its own target.
    assert_eq!(
        logs.matches("breaker opened").count(),
        2,
        "the workflow's and the step's: {logs}"
    );
    assert!(logs.contains("ndf::breaker"), "{logs}");
}
