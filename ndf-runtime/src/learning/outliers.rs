//! Latency outliers by median absolute deviation: robust to the outliers
//! themselves, unlike a mean and standard deviation.

use std::collections::VecDeque;
use std::time::Duration;

/// Latencies kept per (workflow, domain).
const WINDOW: usize = 64;
/// Latencies needed before anything is called an outlier.
const MIN_SAMPLES: usize = 8;
/// Modified z-score above which a latency is an outlier (Iglewicz and Hoaglin).
const THRESHOLD: f64 = 3.5;

/// The recent latencies of one pattern in one domain.
#[derive(Debug, Default, Clone)]
pub(crate) struct LatencyWindow {
    recent: VecDeque<f64>,
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])
    }
}

impl LatencyWindow {
    /// Records `latency` and says whether it is an outlier against the
    /// latencies before it. Outliers are kept: they are data, and a slow
    /// trend must be able to become the new normal.
    pub(crate) fn observe(&mut self, latency: Duration) -> bool {
        let x = latency.as_secs_f64();
        let outlier = self.is_outlier(x);
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(x);
        outlier
    }

    fn is_outlier(&self, x: f64) -> bool {
        if self.recent.len() < MIN_SAMPLES {
            return false;
        }
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let med = median(&sorted);
        let mut deviations: Vec<f64> = sorted.iter().map(|v| (v - med).abs()).collect();
        deviations.sort_by(f64::total_cmp);
        let mad = median(&deviations);
        if mad > 0.0 {
            0.6745 * (x - med).abs() / mad > THRESHOLD
        } else {
            // All recent latencies alike: a departure by half the median is an outlier.
            (x - med).abs() > 0.5 * med && med > 0.0
        }
    }

    /// The recent latencies, oldest first.
    #[cfg(test)]
    pub(crate) fn recent(&self) -> impl Iterator<Item = Duration> + '_ {
        self.recent.iter().map(|s| Duration::from_secs_f64(*s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
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
}
