//! One attempt of a step: bounded by its timeout, a panic caught, in a
//! `ndf.step` span when a subscriber listens; where the step's code runs;
//! and what an ended attempt records.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::alarm::{Bound, Bounds, Deadlines, Due, Own};
use super::asked::{Asked, AskingAttempt, KeptTimeout, asking};
use super::failure::Failure;
use super::{Cx, Step};
use crate::error::{Error, ErrorClass, StepError};
use crate::policy::Timer;

/// One bounded, panic-safe attempt.
pub(crate) fn attempt<T, F: Future<Output = Result<T, StepError>>, D: KeptTimeout>(
    fut: F,
    timeout: D,
) -> Attempt<F, Timer, D> {
    traced_by::<_, _, Own, _>(fut, timeout, Trace::OFF, ())
}

/// [`attempt`] in the span `trace` says, bounded by the bound `K` makes
/// of `arg`, made here: not passed down by value through every layer.
#[inline]
fn traced_by<T, F: Future<Output = Result<T, StepError>>, K: Bounds, D: KeptTimeout>(
    fut: F,
    timeout: D,
    trace: Trace,
    arg: K::Arg<'_>,
) -> Attempt<F, K::Of<'_>, D> {
    Attempt {
        fut,
        timeout,
        timer: K::make(arg),
        trace,
    }
}

pin_project_lite::pin_project! {
    /// The future of [`attempt`]: the step's future, stored once, polled
    /// with a panic caught, and its timer, armed at its first wait, and,
    /// for a step's attempt while a subscriber listens, its span. One
    /// hand-written future rather than a deadline around a `catch_unwind`
    /// under a `map` (each layer cost its own poll), and one type whether
    /// traced or not (a second type cost its own poll, per step, in code
    /// and compile time).
    pub(crate) struct Attempt<F, B, D = Duration> {
        #[pin]
        fut: F,
        // The timeout, or nothing (see `Asked`).
        timeout: D,
        // Its own timer, or its `parallel!`'s alarm.
        #[pin]
        timer: B,
        trace: Trace,
    }
}

impl<T, F: Future<Output = Result<T, StepError>>, B: Bound, D: KeptTimeout> Attempt<F, B, D> {
    /// What a poll of the attempt does. Inlined into [`Attempt::poll`]
    /// and, for a step with one attempt, where the step awaits it
    /// ([`FirstAttempt`]); tracing's own code stays behind calls. `ask`
    /// gives the timeout the attempt does not keep, if it keeps none.
    #[allow(
        clippy::inline_always,
        reason = "a plain step's attempt, inlined where it is awaited: no call, and no result copied out, per step"
    )]
    #[inline(always)]
    fn poll_here(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        ask: impl Fn() -> Duration + Copy,
    ) -> Poll<Result<T, Failure>> {
        let this = self.project();
        let kept = *this.timeout;
        let timeout = move || kept.or_ask(ask);
        let Some(span) = this.trace.0.as_deref() else {
            // Returned as it comes: a result first kept here, then copied
            // out, cost a store-forwarding stall on every step.
            return poll_bounded(this.fut, this.timer, timeout, cx);
        };
        let entered = enter(span);
        let poll = poll_bounded(this.fut, this.timer, timeout, cx);
        exit(entered);
        if let Poll::Ready(result) = &poll {
            ended(span, result.as_ref().err());
        }
        poll
    }
}

impl<T, F: Future<Output = Result<T, StepError>>, B: Bound> Future for Attempt<F, B> {
    type Output = Result<T, Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_here(cx, || {
            unreachable!("an attempt that keeps its timeout asks for none")
        })
    }
}

pin_project_lite::pin_project! {
    /// An [`Attempt`] polled where it is awaited, not through a call (per
    /// step, the call and the copy of its result cost about 2 ns): a
    /// `Plain` step's one attempt, in its workflow's poll, and the first
    /// attempt of a `Resilient` step, in `erased::drive`, which every such
    /// step shares (one copy per bound, not per step). Retries and hedged
    /// attempts go through [`Asking`]'s poll, so that their code is
    /// compiled once. It keeps no timeout ([`Asked`]): it is polled with
    /// what gives it ([`AskingAttempt`]).
    pub(crate) struct FirstAttempt<F, B> {
        #[pin]
        attempt: Attempt<F, B, Asked>,
    }
}

impl<T, F: Future<Output = Result<T, StepError>>, B: Bound> AskingAttempt for Attempt<F, B, Asked> {
    type Out = T;

    fn poll_asking(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        ask: impl Fn() -> Duration + Copy,
    ) -> Poll<Result<T, Failure>> {
        self.poll_here(cx, ask)
    }
}

