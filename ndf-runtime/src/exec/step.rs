//! Running one step: permissions are checked by the caller; here come the
//! attempts with timeout and panic capture, retries with backoff, the
//! fallback, and compensation.
//!
//! The first attempt runs inline; only when it fails does the step enter
//! [`recover`], whose future is boxed. The happy path allocates nothing —
//! with a subscriber listening, and with steps that wait on their timeout's
//! timer (`tests/allocations_traced.rs`) — while retries, fallbacks and
//! waits for memory — rare, and slow by nature — pay one allocation. A
//! step with retries or a fallback copies its input before the first
//! attempt (the attempt consumes it): for an input that allocates, that
//! copy does.
//!
//! What follows the admission is chosen per step at compile time
//! (`Step::Policies`, from the step's options): a step is compiled with
//! the code of its own policies only, and the paths every step shares
//! (errors, the retry wait, an absent fallback or compensation) are not
//! generic over the step.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::Either;

use super::attempt::{
    Failure, Inline, Placement, Spawned, attempt, failed, past_deadline, step_attempt, succeeded,
};
use super::{Cx, Step};
use crate::error::{Error, ErrorClass, StepError};
use crate::gating::Limited;
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
    run::<S, Inline>(cx, index, input)
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
    Cancellable::<S, _>::new(cx, run::<S, Inline>(cx, index, input))
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
    Cancellable::<S, _>::new(cx, run::<S, Spawned>(cx, index, input))
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

async fn run<S: Step, P: Placement>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
) -> Result<(S::Output, S::Undo), Error> {
    let meta = &S::META;
    // Never past the workflow's deadline.
    let timeout = cx.bounded(cx.config().timeout_of(meta));
    if timeout.is_zero()
        && let Some(error) = past_deadline(cx, S::NAME)
    {
        return Err(error);
    }
    if let Some(blocked) = cx.blocked(index) {
        return Box::pin(held_back::<S>(cx, index, input, blocked.clone())).await;
    }
    if let Some(budget) = cx.config().memory_of(meta)
        && !cx.admission().memory_fits(budget)
    {
        // Waiting for room is rare and slow: its future is boxed.
        let wait = cx.bounded(cx.config().resource_wait);
        if let Err(error) = Box::pin(cx.admission().admit_memory(budget, wait)).await {
            return Err(past_deadline(cx, S::NAME).unwrap_or(error));
        }
    }
    // A step with a `rate` or a `concurrency` takes a start and a place
    // first: at once when both are free, else in a boxed wait (only a step
    // that must wait pays for it); the place is held until the step is
    // done, retries and fallback included.
    let _place = if S::META.rate.is_none() && S::META.bulkhead.is_none() {
        None
    } else {
        match S::limits().map(|cell| cell.get(meta)) {
            None => None,
            Some(limits) => match limits.try_enter() {
                Ok(place) => Some(place),
                Err(taken) => match Box::pin(limits.enter(timeout, taken)).await {
                    Ok(place) => Some(place),
                    Err(limited) => return Err(limited_error(cx, index, limited, S::NAME)),
                },
            },
        }
    };
    if S::META.retry.max_retries > 0 && cx.budgets().enabled() {
        cx.budgets().call(std::any::TypeId::of::<S>());
    }
    if S::META.retry.max_retries == 0
        && S::META.fallback.is_none()
        && S::META.hedge.is_none()
        && S::META.slow_call.is_none()
    {
        // No policy after the first attempt: no copy, no clock, no
        // recovery. Inline, as a plain `.await` is: a step future of its
        // own here costs about 10 ns a step.
        return match step_attempt::<S, _>(cx, 1, P::call::<S>(input, cx.context()), timeout).await {
            Ok(out) => Ok(succeeded::<S>(cx, index, 0, false, out)),
            Err(failure) => Err(failed(cx, index, 0, failure, S::NAME)),
        };
    }
    <S::Policies as Policies>::attempts::<S, P>(cx, index, input, timeout).await
}

