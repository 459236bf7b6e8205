//! The keys of a configuration and how each is set from text: the one
//! table the environment and TOML loaders share.

use super::values::{at_least_one, boolean, duration, fraction, open_fraction, prior};
use super::{Config, Environment};
use crate::error::ConfigError;

/// The keys of a configuration, as TOML keys; the environment variable of a
/// key is `NDF_` and the key in upper case.
pub(super) const KEYS: &[&str] = &[
    "confidence_threshold",
    "learning_rate",
    "step_timeout",
    "error_tolerance",
    "min_samples",
    "cpu_limit",
    "memory_limit",
    "resource_wait",
    "break_duration",
    "half_open_probes",
    "gate_alpha",
    "evidence_half_life",
    "resource_gating",
    "latency_alert",
    "retry_budget",
    "flush_interval",
    "flush_every",
    "sync_interval",
    "learning_batch",
    "learning_interval",
    "max_entries",
    "timeline_interval",
    "timeline_points",
    "retention",
    "evict_idle_after",
    "prior",
];

impl Environment {
    /// Parses `production`, `staging` or `development` (also `prod`, `stage`,
    /// `dev`), in any case.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for `key` naming the value.
    pub fn parse(key: &str, value: &str) -> Result<Self, ConfigError> {
        match value.trim().to_ascii_lowercase().as_str() {
            "production" | "prod" => Ok(Environment::Production),
            "staging" | "stage" => Ok(Environment::Staging),
            "development" | "dev" => Ok(Environment::Development),
            _ => Err(ConfigError::new(
                key,
                format_args!("{value:?}"),
                "expected `production`, `staging` or `development`",
            )),
        }
    }
}

impl Config {
    /// Sets the key `key` (one of the TOML keys) from text, and checks it
    /// against [`Config::validate`]'s rule for it; `shown` is how the user
    /// wrote the key, for the error.
    pub(super) fn set(&mut self, key: &str, shown: &str, text: &str) -> Result<(), ConfigError> {
        self.parse_key(key, shown, text)?;
        match self.problem_with(key) {
            Some(problem) => Err(ConfigError::new(shown, problem.value, problem.reason)),
            None => Ok(()),
        }
    }

    /// Sets the key `key` from text, as its type reads.
    fn parse_key(&mut self, key: &str, shown: &str, text: &str) -> Result<(), ConfigError> {
        match key {
            "confidence_threshold" => self.confidence_threshold = fraction(shown, text)?,
            "learning_rate" => self.learning_rate = fraction(shown, text)?,
            "error_tolerance" => self.error_tolerance = fraction(shown, text)?,
            "cpu_limit" => self.cpu_limit = fraction(shown, text)?,
            "memory_limit" => self.memory_limit = fraction(shown, text)?,
            "step_timeout" => self.step_timeout = duration(shown, text)?,
            "resource_wait" => self.resource_wait = duration(shown, text)?,
            "break_duration" => self.break_duration = duration(shown, text)?,
            "half_open_probes" => {
                self.half_open_probes = at_least_one(shown, text, "probes")?;
            }
            "gate_alpha" => self.gate_alpha = open_fraction(shown, text)?,
            "evidence_half_life" => self.evidence_half_life = duration(shown, text)?,
            "resource_gating" => self.resource_gating = boolean(shown, text)?,
            "latency_alert" => self.latency_alert = Some(duration(shown, text)?),
            "retry_budget" => self.retry_budget = Some(fraction(shown, text)?),
            "flush_interval" => self.flush_interval = duration(shown, text)?,
            "flush_every" => self.flush_every = at_least_one(shown, text, "runs")?,
            "sync_interval" => self.sync_interval = duration(shown, text)?,
            "learning_batch" => self.learning_batch = at_least_one(shown, text, "runs")?,
            "learning_interval" => self.learning_interval = duration(shown, text)?,
            "max_entries" => self.max_entries = at_least_one(shown, text, "entries")?,
            "timeline_interval" => self.timeline_interval = duration(shown, text)?,
            "timeline_points" => self.timeline_points = at_least_one(shown, text, "points")?,
            "retention" => self.retention = duration(shown, text)?,
            "evict_idle_after" => self.evict_idle_after = duration(shown, text)?,
            "prior" => self.prior = prior(shown, text)?,
            "min_samples" => {
                self.min_samples = text.trim().parse().map_err(|_| {
                    ConfigError::new(shown, format_args!("{text:?}"), "expected a whole number")
                })?;
            }
            _ => {
                return Err(ConfigError::new(
                    shown,
                    format_args!("{text:?}"),
                    format!("unknown key; expected one of: {}", KEYS.join(", ")),
                ));
            }
        }
        Ok(())
    }
}
