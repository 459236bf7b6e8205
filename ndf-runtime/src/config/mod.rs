//! Runtime configuration: per-environment presets, per-domain presets, and
//! loading from the environment or a TOML file.

mod env;
mod keys;
#[cfg(test)]
mod load_tests;
mod show;
mod toml_file;
mod values;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::ConfigError;
use crate::model::{Prior, StepMeta};

/// What a step's `domain` option picks when the step sets none of these
/// itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DomainPreset {
    /// Confidence the domain's steps must keep.
    pub confidence_threshold: f64,
    /// Per-attempt timeout of the domain's steps.
    pub step_timeout: Duration,
    /// Memory budget of the domain's steps, in bytes.
    pub memory: u64,
}

const GIB: u64 = 1 << 30;

/// The presets of the guide's domains.
fn default_domains() -> BTreeMap<String, DomainPreset> {
    let preset = |confidence_threshold, secs, memory| DomainPreset {
        confidence_threshold,
        step_timeout: Duration::from_secs(secs),
        memory,
    };
    BTreeMap::from([
        ("data_processing".to_owned(), preset(0.8, 300, 2 * GIB)),
        ("web_development".to_owned(), preset(0.75, 60, GIB / 2)),
        ("security".to_owned(), preset(0.9, 120, GIB)),
    ])
}

/// A deployment environment, each with its own presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Environment {
    /// Strict: high confidence threshold, slow learning, short timeouts.
    Production,
    /// Between production and development.
    Staging,
    /// Lenient: the default.
    #[default]
    Development,
}

