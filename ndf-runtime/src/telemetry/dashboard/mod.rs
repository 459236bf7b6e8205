//! What the dashboard shows, as data: [`crate::Ndf::dashboard`]. The
//! `dashboard` feature serves it as JSON beside an HTML page that draws it.

#[cfg(feature = "dashboard")]
mod server;

#[cfg(feature = "dashboard")]
pub use server::{DashboardHandle, DashboardOptions};
#[cfg(feature = "dashboard")]
pub(crate) use server::{DashboardSource, router, serve};

use std::time::Duration;

use super::{Alert, PatternReport, Report};
use crate::config::Config;
use crate::gating::ResourceUsage;
use crate::model::{BreakerState, Clock, Confidence, TimelinePoint};

/// Points of each response-time series the dashboard draws (an hour of
/// the default 30 s points).
const CHART_POINTS: usize = 120;
/// Bins of the confidence histogram, each a tenth of 0..=1.
const BINS: usize = 10;
/// Workflows (per domain) the charts draw: the busiest of the last 24 hours.
const CHART_SERIES: usize = 12;
/// Pattern rows in a dashboard unless asked for more, and the most asked.
const DEFAULT_ROWS: usize = 100;
const MAX_ROWS: usize = 1_000;
const DAY_MS: u64 = 24 * 60 * 60 * 1000;

/// Everything the dashboard page draws, serializable with serde.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Dashboard {
    /// When this was read, in milliseconds since the Unix epoch.
    pub generated_at_unix_ms: u64,
    /// The numbers at the top of the page (of every pattern and domain).
    pub overview: Overview,
    /// A page of the rows, one per pattern (workflow or step) and domain,
    /// in order of attention: held back first, then most failures, then
    /// most runs, then by name ([`DashboardQuery`] says which page).
    pub patterns: Vec<PatternPanel>,
    /// How many rows there are in all (in the queried domain, if any).
    pub patterns_total: usize,
    /// CPU and memory use with their limits.
    pub resources: Resources,
    /// Alerts raised and not cleared since.
    pub alerts: Vec<Alert>,
    /// Response time of the busiest workflows (per domain) of the last 24
    /// hours over their recent points, at most 12.
    pub response_time: Vec<ResponseSeries>,
    /// Runs of the same workflows in the last 24 hours.
    pub usage: Vec<Usage>,
    /// How many patterns have a confidence mean in each tenth of 0..=1.
    pub confidence_histogram: Vec<HistogramBin>,
}

/// The numbers at the top of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct Overview {
    /// Workflow runs since midnight (UTC).
    pub executions_today: u64,
    /// Workflow runs in the last 24 hours.
    pub executions_24h: u64,
    /// Of those, the failed ones.
    pub failures_24h: u64,
    /// Workflow calls refused by their gate in the last 24 hours (not in
    /// `executions_24h`: they did not run).
    pub refused_24h: u64,
    /// Of the workflow calls of the last 24 hours, the share served:
    /// successful runs over runs and refusals.
    pub success_rate_24h: Option<f64>,
    /// Mean response time of the workflow runs of the last 24 hours, in
    /// milliseconds.
    pub avg_response_ms: Option<f64>,
    /// Workflows (per domain) that ran in the last 24 hours.
    pub active_patterns: usize,
    /// Patterns (workflows and steps, per domain) with fewer outcomes than
    /// `min_samples`: their confidence gates nothing yet.
    pub learning_patterns: usize,
}

