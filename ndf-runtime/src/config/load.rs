//! Loading a [`Config`] from the process environment or a TOML file. Every
//! bad value is a [`ConfigError`] naming the key as the user wrote it and
//! the value; nothing falls back silently.

use std::path::Path;
use std::time::Duration;

use super::{Config, DomainPreset, Environment};
use crate::error::{ConfigError, Error};

/// The keys of a configuration, as TOML keys; the environment variable of a
/// key is `NDF_` and the key in upper case.
const KEYS: &[&str] = &[
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
    "learning_batch",
    "learning_interval",
    "max_entries",
    "timeline_interval",
    "timeline_points",
    "retention",
    "evict_idle_after",
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

fn fraction(key: &str, text: &str) -> Result<f64, ConfigError> {
    match text.trim().parse::<f64>() {
        Ok(x) if (0.0..=1.0).contains(&x) => Ok(x),
        _ => Err(ConfigError::new(
            key,
            format_args!("{text:?}"),
            "expected a number between 0 and 1",
        )),
    }
}

/// A number strictly between 0 and 1.
fn open_fraction(key: &str, text: &str) -> Result<f64, ConfigError> {
    match text.trim().parse::<f64>() {
        Ok(x) if x > 0.0 && x < 1.0 => Ok(x),
        _ => Err(ConfigError::new(
            key,
            format_args!("{text:?}"),
            "expected a number above 0 and below 1, such as 0.001",
        )),
    }
}

/// `true` or `false` (also `1`/`0`, `yes`/`no`, `on`/`off`), in any case.
fn boolean(key: &str, text: &str) -> Result<bool, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(
            key,
            format_args!("{text:?}"),
            "expected `true` or `false`",
        )),
    }
}

/// A duration: a number of seconds, or text such as `30s`, `250ms`, `5m`.
/// Whether it may be zero is [`Config::validate`]'s rule, not the
/// parser's.
fn duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    let text = text.trim();
    let parsed = match text.parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs).ok(),
        Err(_) => humantime::parse_duration(text).ok(),
    };
    parsed.ok_or_else(|| {
        ConfigError::new(
            key,
            format_args!("{text:?}"),
            "expected a duration, such as `30s` or `250ms`",
        )
    })
}

/// A whole number of `what`, at least 1.
fn at_least_one<N: std::str::FromStr + PartialOrd + From<u8>>(
    key: &str,
    text: &str,
    what: &str,
) -> Result<N, ConfigError> {
    text.trim()
        .parse()
        .ok()
        .filter(|n| *n >= N::from(1))
        .ok_or_else(|| {
            ConfigError::new(
                key,
                format_args!("{text:?}"),
                format!("expected a whole number of {what}, at least 1"),
            )
        })
}

