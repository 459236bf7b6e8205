//! The sliding window of a step's `breaker(…)`: how many of its recent
//! outcomes failed, over its last N outcomes or its last period.

use std::time::Duration;

use tokio::time::Instant;

use crate::model::SlidingWindow;

/// Buckets a time window is counted in.
const BUCKETS: usize = 10;

/// The outcomes of one (pattern, domain) in its breaker's window.
#[derive(Debug, Clone)]
pub(crate) enum Sliding {
    /// The last `size` outcomes, one bit each (set: failed).
    Calls {
        bits: Box<[u64]>,
        size: u32,
        /// Where the next outcome goes.
        next: u32,
        len: u32,
        failures: u32,
    },
    /// The outcomes of the last period, in [`BUCKETS`] buckets of a tenth
    /// of it: each bucket is (the number of its tenth since `origin`,
    /// calls, failures).
    Time {
        tenth: Duration,
        origin: Instant,
        buckets: [(u64, u32, u32); BUCKETS],
    },
}

impl Sliding {
    /// An empty window of `window`'s kind, for outcomes from `now` on.
    pub(crate) fn new(window: SlidingWindow, now: Instant) -> Self {
        match window {
            SlidingWindow::Calls(size) => {
                let size = size.max(1);
                Sliding::Calls {
                    bits: vec![0; size.div_ceil(64) as usize].into_boxed_slice(),
                    size,
                    next: 0,
                    len: 0,
                    failures: 0,
                }
            }
            SlidingWindow::Time(period) => Sliding::Time {
                tenth: (period / 10).max(Duration::from_micros(1)),
                origin: now,
                // No bucket counts until its tenth is written.
                buckets: [(u64::MAX, 0, 0); BUCKETS],
            },
        }
    }

    /// Adds one outcome at `at`; the outcomes and failures the window now
    /// holds.
    pub(crate) fn record(&mut self, ok: bool, at: Instant) -> (u32, u32) {
        match self {
            Sliding::Calls {
                bits,
                size,
                next,
                len,
                failures,
            } => {
                let (word, bit) = (*next as usize / 64, 1u64 << (*next % 64));
                if *len == *size && bits[word] & bit != 0 {
                    *failures -= 1;
                }
                if ok {
                    bits[word] &= !bit;
                } else {
                    bits[word] |= bit;
                    *failures += 1;
                }
                *next = (*next + 1) % *size;
                *len = (*len + 1).min(*size);
                (*len, *failures)
            }
            Sliding::Time {
                tenth,
                origin,
                buckets,
            } => {
                let now = tenth_of(at, *origin, *tenth);
                // Below `BUCKETS`: the cast cannot truncate.
                #[allow(clippy::cast_possible_truncation)]
                let bucket = &mut buckets[(now % BUCKETS as u64) as usize];
                if bucket.0 != now {
                    *bucket = (now, 0, 0);
                }
                bucket.1 += 1;
                bucket.2 += u32::from(!ok);
                let mut counts = (0u32, 0u32);
                for &(t, calls, failed) in buckets.iter() {
                    // This tenth and the nine before it.
                    if t != u64::MAX && t <= now && now - t < BUCKETS as u64 {
                        counts.0 += calls;
                        counts.1 += failed;
                    }
                }
                counts
            }
        }
    }

    /// Forgets every outcome (the breaker changed state).
    pub(crate) fn clear(&mut self, now: Instant) {
        match self {
            Sliding::Calls {
                bits,
                next,
                len,
                failures,
                ..
            } => {
                bits.fill(0);
                (*next, *len, *failures) = (0, 0, 0);
            }
            Sliding::Time {
                origin, buckets, ..
            } => {
                *origin = now;
                *buckets = [(u64::MAX, 0, 0); BUCKETS];
            }
        }
    }
}

/// Which tenth since `origin` the instant `at` falls in.
fn tenth_of(at: Instant, origin: Instant, tenth: Duration) -> u64 {
    let since = at.saturating_duration_since(origin).as_nanos();
    u64::try_from(since / tenth.as_nanos()).unwrap_or(u64::MAX - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_window_holds_the_last_n_outcomes() {
        let now = Instant::now();
        let mut w = Sliding::new(SlidingWindow::Calls(100), now);
        for i in 0..100 {
            assert_eq!(w.record(i % 4 != 0, now), (i + 1, i / 4 + 1));
        }
        // 25 failures in the window; each success now pushes out an old
        // outcome, a failure every fourth.
        for i in 0..100 {
            let (calls, failures) = w.record(true, now);
            assert_eq!(calls, 100);
            assert_eq!(failures, 25 - (i / 4 + 1), "after {} successes", i + 1);
        }
        w.clear(now);
        assert_eq!(w.record(false, now), (1, 1));
    }

    #[test]
    fn a_count_window_crosses_words() {
        let now = Instant::now();
        let mut w = Sliding::new(SlidingWindow::Calls(130), now);
        for _ in 0..130 {
            w.record(false, now);
        }
        assert_eq!(w.record(true, now), (130, 129));
        for _ in 0..129 {
            w.record(true, now);
        }
        assert_eq!(w.record(true, now), (130, 0));
    }

    #[test]
    fn a_time_window_forgets_outcomes_older_than_its_period() {
        let t0 = Instant::now();
        let mut w = Sliding::new(SlidingWindow::Time(Duration::from_secs(10)), t0);
        for s in 0..10 {
            w.record(false, t0 + Duration::from_secs(s));
        }
        assert_eq!(w.record(true, t0 + Duration::from_millis(9_500)), (11, 10));
        // At 10.5 s the outcome of second 0 has left.
        assert_eq!(w.record(true, t0 + Duration::from_millis(10_500)), (11, 9));
        // After a quiet 30 s only the new outcome is left.
        assert_eq!(w.record(false, t0 + Duration::from_secs(40)), (1, 1));
        w.clear(t0 + Duration::from_secs(41));
        assert_eq!(w.record(true, t0 + Duration::from_secs(41)), (1, 0));
    }
}