/// One pattern in one domain.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[non_exhaustive]
pub struct PatternPanel {
    /// The pattern's name.
    pub pattern: String,
    /// The domain of its runs.
    pub domain: String,
    /// `workflow` or `step`.
    pub kind: &'static str,
    /// Runs in the last 24 hours (workflows), or in total (steps).
    pub executions: u64,
    /// Of those, the failed ones.
    pub failures: u64,
    /// Calls refused by its gate in the last 24 hours (workflows), or in
    /// total (steps held back).
    pub refused: u64,
    /// Successful runs over runs and refusals; absent without calls.
    pub success_rate: Option<f64>,
    /// Median latency of its recent runs, in milliseconds (workflows).
    pub p50_ms: Option<f64>,
    /// 95th percentile latency of its recent runs, in milliseconds.
    pub p95_ms: Option<f64>,
    /// Retries, in total.
    pub retries: u64,
    /// Runs served by a fallback, in total.
    pub fallbacks: u64,
    /// Runs served by a lower `degrade!` level, in total.
    pub degradations: u64,
    /// Times held back by low confidence, in total.
    pub held_back: u64,
    /// The current confidence.
    pub confidence: Option<Confidence>,
    /// Recent confidence means, oldest first.
    pub confidence_trend: Vec<f64>,
    /// The state of its gate: `closed`, `open` or `half_open`.
    pub breaker: BreakerState,
    /// `held back` (its gate is open or half-open), `learning` (fewer
    /// outcomes than `min_samples`), or `trusted`.
    pub status: &'static str,
    /// What to look at, in a sentence each.
    pub recommendations: Vec<String>,
}

/// CPU and memory use, as fractions of the machine, with their limits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Resources {
    /// CPU use.
    pub cpu: f64,
    /// Memory use.
    pub memory: f64,
    /// `Config::cpu_limit`.
    pub cpu_limit: f64,
    /// `Config::memory_limit`.
    pub memory_limit: f64,
}

/// The response time of one workflow in one domain, oldest point first.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ResponseSeries {
    /// The workflow.
    pub pattern: String,
    /// The domain of its runs.
    pub domain: String,
    /// Its most recent points (the last one may be the runs since the last
    /// sample).
    pub points: Vec<TimelinePoint>,
}

/// Runs of one workflow in one domain.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Usage {
    /// The workflow.
    pub pattern: String,
    /// The domain of its runs.
    pub domain: String,
    /// Runs in the last 24 hours.
    pub executions: u64,
}

/// One bin of the confidence histogram: patterns with a mean in
/// `from..to` (the last bin includes 1).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct HistogramBin {
    /// Lower edge.
    pub from: f64,
    /// Upper edge.
    pub to: f64,
    /// Patterns (per domain) in the bin.
    pub count: usize,
}

/// Which rows a dashboard holds: [`crate::Ndf::dashboard_with`], or the
/// query string of the served `/api/dashboard?offset=0&limit=100&domain=eu`.
/// The dashboard is built a bounded page at a time, so that thousands of
/// domains never make one answer of megabytes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DashboardQuery {
    /// Rows to skip (default 0).
    pub offset: usize,
    /// Rows to return, at most 1 000 (default 100).
    pub limit: usize,
    /// Only rows (and charts) of this domain.
    pub domain: Option<String>,
}

impl Default for DashboardQuery {
    fn default() -> Self {
        Self {
            offset: 0,
            limit: DEFAULT_ROWS,
            domain: None,
        }
    }
}

impl DashboardQuery {
    /// The first 100 rows of every domain.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Skips `offset` rows.
    #[must_use]
    pub fn offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Returns at most `limit` rows (1 to 1 000).
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Only rows and charts of `domain`.
    #[must_use]
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }
}

/// What the runtime holds, as the dashboard needs it.
pub(crate) struct Sources {
    pub(crate) report: Report,
    /// Every workflow series' points of the last 24 hours.
    pub(crate) series: Vec<((String, String), Vec<TimelinePoint>)>,
    pub(crate) confidences: Vec<(String, String, Confidence)>,
    pub(crate) alerts: Vec<Alert>,
    pub(crate) usage: ResourceUsage,
}

/// The window of the day's numbers.
pub(crate) const DAY: Duration = Duration::from_millis(DAY_MS);