/// How the runtime decides, learns and waits.
///
/// `Config::default()` is the development preset; every field's doc gives
/// its default. Set fields with the builder-style methods of the same
/// names (the struct is `#[non_exhaustive]`, so that new settings are not
/// a breaking change):
///
/// ```
/// use std::time::Duration;
/// use ndf::{Config, Environment};
///
/// let config = Config::for_environment(Environment::Production)
///     .step_timeout(Duration::from_secs(10))
///     .latency_alert(Duration::from_millis(250))
///     .max_entries(2_000);
/// assert_eq!(config.step_timeout, Duration::from_secs(10));
/// assert_eq!(config.confidence_threshold, 0.85);
/// config.validate()?;
/// # Ok::<(), ndf::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Config {
    /// Confidence a pattern must keep to be run (0..=1), unless the step
    /// sets its own. Default: 0.60 (production 0.85, staging 0.75).
    pub confidence_threshold: f64,
    /// Weight of the newest outcome in the learned confidence (0..=1).
    /// Default: 0.20 (production 0.05, staging 0.10).
    pub learning_rate: f64,
    /// Per-attempt timeout of steps that set none. Default: 120 s
    /// (production 30 s, staging 60 s).
    pub step_timeout: Duration,
    /// Fraction of failures tolerated before a pattern is reported as
    /// degraded (0..=1). Default: 0.10 (production 0.02, staging 0.05).
    pub error_tolerance: f64,
    /// Outcomes observed before confidence gates anything. Default: 10.
    pub min_samples: u64,
    /// CPU use (fraction of the machine) above which work that asked for
    /// gating waits. Default: 0.8.
    pub cpu_limit: f64,
    /// Memory use (fraction of the machine) above which work that asked
    /// for gating waits. Default: 0.8.
    pub memory_limit: f64,
    /// How long constrained work waits for resources before degrading or
    /// failing (zero: it does not wait). Default: 5 s.
    pub resource_wait: Duration,
    /// Presets by domain name: `data_processing`, `web_development` and
    /// `security` by default.
    pub domains: BTreeMap<String, DomainPreset>,
    /// The prior of every confidence posterior (default `Beta(1, 1)`).
    pub prior: Prior,
    /// How long an open breaker refuses a pattern before it lets probes
    /// through (default 5 s; see [`BreakerState`](crate::BreakerState)).
    pub break_duration: Duration,
    /// Probe runs a half-open breaker admits (default 5); it closes once
    /// `⌈probes × threshold⌉` of them succeed.
    pub half_open_probes: u32,
    /// The evidence the gate needs before it holds a pattern back: it opens
    /// when the recent outcomes are `1 / gate_alpha` times likelier if the
    /// success rate is 0.15 below the threshold than if it is 0.05 above
    /// (0.001 in production, 0.003 in staging, 0.01 in development). A pattern at or above threshold + 0.05 is then held
    /// back falsely at most once per `1 / gate_alpha` runs on average.
    pub gate_alpha: f64,
    /// Wall time over which the gate's evidence halves (default 10 min):
    /// old failures do not hold a pattern back after a quiet spell.
    pub evidence_half_life: Duration,
    /// Whether every run waits while the machine's CPU or memory is above
    /// `cpu_limit`/`memory_limit` (default `false`: only what asked for
    /// gating waits: a `parallel!`'s `resource_threshold`, a step's
    /// `memory` budget; a `degrade!` goes straight to its cheapest level
    /// under pressure either way).
    pub resource_gating: bool,
    /// How much retries may add to a step's calls (0..=1), per 10 s window
    /// and at least 10 retries a window, so that a dependency that goes
    /// down gets no retry storm: with 0.2, a step retries at most one call
    /// in five. Default: `None`, every retry the policy allows.
    pub retry_budget: Option<f64>,
    /// The p95 latency of recent runs above which a workflow raises a
    /// latency alert; `None` (the default) raises none.
    pub latency_alert: Option<Duration>,
    /// How often learning data is saved to the store in the background
    /// (while the runtime's background tasks run on a tokio runtime: the
    /// one it was built in, else the one its runs end in; and only if a
    /// run finished since the last save). Default: 5 s.
    pub flush_interval: Duration,
    /// Runs after which learning data is saved to the store without waiting
    /// for the interval. Default: 10 000.
    pub flush_every: u64,
    /// With a store that shares gates across processes (`PostgresStore`,
    /// `SqliteStore`),
    /// how often the runtime publishes its gates' evidence and pulls the
    /// other processes': a pattern that another process has learned is
    /// failing is held back here within two intervals (one for it to
    /// publish, one to pull), without waiting for failures of its own.
    /// Default: 2 s.
    pub sync_interval: Duration,
    /// How runs are learned. With 1 (the default), a run learns its own
    /// outcome as it ends if no other thread is learning (never waiting for
    /// one), and otherwise queues it without a lock for whoever learns
    /// next (the next run to find the statistics free, on any thread,
    /// learns the queued runs before its own): gating sees every run before
    /// the next one starts, and under contention one thread learns the runs
    /// of all in batches. With N > 1, every run queues
    /// without a lock and a thread applies every queued run in one batch
    /// each N runs (or the learner after `learning_interval`), and
    /// confidence, gating, alerts and metrics lag by up to N runs per
    /// thread. That is not cheaper: queueing a run costs about what the
    /// lock it avoids does (`benches/concurrent.rs`). Reading statistics
    /// always applies what waits first.
    pub learning_batch: usize,
    /// How soon queued runs are applied when no run applies them, and
    /// clean runs learned into their steps' statistics and metrics
    /// (reading statistics, reports or the dashboard always applies first).
    /// Default: 100 ms.
    pub learning_interval: Duration,
    /// (workflow, domain) pairs the runtime keeps statistics for (default
    /// 10 000). Past it, runs in new domains are learned under the domain
    /// `(overflow)`, with a warning, so that unbounded domain values (tenant
    /// or request ids) cannot grow memory without bound.
    pub max_entries: usize,
    /// How long a (workflow, domain) entry may go without a run before a
    /// save evicts it (default 24 h): its rings of recent runs, refusals
    /// and latencies are freed once they are in the store; its counters
    /// and its gate stay, and its next run starts the rings afresh.
    /// Reports over windows longer than this do not see an evicted entry's
    /// runs.
    pub evict_idle_after: Duration,
    /// How often the timeline behind the dashboard takes a point per
    /// workflow and domain (runs, failures, latency, confidence). Default:
    /// 30 s.
    pub timeline_interval: Duration,
    /// Points kept in memory per workflow and domain (a fixed ring; the
    /// default, 2880 points of 30 s, is a day).
    pub timeline_points: usize,
    /// How long the store keeps timeline points; older ones are deleted
    /// when it saves. Default: 30 days.
    pub retention: Duration,
}

