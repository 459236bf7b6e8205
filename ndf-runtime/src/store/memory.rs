//! [`MemoryStore`]: learning data kept in memory, shared by its clones.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::LearningStore;
use crate::error::StoreError;
use crate::model::{PatternStats, StoredPoint, StoredStats};

/// A store in memory: for tests, and for services that do not keep learning
/// data across restarts. Clones share the same data.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    rows: Arc<Mutex<BTreeMap<Key, Row>>>,
    timeline: Arc<Mutex<Vec<StoredPoint>>>,
}

/// (pattern, domain).
type Key = (String, String);
/// What is stored of one key: the row as saved, less its key and `added`.
type Row = StoredStats;

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl LearningStore for MemoryStore {
    fn load(&self) -> Result<Vec<StoredStats>, StoreError> {
        let rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(rows
            .values()
            .map(|row| StoredStats {
                added: PatternStats::default(),
                ..row.clone()
            })
            .collect())
    }

    fn save(&self, new_rows: &[StoredStats]) -> Result<(), StoreError> {
        let mut rows = self.rows.lock().unwrap_or_else(PoisonError::into_inner);
        for row in new_rows {
            rows.insert((row.pattern.clone(), row.domain.clone()), row.clone());
        }
        Ok(())
    }

    fn load_timeline(&self, since_unix_ms: u64) -> Result<Vec<StoredPoint>, StoreError> {
        let timeline = self.timeline.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(timeline
            .iter()
            .filter(|p| p.point.at_unix_ms >= since_unix_ms)
            .cloned()
            .collect())
    }

    fn save_timeline(
        &self,
        points: &[StoredPoint],
        retain_since_unix_ms: u64,
    ) -> Result<(), StoreError> {
        let mut timeline = self.timeline.lock().unwrap_or_else(PoisonError::into_inner);
        timeline.extend_from_slice(points);
        timeline.retain(|p| p.point.at_unix_ms >= retain_since_unix_ms);
        timeline.sort_by_key(|p| p.point.at_unix_ms);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Evidence, RecentRun};

    #[test]
    fn save_replaces_rows_of_the_same_key() {
        let store = MemoryStore::new();
        let mut stats = PatternStats {
            executions: 1,
            successes: 1,
            ..PatternStats::default()
        };
        let row = |stats| StoredStats {
            pattern: "a.b".into(),
            domain: "d".into(),
            stats,
            added: PatternStats::default(),
            evidence: Evidence {
                successes: 1.0,
                failures: 0.0,
                samples: 1,
            },
            recent: vec![RecentRun {
                at_unix_ms: 1,
                latency_us: 2,
                ok: true,
            }],
            ..StoredStats::default()
        };
        store.save(&[row(stats)]).unwrap();
        stats.executions = 2;
        store.save(&[row(stats)]).unwrap();
        assert_eq!(store.load().unwrap(), vec![row(stats)]);
    }
}