/// The dashboard of `sources`, read at `now` (milliseconds since the
/// epoch), with the rows `query` asks for.
pub(crate) fn build(
    sources: Sources,
    config: &Config,
    clock: &Clock,
    query: &DashboardQuery,
) -> Dashboard {
    let now = clock.unix_ms;
    let midnight = now - now % DAY_MS;
    let mut overview = Overview {
        executions_today: 0,
        executions_24h: 0,
        failures_24h: 0,
        refused_24h: 0,
        success_rate_24h: None,
        avg_response_ms: None,
        active_patterns: 0,
        learning_patterns: 0,
    };
    let mut latency_sum = 0.0;
    let mut busiest: Vec<(u64, &(String, String), &[TimelinePoint])> = Vec::new();
    let in_domain = |domain: &str| query.domain.as_deref().is_none_or(|d| d == domain);
    for (key, points) in &sources.series {
        let executions: u64 = points.iter().map(|p| p.executions).sum();
        overview.executions_24h += executions;
        overview.failures_24h += points.iter().map(|p| p.failures).sum::<u64>();
        overview.refused_24h += points.iter().map(|p| p.refused).sum::<u64>();
        overview.executions_today += points
            .iter()
            .filter(|p| p.at_unix_ms >= midnight)
            .map(|p| p.executions)
            .sum::<u64>();
        latency_sum += points
            .iter()
            .map(|p| p.mean_ms * p.executions as f64)
            .sum::<f64>();
        overview.active_patterns += usize::from(executions > 0);
        if in_domain(&key.1) {
            busiest.push((executions, key, points));
        }
    }
    let (usage, response_time) = charts(busiest);
    overview.success_rate_24h = success_rate(
        overview.executions_24h,
        overview.failures_24h,
        overview.refused_24h,
    );
    if overview.executions_24h > 0 {
        overview.avg_response_ms = Some(latency_sum / overview.executions_24h as f64);
    }
    let days: std::collections::HashMap<(&str, &str), &[TimelinePoint]> = sources
        .series
        .iter()
        .map(|((p, d), points)| ((p.as_str(), d.as_str()), points.as_slice()))
        .collect();
    let mut patterns: Vec<PatternPanel> = sources
        .report
        .patterns
        .into_iter()
        .map(|row| {
            let day = days
                .get(&(row.pattern.as_str(), row.domain.as_str()))
                .copied();
            panel(row, day, config)
        })
        .collect();
    overview.learning_patterns = patterns.iter().filter(|p| p.status == "learning").count();
    patterns.retain(|p| in_domain(&p.domain));
    let patterns_total = patterns.len();
    patterns.sort_by(|a, b| {
        let held = |p: &PatternPanel| p.breaker == BreakerState::Closed;
        held(a)
            .cmp(&held(b))
            .then_with(|| b.failures.cmp(&a.failures))
            .then_with(|| b.executions.cmp(&a.executions))
            .then_with(|| (&a.pattern, &a.domain).cmp(&(&b.pattern, &b.domain)))
    });
    let patterns: Vec<PatternPanel> = patterns
        .into_iter()
        .skip(query.offset)
        .take(query.limit.clamp(1, MAX_ROWS))
        .collect();
    Dashboard {
        generated_at_unix_ms: now,
        overview,
        patterns,
        patterns_total,
        resources: Resources {
            cpu: sources.usage.cpu,
            memory: sources.usage.memory,
            cpu_limit: config.cpu_limit,
            memory_limit: config.memory_limit,
        },
        alerts: sources.alerts,
        response_time,
        usage,
        confidence_histogram: histogram(sources.confidences.iter().map(|c| c.2.mean)),
    }
}

/// The usage bars and response-time series of the busiest workflows among
/// `busiest` (runs of the last 24 hours, key, points).
fn charts(
    mut busiest: Vec<(u64, &(String, String), &[TimelinePoint])>,
) -> (Vec<Usage>, Vec<ResponseSeries>) {
    busiest.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    busiest.truncate(CHART_SERIES);
    let usage = busiest
        .iter()
        .map(|(executions, (pattern, domain), _)| Usage {
            pattern: pattern.clone(),
            domain: domain.clone(),
            executions: *executions,
        })
        .collect();
    let response_time = busiest
        .iter()
        .map(|(_, (pattern, domain), points)| {
            let skip = points.len().saturating_sub(CHART_POINTS);
            ResponseSeries {
                pattern: pattern.clone(),
                domain: domain.clone(),
                points: points[skip..].to_vec(),
            }
        })
        .collect();
    (usage, response_time)
}

