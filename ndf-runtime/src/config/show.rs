//! The effective configuration, for an operator: as TOML text that
//! [`Config::from_toml_str`] reads back to the same configuration, and as
//! a serde map of the same keys and values.

use std::fmt;

use serde::ser::{SerializeMap, Serializer};

use super::values::duration_text;
use super::{Config, DomainPreset};

/// One value of a key, as TOML writes it.
enum Value {
    Number(f64),
    Whole(u64),
    Bool(bool),
    Text(String),
    Pair(f64, f64),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // `{:?}` keeps a float a float (`1.0`, not `1`).
            Value::Number(x) => write!(f, "{x:?}"),
            Value::Whole(n) => write!(f, "{n}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Text(t) => write!(f, "{t:?}"),
            Value::Pair(a, b) => write!(f, "[{a:?}, {b:?}]"),
        }
    }
}

impl serde::Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Number(x) => serializer.serialize_f64(*x),
            Value::Whole(n) => serializer.serialize_u64(*n),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Text(t) => serializer.serialize_str(t),
            Value::Pair(a, b) => [a, b].serialize(serializer),
        }
    }
}

impl Config {
    /// Every key and its value, in the order of the README's table (keys
    /// left unset, such as `latency_alert`, are left out).
    fn entries(&self) -> Vec<(&'static str, Value)> {
        let d = |d| Value::Text(duration_text(d));
        let mut out = vec![
            (
                "confidence_threshold",
                Value::Number(self.confidence_threshold),
            ),
            ("learning_rate", Value::Number(self.learning_rate)),
            ("step_timeout", d(self.step_timeout)),
            ("error_tolerance", Value::Number(self.error_tolerance)),
            ("min_samples", Value::Whole(self.min_samples)),
            ("cpu_limit", Value::Number(self.cpu_limit)),
            ("memory_limit", Value::Number(self.memory_limit)),
            ("resource_wait", d(self.resource_wait)),
            ("resource_gating", Value::Bool(self.resource_gating)),
            ("break_duration", d(self.break_duration)),
            (
                "half_open_probes",
                Value::Whole(u64::from(self.half_open_probes)),
            ),
            ("gate_alpha", Value::Number(self.gate_alpha)),
            ("evidence_half_life", d(self.evidence_half_life)),
        ];
        if let Some(p95) = self.latency_alert {
            out.push(("latency_alert", d(p95)));
        }
        if let Some(ratio) = self.retry_budget {
            out.push(("retry_budget", Value::Number(ratio)));
        }
        out.extend([
            ("flush_interval", d(self.flush_interval)),
            ("flush_every", Value::Whole(self.flush_every)),
            ("sync_interval", d(self.sync_interval)),
            ("learning_batch", Value::Whole(self.learning_batch as u64)),
            ("learning_interval", d(self.learning_interval)),
            ("max_entries", Value::Whole(self.max_entries as u64)),
            ("evict_idle_after", d(self.evict_idle_after)),
            ("timeline_interval", d(self.timeline_interval)),
            ("timeline_points", Value::Whole(self.timeline_points as u64)),
            ("retention", d(self.retention)),
            ("prior", Value::Pair(self.prior.alpha, self.prior.beta)),
        ]);
        out
    }
}

fn preset_entries(p: &DomainPreset) -> [(&'static str, Value); 3] {
    [
        (
            "confidence_threshold",
            Value::Number(p.confidence_threshold),
        ),
        ("step_timeout", Value::Text(duration_text(p.step_timeout))),
        ("memory", Value::Whole(p.memory)),
    ]
}

/// The configuration as TOML, every key written out:
/// `Config::from_toml_str(&config.to_string())` gives it back. The runtime
/// logs it once when it is built (target `ndf::config`, at info level).
impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in self.entries() {
            writeln!(f, "{key} = {value}")?;
        }
        for (domain, preset) in &self.domains {
            writeln!(f, "\n[domains.{domain}]")?;
            for (key, value) in preset_entries(preset) {
                writeln!(f, "{key} = {value}")?;
            }
        }
        Ok(())
    }
}

/// The configuration as a map of the TOML keys to their values (durations
/// as text such as `"30s"`), `domains` a map of presets.
impl serde::Serialize for Config {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Presets<'a>(&'a std::collections::BTreeMap<String, DomainPreset>);
        impl serde::Serialize for Presets<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let mut map = serializer.serialize_map(Some(self.0.len()))?;
                for (domain, preset) in self.0 {
                    let fields: std::collections::BTreeMap<&str, Value> =
                        preset_entries(preset).into_iter().collect();
                    map.serialize_entry(domain, &fields)?;
                }
                map.end()
            }
        }
        let entries = self.entries();
        let mut map = serializer.serialize_map(Some(entries.len() + 1))?;
        for (key, value) in &entries {
            map.serialize_entry(key, value)?;
        }
        map.serialize_entry("domains", &Presets(&self.domains))?;
        map.end()
    }
}
