//! Confidence in a pattern: a Beta-Bernoulli posterior over its success
//! probability, with exponential forgetting so that recent outcomes weigh
//! more.

/// The prior of every posterior: `Beta(alpha, beta)`. The default,
/// `Beta(1, 1)`, is uniform: no opinion before the first outcome.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Prior {
    /// Pseudo-successes.
    pub alpha: f64,
    /// Pseudo-failures.
    pub beta: f64,
}

impl Default for Prior {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 1.0,
        }
    }
}

/// What ndf believes of a pattern in a domain.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Confidence {
    /// Posterior mean of the success probability (0..=1).
    pub mean: f64,
    /// A lower credible bound: about the 5% quantile of the posterior
    /// (normal approximation), never above the mean.
    pub lower_bound: f64,
    /// Outcomes observed, before forgetting.
    pub samples: u64,
}

/// The evidence behind a [`Confidence`]: outcome counts after forgetting.
///
/// Each outcome first scales the evidence by `1 - learning_rate`, then adds
/// itself: with learning rate λ the posterior remembers about the last 1/λ
/// outcomes. A learning rate of 0 is plain Bayesian updating.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Evidence {
    /// Successes, after forgetting.
    pub successes: f64,
    /// Failures, after forgetting.
    pub failures: f64,
    /// Outcomes observed.
    pub samples: u64,
}

impl Evidence {
    /// Learns one outcome.
    pub fn observe(&mut self, ok: bool, learning_rate: f64) {
        let keep = 1.0 - learning_rate.clamp(0.0, 1.0);
        self.successes = keep * self.successes + f64::from(u8::from(ok));
        self.failures = keep * self.failures + f64::from(u8::from(!ok));
        self.samples += 1;
    }

    /// Learns `n` successes: the same as observing them one by one, but
    /// once one leaves the evidence as it is (converged), the rest are only
    /// counted, so thousands take as long to learn as a few.
    pub(crate) fn observe_successes(&mut self, n: u64, learning_rate: f64) {
        for done in 1..=n {
            let before = *self;
            self.observe(true, learning_rate);
            if self.successes.to_bits() == before.successes.to_bits()
                && self.failures.to_bits() == before.failures.to_bits()
            {
                self.samples += n - done;
                return;
            }
        }
    }

    /// Learns outcomes in the order given: the same as observing them one
    /// by one, which is what lets the runtime apply them in batches.
    pub fn observe_all(&mut self, outcomes: impl IntoIterator<Item = bool>, learning_rate: f64) {
        for ok in outcomes {
            self.observe(ok, learning_rate);
        }
    }

    /// The posterior mean under `prior` (what gating compares).
    #[must_use]
    pub fn mean(&self, prior: Prior) -> f64 {
        let alpha = prior.alpha + self.successes;
        let total = alpha + prior.beta + self.failures;
        if total > 0.0 { alpha / total } else { 0.5 }
    }