/// The panel of one report row; a workflow's runs and failures are those of
/// its timeline (`day`), which counts every run of the last 24 hours.
fn panel(row: PatternReport, day: Option<&[TimelinePoint]>, config: &Config) -> PatternPanel {
    let (executions, failures, refused) = match (row.kind, day) {
        ("workflow", Some(points)) => (
            points.iter().map(|p| p.executions).sum(),
            points.iter().map(|p| p.failures).sum(),
            points.iter().map(|p| p.refused).sum(),
        ),
        ("workflow", None) => (0, 0, 0),
        _ => (row.executions, row.failures, row.refused),
    };
    let status = match row.confidence {
        _ if row.breaker != BreakerState::Closed => "held back",
        Some(c) if c.samples >= config.min_samples => "trusted",
        _ => "learning",
    };
    PatternPanel {
        success_rate: success_rate(executions, failures, refused),
        executions,
        failures,
        refused,
        breaker: row.breaker,
        p50_ms: row.latency.map(|l| l.p50_ms),
        p95_ms: row.latency.map(|l| l.p95_ms),
        retries: row.retries,
        fallbacks: row.fallbacks,
        degradations: row.degradations,
        held_back: row.held_back,
        confidence: row.confidence,
        confidence_trend: row.confidence_trend,
        status,
        recommendations: row.recommendations,
        pattern: row.pattern,
        domain: row.domain,
        kind: row.kind,
    }
}

/// Successful runs over calls (runs and refusals); `None` without calls.
fn success_rate(executions: u64, failures: u64, refused: u64) -> Option<f64> {
    let calls = executions + refused;
    (calls > 0).then(|| executions.saturating_sub(failures) as f64 / calls as f64)
}

#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "a mean in 0..=1 times BINS is a small bin index"
)]
fn histogram(means: impl Iterator<Item = f64>) -> Vec<HistogramBin> {
    let mut bins: Vec<HistogramBin> = (0..BINS)
        .map(|i| HistogramBin {
            from: i as f64 / BINS as f64,
            to: (i + 1) as f64 / BINS as f64,
            count: 0,
        })
        .collect();
    for mean in means {
        let i = ((mean.clamp(0.0, 1.0) * BINS as f64) as usize).min(BINS - 1);
        bins[i].count += 1;
    }
    bins
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_has_ten_bins_and_puts_one_in_the_last() {
        let bins = histogram([0.0, 0.05, 0.1, 0.55, 0.999, 1.0].into_iter());
        let counts: Vec<usize> = bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, [2, 1, 0, 0, 0, 1, 0, 0, 0, 2]);
        assert_eq!((bins[0].from, bins[9].to), (0.0, 1.0));
    }

    fn at(at_unix_ms: u64, executions: u64, failures: u64, mean_ms: f64) -> TimelinePoint {
        TimelinePoint {
            refused: 0,
            at_unix_ms,
            executions,
            failures,
            mean_ms,
            p95_ms: mean_ms,
            confidence: 0.9,
        }
    }

    #[test]
    fn the_overview_weighs_latency_by_runs_and_counts_today_from_midnight() {
        let midnight = 20_000 * DAY_MS;
        let clock = Clock {
            instant: tokio::time::Instant::now(),
            unix_ms: midnight + 1000,
        };
        let sources = Sources {
            report: Report {
                window_secs: 86_400.0,
                patterns: Vec::new(),
            },
            series: vec![
                (
                    ("a.one".into(), "d".into()),
                    vec![at(midnight - 10, 3, 1, 10.0), at(midnight + 10, 1, 0, 50.0)],
                ),
                (
                    ("a.two".into(), "d".into()),
                    vec![at(midnight + 20, 0, 0, 0.0)],
                ),
            ],
            confidences: Vec::new(),
            alerts: Vec::new(),
            usage: ResourceUsage {
                cpu: 0.25,
                memory: 0.5,
            },
        };
        let d = build(
            sources,
            &Config::default(),
            &clock,
            &DashboardQuery::default(),
        );
        let o = d.overview;
        assert_eq!(
            (o.executions_24h, o.failures_24h, o.executions_today),
            (4, 1, 1)
        );
        assert_eq!(o.success_rate_24h, Some(0.75));
        assert_eq!(o.avg_response_ms, Some((3.0 * 10.0 + 50.0) / 4.0));
        assert_eq!(o.active_patterns, 1, "a.two ran nothing");
        assert_eq!((d.resources.cpu, d.resources.cpu_limit), (0.25, 0.8));
        assert_eq!(d.usage.len(), 2);
    }
}
