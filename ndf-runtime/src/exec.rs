//! Running one step: permissions are checked by the caller; here come the
//! attempts with timeout and panic capture, retries with backoff, the
//! fallback, and compensation.
//!
//! The first attempt runs inline; only when it fails does the step enter
//! [`recover`], whose future is boxed. The happy path allocates nothing and
//! keeps each step's future as small as the user's own future plus a few
//! words, while retries and fallbacks — rare, and slow by nature — pay one
//! allocation.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::Either;
use tracing::Instrument as _;

use crate::context::PatternContext;
use crate::error::{Error, ErrorClass, StepError};
use crate::learning::StepRecord;
use crate::ndf::Inner;
use crate::policy::Deadline;
use crate::step::Step;

/// The runtime's handle, passed down a running workflow. Opaque to users.
///
/// One pointer to the run's state, which lives in [`crate::Ndf::run`]'s
/// future: every layer of a workflow's state machine that keeps it stores a
/// word, not five.
#[derive(Clone, Copy)]
pub struct Cx<'a>(pub(crate) &'a Run<'a>);

/// The state of one run, shared by its steps.
pub(crate) struct Run<'a> {
    pub(crate) inner: &'a Inner,
    pub(crate) ctx: &'a PatternContext,
    pub(crate) pattern: &'static str,
    pub(crate) log: &'a [StepRecord],
    /// Records held back by low confidence in this run (usually none: an
    /// empty `Vec` does not allocate).
    pub(crate) blocked: Vec<(usize, Blocked)>,
}

/// Why a record is held back: its breaker, its confidence and the
/// threshold it missed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Blocked {
    pub(crate) confidence: f64,
    pub(crate) threshold: f64,
    pub(crate) state: crate::learning::BreakerState,
    pub(crate) retry_in: Option<Duration>,
    pub(crate) failures: u32,
    pub(crate) calls: u64,
    pub(crate) domain: Box<str>,
}

impl Blocked {
    /// The error of a run refused by this gate.
    pub(crate) fn into_error(self, pattern: &str) -> Error {
        Error::ConfidenceThreshold {
            pattern: pattern.to_owned(),
            domain: self.domain.into(),
            confidence: self.confidence,
            threshold: self.threshold,
            state: self.state,
            retry_in: self.retry_in,
            failures: self.failures,
            calls: self.calls,
        }
    }
}

impl std::fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx")
            .field("pattern", &self.0.pattern)
            .field("ctx", self.0.ctx)
            .finish_non_exhaustive()
    }
}

impl<'a> Cx<'a> {
    /// The context of the run.
    #[must_use]
    pub fn context(&self) -> &'a PatternContext {
        self.0.ctx
    }

    fn record(self, index: usize) -> Option<&'a StepRecord> {
        self.0.log.get(index)
    }

    pub(crate) fn blocked(self, index: usize) -> Option<&'a Blocked> {
        self.0
            .blocked
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| b)
    }
}

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
/// inside a `ndf.step` span. Without one, this costs one level check: the
/// traced path is boxed so that it adds nothing to the step's future.
fn step_attempt<'a, S: Step, T: 'a>(
    cx: Cx<'a>,
    number: u32,
    fut: impl Future<Output = Result<T, StepError>> + Send + 'a,
    timeout: Duration,
) -> impl Future<Output = Result<T, Failure>> + 'a {
    if tracing::level_enabled!(tracing::Level::DEBUG) {
        Either::Left(Box::pin(traced_attempt::<S, T>(cx, number, fut, timeout)))
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
        pattern = cx.0.pattern,
        step = S::NAME,
        domain = cx.0.ctx.domain(),
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
    failure.into_error::<S>(cx.0.pattern)
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
    Cancellable::<S, _>::new(run::<S, Inline>(cx, index, input)).await
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
    Cancellable::<S, _>::new(run::<S, Spawned>(cx, index, input)).await
}

thread_local! {
    /// Set while a cancelled `parallel!` task is polled to its end.
    static CANCELLING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Polls `poll` as the cancelled task it is: every step it reaches stops at
/// once with an error (nothing recorded for it), so that the workflows
/// around those steps fail and compensate what they completed; compensation
/// itself runs normally.
pub(crate) fn as_cancelled<R>(poll: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            CANCELLING.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CANCELLING.with(|c| c.replace(true)));
    poll()
}

