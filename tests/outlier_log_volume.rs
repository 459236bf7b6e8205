//! Latency outliers under load do not flood the log: the first of a
//! workflow and domain is logged at once, the rest of each 10 s interval
//! in one line with their count, under the `ndf::outlier` target, so that
//! a filter can quiet them and keep the runtime's other warnings. The only
//! test of its binary: the subscriber is process-wide state for tracing's
//! callsite cache.

mod common;

use std::time::Duration;

use ndf::prelude::*;

#[pattern]
async fn lookup(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    ms
}

/// The number in `field=` of `line`.
fn field(line: &str, field: &str) -> Option<u64> {
    let at = line.find(&format!("{field}="))? + field.len() + 1;
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn outliers_are_counted_per_interval_under_their_own_target() {
    let (log, _guard) = common::capture_at_info();
    let rt = common::paused_runtime();
    let ndf = common::ndf_alone();
    let outliers = rt.block_on(async {
        let flow = sequential!(name = "search.lookup"; lookup);
        let ctx = PatternContext::new("search");
        // About 51 s of traffic: one run in 20 is far slower than the rest.
        for i in 0..2000 {
            let ms = if i % 20 == 19 { 300 } else { 10 + i % 3 };
            ndf.run(&flow, ms, &ctx).await.unwrap();
        }
        // The last interval's count is logged once it is over.
        tokio::time::sleep(Duration::from_secs(11)).await;
        ndf.run(&flow, 10, &ctx).await.unwrap();
        ndf.stats("search.lookup", "search").unwrap().outliers
    });
    let text = log.text();
    let outlier_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("ndf::outlier"))
        .collect();
    assert_eq!(outliers, 100, "every slow run was flagged");
    // One line at once, then one per 10 s interval of the 51 s (the last
    // logged after the pause): 6, where one a run made 100.
    assert_eq!(
        outlier_lines.len(),
        6,
        "{} lines for {outliers} outliers: {outlier_lines:#?}",
        outlier_lines.len()
    );
    assert!(outlier_lines[0].contains("latency outlier") && outlier_lines[0].contains("WARN"));
    // Nothing is lost: the first, plus the counts of the others.
    let counted: u64 = outlier_lines
        .iter()
        .map(|l| field(l, "count").unwrap_or(1))
        .sum();
    assert_eq!(counted, outliers, "{outlier_lines:#?}");
    assert!(
        outlier_lines
            .iter()
            .all(|l| l.contains("pattern=\"search.lookup\"") && l.contains("domain=\"search\"")),
        "{outlier_lines:#?}"
    );
}
