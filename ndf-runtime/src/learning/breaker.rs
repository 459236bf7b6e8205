//! The confidence gate as a circuit breaker: it holds a pattern back only on
//! credible evidence that its success rate is below its threshold, lets
//! probes through after a break, and forgets by time as well as by count.
//!
//! # The decision rule
//!
//! While the breaker is closed it accumulates, outcome by outcome, the
//! log-likelihood ratio of two hypotheses about the pattern's success rate
//! `p` against its threshold `t`: *failing*, `p = t − 0.15`, and *healthy*,
//! `p = t + 0.05`. The sum never goes below zero (a CUSUM: a run of
//! successes cannot be banked against a later outage), and it halves every
//! `evidence_half_life` of wall time, so that old failures fade after a
//! quiet night. The breaker opens when the sum reaches `ln(1 / gate_alpha)`,
//! that is when the recent outcomes are `1 / gate_alpha` times likelier
//! under *failing* than under *healthy*, and only after `min_samples`
//! outcomes. By Lorden's bound, a pattern whose success rate is at or above
//! `t + 0.05` opens the breaker falsely at most once per `1 / gate_alpha`
//! outcomes on average; at `t` itself the rule still leans towards serving.
//!
//! # Recovery
//!
//! An open breaker refuses runs for `break_duration`, then turns half-open
//! and admits `half_open_probes` runs. It closes (serving every run again,
//! with fresh evidence) once `⌈probes × t⌉` of them have succeeded, and
//! opens again for another `break_duration` as soon as that can no longer
//! happen. A healed dependency is thus served again after at most the break
//! plus `half_open_probes` calls.
//!
//! # A step's own window
//!
//! A step with `breaker(…)` opens on its [`WindowBreaker`] rule instead:
//! the failure ratio of a sliding window of its outcomes, once the window
//! holds `min_calls`; its break and probes are its own, and it closes
//! once `⌈probes × (1 − failure_ratio)⌉` probes succeed. The window is
//! kept by the slot ([`Sliding`](super::sliding::Sliding)); the phases are
//! the same.

use std::time::Duration;

use tokio::time::Instant;

use crate::config::Config;
use crate::model::{BreakerState, Clock, StoredBreaker, WindowBreaker};

/// How far above its threshold a pattern counts as healthy.
pub const HEALTHY_MARGIN: f64 = 0.05;
/// How far below its threshold a pattern counts as failing.
pub const FAILING_MARGIN: f64 = 0.15;

/// Where a breaker is, with what each state needs.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Closed,
    Open {
        until: Instant,
    },
    HalfOpen {
        succeeded: u32,
        failed: u32,
        admitted: u32,
        last_admitted: Instant,
    },
}

impl Phase {
    /// Open until `break_for` after `now`.
    fn open(now: Instant, break_for: Duration) -> Self {
        Phase::Open {
            until: now + break_for,
        }
    }

    /// Half-open from `now`, no probe admitted yet.
    fn half_open(now: Instant) -> Self {
        Phase::HalfOpen {
            succeeded: 0,
            failed: 0,
            admitted: 0,
            last_admitted: now,
        }
    }
}

/// What the breaker says of a run about to start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Admission {
    /// Closed: the run is served.
    Serve,
    /// Half-open: the run is one of the probes.
    Probe,
    /// Open, or half-open with its probes out: the run is refused; the
    /// next probe is due in `retry_in` (`None` while probes are out).
    Refuse {
        state: BreakerState,
        retry_in: Option<Duration>,
    },
}

/// A change of state an outcome caused, to be reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transition {
    /// Closed → open: the evidence became credible.
    Opened,
    /// Half-open → open: the probes failed.
    Reopened,
    /// Half-open → closed: the probes succeeded.
    Closed,
}

/// One (pattern, domain)'s breaker.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Breaker {
    /// The CUSUM of log-likelihood ratios, failing against healthy (≥ 0).
    evidence: f64,
    /// Outcomes weighed since the breaker last closed.
    calls: u64,
    /// Failures since the evidence was last zero.
    failures: u32,
    /// When the evidence last changed, for forgetting by time.
    at: Option<Instant>,
    phase: Phase,
    /// The threshold the two log-likelihood ratios below were made for.
    threshold: f64,
    /// When probes last closed the breaker: the fleet's evidence from
    /// before then is superseded.
    closed_at: Option<Instant>,
    /// Added to the evidence by a success (negative) and by a failure.
    on_success: f64,
    on_failure: f64,
    /// The other processes' evidence and outcomes, with a store shared by
    /// a fleet (zero otherwise), as last pulled.
    fleet: Fleet,
    /// The step's `breaker(…)`, once it was judged or learned with one.
    policy: Option<&'static WindowBreaker>,
}

