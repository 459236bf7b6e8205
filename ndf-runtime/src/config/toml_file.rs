//! Loading a [`Config`] from a TOML file: the environment's presets, the
//! file's keys, then its `[domains.NAME]` tables, which inherit what they
//! do not set from the keys above them.

use std::path::Path;

use super::values::{duration, fraction, kind, scalar};
use super::{Config, DomainPreset, Environment};
use crate::error::{ConfigError, Error};

impl Config {
    /// The configuration from a TOML file alone: an optional `environment`
    /// picks the presets, then the keys override them; `[domains.NAME]`
    /// tables add or replace domain presets, taking the keys they leave
    /// out from the file's keys. It reads no environment variable: for a
    /// file with `DEPLOYMENT_ENV` and `NDF_*` overrides on top, use
    /// [`Config::load`].
    ///
    /// ```toml
    /// environment = "production"
    /// step_timeout = "45s"
    /// min_samples = 20
    /// prior = [1, 1]
    ///
    /// [domains.billing]
    /// confidence_threshold = 0.95
    /// step_timeout = "10s"
    /// memory = 268435456
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the file when it cannot be read, the line
    /// and column of a syntax error, or the key and value of a bad value.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = read(path)?;
        Ok(Self::from_toml_str(&text).map_err(|e| in_file(path, e))?)
    }

    /// [`Config::from_toml_file`] over TOML text.
    ///
    /// # Errors
    ///
    /// As [`Config::from_toml_file`].
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config = parse(text, None)?;
        config.validate()?;
        Ok(config)
    }
}

/// The text of the file at `path`.
pub(super) fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            &path.display().to_string(),
            "(file)",
            format!("cannot be read: {e}"),
        )
    })
}

/// `error`, its key prefixed with the file's path.
pub(super) fn in_file(path: &Path, mut error: ConfigError) -> ConfigError {
    error.key = format!("{}: {}", path.display(), error.key);
    error
}

/// The configuration TOML `text` describes, over the presets of `env` (or
/// else of the file's `environment`); not validated yet.
pub(super) fn parse(text: &str, env: Option<Environment>) -> Result<Config, ConfigError> {
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| syntax(text, &e))?;
    let from_file = match table.get("environment") {
        Some(toml::Value::String(s)) => Some(Environment::parse("environment", s)?),
        Some(other) => {
            return Err(ConfigError::new(
                "environment",
                kind(other),
                "expected a string",
            ));
        }
        None => None,
    };
    let mut config = Config::for_environment(env.or(from_file).unwrap_or_default());
    // The keys first, so that a domain table inherits the file's values.
    for (key, value) in &table {
        if key != "environment" && key != "domains" {
            config.set(key, key, &scalar(key, value)?)?;
        }
    }
    match table.get("domains") {
        Some(toml::Value::Table(domains)) => {
            for (domain, preset) in domains {
                let preset = domain_preset(&config, domain, preset)?;
                config.domains.insert(domain.clone(), preset);
            }
        }
        Some(other) => {
            return Err(ConfigError::new(
                "domains",
                kind(other),
                "expected a table of `[domains.NAME]` tables",
            ));
        }
        None => {}
    }
    Ok(config)
}

/// A TOML syntax error, with where it is.
fn syntax(text: &str, error: &toml::de::Error) -> ConfigError {
    let at = match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |n| n + 1) + 1;
            format!("(toml, line {line}, column {column})")
        }
        None => "(toml)".to_owned(),
    };
    ConfigError::new(&at, "(document)", error.message().to_owned())
}

/// A `[domains.NAME]` table over the domain's preset; a new domain starts
/// from the file's `confidence_threshold` and `step_timeout` and no memory
/// budget (`memory = 0`).
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
