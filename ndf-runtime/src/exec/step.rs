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

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::Either;
use tracing::Instrument as _;

use super::{Cx, Step};
use crate::context::PatternContext;
use crate::error::{Error, ErrorClass, StepError};
use crate::gating::{Limited, StepLimits};
use crate::learning::Blocked;
use crate::policy::Deadline;

enum Failure {
    Failed(StepError),
    TimedOut(Duration),
}

impl Failure {
    /// This failure, with the fallback's own failure kept beside it.
    fn with_fallback(self, fallback: Failure) -> Failure {
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
    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Failed(e) => e.retry_after_hint(),
            Failure::TimedOut(_) => None,
        }
    }

    /// The error's class: a timeout is transient.
    fn class(&self) -> ErrorClass {
        match self {
            Failure::Failed(e) => e.class(),
            Failure::TimedOut(_) => ErrorClass::Transient,
        }
    }

    fn into_error<S: Step>(self, pattern: &str) -> Error {
        match self {
            Failure::Failed(source) if source.class() == ErrorClass::Rejected => Error::Rejected {
                pattern: pattern.to_owned(),
                step: S::NAME.to_owned(),
                source,
            },
            Failure::Failed(source) => Error::Execution {
                pattern: pattern.to_owned(),
                step: S::NAME.to_owned(),
                source,
            },
            Failure::TimedOut(after) => Error::Timeout {
                pattern: pattern.to_owned(),
                step: S::NAME.to_owned(),
                after,
            },
        }
    }
}

/// One bounded, panic-safe attempt: combinators rather than an `async fn`,
/// so that the step's future is stored once, not once per layer.
fn attempt<T>(
    fut: impl Future<Output = Result<T, StepError>>,
    timeout: Duration,
) -> impl Future<Output = Result<T, Failure>> {
    Deadline::new(AssertUnwindSafe(fut).catch_unwind(), timeout).map(move |outcome| match outcome {
        Some(Ok(Ok(out))) => Ok(out),
        Some(Ok(Err(error))) => Err(Failure::Failed(error)),
        Some(Err(payload)) => Err(Failure::Failed(StepError::panicked(&*payload))),
        None => Err(Failure::TimedOut(timeout)),
    })
}

/// [`attempt`] of step `S`; when a subscriber listens at debug level,
/// inside a `ndf.step` span. Without one, this costs one level check; the
/// two paths share the step future's storage, so the span costs its own
/// few words and no allocation.
fn step_attempt<'a, S: Step, T: 'a>(
    cx: Cx<'a>,
    number: u32,
    fut: impl Future<Output = Result<T, StepError>> + Send + 'a,
    timeout: Duration,
) -> impl Future<Output = Result<T, Failure>> + 'a {
    if tracing::level_enabled!(tracing::Level::DEBUG) {
        Either::Left(traced_attempt::<S, T>(cx, number, fut, timeout))
    } else {
        Either::Right(attempt(fut, timeout))
    }
}

/// [`attempt`] of step `S`, inside a `ndf.step` span (pattern, step,
/// domain, attempt number, outcome); the span is attached to the future,
/// never entered across an `.await`. Context attributes are not recorded.
async fn traced_attempt<S: Step, T>(
    cx: Cx<'_>,
    number: u32,
    fut: impl Future<Output = Result<T, StepError>>,
    timeout: Duration,
) -> Result<T, Failure> {
    let span = tracing::debug_span!(
        "ndf.step",
        pattern = cx.pattern(),
        step = S::NAME,
        domain = cx.context().domain(),
        attempt = number,
        outcome = tracing::field::Empty,
    );
    let result = attempt(fut, timeout).instrument(span.clone()).await;
    span.record(
        "outcome",
        match &result {
            Ok(_) => "ok",
            Err(Failure::Failed(_)) => "error",
            Err(Failure::TimedOut(_)) => "timeout",
        },
    );
    result
}

fn succeeded<S: Step>(
    cx: Cx<'_>,
    index: usize,
    retries: u32,
    fallback: bool,
    out: S::Output,
) -> (S::Output, S::Undo) {
    if let Some(record) = cx.record(index) {
        record.finish(retries, true, fallback);
    }
    let undo = S::keep(&out);
    (out, undo)
}

fn failed<S: Step>(cx: Cx<'_>, index: usize, retries: u32, failure: Failure) -> Error {
    if let Some(record) = cx.record(index) {
        if failure.class() == ErrorClass::Rejected {
            record.rejected(retries);
        } else {
            record.finish(retries, false, false);
        }
    }
    if failure.class() != ErrorClass::Rejected
        && let Some(error) = past_deadline::<S>(cx)
    {
        return error;
    }
    failure.into_error::<S>(cx.pattern())
}

