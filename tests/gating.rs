//! Confidence gating: a pattern whose success rate is credibly below its
//! threshold (after `min_samples` outcomes) is not run; its fallback or the
//! next degradation level serves, else the run fails with
//! `ConfidenceThreshold`. After `break_duration`, probes decide whether it
//! is served again.

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
    // Lenient evidence, so that four failures in a row open the breaker
    // (three do not): ln(1 / 0.2) = 1.61, and a failure adds 0.45 at 0.6.
    config.gate_alpha = 0.2;
    config.break_duration = Duration::from_secs(30);
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
            ref pattern,
            ref domain,
            confidence,
            threshold,
            state,
            retry_in,
            failures,
            calls,
            ..
        } => {
            // The workflow failed as often as its step: it is held back first.
            assert_eq!(
                (pattern.as_str(), domain.as_str()),
                ("pricing.strict", "pricing")
            );
            assert!(confidence < threshold);
            assert!((threshold - 0.6).abs() < f64::EPSILON);
            assert_eq!(state, ndf::BreakerState::Open);
            assert_eq!(retry_in, Some(Duration::from_secs(30)));
            assert_eq!((failures, calls), (4, 4));
            let message = err.to_string();
            for part in [
                "credibly below the threshold 0.60",
                "4 of its last 4 outcomes failed",
                "next probe in 30.0s (`break_duration`)",
                "`confidence_threshold`",
                r#"Ndf::reset("pricing.strict", "pricing")"#,
            ] {
                assert!(message.contains(part), "{part:?} missing from: {message}");
            }
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
    assert_eq!(
        ndf.stats("no_fallback", "pricing").unwrap().held_back,
        1,
        "the skipped level is counted as held back"
    );
}

#[tokio::test(start_paused = true)]
async fn after_the_break_probes_that_succeed_close_the_breaker() {
    let ndf = ndf();
    let flow = sequential!(name = "pricing.quote"; primary);
    for _ in 0..4 {
        ndf.run(&flow, failing(), &ctx()).await.unwrap();
    }
    let held = failing();
    ndf.run(&flow, held.clone(), &ctx()).await.unwrap();
    assert_eq!(held.trace.events(), ["cached"]);
    assert_eq!(
        ndf.breaker("primary", "pricing"),
        Some(ndf::BreakerState::Open)
    );

    tokio::time::sleep(Duration::from_secs(30)).await;
    // The primary works again: ⌈5 × 0.6⌉ = 3 probes must succeed.
    for probe in 1..=3 {
        let healthy = Call::default();
        assert_eq!(
            ndf.run(&flow, healthy.clone(), &ctx()).await.unwrap(),
            "fresh"
        );
        assert_eq!(healthy.trace.events(), ["primary"], "probe {probe}");
        let expected = if probe < 3 {
            ndf::BreakerState::HalfOpen
        } else {
            ndf::BreakerState::Closed
        };
        assert_eq!(ndf.breaker("primary", "pricing"), Some(expected));
    }
    // Closed: every run is served, and one failure does not open it again.
    ndf.run(&flow, failing(), &ctx()).await.unwrap();
    let after = Call::default();
    assert_eq!(
        ndf.run(&flow, after.clone(), &ctx()).await.unwrap(),
        "fresh"
    );
    assert_eq!(after.trace.events(), ["primary"]);
}

