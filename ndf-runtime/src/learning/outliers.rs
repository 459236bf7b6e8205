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
    /// In nanoseconds: selecting the median of integers is a few times
    /// cheaper than of floats compared by `total_cmp`, and exact.
    ring: [u64; WINDOW],
    len: usize,
    next: usize,
    since_refresh: usize,
    /// Median and median absolute deviation of the ring, as last
    /// computed, in seconds.
    median: f64,
    mad: f64,
}

impl Default for LatencyWindow {
    fn default() -> Self {
        Self {
            ring: [0; WINDOW],
            len: 0,
            next: 0,
            since_refresh: usize::MAX,
            median: 0.0,
            mad: 0.0,
        }
    }
}

/// The middle two of `values` (reordered), by selection rather than a
/// sort: the lower and the upper, the same one twice for an odd count
/// (their mean is the median); zeros when empty.
fn middle(values: &mut [u64]) -> (u64, u64) {
    let n = values.len();
    if n == 0 {
        return (0, 0);
    }
    let (below, mid, _) = values.select_nth_unstable(n / 2);
    let upper = *mid;
    if n % 2 == 1 {
        return (upper, upper);
    }
    // Even: the middle two are `upper` and the largest value below it.
    (below.iter().copied().max().unwrap_or(upper), upper)
}

/// The sum of the middle two `nanos`, times `scale`, in seconds.
fn seconds((lower, upper): (u64, u64), scale: f64) -> f64 {
    (lower as f64 + upper as f64) * scale * 1e-9
}

impl LatencyWindow {
    /// Records `latency` and says whether it is an outlier against the
    /// latencies before it. Outliers are kept: they are data, and a slow
    /// trend must be able to become the new normal.
    pub(crate) fn observe(&mut self, latency: Duration) -> bool {
        let nanos = super::recent::nanos(latency);
        let x = nanos as f64 * 1e-9;
        if self.since_refresh >= REFRESH || self.len < WINDOW / 2 {
            self.refresh();
        }
        let mut outlier = self.is_outlier(x);
        if outlier && self.since_refresh >= FRESH {
            self.refresh();
            outlier = self.is_outlier(x);
        }
        self.ring[self.next] = nanos;
        self.next = (self.next + 1) % WINDOW;
        self.len = (self.len + 1).min(WINDOW);
        self.since_refresh = self.since_refresh.saturating_add(1);
        outlier
    }

    fn refresh(&mut self) {
        let mut scratch = [0; WINDOW];
        let values = &mut scratch[..self.len];
        values.copy_from_slice(&self.ring[..self.len]);
        let (lower, upper) = middle(values);
        self.median = seconds((lower, upper), 0.5);
        // Deviations from the median, doubled to stay whole: the mean of
        // their middle two is twice the MAD.
        let twice = u128::from(lower) + u128::from(upper);
        for v in values.iter_mut() {
            let deviation = (2 * u128::from(*v)).abs_diff(twice);
            *v = u64::try_from(deviation).unwrap_or(u64::MAX);
        }
        self.mad = seconds(middle(values), 0.25);
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
            .map(|n| Duration::from_nanos(*n))
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
    fn the_middle_by_selection_is_the_middle_by_sorting() {
        for n in 0..20_u64 {
            let values: Vec<u64> = (0..n).map(|i| (i * 37 + 11) % 23).collect();
            let n = values.len();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            let expected = match n {
                0 => (0, 0),
                n if n % 2 == 1 => (sorted[n / 2], sorted[n / 2]),
                n => (sorted[n / 2 - 1], sorted[n / 2]),
            };
            assert_eq!(middle(&mut values.clone()), expected, "{values:?}");
        }
    }

    #[test]
    fn median_and_deviation_are_those_of_the_latencies() {
        let mut w = LatencyWindow::default();
        // 10, 11, 12, 13 ms: median 11.5 ms; deviations 1.5, 0.5, 0.5,
        // 1.5 ms: MAD 1 ms.
        for n in [10, 11, 12, 13] {
            w.observe(ms(n));
        }
        w.refresh();
        assert!((w.median - 0.0115).abs() < 1e-12, "{}", w.median);
        assert!((w.mad - 0.001).abs() < 1e-12, "{}", w.mad);
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