/// [`Error::DeadlineExceeded`] in step `S`, when the workflow's deadline
/// has passed.
fn past_deadline<S: Step>(cx: Cx<'_>) -> Option<Error> {
    cx.deadline_passed()
        .map(|deadline| Error::DeadlineExceeded {
            pattern: cx.pattern().to_owned(),
            step: S::NAME.to_owned(),
            deadline,
        })
}

/// Where a step's own code runs: on the task that polls the workflow, or on
/// a task of its own that the runtime's scheduler may move to another worker.
trait Placement {
    fn call<S: Step>(
        input: S::Input,
        ctx: &PatternContext,
    ) -> impl Future<Output = Result<S::Output, StepError>> + Send + '_;
}

/// The step's code runs inside the workflow's own state machine.
struct Inline;

impl Placement for Inline {
    fn call<S: Step>(
        input: S::Input,
        ctx: &PatternContext,
    ) -> impl Future<Output = Result<S::Output, StepError>> + Send + '_ {
        S::call(input, ctx)
    }
}

/// The step's code runs on a spawned task, with its own copy of the
/// context; dropping the attempt aborts the task.
struct Spawned;

impl Placement for Spawned {
    fn call<S: Step>(
        input: S::Input,
        ctx: &PatternContext,
    ) -> impl Future<Output = Result<S::Output, StepError>> + Send + '_ {
        let ctx = ctx.clone();
        let task = AbortOnDrop(tokio::spawn(async move { S::call(input, &ctx).await }));
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

/// Runs step `S`, stage `index` of the workflow, under its policies, and
/// returns its output with what must be kept to compensate it.
///
/// # Errors
///
/// [`Error::Execution`] when the last attempt (and the fallback) failed or
/// panicked, [`Error::Timeout`] when the last attempt timed out.
pub async fn run_step<S: Step>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
) -> Result<(S::Output, S::Undo), Error> {
    run::<S, Inline>(cx, index, input).await
}

/// [`run_step`] for a step inside a `parallel!` task: it stops at once,
/// unrecorded, when its task is cancelled.
///
/// # Errors
///
/// As [`run_step`].
pub async fn run_step_in_task<S: Step>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
) -> Result<(S::Output, S::Undo), Error> {
    Cancellable::<S, _>::new(cx, run::<S, Inline>(cx, index, input)).await
}

/// [`run_step_in_task`], with each attempt of the step's code on a spawned
/// task (`parallel!(spawn = true; …)`).
///
/// # Errors
///
/// As [`run_step`].
pub async fn run_step_spawned<S: Step>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
) -> Result<(S::Output, S::Undo), Error> {
    Cancellable::<S, _>::new(cx, run::<S, Spawned>(cx, index, input)).await
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
        && let Some(error) = past_deadline::<S>(cx)
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
            return Err(past_deadline::<S>(cx).unwrap_or(error));
        }
    }
    // A step with a `rate` or a `concurrency` takes a start and a place
    // first: at once when both are free, else in a boxed wait (only a step
    // that must wait pays for it); the place is held until the step is
    // done, retries and fallback included.
    let _place = if S::META.rate.is_none() && S::META.bulkhead.is_none() {
        None
    } else {
        match StepLimits::of(std::any::TypeId::of::<S>(), meta) {
            None => None,
            Some(limits) => match limits.try_enter() {
                Ok(place) => Some(place),
                Err(taken) => match Box::pin(limits.enter(timeout, taken)).await {
                    Ok(place) => Some(place),
                    Err(limited) => return Err(limited_error::<S>(cx, index, limited)),
                },
            },
        }
    };
    let resilient = meta.retry.max_retries > 0 || meta.fallback.is_some() || meta.hedge.is_some();
    if S::META.retry.max_retries > 0 && cx.budgets().enabled() {
        cx.budgets().call(std::any::TypeId::of::<S>());
    }
    let (first, spare) = match resilient.then(|| S::dup(&input)).flatten() {
        Some(copy) => (copy, Some(input)),
        None => (input, None),
    };
    // A clock read only for a step with a `slow_call` threshold.
    let started = meta.slow_call.map(|_| tokio::time::Instant::now());
    let first_result = match (meta.hedge, &spare) {
        // Hedged: slow attempts get company; a boxed path, as retries are.
        (Some(hedge), Some(spare)) => {
            Box::pin(hedged::<S, P>(cx, first, spare, timeout, hedge)).await
        }
        _ => step_attempt::<S, _>(cx, 1, P::call::<S>(first, cx.context()), timeout).await,
    };
    let failure = match first_result {
        Ok(out) => {
            mark_slow::<S>(cx, index, started);
            return Ok(succeeded::<S>(cx, index, 0, false, out));
        }
        Err(failure) => failure,
    };
    match spare {
        Some(input) if failure.class() != ErrorClass::Rejected => {
            Box::pin(recover::<S, P>(cx, index, input, failure, timeout, started)).await
        }
        _ => Err(failed::<S>(cx, index, 0, failure)),
    }
}

