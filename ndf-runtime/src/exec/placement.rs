//! Where a step's own code runs: inside the workflow's state machine
//! ([`Inline`]) or on a task of its own ([`Spawned`]).

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::FutureExt as _;

use super::{Finish, Step};
use crate::context::PatternContext;
use crate::error::StepError;

/// Where a step's own code runs: on the task that polls the workflow, or on
/// a task of its own that the runtime's scheduler may move to another worker.
#[doc(hidden)]
pub trait Placement: 'static {
    /// Calls step `S` once.
    fn call<S: Step>(
        input: S::Input,
        ctx: &PatternContext,
    ) -> impl Future<Output = Result<S::Output, StepError>> + Send + '_;
}

/// The step's code runs inside the workflow's own state machine.
pub(crate) struct Inline;

impl Placement for Inline {
    fn call<S: Step>(
        input: S::Input,
        ctx: &PatternContext,
    ) -> impl Future<Output = Result<S::Output, StepError>> + Send + '_ {
        Resulted::<S, _> {
            fut: S::call(input, ctx),
            step: PhantomData,
        }
    }
}

pin_project_lite::pin_project! {
    /// A step fn's future, its output made a step result by the step's
    /// [`Step::Finish`].
    struct Resulted<S, F> {
        #[pin]
        fut: F,
        step: PhantomData<fn() -> S>,
    }
}

impl<S: Step, F: Future<Output = S::Returned>> Future for Resulted<S, F> {
    type Output = Result<S::Output, StepError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().fut.poll(cx) {
            Poll::Ready(returned) => Poll::Ready(S::Finish::finish(returned)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// The step's code runs on a spawned task, with its own copy of the
/// context; dropping the attempt aborts the task.
pub(crate) struct Spawned;

impl Placement for Spawned {
    fn call<S: Step>(
        input: S::Input,
        ctx: &PatternContext,
    ) -> impl Future<Output = Result<S::Output, StepError>> + Send + '_ {
        let ctx = ctx.clone();
        let task = AbortOnDrop(tokio::spawn(async move {
            S::Finish::finish(S::call(input, &ctx).await)
        }));
        task.map(|joined| match joined {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(StepError::panicked(&*e.into_panic())),
            Err(_) => Err(StepError::msg("the spawned step was cancelled")),
        })
    }
}

/// A spawned task that is aborted when its handle is dropped, so that
/// cancelling a workflow cancels its spawned steps too.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}
