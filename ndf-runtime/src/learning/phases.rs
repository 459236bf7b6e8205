//! The learned durations of `orchestrate!` phases, for `slowdown` rules.
//! Kept by entry id (so bounded by `max_entries`, like every entry) in a
//! fixed ring per phase: recording one takes a shard's lock for a few
//! stores, with no allocation once the phase is known, and its median is
//! selected on the stack, not sorted on the heap.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rustc_hash::FxHashMap;

use super::table::StatsTable;

/// Durations kept per phase for its median.
const PHASE_SAMPLES: usize = 64;
/// Durations needed before a phase's median counts.
const PHASE_MIN_SAMPLES: usize = 5;
/// Locks the phases are spread over, by entry id.
const SHARDS: usize = 16;

/// The last durations of one phase of one entry.
#[derive(Debug, Clone, Copy)]
struct Ring {
    samples: [Duration; PHASE_SAMPLES],
    len: usize,
    next: usize,
}

impl Default for Ring {
    fn default() -> Self {
        Self {
            samples: [Duration::ZERO; PHASE_SAMPLES],
            len: 0,
            next: 0,
        }
    }
}

impl Ring {
    fn push(&mut self, took: Duration) {
        self.samples[self.next] = took;
        self.next = (self.next + 1) % PHASE_SAMPLES;
        self.len = (self.len + 1).min(PHASE_SAMPLES);
    }

    fn median(&self) -> Option<Duration> {
        if self.len < PHASE_MIN_SAMPLES {
            return None;
        }
        let mut scratch = self.samples;
        let values = &mut scratch[..self.len];
        let middle = values.len() / 2;
        Some(*values.select_nth_unstable(middle).1)
    }
}

/// (entry id, phase name).
type Key = (usize, &'static str);

/// Every entry's phase durations.
#[derive(Debug, Default)]
pub(crate) struct Phases {
    shards: [Mutex<FxHashMap<Key, Ring>>; SHARDS],
}

impl Phases {
    fn shard(&self, entry: usize) -> std::sync::MutexGuard<'_, FxHashMap<Key, Ring>> {
        self.shards[entry % SHARDS]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Phases {
    /// Forgets the phase durations of entry `entry`.
    pub(super) fn forget(&self, entry: usize) {
        self.shard(entry).retain(|(id, _), _| *id != entry);
    }
}

impl StatsTable {
    /// The median of the recent durations of `phase` in entry `entry`, once
    /// there are enough.
    pub(crate) fn phase_median(&self, entry: usize, phase: &'static str) -> Option<Duration> {
        self.phases.shard(entry).get(&(entry, phase))?.median()
    }

    /// Learns one duration of `phase` in entry `entry`.
    pub(crate) fn record_phase(&self, entry: usize, phase: &'static str, took: Duration) {
        self.phases
            .shard(entry)
            .entry((entry, phase))
            .or_default()
            .push(took);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_needs_enough_samples_and_keeps_the_last_ones() {
        let table = StatsTable::default();
        for ms in 1..=4 {
            table.record_phase(3, "p", Duration::from_millis(ms));
        }
        assert_eq!(table.phase_median(3, "p"), None);
        table.record_phase(3, "p", Duration::from_millis(5));
        assert_eq!(table.phase_median(3, "p"), Some(Duration::from_millis(3)));
        for _ in 0..PHASE_SAMPLES {
            table.record_phase(3, "p", Duration::from_millis(100));
        }
        assert_eq!(table.phase_median(3, "p"), Some(Duration::from_millis(100)));
        assert_eq!(table.phase_median(4, "p"), None, "by entry");
    }
}