impl Config {
    /// Sets the key `key` (one of the TOML keys) from text, and checks it
    /// against [`Config::validate`]'s rule for it; `shown` is how the user
    /// wrote the key, for the error.
    fn set(&mut self, key: &str, shown: &str, text: &str) -> Result<(), ConfigError> {
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
            "learning_batch" => self.learning_batch = at_least_one(shown, text, "runs")?,
            "learning_interval" => self.learning_interval = duration(shown, text)?,
            "max_entries" => self.max_entries = at_least_one(shown, text, "entries")?,
            "timeline_interval" => self.timeline_interval = duration(shown, text)?,
            "timeline_points" => self.timeline_points = at_least_one(shown, text, "points")?,
            "retention" => self.retention = duration(shown, text)?,
            "evict_idle_after" => self.evict_idle_after = duration(shown, text)?,
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

    /// The configuration from the process environment: the presets of
    /// `DEPLOYMENT_ENV` (development when unset), then every `NDF_*`
    /// variable naming a key, such as `NDF_CONFIDENCE_THRESHOLD=0.9` or
    /// `NDF_STEP_TIMEOUT=45s`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable and its value: an unknown
    /// `DEPLOYMENT_ENV`, an unknown `NDF_*` variable, or a bad value.
    pub fn from_env() -> Result<Self, Error> {
        Ok(Self::from_vars(std::env::vars())?)
    }

    /// [`Config::from_env`] over the given variables instead of the
    /// process's.
    ///
    /// # Errors
    ///
    /// As [`Config::from_env`].
    pub fn from_vars<K: AsRef<str>, V: AsRef<str>>(
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, ConfigError> {
        let vars: Vec<(K, V)> = vars.into_iter().collect();
        let env = vars
            .iter()
            .find(|(k, _)| k.as_ref() == "DEPLOYMENT_ENV")
            .map(|(k, v)| Environment::parse(k.as_ref(), v.as_ref()))
            .transpose()?
            .unwrap_or(Environment::Development);
        let mut config = Self::for_environment(env);
        for (name, value) in &vars {
            let Some(key) = name.as_ref().strip_prefix("NDF_") else {
                continue;
            };
            config.set(&key.to_ascii_lowercase(), name.as_ref(), value.as_ref())?;
        }
        config.validate()?;
        Ok(config)
    }

    /// The configuration from a TOML file: an optional `environment` picks
    /// the presets, then the keys override them; `[domains.NAME]` tables
    /// add or replace domain presets.
    ///
    /// ```toml
    /// environment = "production"
    /// step_timeout = "45s"
    /// min_samples = 20
    ///
    /// [domains.billing]
    /// confidence_threshold = 0.95
    /// step_timeout = "10s"
    /// memory = 268435456
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the file when it cannot be read or parsed,
    /// or the key and value of a bad value.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(
                &path.display().to_string(),
                "(file)",
                format!("cannot be read: {e}"),
            )
        })?;
        Ok(Self::from_toml_str(&text).map_err(|mut e| {
            e.key = format!("{}: {}", path.display(), e.key);
            e
        })?)
    }

    /// [`Config::from_toml_file`] over TOML text.
    ///
    /// # Errors
    ///
    /// As [`Config::from_toml_file`].
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigError::new("(toml)", "(document)", e.message().to_owned())
        })?;
        let env = match table.get("environment") {
            Some(toml::Value::String(s)) => Environment::parse("environment", s)?,
            Some(other) => {
                return Err(ConfigError::new(
                    "environment",
                    kind(other),
                    "expected a string",
                ));
            }
            None => Environment::Development,
        };
        let mut config = Self::for_environment(env);
        for (key, value) in &table {
            match (key.as_str(), value) {
                ("environment", _) => {}
                ("domains", toml::Value::Table(domains)) => {
                    for (domain, preset) in domains {
                        let preset = domain_preset(&config, domain, preset)?;
                        config.domains.insert(domain.clone(), preset);
                    }
                }
                (_, value) => config.set(key, key, &scalar(key, value)?)?,
            }
        }
        config.validate()?;
        Ok(config)
    }
}

/// What a TOML value is, for messages about values of the wrong kind.
fn kind(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "(a string)",
        toml::Value::Integer(_) => "(an integer)",
        toml::Value::Float(_) => "(a float)",
        toml::Value::Boolean(_) => "(a boolean)",
        toml::Value::Datetime(_) => "(a datetime)",
        toml::Value::Array(_) => "(an array)",
        toml::Value::Table(_) => "(a table)",
    }
}

/// A TOML scalar as the text [`Config::set`] parses.
fn scalar(key: &str, value: &toml::Value) -> Result<String, ConfigError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        other => Err(ConfigError::new(
            key,
            kind(other),
            "expected a number, a boolean or a string",
        )),
    }
}