impl Config {
    /// The presets of an environment.
    ///
    /// | environment | threshold | learning rate | step timeout | error tolerance |
    /// |---|---|---|---|---|
    /// | production | 0.85 | 0.05 | 30 s | 0.02 |
    /// | staging | 0.75 | 0.10 | 60 s | 0.05 |
    /// | development | 0.60 | 0.20 | 120 s | 0.10 |
    #[must_use]
    pub fn for_environment(env: Environment) -> Self {
        let (confidence_threshold, learning_rate, timeout_secs, error_tolerance) = match env {
            Environment::Production => (0.85, 0.05, 30, 0.02),
            Environment::Staging => (0.75, 0.10, 60, 0.05),
            Environment::Development => (0.60, 0.20, 120, 0.10),
        };
        // Near 0.5 each outcome says less: the lower thresholds need a
        // laxer alpha to hold a dependency 0.2 below them back within 50
        // calls (tests/gate_simulation.rs).
        let gate_alpha = match env {
            Environment::Production => 0.001,
            Environment::Staging => 0.003,
            Environment::Development => 0.01,
        };
        Self {
            confidence_threshold,
            learning_rate,
            step_timeout: Duration::from_secs(timeout_secs),
            error_tolerance,
            min_samples: 10,
            cpu_limit: 0.8,
            memory_limit: 0.8,
            resource_wait: Duration::from_secs(5),
            domains: default_domains(),
            prior: Prior::default(),
            break_duration: Duration::from_secs(5),
            half_open_probes: 5,
            gate_alpha,
            evidence_half_life: Duration::from_mins(10),
            resource_gating: false,
            latency_alert: None,
            retry_budget: None,
            flush_interval: Duration::from_secs(5),
            flush_every: 10_000,
            sync_interval: Duration::from_secs(2),
            learning_batch: 1,
            learning_interval: Duration::from_millis(100),
            max_entries: 10_000,
            evict_idle_after: Duration::from_hours(24),
            timeline_interval: Duration::from_secs(30),
            timeline_points: 2880,
            retention: Duration::from_hours(24 * 30),
        }
    }

    /// The presets of `domain`, if it has any.
    #[must_use]
    #[inline]
    pub fn domain_preset(&self, domain: &str) -> Option<&DomainPreset> {
        self.domains.get(domain)
    }

