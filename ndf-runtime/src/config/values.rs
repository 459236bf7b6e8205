//! The value forms of the configuration keys, read from text (an
//! environment variable, or a TOML scalar as text) with errors that name
//! the key as the user wrote it.

use std::time::Duration;

use crate::error::ConfigError;
use crate::model::Prior;

/// A number from 0 to 1.
pub(super) fn fraction(key: &str, text: &str) -> Result<f64, ConfigError> {
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
pub(super) fn open_fraction(key: &str, text: &str) -> Result<f64, ConfigError> {
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
pub(super) fn boolean(key: &str, text: &str) -> Result<bool, ConfigError> {
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

/// A duration with its unit, such as `30s`, `250ms`, `5m` (a bare `0` is
/// zero). A bare number is refused: `45` could mean seconds or
/// milliseconds. Whether it may be zero is [`Config::validate`]'s rule, not
/// the parser's.
///
/// [`Config::validate`]: super::Config::validate
pub(super) fn duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    let text = text.trim();
    if let Ok(number) = text.parse::<f64>() {
        if number == 0.0 {
            return Ok(Duration::ZERO);
        }
        if !(number.is_finite() && number > 0.0) {
            return Err(ConfigError::new(
                key,
                format_args!("{text:?}"),
                "expected a duration, such as `30s` or `250ms`",
            ));
        }
        return Err(ConfigError::new(
            key,
            format_args!("{text:?}"),
            format!("a bare number is ambiguous; give the unit, such as `{text}s` or `{text}ms`"),
        ));
    }
    humantime::parse_duration(text).map_err(|_| {
        ConfigError::new(
            key,
            format_args!("{text:?}"),
            "expected a duration, such as `30s` or `250ms`",
        )
    })
}

/// A whole number of `what`, at least 1.
pub(super) fn at_least_one<N: std::str::FromStr + PartialOrd + From<u8>>(
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

/// A prior as `alpha,beta` (pseudo-successes and pseudo-failures), both
/// above zero, such as `1,1` or `9,1`.
pub(super) fn prior(key: &str, text: &str) -> Result<Prior, ConfigError> {
    let parts: Vec<Option<f64>> = text
        .split([',', ' '])
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse::<f64>().ok())
        .collect();
    match parts.as_slice() {
        [Some(alpha), Some(beta)]
            if alpha.is_finite() && beta.is_finite() && *alpha > 0.0 && *beta > 0.0 =>
        {
            Ok(Prior {
                alpha: *alpha,
                beta: *beta,
            })
        }
        _ => Err(ConfigError::new(
            key,
            format_args!("{text:?}"),
            "expected `alpha,beta`, two numbers above 0, such as `1,1`",
        )),
    }
}

/// What a TOML value is, for messages about values of the wrong kind.
pub(super) fn kind(value: &toml::Value) -> &'static str {
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

/// A TOML value as the text the key's parser reads (`prior` may be an
/// array of two numbers).
pub(super) fn scalar(key: &str, value: &toml::Value) -> Result<String, ConfigError> {
    match value {
        toml::Value::String(s) => Ok(s.clone()),
        toml::Value::Integer(i) => Ok(i.to_string()),
        toml::Value::Float(f) => Ok(f.to_string()),
        toml::Value::Boolean(b) => Ok(b.to_string()),
        toml::Value::Array(items) if key.ends_with("prior") => {
            let texts: Result<Vec<String>, ConfigError> =
                items.iter().map(|item| scalar(key, item)).collect();
            Ok(texts?.join(","))
        }
        other => Err(ConfigError::new(
            key,
            kind(other),
            "expected a number, a boolean or a string",
        )),
    }
}

/// `d` as the shortest duration text the loaders read back exactly.
pub(super) fn duration_text(d: Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    humantime::format_duration(d).to_string().replace(' ', "")
}
