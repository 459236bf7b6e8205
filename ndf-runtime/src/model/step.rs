//! What the macros know of a step and of a workflow at compile time.

use std::time::Duration;

use crate::policy::RetryPolicy;

/// What `#[pattern]` knows about a step at compile time.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct StepMeta {
    /// Pattern name (the fn name unless `name = "…"`).
    pub name: &'static str,
    /// Domain whose presets apply when the step sets none.
    pub domain: Option<&'static str>,
    /// Per-attempt timeout; the config's `step_timeout` when `None`.
    pub timeout: Option<Duration>,
    /// Retry policy.
    pub retry: RetryPolicy,
    /// Confidence the step must keep to be run.
    pub confidence_threshold: Option<f64>,
    /// Declared memory budget in bytes.
    pub memory: Option<u64>,
    /// Names of steps that must have run earlier in the workflow.
    pub after: &'static [&'static str],
    /// Permissions the context must grant.
    pub permissions: &'static [&'static str],
    /// Name of the fallback step.
    pub fallback: Option<&'static str>,
    /// Per-attempt timeout of the fallback step.
    pub fallback_timeout: Option<Duration>,
    /// Name of the compensating step.
    pub compensate: Option<&'static str>,
    /// Per-attempt timeout of the compensating step.
    pub compensate_timeout: Option<Duration>,
    /// `rate = "N/period"`: at most this many runs of the step start per
    /// period, across every run in the process.
    pub rate: Option<Rate>,
    /// `concurrency = N` (and `queue = M`): at most N runs of the step at
    /// once, across every run in the process.
    pub bulkhead: Option<Bulkhead>,
    /// `idempotent`: running the step twice does no more than running it
    /// once (what hedging needs).
    pub idempotent: bool,
    /// `hedge(after = "50ms", max = 2)`: when an attempt is still running
    /// after `after`, another starts, up to `max` at once; the first
    /// success wins and the others are cancelled.
    pub hedge: Option<Hedge>,
    /// `slow_call = "2s"`: a success slower than this counts as a failure
    /// for the step's confidence and breaker (the caller still gets it).
    pub slow_call: Option<Duration>,
    /// `breaker(…)`: the step's breaker opens on the failure ratio of a
    /// sliding window of its outcomes, as Polly's and resilience4j's do,
    /// instead of on the learned evidence.
    pub breaker: Option<WindowBreaker>,
}

/// A circuit breaker on a sliding window of a step's outcomes, per
/// (pattern, domain): it opens once the window holds at least `min_calls`
/// outcomes and at least `failure_ratio` of them failed (a slow call, or
/// one served by the fallback, is a failure); it stays open for
/// `break_for`, then admits `probes` runs and closes once
/// `⌈probes × (1 − failure_ratio)⌉` of them succeed, with an empty window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowBreaker {
    /// The outcomes judged: the last N, or those of the last period.
    pub window: SlidingWindow,
    /// The share of failures in the window that opens the breaker, in
    /// `(0, 1]`.
    pub failure_ratio: f64,
    /// Outcomes the window must hold before it can open the breaker.
    pub min_calls: u32,
    /// How long the breaker stays open; the config's `break_duration`
    /// when `None`.
    pub break_for: Option<Duration>,
    /// Runs admitted while half-open; the config's `half_open_probes`
    /// when `None`.
    pub probes: Option<u32>,
}

/// The outcomes a [`WindowBreaker`] judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlidingWindow {
    /// The last N outcomes (1 to 1 024).
    Calls(u32),
    /// The outcomes of the last period, counted in ten buckets of a tenth
    /// of it each (so an outcome leaves the window up to a tenth late).
    Time(Duration),
}

/// Hedged attempts: a new one after each `after` without a result, at most
/// `max` in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hedge {
    /// How long an attempt runs before another starts beside it.
    pub after: Duration,
    /// Attempts in flight at most (at least 2).
    pub max: u32,
}

/// A rate limit: `count` starts per `per` (a token bucket holding `count`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Starts allowed per period (at least 1).
    pub count: u32,
    /// The period.
    pub per: Duration,
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{:?}", self.count, self.per)
    }
}

/// A bulkhead: at most `max` runs of a step at once, `queue` more waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bulkhead {
    /// Runs at once (at least 1).
    pub max: u32,
    /// Runs that may wait for a place; beyond, a run fails at once.
    pub queue: u32,
}

impl StepMeta {
    /// Metadata of a step called `name` with every option at its default.
    #[must_use]
    pub const fn new(name: &'static str) -> Self {
        Self {
            name,
            domain: None,
            timeout: None,
            retry: RetryPolicy::NONE,
            confidence_threshold: None,
            memory: None,
            after: &[],
            permissions: &[],
            fallback: None,
            fallback_timeout: None,
            compensate: None,
            compensate_timeout: None,
            rate: None,
            bulkhead: None,
            idempotent: false,
            hedge: None,
            slow_call: None,
            breaker: None,
        }
    }

    /// Whether a failed first attempt can be recovered: the step has
    /// retries, a hedge or a fallback (and so keeps a copy of its input).
    #[must_use]
    pub const fn recovers(&self) -> bool {
        self.retry.max_retries > 0 || self.hedge.is_some() || self.fallback.is_some()
    }

    /// Whether the step has a `rate` or `concurrency` limit.
    #[must_use]
    pub const fn limited(&self) -> bool {
        self.rate.is_some() || self.bulkhead.is_some()
    }
}

/// The static shape of a workflow, for the runtime and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Shape {
    /// The phases of an `orchestrate!` at the top, in order; empty otherwise.
    pub phases: &'static [&'static str],
    /// Step stages, counting repeats.
    pub steps: usize,
    /// `parallel!` groups.
    pub parallel_groups: usize,
    /// The most tasks of one `parallel!`.
    pub max_parallelism: usize,
    /// `degrade!` chains.
    pub degradation_chains: usize,
    /// Nesting depth: 1 for a flat workflow.
    pub depth: usize,
    /// One per step, plus one per parallel task beyond the first of each
    /// group, two per alternative beyond the first of each chain, and one
    /// per nesting level beyond the first.
    pub complexity: usize,
}

impl Shape {
    /// A shape; used by generated code.
    #[must_use]
    #[allow(
        clippy::too_many_arguments,
        reason = "one argument per field of a const"
    )]
    pub const fn new(
        phases: &'static [&'static str],
        steps: usize,
        parallel_groups: usize,
        max_parallelism: usize,
        degradation_chains: usize,
        depth: usize,
        complexity: usize,
    ) -> Self {
        Self {
            phases,
            steps,
            parallel_groups,
            max_parallelism,
            degradation_chains,
            depth,
            complexity,
        }
    }
}
