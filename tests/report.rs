//! `Ndf::report` and alerts.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ndf::prelude::*;
use ndf::{Alert, AlertKind, AlertSink};

#[derive(Clone, Default)]
struct Collect(Arc<Mutex<Vec<Alert>>>);

impl AlertSink for Collect {
    fn send(&self, alert: &Alert) {
        self.0.lock().unwrap().push(alert.clone());
    }
}

impl Collect {
    fn kinds(&self) -> Vec<AlertKind> {
        self.0.lock().unwrap().iter().map(|a| a.kind).collect()
    }
}

/// How long a call takes, and whether it fails.
#[derive(Clone, Copy)]
struct Call {
    ms: u64,
    fail: bool,
}

#[pattern]
async fn handle(call: Call) -> Result<u64, StepError> {
    tokio::time::sleep(Duration::from_millis(call.ms)).await;
    if call.fail {
        Err(StepError::msg("upstream said no"))
    } else {
        Ok(call.ms)
    }
}

/// Confidence gating off (threshold 0), so that every run runs.
fn ndf(sink: impl AlertSink) -> Ndf {
    ndf_with_threshold(sink, 0.0)
}

fn ndf_with_threshold(sink: impl AlertSink, confidence_threshold: f64) -> Ndf {
    let mut config = Config::default();
    config.confidence_threshold = confidence_threshold;
    config.min_samples = 5;
    config.error_tolerance = 0.2;
    config.latency_alert = Some(Duration::from_millis(500));
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .alert_sink(sink)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_report_counts_runs_in_the_window_with_percentiles() {
    let ndf = ndf(Collect::default());
    let flow = sequential!(name = "api.handle"; handle);
    let ctx = PatternContext::new("api");
    // An hour ago: ten slow failures, outside the window.
    for _ in 0..10 {
        let _ = ndf
            .run(
                &flow,
                Call {
                    ms: 2000,
                    fail: true,
                },
                &ctx,
            )
            .await;
    }
    tokio::time::sleep(Duration::from_hours(1)).await;
    for ms in 1..=100 {
        ndf.run(
            &flow,
            Call {
                ms,
                fail: ms % 10 == 0,
            },
            &ctx,
        )
        .await
        .ok();
    }
    let report = ndf.report(Duration::from_mins(10));
    let row = report
        .patterns
        .iter()
        .find(|p| p.pattern == "api.handle")
        .expect("a row for the workflow");
    assert_eq!(
        (row.kind, row.executions, row.successes, row.failures),
        ("workflow", 100, 90, 10)
    );
    assert_eq!(row.success_rate, Some(0.9));
    let latency = row.latency.expect("percentiles");
    assert_eq!(
        (latency.p50_ms, latency.p95_ms, latency.p99_ms),
        (50.0, 95.0, 99.0)
    );
    let step = report
        .patterns
        .iter()
        .find(|p| p.pattern == "handle")
        .expect("a row for the step");
    assert_eq!(
        (step.kind, step.executions),
        ("step", 110),
        "steps report totals"
    );
    assert!(row.confidence.is_some() && !row.confidence_trend.is_empty());

    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["window_secs"], 600.0);
    assert_eq!(json["patterns"][0]["pattern"], "api.handle");
    assert_eq!(json["patterns"][0]["latency"]["p95_ms"], 95.0);
}

#[tokio::test(start_paused = true)]
async fn recommendations_point_at_what_goes_wrong() {
    let ndf = ndf(Collect::default());
    let flow = sequential!(name = "api.flaky"; handle);
    let ctx = PatternContext::new("api");
    for i in 0..10 {
        let _ = ndf
            .run(
                &flow,
                Call {
                    ms: 10,
                    fail: i % 2 == 0,
                },
                &ctx,
            )
            .await;
    }
    let report = ndf.report(Duration::from_mins(10));
    let row = report
        .patterns
        .iter()
        .find(|p| p.pattern == "api.flaky")
        .unwrap();
    assert!(
        row.recommendations
            .iter()
            .any(|r| r.contains("success rate 50% is below the 80%")
                && r.contains("`handle` failed most")),
        "{:?}",
        row.recommendations
    );
}

