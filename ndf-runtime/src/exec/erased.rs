//! What follows a step's first attempt, and the whole run of a step with
//! retries, a fallback or a `slow_call` (`Resilient`), with the step's
//! types erased: compiled once for every step, not once per step.
//!
//! A step's own types are in one small generic value, its [`Cell`]: the
//! step's input, the attempt running, its output. The code around it —
//! admission, the attempts' timeouts, panics and spans, retries with
//! backoff, the retry budget, the fallback, what ends the step is recorded
//! — reaches the cell through a `dyn` [`Attempts`] and is not generic over
//! the step. In the compile-time benchmark's crate (50 steps with retries
//! and a timeout, `benches/compile_time`), the debug build's LLVM IR went
//! from 143 k lines to 82 k, and its release build from 1.5 times the
//! hand-written crate's time to 1.1 times.
//!
//! The first attempt of a `Resilient` step runs inline, in [`drive`]'s
//! future; only when it fails, or the step is held back, does the step go
//! on in a boxed future ([`recover`], [`held`]): both are rare. The retried
//! attempts reuse the cell: a retry allocates nothing of ndf's own
//! (`tests/allocations_retries.rs`).
//!
//! Where the workflow awaits the step in place (a sequence's stage), the
//! cell is a local of the workflow's own future and the run it awaits is
//! [`drive`] itself (`exec::stage`); inside a `parallel!` task, the cell
//! lives in [`run_erased`](super::step)'s future.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::admit::{Next, admission, needs_admission};
use super::alarm::{Bounds, Deadlines, Own};
use super::asked::{Asked, asking};
use super::attempt::{attempt, attempt_of, failed, first_attempt, first_succeeded};
use super::compensate::{Failed, StageError};
use super::failure::Failure;
use super::first::Policies;
use super::placement::Placement;
use super::stage::Stage;
use super::step::{limits_of, run_erased};
use super::{Cx, Finish, Step};
use crate::context::PatternContext;
use crate::error::{Error, ErrorClass, StepError};
use crate::gating::{LimitsCell, Place};
use crate::learning::Blocked;
use crate::model::StepMeta;

/// A fallback's attempt, which leaves its output in its step's cell.
type FallbackAttempt<'p> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'p>>;

/// A step's attempts with the step's types erased: what [`drive`],
/// [`recover`] and [`held`] need of its [`Cell`].
pub(super) trait Attempts<'a>: Send {
    /// Starts an attempt on a copy of the step's input; the first
    /// attempt (`first`) takes the input itself when it cannot be copied.
    /// `false` when there is no input left to start one on.
    fn start(self: Pin<&mut Self>, first: bool) -> bool;

    /// Polls the attempt started last; its output stays in the cell.
    fn poll_attempt(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), StepError>>;

    /// Drops the attempt started last: it failed, panicked or timed out.
    fn stop(self: Pin<&mut Self>);

    /// The step's fallback on its input, bounded by `timeout`, its
    /// output left in the cell; `None` when the step has none, or its
    /// input is gone.
    fn fallback<'p>(self: Pin<&'p mut Self>, timeout: Duration) -> Option<FallbackAttempt<'p>>
    where
        'a: 'p;
}

/// A step's cell as [`drive`], [`recover`] and [`held`] take it.
pub(super) type Erased<'p, 'a> = Pin<&'p mut (dyn Attempts<'a> + 'a)>;

pin_project_lite::pin_project! {
    /// The values of step `S` that have its types: its input, the attempt
    /// running (`F`, which `call` makes, and whose output `R` makes a
    /// step result), its output.
    pub(super) struct Cell<'a, S: Step, F, M, R> {
        cx: Cx<'a>,
        input: Option<S::Input>,
        #[pin]
        running: Option<F>,
        out: Option<S::Output>,
        call: M,
        finish: PhantomData<fn() -> R>,
    }
}

