//! What the statistics hold for a report.

use std::collections::HashMap;

use tokio::time::Instant;

use super::confidence::Prior;
use super::stats::{PatternStats, StatsTable};
use crate::telemetry::ReportRow;

impl StatsTable {
    /// What a report shows of every (pattern, domain): workflows with their
    /// runs since `since`, steps with their totals.
    pub(crate) fn report_rows(&self, since: Instant, prior: Prior) -> Vec<ReportRow> {
        let tables = self.lock();
        let confidence = |pattern: &str, domain: &str| {
            tables
                .slots
                .get(&(pattern.to_owned(), domain.to_owned()))
                .map(|i| &tables.confidence[*i])
        };
        let mut rows: Vec<ReportRow> = Vec::new();
        for (name, entries) in &tables.workflows {
            for e in entries {
                let slot = confidence(name, &e.domain);
                let worst_step = e
                    .steps
                    .iter()
                    .zip(&e.step_stats)
                    .filter(|(_, s)| s.failures > 0)
                    .max_by_key(|(_, s)| s.failures)
                    .map(|(step, s)| ((*step).to_owned(), s.failures));
                let earlier = tables
                    .baseline_recent
                    .get(&((*name).to_owned(), e.domain.to_string()))
                    .into_iter()
                    .flatten();
                rows.push(ReportRow {
                    pattern: (*name).to_owned(),
                    domain: e.domain.to_string(),
                    workflow: true,
                    totals: e.run,
                    recent: earlier
                        .chain(e.recent.iter())
                        .filter(|(at, _, _)| *at >= since)
                        .map(|(_, d, ok)| (*d, *ok))
                        .collect(),
                    confidence: slot.map(|s| s.evidence.confidence(prior)),
                    trend: slot
                        .map(|s| s.trend.iter().copied().collect())
                        .unwrap_or_default(),
                    worst_step,
                });
            }
        }
        let mut steps: HashMap<(String, String), PatternStats> = HashMap::new();
        for entries in tables.workflows.values() {
            for e in entries {
                for (step, stats) in e.steps.iter().zip(&e.step_stats) {
                    if stats.executions > 0 || stats.held_back > 0 {
                        steps
                            .entry(((*step).to_owned(), e.domain.to_string()))
                            .or_default()
                            .merge(stats);
                    }
                }
            }
        }
        for ((pattern, domain), totals) in steps {
            if rows
                .iter()
                .any(|r| r.pattern == pattern && r.domain == domain)
            {
                continue;
            }
            let slot = confidence(&pattern, &domain);
            rows.push(ReportRow {
                confidence: slot.map(|s| s.evidence.confidence(prior)),
                trend: slot
                    .map(|s| s.trend.iter().copied().collect())
                    .unwrap_or_default(),
                pattern,
                domain,
                workflow: false,
                totals,
                recent: Vec::new(),
                worst_step: None,
            });
        }
        rows.sort_by(|a, b| (&a.pattern, &a.domain).cmp(&(&b.pattern, &b.domain)));
        rows
    }
}