/// What a step's options need after its admission, chosen by `#[pattern]`
/// as [`Step::Policies`]: a step is compiled with the code of its own
/// policies only (a step without retries has no retry loop, one that is
/// not hedged no hedging), which keeps the code generated per step small.
#[doc(hidden)]
pub trait Policies: 'static {
    /// The attempts of step `S` (of which `P` places the code), stage
    /// `index`, each bounded by `timeout`, and what they record.
    fn attempts<S: Step, P: Placement>(
        cx: Cx<'_>,
        index: usize,
        input: S::Input,
        timeout: Duration,
    ) -> impl Future<Output = Result<(S::Output, S::Undo), Error>> + '_;
}

/// One attempt, nothing after it: no retries, fallback, hedging or
/// `slow_call`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Plain;

/// Retries, a fallback or a `slow_call`, without hedging.
#[doc(hidden)]
#[derive(Debug)]
pub struct Resilient;

/// Hedged attempts, and any other policy.
#[doc(hidden)]
#[derive(Debug)]
pub struct Hedged;

impl Policies for Plain {
    async fn attempts<S: Step, P: Placement>(
        cx: Cx<'_>,
        index: usize,
        input: S::Input,
        timeout: Duration,
    ) -> Result<(S::Output, S::Undo), Error> {
        match step_attempt::<S, _>(cx, 1, P::call::<S>(input, cx.context()), timeout).await {
            Ok(out) => Ok(succeeded::<S>(cx, index, 0, false, out)),
            Err(failure) => Err(failed(cx, index, 0, failure, S::NAME)),
        }
    }
}

impl Policies for Resilient {
    fn attempts<S: Step, P: Placement>(
        cx: Cx<'_>,
        index: usize,
        input: S::Input,
        timeout: Duration,
    ) -> impl Future<Output = Result<(S::Output, S::Undo), Error>> + '_ {
        resilient::<S, P, Self>(cx, index, input, timeout)
    }
}

impl Policies for Hedged {
    fn attempts<S: Step, P: Placement>(
        cx: Cx<'_>,
        index: usize,
        input: S::Input,
        timeout: Duration,
    ) -> impl Future<Output = Result<(S::Output, S::Undo), Error>> + '_ {
        resilient::<S, P, Self>(cx, index, input, timeout)
    }
}

/// The first attempt of a step that has a copy of its input to spare.
trait FirstAttempt {
    fn first<'a, S: Step, P: Placement>(
        cx: Cx<'a>,
        input: S::Input,
        spare: &'a S::Input,
        timeout: Duration,
    ) -> impl Future<Output = Result<S::Output, Failure>> + 'a;
}

impl FirstAttempt for Resilient {
    fn first<'a, S: Step, P: Placement>(
        cx: Cx<'a>,
        input: S::Input,
        _: &'a S::Input,
        timeout: Duration,
    ) -> impl Future<Output = Result<S::Output, Failure>> + 'a {
        step_attempt::<S, _>(cx, 1, P::call::<S>(input, cx.context()), timeout)
    }
}

impl FirstAttempt for Hedged {
    fn first<'a, S: Step, P: Placement>(
        cx: Cx<'a>,
        input: S::Input,
        spare: &'a S::Input,
        timeout: Duration,
    ) -> impl Future<Output = Result<S::Output, Failure>> + 'a {
        // Hedged: slow attempts get company; a boxed path, as retries are.
        let hedge = S::META.hedge.expect("`Hedged` is chosen for hedged steps");
        Box::pin(hedged::<S, P>(cx, input, spare, timeout, hedge))
    }
}

