//! How an attempt failed: what a step's policies (retries, a fallback)
//! read of it, and the error it becomes.

use std::time::Duration;

use crate::error::{Error, ErrorClass, StepError};

/// How an attempt failed. Public in name only, for [`super::step::Policies`]
/// (a hidden trait): not reachable from outside the crate.
#[doc(hidden)]
#[derive(Debug)]
pub enum Failure {
    Failed(StepError),
    TimedOut(Duration),
}

impl Failure {
    /// This failure, with the fallback's own failure kept beside it.
    pub(crate) fn with_fallback(self, fallback: Failure) -> Failure {
        let fallback = match fallback {
            Failure::Failed(e) => e,
            Failure::TimedOut(after) => {
                StepError::msg(format!("the fallback timed out after {after:?}"))
            }
        };
        match self {
            Failure::Failed(e) => Failure::Failed(e.with_fallback_error(fallback)),
            // The step's own last attempt timed out: `Error::Timeout` says
            // so, and has no source to keep the fallback's error in.
            Failure::TimedOut(after) => {
                drop(fallback);
                Failure::TimedOut(after)
            }
        }
    }

    /// The retry-after hint of the error, if any.
    pub(crate) fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Failed(e) => e.retry_after_hint(),
            Failure::TimedOut(_) => None,
        }
    }

    /// The error's class: a timeout is transient.
    pub(crate) fn class(&self) -> ErrorClass {
        match self {
            Failure::Failed(e) => e.class(),
            Failure::TimedOut(_) => ErrorClass::Transient,
        }
    }

    pub(crate) fn into_error(self, pattern: &str, step: &'static str) -> Error {
        let (pattern, step) = (pattern.to_owned(), step.to_owned());
        match self {
            Failure::Failed(source) if source.class() == ErrorClass::Rejected => Error::Rejected {
                pattern,
                step,
                source,
            },
            Failure::Failed(source) => Error::Execution {
                pattern,
                step,
                source,
            },
            Failure::TimedOut(after) => Error::Timeout {
                pattern,
                step,
                after,
            },
        }
    }
}
