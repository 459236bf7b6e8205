//! Loading a [`Config`] from the process environment, alone or over a
//! TOML file: the preset, then the file, then the `NDF_*` variables.

use std::path::Path;

use super::keys::KEYS;
use super::{Config, Environment};
use crate::error::{ConfigError, Error};

/// How close an unknown `NDF_*` variable must be to a key to be taken for
/// a misspelling of it (Jaro-Winkler similarity of the lower-case names).
const NEAR_MISS: f64 = 0.85;

/// The key an unknown `NDF_*` variable's name (after `NDF_`, lower case)
/// most likely misspells, if it is close to one.
pub(super) fn near_miss(name: &str) -> Option<&'static str> {
    KEYS.iter()
        .map(|key| (strsim::jaro_winkler(name, key), *key))
        .filter(|(score, _)| *score >= NEAR_MISS)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, key)| key)
}

impl Config {
    /// The configuration from the process environment: the presets of
    /// `DEPLOYMENT_ENV` (development when unset), then every `NDF_*`
    /// variable naming a key, such as `NDF_CONFIDENCE_THRESHOLD=0.9` or
    /// `NDF_STEP_TIMEOUT=45s`. Other `NDF_*` variables (an application's
    /// own, such as `NDF_DB`) are left alone; one that looks like a
    /// misspelt key is a warning naming the key it resembles (target
    /// `ndf::config`).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable and its value: an unknown
    /// `DEPLOYMENT_ENV` or a bad value.
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
        let mut config = Self::for_environment(deployment_env(&vars)?.unwrap_or_default());
        config.apply_vars(&vars)?;
        config.validate()?;
        Ok(config)
    }

    /// The configuration of a service, in layers, each overriding the one
    /// before: the presets of the environment (`DEPLOYMENT_ENV`, else the
    /// file's `environment`, else development); then the TOML file at
    /// `path`, if given; then the `NDF_*` variables. So an operator can
    /// keep a file and still override one key for one deployment.
    ///
    /// ```no_run
    /// # fn main() -> Result<(), ndf::Error> {
    /// let config = ndf::Config::load(Some("ndf.toml"))?;
    /// let ndf = ndf::Ndf::builder().config(config).build()?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Config::from_toml_file`] and [`Config::from_env`]: the error
    /// names the file and key, or the variable.
    pub fn load(path: Option<impl AsRef<Path>>) -> Result<Self, Error> {
        Self::load_with(path, std::env::vars())
    }

    /// [`Config::load`] over the given variables instead of the process's.
    ///
    /// # Errors
    ///
    /// As [`Config::load`].
    pub fn load_with<K: AsRef<str>, V: AsRef<str>>(
        path: Option<impl AsRef<Path>>,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Self, Error> {
        let vars: Vec<(K, V)> = vars.into_iter().collect();
        let from_env = deployment_env(&vars)?;
        let mut config = match path {
            Some(path) => {
                let path = path.as_ref();
                let text = super::toml_file::read(path)?;
                super::toml_file::parse(&text, from_env)
                    .map_err(|e| super::toml_file::in_file(path, e))?
            }
            None => Self::for_environment(from_env.unwrap_or_default()),
        };
        config.apply_vars(&vars)?;
        config.validate()?;
        Ok(config)
    }

    /// Sets the key of every `NDF_*` variable; warns of those that look
    /// like misspelt keys.
    fn apply_vars<K: AsRef<str>, V: AsRef<str>>(
        &mut self,
        vars: &[(K, V)],
    ) -> Result<(), ConfigError> {
        for (name, value) in vars {
            let name = name.as_ref();
            let Some(key) = name.strip_prefix("NDF_") else {
                continue;
            };
            let key = key.to_ascii_lowercase();
            if KEYS.contains(&key.as_str()) {
                self.set(&key, name, value.as_ref())?;
            } else if let Some(meant) = near_miss(&key) {
                tracing::warn!(
                    target: "ndf::config",
                    variable = name,
                    "`{name}` is not an ndf setting and is ignored; did you mean `NDF_{}`?",
                    meant.to_ascii_uppercase()
                );
            }
        }
        Ok(())
    }
}

/// The environment `DEPLOYMENT_ENV` names, if it is set.
fn deployment_env<K: AsRef<str>, V: AsRef<str>>(
    vars: &[(K, V)],
) -> Result<Option<Environment>, ConfigError> {
    vars.iter()
        .find(|(k, _)| k.as_ref() == "DEPLOYMENT_ENV")
        .map(|(k, v)| Environment::parse(k.as_ref(), v.as_ref()))
        .transpose()
}