impl<'a, S, F, M, R> Cell<'a, S, F, M, R>
where
    S: Step,
    F: Future + Send + 'a,
    M: Fn(S::Input, &'a PatternContext) -> F + Send,
    R: Finish<F::Output, Ok = S::Output>,
{
    /// The cell of step `S` on `input`, whose attempts `call` makes.
    pub(super) fn new(cx: Cx<'a>, input: S::Input, call: M) -> Self {
        Self {
            input: Some(input),
            ..Self::empty(cx, call)
        }
    }

    /// The cell of step `S`, with no input yet (see `exec::stage`).
    pub(super) fn empty(cx: Cx<'a>, call: M) -> Self {
        Self {
            cx,
            input: None,
            running: None,
            out: None,
            call,
            finish: PhantomData,
        }
    }
}

impl<'a, S, F, M, R> Attempts<'a> for Cell<'a, S, F, M, R>
where
    S: Step,
    F: Future + Send + 'a,
    M: Fn(S::Input, &'a PatternContext) -> F + Send,
    R: Finish<F::Output, Ok = S::Output>,
{
    fn start(self: Pin<&mut Self>, first: bool) -> bool {
        let mut this = self.project();
        let copy = match this.input {
            Some(input) => S::dup(input),
            None => return false,
        };
        let input = match copy {
            Some(copy) => copy,
            None if first => match this.input.take() {
                Some(input) => input,
                None => return false,
            },
            None => return false,
        };
        this.running
            .set(Some((this.call)(input, this.cx.context())));
        true
    }

    fn poll_attempt(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), StepError>> {
        // Projected twice rather than the projection reborrowed: in a
        // debug build, two functions fewer per step.
        let polled = match self.as_mut().project().running.as_pin_mut() {
            Some(running) => running.poll(cx),
            None => return Poll::Ready(Err(StepError::msg("no attempt of the step is running"))),
        };
        // Matched, not `Poll::map`ped: one function fewer per step.
        let Poll::Ready(returned) = polled else {
            return Poll::Pending;
        };
        match R::finish(returned) {
            Ok(out) => {
                let mut this = self.project();
                *this.out = Some(out);
                this.running.set(None);
                Poll::Ready(Ok(()))
            }
            Err(error) => Poll::Ready(Err(error)),
        }
    }

    fn stop(self: Pin<&mut Self>) {
        self.project().running.set(None);
    }

    fn fallback<'p>(self: Pin<&'p mut Self>, timeout: Duration) -> Option<FallbackAttempt<'p>>
    where
        'a: 'p,
    {
        // Not compiled for a step without a fallback.
        if const { S::META.fallback.is_none() } {
            return None;
        }
        let this = self.project();
        let input = this.input.take()?;
        into_slot(
            S::fallback(input, this.cx.context()),
            this.out,
            *this.cx,
            timeout,
        )
    }
}

/// Retries, a fallback or a `slow_call`, without hedging: the run with
/// the step's types erased. Defined here, beside the cell, so that in a
/// debug build what is compiled per such step in a workflow's crate is in
/// one codegen unit, not one more for the type's own module.
#[doc(hidden)]
#[derive(Debug)]
pub struct Resilient;

impl Policies for Resilient {
    fn run<'a, S: Step, P: Placement, K: Bounds, E: StageError>(
        cx: Cx<'a>,
        index: usize,
        input: S::Input,
        arg: K::Arg<'a>,
    ) -> impl Future<Output = Result<(S::Output, S::Undo), E>> + 'a {
        run_erased::<S, P, K, E>(cx, index, input, arg)
    }

    fn cell<S: Step>(cx: Cx<'_>) -> impl Stage<'_, Step = S> {
        // The step's own `call`, not a placement's around it: one
        // function fewer per step.
        Cell::<S, _, _, S::Finish>::empty(cx, S::call)
    }
}

/// A `Resilient` step's stage, awaited in place: its run is [`drive`]
/// itself, on the cell, which is a local of the workflow's future.
impl<'a, S, F, M, R> Stage<'a> for Cell<'a, S, F, M, R>
where
    S: Step,
    F: Future + Send + 'a,
    M: Fn(S::Input, &'a PatternContext) -> F + Send + 'a,
    R: Finish<F::Output, Ok = S::Output> + 'a,
{
    type Step = S;
    type Done = ();

    fn go<'p>(
        mut self: Pin<&'p mut Self>,
        cx: Cx<'a>,
        index: usize,
        input: S::Input,
    ) -> impl Future<Output = Result<(), Failed>> + Send + 'p
    where
        'a: 'p,
    {
        *self.as_mut().project().input = Some(input);
        drive::<Own>(cx, Which::step::<S>(index), self, ())
    }

    /// The output the step ended with, with what compensation needs.
    fn finish(self: Pin<&mut Self>, (): ()) -> (S::Output, S::Undo) {
        let out = self
            .project()
            .out
            .take()
            .expect("a step that succeeded keeps its output in its cell");
        let undo = S::keep(&out);
        (out, undo)
    }
}