    /// A step's setting: its own, else its domain preset's.
    #[allow(
        clippy::inline_always,
        reason = "a step's start: inlined in the poll of a long workflow too"
    )]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn step_setting<T>(
        &self,
        own: Option<T>,
        meta: &StepMeta,
        preset: impl FnOnce(&DomainPreset) -> T,
    ) -> Option<T> {
        own.or_else(|| meta.domain.and_then(|d| self.domain_preset(d)).map(preset))
    }

    /// A step's per-attempt timeout: its own, else its domain preset's, else
    /// `step_timeout`.
    #[allow(
        clippy::inline_always,
        reason = "a step's start: inlined in the poll of a long workflow too"
    )]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn timeout_of(&self, meta: &StepMeta) -> Duration {
        self.step_setting(meta.timeout, meta, |p| p.step_timeout)
            .unwrap_or(self.step_timeout)
    }

    /// A step's confidence threshold: `1 − failure_ratio` for a step with
    /// its own `breaker(…)` (what its window holds it to), else its own,
    /// else its domain preset's, else `confidence_threshold`.
    #[inline]
    pub(crate) fn threshold_of(&self, meta: &StepMeta) -> f64 {
        if let Some(policy) = &meta.breaker {
            return 1.0 - policy.failure_ratio;
        }
        self.step_setting(meta.confidence_threshold, meta, |p| p.confidence_threshold)
            .unwrap_or(self.confidence_threshold)
    }

    /// A step's memory budget: its own, else its domain preset's.
    #[allow(
        clippy::inline_always,
        reason = "a step's start: inlined in the poll of a long workflow too"
    )]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn memory_of(&self, meta: &StepMeta) -> Option<u64> {
        self.step_setting(meta.memory, meta, |p| p.memory)
            .filter(|bytes| *bytes > 0)
    }

    /// Checks every value, naming the first bad key. The one set of rules:
    /// the environment and TOML loaders check each key they set against
    /// the same rules, and name the key as it was written.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the key, its value and the accepted range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// The first rule key `key` breaks (`domains.NAME.step_timeout` and
    /// the like for presets).
    pub(crate) fn problem_with(&self, key: &str) -> Option<ConfigError> {
        self.problems().into_iter().find(|p| p.key == key)
    }

    /// Every key whose value breaks its rule, in the order of the fields.
    fn problems(&self) -> Vec<ConfigError> {
        let mut out = Vec::new();
        for (key, value) in [
            ("confidence_threshold", self.confidence_threshold),
            ("learning_rate", self.learning_rate),
            ("error_tolerance", self.error_tolerance),
            ("cpu_limit", self.cpu_limit),
            ("memory_limit", self.memory_limit),
        ] {
            if !(0.0..=1.0).contains(&value) {
                out.push(ConfigError::new(key, value, "must be between 0 and 1"));
            }
        }
        // At zero every gated piece of work would wait for ever.
        for (key, value) in [
            ("cpu_limit", self.cpu_limit),
            ("memory_limit", self.memory_limit),
        ] {
            if value == 0.0 {
                out.push(ConfigError::new(
                    key,
                    value,
                    "must be above 0: at 0, all gated work would wait for ever",
                ));
            }
        }
        let positive = |x: f64| x.is_finite() && x > 0.0;
        if !(positive(self.prior.alpha) && positive(self.prior.beta)) {
            out.push(ConfigError::new(
                "prior",
                format_args!("{},{}", self.prior.alpha, self.prior.beta),
                "both numbers must be above 0, such as `1,1`",
            ));
        }
        self.too_frequent(&mut out);
        if let Some(ratio) = self.retry_budget
            && !(0.0..=1.0).contains(&ratio)
        {
            out.push(ConfigError::new(
                "retry_budget",
                ratio,
                "must be between 0 and 1",
            ));
        }
        if !(self.gate_alpha > 0.0 && self.gate_alpha < 1.0) {
            out.push(ConfigError::new(
                "gate_alpha",
                self.gate_alpha,
                "must be above 0 and below 1",
            ));
        }
        for (key, value) in [
            ("half_open_probes", u64::from(self.half_open_probes)),
            ("flush_every", self.flush_every),
            ("timeline_points", self.timeline_points as u64),
            ("learning_batch", self.learning_batch as u64),
            ("max_entries", self.max_entries as u64),
        ] {
            if value == 0 {
                out.push(ConfigError::new(key, value, "must be at least 1"));
            }
        }
        // Every duration but `resource_wait` (zero: never wait for
        // resources) is a period or a bound that zero would turn into a
        // busy loop or a refusal of everything.
        let durations = [
            ("step_timeout", Some(self.step_timeout)),
            ("break_duration", Some(self.break_duration)),
            ("evidence_half_life", Some(self.evidence_half_life)),
            ("latency_alert", self.latency_alert),
            ("flush_interval", Some(self.flush_interval)),
            ("sync_interval", Some(self.sync_interval)),
            ("learning_interval", Some(self.learning_interval)),
            ("timeline_interval", Some(self.timeline_interval)),
            ("retention", Some(self.retention)),
            ("evict_idle_after", Some(self.evict_idle_after)),
        ];
        for (key, value) in durations {
            if let Some(value) = value.filter(Duration::is_zero) {
                out.push(zero_duration(key, value));
            }
        }
        for (domain, preset) in &self.domains {
            if !(0.0..=1.0).contains(&preset.confidence_threshold) {
                out.push(ConfigError::new(
                    &format!("domains.{domain}.confidence_threshold"),
                    preset.confidence_threshold,
                    "must be between 0 and 1",
                ));
            }
            if preset.step_timeout.is_zero() {
                out.push(zero_duration(
                    &format!("domains.{domain}.step_timeout"),
                    preset.step_timeout,
                ));
            }
        }
        out
    }
}

impl Config {
    /// Periods short enough to be only load (zero is refused apart).
    fn too_frequent(&self, out: &mut Vec<ConfigError>) {
        let floors = [
            (
                "timeline_interval",
                self.timeline_interval,
                Duration::from_secs(1),
                "must be at least 1s: a point per workflow and domain more often than that is only load",
            ),
            (
                "sync_interval",
                self.sync_interval,
                Duration::from_millis(100),
                "must be at least 100ms: every interval each process saves and reads the shared store",
            ),
        ];
        for (key, value, floor, why) in floors {
            if !value.is_zero() && value < floor {
                out.push(ConfigError::new(key, format_args!("{value:?}"), why));
            }
        }
    }
}

