//! Latency outliers by median absolute deviation: robust to the outliers
//! themselves, unlike a mean and standard deviation.

use std::time::Duration;

use crate::model::LATENCY_NOISE;

/// Latencies kept per (workflow, domain).
const WINDOW: usize = 64;
/// Latencies needed before anything is called an outlier.
const MIN_SAMPLES: usize = 8;
/// Modified z-score above which a latency is an outlier (Iglewicz and Hoaglin).
const THRESHOLD: f64 = 3.5;
/// Once the window is warm, the median and MAD are recomputed every this
/// many observations: recomputing them on every run would cost more than
/// the run itself.
const REFRESH: usize = 256;
/// A latency that looks like an outlier against a median and MAD older
/// than this many observations is judged again against fresh ones: no
/// outlier is called on a baseline more than this many runs old.
const FRESH: usize = 32;
/// [`LATENCY_NOISE`] in seconds: a latency closer than this to the median
/// is never an outlier, whatever the spread of the window.
const MIN_DEPARTURE: f64 = LATENCY_NOISE.as_secs_f64();

/// The recent latencies of one pattern in one domain, in a fixed ring: no
/// allocation after creation.
#[derive(Debug, Clone)]
pub(crate) struct LatencyWindow {
    ring: [f64; WINDOW],
    len: usize,
    next: usize,
    since_refresh: usize,
    /// Median and median absolute deviation of the ring, as last computed.
    median: f64,
    mad: f64,
}

impl Default for LatencyWindow {
    fn default() -> Self {
        Self {
            ring: [0.0; WINDOW],
            len: 0,
            next: 0,
            since_refresh: usize::MAX,
            median: 0.0,
            mad: 0.0,
        }
    }
}

/// The median of `values` (reordered), by selection rather than a sort;
/// zero when empty.
fn median(values: &mut [f64]) -> f64 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let (below, mid, _) = values.select_nth_unstable_by(n / 2, f64::total_cmp);
    let upper = *mid;
    if n % 2 == 1 {
        return upper;
    }
    // Even: the middle two are `upper` and the largest value below it.
    let lower = below
        .iter()
        .copied()
        .max_by(f64::total_cmp)
        .unwrap_or(upper);
    f64::midpoint(lower, upper)
}

impl LatencyWindow {
    /// Records `latency` and says whether it is an outlier against the
    /// latencies before it. Outliers are kept: they are data, and a slow
    /// trend must be able to become the new normal.
    pub(crate) fn observe(&mut self, latency: Duration) -> bool {
        let x = latency.as_secs_f64();
        if self.since_refresh >= REFRESH || self.len < WINDOW / 2 {
            self.refresh();
        }
        let mut outlier = self.is_outlier(x);
        if outlier && self.since_refresh >= FRESH {
            self.refresh();
            outlier = self.is_outlier(x);
        }
        self.ring[self.next] = x;
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        self.since_refresh = self.since_refresh.saturating_add(1);
        outlier
    }

    fn refresh(&mut self) {
        let mut scratch = [0.0; WINDOW];
        let values = &mut scratch[..self.len];
        values.copy_from_slice(&self.ring[..self.len]);
        self.median = median(values);
        for v in values.iter_mut() {
            *v = (*v - self.median).abs();
        }
        self.mad = median(values);
        self.since_refresh = 0;
    }

    fn is_outlier(&self, x: f64) -> bool {
        if self.len < MIN_SAMPLES {
            return false;
        }
        let (med, mad) = (self.median, self.mad);
        let departure = (x - med).abs();
        if departure < MIN_DEPARTURE {
            return false;
        }
        if mad > 0.0 {
            0.6745 * departure / mad > THRESHOLD
        } else {
            // All recent latencies alike: a departure by half the median is an outlier.
            departure > 0.5 * med && med > 0.0
        }
    }

