//! What the statistics answer when asked: a pattern's counters,
//! confidence and breaker, and resetting what its gate learned.

use super::table::StatsTable;
use crate::model::{BreakerState, Confidence, PatternStats, Prior};

impl StatsTable {
    /// The confidence of `pattern` in `domain`, if it was ever learned.
    pub(crate) fn confidence(
        &self,
        pattern: &str,
        domain: &str,
        prior: Prior,
    ) -> Option<Confidence> {
        let evidence = self.lock().slot(pattern, domain)?.evidence;
        (evidence.samples > 0).then(|| evidence.confidence(prior))
    }

    /// The state of the breaker of `pattern` in `domain`.
    pub(crate) fn breaker(&self, pattern: &str, domain: &str) -> Option<BreakerState> {
        Some(self.lock().slot(pattern, domain)?.breaker.state())
    }

    /// Clears the confidence evidence and the breaker of `pattern` in
    /// `domain`; whether it had any.
    pub(crate) fn reset(&self, pattern: &str, domain: &str) -> bool {
        let mut tables = self.lock();
        let Some(slot) = tables
            .slots
            .get(&(pattern.to_owned(), domain.to_owned()))
            .copied()
        else {
            return false;
        };
        if tables.confidence[slot].reset() {
            tables.reset_reported(pattern, domain, slot);
        }
        true
    }

    /// The statistics of `pattern` (a workflow or step name) in `domain`.
    pub(crate) fn get(&self, pattern: &str, domain: &str) -> Option<PatternStats> {
        let tables = self.lock();
        let mut found = tables
            .baseline
            .get(&(pattern.to_owned(), domain.to_owned()))
            .copied();
        for e in tables.entries.iter().filter(|e| &*e.domain == domain) {
            let name = &e.name;
            if *name == pattern {
                found.get_or_insert_default().merge(&e.run);
            }
            for (step, stats) in e.steps.iter().zip(&e.step_stats) {
                if *step == pattern
                    && (stats.executions > 0
                        || stats.compensations > 0
                        || stats.held_back > 0
                        || stats.rejected > 0)
                {
                    found.get_or_insert_default().merge(stats);
                }
            }
        }
        found
    }
}
