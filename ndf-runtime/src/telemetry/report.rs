//! `Ndf::report`: counts, rates, latency percentiles, confidence trend and
//! short recommendations, per pattern and domain, serializable.

use std::time::Duration;

use super::percentile;
use crate::config::Config;
use crate::learning::{InWindow, ReportRow};
use crate::model::{BreakerState, Confidence};

/// Latency percentiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// One pattern in one domain.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct PatternReport {
    /// The pattern's name.
    pub pattern: String,
    /// The domain of its runs.
    pub domain: String,
    /// `workflow` or `step`.
    pub kind: &'static str,
    /// Runs in the window (workflows), or in total (steps).
    pub executions: u64,
    /// Of those, the successful ones.
    pub successes: u64,
    /// Of those, the failed ones.
    pub failures: u64,
    /// Calls refused by the pattern's gate in the window (workflows), or in
    /// total (steps held back): they did not run, so they are not in
    /// `executions`.
    pub refused: u64,
    /// `successes / (executions + refused)`: of the calls made, the share
    /// served; absent without calls.
    pub success_rate: Option<f64>,
    /// Latency of the runs in the window (workflows only).
    pub latency: Option<Percentiles>,
    /// Retries, in total.
    pub retries: u64,
    /// Runs served by a fallback, in total.
    pub fallbacks: u64,
    /// Runs served by a lower `degrade!` level, in total.
    pub degradations: u64,
    /// Times held back by low confidence, in total.
    pub held_back: u64,
    /// Latency outliers, in total.
    pub outliers: u64,
    /// The current confidence.
    pub confidence: Option<Confidence>,
    /// The state of the pattern's gate.
    pub breaker: BreakerState,
    /// Recent confidence means, oldest first.
    pub confidence_trend: Vec<f64>,
    /// What to look at, in a sentence each.
    pub recommendations: Vec<String>,
}

/// A report over a window of time: [`crate::Ndf::report`].
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// The window, in seconds.
    pub window_secs: f64,
    /// One entry per pattern and domain, sorted.
    pub patterns: Vec<PatternReport>,
}

/// The report of `rows`.
pub(crate) fn build(rows: Vec<ReportRow>, window: Duration, config: &Config) -> Report {
    let patterns = rows
        .into_iter()
        .map(|row| pattern_report(row, config))
        .collect();
    Report {
        window_secs: window.as_secs_f64(),
        patterns,
    }
}

fn pattern_report(row: ReportRow, config: &Config) -> PatternReport {
    let (executions, successes, refused, latency) = if row.workflow {
        let (executions, successes, latency) = in_window(&row.runs);
        (executions, successes, row.refused, latency)
    } else {
        (
            row.totals.executions,
            row.totals.successes,
            row.totals.held_back,
            None,
        )
    };
    let calls = executions + refused;
    let success_rate = (calls > 0).then(|| successes as f64 / calls as f64);
    let recommendations = recommend(&row, success_rate, config);
    PatternReport {
        pattern: row.pattern,
        domain: row.domain,
        kind: if row.workflow { "workflow" } else { "step" },
        executions,
        successes,
        failures: executions - successes,
        refused,
        success_rate,
        latency,
        retries: row.totals.retries,
        fallbacks: row.totals.fallbacks,
        degradations: row.totals.degradations,
        held_back: row.totals.held_back,
        outliers: row.totals.outliers,
        confidence: row.confidence,
        breaker: row.breaker,
        confidence_trend: row.trend,
        recommendations,
    }
}

/// The runs, successes and latency percentiles of a window: exact from
/// every run listed, or read from the bins of its periods.
fn in_window(runs: &InWindow) -> (u64, u64, Option<Percentiles>) {
    match runs {
        InWindow::Listed(runs) => {
            let ok = runs.iter().filter(|(_, ok)| *ok).count() as u64;
            let mut latencies: Vec<Duration> = runs.iter().map(|(d, _)| *d).collect();
            latencies.sort_unstable();
            let ms = |q| percentile(&latencies, q).as_secs_f64() * 1000.0;
            let latency = (!latencies.is_empty()).then(|| Percentiles {
                p50_ms: ms(0.5),
                p95_ms: ms(0.95),
                p99_ms: ms(0.99),
            });
            (runs.len() as u64, ok, latency)
        }
        InWindow::Binned(summary) => {
            let ms = |q| summary.quantile(q).map(|d| d.as_secs_f64() * 1000.0);
            let latency = match (ms(0.5), ms(0.95), ms(0.99)) {
                (Some(p50_ms), Some(p95_ms), Some(p99_ms)) => Some(Percentiles {
                    p50_ms,
                    p95_ms,
                    p99_ms,
                }),
                _ => None,
            };
            (
                summary.executions,
                summary.executions - summary.failures,
                latency,
            )
        }
    }
}

fn recommend(row: &ReportRow, success_rate: Option<f64>, config: &Config) -> Vec<String> {
    let mut out = Vec::new();
    let floor = 1.0 - config.error_tolerance;
    if let Some(rate) = success_rate
        && rate < floor
    {
        let culprit = row
            .worst_step
            .as_ref()
            .map(|(step, n)| format!("; `{step}` failed most ({n} times)"))
            .unwrap_or_default();
        out.push(format!(
            "success rate {:.0}% is below the {:.0}% the config tolerates{culprit}",
            rate * 100.0,
            floor * 100.0
        ));
    }
    let t = &row.totals;
    if t.executions > 0 && t.retries as f64 / t.executions as f64 > 0.5 {
        out.push(format!(
            "{:.1} retries per run: look at timeouts and transient failures",
            t.retries as f64 / t.executions as f64
        ));
    }
    if t.held_back > 0 {
        out.push(format!("held back {} times by low confidence", t.held_back));
    }
    if t.degradations > 0 {
        out.push(format!(
            "served by a lower degradation level {} times",
            t.degradations
        ));
    }
    if t.outliers > 0 {
        out.push(format!("{} latency outliers", t.outliers));
    }
    if let (Some(first), Some(last)) = (row.trend.first(), row.trend.last())
        && last - first < -0.1
    {
        out.push(format!("confidence is falling ({first:.2} to {last:.2})"));
    }
    out
}
