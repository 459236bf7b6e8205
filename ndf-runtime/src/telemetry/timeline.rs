//! The timeline behind the dashboard: every `timeline_interval`, one point
//! per workflow and domain that ran in the interval. Points are taken from
//! the statistics by a background task, never on a run's path; the runtime
//! keeps a fixed ring of them per workflow and domain, and the store keeps
//! them for `retention`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::percentile;
use crate::learning::{StatsTable, WorkflowReading};
use crate::model::{Clock, Prior, StoredPoint, TimelinePoint};

/// (pattern, domain).
type Key = (String, String);

/// The points of one workflow in one domain, and where the last one ended.
#[derive(Debug, Default)]
struct Series {
    points: VecDeque<TimelinePoint>,
    /// Runs and failures counted up to the last point.
    executions: u64,
    failures: u64,
    refused: u64,
    total_latency_ns: u64,
    /// When the last point was taken.
    at: Option<Instant>,
}

impl Series {
    /// The point of the runs since the last one; `None` when none ran.
    fn next_point(&self, reading: &WorkflowReading<'_>, unix_ms: u64) -> Option<TimelinePoint> {
        let executions = reading.totals.executions.saturating_sub(self.executions);
        let refused = reading.totals.held_back.saturating_sub(self.refused);
        if executions == 0 && refused == 0 {
            return None;
        }
        // Counts and the mean come from the counters, which miss nothing;
        // the 95th percentile from the runs still in the recent window.
        let mut latencies: Vec<Duration> = reading
            .recent
            .iter()
            .rev()
            .take_while(|(at, _, _)| self.at.is_none_or(|last| *at > last))
            .map(|(_, latency, _)| latency)
            .collect();
        latencies.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let latency_ns = reading
            .totals
            .total_latency_ns
            .saturating_sub(self.total_latency_ns);
        let mean_ms = if executions == 0 {
            0.0
        } else {
            latency_ns as f64 / 1e6 / executions as f64
        };
        Some(TimelinePoint {
            at_unix_ms: unix_ms,
            executions,
            failures: reading.totals.failures.saturating_sub(self.failures),
            refused,
            mean_ms,
            p95_ms: ms(percentile(&latencies, 0.95)),
            confidence: reading.confidence,
        })
    }

    fn push(&mut self, point: TimelinePoint, capacity: usize) {
        while self.points.len() >= capacity {
            self.points.pop_front();
        }
        self.points.push_back(point);
    }
}

/// Points waiting for the store: at most this many; the oldest are dropped
/// while the store keeps failing.
const MAX_PENDING: usize = 100_000;

#[derive(Debug, Default)]
struct State {
    series: BTreeMap<Key, Series>,
    /// Points not yet saved.
    pending: Vec<StoredPoint>,
}

/// The timelines of every workflow and domain. Taken before the statistics
/// when both are held (sampling and reading walk the statistics under it).
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    state: Mutex<State>,
}

impl Timeline {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Loads points a store kept (oldest first), keeping the last
    /// `capacity` of each series.
    pub(crate) fn seed(&self, points: Vec<StoredPoint>, capacity: usize) {
        let mut state = self.lock();
        for p in points {
            state
                .series
                .entry((p.pattern, p.domain))
                .or_default()
                .push(p.point, capacity);
        }
    }

    /// Takes a point of every workflow that ran since the last one.
    pub(crate) fn sample(&self, table: &StatsTable, prior: Prior, capacity: usize) {
        let clock = Clock::now();
        let mut guard = self.lock();
        let state = &mut *guard;
        table.for_each_workflow(prior, |reading| {
            let key = (reading.pattern.to_owned(), reading.domain.to_owned());
            let series = state.series.entry(key.clone()).or_default();
            let point = series.next_point(&reading, clock.unix_ms);
            series.executions = reading.totals.executions;
            series.failures = reading.totals.failures;
            series.refused = reading.totals.held_back;
            series.total_latency_ns = reading.totals.total_latency_ns;
            series.at = Some(clock.instant);
            if let Some(point) = point {
                series.push(point, capacity);
                state.pending.push(StoredPoint {
                    pattern: key.0,
                    domain: key.1,
                    point,
                });
            }
        });
        bound(&mut state.pending);
    }

