//! Compensation: what a failed workflow awaits to undo its completed
//! stages, last first, each under its compensating step's own timeout.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::Either;

use super::attempt::attempt;
use super::{Cx, Step};
use crate::error::{Error, StepError};

/// A failed workflow's compensation (every `compensate` it awaits, last
/// stage first) as one boxed future, awaited once. What the compensation
/// keeps — the error, what each stage kept, its own attempts — is stored in
/// the box, not in every state of the workflow's future: a workflow's
/// future is as large as its largest state, and without the box its error
/// and results were stored beside every step it awaits. Only a failed run
/// pays the allocation.
pub fn compensation<F: Future<Output = ()>>(compensating: F) -> Pin<Box<F>> {
    Box::pin(compensating)
}

/// The error that ends a workflow's stages, boxed while its completed
/// stages are compensated: the slot that waits for it is kept beside
/// every stage's future (rustc stores it in every state), and a pointer
/// there costs 8 bytes where the error costs 104. Only a failed run pays
/// the allocation.
#[derive(Debug)]
pub struct Failed(Box<Error>);

impl Failed {
    /// Boxes `error`.
    #[cold]
    #[must_use]
    pub fn new(error: Error) -> Self {
        Self(Box::new(error))
    }

    /// The error.
    #[must_use]
    pub fn into_error(self) -> Error {
        *self.0
    }
}

/// Runs the `compensate` step of `S`, stage `index`, on what was kept of its
/// output, under the compensating step's own timeout. A failing or
/// panicking compensation is logged and counted; the remaining
/// compensations still run.
pub fn compensate_step<S: Step>(
    cx: Cx<'_>,
    index: usize,
    undo: S::Undo,
) -> impl Future<Output = ()> + Send + '_ {
    // The compensating step's own timeout, not the undone step's.
    let timeout = S::META
        .compensate_timeout
        .unwrap_or(cx.config().step_timeout);
    compensate_with(
        cx,
        index,
        S::compensate(undo, cx.context()),
        timeout,
        S::NAME,
    )
}

/// [`compensate_step`], generic over the compensation's future rather than
/// the step: steps without `compensate` share one copy. Combinators, not
/// an `async fn`, so that the compensation's future is stored once.
fn compensate_with<'a, F>(
    cx: Cx<'a>,
    index: usize,
    compensation: Option<F>,
    timeout: Duration,
    step: &'static str,
) -> impl Future<Output = ()> + 'a
where
    F: Future<Output = Result<(), StepError>> + 'a,
{
    let Some(fut) = compensation else {
        return Either::Left(std::future::ready(()));
    };
    Either::Right(attempt(fut, timeout).map(move |outcome| {
        if let Some(record) = cx.record(index) {
            record.compensated(outcome.is_ok());
        }
        if let Err(failure) = outcome {
            let error = failure.into_error(cx.pattern(), step);
            tracing::warn!(target: "ndf::compensation", pattern = cx.pattern(), step, %error, "compensation failed");
        }
    }))
}