/// Whether a cancelled `parallel!` task is being polled to its end.
pub(crate) fn cancelling() -> bool {
    CANCELLING.with(std::cell::Cell::get)
}

pin_project_lite::pin_project! {
    /// A step's run that stops, unrecorded, when its `parallel!` task is
    /// cancelled.
    struct Cancellable<S, F> {
        #[pin]
        run: F,
        step: std::marker::PhantomData<fn() -> S>,
    }
}

impl<S, F> Cancellable<S, F> {
    fn new(run: F) -> Self {
        Self {
            run,
            step: std::marker::PhantomData,
        }
    }
}

impl<S: Step, T, F: Future<Output = Result<T, Error>>> Future for Cancellable<S, F> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if cancelling() {
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
    let timeout = cx.0.inner.config.timeout_of(meta);
    if let Some(blocked) = cx.blocked(index) {
        return Box::pin(held_back::<S>(cx, index, input, blocked.clone())).await;
    }
    if let Some(budget) = cx.0.inner.config.memory_of(meta) {
        Box::pin(crate::gating::admit_memory(cx, budget)).await?;
    }
    let resilient = meta.retry.max_retries > 0 || meta.fallback.is_some();
    let (first, spare) = match resilient.then(|| S::dup(&input)).flatten() {
        Some(copy) => (copy, Some(input)),
        None => (input, None),
    };
    let failure = match step_attempt::<S, _>(cx, 1, P::call::<S>(first, cx.0.ctx), timeout).await {
        Ok(out) => return Ok(succeeded::<S>(cx, index, 0, false, out)),
        Err(failure) => failure,
    };
    match spare {
        Some(input) if failure.class() != ErrorClass::Rejected => {
            Box::pin(recover::<S, P>(cx, index, input, failure, timeout)).await
        }
        _ => Err(failed::<S>(cx, index, 0, failure)),
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
) -> Result<(S::Output, S::Undo), Error> {
    let meta = &S::META;
    let mut retries = 0;
    while retries < meta.retry.max_retries && failure.class() == ErrorClass::Transient {
        let Some(copy) = S::dup(&input) else { break };
        tokio::time::sleep(meta.retry.delay(retries)).await;
        retries += 1;
        match step_attempt::<S, _>(cx, retries + 1, P::call::<S>(copy, cx.0.ctx), timeout).await {
            Ok(out) => return Ok(succeeded::<S>(cx, index, retries, false, out)),
            Err(again) => failure = again,
        }
    }
    if failure.class() == ErrorClass::Rejected {
        return Err(failed::<S>(cx, index, retries, failure));
    }
    if let Some(fallback) = S::fallback(input, cx.0.ctx) {
        let fallback_timeout = meta
            .fallback_timeout
            .unwrap_or(cx.0.inner.config.step_timeout);
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
    if let Some(fallback) = S::fallback(input, cx.0.ctx) {
        let timeout = S::META
            .fallback_timeout
            .unwrap_or(cx.0.inner.config.step_timeout);
        let outcome = attempt(fallback, timeout).await;
        if let Some(record) = record {
            record.held(outcome.is_ok());
        }
        return match outcome {
            Ok(out) => {
                let undo = S::keep(&out);
                Ok((out, undo))
            }
            Err(failure) => Err(failure.into_error::<S>(cx.0.pattern)),
        };
    }
    if let Some(record) = record {
        record.held(false);
    }
    Err(blocked.into_error(S::NAME))
}

/// Runs the `compensate` step of `S`, stage `index`, on what was kept of its
/// output. A failing or panicking compensation is logged and counted; the
/// remaining compensations still run.
pub async fn compensate_step<S: Step>(cx: Cx<'_>, index: usize, undo: S::Undo) {
    let Some(fut) = S::compensate(undo, cx.0.ctx) else {
        return;
    };
    let timeout = cx.0.inner.config.timeout_of(&S::META);
    let outcome = attempt(fut, timeout).await;
    if let Some(record) = cx.record(index) {
        record.compensated(outcome.is_ok());
    }
    if let Err(failure) = outcome {
        let error = failure.into_error::<S>(cx.0.pattern);
        tracing::warn!(pattern = cx.0.pattern, step = S::NAME, %error, "compensation failed");
    }
}