/// The attempts of a step with retries, a fallback, hedging (`F`) or a
/// `slow_call`: the first, then [`recover`] when it failed.
async fn resilient<S: Step, P: Placement, F: FirstAttempt>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
    timeout: Duration,
) -> Result<(S::Output, S::Undo), Error> {
    // A clock read only for a step with a `slow_call` threshold.
    let started = S::META.slow_call.map(|_| tokio::time::Instant::now());
    let Some(first) = S::dup(&input) else {
        // Nothing to spare (no retries, fallback or hedge): one attempt.
        let outcome = step_attempt::<S, _>(cx, 1, P::call::<S>(input, cx.context()), timeout).await;
        return match outcome {
            Ok(out) => {
                mark_slow(cx, index, started, S::META.slow_call);
                Ok(succeeded::<S>(cx, index, 0, false, out))
            }
            Err(failure) => Err(failed(cx, index, 0, failure, S::NAME)),
        };
    };
    let failure = match F::first::<S, P>(cx, first, &input, timeout).await {
        Ok(out) => {
            mark_slow(cx, index, started, S::META.slow_call);
            return Ok(succeeded::<S>(cx, index, 0, false, out));
        }
        Err(failure) => failure,
    };
    if failure.class() == ErrorClass::Rejected {
        return Err(failed(cx, index, 0, failure, S::NAME));
    }
    Box::pin(recover::<S, P>(cx, index, input, failure, timeout, started)).await
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

/// The first attempt of a hedged step: while it runs past `hedge.after`,
/// another starts beside it (each on its own copy of the input, under its
/// own timeout), up to `hedge.max` at once; the first success wins and the
/// attempts still running are dropped, which cancels them. A rejected error
/// ends it at once; otherwise, when every attempt has failed and no more
/// may start, the last failure is the result.
async fn hedged<S: Step, P: Placement>(
    cx: Cx<'_>,
    first: S::Input,
    input: &S::Input,
    timeout: Duration,
    hedge: crate::model::Hedge,
) -> Result<S::Output, Failure> {
    use futures::StreamExt as _;
    let mut flights = futures::stream::FuturesUnordered::new();
    flights.push(step_attempt::<S, _>(
        cx,
        1,
        P::call::<S>(first, cx.context()),
        timeout,
    ));
    let mut started = 1u32;
    let mut last = None;
    loop {
        let more = started < hedge.max;
        let launch = tokio::select! {
            biased;
            done = flights.next() => match done {
                Some(Ok(out)) => return Ok(out),
                Some(Err(failure)) if failure.class() == ErrorClass::Rejected => return Err(failure),
                Some(Err(failure)) => {
                    last = Some(failure);
                    // Nothing left running: the next starts at once, if any may.
                    flights.is_empty()
                }
                None => false,
            },
            () = tokio::time::sleep(hedge.after), if more => true,
        };
        if launch
            && more
            && let Some(copy) = S::dup(input)
        {
            started += 1;
            flights.push(step_attempt::<S, _>(
                cx,
                started,
                P::call::<S>(copy, cx.context()),
                timeout,
            ));
        } else if flights.is_empty() {
            return Err(last.unwrap_or(Failure::TimedOut(timeout)));
        }
    }
}

/// The error of a run that a step's `rate` or bulkhead held back: the step
/// did not run, and the run is refused, not failed.
#[cold]
fn limited_error(cx: Cx<'_>, index: usize, limited: Limited, step: &'static str) -> Error {
    if let Some(record) = cx.record(index) {
        record.held(false);
    }
    let (pattern, step) = (cx.pattern().to_owned(), step.to_owned());
    match limited {
        Limited::Rate(rate, waited) => Error::RateLimited {
            pattern,
            step,
            rate: rate.to_string(),
            waited,
        },
        Limited::Saturated(bulkhead) => Error::Saturated {
            pattern,
            step,
            running: bulkhead.max,
            queued: bulkhead.queue,
        },
    }
}

/// After a failed first attempt: the remaining retries with backoff (for
/// transient errors only), then the fallback (unless the error is
/// rejected); when the fallback fails too, its error is kept beside the
/// step's own.
async fn recover<S: Step, P: Placement>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
    mut failure: Failure,
    timeout: Duration,
    started: Option<tokio::time::Instant>,
) -> Result<(S::Output, S::Undo), Error> {
    let mut retries = 0;
    while let Some(wait) = retry_wait(cx, &S::META, std::any::TypeId::of::<S>(), retries, &failure)
    {
        let Some(copy) = S::dup(&input) else { break };
        tokio::time::sleep(wait).await;
        retries += 1;
        let timeout = cx.bounded(timeout);
        match step_attempt::<S, _>(cx, retries + 1, P::call::<S>(copy, cx.context()), timeout).await
        {
            Ok(out) => {
                mark_slow(cx, index, started, S::META.slow_call);
                return Ok(succeeded::<S>(cx, index, retries, false, out));
            }
            Err(again) => failure = again,
        }
    }
    if failure.class() == ErrorClass::Rejected {
        return Err(failed(cx, index, retries, failure, S::NAME));
    }
    let fallback_timeout = cx.bounded(S::META.fallback_timeout.unwrap_or(cx.config().step_timeout));
    let fallback = S::fallback(input, cx.context());
    let ended = (retries, failure, fallback_timeout, S::NAME);
    fallback_or_failed(cx, index, fallback, S::keep, ended).await
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

/// After the last attempt failed: the fallback serves, if the step has
/// one; else, or when it fails too (its error kept beside the step's),
/// the step's failure is recorded and returned. Generic over the
/// fallback's future, not the step: steps without one share a copy.
fn fallback_or_failed<'a, F, O: 'a, U: 'a>(
    cx: Cx<'a>,
    index: usize,
    fallback: Option<F>,
    keep: fn(&O) -> U,
    (retries, failure, timeout, step): (u32, Failure, Duration, &'static str),
) -> impl Future<Output = Result<(O, U), Error>> + 'a
where
    F: Future<Output = Result<O, StepError>> + 'a,
{
    let Some(fallback) = fallback else {
        return Either::Left(std::future::ready(Err(failed(
            cx, index, retries, failure, step,
        ))));
    };
    Either::Right(
        attempt(fallback, timeout).map(move |outcome| match outcome {
            Ok(out) => {
                if let Some(record) = cx.record(index) {
                    record.finish(retries, true, true);
                }
                let undo = keep(&out);
                Ok((out, undo))
            }
            Err(also) => Err(failed(
                cx,
                index,
                retries,
                failure.with_fallback(also),
                step,
            )),
        }),
    )
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

/// Step `S` is held back by low confidence: its fallback serves, else the
/// run fails with [`Error::ConfidenceThreshold`]. The step itself does not
/// run, so it learns nothing.
fn held_back<S: Step>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
    blocked: Blocked,
) -> impl Future<Output = Result<(S::Output, S::Undo), Error>> + Send + '_ {
    let timeout = S::META.fallback_timeout.unwrap_or(cx.config().step_timeout);
    served_instead(
        cx,
        index,
        S::fallback(input, cx.context()),
        S::keep,
        (blocked, timeout, S::NAME),
    )
}

/// [`held_back`], generic over the fallback's future and the output rather
/// than the step: steps without a fallback, which all have the same
/// (never used) future, share one copy per output type. Combinators, not
/// an `async fn`, so that the fallback's future is stored once.
fn served_instead<'a, F, O: 'a, U: 'a>(
    cx: Cx<'a>,
    index: usize,
    fallback: Option<F>,
    keep: fn(&O) -> U,
    (blocked, timeout, step): (Blocked, Duration, &'static str),
) -> impl Future<Output = Result<(O, U), Error>> + 'a
where
    F: Future<Output = Result<O, StepError>> + 'a,
{
    let Some(fallback) = fallback else {
        return Either::Left(std::future::ready(Err(held_back_unserved(
            cx, index, blocked, step,
        ))));
    };
    Either::Right(attempt(fallback, timeout).map(move |outcome| {
        if let Some(record) = cx.record(index) {
            record.held(outcome.is_ok());
        }
        match outcome {
            Ok(out) => {
                let undo = keep(&out);
                Ok((out, undo))
            }
            Err(failure) => Err(failure.into_error(cx.pattern(), step)),
        }
    }))
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
