//! The one error type of ndf, and the boxed error a step returns.

mod step;

use std::fmt;
use std::time::Duration;

pub use step::{Classify, StepError};

/// Everything that can go wrong when ndf runs a pattern.
///
/// Messages name the pattern and step involved so that a log line is enough
/// to find the failing code; [`std::error::Error::source`] leads to the
/// step's own error where there is one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `run_named` was given a name that no registered pattern has.
    #[error("no pattern named `{name}` is registered{}", did_you_mean(suggestions))]
    PatternNotFound {
        /// The name asked for.
        name: String,
        /// Registered names close to it, nearest first.
        suggestions: Vec<String>,
    },

    /// A step failed after its retries and fallback, or panicked. When its
    /// fallback failed too, [`StepError::fallback_error`] holds the
    /// fallback's own error.
    #[error(
        "pattern `{pattern}` failed in step `{step}`: {source}{}",
        fallback_note(source)
    )]
    Execution {
        /// The pattern (workflow or step) that was run.
        pattern: String,
        /// The step that failed.
        step: String,
        /// The step's own error.
        #[source]
        source: StepError,
    },

    /// The pattern's gate holds it back (its success rate is credibly
    /// below its threshold: the breaker is open, or half-open with its
    /// probes out) and there is no fallback or degradation level to run
    /// instead. Nothing of the pattern ran.
    #[error(
        "pattern `{pattern}` was held back in domain `{domain}`: {}; the breaker is {state}{}; {}call `Ndf::reset(\"{pattern}\", \"{domain}\")` once the cause is fixed",
        held_back_why(*window, *threshold, *failures, *calls, *confidence),
        next_probe(*retry_in, *window),
        if *window { "" } else { "lower `confidence_threshold`, or " }
    )]
    ConfidenceThreshold {
        /// The pattern that was refused.
        pattern: String,
        /// The domain it was refused in.
        domain: String,
        /// Its current confidence (the posterior mean).
        confidence: f64,
        /// The threshold it had to clear.
        threshold: f64,
        /// The state of its breaker: `open` or `half_open`.
        state: crate::model::BreakerState,
        /// How long until the breaker lets probes through; `None` while
        /// probes are out (half-open).
        retry_in: Option<Duration>,
        /// Failures among the outcomes that opened the breaker.
        failures: u32,
        /// Outcomes weighed since the breaker last closed.
        calls: u64,
        /// Whether the step's own `breaker(…)` holds it back (its
        /// window's failure ratio reached `1 − threshold`) rather than the
        /// learned evidence.
        window: bool,
    },

    /// A step returned an error classed [`ErrorClass::Rejected`]: the
    /// caller's fault or an expected business outcome (a declined card, an
    /// empty order). Returned as is: not retried, no fallback, never
    /// learned as the pattern's failure. Completed stages were compensated.
    #[error("pattern `{pattern}` rejected the call in step `{step}`: {source}")]
    Rejected {
        /// The pattern that was run.
        pattern: String,
        /// The step that rejected the call.
        step: String,
        /// The step's own error.
        #[source]
        source: StepError,
    },

    /// A resource stayed above its limit for longer than the runtime waits
    /// (`resource_wait`).
    #[error(
        "not enough {resource}: usage {usage:.2} stayed above the limit {limit:.2} for `resource_wait`; raise `{setting}` or wait longer (`resource_wait`)"
    )]
    ResourceExhausted {
        /// Which resource (`cpu`, `memory`, …).
        resource: String,
        /// The last reading, as a fraction of the machine.
        usage: f64,
        /// The limit it had to stay under.
        limit: f64,
        /// The setting that holds the limit (`cpu_limit`, `memory_limit`,
        /// a `parallel!`'s `resource_threshold`, a step's `memory` budget).
        setting: &'static str,
    },

    /// The context lacks permissions that the pattern's steps require.
    /// Nothing ran.
    #[error("pattern `{pattern}` needs permission{} {} that the context does not grant; nothing was run",
        if missing.len() == 1 { "" } else { "s" }, quoted(missing))]
    PermissionDenied {
        /// The pattern that was refused.
        pattern: String,
        /// The permissions the context lacks.
        missing: Vec<String>,
    },

    /// The step's `rate` allowed no start within its timeout.
    #[error(
        "step `{step}` of pattern `{pattern}` is rate limited to {rate}: no start was free within {waited:?}"
    )]
    RateLimited {
        /// The workflow.
        pattern: String,
        /// The rate-limited step.
        step: String,
        /// Its rate, as `count/period`.
        rate: String,
        /// How long the run waited before giving up (the step's timeout).
        waited: std::time::Duration,
    },
    /// The step's bulkhead was full and so was its queue.
    #[error(
        "step `{step}` of pattern `{pattern}` is saturated: {running} runs at once and {queued} waiting, its `concurrency` and `queue`"
    )]
    Saturated {
        /// The workflow.
        pattern: String,
        /// The saturated step.
        step: String,
        /// Its `concurrency`.
        running: u32,
        /// Its `queue`.
        queued: u32,
    },

    /// The workflow's `deadline` passed while step `step` ran or waited.
    #[error("pattern `{pattern}` passed its deadline of {deadline:?} in step `{step}`")]
    DeadlineExceeded {
        /// The workflow.
        pattern: String,
        /// The step that was running or waiting.
        step: String,
        /// The deadline.
        deadline: std::time::Duration,
    },

    /// A step's last attempt did not finish within its timeout.
    #[error("step `{step}` of pattern `{pattern}` timed out after {after:?}")]
    Timeout {
        /// The pattern that was run.
        pattern: String,
        /// The step that timed out.
        step: String,
        /// The per-attempt timeout.
        after: Duration,
    },

    /// `run_named` was called with input or output types other than those of
    /// the registered pattern.
    #[error("pattern `{name}` has type `{expected}`, but was called as `{found}`")]
    TypeMismatch {
        /// The pattern's name.
        name: String,
        /// The pattern's real signature.
        expected: String,
        /// The signature it was called with.
        found: String,
    },

    /// Fewer tasks of a `parallel!` with `min_success` succeeded than it
    /// requires. The completed tasks were compensated.
    #[error(
        "pattern `{pattern}`: only {succeeded} of {tasks} parallel tasks succeeded, {required} required; first error: {source}"
    )]
    InsufficientSuccess {
        /// The pattern that was run.
        pattern: String,
        /// Tasks that succeeded.
        succeeded: usize,
        /// Tasks in the group.
        tasks: usize,
        /// The `min_success` of the group.
        required: usize,
        /// The first task error.
        #[source]
        source: StepError,
    },

    /// A phase of an `orchestrate!` completed but broke one of its
    /// conditions (`success(…)`, `rollback_if(…)`); its work was rolled back.
    #[error("pattern `{pattern}` rolled back phase `{phase}`: {reason}")]
    RolledBack {
        /// The pattern that was run.
        pattern: String,
        /// The phase whose condition failed.
        phase: String,
        /// Which condition, with the measured value and the bound.
        reason: String,
    },

    /// The runtime is draining ([`Ndf::drain`](crate::Ndf::drain)): it
    /// starts no new run. Nothing ran; run it on another instance.
    #[error("pattern `{pattern}` was not started: the runtime is draining before it stops")]
    Draining {
        /// The pattern that was not started.
        pattern: String,
    },

    /// A pattern with this name is already registered.
    #[error("a pattern named `{name}` is already registered")]
    DuplicatePattern {
        /// The name registered twice.
        name: String,
    },

    /// The learning store failed.
    #[error("learning store: {0}")]
    Store(#[from] StoreError),

    /// A configuration value is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),

    /// Telemetry could not be set up.
    #[error("telemetry: {0}")]
    Telemetry(String),

    /// The run queue (feature `fleet`) failed: its database, or a run that
    /// is unknown or did not end in time.
    #[error("run queue: {0}")]
    Queue(String),

    /// An enqueued run ended with an error.
    #[error("run `{run}` of `{workflow}` failed: {error}")]
    RunFailed {
        /// The run's id.
        run: String,
        /// The workflow it ran.
        workflow: String,
        /// Its error, as the worker kept it.
        error: String,
    },
}

