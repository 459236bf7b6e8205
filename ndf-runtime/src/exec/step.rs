//! Running one step: permissions are checked by the caller; here come the
//! attempts with timeout and panic capture, retries with backoff and the
//! fallback (compensation is in `compensate`).
//!
//! The first attempt runs inline; only when it fails does the step enter
//! [`recovered`], whose future is boxed. The happy path allocates nothing —
//! with a subscriber listening, and with steps that wait on their timeout's
//! timer (`tests/allocations_traced.rs`) — while retries, fallbacks, held
//! back steps and waits for room — rare, and slow by nature — pay a few
//! allocations (the boxed future, and each later attempt with its output).
//! A step with retries or a fallback copies its input before the first
//! attempt (the attempt consumes it): for an input that allocates, that
//! copy does.
//!
//! Only what needs the step's types is generic over it: its admission
//! ([`super::admit`]), retry loop, fallback and held-back path are compiled
//! once for every step, and reach the step through a `dyn` [`Again`],
//! which starts one more attempt or the fallback with the output's type
//! erased. That keeps the code generated per step, and so compile time,
//! small. What a step's first attempt needs is chosen per step at compile
//! time (`Step::Policies`, from the step's options, in [`super::first`]):
//! only a hedged step is compiled with hedging, and a step with nothing
//! after its first attempt keeps nothing across it.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use super::admit::{Admitted, admit, needs_admission, try_place};
use super::alarm::{Bounds, Deadlines, Joined, Own};
use super::attempt::{
    Failure, Inline, Placement, Spawned, attempt, failed, step_attempt, succeeded,
};
use super::first::{After, AfterFirst, Policies};
use super::{Cx, Step};
use crate::error::{Error, ErrorClass, StepError};
use crate::gating::Place;
use crate::learning::Blocked;
use crate::model::StepMeta;

/// Runs step `S`, stage `index` of the workflow, under its policies, and
/// returns its output with what must be kept to compensate it.
///
/// # Errors
///
/// [`Error::Execution`] when the last attempt (and the fallback) failed or
/// panicked, [`Error::Timeout`] when the last attempt timed out.
pub fn run_step<S: Step>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
) -> impl Future<Output = Result<(S::Output, S::Undo), Error>> + '_ {
    // The run's own future, not one more layer around it.
    run::<S, Inline, Own>(cx, index, input, ())
}

/// [`run_step`] for a step inside a `parallel!` task: it stops at once,
/// unrecorded, when its task is cancelled.
///
/// # Errors
///
/// As [`run_step`].
pub fn run_step_in_task<S: Step>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
) -> impl Future<Output = Result<(S::Output, S::Undo), Error>> + '_ {
    Cancellable::<S, _>::new(cx, run::<S, Inline, Own>(cx, index, input, ()))
}

/// [`run_step_in_task`] for a step that is a task of a `parallel!` (or
/// inside one, with nothing between them that polls with wakers of its
/// own): its first attempt is bounded by the `parallel!`'s alarm
/// (`deadlines`), not by a timer of its own (see the `exec::alarm`
/// module).
///
/// # Errors
///
/// As [`run_step`].
pub fn run_step_in_join<'a, S: Step>(
    cx: Cx<'a>,
    index: usize,
    input: S::Input,
    deadlines: &'a Deadlines,
) -> impl Future<Output = Result<(S::Output, S::Undo), Error>> + 'a {
    Cancellable::<S, _>::new(cx, run::<S, Inline, Joined>(cx, index, input, deadlines))
}

/// [`run_step_in_task`], with each attempt of the step's code on a spawned
/// task (`parallel!(spawn = true; …)`).
///
/// # Errors
///
/// As [`run_step`].
pub fn run_step_spawned<S: Step>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
) -> impl Future<Output = Result<(S::Output, S::Undo), Error>> + '_ {
    Cancellable::<S, _>::new(cx, run::<S, Spawned, Own>(cx, index, input, ()))
}

pin_project_lite::pin_project! {
    /// A step's run that stops, unrecorded, when its `parallel!` task is
    /// cancelled.
    struct Cancellable<'a, S, F> {
        #[pin]
        run: F,
        of: Cx<'a>,
        step: std::marker::PhantomData<fn() -> S>,
    }
}

impl<'a, S, F> Cancellable<'a, S, F> {
    fn new(of: Cx<'a>, run: F) -> Self {
        Self {
            run,
            of,
            step: std::marker::PhantomData,
        }
    }
}

impl<S: Step, T, F: Future<Output = Result<T, Error>>> Future for Cancellable<'_, S, F> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.of.cancelling() {
            // Never reported: the cancelled task's error is dropped.
            return Poll::Ready(Err(Error::Execution {
                pattern: String::new(),
                step: S::NAME.to_owned(),
                source: StepError::msg("cancelled: another task of its `parallel!` failed"),
            }));
        }
        this.run.poll(cx)
    }
}

