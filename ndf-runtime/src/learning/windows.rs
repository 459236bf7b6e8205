//! Every run of a workflow in a domain, counted by minute for the last hour
//! and by hour for the last day, with latency histograms: a report over a
//! window counts all of it, not only the last 1 024 runs its ring keeps.
//!
//! A minute slot counts runs, failures and refusals; a five-minute and an
//! hour slot also bin latencies, two bins per octave of microseconds (a
//! bin spans a factor of √2, so a percentile read from it, interpolated
//! within its bin, is within about 19 % of the exact one, usually far
//! closer). 12 KiB per workflow entry, allocated at its first run and
//! freed when it is evicted.

use std::time::Duration;

/// Latency bins: bin 0 is under 1 µs; bin `b ≥ 1` spans
/// `[2^((b-1)/2), 2^(b/2))` µs; the last also holds everything longer
/// (from about 36 minutes).
pub(crate) const BINS: usize = 64;

const MINUTE: u64 = 60;
const FIVE_MINUTES: u64 = 5 * 60;
const HOUR: u64 = 60 * 60;
const NANOS: u64 = 1_000_000_000;
/// The id of a slot never used.
const NEVER: u64 = u64::MAX;

/// Runs, failures and refusals of one period.
#[derive(Debug, Clone, Copy, Default)]
struct Counts {
    /// The period's number since the epoch ([`NEVER`]: never used).
    id: u64,
    executions: u64,
    failures: u64,
    refused: u64,
}

/// Latencies of one period.
#[derive(Debug, Clone, Copy)]
struct Bins {
    id: u64,
    bins: [u32; BINS],
}

impl Default for Bins {
    fn default() -> Self {
        Self {
            id: NEVER,
            bins: [0; BINS],
        }
    }
}

/// The counts of one workflow in one domain, by period.
/// Times are nanoseconds since the epoch of the entry's ring of recent
/// runs (its `offset`): one reading of the clock serves both.
#[derive(Debug)]
pub(crate) struct Windows {
    /// The minute the last run fell in, and its slots: the runs of the same
    /// minute (nearly all) are counted without working out their periods.
    current: Option<Current>,
    minutes: [Counts; 60],
    five_minutes: [Bins; 12],
    hours: [Counts; 24],
    hour_bins: [Bins; 24],
}

#[derive(Debug, Clone, Copy)]
struct Current {
    /// Nanoseconds since the epoch: the minute's start and end.
    from: u64,
    until: u64,
    /// Slots of the minute, its five minutes and its hour.
    minute: usize,
    five_minutes: usize,
    hour: usize,
}

/// What a window held: its runs, failures and refusals, and their
/// latencies binned.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WindowSummary {
    pub(crate) executions: u64,
    pub(crate) failures: u64,
    pub(crate) refused: u64,
    pub(crate) bins: [u64; BINS],
}

impl Default for WindowSummary {
    fn default() -> Self {
        Self {
            executions: 0,
            failures: 0,
            refused: 0,
            bins: [0; BINS],
        }
    }
}

/// The bin of `latency`.
pub(crate) fn bin_of(latency: Duration) -> usize {
    // Without `as_micros`, a 128-bit division on every run.
    let micros = latency
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from(latency.subsec_micros()));
    if micros == 0 {
        return 0;
    }
    let octave = micros.ilog2();
    // In the upper half of its octave when micros ≥ 2^octave · √2, that is
    // micros² ≥ 2 · 4^octave.
    let upper = u128::from(micros) * u128::from(micros) >= 2u128 << (2 * octave);
    (2 * octave as usize + usize::from(upper) + 1).min(BINS - 1)
}

/// The bounds of bin `b`, in microseconds.
fn bounds(b: usize) -> (f64, f64) {
    if b == 0 {
        return (0.0, 1.0);
    }
    let lower = 2f64.powf((b - 1) as f64 / 2.0);
    (lower, lower * std::f64::consts::SQRT_2)
}

impl WindowSummary {
    /// Adds one run.
    pub(crate) fn add(&mut self, latency: Duration, ok: bool) {
        self.executions += 1;
        self.failures += u64::from(!ok);
        self.bins[bin_of(latency)] += 1;
    }