fn next_probe(retry_in: Option<Duration>, window: bool) -> String {
    match retry_in {
        Some(after) if window => format!(", next probe in {after:.1?} (its `break_for`)"),
        Some(after) => format!(", next probe in {after:.1?} (`break_duration`)"),
        None => ", waiting for its probes".to_owned(),
    }
}

/// Why a pattern is held back: the learned evidence, or the window of its
/// `breaker(…)` (for the error and the alert alike).
pub(crate) fn held_back_why(
    window: bool,
    threshold: f64,
    failures: u32,
    calls: u64,
    confidence: f64,
) -> String {
    if window {
        format!(
            "{failures} of the last {calls} outcomes in its `breaker(…)` window failed, reaching its `failure_ratio` of {:.2} (confidence {confidence:.2})",
            1.0 - threshold
        )
    } else {
        format!(
            "its success rate is credibly below the threshold {threshold:.2} ({failures} of its last {calls} outcomes failed; confidence {confidence:.2})"
        )
    }
}

fn fallback_note(source: &StepError) -> String {
    source
        .fallback_error()
        .map(|f| format!("; its fallback failed too: {f}"))
        .unwrap_or_default()
}

impl Error {
    /// How this error is classed for retries, learning and breakers: a
    /// step's error keeps its own class ([`StepError::class`]); a timeout
    /// is transient; a refusal by the gate, a permission or type error is
    /// rejected (the call cannot succeed as made).
    #[must_use]
    pub fn class(&self) -> ErrorClass {
        match self {
            Error::Execution { source, .. } | Error::InsufficientSuccess { source, .. } => {
                source.class()
            }
            Error::Rejected { .. }
            | Error::PermissionDenied { .. }
            | Error::TypeMismatch { .. }
            | Error::PatternNotFound { .. }
            | Error::ConfidenceThreshold { .. } => ErrorClass::Rejected,
            Error::Config(_) | Error::DuplicatePattern { .. } => ErrorClass::Permanent,
            _ => ErrorClass::Transient,
        }
    }
}