/// Records a success of step `S` slower than its `slow_call` threshold
/// (`started` is when its first attempt started, for such steps only).
fn mark_slow<S: Step>(cx: Cx<'_>, index: usize, started: Option<tokio::time::Instant>) {
    if let (Some(limit), Some(started)) = (S::META.slow_call, started)
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
fn limited_error<S: Step>(cx: Cx<'_>, index: usize, limited: Limited) -> Error {
    if let Some(record) = cx.record(index) {
        record.held(false);
    }
    let (pattern, step) = (cx.pattern().to_owned(), S::NAME.to_owned());
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
    let meta = &S::META;
    let mut retries = 0;
    while retries < meta.retry.max_retries && failure.class() == ErrorClass::Transient {
        // A retry-after hint is honoured: the wait is at least the hint;
        // a hint past `max_delay` ends the retries.
        let planned = meta.retry.delay(retries);
        let wait = match failure.retry_after() {
            Some(hint) if hint > meta.retry.max_delay => break,
            Some(hint) => planned.max(hint),
            None => planned,
        };
        // The retry budget: a dependency that is down gets no storm.
        if !cx.budgets().retry(std::any::TypeId::of::<S>()) {
            break;
        }
        // No retry that would start past the workflow's deadline.
        if cx.past_deadline_after(wait) {
            break;
        }
        let Some(copy) = S::dup(&input) else { break };
        tokio::time::sleep(wait).await;
        retries += 1;
        let timeout = cx.bounded(timeout);
        match step_attempt::<S, _>(cx, retries + 1, P::call::<S>(copy, cx.context()), timeout).await
        {
            Ok(out) => {
                mark_slow::<S>(cx, index, started);
                return Ok(succeeded::<S>(cx, index, retries, false, out));
            }
            Err(again) => failure = again,
        }
    }
    if failure.class() == ErrorClass::Rejected {
        return Err(failed::<S>(cx, index, retries, failure));
    }
    if let Some(fallback) = S::fallback(input, cx.context()) {
        let fallback_timeout =
            cx.bounded(meta.fallback_timeout.unwrap_or(cx.config().step_timeout));
        match attempt(fallback, fallback_timeout).await {
            Ok(out) => return Ok(succeeded::<S>(cx, index, retries, true, out)),
            Err(also) => failure = failure.with_fallback(also),
        }
    }
    Err(failed::<S>(cx, index, retries, failure))
}

/// Step `S` is held back by low confidence: its fallback serves, else the
/// run fails with [`Error::ConfidenceThreshold`]. The step itself does not
/// run, so it learns nothing.
async fn held_back<S: Step>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
    blocked: Blocked,
) -> Result<(S::Output, S::Undo), Error> {
    let record = cx.record(index);
    if let Some(fallback) = S::fallback(input, cx.context()) {
        let timeout = S::META.fallback_timeout.unwrap_or(cx.config().step_timeout);
        let outcome = attempt(fallback, timeout).await;
        if let Some(record) = record {
            record.held(outcome.is_ok());
        }
        return match outcome {
            Ok(out) => {
                let undo = S::keep(&out);
                Ok((out, undo))
            }
            Err(failure) => Err(failure.into_error::<S>(cx.pattern())),
        };
    }
    if let Some(record) = record {
        record.held(false);
    }
    Err(blocked.into_error(S::NAME))
}

/// Runs the `compensate` step of `S`, stage `index`, on what was kept of its
/// output, under the compensating step's own timeout. A failing or panicking compensation is logged and counted; the
/// remaining compensations still run.
pub async fn compensate_step<S: Step>(cx: Cx<'_>, index: usize, undo: S::Undo) {
    let Some(fut) = S::compensate(undo, cx.context()) else {
        return;
    };
    // The compensating step's own timeout, not the undone step's.
    let timeout = S::META
        .compensate_timeout
        .unwrap_or(cx.config().step_timeout);
    let outcome = attempt(fut, timeout).await;
    if let Some(record) = cx.record(index) {
        record.compensated(outcome.is_ok());
    }
    if let Err(failure) = outcome {
        let error = failure.into_error::<S>(cx.pattern());
        tracing::warn!(target: "ndf::compensation", pattern = cx.pattern(), step = S::NAME, %error, "compensation failed");
    }
}