/// A step's run. Not an `async fn`: an `async fn` moves its arguments into
/// locals of its own first, so its future stores them twice; an `async
/// move` block uses what it captured in place.
#[allow(
    clippy::manual_async_fn,
    reason = "an `async fn` would store its arguments twice in its future"
)]
fn run<'a, S: Step, P: Placement, K: Bounds>(
    cx: Cx<'a>,
    index: usize,
    input: S::Input,
    bound: K::Arg<'a>,
) -> impl Future<Output = Result<(S::Output, S::Undo), Error>> + 'a {
    <S::Policies as Policies>::place_run(async move {
        // Conditions on a step's options are `const` blocks: after the
        // step's type is known, the branches they rule out are not
        // compiled at all, not only optimized away.
        // The place, if any, is held until the step is done.
        let mut _place = Place::NONE;
        // A step held back, or whose first attempt failed, goes on in one
        // future type for every step, boxed: both are rare.
        let rest: Rest<'_> = 'rest: {
            // Never past the workflow's deadline.
            let mut timeout = cx.bounded(cx.config().timeout_of(&S::META));
            if needs_admission(cx, &S::META, limits_of::<S>(), timeout) {
                // A limited step takes its start and place inline when both
                // are free. `limits` is `None` for the others; the `const`
                // guard says so too, so that `try_place` is not compiled for
                // them.
                let tried = match limits_of::<S>() {
                    Some(cell) if const { S::META.limited() } => {
                        try_place(cx, &S::META, cell, timeout)
                    }
                    _ => Err(None),
                };
                // What the admission decided, made small before anything
                // waits: its value is not kept in the step's future.
                let next = match tried {
                    Ok(place) => Next::Go(place),
                    Err(taken) => {
                        match admit(
                            cx,
                            index,
                            &S::META,
                            S::NAME,
                            limits_of::<S>(),
                            (timeout, taken),
                        ) {
                            Admitted::Go(place) => Next::Go(place),
                            Admitted::Wait(wait) => Next::Wait(wait),
                            Admitted::Blocked(blocked) => Next::Held(blocked),
                            Admitted::Refused(error) => return Err(error),
                        }
                    }
                };
                match next {
                    Next::Go(place) => _place = place,
                    Next::Wait(wait) => (timeout, _place) = wait.await?,
                    Next::Held(blocked) => {
                        let again = StepAgain::<S, P>::boxed(cx, input);
                        break 'rest Box::pin(held(cx, index, &S::META, blocked.clone(), again));
                    }
                }
            }
            if const { S::META.retry.max_retries > 0 } && cx.budgets().enabled() {
                cx.budgets().call(std::any::TypeId::of::<S>());
            }
            // A clock read only for a step with a `slow_call` threshold; a
            // copy of the input only for a step with retries, a fallback or
            // a hedge. Kept, with the timeout, only by a step that can have
            // something after its first attempt (`Plain` keeps nothing).
            let started = if const { S::META.slow_call.is_some() } {
                Some(tokio::time::Instant::now())
            } else {
                None
            };
            let after = <After<S> as AfterFirst<S::Input>>::keep(S::dup(&input), started, timeout);
            let first = <S::Policies as Policies>::first::<S, P, K>(cx, input, timeout, bound);
            let failure = match first.await {
                Ok(out) => {
                    if const { S::META.slow_call.is_some() } {
                        mark_slow(cx, index, after.started(), S::META.slow_call);
                    }
                    return Ok(succeeded::<S>(cx, index, out));
                }
                Err(failure) => failure,
            };
            match after.into_parts() {
                // `None` for a step that cannot recover: the constant says
                // so too, so that none of this is compiled for it.
                Some((input, started, timeout))
                    if const { S::META.recovers() } && failure.class() != ErrorClass::Rejected =>
                {
                    let ended = Ended {
                        index,
                        meta: &S::META,
                        id: std::any::TypeId::of::<S>(),
                        step: S::NAME,
                        timeout,
                        started,
                    };
                    let again = StepAgain::<S, P>::boxed(cx, input);
                    break 'rest Box::pin(recovered(cx, ended, failure, again));
                }
                _ => return Err(failed(cx, index, 0, failure, S::NAME)),
            }
        };
        match rest.await {
            Ok(out) => Ok(kept::<S>(out)),
            Err(error) => Err(error),
        }
    })
}

