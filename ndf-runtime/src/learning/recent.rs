//! The recent runs of a workflow in a domain, for reports and the
//! timeline: a bounded ring, 16 bytes a run.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// Runs kept per workflow and domain.
pub(super) const RECENT: usize = 1024;

/// The high bit of a packed latency: the run succeeded.
const OK: u64 = 1 << 63;

/// One run: when it ended (nanoseconds after the ring's epoch) and its
/// latency in nanoseconds, with whether it succeeded in the high bit.
#[derive(Debug, Clone, Copy)]
struct Packed {
    at_ns: u64,
    latency: u64,
}

/// The last [`RECENT`] runs: when they ended, how long they took, whether
/// they succeeded.
#[derive(Debug)]
pub(crate) struct Recent {
    epoch: Instant,
    ring: VecDeque<Packed>,
}

impl Default for Recent {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            ring: VecDeque::new(),
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Recent {
    /// Keeps a run that ended at `at`, dropping the oldest past [`RECENT`].
    pub(super) fn push(&mut self, at: Instant, latency: Duration, ok: bool) {
        if self.ring.len() == RECENT {
            self.ring.pop_front();
        }
        let at_ns = nanos(at.saturating_duration_since(self.epoch));
        let latency = nanos(latency).min(OK - 1) | if ok { OK } else { 0 };
        self.ring.push_back(Packed { at_ns, latency });
    }

    /// Forgets the runs and frees their memory.
    pub(super) fn free(&mut self) {
        self.ring = VecDeque::new();
    }

    /// The runs, oldest first: when each ended, how long it took, whether
    /// it succeeded.
    pub(crate) fn iter(
        &self,
    ) -> impl DoubleEndedIterator<Item = (Instant, Duration, bool)> + ExactSizeIterator + '_ {
        self.ring.iter().map(|p| {
            (
                self.epoch + Duration::from_nanos(p.at_ns),
                Duration::from_nanos(p.latency & !OK),
                p.latency & OK != 0,
            )
        })
    }
}

/// When the gate refused recent runs: a bounded ring, 8 bytes a refusal.
#[derive(Debug)]
pub(super) struct Refusals {
    epoch: Instant,
    ring: VecDeque<u64>,
}

impl Default for Refusals {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            ring: VecDeque::new(),
        }
    }
}

impl Refusals {
    pub(super) fn push(&mut self, at: Instant) {
        if self.ring.len() == RECENT {
            self.ring.pop_front();
        }
        self.ring
            .push_back(nanos(at.saturating_duration_since(self.epoch)));
    }

    /// Forgets the refusals and frees their memory.
    pub(super) fn free(&mut self) {
        self.ring = VecDeque::new();
    }

    /// When each refusal happened, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = Instant> + '_ {
        self.ring
            .iter()
            .map(|ns| self.epoch + Duration::from_nanos(*ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_is_sixteen_bytes_and_keeps_what_it_was() {
        assert_eq!(size_of::<Packed>(), 16);
        let mut recent = Recent::default();
        let at = recent.epoch + Duration::from_millis(5);
        recent.push(at, Duration::from_nanos(1_234), true);
        recent.push(at, Duration::from_secs(3), false);
        let runs: Vec<_> = recent.iter().collect();
        assert_eq!(
            runs,
            [
                (at, Duration::from_nanos(1_234), true),
                (at, Duration::from_secs(3), false)
            ]
        );
        for _ in 0..RECENT {
            recent.push(at, Duration::ZERO, true);
        }
        assert_eq!(recent.iter().len(), RECENT, "bounded");
    }
}
