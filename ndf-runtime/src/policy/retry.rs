//! [`RetryPolicy`]: how many times a step is tried again, and how long
//! each retry waits (exponential backoff, capped, with jitter).

use std::time::Duration;

/// How a step is retried: exponential backoff from `initial`, multiplied by
/// `multiplier` after each retry, capped at `max_delay`, with optional jitter.
///
/// With jitter, each delay is drawn uniformly from `[d/2, d]` where `d` is the
/// capped exponential delay ("equal jitter"): retries of many callers spread
/// out, yet no retry comes sooner than half the planned delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0: the step runs once).
    pub max_retries: u32,
    /// Delay before the first retry.
    pub initial: Duration,
    /// Growth of the delay per retry (at least 1).
    pub multiplier: f64,
    /// Upper bound of any delay.
    pub max_delay: Duration,
    /// Whether delays are randomised.
    pub jitter: bool,
}

impl RetryPolicy {
    /// No retries.
    pub const NONE: Self = Self::retries(0);

    /// `max_retries` retries with the defaults: 100 ms initial delay, doubling,
    /// at most 10 s, with jitter.
    #[must_use]
    pub const fn retries(max_retries: u32) -> Self {
        Self {
            max_retries,
            initial: Duration::from_millis(100),
            multiplier: 2.0,
            max_delay: Duration::from_secs(10),
            jitter: true,
        }
    }

    /// The delay before retry number `retry` (0 is the first retry).
    #[must_use]
    pub fn delay(&self, retry: u32) -> Duration {
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let planned = self.initial.as_secs_f64() * self.multiplier.max(1.0).powi(exponent);
        let capped = planned.min(self.max_delay.as_secs_f64());
        let secs = if self.jitter {
            capped * (0.5 + 0.5 * fastrand::f64())
        } else {
            capped
        };
        // Past what a `Duration` holds (a huge `max_delay`), or not a
        // number (a zero `initial` times an infinite growth): the cap.
        Duration::try_from_secs_f64(secs).unwrap_or(self.max_delay)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self::NONE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_up_to_the_cap() {
        let p = RetryPolicy {
            jitter: false,
            max_delay: Duration::from_millis(500),
            ..RetryPolicy::retries(5)
        };
        let delays: Vec<_> = (0..5).map(|r| p.delay(r).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn jittered_delays_stay_within_half_and_full_delay() {
        let p = RetryPolicy::retries(3);
        for retry in 0..3 {
            let full = 100.0 * 2f64.powi(retry);
            for _ in 0..200 {
                let ms = p.delay(retry.cast_unsigned()).as_secs_f64() * 1000.0;
                assert!((full / 2.0..=full).contains(&ms), "retry {retry}: {ms} ms");
            }
        }
    }

    #[test]
    fn a_huge_max_delay_caps_nothing_and_panics_nowhere() {
        let p = RetryPolicy {
            max_delay: Duration::MAX,
            multiplier: f64::INFINITY,
            jitter: false,
            ..RetryPolicy::retries(3)
        };
        assert_eq!(p.delay(u32::MAX), Duration::MAX);
        let p = RetryPolicy {
            initial: Duration::ZERO,
            multiplier: f64::INFINITY,
            max_delay: Duration::from_secs(1),
            jitter: false,
            ..RetryPolicy::retries(3)
        };
        assert_eq!(p.delay(5), Duration::from_secs(1), "0 × ∞ is the cap");
    }

    #[test]
    fn huge_retry_numbers_do_not_overflow() {
        let p = RetryPolicy {
            jitter: false,
            ..RetryPolicy::retries(u32::MAX)
        };
        assert_eq!(p.delay(u32::MAX), p.max_delay);
    }
}