/// The limits of step `S`: `None`, without a load, for a step without a
/// `rate` or a `concurrency`. Called where they are needed rather than
/// kept in a local, which the step's future would store across its
/// awaits.
#[allow(
    clippy::inline_always,
    reason = "a constant branch, or one load: nothing worth a call"
)]
#[inline(always)]
fn limits_of<S: Step>() -> Option<&'static crate::gating::LimitsCell> {
    if const { S::META.limited() } {
        S::limits()
    } else {
        None
    }
}

/// The rest of a step held back or whose first attempt failed: its
/// fallback, or its retries then its fallback.
type Rest<'a> = Pin<Box<dyn Future<Output = Result<Output, Error>> + Send + 'a>>;

/// A step's admission, as its run goes on from it.
enum Next<'a> {
    Go(Place),
    Wait(super::admit::Wait<'a>),
    Held(&'a Blocked),
}

/// Records a success slower than the step's `slow_call` threshold `limit`
/// (`started` is when its first attempt started, for such steps only).
fn mark_slow(
    cx: Cx<'_>,
    index: usize,
    started: Option<tokio::time::Instant>,
    limit: Option<Duration>,
) {
    if let (Some(limit), Some(started)) = (limit, started)
        && started.elapsed() > limit
        && let Some(record) = cx.record(index)
    {
        record.slow();
    }
}

/// The output of an attempt, its type erased for [`recovered`].
type Output = Box<dyn std::any::Any + Send>;

/// An attempt, its type erased for [`recovered`].
type AnyAttempt<'a> = Pin<Box<dyn Future<Output = Result<Output, Failure>> + Send + 'a>>;

/// How [`recovered`] starts one more attempt of a step, or its fallback.
trait Again<'a>: Send {
    /// Attempt `number`, bounded by `timeout`; `None` when the input
    /// cannot be copied for it (or was given to the fallback).
    fn again(&mut self, number: u32, timeout: Duration) -> Option<AnyAttempt<'a>>;

    /// The step's fallback on its input, bounded by `timeout`; `None`
    /// when the step has none.
    fn fallback(&mut self, timeout: Duration) -> Option<AnyAttempt<'a>>;
}

/// [`Again`] for step `S`, which owns the step's input until the fallback
/// takes it.
struct StepAgain<'a, S: Step, P> {
    cx: Cx<'a>,
    input: Option<S::Input>,
    placement: std::marker::PhantomData<fn() -> P>,
}

impl<'a, S: Step, P: Placement> StepAgain<'a, S, P> {
    fn boxed(cx: Cx<'a>, input: S::Input) -> Box<dyn Again<'a> + 'a> {
        Box::new(Self {
            cx,
            input: Some(input),
            placement: std::marker::PhantomData,
        })
    }
}

/// The output of step `S` that [`recovered`] or [`held`] returned, with
/// what compensation needs.
fn kept<S: Step>(out: Output) -> (S::Output, S::Undo) {
    let out = *out
        .downcast::<S::Output>()
        .expect("every attempt of a step returns the step's output");
    let undo = S::keep(&out);
    (out, undo)
}

impl<'a, S: Step, P: Placement> Again<'a> for StepAgain<'a, S, P> {
    fn again(&mut self, number: u32, timeout: Duration) -> Option<AnyAttempt<'a>> {
        let copy = S::dup(self.input.as_ref()?)?;
        let cx = self.cx;
        let attempt = step_attempt::<S, _>(cx, number, P::call::<S>(copy, cx.context()), timeout);
        Some(Box::pin(Erased { attempt }))
    }

    fn fallback(&mut self, timeout: Duration) -> Option<AnyAttempt<'a>> {
        // Not compiled for a step without a fallback.
        if const { S::META.fallback.is_none() } {
            return None;
        }
        erased_fallback(S::fallback(self.input.take()?, self.cx.context()), timeout)
    }
}

/// The attempt of a step's fallback, if it has one, its output's type
/// erased. Generic over the fallback's future, not the step: steps
/// without one, whose (never made) future is the same type, share a copy
/// per output type.
fn erased_fallback<'a, F, O>(fallback: Option<F>, timeout: Duration) -> Option<AnyAttempt<'a>>
where
    F: Future<Output = Result<O, StepError>> + Send + 'a,
    O: Send + 'static,
{
    Some(Box::pin(Erased {
        attempt: attempt(fallback?, timeout),
    }))
}

pin_project_lite::pin_project! {
    /// An attempt with its output's type erased, for [`recovered`]. A
    /// future of its own rather than `futures`' `Map`, whose poll and
    /// state cost each step with retries or a fallback 200-260 lines of
    /// LLVM IR more.
    struct Erased<F> {
        #[pin]
        attempt: F,
    }
}

