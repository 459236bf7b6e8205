//! Running one step: permissions are checked by the caller; here come the
//! attempts with timeout, panic capture, retries with backoff, the fallback,
//! learning, and compensation.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures::FutureExt as _;

use crate::context::PatternContext;
use crate::error::{Error, StepError};
use crate::ndf::Inner;
use crate::policy::lazy_timeout;
use crate::step::Step;

/// The runtime's handle, passed down a running workflow. Opaque to users.
#[derive(Clone, Copy)]
pub struct Cx<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) ctx: &'a PatternContext,
    pub(crate) pattern: &'static str,
}

impl std::fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx")
            .field("pattern", &self.pattern)
            .field("ctx", self.ctx)
            .finish_non_exhaustive()
    }
}

impl<'a> Cx<'a> {
    /// The context of the run.
    #[must_use]
    pub fn context(&self) -> &'a PatternContext {
        self.ctx
    }
}

enum Failure {
    Failed(StepError),
    TimedOut(Duration),
}

impl Failure {
    fn into_error<S: Step>(self, pattern: &str) -> Error {
        match self {
            Failure::Failed(source) => Error::Execution {
                pattern: pattern.to_owned(),
                step: S::META.name.to_owned(),
                source,
            },
            Failure::TimedOut(after) => Error::Timeout {
                pattern: pattern.to_owned(),
                step: S::META.name.to_owned(),
                after,
            },
        }
    }
}

/// One bounded, panic-safe attempt.
async fn attempt<T>(
    fut: impl Future<Output = Result<T, StepError>>,
    timeout: Duration,
) -> Result<T, Failure> {
    match lazy_timeout(AssertUnwindSafe(fut).catch_unwind(), timeout).await {
        Some(Ok(Ok(out))) => Ok(out),
        Some(Ok(Err(error))) => Err(Failure::Failed(error)),
        Some(Err(payload)) => Err(Failure::Failed(StepError::panicked(&*payload))),
        None => Err(Failure::TimedOut(timeout)),
    }
}

/// Runs step `S` under its policies and returns its output with what must be
/// kept to compensate it.
///
/// # Errors
///
/// [`Error::Execution`] when the last attempt (and the fallback) failed or
/// panicked, [`Error::Timeout`] when the last attempt timed out.
pub async fn run_step<S: Step>(cx: Cx<'_>, input: S::Input) -> Result<(S::Output, S::Undo), Error> {
    let meta = &S::META;
    let timeout = meta.timeout.unwrap_or(cx.inner.config.step_timeout);
    let learn = &cx.inner.stats;
    let mut retries = 0;
    while retries < meta.retry.max_retries {
        let Some(copy) = S::dup(&input) else { break };
        match attempt(S::call(copy, cx.ctx), timeout).await {
            Ok(out) => return Ok(learn.step_succeeded::<S>(cx, retries, false, out)),
            Err(_) => {
                tokio::time::sleep(meta.retry.delay(retries)).await;
                retries += 1;
            }
        }
    }

    let Some(copy) = meta.fallback.and_then(|_| S::dup(&input)) else {
        // No fallback: the last attempt may consume the input.
        return match attempt(S::call(input, cx.ctx), timeout).await {
            Ok(out) => Ok(learn.step_succeeded::<S>(cx, retries, false, out)),
            Err(failure) => {
                learn.step_failed::<S>(cx, retries);
                Err(failure.into_error::<S>(cx.pattern))
            }
        };
    };
    let failure = match attempt(S::call(copy, cx.ctx), timeout).await {
        Ok(out) => return Ok(learn.step_succeeded::<S>(cx, retries, false, out)),
        Err(failure) => failure,
    };
    if let Some(fallback) = S::fallback(input, cx.ctx) {
        let fallback_timeout = meta
            .fallback_timeout
            .unwrap_or(cx.inner.config.step_timeout);
        if let Ok(out) = attempt(fallback, fallback_timeout).await {
            return Ok(learn.step_succeeded::<S>(cx, retries, true, out));
        }
    }
    learn.step_failed::<S>(cx, retries);
    Err(failure.into_error::<S>(cx.pattern))
}

/// Runs the `compensate` step of `S` on what was kept of its output. A
/// failing or panicking compensation is logged and counted; the remaining
/// compensations still run.
pub async fn compensate_step<S: Step>(cx: Cx<'_>, undo: S::Undo) {
    let Some(fut) = S::compensate(undo, cx.ctx) else {
        return;
    };
    let timeout = S::META.timeout.unwrap_or(cx.inner.config.step_timeout);
    let outcome = attempt(fut, timeout).await;
    cx.inner.stats.compensated::<S>(cx, outcome.is_ok());
    if let Err(failure) = outcome {
        let error = failure.into_error::<S>(cx.pattern);
        tracing::warn!(pattern = cx.pattern, step = S::META.name, %error, "compensation failed");
    }
}
