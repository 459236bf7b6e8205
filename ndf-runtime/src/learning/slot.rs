//! What is learned of one (pattern, domain) besides its counters: its
//! confidence, its breaker, and the flag runs read without the lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::time::Instant;

use super::breaker::{Breaker, Transition};
use super::sliding::Sliding;
use crate::config::Config;
use crate::model::{BreakerState, Evidence, Prior, WindowBreaker};

/// Confidence means kept per slot for the report's trend.
const TREND: usize = 32;

/// What is learned of one (pattern, domain) besides its counters.
/// (Made with [`Slot::new`], never by default: its gate must count in its
/// runtime's [`NotClosed`].)
#[derive(Debug, Clone)]
pub(crate) struct Slot {
    pub(crate) evidence: Evidence,
    /// The gate of the pattern, as a circuit breaker.
    pub(crate) breaker: Breaker,
    /// The outcomes in the window of a step's `breaker(…)`, once it has
    /// learned one.
    window: Option<Box<Sliding>>,
    /// Recent confidence means, for the report's trend.
    pub(crate) trend: Trend,
    /// What gating reads of the slot without the lock.
    pub(crate) gate: Arc<SlotGate>,
}

/// What gating reads of one (pattern, domain) without a lock: whether its
/// breaker is closed, published whenever that changes (a breaker that is
/// not is judged under the lock), and counted in its runtime's
/// [`NotClosed`].
#[derive(Debug)]
pub(crate) struct SlotGate {
    not_closed: AtomicBool,
    count: NotClosed,
}

/// How many slots of a runtime have a breaker that is not closed. While
/// there are none (a healthy service), a run's gates pass without reading
/// each of its steps' flags: one load a run, not one a step.
#[derive(Debug, Default, Clone)]
pub(crate) struct NotClosed(Arc<AtomicUsize>);

impl NotClosed {
    /// Whether every slot's breaker is closed. Read without the lock, as
    /// the slots' flags are: a breaker that changes while a run starts is
    /// seen by the next one.
    #[inline]
    pub(super) fn none(&self) -> bool {
        self.0.load(Ordering::Relaxed) == 0
    }
}