    /// The posterior under `prior`.
    #[must_use]
    pub fn confidence(&self, prior: Prior) -> Confidence {
        let alpha = prior.alpha + self.successes;
        let beta = prior.beta + self.failures;
        let total = alpha + beta;
        let mean = if total > 0.0 { alpha / total } else { 0.5 };
        let sd = (mean * (1.0 - mean) / (total + 1.0)).sqrt();
        Confidence {
            mean,
            lower_bound: (mean - 1.645 * sd).clamp(0.0, mean),
            samples: self.samples,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn no_evidence_is_the_prior_mean() {
        let c = Evidence::default().confidence(Prior {
            alpha: 3.0,
            beta: 1.0,
        });
        assert!((c.mean - 0.75).abs() < 1e-12);
        assert_eq!(c.samples, 0);
    }

    #[test]
    fn without_forgetting_it_is_the_beta_posterior() {
        let mut e = Evidence::default();
        e.observe_all([true, true, true, false], 0.0);
        let c = e.confidence(Prior::default());
        assert!((c.mean - 4.0 / 6.0).abs() < 1e-12, "{c:?}");
        assert!(c.lower_bound < c.mean && c.lower_bound > 0.0);
        assert_eq!(c.samples, 4);
    }

    #[test]
    fn forgetting_lets_recent_failures_dominate() {
        let (mut slow, mut fast) = (Evidence::default(), Evidence::default());
        let history = std::iter::repeat_n(true, 50).chain(std::iter::repeat_n(false, 5));
        slow.observe_all(history.clone(), 0.01);
        fast.observe_all(history, 0.3);
        let p = Prior::default();
        assert!(fast.confidence(p).mean < 0.3, "{:?}", fast.confidence(p));
        assert!(slow.confidence(p).mean > 0.8, "{:?}", slow.confidence(p));
    }

    proptest! {
        #[test]
        fn the_mean_stays_a_probability(
            outcomes in proptest::collection::vec(any::<bool>(), 0..300),
            rate in 0.0f64..=1.0,
            alpha in 0.01f64..10.0,
            beta in 0.01f64..10.0,
        ) {
            let mut e = Evidence::default();
            e.observe_all(outcomes.iter().copied(), rate);
            let c = e.confidence(Prior { alpha, beta });
            prop_assert!((0.0..=1.0).contains(&c.mean));
            prop_assert!((0.0..=c.mean).contains(&c.lower_bound));
            prop_assert_eq!(c.samples, outcomes.len() as u64);
        }

        #[test]
        fn an_outcome_moves_the_mean_toward_itself(
            outcomes in proptest::collection::vec(any::<bool>(), 0..100),
            rate in 0.0f64..=1.0,
            next in any::<bool>(),
        ) {
            let mut e = Evidence::default();
            e.observe_all(outcomes.iter().copied(), rate);
            let before = e.confidence(Prior::default()).mean;
            e.observe(next, rate);
            let after = e.confidence(Prior::default()).mean;
            if next {
                prop_assert!(after >= before - 1e-12, "{before} -> {after}");
            } else {
                prop_assert!(after <= before + 1e-12, "{before} -> {after}");
            }
        }

        #[test]
        fn batches_give_the_same_posterior_as_one_by_one(
            outcomes in proptest::collection::vec(any::<bool>(), 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..10),
            rate in 0.0f64..=1.0,
        ) {
            let mut one_by_one = Evidence::default();
            for ok in &outcomes {
                one_by_one.observe(*ok, rate);
            }
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(outcomes.len())).collect();
            cuts.sort_unstable();
            let mut batched = Evidence::default();
            let mut start = 0;
            for end in cuts.into_iter().chain([outcomes.len()]) {
                batched.observe_all(outcomes[start..end].iter().copied(), rate);
                start = end;
            }
            let (a, b) = (one_by_one.confidence(Prior::default()), batched.confidence(Prior::default()));
            prop_assert!((a.mean - b.mean).abs() < 1e-12);
            prop_assert_eq!(a.samples, b.samples);
        }

        /// Bit for bit, converged or not: what lets clean runs be learned
        /// together, thousands as fast as a few.
        #[test]
        fn successes_learned_together_are_those_learned_one_by_one(
            history in proptest::collection::vec(any::<bool>(), 0..50),
            n in prop_oneof![0u64..20, 500u64..3000],
            rate in prop_oneof![Just(0.0), Just(1.0), 0.0f64..=1.0],
        ) {
            let mut together = Evidence::default();
            together.observe_all(history.iter().copied(), rate);
            let mut one_by_one = together;
            together.observe_successes(n, rate);
            one_by_one.observe_all(std::iter::repeat_n(true, usize::try_from(n).unwrap()), rate);
            prop_assert_eq!(together.successes.to_bits(), one_by_one.successes.to_bits());
            prop_assert_eq!(together.failures.to_bits(), one_by_one.failures.to_bits());
            prop_assert_eq!(together.samples, one_by_one.samples);
        }
    }
}
