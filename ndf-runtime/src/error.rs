//! The one error type of ndf, and the boxed error a step returns.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

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

    /// A step failed after its retries and fallback, or panicked.
    #[error("pattern `{pattern}` failed in step `{step}`: {source}")]
    Execution {
        /// The pattern (workflow or step) that was run.
        pattern: String,
        /// The step that failed.
        step: String,
        /// The step's own error.
        #[source]
        source: StepError,
    },

    /// The pattern's learned confidence is below its threshold and there is
    /// no fallback or degradation level to run instead.
    #[error(
        "pattern `{pattern}` was not run: its confidence {confidence:.3} is below the threshold {threshold:.3}"
    )]
    ConfidenceThreshold {
        /// The pattern that was refused.
        pattern: String,
        /// Its current confidence.
        confidence: f64,
        /// The threshold it had to clear.
        threshold: f64,
    },

    /// A resource stayed above its limit for longer than the runtime waits.
    #[error("not enough {resource}: usage {usage:.2} stayed above the limit {limit:.2}")]
    ResourceExhausted {
        /// Which resource (`cpu`, `memory`, …).
        resource: String,
        /// The last reading, as a fraction of the machine.
        usage: f64,
        /// The limit it had to stay under.
        limit: f64,
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

/// The error a step returns: any `std::error::Error + Send + Sync + 'static`,
/// boxed.
///
/// Like `anyhow::Error`, it converts from any error with `?`, so a step
/// declared `-> Result<T, StepError>` can use `?` on any fallible call.
/// [`StepError::msg`] builds one from a message.
pub struct StepError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl StepError {
    /// Wraps an error.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self(Box::new(error))
    }

    /// An error that is only a message.
    pub fn msg(message: impl Into<Cow<'static, str>>) -> Self {
        Self(Box::new(Message(message.into())))
    }

    /// Whether the step panicked (the runtime caught the panic).
    #[must_use]
    pub fn is_panic(&self) -> bool {
        self.0.is::<Panicked>()
    }

    /// The underlying error, if it is an `E`.
    #[must_use]
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        self.0.downcast_ref::<E>()
    }

    /// The boxed error.
    #[must_use]
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self.0
    }

    pub(crate) fn panicked(payload: &(dyn std::any::Any + Send + 'static)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a non-string payload".to_owned());
        Self(Box::new(Panicked(message)))
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for StepError {
    fn from(error: E) -> Self {
        Self(Box::new(error))
    }
}

impl From<StepError> for Box<dyn std::error::Error + Send + Sync + 'static> {
    fn from(error: StepError) -> Self {
        error.0
    }
}

impl std::ops::Deref for StepError {
    type Target = dyn std::error::Error + Send + Sync + 'static;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

impl fmt::Debug for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

#[derive(Debug)]
struct Message(Cow<'static, str>);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Message {}

#[derive(Debug)]
struct Panicked(String);

impl fmt::Display for Panicked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the step panicked: {}", self.0)
    }
}

impl std::error::Error for Panicked {}

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