    /// The latency at quantile `q` (nearest rank), interpolated within its
    /// bin as if latencies were spread evenly on a log scale; `None`
    /// without runs.
    pub(crate) fn quantile(&self, q: f64) -> Option<Duration> {
        let total: u64 = self.bins.iter().sum();
        if total == 0 {
            return None;
        }
        // The rank is at most `total`: the cast back is exact enough.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a rank between 1 and the number of runs"
        )]
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut below = 0;
        for (b, &count) in self.bins.iter().enumerate() {
            if count == 0 {
                continue;
            }
            if below + count >= rank {
                let (lower, upper) = bounds(b);
                let within = ((rank - below) as f64 - 0.5) / count as f64;
                let micros = if b == 0 {
                    0.5
                } else {
                    lower * (upper / lower).powf(within)
                };
                return Some(Duration::from_secs_f64(micros / 1e6));
            }
            below += count;
        }
        None
    }
}

impl Default for Windows {
    fn default() -> Self {
        let never = Counts {
            id: NEVER,
            ..Counts::default()
        };
        Self {
            current: None,
            minutes: [never; 60],
            five_minutes: [Bins::default(); 12],
            hours: [never; 24],
            hour_bins: [Bins::default(); 24],
        }
    }
}

/// The index of the slot of period `id` in a ring, emptied if it held an
/// older period; `None` when it holds a newer one (`id` is long gone).
fn slot<T>(ring: &mut [T], id: u64, id_of: fn(&T) -> u64, fresh: fn(u64) -> T) -> Option<usize> {
    // A ring has at most 60 slots: the index fits.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "less than the ring's length"
    )]
    let i = (id % ring.len() as u64) as usize;
    let held = id_of(&ring[i]);
    if held == NEVER || held < id {
        ring[i] = fresh(id);
    } else if held > id {
        return None;
    }
    Some(i)
}

fn fresh_counts(id: u64) -> Counts {
    Counts {
        id,
        ..Counts::default()
    }
}

fn fresh_bins(id: u64) -> Bins {
    Bins {
        id,
        bins: [0; BINS],
    }
}

impl Windows {
    /// The slots of the minute `at` falls in (emptied if they held older
    /// periods), remembered for the next run; `None` for a moment whose
    /// slots were reused since.
    fn slots_of(&mut self, at: u64) -> Option<Current> {
        if let Some(c) = self.current
            && at >= c.from
            && at < c.until
        {
            return Some(c);
        }
        let secs = at / NANOS;
        let minute = secs / MINUTE;
        let m = slot(&mut self.minutes, minute, |c| c.id, fresh_counts)?;
        let f = slot(
            &mut self.five_minutes,
            secs / FIVE_MINUTES,
            |b| b.id,
            fresh_bins,
        )?;
        let h = slot(&mut self.hours, secs / HOUR, |c| c.id, fresh_counts)?;
        let hb = slot(&mut self.hour_bins, secs / HOUR, |b| b.id, fresh_bins)?;
        debug_assert_eq!(h, hb, "hour counts and bins share their index");
        let from = minute * MINUTE * NANOS;
        let current = Current {
            from,
            until: from + MINUTE * NANOS,
            minute: m,
            five_minutes: f,
            hour: h,
        };
        if self.current.is_none_or(|c| c.from < from) {
            self.current = Some(current);
        }
        Some(current)
    }

    /// Counts a run that ended at `at`.
    pub(crate) fn run(&mut self, at: u64, latency: Duration, ok: bool) {
        let Some(c) = self.slots_of(at) else { return };
        let bin = bin_of(latency);
        for counts in [&mut self.minutes[c.minute], &mut self.hours[c.hour]] {
            counts.executions += 1;
            counts.failures += u64::from(!ok);
        }
        for bins in [
            &mut self.five_minutes[c.five_minutes],
            &mut self.hour_bins[c.hour],
        ] {
            bins.bins[bin] = bins.bins[bin].saturating_add(1);
        }
    }

    /// Counts a call refused by the gate at `at`.
    pub(crate) fn refusal(&mut self, at: u64) {
        let Some(c) = self.slots_of(at) else { return };
        self.minutes[c.minute].refused += 1;
        self.hours[c.hour].refused += 1;
    }