/// How an error counts for retries, learning and the breaker: one
/// classification that all of them use.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// It may go away: retried (within `retries`), then the fallback; learned
    /// as a failure. The default.
    #[default]
    Transient,
    /// It will not go away by retrying (a bad configuration, a missing
    /// record): not retried; the fallback runs; learned as a failure.
    Permanent,
    /// The caller's fault or an expected business outcome (invalid input, a
    /// declined card): returned as is in [`Error::Rejected`], never retried,
    /// no fallback, and never learned as the pattern's failure.
    Rejected,
}

fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", quoted(suggestions))
    }
}

fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A learning store failed to load or save.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StoreError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    /// A store error with a message and no underlying cause.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            source: None,
        }
    }

    /// A store error caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// A configuration value is invalid. The message names the key and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{key}` = {value}: {reason}")]
pub struct ConfigError {
    /// The configuration key, as written in the environment or file.
    pub key: String,
    /// The rejected value.
    pub value: String,
    /// Why it was rejected.
    pub reason: String,
}

impl ConfigError {
    /// An error for `key`, whose `value` was rejected for `reason`.
    pub fn new(key: &str, value: impl fmt::Display, reason: impl Into<String>) -> Self {
        Self {
            key: key.to_owned(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_error_converts_with_question_mark() {
        fn parse(s: &str) -> Result<u32, StepError> {
            Ok(s.parse::<u32>()?)
        }
        let err = parse("x").unwrap_err();
        assert!(err.downcast_ref::<std::num::ParseIntError>().is_some());
        assert!(!err.is_panic());
    }

    #[test]
    fn execution_error_exposes_the_step_error_as_source() {
        let err = Error::Execution {
            pattern: "etl.load".into(),
            step: "store".into(),
            source: StepError::msg("disk full"),
        };
        assert_eq!(
            err.to_string(),
            "pattern `etl.load` failed in step `store`: disk full"
        );
        let source = std::error::Error::source(&err).expect("a source");
        assert_eq!(source.to_string(), "disk full");
    }

    #[test]
    fn pattern_not_found_lists_suggestions() {
        let err = Error::PatternNotFound {
            name: "etl.lod".into(),
            suggestions: vec!["etl.load".into()],
        };
        assert_eq!(
            err.to_string(),
            "no pattern named `etl.lod` is registered; did you mean `etl.load`?"
        );
    }
}