#[tokio::test(start_paused = true)]
async fn probes_that_fail_open_the_breaker_for_another_break() {
    let ndf = ndf();
    let flow = sequential!(name = "pricing.quote"; primary);
    for _ in 0..4 {
        ndf.run(&flow, failing(), &ctx()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(30)).await;
    // 3 of 5 probes must succeed: the third failure settles it.
    for _ in 0..3 {
        let probe = failing();
        assert_eq!(
            ndf.run(&flow, probe.clone(), &ctx()).await.unwrap(),
            "cached"
        );
        assert_eq!(probe.trace.events(), ["primary", "cached"]);
    }
    assert_eq!(
        ndf.breaker("primary", "pricing"),
        Some(ndf::BreakerState::Open)
    );
    let held = Call::default();
    ndf.run(&flow, held.clone(), &ctx()).await.unwrap();
    assert_eq!(
        held.trace.events(),
        ["cached"],
        "held back for another break"
    );
    tokio::time::sleep(Duration::from_secs(30)).await;
    let probe = Call::default();
    ndf.run(&flow, probe.clone(), &ctx()).await.unwrap();
    assert_eq!(probe.trace.events(), ["primary"], "probed again");
}

#[tokio::test(start_paused = true)]
async fn reset_forgets_the_gate() {
    let ndf = ndf();
    let flow = sequential!(name = "pricing.quote"; primary);
    for _ in 0..4 {
        ndf.run(&flow, failing(), &ctx()).await.unwrap();
    }
    assert_eq!(
        ndf.breaker("primary", "pricing"),
        Some(ndf::BreakerState::Open)
    );
    assert!(ndf.reset("primary", "pricing"));
    assert!(!ndf.reset("primary", "elsewhere"));
    assert_eq!(
        ndf.breaker("primary", "pricing"),
        Some(ndf::BreakerState::Closed)
    );
    assert!(
        ndf.confidence("primary", "pricing").is_none(),
        "evidence cleared"
    );
    let call = Call::default();
    ndf.run(&flow, call.clone(), &ctx()).await.unwrap();
    assert_eq!(call.trace.events(), ["primary"]);
    assert_eq!(
        ndf.stats("primary", "pricing").unwrap().executions,
        5,
        "counters are kept"
    );
}

#[tokio::test(start_paused = true)]
async fn a_steps_own_threshold_wins_over_the_config() {
    let ndf = ndf();
    let flow = sequential!(name = "pricing.demanding"; demanding);
    // Two failures in four: not credible evidence against the config's 0.6
    // (the workflow is served), but against the step's own 0.9.
    for fails in [false, true, true, false] {
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
    assert_eq!(
        ndf.breaker("pricing.demanding", "pricing"),
        Some(ndf::BreakerState::Closed)
    );
    assert_eq!(
        ndf.breaker("demanding", "pricing"),
        Some(ndf::BreakerState::Open)
    );
    let err = ndf.run(&flow, Call::default(), &ctx()).await.unwrap_err();
    assert!(
        matches!(&err, ndf::Error::ConfidenceThreshold { pattern, threshold, .. } if pattern == "demanding" && (*threshold - 0.9).abs() < f64::EPSILON),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_restart_on_a_store_saved_during_an_outage_probes_at_once() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gate-restart");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ndf.db");
    let flow = sequential!(name = "pricing.strict"; no_fallback);
    let production = || {
        Ndf::builder()
            .resource_probe(ndf::IdleProbe)
            .config(Config::for_environment(Environment::Production))
            .store(ndf::SqliteStore::open(&path).unwrap())
            .build()
            .unwrap()
    };
    {
        let ndf = production();
        for _ in 0..20 {
            let _ = ndf.run(&flow, failing(), &ctx()).await;
        }
        assert_eq!(
            ndf.breaker("pricing.strict", "pricing"),
            Some(ndf::BreakerState::Open)
        );
        ndf.shutdown().await.unwrap();
    }
    let ndf = production();
    assert_eq!(
        ndf.breaker("pricing.strict", "pricing"),
        Some(ndf::BreakerState::HalfOpen),
        "an open breaker comes back half-open"
    );
    // The dependency is back: five probes succeed and every run is served.
    for _ in 0..50 {
        let call = Call::default();
        assert_eq!(ndf.run(&flow, call.clone(), &ctx()).await.unwrap(), "ok");
        assert_eq!(call.trace.events(), ["no_fallback"]);
    }
    assert_eq!(
        ndf.breaker("pricing.strict", "pricing"),
        Some(ndf::BreakerState::Closed)
    );
}

#[tokio::test(start_paused = true)]
async fn refusals_are_counted_and_lower_the_success_rate() {
    // Their tracing events: tests/refusal_events.rs (a subscriber of its own
    // test binary, so that no other test's callsites race it).
    let ndf = ndf();
    let flow = sequential!(name = "pricing.strict"; no_fallback);
    for _ in 0..4 {
        let _ = ndf.run(&flow, failing(), &ctx()).await;
    }
    for _ in 0..4 {
        let err = ndf.run(&flow, Call::default(), &ctx()).await.unwrap_err();
        assert!(
            matches!(err, ndf::Error::ConfidenceThreshold { .. }),
            "{err}"
        );
    }
    let report = ndf.report(Duration::from_hours(1));
    let row = report
        .patterns
        .iter()
        .find(|p| p.pattern == "pricing.strict")
        .unwrap();
    assert_eq!((row.executions, row.failures, row.refused), (4, 4, 4));
    assert_eq!(row.success_rate, Some(0.0));
    assert_eq!(row.breaker, ndf::BreakerState::Open);
    assert_eq!(ndf.stats("pricing.strict", "pricing").unwrap().held_back, 4);
}