/// What the other processes sharing a store learned of a breaker.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct Fleet {
    /// Their evidence, each aged to when it was pulled.
    pub(crate) evidence: f64,
    /// The outcomes they weighed.
    pub(crate) calls: u64,
    /// The failures among them since their evidence was last zero.
    pub(crate) failures: u32,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            evidence: 0.0,
            calls: 0,
            failures: 0,
            at: None,
            phase: Phase::Closed,
            threshold: f64::NAN,
            on_success: 0.0,
            on_failure: 0.0,
            fleet: Fleet::default(),
            closed_at: None,
            policy: None,
        }
    }
}

/// The probes that must succeed to close a half-open breaker with
/// threshold `threshold`: `⌈probes × threshold⌉`, at least one.
pub(crate) fn probes_needed(probes: u32, threshold: f64) -> u32 {
    let needed = (f64::from(probes) * threshold - 1e-9).ceil();
    // In 0..=probes: the cast cannot truncate.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let needed = needed.clamp(1.0, f64::from(probes)) as u32;
    needed
}

impl Breaker {
    /// The breaker's state.
    pub(crate) fn state(&self) -> BreakerState {
        match self.phase {
            Phase::Closed => BreakerState::Closed,
            Phase::Open { .. } => BreakerState::Open,
            Phase::HalfOpen { .. } => BreakerState::HalfOpen,
        }
    }

    /// Failures since the evidence was last zero, the fleet's included
    /// (for messages).
    pub(crate) fn failures(&self) -> u32 {
        self.failures.saturating_add(self.fleet.failures)
    }

    /// Outcomes weighed since the breaker last closed, the fleet's
    /// included (for messages).
    pub(crate) fn calls(&self) -> u64 {
        self.calls + self.fleet.calls
    }

    /// Makes the breaker follow a step's `breaker(…)` (its break, its
    /// probes, its window rule), or the learned rule with `None`.
    pub(crate) fn govern(&mut self, policy: Option<&'static WindowBreaker>) {
        self.policy = policy;
    }

    /// How long an opening holds the pattern back.
    pub(crate) fn break_for(&self, config: &Config) -> Duration {
        self.policy
            .and_then(|p| p.break_for)
            .unwrap_or(config.break_duration)
    }

    /// Runs admitted while half-open.
    fn probes(&self, config: &Config) -> u32 {
        self.policy
            .and_then(|p| p.probes)
            .unwrap_or(config.half_open_probes)
    }

    /// Decides whether a run starting `now` is served, probes, or is
    /// refused; moves an open breaker whose break is over to half-open.
    pub(crate) fn admit(&mut self, now: Instant, config: &Config) -> Admission {
        if let Phase::Open { until } = self.phase {
            if now < until {
                return Admission::Refuse {
                    state: BreakerState::Open,
                    retry_in: Some(until - now),
                };
            }
            self.phase = Phase::half_open(now);
        }
        let (probes, break_for) = (self.probes(config), self.break_for(config));
        let Phase::HalfOpen {
            succeeded,
            failed,
            admitted,
            last_admitted,
        } = &mut self.phase
        else {
            return Admission::Serve;
        };
        let answered = *succeeded + *failed;
        if *admitted >= probes && now.duration_since(*last_admitted) >= break_for {
            // Probes that never reported (their run stopped before the
            // step, or was dropped): let others take their place.
            *admitted = answered;
        }
        if *admitted < probes {
            *admitted += 1;
            *last_admitted = now;
            return Admission::Probe;
        }
        Admission::Refuse {
            state: BreakerState::HalfOpen,
            retry_in: None,
        }
    }