#[tokio::test(start_paused = true)]
async fn alerts_fire_once_per_crossing() {
    let sink = Collect::default();
    let ndf = ndf(sink.clone());
    let flow = sequential!(name = "api.alerting"; handle);
    let ctx = PatternContext::new("api");
    for _ in 0..5 {
        ndf.run(
            &flow,
            Call {
                ms: 10,
                fail: false,
            },
            &ctx,
        )
        .await
        .unwrap();
    }
    assert!(sink.kinds().is_empty());
    // Slow now: p95 crosses 500 ms once, and stays above.
    for _ in 0..20 {
        ndf.run(
            &flow,
            Call {
                ms: 800,
                fail: false,
            },
            &ctx,
        )
        .await
        .unwrap();
    }
    assert_eq!(sink.kinds(), [AlertKind::Latency]);
    // Failing now: the success rate crosses 80%, once.
    for _ in 0..60 {
        let _ = ndf
            .run(
                &flow,
                Call {
                    ms: 800,
                    fail: true,
                },
                &ctx,
            )
            .await;
    }
    assert_eq!(sink.kinds(), [AlertKind::Latency, AlertKind::SuccessRate]);
    let alerts = sink.0.lock().unwrap();
    let rate = &alerts[1];
    assert!(
        rate.message
            .starts_with("`api.alerting` in `api`: success rate"),
        "{}",
        rate.message
    );
    assert!((rate.threshold - 0.8).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn falling_confidence_alerts_once_per_pattern() {
    let sink = Collect::default();
    let ndf = ndf_with_threshold(sink.clone(), 0.6);
    let flow = sequential!(name = "api.sinking"; handle);
    let ctx = PatternContext::new("api");
    for _ in 0..5 {
        ndf.run(&flow, Call { ms: 1, fail: false }, &ctx)
            .await
            .unwrap();
    }
    for _ in 0..20 {
        let _ = ndf.run(&flow, Call { ms: 1, fail: true }, &ctx).await;
    }
    let alerts = sink.0.lock().unwrap();
    let confidence: Vec<&str> = alerts
        .iter()
        .filter(|a| a.kind == AlertKind::Confidence)
        .map(|a| a.pattern.as_str())
        .collect();
    assert_eq!(
        confidence,
        ["api.sinking", "handle"],
        "the workflow and its step, once each"
    );
}

#[pattern]
async fn switchable(down: bool) -> Result<(), StepError> {
    if down {
        Err(StepError::msg("down"))
    } else {
        Ok(())
    }
}

/// Refused calls count against the success-rate alert: failures alone stay
/// within the tolerance here, and the refusals that follow raise it.
#[tokio::test(start_paused = true)]
async fn refusals_raise_the_success_rate_alert() {
    let sink = Collect::default();
    let mut config = Config::default();
    config.min_samples = 4;
    config.gate_alpha = 0.2;
    config.error_tolerance = 0.5;
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .alert_sink(sink.clone())
        .config(config)
        .build()
        .unwrap();
    let flow = sequential!(name = "ops.switchable"; switchable);
    let ctx = PatternContext::new("ops");
    for _ in 0..20 {
        ndf.run(&flow, false, &ctx).await.unwrap();
    }
    for _ in 0..4 {
        let _ = ndf.run(&flow, true, &ctx).await;
    }
    let success_rate = |sink: &Collect| {
        sink.0
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.kind == AlertKind::SuccessRate && a.pattern == "ops.switchable")
            .count()
    };
    assert_eq!(success_rate(&sink), 0, "20 of 24 succeeded: within 50%");
    for _ in 0..20 {
        let err = ndf.run(&flow, false, &ctx).await.unwrap_err();
        assert!(
            matches!(err, ndf::Error::ConfidenceThreshold { .. }),
            "{err}"
        );
    }
    assert_eq!(success_rate(&sink), 1, "20 of 44 calls served: below 50%");
}

#[tokio::test]
async fn stored_runs_keep_their_wall_clock_time_and_age_out_of_windows() {
    use ndf::{LearningStore, MemoryStore, RecentRun, StoredStats};
    let now_ms = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap();
    // Older than the machine's monotonic clock can reach back to.
    let long_ago = now_ms - 400 * 24 * 3_600_000;
    let store = MemoryStore::new();
    let row = StoredStats {
        pattern: "shop.checkout".into(),
        domain: "shop".into(),
        recent: vec![RecentRun {
            at_unix_ms: long_ago,
            latency_us: 1_000,
            ok: false,
        }],
        ..StoredStats::default()
    };
    store.save(&[row]).unwrap();
    let ndf = Ndf::builder()
        .store(store.clone())
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let flow = sequential!(name = "shop.checkout"; handle);
    ndf.run(
        &flow,
        Call { ms: 1, fail: false },
        &PatternContext::new("shop"),
    )
    .await
    .unwrap();
    let report = ndf.report(Duration::from_hours(24));
    let checkout = report
        .patterns
        .iter()
        .find(|p| p.pattern == "shop.checkout")
        .unwrap();
    assert_eq!(
        (checkout.executions, checkout.successes),
        (1, 1),
        "the stored run, 400 days old, is not in the last day"
    );
    let year = ndf.report(Duration::from_hours(24 * 500));
    let checkout = year
        .patterns
        .iter()
        .find(|p| p.pattern == "shop.checkout")
        .unwrap();
    assert_eq!(checkout.executions, 2, "it is in the last 500 days");
    ndf.shutdown().await.unwrap();
    let kept = store.load().unwrap();
    let checkout = kept.iter().find(|r| r.pattern == "shop.checkout").unwrap();
    assert_eq!(
        checkout.recent.first().map(|r| r.at_unix_ms),
        Some(long_ago),
        "saved again as it was, not re-dated to now"
    );
}

/// `fired` or `resolved`, the kind, the pattern.
type Page = (&'static str, AlertKind, String);

/// A pager: what fired and what resolved, in order.
#[derive(Clone, Default)]
struct Pager(Arc<Mutex<Vec<Page>>>);

impl AlertSink for Pager {
    fn send(&self, alert: &Alert) {
        let who = alert.pattern.clone();
        self.0.lock().unwrap().push(("fired", alert.kind, who));
    }

    fn resolve(&self, alert: &Alert) {
        let who = alert.pattern.clone();
        self.0.lock().unwrap().push(("resolved", alert.kind, who));
    }
}

#[tokio::test(start_paused = true)]
async fn an_incident_fires_once_and_resolves_once_when_the_condition_clears() {
    let pager = Pager::default();
    let ndf = ndf(pager.clone());
    let flow = sequential!(name = "api.paging"; handle);
    let ctx = PatternContext::new("api");
    let call = |fail| Call { ms: 1, fail };
    for _ in 0..20 {
        ndf.run(&flow, call(false), &ctx).await.unwrap();
    }
    // 30 % failing: below 80 %, one page.
    for i in 0..100 {
        let _ = ndf.run(&flow, call(i % 10 < 3), &ctx).await;
    }
    // Hovering around the threshold (20-25 % failing): no page, no
    // resolution.
    for i in 0..200 {
        let _ = ndf.run(&flow, call(i % 9 < 2), &ctx).await;
    }
    assert_eq!(
        *pager.0.lock().unwrap(),
        [("fired", AlertKind::SuccessRate, "api.paging".to_owned())]
    );
    // Healthy: the incident resolves, once.
    for _ in 0..150 {
        ndf.run(&flow, call(false), &ctx).await.unwrap();
    }
    assert_eq!(
        *pager.0.lock().unwrap(),
        [
            ("fired", AlertKind::SuccessRate, "api.paging".to_owned()),
            ("resolved", AlertKind::SuccessRate, "api.paging".to_owned())
        ]
    );
    assert!(ndf.alerts().is_empty(), "{:?}", ndf.alerts());
}

#[tokio::test(start_paused = true)]
async fn a_confidence_alert_resolves_when_the_breaker_closes_again() {
    let pager = Pager::default();
    let mut config = Config::default();
    config.confidence_threshold = 0.6;
    config.min_samples = 5;
    config.break_duration = Duration::from_secs(10);
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .alert_sink(pager.clone())
        .build()
        .unwrap();
    let flow = sequential!(name = "api.recovering"; handle);
    let ctx = PatternContext::new("api");
    for _ in 0..20 {
        let _ = ndf.run(&flow, Call { ms: 1, fail: true }, &ctx).await;
    }
    let fired = |pager: &Pager, what: &str| {
        pager
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(w, kind, _)| *w == what && *kind == AlertKind::Confidence)
            .count()
    };
    assert_eq!(fired(&pager, "fired"), 2, "the workflow and its step");
    assert_eq!(fired(&pager, "resolved"), 0);
    // Past the break, the probes succeed and the breakers close.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for _ in 0..20 {
        let _ = ndf.run(&flow, Call { ms: 1, fail: false }, &ctx).await;
    }
    assert_eq!(
        fired(&pager, "resolved"),
        2,
        "{:?}",
        pager.0.lock().unwrap()
    );
    assert!(
        ndf.alerts().iter().all(|a| a.kind != AlertKind::Confidence),
        "{:?}",
        ndf.alerts()
    );
}

