//! What a pattern's gate is in, as the runtime reports and stores it.

/// The state of a pattern's gate, in circuit-breaker terms.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Every run is served; outcomes are weighed.
    #[default]
    Closed,
    /// Runs are refused (their fallback or next degradation level serves)
    /// until the break is over.
    Open,
    /// A few probe runs are let through; their outcomes decide whether the
    /// breaker closes or opens again.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::Open => "open",
            BreakerState::HalfOpen => "half_open",
        }
    }
}

impl std::fmt::Display for BreakerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A breaker as a store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct StoredBreaker {
    /// The state when it was saved.
    pub state: BreakerState,
    /// The evidence against the pattern (a log-likelihood ratio, ≥ 0).
    pub evidence: f64,
    /// Outcomes weighed since the breaker last closed.
    pub calls: u64,
    /// Failures since the evidence was last zero.
    pub failures: u32,
    /// When the evidence last changed, in milliseconds since the Unix
    /// epoch (0: never).
    pub at_unix_ms: u64,
}