    /// Weighs one outcome of a pattern with threshold `threshold`, learned
    /// at `now`; returns the change of state it caused, if any.
    #[inline]
    pub(crate) fn observe(
        &mut self,
        ok: bool,
        threshold: f64,
        now: Instant,
        config: &Config,
    ) -> Option<Transition> {
        // The usual case, kept inline: a success of a closed breaker with
        // nothing against it here or in the fleet. It only counts: the
        // evidence stays at zero, so nothing fades and nothing can open.
        if ok && threshold > 0.0 && self.steady() {
            self.at = Some(now);
            self.calls += 1;
            self.failures = 0;
            return None;
        }
        self.weigh(ok, threshold, now, config)
    }

    /// Closed, with nothing against it here or in the fleet: a success
    /// (under a threshold above zero) only counts. Successes in this state
    /// commute, so they can be counted together
    /// ([`Breaker::count_successes`]).
    pub(crate) fn steady(&self) -> bool {
        matches!(self.phase, Phase::Closed) && self.evidence == 0.0 && self.fleet.evidence <= 0.0
    }

    /// `n` successes of a [`steady`](Self::steady) breaker under a
    /// threshold above zero, the last ended at `at`: the same as observing
    /// them one by one.
    pub(crate) fn count_successes(&mut self, n: u64, at: Instant) {
        debug_assert!(self.steady(), "only a steady breaker counts successes");
        self.at = self.at.max(Some(at));
        self.calls += n;
        self.failures = 0;
    }

    /// [`Breaker::observe`] past its inline case.
    #[inline(never)]
    fn weigh(
        &mut self,
        ok: bool,
        threshold: f64,
        now: Instant,
        config: &Config,
    ) -> Option<Transition> {
        match self.phase {
            Phase::Closed => {}
            // A run admitted before the breaker opened: already judged.
            Phase::Open { .. } => return None,
            Phase::HalfOpen { .. } => return self.probed(ok, threshold, now, config),
        }
        if threshold <= 0.0 {
            // A threshold of zero holds nothing back.
            return None;
        }
        self.forget(now, config.evidence_half_life);
        if self.threshold.to_bits() != threshold.to_bits() {
            self.weigh_for(threshold);
        }
        self.calls += 1;
        if ok {
            self.evidence = (self.evidence + self.on_success).max(0.0);
            if self.evidence == 0.0 {
                self.failures = 0;
            }
        } else {
            self.evidence += self.on_failure;
            self.failures = self.failures.saturating_add(1);
        }
        // Healthy, the evidence stays at zero: the threshold's logarithm is
        // worked out only when there is evidence to weigh against it.
        self.open_on_evidence(now, config)
    }

    /// Weighs the outcome of a probe of a half-open breaker with
    /// threshold `threshold`: closes it once enough probes succeeded,
    /// opens it again once they no longer can.
    fn probed(
        &mut self,
        ok: bool,
        threshold: f64,
        now: Instant,
        config: &Config,
    ) -> Option<Transition> {
        let probes = self.probes(config);
        let break_for = self.break_for(config);
        let Phase::HalfOpen {
            succeeded, failed, ..
        } = &mut self.phase
        else {
            return None;
        };
        if ok {
            *succeeded += 1;
        } else {
            *failed += 1;
        }
        let needed = probes_needed(probes, threshold);
        if *succeeded >= needed {
            self.close(now);
            return Some(Transition::Closed);
        }
        if *failed > probes - needed {
            self.phase = Phase::open(now, break_for);
            return Some(Transition::Reopened);
        }
        None
    }

    /// Weighs one outcome of a step with `breaker(policy)`, learned at
    /// `now`, after its window took it and holds `calls` outcomes of which
    /// `failures` failed; returns the change of state it caused, if any.
    pub(crate) fn observe_window(
        &mut self,
        ok: bool,
        (calls, failures): (u32, u32),
        policy: &'static WindowBreaker,
        now: Instant,
        config: &Config,
    ) -> Option<Transition> {
        self.policy = Some(policy);
        match self.phase {
            Phase::Closed => {
                // For messages: what the window holds.
                self.calls = u64::from(calls);
                self.failures = failures;
                self.at = Some(now);
                let opens = calls >= policy.min_calls
                    && f64::from(failures) >= policy.failure_ratio * f64::from(calls) - 1e-9;
                opens.then(|| {
                    self.phase = Phase::open(now, self.break_for(config));
                    Transition::Opened
                })
            }
            Phase::Open { .. } => None,
            Phase::HalfOpen { .. } => self.probed(ok, 1.0 - policy.failure_ratio, now, config),
        }
    }