impl<T, F: Future<Output = Result<T, StepError>>, B: Bound> AskingAttempt for FirstAttempt<F, B> {
    type Out = T;

    #[allow(clippy::inline_always, reason = "see `Attempt::poll_here`")]
    #[inline(always)]
    fn poll_asking(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        ask: impl Fn() -> Duration + Copy,
    ) -> Poll<Result<T, Failure>> {
        self.project().attempt.poll_here(cx, ask)
    }
}

/// The first attempt of step `step` on `fut`, polled where it is awaited
/// (see [`FirstAttempt`]).
#[inline]
pub(crate) fn first_attempt<'a, T, F: Future<Output = Result<T, StepError>>, K: Bounds>(
    cx: Cx<'a>,
    step: &'static str,
    fut: F,
    arg: K::Arg<'a>,
) -> FirstAttempt<F, K::Of<'a>> {
    FirstAttempt {
        attempt: traced_by::<_, _, K, _>(fut, Asked, Trace::of(cx, step, 1), arg),
    }
}

/// Polls `fut` with a panic caught, then, while it is pending, `timer`,
/// armed for `timeout` at its first wait.
#[allow(
    clippy::inline_always,
    reason = "called twice in `Attempt::poll`, so not inlined otherwise: a call per step's poll"
)]
#[inline(always)]
fn poll_bounded<T, F: Future<Output = Result<T, StepError>>, B: Bound>(
    mut fut: Pin<&mut F>,
    timer: Pin<&mut B>,
    timeout: impl Fn() -> Duration,
    cx: &mut Context<'_>,
) -> Poll<Result<T, Failure>> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
        Ok(Poll::Ready(Ok(out))) => Poll::Ready(Ok(out)),
        Ok(Poll::Ready(Err(error))) => Poll::Ready(Err(Failure::Failed(error))),
        Err(payload) => Poll::Ready(Err(panicked(payload))),
        // A `match`, not `Poll::map` and a closure: two functions fewer to
        // compile for every step in a debug build.
        Ok(Poll::Pending) => match timer.poll_expired(&timeout, cx) {
            Poll::Ready(()) => Poll::Ready(Err(Failure::TimedOut(timeout()))),
            Poll::Pending => Poll::Pending,
        },
    }
}

/// Polls `fut` with a panic caught: what [`poll_bounded`] does before its
/// timer, for a task's attempt. `poll_bounded` keeps its own copy: calling
/// this from it changed how LLVM laid out every `sequential!` step's poll,
/// 16 instructions a step more (callgrind, 10 plain steps).
#[allow(clippy::inline_always, reason = "see `poll_bounded`")]
#[inline(always)]
fn poll_caught<T, F: Future<Output = Result<T, StepError>>>(
    mut fut: Pin<&mut F>,
    cx: &mut Context<'_>,
) -> Poll<Result<T, Failure>> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
        Ok(Poll::Ready(Ok(out))) => Poll::Ready(Ok(out)),
        Ok(Poll::Ready(Err(error))) => Poll::Ready(Err(Failure::Failed(error))),
        Err(payload) => Poll::Ready(Err(panicked(payload))),
        Ok(Poll::Pending) => Poll::Pending,
    }
}

pin_project_lite::pin_project! {
    /// The one attempt of a `Plain` step that is itself a task of a
    /// `parallel!` (see `exec::task`): the step's future, its deadline on
    /// the `parallel!`'s alarm, and its span's word. Its timeout is not
    /// kept: it is read from the step's options at its first wait, and
    /// again if it expires (16 bytes fewer in every task).
    pub(crate) struct TaskAttempt<F> {
        due: Due,
        trace: Trace,
        #[pin]
        fut: F,
    }
}

impl<T, F: Future<Output = Result<T, StepError>>> TaskAttempt<F> {
    /// The first attempt of the step named `step`, on `fut`, of a task
    /// that has not started.
    #[inline]
    pub(crate) fn new(cx: Cx<'_>, step: &'static str, fut: F) -> Self {
        Self {
            fut,
            due: Due::UNSTARTED,
            trace: Trace::of(cx, step, 1),
        }
    }

    /// Whether its task has started.
    #[inline]
    pub(crate) fn started(&self) -> bool {
        self.due.started()
    }

    /// Its task starts.
    #[inline]
    pub(crate) fn start(self: Pin<&mut Self>) {
        self.project().due.start();
    }