/// The attempt running in a cell, as a future: one type for every step.
struct Running<'p, 'a>(Erased<'p, 'a>);

impl Future for Running<'_, '_> {
    type Output = Result<(), StepError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.0.as_mut().poll_attempt(cx)
    }
}

/// Which step [`drive`] runs: its stage, its limits, and its options
/// and type in a constant of its own, so that the run keeps a word for
/// them, not three.
#[derive(Clone, Copy)]
pub(super) struct Which {
    /// Its stage.
    pub(super) index: usize,
    /// Its `rate` and `concurrency`, if it has either.
    pub(super) limits: Option<&'static LimitsCell>,
    pub(super) of: &'static StepOf,
}

impl Which {
    /// Step `S`, stage `index`.
    pub(super) fn step<S: Step>(index: usize) -> Self {
        Self {
            index,
            limits: limits_of::<S>(),
            of: step_of::<S>(),
        }
    }
}

/// A step's options and its type (which keys its retry budget).
pub(super) struct StepOf {
    pub(super) meta: &'static StepMeta,
    pub(super) id: std::any::TypeId,
}

/// Step `S`'s options and type, in a constant: a word to keep.
pub(super) fn step_of<S: Step>() -> &'static StepOf {
    const {
        &StepOf {
            meta: &S::META,
            id: std::any::TypeId::of::<S>(),
        }
    }
}

/// The run of a step with retries, a fallback or a `slow_call`, whose
/// cell is `cell`: its admission, its first attempt (bounded by what `K`
/// makes of `arg`), and, when that fails, [`recover`]. Its output stays in
/// the cell. Generic over the bound only: one copy serves every step.
/// Not an `async fn`: an `async fn` stores its arguments twice in its
/// future. Its error is boxed (see [`StageError`]), so that its result
/// is a word, not 104 bytes, on the way out of every poll.
#[allow(
    clippy::manual_async_fn,
    reason = "an `async fn` would store its arguments twice in its future"
)]
pub(super) fn drive<'p, 'a: 'p, K: Bounds>(
    cx: Cx<'a>,
    step: Which,
    mut cell: Erased<'p, 'a>,
    arg: K::Arg<'a>,
) -> impl Future<Output = Result<(), Failed>> + 'p {
    async move {
        // The place, if any, is held until the step is done.
        let mut _place = Place::NONE;
        // Each attempt cuts it to the deadline when it first waits; the
        // admission, to what is left now (none: the deadline has passed).
        let timeout = cx.config().timeout_of(step.of.meta);
        let bounded = cx.bounded(timeout);
        if needs_admission(cx, step.of.meta, step.limits, || bounded) {
            let next = admission(cx, step.index, step.of.meta, step.limits, bounded)
                .map_err(Failed::new)?;
            match next {
                Next::Go(place) => _place = place,
                Next::Wait(wait) => _place = wait.await.map_err(Failed::new)?,
                Next::Held(blocked) => {
                    return Box::pin(held(cx, step.index, step.of.meta, blocked.clone(), cell))
                        .await
                        .map_err(Failed::new);
                }
            }
        }
        if step.of.meta.retry.max_retries > 0 && cx.budgets().enabled() {
            cx.budgets().call(step.of.id);
        }
        let started = step.of.meta.slow_call.map(|_| tokio::time::Instant::now());
        cell.as_mut().start(true);
        // Polled in `drive`'s own poll, not through a call: `drive` is
        // shared by every step, so this is one more copy of the attempt's
        // poll per bound, not per step.
        let first = first_attempt::<_, _, K>(cx, step.of.meta.name, Running(cell.as_mut()), arg);
        let first = asking(first, cx, timeout);
        let failure = match first.await {
            Ok(()) => {
                mark_slow(cx, step.index, started, step.of.meta.slow_call);
                first_succeeded(cx, step.index);
                return Ok(());
            }
            Err(failure) => failure,
        };
        cell.as_mut().stop();
        if !step.of.meta.recovers() || failure.class() == ErrorClass::Rejected {
            return Err(Failed::new(failed(
                cx,
                step.index,
                0,
                failure,
                step.of.meta.name,
            )));
        }
        let ended = Ended {
            index: step.index,
            of: step.of,
            timeout,
            started,
        };
        Box::pin(recover(cx, ended, failure, cell))
            .await
            .map_err(Failed::new)
    }
}