impl<T: Send + 'static, F: Future<Output = Result<T, Failure>>> Future for Erased<F> {
    type Output = Result<Output, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        match self.project().attempt.poll(cx) {
            Poll::Ready(Ok(out)) => Poll::Ready(Ok(Box::new(out) as Output)),
            Poll::Ready(Err(failure)) => Poll::Ready(Err(failure)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// What [`recovered`] knows of the step whose first attempt failed.
struct Ended {
    /// Its stage.
    index: usize,
    meta: &'static StepMeta,
    /// Its type, which keys its retry budget.
    id: std::any::TypeId,
    step: &'static str,
    /// Each attempt's timeout.
    timeout: Duration,
    /// When its first attempt started, for a step with a `slow_call`.
    started: Option<tokio::time::Instant>,
}

/// After a failed first attempt: the remaining retries with backoff (for
/// transient errors only), then the fallback (unless the error is
/// rejected); when the fallback fails too, its error is kept beside the
/// step's own. What ends the step is recorded. Not generic: one copy
/// serves every step.
async fn recovered<'a>(
    cx: Cx<'a>,
    step: Ended,
    mut failure: Failure,
    mut again: Box<dyn Again<'a> + 'a>,
) -> Result<Output, Error> {
    let mut retries = 0;
    while let Some(wait) = retry_wait(cx, step.meta, step.id, retries, &failure) {
        tokio::time::sleep(wait).await;
        let Some(attempt) = again.again(retries + 2, cx.bounded(step.timeout)) else {
            break;
        };
        retries += 1;
        match attempt.await {
            Ok(out) => {
                mark_slow(cx, step.index, step.started, step.meta.slow_call);
                if let Some(record) = cx.record(step.index) {
                    record.finish(retries, true, false);
                }
                return Ok(out);
            }
            Err(next) => failure = next,
        }
    }
    if failure.class() == ErrorClass::Rejected {
        return Err(failed(cx, step.index, retries, failure, step.step));
    }
    let timeout = cx.bounded(
        step.meta
            .fallback_timeout
            .unwrap_or(cx.config().step_timeout),
    );
    let Some(fallback) = again.fallback(timeout) else {
        return Err(failed(cx, step.index, retries, failure, step.step));
    };
    match fallback.await {
        Ok(out) => {
            if let Some(record) = cx.record(step.index) {
                record.finish(retries, true, true);
            }
            Ok(out)
        }
        Err(also) => {
            let failure = failure.with_fallback(also);
            Err(failed(cx, step.index, retries, failure, step.step))
        }
    }
}

/// How long to wait before retry `retries + 1` of a step with `meta`
/// (`id` its type) after `failure`; `None` when it is not retried: its
/// retries are spent, the error is not transient, a retry-after hint is
/// past `max_delay`, the retry budget is spent, or the wait would end past
/// the workflow's deadline.
fn retry_wait(
    cx: Cx<'_>,
    meta: &StepMeta,
    id: std::any::TypeId,
    retries: u32,
    failure: &Failure,
) -> Option<Duration> {
    if retries >= meta.retry.max_retries || failure.class() != ErrorClass::Transient {
        return None;
    }
    // A retry-after hint is honoured: the wait is at least the hint; a
    // hint past `max_delay` ends the retries.
    let planned = meta.retry.delay(retries);
    let wait = match failure.retry_after() {
        Some(hint) if hint > meta.retry.max_delay => return None,
        Some(hint) => planned.max(hint),
        None => planned,
    };
    // The retry budget: a dependency that is down gets no storm. No retry
    // that would start past the workflow's deadline.
    (cx.budgets().retry(id) && !cx.past_deadline_after(wait)).then_some(wait)
}

/// Step `step`, which has no fallback, is held back by low confidence:
/// the run fails with [`Error::ConfidenceThreshold`].
#[cold]
fn held_back_unserved(cx: Cx<'_>, index: usize, blocked: Blocked, step: &'static str) -> Error {
    if let Some(record) = cx.record(index) {
        record.held(false);
    }
    blocked.into_error(step)
}

/// A step its gate holds back (`blocked`): its fallback serves (from
/// `again`), else the run fails with [`Error::ConfidenceThreshold`]. The
/// step itself does not run, so it learns nothing. Not generic: one copy
/// serves every step.
async fn held<'a>(
    cx: Cx<'a>,
    index: usize,
    meta: &'static StepMeta,
    blocked: Blocked,
    mut again: Box<dyn Again<'a> + 'a>,
) -> Result<Output, Error> {
    let timeout = meta.fallback_timeout.unwrap_or(cx.config().step_timeout);
    let Some(fallback) = again.fallback(timeout) else {
        return Err(held_back_unserved(cx, index, blocked, meta.name));
    };
    let outcome = fallback.await;
    if let Some(record) = cx.record(index) {
        record.held(outcome.is_ok());
    }
    outcome.map_err(|failure| failure.into_error(cx.pattern(), meta.name))
}
