//! Confidence gating: a pattern whose confidence has fallen below its
//! threshold (after `min_samples` outcomes) is not run; its fallback or the
//! next degradation level serves, else the run fails with
//! `ConfidenceThreshold`. One trial run every `gate_retry` lets it recover.

mod common;

use std::time::Duration;

use common::Trace;
use ndf::prelude::*;

#[derive(Clone, Debug, Default)]
struct Call {
    trace: Trace,
    primary_fails: bool,
}

#[pattern(fallback = cached)]
async fn primary(c: Call) -> Result<&'static str, StepError> {
    c.trace.push("primary");
    if c.primary_fails {
        Err(StepError::msg("primary is down"))
    } else {
        Ok("fresh")
    }
}

#[pattern]
async fn cached(c: Call) -> &'static str {
    c.trace.push("cached");
    "cached"
}

#[pattern]
async fn no_fallback(c: Call) -> Result<&'static str, StepError> {
    c.trace.push("no_fallback");
    if c.primary_fails {
        Err(StepError::msg("down"))
    } else {
        Ok("ok")
    }
}

#[pattern(confidence_threshold = 0.9)]
async fn demanding(c: Call) -> Result<&'static str, StepError> {
    primary(c).await
}

fn ndf() -> Ndf {
    let mut config = Config::default();
    config.min_samples = 4;
    config.learning_rate = 0.0;
    config.confidence_threshold = 0.6;
    config.gate_retry = Duration::from_secs(30);
    // Each run is learned as it ends, so the next run's gates see it.
    config.learning_batch = 1;
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap()
}

fn ctx() -> PatternContext {
    PatternContext::new("pricing")
}

fn failing() -> Call {
    Call {
        primary_fails: true,
        ..Call::default()
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_below_its_threshold_is_skipped_for_its_fallback() {
    let ndf = ndf();
    let flow = sequential!(name = "pricing.quote"; primary);
    for _ in 0..4 {
        assert_eq!(ndf.run(&flow, failing(), &ctx()).await.unwrap(), "cached");
    }
    // 0 of 4: confidence 1/6 < 0.6, with min_samples reached.
    let c = ndf.confidence("primary", "pricing").unwrap();
    assert!(c.mean < 0.6 && c.samples == 4, "{c:?}");

    let call = failing();
    assert_eq!(
        ndf.run(&flow, call.clone(), &ctx()).await.unwrap(),
        "cached"
    );
    assert_eq!(
        call.trace.events(),
        ["cached"],
        "primary was not run at all"
    );
    let stats = ndf.stats("primary", "pricing").unwrap();
    assert_eq!((stats.held_back, stats.executions), (1, 4));
    assert_eq!(
        ndf.confidence("primary", "pricing").unwrap().samples,
        4,
        "a held-back step learns nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn before_min_samples_nothing_is_held_back() {
    let ndf = ndf();
    let flow = sequential!(name = "pricing.quote"; primary);
    for _ in 0..3 {
        ndf.run(&flow, failing(), &ctx()).await.unwrap();
    }
    let call = failing();
    ndf.run(&flow, call.clone(), &ctx()).await.unwrap();
    assert_eq!(
        call.trace.events(),
        ["primary", "cached"],
        "three outcomes are too few to judge"
    );
}

#[tokio::test(start_paused = true)]
async fn without_a_fallback_the_run_fails_with_confidence_threshold() {
    let ndf = ndf();
    let flow = sequential!(name = "pricing.strict"; no_fallback);
    for _ in 0..4 {
        let _ = ndf.run(&flow, failing(), &ctx()).await;
    }
    let call = failing();
    let err = ndf.run(&flow, call.clone(), &ctx()).await.unwrap_err();
    match err {
        ndf::Error::ConfidenceThreshold {
            pattern,
            confidence,
            threshold,
        } => {
            // The workflow failed as often as its step: it is held back first.
            assert_eq!(pattern, "pricing.strict");
            assert!(confidence < threshold);
            assert!((threshold - 0.6).abs() < f64::EPSILON);
        }
        other => panic!("expected ConfidenceThreshold, got {other:?}"),
    }
    assert!(call.trace.events().is_empty(), "nothing ran");
    let stats = ndf.stats("pricing.strict", "pricing").unwrap();
    assert_eq!(
        (stats.executions, stats.held_back),
        (4, 1),
        "the refusal is counted, not as a run"
    );
}

#[tokio::test(start_paused = true)]
async fn a_low_confidence_alternative_is_skipped_in_a_degradation_chain() {
    let ndf = ndf();
    let flow = degrade!(name = "pricing.chain"; no_fallback | cached);
    for _ in 0..4 {
        assert_eq!(ndf.run(&flow, failing(), &ctx()).await.unwrap(), "cached");
    }
    let call = failing();
    assert_eq!(
        ndf.run(&flow, call.clone(), &ctx()).await.unwrap(),
        "cached"
    );
    assert_eq!(
        call.trace.events(),
        ["cached"],
        "the first level was skipped, not tried"
    );
    assert_eq!(
        ndf.stats("pricing.chain", "pricing").unwrap().degradations,
        5
    );
}

#[tokio::test(start_paused = true)]
async fn a_held_back_step_gets_a_trial_every_gate_retry_and_can_recover() {
    let ndf = ndf();
    let flow = sequential!(name = "pricing.quote"; primary);
    for _ in 0..4 {
        ndf.run(&flow, failing(), &ctx()).await.unwrap();
    }
    let held = failing();
    ndf.run(&flow, held.clone(), &ctx()).await.unwrap();
    assert_eq!(held.trace.events(), ["cached"]);

    tokio::time::sleep(Duration::from_secs(31)).await;
    // The primary works again: the trial run reaches it.
    let healthy = Call::default();
    assert_eq!(
        ndf.run(&flow, healthy.clone(), &ctx()).await.unwrap(),
        "fresh"
    );
    assert_eq!(healthy.trace.events(), ["primary"]);
    // Until the next trial, it is held back again (1 of 5 is still below 0.6).
    let again = Call::default();
    assert_eq!(
        ndf.run(&flow, again.clone(), &ctx()).await.unwrap(),
        "cached"
    );
    assert_eq!(again.trace.events(), ["cached"]);
}

#[tokio::test(start_paused = true)]
async fn a_steps_own_threshold_wins_over_the_config() {
    let ndf = ndf();
    let flow = sequential!(name = "pricing.demanding"; demanding);
    // 3 of 4 succeed: 4/6 = 0.67, above the config's 0.6 but below the step's 0.9.
    for fails in [false, false, true, false] {
        let _ = ndf
            .run(
                &flow,
                Call {
                    primary_fails: fails,
                    ..Call::default()
                },
                &ctx(),
            )
            .await;
    }
    let c = ndf.confidence("demanding", "pricing").unwrap();
    assert!((c.mean - 4.0 / 6.0).abs() < 1e-9, "{c:?}");
    let err = ndf.run(&flow, Call::default(), &ctx()).await.unwrap_err();
    assert!(
        matches!(&err, ndf::Error::ConfidenceThreshold { pattern, threshold, .. } if pattern == "demanding" && (*threshold - 0.9).abs() < f64::EPSILON),
        "{err}"
    );
}