    /// The recent latencies, in ring order.
    #[cfg(test)]
    pub(crate) fn recent(&self) -> impl Iterator<Item = Duration> + '_ {
        self.ring[..self.len]
            .iter()
            .map(|s| Duration::from_secs_f64(*s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn microsecond_jitter_of_a_fast_workflow_is_never_an_outlier() {
        let mut w = LatencyWindow::default();
        // A workflow that runs in a few microseconds: a tight spread, with
        // the spikes a scheduler and cold caches add (up to 0.9 ms).
        let flagged = (0..5_000_u64)
            .filter(|i| {
                let latency = match i % 97 {
                    0 => us(900),
                    1 | 2 => us(150 + i % 50),
                    _ => us(2 + i % 3),
                };
                w.observe(latency)
            })
            .count();
        assert_eq!(flagged, 0, "jitter under a millisecond called an outlier");
        // A real stall of the same workflow still is one.
        assert!(w.observe(ms(5)));
    }

    #[test]
    fn a_departure_of_a_millisecond_is_judged_by_the_spread() {
        let mut w = LatencyWindow::default();
        for i in 0..40 {
            w.observe(us(10 + i % 4));
        }
        // 1.2 ms past a 11 µs median with a MAD of about 1 µs: an outlier.
        assert!(w.observe(us(1_200)));
        let mut spread = LatencyWindow::default();
        for i in 0..40 {
            spread.observe(ms(20 + i % 9));
        }
        // 2 ms past a 24 ms median with a MAD of 2 ms: not one.
        assert!(!spread.observe(ms(26)));
    }

    #[test]
    fn the_median_by_selection_is_the_median_by_sorting() {
        for n in 0..20_u32 {
            let values: Vec<f64> = (0..n).map(|i| f64::from((i * 37 + 11) % 23)).collect();
            let n = values.len();
            let mut sorted = values.clone();
            sorted.sort_unstable_by(f64::total_cmp);
            let expected = match n {
                0 => 0.0,
                n if n % 2 == 1 => sorted[n / 2],
                n => f64::midpoint(sorted[n / 2 - 1], sorted[n / 2]),
            };
            assert_eq!(
                median(&mut values.clone()).to_bits(),
                expected.to_bits(),
                "{values:?}"
            );
        }
    }

    #[test]
    fn nothing_is_an_outlier_before_enough_samples() {
        let mut w = LatencyWindow::default();
        for _ in 0..MIN_SAMPLES - 1 {
            assert!(!w.observe(ms(10)));
        }
        assert!(!w.observe(ms(10_000)), "7 samples are too few to judge");
    }

    #[test]
    fn a_latency_far_from_the_median_is_an_outlier_and_kept() {
        let mut w = LatencyWindow::default();
        for i in 0..20 {
            assert!(
                !w.observe(ms(100 + i % 5)),
                "normal jitter is not an outlier"
            );
        }
        assert!(w.observe(ms(900)));
        assert!(!w.observe(ms(103)));
        assert_eq!(
            w.recent().filter(|d| *d == ms(900)).count(),
            1,
            "outliers are reported, not dropped"
        );
    }

    #[test]
    fn identical_latencies_still_flag_a_large_departure() {
        let mut w = LatencyWindow::default();
        for _ in 0..10 {
            w.observe(ms(50));
        }
        assert!(!w.observe(ms(60)));
        assert!(w.observe(ms(200)));
    }

    #[test]
    fn a_spike_is_flagged_whenever_it_comes_and_a_new_level_becomes_normal() {
        let mut w = LatencyWindow::default();
        let jitter = |i: u64| ms(10 + i % 3);
        for i in 0..300 {
            assert!(!w.observe(jitter(i)), "steady at run {i}");
        }
        // Between refreshes of the baseline: still flagged.
        for extra in 0..REFRESH as u64 {
            let mut probe = w.clone();
            for i in 0..extra {
                probe.observe(jitter(i));
            }
            assert!(
                probe.observe(ms(200)),
                "a spike {extra} runs after the last check"
            );
        }
        // Latency moves to 50 ms for good: flagged at first, normal soon.
        let flagged: Vec<bool> = (0..400).map(|i| w.observe(ms(50 + i % 3))).collect();
        assert!(flagged[0]);
        assert!(
            flagged[WINDOW..].iter().all(|f| !f),
            "the new level is normal once it fills half the window"
        );
    }
}