    /// What the `window` before `now` held, counted in whole periods: up to
    /// an hour by minute (latencies by five minutes), beyond by hour, for
    /// at most the last 24 hours. The oldest period is counted whole: a
    /// window of 90 s holds the runs of the two or three minutes it
    /// touches.
    pub(crate) fn summary(&self, now: u64, window: Duration) -> WindowSummary {
        let start = now.saturating_sub(super::recent::nanos(window));
        let ids = |seconds: u64| (start / NANOS / seconds)..=(now / NANOS / seconds);
        let hourly = window > Duration::from_secs(HOUR);
        let (counts, bins): (&[Counts], &[Bins]) = if hourly {
            (&self.hours, &self.hour_bins)
        } else {
            (&self.minutes, &self.five_minutes)
        };
        let count_ids = ids(if hourly { HOUR } else { MINUTE });
        let bin_ids = ids(if hourly { HOUR } else { FIVE_MINUTES });
        let mut out = WindowSummary::default();
        for c in counts {
            if count_ids.contains(&c.id) {
                out.executions += c.executions;
                out.failures += c.failures;
                out.refused += c.refused;
            }
        }
        for b in bins.iter().filter(|b| bin_ids.contains(&b.id)) {
            for (sum, n) in out.bins.iter_mut().zip(b.bins) {
                *sum += u64::from(n);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_span_half_an_octave_each() {
        assert_eq!(bin_of(Duration::ZERO), 0);
        assert_eq!(bin_of(Duration::from_nanos(999)), 0);
        assert_eq!(bin_of(Duration::from_micros(1)), 1);
        assert_eq!(bin_of(Duration::from_micros(2)), 3);
        assert_eq!(bin_of(Duration::from_micros(3)), 4, "3 ≥ 2·√2");
        assert_eq!(bin_of(Duration::from_micros(4)), 5);
        assert_eq!(bin_of(Duration::from_hours(5)), BINS - 1);
        for micros in [1u64, 7, 90, 1_000, 45_000, 1_000_000] {
            let (lower, upper) = bounds(bin_of(Duration::from_micros(micros)));
            let m = micros as f64;
            assert!(lower <= m && m < upper, "{micros}: {lower}..{upper}");
        }
    }

    #[test]
    fn quantiles_come_within_a_bin_of_the_exact_ones() {
        let mut s = WindowSummary::default();
        for ms in 1..=1_000u64 {
            s.add(Duration::from_millis(ms), true);
        }
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = s.quantile(q).unwrap().as_secs_f64() * 1000.0;
            assert!((got / exact - 1.0).abs() < 0.19, "q{q}: {got} vs {exact}");
        }
        assert_eq!(WindowSummary::default().quantile(0.5), None);
    }

    /// `d` after the epoch, as a time of the counts.
    fn at(d: Duration) -> u64 {
        u64::try_from(d.as_nanos()).unwrap()
    }

    #[test]
    fn a_window_counts_whole_minutes_then_whole_hours_for_a_day() {
        let mut w = Windows::default();
        // A run every second for three hours.
        for s in 0..3 * 3600u64 {
            w.run(
                at(Duration::from_secs(s)),
                Duration::from_millis(5),
                s % 10 != 0,
            );
        }
        let now = at(Duration::from_secs(3 * 3600 - 1));
        let minute = w.summary(now, Duration::from_mins(1));
        // The current minute is whole (it ended at `now`) and the one the
        // window starts in is counted whole too.
        assert_eq!(minute.executions, 120);
        assert_eq!(minute.failures, 12);
        let half_hour = w.summary(now, Duration::from_mins(30));
        assert_eq!(half_hour.executions, 31 * 60);
        let two_hours = w.summary(now, Duration::from_hours(2));
        assert_eq!(two_hours.executions, 3 * 3600, "three whole hours");
        let day = w.summary(now, Duration::from_hours(24));
        assert_eq!(day.executions, 3 * 3600);
        let p50 = day.quantile(0.5).unwrap().as_secs_f64() * 1000.0;
        assert!((p50 / 5.0 - 1.0).abs() < 0.19, "{p50}");
        w.refusal(now);
        assert_eq!(w.summary(now, Duration::from_mins(1)).refused, 1);
    }

    #[test]
    fn a_late_run_counts_in_its_minute_and_a_long_gone_one_clobbers_nothing() {
        let mut w = Windows::default();
        let now = at(Duration::from_mins(90));
        w.run(now, Duration::from_millis(1), true);
        // Learned after a newer run, ended in the minute before.
        w.run(
            now - at(Duration::from_secs(61)),
            Duration::from_millis(1),
            true,
        );
        assert_eq!(w.summary(now, Duration::from_mins(2)).executions, 2);
        // From an hour ago: its minute's slot now holds `now`'s minute,
        // which it must not empty.
        w.run(
            now - at(Duration::from_hours(1)),
            Duration::from_millis(1),
            false,
        );
        let recent = w.summary(now, Duration::from_mins(2));
        assert_eq!((recent.executions, recent.failures), (2, 0));
    }
}