fn domain_preset(
    config: &Config,
    domain: &str,
    value: &toml::Value,
) -> Result<DomainPreset, ConfigError> {
    let key = |k: &str| format!("domains.{domain}.{k}");
    let toml::Value::Table(table) = value else {
        return Err(ConfigError::new(
            &format!("domains.{domain}"),
            kind(value),
            "expected a table",
        ));
    };
    let mut preset = config
        .domain_preset(domain)
        .copied()
        .unwrap_or(DomainPreset {
            confidence_threshold: config.confidence_threshold,
            step_timeout: config.step_timeout,
            memory: 0,
        });
    for (k, v) in table {
        let text = scalar(&key(k), v)?;
        match k.as_str() {
            "confidence_threshold" => preset.confidence_threshold = fraction(&key(k), &text)?,
            "step_timeout" => preset.step_timeout = duration(&key(k), &text)?,
            "memory" => {
                preset.memory = text.parse().map_err(|_| {
                    ConfigError::new(
                        &key(k),
                        format_args!("{text:?}"),
                        "expected a number of bytes",
                    )
                })?;
            }
            _ => {
                return Err(ConfigError::new(
                    &key(k),
                    format_args!("{text:?}"),
                    "unknown key; expected confidence_threshold, step_timeout or memory",
                ));
            }
        }
    }
    Ok(preset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_period_is_refused_alike_in_code_in_the_environment_and_in_toml() {
        for key in [
            "flush_interval",
            "timeline_interval",
            "learning_interval",
            "break_duration",
            "latency_alert",
            "evict_idle_after",
        ] {
            let env = format!("NDF_{}", key.to_ascii_uppercase());
            let err = Config::from_vars([(env.as_str(), "0s")]).unwrap_err();
            assert_eq!(err.key, env);
            assert!(err.reason.contains("longer than zero"), "{err}");
            let err = Config::from_toml_str(&format!("{key} = \"0ms\"")).unwrap_err();
            assert_eq!(err.key, key);
            assert!(err.reason.contains("longer than zero"), "{err}");
        }
        let err = Config {
            flush_interval: Duration::ZERO,
            ..Config::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`flush_interval` = 0ns: must be longer than zero, such as `30s` or `250ms`"
        );
        let err = Config {
            flush_every: 0,
            ..Config::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(err.key, "flush_every");
    }

    #[test]
    fn a_zero_resource_wait_means_never_wait_on_every_path() {
        let config = Config::from_vars([("NDF_RESOURCE_WAIT", "0")]).unwrap();
        assert_eq!(config.resource_wait, Duration::ZERO);
        assert!(Config::from_toml_str("resource_wait = \"0s\"").is_ok());
        assert!(
            Config {
                resource_wait: Duration::ZERO,
                ..Config::default()
            }
            .validate()
            .is_ok()
        );
        let err = Config::from_vars([("NDF_RESOURCE_WAIT", "-1")]).unwrap_err();
        assert!(err.reason.contains("expected a duration"), "{err}");
    }

    #[test]
    fn deployment_env_picks_the_presets_and_ndf_vars_override() {
        let c = Config::from_vars([
            ("DEPLOYMENT_ENV", "Production"),
            ("NDF_STEP_TIMEOUT", "45s"),
            ("NDF_MIN_SAMPLES", "25"),
            ("PATH", "/usr/bin"),
        ])
        .unwrap();
        assert_eq!(c.confidence_threshold.to_bits(), 0.85f64.to_bits());
        assert_eq!(c.step_timeout, Duration::from_secs(45));
        assert_eq!(c.min_samples, 25);
    }

    #[test]
    fn the_timeline_keys_are_read_and_checked() {
        let c = Config::from_vars([
            ("NDF_TIMELINE_INTERVAL", "10s"),
            ("NDF_TIMELINE_POINTS", "360"),
            ("NDF_RETENTION", "7days"),
            ("NDF_LEARNING_BATCH", "64"),
            ("NDF_LEARNING_INTERVAL", "20ms"),
            ("NDF_MAX_ENTRIES", "500"),
        ])
        .unwrap();
        assert_eq!(c.max_entries, 500);
        assert_eq!(c.learning_batch, 64);
        assert_eq!(c.learning_interval, Duration::from_millis(20));
        assert_eq!(c.timeline_interval, Duration::from_secs(10));
        assert_eq!(c.timeline_points, 360);
        assert_eq!(c.retention, Duration::from_hours(7 * 24));
        let err = Config::from_vars([("NDF_TIMELINE_POINTS", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`NDF_TIMELINE_POINTS` = \"0\": expected a whole number of points, at least 1"
        );
        let err = Config::from_toml_str("retention = \"forever\"").unwrap_err();
        assert_eq!(err.key, "retention");
    }

    #[test]
    fn the_gate_keys_are_read_and_checked() {
        let c = Config::from_vars([
            ("NDF_GATE_ALPHA", "0.0005"),
            ("NDF_BREAK_DURATION", "20s"),
            ("NDF_HALF_OPEN_PROBES", "3"),
            ("NDF_EVIDENCE_HALF_LIFE", "1h"),
            ("NDF_RESOURCE_GATING", "true"),
        ])
        .unwrap();
        assert!((c.gate_alpha - 0.0005).abs() < f64::EPSILON);
        assert_eq!(c.break_duration, Duration::from_secs(20));
        assert_eq!(c.half_open_probes, 3);
        assert_eq!(c.evidence_half_life, Duration::from_hours(1));
        assert!(c.resource_gating);
        let t = Config::from_toml_str("resource_gating = true\ngate_alpha = 0.01").unwrap();
        assert!(t.resource_gating);
        assert!((t.gate_alpha - 0.01).abs() < f64::EPSILON);
        let err = Config::from_vars([("NDF_GATE_ALPHA", "1")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`NDF_GATE_ALPHA` = \"1\": expected a number above 0 and below 1, such as 0.001"
        );
        let err = Config::from_vars([("NDF_RESOURCE_GATING", "maybe")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`NDF_RESOURCE_GATING` = \"maybe\": expected `true` or `false`"
        );
        let err = Config::from_toml_str("half_open_probes = 0").unwrap_err();
        assert_eq!(err.key, "half_open_probes");
        let defaults = Config::default();
        assert!(!defaults.resource_gating, "resource gating is opt-in");
        assert_eq!(
            (defaults.break_duration, defaults.half_open_probes),
            (Duration::from_secs(5), 5)
        );
    }

    #[test]
    fn without_deployment_env_it_is_development() {
        let c = Config::from_vars(Vec::<(String, String)>::new()).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn an_unknown_deployment_env_is_an_error() {
        let err = Config::from_vars([("DEPLOYMENT_ENV", "qa")]).unwrap_err();
        assert_eq!(err.key, "DEPLOYMENT_ENV");
        assert_eq!(
            err.to_string(),
            "`DEPLOYMENT_ENV` = \"qa\": expected `production`, `staging` or `development`"
        );
    }

    #[test]
    fn a_bad_value_names_the_variable_and_the_value() {
        let err = Config::from_vars([("NDF_CPU_LIMIT", "lots")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`NDF_CPU_LIMIT` = \"lots\": expected a number between 0 and 1"
        );
        let err = Config::from_vars([("NDF_STEP_TIMEOUT", "0s")]).unwrap_err();
        assert_eq!(err.key, "NDF_STEP_TIMEOUT");
        let err = Config::from_vars([("NDF_CONFIDENCE", "0.9")]).unwrap_err();
        assert!(err.to_string().contains("unknown key"), "{err}");
    }

    #[test]
    fn toml_sets_keys_and_domains() {
        let c = Config::from_toml_str(
            r#"
            environment = "staging"
            step_timeout = 45
            resource_wait = "250ms"
            cpu_limit = 0.7

            [domains.billing]
            confidence_threshold = 0.95
            step_timeout = "10s"
            memory = 268435456

            [domains.security]
            step_timeout = "30s"
            "#,
        )
        .unwrap();
        assert_eq!((c.confidence_threshold, c.cpu_limit), (0.75, 0.7));
        assert_eq!(
            (c.step_timeout, c.resource_wait),
            (Duration::from_secs(45), Duration::from_millis(250))
        );
        let billing = c.domain_preset("billing").unwrap();
        assert_eq!(
            (
                billing.confidence_threshold,
                billing.step_timeout,
                billing.memory
            ),
            (0.95, Duration::from_secs(10), 256 << 20)
        );
        let security = c.domain_preset("security").unwrap();
        assert_eq!(
            (security.confidence_threshold, security.step_timeout),
            (0.9, Duration::from_secs(30))
        );
    }

    #[test]
    fn toml_errors_name_the_key() {
        let err = Config::from_toml_str("learning_rate = 2.0").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`learning_rate` = \"2\": expected a number between 0 and 1"
        );
        let err = Config::from_toml_str("[domains.billing]\nmemory = \"lots\"").unwrap_err();
        assert_eq!(err.key, "domains.billing.memory");
        let err = Config::from_toml_str("step_timeout = [1]").unwrap_err();
        assert_eq!(err.key, "step_timeout");
        let err = Config::from_toml_str("environment = \"prd\"").unwrap_err();
        assert_eq!(err.key, "environment");
        let err = Config::from_toml_str("not toml at all =").unwrap_err();
        assert_eq!(err.key, "(toml)");
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let err = Config::from_toml_file("/nonexistent/ndf.toml").unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ndf.toml"), "{err}");
    }
}