/// Records a success slower than the step's `slow_call` threshold `limit`
/// (`started` is when its first attempt started, for such steps only).
/// Inlined: most steps have no threshold, and pay one test, not a call.
#[inline]
pub(super) fn mark_slow(
    cx: Cx<'_>,
    index: usize,
    started: Option<tokio::time::Instant>,
    limit: Option<Duration>,
) {
    if let (Some(limit), Some(started)) = (limit, started) {
        slow_if_over(cx, index, started, limit);
    }
}

/// [`mark_slow`] for a step with a threshold: reads the clock.
#[inline(never)]
fn slow_if_over(cx: Cx<'_>, index: usize, started: tokio::time::Instant, limit: Duration) {
    if started.elapsed() > limit
        && let Some(record) = cx.record(index)
    {
        record.slow();
    }
}

/// The attempt of a step's fallback, if it has one, which leaves its
/// output in `out`. Generic over the fallback's future, not the step:
/// steps without one, whose (never made) future is the same type, share a
/// copy per output type.
fn into_slot<'p, F, O>(
    fallback: Option<F>,
    out: &'p mut Option<O>,
    cx: Cx<'p>,
    timeout: Duration,
) -> Option<FallbackAttempt<'p>>
where
    F: Future<Output = Result<O, StepError>> + Send + 'p,
    O: Send,
{
    Some(Box::pin(Slotted {
        attempt: asking(attempt(fallback?, Asked), cx, timeout),
        out,
    }))
}

pin_project_lite::pin_project! {
    /// A fallback's attempt that leaves its output in its step's cell. A
    /// future of its own rather than `futures`' `Map`, whose poll and
    /// state cost each step with a fallback 200-260 lines of LLVM IR more.
    struct Slotted<'p, F, O> {
        #[pin]
        attempt: F,
        out: &'p mut Option<O>,
    }
}

impl<O, F: Future<Output = Result<O, Failure>>> Future for Slotted<'_, F, O> {
    type Output = Result<(), Failure>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.attempt.poll(cx) {
            Poll::Ready(Ok(out)) => {
                **this.out = Some(out);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(failure)) => Poll::Ready(Err(failure)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// What [`recover`] knows of the step whose first attempt failed.
pub(super) struct Ended {
    /// Its stage.
    pub(super) index: usize,
    pub(super) of: &'static StepOf,
    /// Each attempt's timeout.
    pub(super) timeout: Duration,
    /// When its first attempt started, for a step with a `slow_call`.
    pub(super) started: Option<tokio::time::Instant>,
}

/// After a failed first attempt: the remaining retries with backoff (for
/// transient errors only), each on a copy of the input in the step's
/// `cell`, then the fallback (unless the error is rejected); when the
/// fallback fails too, its error is kept beside the step's own. What ends
/// the step is recorded; its output stays in the cell.
pub(super) async fn recover<'a>(
    cx: Cx<'a>,
    step: Ended,
    mut failure: Failure,
    mut cell: Erased<'_, 'a>,
) -> Result<(), Error> {
    let name = step.of.meta.name;
    let mut retries = 0;
    while let Some(wait) = retry_wait(cx, step.of, retries, &failure) {
        tokio::time::sleep(wait).await;
        if !cell.as_mut().start(false) {
            break;
        }
        retries += 1;
        let attempt = attempt_of::<_, _, Own>(
            cx,
            name,
            retries + 1,
            Running(cell.as_mut()),
            step.timeout,
            (),
        );
        match attempt.await {
            Ok(()) => {
                mark_slow(cx, step.index, step.started, step.of.meta.slow_call);
                if let Some(record) = cx.record(step.index) {
                    record.finish(retries, true, false);
                }
                return Ok(());
            }
            Err(next) => {
                cell.as_mut().stop();
                failure = next;
            }
        }
    }
    if failure.class() == ErrorClass::Rejected {
        return Err(failed(cx, step.index, retries, failure, name));
    }
    let timeout = step
        .of
        .meta
        .fallback_timeout
        .unwrap_or(cx.config().step_timeout);
    let Some(fallback) = cell.as_mut().fallback(timeout) else {
        return Err(failed(cx, step.index, retries, failure, name));
    };
    match fallback.await {
        Ok(()) => {
            if let Some(record) = cx.record(step.index) {
                record.finish(retries, true, true);
            }
            Ok(())
        }
        Err(also) => {
            let failure = failure.with_fallback(also);
            Err(failed(cx, step.index, retries, failure, name))
        }
    }
}

/// How long to wait before retry `retries + 1` of step `of` after
/// `failure`; `None` when it is not retried: its
/// retries are spent, the error is not transient, a retry-after hint is
/// past `max_delay`, the retry budget is spent, or the wait would end past
/// the workflow's deadline.
fn retry_wait(cx: Cx<'_>, of: &StepOf, retries: u32, failure: &Failure) -> Option<Duration> {
    let meta = of.meta;
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
    (cx.budgets().retry(of.id) && !cx.past_deadline_after(wait)).then_some(wait)
}

/// Step `step`, which has no fallback, is held back by low confidence:
/// the run fails with [`Error::ConfidenceThreshold`].
#[cold]
pub(super) fn held_back_unserved(
    cx: Cx<'_>,
    index: usize,
    blocked: Blocked,
    step: &'static str,
) -> Error {
    if let Some(record) = cx.record(index) {
        record.held(false);
    }
    blocked.into_error(step)
}

/// A step its gate holds back (`blocked`): its fallback serves (from its
/// `cell`, where its output stays), else the run fails with
/// [`Error::ConfidenceThreshold`]. The step itself does not run, so it
/// learns nothing.
pub(super) async fn held<'a>(
    cx: Cx<'a>,
    index: usize,
    meta: &'static StepMeta,
    blocked: Blocked,
    mut cell: Erased<'_, 'a>,
) -> Result<(), Error> {
    // Nothing of a stage runs before the durable run's earlier stages are
    // stored: its fallback neither (see `exec::durable`).
    cx.store_checkpoints().await?;
    let timeout = meta.fallback_timeout.unwrap_or(cx.config().step_timeout);
    let Some(fallback) = cell.as_mut().fallback(timeout) else {
        return Err(held_back_unserved(cx, index, blocked, meta.name));
    };
    let outcome = fallback.await;
    if let Some(record) = cx.record(index) {
        record.held(outcome.is_ok());
    }
    outcome.map_err(|failure| failure.into_error(cx.pattern(), meta.name))
}