    /// Opens a closed breaker when its evidence and the fleet's together
    /// are credible.
    fn open_on_evidence(&mut self, now: Instant, config: &Config) -> Option<Transition> {
        let evidence = self.evidence + self.fleet.evidence;
        if self.phase == Phase::Closed
            && self.policy.is_none()
            && self.calls + self.fleet.calls >= config.min_samples
            && evidence > 0.0
            && evidence >= open_at(config)
        {
            self.phase = Phase::open(now, self.break_for(config));
            return Some(Transition::Opened);
        }
        None
    }

    /// Takes what the other processes sharing the store learned (pulled at
    /// `now`); returns the change of state it caused: a pattern the fleet
    /// found failing is held back here without failures of its own.
    pub(crate) fn join_fleet(
        &mut self,
        fleet: Fleet,
        now: Instant,
        config: &Config,
    ) -> Option<Transition> {
        self.fleet = fleet;
        self.open_on_evidence(now, config)
    }

    /// Forgets what the other processes learned (they retracted it).
    pub(crate) fn leave_fleet(&mut self) {
        self.fleet = Fleet::default();
    }

    /// The threshold its evidence was weighed for, once it weighed one.
    pub(crate) fn threshold(&self) -> Option<f64> {
        self.threshold.is_finite().then_some(self.threshold)
    }

    /// When probes last closed the breaker (the fleet's evidence from
    /// before then does not count).
    pub(crate) fn closed_at(&self) -> Option<Instant> {
        self.closed_at
    }

    /// Closes the breaker at `now` with fresh evidence.
    fn close(&mut self, now: Instant) {
        self.phase = Phase::Closed;
        self.evidence = 0.0;
        self.calls = 0;
        self.failures = 0;
        self.fleet = Fleet::default();
        self.closed_at = Some(now);
    }

    /// Halves the evidence every `half_life` since it last changed.
    fn forget(&mut self, now: Instant, half_life: Duration) {
        if let Some(at) = self.at
            && self.evidence > 0.0
        {
            let elapsed = now.saturating_duration_since(at).as_secs_f64();
            self.evidence *= 0.5f64.powf(elapsed / half_life.as_secs_f64());
        }
        self.at = Some(now);
    }

    /// The log-likelihood ratios of a success and a failure, failing
    /// against healthy, for `threshold`.
    fn weigh_for(&mut self, threshold: f64) {
        let healthy = (threshold + HEALTHY_MARGIN).clamp(0.02, 0.9999);
        let failing = (threshold - FAILING_MARGIN).clamp(0.0001, healthy - 0.01);
        self.threshold = threshold;
        self.on_success = (failing / healthy).ln();
        self.on_failure = ((1.0 - failing) / (1.0 - healthy)).ln();
    }

    /// What the store keeps of the breaker, at wall time `clock`.
    pub(crate) fn stored(&self, clock: &Clock) -> StoredBreaker {
        StoredBreaker {
            state: self.state(),
            evidence: self.evidence,
            calls: self.calls,
            failures: self.failures,
            at_unix_ms: self.at.map_or(0, |at| clock.unix_ms_of(at)),
        }
    }

    /// The breaker a store kept: its evidence ages from when it last
    /// changed, and a breaker that was open or half-open is half-open now,
    /// so that probes decide at once whether the pattern is served again.
    pub(crate) fn restored(kept: &StoredBreaker, clock: &Clock) -> Self {
        let ago = Duration::from_millis(clock.unix_ms.saturating_sub(kept.at_unix_ms));
        let mut breaker = Breaker {
            evidence: if kept.evidence.is_finite() {
                kept.evidence.max(0.0)
            } else {
                0.0
            },
            calls: kept.calls,
            failures: kept.failures,
            at: (kept.at_unix_ms > 0)
                .then(|| clock.instant.checked_sub(ago))
                .flatten(),
            ..Breaker::default()
        };
        if kept.state != BreakerState::Closed {
            breaker.phase = Phase::half_open(clock.instant);
        }
        breaker
    }
}

/// The evidence at which a breaker opens: `ln(1 / gate_alpha)`.
fn open_at(config: &Config) -> f64 {
    (1.0 / config.gate_alpha).ln()
}

#[cfg(test)]
#[path = "breaker_tests.rs"]
mod tests;