    /// Every series' points since `since_unix_ms`, with the runs since the
    /// last point as one more (not kept), sorted by pattern and domain.
    pub(crate) fn read(
        &self,
        table: &StatsTable,
        prior: Prior,
        since_unix_ms: u64,
    ) -> Vec<(Key, Vec<TimelinePoint>)> {
        let clock = Clock::now();
        let state = self.lock();
        let mut live: BTreeMap<Key, TimelinePoint> = BTreeMap::new();
        table.for_each_workflow(prior, |reading| {
            let key = (reading.pattern.to_owned(), reading.domain.to_owned());
            let point = match state.series.get(&key) {
                Some(series) => series.next_point(&reading, clock.unix_ms),
                None => Series::default().next_point(&reading, clock.unix_ms),
            };
            if let Some(point) = point {
                live.insert(key, point);
            }
        });
        let mut keys: Vec<&Key> = state.series.keys().chain(live.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .map(|key| {
                let kept = state.series.get(key).into_iter().flat_map(|s| &s.points);
                let points: Vec<TimelinePoint> = kept
                    .chain(live.get(key))
                    .filter(|p| p.at_unix_ms >= since_unix_ms)
                    .copied()
                    .collect();
                (key.clone(), points)
            })
            .filter(|(_, points)| !points.is_empty())
            .collect()
    }

    /// Whether points wait for the store.
    pub(crate) fn has_pending(&self) -> bool {
        !self.lock().pending.is_empty()
    }

    /// The points waiting for the store, taken out.
    pub(crate) fn take_pending(&self) -> Vec<StoredPoint> {
        std::mem::take(&mut self.lock().pending)
    }

    /// Puts back points a failed save did not store, before newer ones.
    pub(crate) fn restore_pending(&self, mut points: Vec<StoredPoint>) {
        let mut state = self.lock();
        points.append(&mut state.pending);
        bound(&mut points);
        state.pending = points;
    }
}

/// Drops the oldest of `pending` beyond [`MAX_PENDING`].
fn bound(pending: &mut Vec<StoredPoint>) {
    let excess = pending.len().saturating_sub(MAX_PENDING);
    pending.drain(..excess);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(at_unix_ms: u64) -> TimelinePoint {
        TimelinePoint {
            refused: 0,
            at_unix_ms,
            executions: 1,
            failures: 0,
            mean_ms: 1.0,
            p95_ms: 1.0,
            confidence: 0.5,
        }
    }

    fn stored(at_unix_ms: u64) -> StoredPoint {
        StoredPoint {
            pattern: "a.b".into(),
            domain: "d".into(),
            point: point(at_unix_ms),
        }
    }

    #[test]
    fn a_series_keeps_its_last_points_only() {
        let mut series = Series::default();
        for at in 0..5 {
            series.push(point(at), 3);
        }
        let kept: Vec<u64> = series.points.iter().map(|p| p.at_unix_ms).collect();
        assert_eq!(kept, [2, 3, 4]);
    }

    #[test]
    fn seeding_keeps_the_newest_points_of_each_series() {
        let timeline = Timeline::default();
        timeline.seed((0..4).map(stored).collect(), 2);
        let state = timeline.lock();
        let series = &state.series[&("a.b".to_owned(), "d".to_owned())];
        let kept: Vec<u64> = series.points.iter().map(|p| p.at_unix_ms).collect();
        assert_eq!(kept, [2, 3]);
        assert!(
            state.pending.is_empty(),
            "seeded points are in the store already"
        );
    }

    #[test]
    fn points_a_failed_save_gives_back_come_before_newer_ones() {
        let timeline = Timeline::default();
        timeline.lock().pending = vec![stored(1), stored(2)];
        let taken = timeline.take_pending();
        assert!(!timeline.has_pending());
        timeline.lock().pending.push(stored(3));
        timeline.restore_pending(taken);
        let order: Vec<u64> = timeline
            .take_pending()
            .iter()
            .map(|p| p.point.at_unix_ms)
            .collect();
        assert_eq!(order, [1, 2, 3]);
    }

    #[test]
    fn pending_points_are_bounded_while_the_store_fails() {
        let timeline = Timeline::default();
        let many: Vec<StoredPoint> = (0..MAX_PENDING as u64 + 5).map(stored).collect();
        timeline.restore_pending(many);
        let pending = timeline.take_pending();
        assert_eq!(pending.len(), MAX_PENDING);
        assert_eq!(pending[0].point.at_unix_ms, 5, "the oldest are dropped");
    }
}