fn zero_duration(key: &str, value: Duration) -> ConfigError {
    ConfigError::new(
        key,
        format_args!("{value:?}"),
        "must be longer than zero, such as `30s` or `250ms`",
    )
}

/// Builder-style setters, one per field, each named after its field.
macro_rules! setters {
    ($($field:ident: $ty:ty),* $(,)?) => {
        impl Config {
            $(
                #[doc = concat!("Sets [`Config::", stringify!($field), "`].")]
                #[must_use]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

setters! {
    confidence_threshold: f64,
    learning_rate: f64,
    step_timeout: Duration,
    error_tolerance: f64,
    min_samples: u64,
    cpu_limit: f64,
    memory_limit: f64,
    resource_wait: Duration,
    prior: Prior,
    break_duration: Duration,
    half_open_probes: u32,
    gate_alpha: f64,
    evidence_half_life: Duration,
    resource_gating: bool,
    flush_interval: Duration,
    flush_every: u64,
    sync_interval: Duration,
    learning_batch: usize,
    learning_interval: Duration,
    max_entries: usize,
    evict_idle_after: Duration,
    timeline_interval: Duration,
    timeline_points: usize,
    retention: Duration,
}

impl Config {
    /// Sets [`Config::retry_budget`]: retries may add at most `ratio` of a
    /// step's calls.
    #[must_use]
    pub fn retry_budget(mut self, ratio: f64) -> Self {
        self.retry_budget = Some(ratio);
        self
    }

    /// Sets [`Config::latency_alert`]: runs whose p95 latency is above
    /// `p95` raise a latency alert.
    #[must_use]
    pub fn latency_alert(mut self, p95: Duration) -> Self {
        self.latency_alert = Some(p95);
        self
    }

    /// Adds (or replaces) the preset of `domain` in [`Config::domains`].
    #[must_use]
    pub fn domain(mut self, domain: impl Into<String>, preset: DomainPreset) -> Self {
        self.domains.insert(domain.into(), preset);
        self
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::for_environment(Environment::Development)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_design_table() {
        let p = Config::for_environment(Environment::Production);
        assert_eq!(
            (p.confidence_threshold, p.learning_rate, p.error_tolerance),
            (0.85, 0.05, 0.02)
        );
        assert_eq!(p.step_timeout, Duration::from_secs(30));
        let s = Config::for_environment(Environment::Staging);
        assert_eq!(
            (s.confidence_threshold, s.learning_rate, s.error_tolerance),
            (0.75, 0.10, 0.05)
        );
        assert_eq!(s.step_timeout, Duration::from_mins(1));
        let d = Config::default();
        assert_eq!(
            (d.confidence_threshold, d.learning_rate, d.error_tolerance),
            (0.60, 0.20, 0.10)
        );
        assert_eq!(d.step_timeout, Duration::from_mins(2));
        assert_eq!((d.cpu_limit, d.memory_limit), (0.8, 0.8));
    }

    #[test]
    fn domain_presets_match_the_guide() {
        let c = Config::default();
        let d = c.domain_preset("data_processing").unwrap();
        assert_eq!(
            (d.confidence_threshold, d.step_timeout, d.memory),
            (0.8, Duration::from_mins(5), 2 << 30)
        );
        let w = c.domain_preset("web_development").unwrap();
        assert_eq!(
            (w.confidence_threshold, w.step_timeout, w.memory),
            (0.75, Duration::from_mins(1), 512 << 20)
        );
        let s = c.domain_preset("security").unwrap();
        assert_eq!(
            (s.confidence_threshold, s.step_timeout, s.memory),
            (0.9, Duration::from_mins(2), 1 << 30)
        );
        assert!(c.domain_preset("ops").is_none());
    }

    #[test]
    fn validate_names_the_bad_key() {
        let c = Config {
            cpu_limit: 1.5,
            ..Config::default()
        };
        let err = c.validate().unwrap_err();
        assert_eq!(err.key, "cpu_limit");
        assert_eq!(
            err.to_string(),
            "`cpu_limit` = 1.5: must be between 0 and 1"
        );
    }
}
