//! The `prometheus` feature serves the runtime's metrics on `/metrics`.

mod common;

use std::net::TcpListener;

use ndf::prelude::*;

#[pattern]
async fn measure(n: u32) -> u32 {
    n * 2
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_in_prometheus_format() {
    // A free loopback port.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    ndf::serve_prometheus(addr).unwrap();

    // Metrics are emitted as runs are learned: learn each one as it ends.
    let mut config = Config::default();
    config.learning_batch = 1;
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let flow = sequential!(name = "obs.metered"; measure);
    for n in 0..3 {
        ndf.run(&flow, n, &PatternContext::new("obs"))
            .await
            .unwrap();
    }
    // The steps of clean runs are counted with the others, by the learner
    // `learning_interval` after the first.
    tokio::time::sleep(ndf.config().learning_interval * 2).await;
    let (status, page) = tokio::task::spawn_blocking(move || common::http_get(addr, "/metrics"))
        .await
        .unwrap();
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(r#"ndf_runs_total{pattern="obs.metered",outcome="ok"} 3"#),
        "{page}"
    );
    assert!(
        page.contains(
            r#"ndf_step_executions_total{pattern="obs.metered",step="measure",outcome="ok"} 3"#
        ),
        "{page}"
    );
    // A histogram, which adds up across instances, in the documented
    // buckets.
    assert!(
        page.contains("# TYPE ndf_run_duration_seconds histogram"),
        "{page}"
    );
    for bound in ndf::RUN_DURATION_BUCKETS {
        assert!(
            page.contains(&format!(
                "ndf_run_duration_seconds_bucket{{pattern=\"obs.metered\",le=\"{bound}\"}}"
            )),
            "no bucket at {bound}: {page}"
        );
    }
    assert!(
        page.contains(r#"ndf_run_duration_seconds_count{pattern="obs.metered"} 3"#),
        "{page}"
    );
    // Every metric says what it is.
    let typed: Vec<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with("ndf_"))
        .collect();
    assert!(typed.len() >= 4, "{typed:?}");
    for name in typed {
        assert!(
            page.lines()
                .any(|l| l.starts_with(&format!("# HELP {name} ")) && l.len() > name.len() + 20),
            "no # HELP for {name}: {page}"
        );
    }

    let again = ndf::serve_prometheus(addr).unwrap_err();
    assert!(matches!(again, ndf::Error::Telemetry(_)), "{again}");
    let unordered = ndf::serve_prometheus_with_buckets(addr, &[0.1, 0.05]).unwrap_err();
    assert!(unordered.to_string().contains("ascending"), "{unordered}");
}