impl SlotGate {
    /// Publishes the breaker's state (under the statistics lock).
    pub(super) fn publish(&self, state: BreakerState) {
        let not_closed = state != BreakerState::Closed;
        if self.not_closed.swap(not_closed, Ordering::Relaxed) != not_closed {
            if not_closed {
                self.count.0.fetch_add(1, Ordering::Relaxed);
            } else {
                self.count.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }

    /// Whether the breaker is closed: the slot holds nothing back.
    pub(super) fn passes(&self) -> bool {
        !self.not_closed.load(Ordering::Relaxed)
    }
}

impl Drop for SlotGate {
    fn drop(&mut self) {
        if *self.not_closed.get_mut() {
            self.count.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Slot {
    /// A slot with no evidence and a closed breaker, counted in `count`.
    pub(super) fn new(count: &NotClosed) -> Self {
        Self {
            evidence: Evidence::default(),
            breaker: Breaker::default(),
            window: None,
            trend: Trend::default(),
            gate: Arc::new(SlotGate {
                not_closed: AtomicBool::new(false),
                count: count.clone(),
            }),
        }
    }

    /// Learns one outcome with threshold `threshold`, ended at `at`: its
    /// confidence and its breaker (on the window of `policy`, a step's
    /// `breaker(…)`, when it has one). Returns the new confidence mean and
    /// the breaker's change of state, if any (published to runs already).
    pub(super) fn learn(
        &mut self,
        ok: bool,
        threshold: f64,
        policy: Option<&'static WindowBreaker>,
        at: Instant,
        config: &Config,
    ) -> (f64, Option<Transition>) {
        let mean = self.observe(ok, config.learning_rate, config.prior);
        let transition = match policy {
            None => self.breaker.observe(ok, threshold, at, config),
            Some(policy) => {
                let window = self
                    .window
                    .get_or_insert_with(|| Box::new(Sliding::new(policy.window, at)));
                let counts = window.record(ok, at);
                let transition = self.breaker.observe_window(ok, counts, policy, at, config);
                if transition.is_some() {
                    // Each state starts with an empty window.
                    window.clear(at);
                }
                transition
            }
        };
        match transition {
            Some(Transition::Opened | Transition::Reopened) => {
                self.gate.publish(BreakerState::Open);
            }
            Some(Transition::Closed) => self.gate.publish(BreakerState::Closed),
            None => {}
        }
        (mean, transition)
    }

    /// Whether a success under a threshold above zero would change only
    /// the slot's confidence and counts, never its gate: its breaker is
    /// [steady](Breaker::steady) and it has no `breaker(…)` window.
    pub(super) fn steady(&self) -> bool {
        self.window.is_none() && self.breaker.steady()
    }

    /// Learns `n` successes of a [steady](Self::steady) slot, the last
    /// ended at `at`: the same confidence, trend and breaker as learning
    /// them one by one with [`Slot::learn`].
    pub(super) fn learn_successes(
        &mut self,
        n: u64,
        at: Instant,
        learning_rate: f64,
        prior: Prior,
    ) {
        // Only the last means stay in the trend.
        let last = n.min(TREND as u64);
        self.evidence.observe_successes(n - last, learning_rate);
        for _ in 0..last {
            self.observe(true, learning_rate, prior);
        }
        self.breaker.count_successes(n, at);
    }

    /// Learns one outcome; returns the new posterior mean.
    fn observe(&mut self, ok: bool, learning_rate: f64, prior: Prior) -> f64 {
        self.evidence.observe(ok, learning_rate);
        let mean = self.evidence.mean(prior);
        self.trend.push(mean);
        mean
    }

    /// Forgets the evidence and the breaker (closed again); whether the
    /// breaker was not closed.
    pub(super) fn reset(&mut self) -> bool {
        let was_closed = self.breaker.state() == BreakerState::Closed;
        self.evidence = Evidence::default();
        self.breaker = Breaker::default();
        self.window = None;
        self.trend = Trend::default();
        self.gate.publish(BreakerState::Closed);
        !was_closed
    }
}

/// The last [`TREND`] confidence means of a slot: a fixed ring, allocated
/// at its first mean and freed when the slot's entry is evicted, so that a
/// mean is one store, not a deque's bookkeeping.
#[derive(Debug, Default, Clone)]
pub(crate) struct Trend {
    ring: Option<Box<[f64; TREND]>>,
    /// Where the next mean goes.
    next: usize,
    len: usize,
}

impl Trend {
    fn push(&mut self, mean: f64) {
        let ring = self.ring.get_or_insert_with(|| Box::new([0.0; TREND]));
        ring[self.next] = mean;
        self.next = (self.next + 1) % TREND;
        self.len = (self.len + 1).min(TREND);
    }

    /// The means, oldest first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        let start = (self.next + TREND - self.len) % TREND;
        self.ring
            .iter()
            .flat_map(move |ring| (0..self.len).map(move |i| ring[(start + i) % TREND]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successes_learned_at_once_leave_what_learning_them_one_by_one_does() {
        let config = Config::default();
        let at = Instant::now();
        for n in [1, 5, 31, 32, 33, 1_000, 100_000] {
            // Evidence with failures to forget, and a steady breaker.
            let start = Slot {
                evidence: Evidence {
                    successes: 1.0,
                    failures: 3.0,
                    samples: 4,
                },
                ..Slot::new(&NotClosed::default())
            };
            let (mut together, mut alone) = (start.clone(), start);
            together.learn_successes(n, at, config.learning_rate, config.prior);
            for _ in 0..n {
                alone.learn(true, config.confidence_threshold, None, at, &config);
            }
            assert_eq!(together.evidence, alone.evidence, "{n}");
            // (Debug: a breaker that never weighed has a NaN threshold.)
            let breaker = |s: &Slot| format!("{:?}", s.breaker);
            assert_eq!(breaker(&together), breaker(&alone), "{n}");
            let bits = |s: &Slot| s.trend.iter().map(f64::to_bits).collect::<Vec<_>>();
            assert_eq!(bits(&together), bits(&alone), "{n}");
        }
    }

    #[test]
    fn the_runtime_counts_the_breakers_not_closed() {
        let count = NotClosed::default();
        let (a, b) = (Slot::new(&count), Slot::new(&count));
        assert!(count.none());
        a.gate.publish(BreakerState::Open);
        a.gate.publish(BreakerState::HalfOpen);
        b.gate.publish(BreakerState::Open);
        assert_eq!(count.0.load(Ordering::Relaxed), 2, "each slot once");
        a.gate.publish(BreakerState::Closed);
        a.gate.publish(BreakerState::Closed);
        assert!(!count.none());
        // A slot dropped while open no longer holds anything back.
        drop(b);
        assert!(count.none());
    }

    #[test]
    fn the_trend_keeps_the_last_means_oldest_first() {
        let mut trend = Trend::default();
        assert_eq!(trend.iter().count(), 0);
        let mut pushed = 0.0;
        for _ in 0..5 {
            trend.push(pushed);
            pushed += 1.0;
        }
        assert_eq!(trend.iter().collect::<Vec<_>>(), [0.0, 1.0, 2.0, 3.0, 4.0]);
        for _ in 5..TREND + 7 {
            trend.push(pushed);
            pushed += 1.0;
        }
        let kept: Vec<f64> = trend.iter().collect();
        assert_eq!(kept.len(), TREND);
        assert_eq!(kept.first().copied(), Some(7.0), "the oldest kept");
        assert_eq!(kept.last().copied(), Some(pushed - 1.0));
        assert!(kept.windows(2).all(|w| (w[1] - w[0] - 1.0).abs() < 1e-9));
    }
}
