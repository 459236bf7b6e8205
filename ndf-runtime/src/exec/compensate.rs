//! Compensation: what a failed workflow awaits to undo its completed
//! stages, last first, each under its compensating step's own timeout.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::Either;

use super::attempt::attempt;
use super::{Cx, Step};
use crate::error::{Error, StepError};

/// The compensations a failed workflow gathers, last completed stage
/// first, then awaits one after the other (`__ndf_undos.await`).
///
/// The workflow's code only gathers (a call per completed stage, no
/// `await`): one future type, compiled once here, runs them all, so a
/// workflow's expansion carries no compensating state machine of its own
/// for rustc to check and compile. Each compensation is boxed as it is
/// gathered, and starts (its timeout with it) only when its turn comes.
/// Only a failed run whose completed stages compensate allocates: a step
/// without `compensate` adds nothing.
#[must_use = "gathered compensations run only when awaited"]
pub struct Undos<'a> {
    each: Vec<Pin<Box<dyn Future<Output = ()> + Send + 'a>>>,
    /// The next to run.
    next: usize,
}

impl<'a> Undos<'a> {
    /// Nothing gathered yet.
    pub const fn new() -> Self {
        Self {
            each: Vec::new(),
            next: 0,
        }
    }

    /// Gathers the `compensate` step of `S`, stage `index`, on what was
    /// kept of its output: nothing for a step without one.
    pub fn step<S: Step>(&mut self, cx: Cx<'a>, index: usize, kept: S::Undo) {
        if const { S::META.compensate.is_some() } {
            self.each
                .push(Box::pin(compensate_step::<S>(cx, index, kept)));
        }
    }
}

/// Where a workflow keeps, until its run ends, what a completed stage
/// kept to be compensated ([`Step::Slot`]): an `Option` of it for a step
/// with `compensate`; for a step without, [`NoUndo`], which takes no
/// byte, where an `Option<()>` took one (and its padding) for every
/// stage of a run.
#[doc(hidden)]
pub trait UndoSlot: Sized {
    /// What the stage kept.
    type Of;
    /// Nothing kept yet (the stage has not completed).
    fn empty() -> Self;
    /// What the completed stage kept.
    fn fill(kept: Self::Of) -> Self;
    /// What is kept, taken, to compensate the stage: `None` if it did not
    /// complete, or if it has nothing to compensate.
    fn take(&mut self) -> Option<Self::Of>;
}

impl<U> UndoSlot for Option<U> {
    type Of = U;

    #[inline]
    fn empty() -> Self {
        None
    }

    #[inline]
    fn fill(kept: U) -> Self {
        Some(kept)
    }

    #[inline]
    fn take(&mut self) -> Option<U> {
        Option::take(self)
    }
}

/// The slot of a step without `compensate`: nothing to keep, nothing to
/// compensate.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct NoUndo;

impl UndoSlot for NoUndo {
    type Of = ();

    #[inline]
    fn empty() -> Self {
        Self
    }

    #[inline]
    fn fill((): ()) -> Self {
        Self
    }

    #[inline]
    fn take(&mut self) -> Option<()> {
        None
    }
}

impl std::fmt::Debug for Undos<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Undos")
            .field("gathered", &self.each.len())
            .field("next", &self.next)
            .finish()
    }
}

impl Default for Undos<'_> {
    fn default() -> Self {
        Self::new()
    }
}

impl Future for Undos<'_> {
    type Output = ();

    /// Runs the gathered compensations in the order they were gathered.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        while let Some(compensation) = this.each.get_mut(this.next) {
            std::task::ready!(compensation.as_mut().poll(cx));
            this.next += 1;
        }
        Poll::Ready(())
    }
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

/// What a stage's run fails with: the error itself, or boxed
/// ([`Failed`]). A step's run gives it boxed: its result is then 8 bytes
/// wider than its output, not 104, so the copies of it on the way out of
/// the step's poll cost nothing on the happy path (about 25 instructions
/// a step before), and a `parallel!`'s task keeps a word for its error
/// beside its output, not the error. A nested workflow gives the error
/// itself. The generated code takes either.
#[doc(hidden)]
pub trait StageError: Sized + Send + 'static {
    /// The error, as it was made.
    fn of(error: Error) -> Self;
    /// The error boxed in `failed`.
    fn from_failed(failed: Failed) -> Self;
    /// Boxed, to end the stages with.
    fn into_failed(self) -> Failed;
    /// The error itself.
    fn into_error(self) -> Error;
    /// The error, borrowed.
    fn error(&self) -> &Error;
}

impl StageError for Error {
    #[inline]
    fn of(error: Error) -> Self {
        error
    }

    #[inline]
    fn from_failed(failed: Failed) -> Self {
        failed.into_error()
    }

    #[inline]
    fn into_failed(self) -> Failed {
        Failed::new(self)
    }

    #[inline]
    fn into_error(self) -> Error {
        self
    }

    #[inline]
    fn error(&self) -> &Error {
        self
    }
}

impl StageError for Failed {
    #[inline]
    fn of(error: Error) -> Self {
        Failed::new(error)
    }

    #[inline]
    fn from_failed(failed: Failed) -> Self {
        failed
    }

    #[inline]
    fn into_failed(self) -> Failed {
        self
    }

    #[inline]
    fn into_error(self) -> Error {
        Failed::into_error(self)
    }

    #[inline]
    fn error(&self) -> &Error {
        &self.0
    }
}

/// Runs the `compensate` step of `S`, stage `index`, on what was kept of its
/// output, under the compensating step's own timeout. A failing or
/// panicking compensation is logged and counted; the remaining
/// compensations still run.
fn compensate_step<S: Step>(
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