/// A stand-in cell: what [`shared_instances`] drives.
struct NoStep;

impl<'a> Attempts<'a> for NoStep {
    fn start(self: Pin<&mut Self>, _first: bool) -> bool {
        false
    }

    fn poll_attempt(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), StepError>> {
        Poll::Ready(Ok(()))
    }

    fn stop(self: Pin<&mut Self>) {}

    fn fallback<'p>(self: Pin<&'p mut Self>, _timeout: Duration) -> Option<FallbackAttempt<'p>>
    where
        'a: 'p,
    {
        None
    }
}

/// Polls, once, what every step with retries, a fallback or a
/// `slow_call` runs: [`drive`] (and through it the admission, the
/// attempts, [`recover`] and [`held`]) with a step's own timer and with a
/// `parallel!`'s alarm. (A run's admission is not generic: its wait is
/// boxed where the runtime makes it.)
///
/// Never called. It is here so that this crate compiles those state
/// machines itself: they are generic only over the runtime's own types,
/// and a debug build of a user's crate (where rustc shares the generic
/// code its dependencies compiled) links these copies instead of
/// compiling them again, in units of its own.
#[doc(hidden)]
pub fn shared_instances(cx: Cx<'_>, deadlines: &Deadlines, waker: &mut Context<'_>) {
    static META: StepMeta = StepMeta::new("");
    static OF: StepOf = StepOf {
        meta: &META,
        id: std::any::TypeId::of::<NoStep>(),
    };
    let which = Which {
        index: 0,
        limits: None,
        of: &OF,
    };
    let mut own = NoStep;
    let own = Pin::new(&mut own);
    let own: Erased<'_, '_> = own;
    // Awaited, as a stage awaited in place awaits it (`exec::stage`), so
    // that what `.await` calls on it is compiled here too.
    let _ = std::pin::pin!(async { drive::<Own>(cx, which, own, ()).await }).poll(waker);
    let mut joined = NoStep;
    let joined = Pin::new(&mut joined);
    let joined: Erased<'_, '_> = joined;
    let _ = std::pin::pin!(drive::<super::alarm::Joined>(cx, which, joined, deadlines)).poll(waker);
}