    /// Polls the attempt, as [`Attempt::poll_here`] does, bounded by the
    /// alarm's `deadlines`: armed at its first wait for `after()` (the
    /// timeout, never past the workflow's deadline), and, once that has
    /// passed, failed as timed out after `timeout()`.
    #[allow(clippy::inline_always, reason = "see `Attempt::poll_here`")]
    #[inline(always)]
    pub(crate) fn poll_in(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        deadlines: &Deadlines,
        after: impl FnOnce() -> Duration,
        timeout: impl FnOnce() -> Duration,
    ) -> Poll<Result<T, Failure>> {
        let this = self.project();
        let Some(span) = this.trace.0.as_deref() else {
            return poll_on_alarm(this.fut, deadlines, this.due, after, timeout, cx);
        };
        let entered = enter(span);
        let poll = poll_on_alarm(this.fut, deadlines, this.due, after, timeout, cx);
        exit(entered);
        if let Poll::Ready(result) = &poll {
            ended(span, result.as_ref().err());
        }
        poll
    }
}

/// Polls `fut` with a panic caught, then, while it is pending, its
/// deadline `due` on the alarm's `deadlines` (see [`TaskAttempt::poll_in`]).
#[allow(clippy::inline_always, reason = "see `poll_bounded`")]
#[inline(always)]
fn poll_on_alarm<T, F: Future<Output = Result<T, StepError>>>(
    fut: Pin<&mut F>,
    deadlines: &Deadlines,
    due: &mut Due,
    after: impl FnOnce() -> Duration,
    timeout: impl FnOnce() -> Duration,
    cx: &mut Context<'_>,
) -> Poll<Result<T, Failure>> {
    match poll_caught(fut, cx) {
        Poll::Pending => match deadlines.poll_due(due, after) {
            Poll::Ready(()) => Poll::Ready(Err(Failure::TimedOut(timeout()))),
            Poll::Pending => Poll::Pending,
        },
        ready @ Poll::Ready(_) => ready,
    }
}

/// The failure of an attempt that panicked with `payload` (dropped here:
/// not inlined where each step's attempt is polled).
#[cold]
#[inline(never)]
#[allow(
    clippy::needless_pass_by_value,
    reason = "dropped here, not where each step's attempt is polled"
)]
fn panicked(payload: Box<dyn std::any::Any + Send>) -> Failure {
    Failure::Failed(StepError::panicked(&*payload))
}

/// The `ndf.step` span of a step's attempt, made with the attempt and
/// entered only while polling, never across an `.await`: none unless a
/// subscriber takes it (at debug level), and boxed, so that every
/// attempt's future keeps a word for it, not a span's 40 bytes. Only a
/// traced attempt pays the box, beside what its subscriber allocates.
pub(crate) struct Trace(Option<Box<tracing::Span>>);

impl Drop for Trace {
    /// A null check where an attempt ends untraced, inlined: the span's
    /// own drop is out of line, and so, before, was this check (a call
    /// and 9 instructions a step).
    #[inline]
    fn drop(&mut self) {
        // Tested before it is taken: no store where there is no span.
        if self.0.is_some() {
            close(self.0.take());
        }
    }
}

/// Closes and frees an attempt's span.
#[cold]
#[inline(never)]
fn close(span: Option<Box<tracing::Span>>) {
    drop(span);
}

impl Trace {
    /// No span.
    const OFF: Trace = Trace(None);

    /// The span of attempt `number` of step `step` of run `cx`: one level
    /// check when nothing listens at debug level.
    #[inline]
    fn of(cx: Cx<'_>, step: &'static str, number: u32) -> Trace {
        if tracing::level_enabled!(tracing::Level::DEBUG) {
            Trace(span_of(cx, step, number))
        } else {
            Trace::OFF
        }
    }
}

/// The span (pattern, step, domain, attempt number, outcome), unless no
/// subscriber takes it. Context attributes are not recorded. Not generic:
/// its fields are written once for every step.
#[inline(never)]
fn span_of(cx: Cx<'_>, step: &'static str, number: u32) -> Option<Box<tracing::Span>> {
    let span = tracing::debug_span!(
        "ndf.step",
        pattern = cx.pattern(),
        step,
        domain = cx.context().domain(),
        attempt = number,
        outcome = tracing::field::Empty,
    );
    (!span.is_disabled()).then(|| Box::new(span))
}

/// Enters `span`: a call where each step's attempt is polled, not
/// tracing's code inlined there.
#[inline(never)]
fn enter(span: &tracing::Span) -> tracing::span::Entered<'_> {
    span.enter()
}

/// Leaves the span `entered` entered (as [`enter`], a call).
#[inline(never)]
fn exit(entered: tracing::span::Entered<'_>) {
    drop(entered);
}

/// Records how an attempt ended in its span.
fn ended(span: &tracing::Span, failure: Option<&Failure>) {
    let outcome = match failure {
        None => "ok",
        Some(Failure::Failed(_)) => "error",
        Some(Failure::TimedOut(_)) => "timeout",
    };
    span.record("outcome", outcome);
}

