//! A step stage that its workflow awaits where it stands (a stage of a
//! `sequential!`, a level of a `degrade!`, a phase of an `orchestrate!`,
//! outside any `parallel!` task): what the step's run keeps of the step's
//! own types — its cell, for a `Resilient` step (see `exec::erased`) — is
//! a local of the workflow's own future, and the run the workflow awaits
//! is the shared [`drive`](super::erased) itself. A step's run so has no
//! state machine of its own to compile, per step, around its cell: in a
//! debug build, that state machine was the largest piece of code compiled
//! per step.
//!
//! The generated code is the same for every step:
//!
//! ```text
//! let mut cell = pin!(<<S as Step>::Policies as Policies>::cell::<S>(cx));
//! match Stage::go(cell.as_mut(), cx, index, input).await {
//!     Ok(done) => Ok(Stage::finish(cell, done)),
//!     Err(error) => Err(error),
//! }
//! ```
//!
//! A `Plain` or hedged step has no cell ([`Direct`], empty): its run is
//! the run generic over it, as before, and gives its output at once.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;

use super::compensate::{Failed, StageError};
use super::{Cx, Step};
use crate::error::Error;

/// What a stage awaited in place keeps of step [`Stage::Step`] in its
/// workflow's future, and how it runs on it.
#[doc(hidden)]
pub trait Stage<'a>: Send {
    /// The step.
    type Step: Step;
    /// What the step's run gives when it succeeds: its output and what
    /// compensation needs, or nothing, when those stay in the cell.
    type Done;

    /// The step's run, stage `index`, on `input`.
    fn go<'p>(
        self: Pin<&'p mut Self>,
        cx: Cx<'a>,
        index: usize,
        input: <Self::Step as Step>::Input,
    ) -> impl Future<Output = Result<Self::Done, Failed>> + Send + 'p
    where
        'a: 'p;

    /// The step's output, and what compensation needs, once its run gave
    /// `done`.
    fn finish(
        self: Pin<&mut Self>,
        done: Self::Done,
    ) -> (<Self::Step as Step>::Output, <Self::Step as Step>::Undo);
}

/// The empty cell of a `Plain` or hedged step (`Q` says which): its run,
/// generic over it, keeps all it needs in its own future. Its `Stage`
/// impls are beside the two policies' (`exec::first`).
#[doc(hidden)]
#[derive(Debug)]
pub struct Direct<Q, S>(PhantomData<fn() -> (Q, S)>);

impl<Q, S> Direct<Q, S> {
    pub(super) const fn new() -> Self {
        Self(PhantomData)
    }
}

pin_project_lite::pin_project! {
    /// A step's run whose error leaves as `E` (see [`StageError`]): a
    /// hedged step's run, polled out of line, fails with the error itself,
    /// which leaves boxed when the step is awaited in place.
    pub(super) struct ErrorAs<F, E> {
        #[pin]
        run: F,
        error: PhantomData<fn() -> E>,
    }
}

impl<F, E> ErrorAs<F, E> {
    pub(super) fn new(run: F) -> Self {
        Self {
            run,
            error: PhantomData,
        }
    }
}

impl<T, F: Future<Output = Result<T, Error>>, E: StageError> Future for ErrorAs<F, E> {
    type Output = Result<T, E>;

    #[inline]
    fn poll(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.project().run.poll(cx).map(|done| done.map_err(E::of))
    }
}
