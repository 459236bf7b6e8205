//! The recent runs and refusals of a workflow in a domain, for reports and
//! the timeline: bounded rings of when each happened (nanoseconds after
//! the ring's epoch) and what it carries, 16 bytes a run, 8 a refusal.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Events kept per ring.
pub(super) const RECENT: usize = 1024;

/// The high bit of a packed latency: the run succeeded.
const OK: u64 = 1 << 63;

/// `d` in whole nanoseconds, saturating (past 584 years).
pub(super) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// The last [`RECENT`] events: when each happened, and `T`.
#[derive(Debug)]
pub(crate) struct Ring<T> {
    epoch: Instant,
    ring: VecDeque<(u64, T)>,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            ring: VecDeque::new(),
        }
    }
}

impl<T: Copy> Ring<T> {
    /// Keeps an event at `at`, dropping the oldest past [`RECENT`].
    fn push_at(&mut self, at: Instant, value: T) {
        self.push_offset(self.offset(at), value);
    }

    /// Keeps an event `offset` nanoseconds after the epoch.
    fn push_offset(&mut self, offset: u64, value: T) {
        if self.ring.len() == RECENT {
            self.ring.pop_front();
        }
        self.ring.push_back((offset, value));
    }

    /// Nanoseconds from the ring's epoch to `at` (0 before it): the clock
    /// the entry's counts by period read too.
    pub(super) fn offset(&self, at: Instant) -> u64 {
        nanos(at.saturating_duration_since(self.epoch))
    }

    /// The events, oldest first.
    fn events(&self) -> impl DoubleEndedIterator<Item = (Instant, T)> + ExactSizeIterator + '_ {
        self.ring
            .iter()
            .map(|(at, value)| (self.epoch + Duration::from_nanos(*at), *value))
    }

    /// How many events it holds.
    pub(super) fn len(&self) -> usize {
        self.ring.len()
    }

    /// When the oldest event it holds happened.
    pub(super) fn oldest(&self) -> Option<Instant> {
        self.ring
            .front()
            .map(|(at, _)| self.epoch + Duration::from_nanos(*at))
    }

    /// Whether it holds every event since `start`: it never dropped one, or
    /// the oldest it holds is older than `start` (`None`: since ever).
    pub(super) fn covers(&self, start: Option<Instant>) -> bool {
        self.len() < RECENT || start.is_some_and(|start| self.oldest().is_some_and(|o| o < start))
    }

    /// Forgets the events and frees their memory.
    pub(super) fn free(&mut self) {
        self.ring = VecDeque::new();
    }
}

/// The last runs: when they ended, and their latency in nanoseconds with
/// whether they succeeded in the high bit.
pub(crate) type Recent = Ring<u64>;

impl Recent {
    /// Keeps a run that ended `offset` nanoseconds after the epoch.
    pub(super) fn push(&mut self, offset: u64, latency: Duration, ok: bool) {
        let latency = nanos(latency).min(OK - 1) | if ok { OK } else { 0 };
        self.push_offset(offset, latency);
    }

    /// The runs, oldest first: when each ended, how long it took, whether
    /// it succeeded.
    pub(crate) fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (Instant, Duration, bool)> + ExactSizeIterator + '_ {
        self.events()
            .map(|(at, latency)| (at, Duration::from_nanos(latency & !OK), latency & OK != 0))
    }
}

/// When the gate refused recent runs.
pub(super) type Refusals = Ring<()>;

impl Refusals {
    pub(super) fn push(&mut self, at: Instant) {
        self.push_at(at, ());
    }

    /// When each refusal happened, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = Instant> + '_ {
        self.events().map(|(at, ())| at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_sixteen_bytes_a_refusal_eight_and_each_keeps_what_it_was() {
        assert_eq!(size_of::<(u64, u64)>(), 16);
        assert_eq!(size_of::<(u64, ())>(), 8);
        let mut recent = Recent::default();
        let at = recent.epoch + Duration::from_millis(5);
        let offset = recent.offset(at);
        assert_eq!(offset, 5_000_000);
        recent.push(offset, Duration::from_nanos(1_234), true);
        recent.push(offset, Duration::from_secs(3), false);
        let runs: Vec<_> = recent.iter().collect();
        assert_eq!(
            runs,
            [
                (at, Duration::from_nanos(1_234), true),
                (at, Duration::from_secs(3), false)
            ]
        );
        for _ in 0..RECENT {
            recent.push(offset, Duration::ZERO, true);
        }
        assert_eq!(recent.iter().len(), RECENT, "bounded");
        let mut refused = Refusals::default();
        refused.push(at);
        assert_eq!(refused.iter().collect::<Vec<_>>(), [at]);
    }
}
