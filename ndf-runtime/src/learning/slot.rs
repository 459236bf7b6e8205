//! What is learned of one (pattern, domain) besides its counters: its
//! confidence, its breaker, and the flag runs read without the lock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::time::Instant;

use super::breaker::{Breaker, Transition};
use crate::config::Config;
use crate::model::{BreakerState, Evidence, Prior};

/// Confidence means kept per slot for the report's trend.
const TREND: usize = 32;

/// What is learned of one (pattern, domain) besides its counters.
#[derive(Debug, Default, Clone)]
pub(crate) struct Slot {
    pub(crate) evidence: Evidence,
    /// The gate of the pattern, as a circuit breaker.
    pub(crate) breaker: Breaker,
    /// Recent confidence means, oldest first.
    pub(crate) trend: VecDeque<f64>,
    /// What gating reads of the slot without the lock.
    pub(crate) gate: Arc<SlotGate>,
}

/// What gating reads of one (pattern, domain) without a lock: whether its
/// breaker is closed, published whenever that changes (a breaker that is
/// not is judged under the lock).
#[derive(Debug, Default)]
pub(crate) struct SlotGate {
    not_closed: AtomicBool,
}

impl SlotGate {
    /// Publishes the breaker's state.
    pub(super) fn publish(&self, state: BreakerState) {
        self.not_closed
            .store(state != BreakerState::Closed, Ordering::Relaxed);
    }

    /// Whether the breaker is closed: the slot holds nothing back.
    pub(super) fn passes(&self) -> bool {
        !self.not_closed.load(Ordering::Relaxed)
    }
}

impl Slot {
    /// Learns one outcome with threshold `threshold`, ended at `at`: its
    /// confidence and its breaker. Returns the new confidence mean and the
    /// breaker's change of state, if any (published to runs already).
    pub(super) fn learn(
        &mut self,
        ok: bool,
        threshold: f64,
        at: Instant,
        config: &Config,
    ) -> (f64, Option<Transition>) {
        let mean = self.observe(ok, config.learning_rate, config.prior);
        let transition = self.breaker.observe(ok, threshold, at, config);
        match transition {
            Some(Transition::Opened | Transition::Reopened) => {
                self.gate.publish(BreakerState::Open);
            }
            Some(Transition::Closed) => self.gate.publish(BreakerState::Closed),
            None => {}
        }
        (mean, transition)
    }

    /// Learns one outcome; returns the new posterior mean.
    fn observe(&mut self, ok: bool, learning_rate: f64, prior: Prior) -> f64 {
        self.evidence.observe(ok, learning_rate);
        let mean = self.evidence.mean(prior);
        if self.trend.len() == TREND {
            self.trend.pop_front();
        }
        self.trend.push_back(mean);
        mean
    }

    /// Forgets the evidence and the breaker (closed again); whether the
    /// breaker was not closed.
    pub(super) fn reset(&mut self) -> bool {
        let was_closed = self.breaker.state() == BreakerState::Closed;
        self.evidence = Evidence::default();
        self.breaker = Breaker::default();
        self.trend.clear();
        self.gate.publish(BreakerState::Closed);
        !was_closed
    }
}