/// A busy workflow's report counts every run of the window, not the last
/// 1 024 its ring keeps, and its percentiles come within a bin (19 %) of
/// the exact ones.
#[tokio::test(start_paused = true)]
async fn a_busy_workflows_report_counts_the_whole_window() {
    let mut config = Config::default();
    config.confidence_threshold = 0.0;
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let flow = sequential!(name = "api.handle"; handle);
    let ctx = PatternContext::new("api");
    let mut latencies = Vec::new();
    for n in 0..5_000u64 {
        let call = Call {
            ms: 1 + n % 40,
            fail: n % 10 == 0,
        };
        latencies.push(call.ms as f64);
        let _ = ndf.run(&flow, call, &ctx).await;
    }
    let stats = ndf.stats("api.handle", "api").unwrap();
    assert_eq!(stats.executions, 5_000);
    let report = ndf.report(Duration::from_hours(1));
    let row = report
        .patterns
        .iter()
        .find(|p| p.pattern == "api.handle")
        .unwrap();
    assert_eq!(
        (row.executions, row.failures),
        (stats.executions, stats.failures),
        "the report agrees with the counters"
    );
    latencies.sort_by(f64::total_cmp);
    let latency = row.latency.unwrap();
    // Nearest ranks of 5 000 runs.
    for (got, rank, name) in [
        (latency.p50_ms, 2_500, "p50"),
        (latency.p95_ms, 4_750, "p95"),
        (latency.p99_ms, 4_950, "p99"),
    ] {
        let want = latencies[rank - 1];
        assert!(
            (got / want - 1.0).abs() < 0.19,
            "{name}: {got:.2} ms against {want:.2} ms"
        );
    }
    // Ten minutes on, 1 500 quick runs: a minute's window counts them
    // all (more than the ring holds), and none of the earlier ones.
    tokio::time::sleep(Duration::from_mins(10)).await;
    for _ in 0..1_500 {
        let call = Call { ms: 1, fail: false };
        ndf.run(&flow, call, &ctx).await.unwrap();
    }
    let minute = ndf.report(Duration::from_mins(1));
    let row = minute
        .patterns
        .iter()
        .find(|p| p.pattern == "api.handle")
        .unwrap();
    assert_eq!((row.executions, row.failures), (1_500, 0));
}