/// [`attempt`] number `number` of step `S`; when a subscriber listens at
/// debug level, inside a `ndf.step` span. Without one, this costs one
/// level check; with one, the span's box (see [`Trace`]).
pub(crate) fn step_attempt<'a, S: Step, T: 'a>(
    cx: Cx<'a>,
    number: u32,
    fut: impl Future<Output = Result<T, StepError>> + Send + 'a,
    timeout: Duration,
) -> impl Future<Output = Result<T, Failure>> + Send + 'a {
    attempt_of::<_, _, Own>(cx, S::NAME, number, fut, timeout, ())
}

/// Attempt `number` of the step named `step`, in its span as
/// [`step_attempt`]'s, bounded by what `K` makes of `arg`, under
/// `timeout` cut to the workflow's deadline at its first wait (see
/// [`asking`]).
#[inline]
pub(crate) fn attempt_of<'a, T: 'a, F: Future<Output = Result<T, StepError>> + 'a, K: Bounds>(
    cx: Cx<'a>,
    step: &'static str,
    number: u32,
    fut: F,
    timeout: Duration,
    arg: K::Arg<'a>,
) -> impl Future<Output = Result<T, Failure>> + 'a {
    let attempt = traced_by::<_, _, K, _>(fut, Asked, Trace::of(cx, step, number), arg);
    asking(attempt, cx, timeout)
}

/// Step `S`'s output `out`, recorded as a success of its first attempt,
/// with what compensation needs.
#[inline]
pub(crate) fn succeeded<S: Step>(cx: Cx<'_>, index: usize, out: S::Output) -> (S::Output, S::Undo) {
    first_succeeded(cx, index);
    let undo = S::keep(&out);
    (out, undo)
}

/// Records a step's success at its first attempt (not generic: one copy
/// for every step in a debug build; inlined where a step ends otherwise).
#[inline]
pub(super) fn first_succeeded(cx: Cx<'_>, index: usize) {
    if let Some(record) = cx.record(index) {
        record.finish(0, true, false);
    }
}

/// The error of step `step`'s failure, recorded (not generic: one copy
/// for every step).
pub(crate) fn failed(
    cx: Cx<'_>,
    index: usize,
    retries: u32,
    failure: Failure,
    step: &'static str,
) -> Error {
    if let Some(record) = cx.record(index) {
        if failure.class() == ErrorClass::Rejected {
            record.rejected(retries);
        } else {
            record.finish(retries, false, false);
        }
    }
    if failure.class() != ErrorClass::Rejected
        && let Some(error) = past_deadline(cx, step)
    {
        return error;
    }
    failure.into_error(cx.pattern(), step)
}

/// [`Error::DeadlineExceeded`] in step `step`, when the workflow's
/// deadline has passed.
pub(crate) fn past_deadline(cx: Cx<'_>, step: &'static str) -> Option<Error> {
    cx.deadline_passed()
        .map(|deadline| Error::DeadlineExceeded {
            pattern: cx.pattern().to_owned(),
            step: step.to_owned(),
            deadline,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an attempt ended with, in words.
    fn said<T: std::fmt::Debug>(result: Result<T, Failure>) -> String {
        match result {
            Ok(out) => format!("ok {out:?}"),
            Err(Failure::Failed(error)) => format!("failed: {error}"),
            Err(Failure::TimedOut(after)) => format!("timed out after {after:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_ready_step_passes_through_without_a_timer() {
        let mut attempt = std::pin::pin!(attempt(async { Ok(7) }, Duration::from_millis(1)));
        let polled = std::future::poll_fn(|cx| Poll::Ready(attempt.as_mut().poll(cx))).await;
        assert!(matches!(polled, Poll::Ready(Ok(7))));
        assert!(matches!(attempt.timer, Timer::Idle), "never armed");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_step_times_out_after_its_timeout_from_its_first_wait() {
        let started = tokio::time::Instant::now();
        let slow = async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok(1)
        };
        let result = attempt(slow, Duration::from_secs(1)).await;
        assert_eq!(said(result), "timed out after 1s");
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_that_waits_and_finishes_in_time_completes() {
        let quick = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            Ok(3)
        };
        assert_eq!(said(attempt(quick, Duration::from_secs(1)).await), "ok 3");
    }

    #[tokio::test(start_paused = true)]
    async fn errors_and_panics_are_failures() {
        let failing = async { Err::<u8, _>(StepError::msg("no")) };
        assert_eq!(
            said(attempt(failing, Duration::from_secs(1)).await),
            "failed: no"
        );
        let panicking = async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let step: fn() -> Result<u8, StepError> = || panic!("boom");
            step()
        };
        let said = said(attempt(panicking, Duration::from_secs(1)).await);
        assert!(
            said.starts_with("failed: ") && said.contains("boom"),
            "{said}"
        );
    }
}
