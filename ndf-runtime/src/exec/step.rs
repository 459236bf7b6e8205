//! Running one step: permissions are checked by the caller; here come the
//! admission, the attempts with timeout and panic capture, retries with
//! backoff and the fallback (compensation is in `compensate`).
//!
//! How a step runs is chosen per step at compile time (`Step::Policies`,
//! from its options, in [`super::first`]):
//! - a `Plain` step (no retries, fallback, hedge or `slow_call`) runs in
//!   [`run_plain`], generic over it: its future is its one attempt with
//!   what ends it, polled where its workflow awaits it, and keeps nothing
//!   else;
//! - a `Resilient` step (retries, a fallback or a `slow_call`) keeps its
//!   types in a small cell, and its run — the admission, its attempts,
//!   retries and fallback — is code shared by every step
//!   (`super::erased`), which keeps the code compiled per step, and so
//!   compile time, small. Awaited in place, the cell is a local of the
//!   workflow's future (`super::stage`); inside a `parallel!` task, it is
//!   in [`run_erased`]'s future;
//! - a hedged step runs in [`run_hedged`], its first attempt hedged.
//!
//! The first attempt runs inline; only when it fails, or the step is held
//! back, does the step go on in a boxed future. The happy path allocates
//! nothing — with a subscriber listening, and with steps that wait on
//! their timeout's timer (`tests/allocations_traced.rs`) — while held back
//! steps, retries, fallbacks and waits for room — rare, and slow by
//! nature — pay a few allocations: the boxed future, and a fallback's own
//! attempt and output; retried attempts reuse the cell and allocate
//! nothing more (`tests/allocations_retries.rs`). A step with retries or a
//! fallback copies its input before each attempt (the attempt consumes
//! it): for an input that allocates, that copy does.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::Poll;

use super::admit::{Next, Wait, admission, needs_admission};
use super::alarm::{Bounds, Deadlines, Joined, Own};
use super::asked::AskingAttempt;
use super::attempt::{failed, first_attempt, succeeded};
use super::compensate::{Failed, StageError};
use super::erased::{
    Cell, Ended, Which, drive, held, held_back_unserved, mark_slow, recover, step_of,
};
use super::failure::Failure;
use super::first::{Outlined, Policies, hedged_first};
use super::join::JoinTask;
use super::placement::{Inline, Placement, Spawned};
use super::stage::{ErrorAs, Stage};
use super::{Cx, Made, Step};
use crate::error::{Error, ErrorClass, StepError};
use crate::gating::{Held, LimitsCell, Place};
use crate::learning::Blocked;
use crate::model::StepMeta;

/// Runs step `S`, stage `index` of the workflow, under its policies, and
/// returns its output with what must be kept to compensate it.
///
/// # Errors
///
/// [`Error::Execution`] when the last attempt (and the fallback) failed or
/// panicked, [`Error::Timeout`] when the last attempt timed out; boxed
/// ([`Failed`]), so that what keeps the run's result (a `parallel!`'s
/// task, a fan-out's item) keeps a word for the error, not the error.
pub fn run_step<S: Step>(
    cx: Cx<'_>,
    index: usize,
    input: S::Input,
) -> impl Future<Output = Result<(S::Output, S::Undo), Failed>> + '_ {
    // The run's own future, not one more layer around it.
    <S::Policies as Policies>::run::<S, Inline, Own, Failed>(cx, index, input, ())
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
) -> impl Future<Output = Result<(S::Output, S::Undo), Failed>> + '_ {
    Cancellable::<S, _>::new(
        cx,
        <S::Policies as Policies>::run::<S, Inline, Own, Failed>(cx, index, input, ()),
    )
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
) -> impl Future<Output = Result<(S::Output, S::Undo), Failed>> + 'a {
    Cancellable::<S, _>::new(cx, run_step_as_task::<S>(cx, index, input, deadlines))
}

/// Step `S`, stage `index`, on `input`, as a task of a `parallel!` whose
/// alarm keeps `deadlines`: its run, which the task drops when it is
/// cancelled, so that the run keeps no reference to check for that; a
/// `Plain` step's keeps only its state (see `exec::task`).
#[allow(clippy::inline_always, reason = "see `Policies::task`")]
#[inline(always)]
pub fn step_task<'a, S: Step>(
    cx: Cx<'a>,
    index: usize,
    input: S::Input,
    deadlines: &'a Deadlines,
) -> impl JoinTask<'a, Output = Result<(S::Output, S::Undo), Failed>> + 'a {
    <S::Policies as Policies>::task::<S>(cx, index, input, deadlines)
}

/// The run of step `S` bounded by its `parallel!`'s alarm, inside a task
/// of that `parallel!` (see [`run_step_in_join`]).
#[allow(
    clippy::inline_always,
    reason = "the run is made where its task stores it: not made, then copied"
)]
#[inline(always)]
fn run_step_as_task<'a, S: Step>(
    cx: Cx<'a>,
    index: usize,
    input: S::Input,
    deadlines: &'a Deadlines,
) -> impl Future<Output = Result<(S::Output, S::Undo), Failed>> + 'a {
    <S::Policies as Policies>::run::<S, Inline, Joined, Failed>(cx, index, input, deadlines)
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
) -> impl Future<Output = Result<(S::Output, S::Undo), Failed>> + '_ {
    Cancellable::<S, _>::new(
        cx,
        <S::Policies as Policies>::run::<S, Spawned, Own, Failed>(cx, index, input, ()),
    )
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

impl<S: Step, T, E: StageError, F: Future<Output = Result<T, E>>> Future for Cancellable<'_, S, F> {
    type Output = Result<T, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.of.cancelling() {
            // Never reported: the cancelled task's error is dropped.
            return Poll::Ready(Err(E::of(Error::Execution {
                pattern: String::new(),
                step: S::NAME.to_owned(),
                source: StepError::msg("cancelled: another task of its `parallel!` failed"),
            })));
        }
        this.run.poll(cx)
    }
}

/// The run of a `Plain` step: its one attempt with what ends it, polled
/// where the workflow awaits it ([`PlainRun`]), not a state machine around
/// the attempt, whose states, locals and drops cost more than the attempt.
/// A step that needs checking before its attempt ([`needs_admission`]: a
/// `rate` or a `concurrency`, a memory budget, a run held back in part or
/// from the queue) is admitted first, here ([`admitting`], out of line):
/// it runs (a limited step whose start and place are free takes them,
/// and runs as a step without limits does), waits for room (at its
/// polls), or is refused.
///
/// The attempt's timeout, bounded by the workflow's deadline, is read, and
/// the admission decided, here, when the run is made: every caller polls a
/// step's run as soon as it makes it (a stage where it stands, a
/// `parallel!`'s tasks in the pass that makes them, a fan-out's item when
/// its slot frees), and a run dropped unpolled gives its place back.
#[allow(
    clippy::inline_always,
    reason = "the run is made where the workflow stores it: not made, then copied"
)]
#[inline(always)]
pub(super) fn run_plain<'a, S: Step, P: Placement, K: Bounds, E: StageError>(
    cx: Cx<'a>,
    index: usize,
    input: S::Input,
    bound: K::Arg<'a>,
) -> impl Future<Output = Result<(S::Output, S::Undo), E>> + 'a {
    // Its attempt keeps no timeout: the run asks for it at the first wait.
    let make = move |input| {
        first_attempt::<_, _, K>(cx, S::NAME, P::call::<S>(input, cx.context()), bound)
    };
    let limits = limits_of::<S>();
    // Never past the workflow's deadline: the timeout, cut to it, is
    // asked for here only if the run has one.
    let timeout = || cx.step_timeout(&S::META);
    let state = if needs_admission(cx, &S::META, limits, timeout) {
        match admitting(cx, index, &S::META, limits) {
            // A limited step whose start and place were free runs as a
            // step without limits does.
            Admitted::Go(place) => PlainState::Lone {
                first: make(input),
                _place: K::Held::<S::Held>::keep(place),
            },
            Admitted::Wait(wait) => PlainState::Waiting {
                wait,
                input: Some(input),
                make,
            },
        }
    } else {
        PlainState::Lone {
            first: make(input),
            _place: K::Held::<S::Held>::keep(Place::NONE),
        }
    };
    PlainRun {
        state,
        cx,
        index,
        step: PhantomData::<fn() -> (S, E)>,
    }
}

/// What a `Plain` step's admission decided: small, and one type for every
/// step.
pub(super) enum Admitted<'a> {
    /// Its attempt runs now, holding the place.
    Go(Place),
    /// It waits for room, or for the run's completed stages to be stored;
    /// or, refused (its gate held it back, or the workflow's deadline had
    /// passed), its wait is its error, ready: a refused run allocates its
    /// error anyway, and the run of every step keeps one state fewer.
    Wait(Wait<'a>),
}

/// The [`admission`] of step `meta` (its `limits`), stage `index`,
/// decided when its run is made, for a `Plain` step, which has no fallback
/// to serve it when held back. Out of line: one copy for every step; the
/// attempt's timeout, cut to the workflow's deadline, read here.
#[inline(never)]
pub(super) fn admitting<'a>(
    cx: Cx<'a>,
    index: usize,
    meta: &'static StepMeta,
    limits: Option<&'static LimitsCell>,
) -> Admitted<'a> {
    let timeout = cx.step_timeout(meta);
    match admission(cx, index, meta, limits, timeout) {
        Ok(Next::Go(place)) => Admitted::Go(place),
        Ok(Next::Wait(wait)) => Admitted::Wait(wait),
        Ok(Next::Held(blocked)) => {
            let error = held_back_unserved(cx, index, blocked.clone(), meta.name);
            Admitted::Wait(Box::pin(std::future::ready(Err(error))))
        }
        Err(error) => Admitted::Wait(Box::pin(std::future::ready(Err(error)))),
    }
}

pin_project_lite::pin_project! {
    /// The run of a `Plain` step (see [`run_plain`]), failing with `E`.
    struct PlainRun<'a, S, St, E> {
        #[pin]
        state: St,
        cx: Cx<'a>,
        index: usize,
        step: PhantomData<fn() -> (S, E)>,
    }
}

pin_project_lite::pin_project! {
    /// Where a `Plain` step's run is. Only its attempt is polled where the
    /// workflow awaits it; the other states are small, so that they add
    /// nothing to the size of the run's future.
    #[project = PlainProj]
    enum PlainState<F, I, M, W, H> {
        /// Its one attempt, holding its place, if any, until it ends.
        Lone {
            #[pin]
            first: F,
            _place: H,
        },
        /// Waiting for room (memory, a start under the rate, a place in
        /// the bulkhead), for the run's completed stages to be stored, or
        /// to give its refusal (see [`Admitted::Wait`]); `make` makes the
        /// attempt on `input` once it has what it waits for.
        Waiting {
            wait: W,
            input: Option<I>,
            make: M,
        },
    }
}

impl<'a, S, I, F, M, H, E> Future for PlainRun<'a, S, PlainState<F, I, M, Wait<'a>, H>, E>
where
    S: Step<Input = I>,
    H: Held,
    F: AskingAttempt<Out = S::Output>,
    M: FnOnce(I) -> F + Copy,
    E: StageError,
{
    type Output = Result<(S::Output, S::Undo), E>;

    #[allow(
        clippy::inline_always,
        reason = "a plain step's poll, where its workflow awaits it: no call per step"
    )]
    #[inline(always)]
    fn poll(self: Pin<&mut Self>, w: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (cx, index) = (*this.cx, *this.index);
        let mut state = this.state;
        if let PlainProj::Waiting { .. } = state.as_mut().project() {
            std::task::ready!(admit(state.as_mut(), w)).map_err(E::from_failed)?;
        }
        // The attempt's timeout, asked for only when it waits.
        let timeout = || cx.step_timeout(&S::META);
        match state.project() {
            PlainProj::Lone { first, .. } => {
                Poll::Ready(match std::task::ready!(first.poll_asking(w, timeout)) {
                    Ok(out) => Ok(succeeded::<S>(cx, index, out)),
                    Err(failure) => Err(E::of(failed(cx, index, 0, failure, S::NAME))),
                })
            }
            PlainProj::Waiting { .. } => unreachable!("admitted above"),
        }
    }
}

/// Polls the wait of a `Plain` step's run for room and, once it has it,
/// makes its attempt. Out of line, not in every workflow's poll.
#[inline(never)]
fn admit<F, I, M: FnOnce(I) -> F + Copy, H: Held>(
    mut state: Pin<&mut PlainState<F, I, M, Wait<'_>, H>>,
    w: &mut std::task::Context<'_>,
) -> Poll<Result<(), Failed>> {
    let (place, input, make) = match state.as_mut().project() {
        PlainProj::Lone { .. } => return Poll::Ready(Ok(())),
        PlainProj::Waiting { wait, input, make } => {
            // The attempt asks for its timeout when it waits (`Asked`).
            let place = std::task::ready!(wait.as_mut().poll(w)).map_err(Failed::new)?;
            let input = input
                .take()
                .expect("a waiting step's run keeps its input until it has room");
            (place, input, *make)
        }
    };
    state.set(PlainState::Lone {
        first: make(input),
        _place: H::keep(place),
    });
    Poll::Ready(Ok(()))
}

/// The run of a hedged step, polled through a call ([`Outlined`]): its
/// admission, its hedged first attempt, and, boxed, what may follow it.
/// Not an `async fn`: an `async fn` moves its arguments into locals of its
/// own first, so its future stores them twice; an `async move` block uses
/// what it captured in place.
#[allow(
    clippy::manual_async_fn,
    reason = "an `async fn` would store its arguments twice in its future"
)]
pub(super) fn run_hedged<'a, S: Step, P: Placement, K: Bounds, E: StageError>(
    cx: Cx<'a>,
    index: usize,
    input: S::Input,
    bound: K::Arg<'a>,
) -> impl Future<Output = Result<(S::Output, S::Undo), E>> + 'a {
    ErrorAs::<_, E>::new(Outlined::new(async move {
        // Conditions on a step's options are `const` blocks: after the
        // step's type is known, the branches they rule out are not
        // compiled at all, not only optimized away.
        // The place, if any, is held until the step is done.
        let mut _place = Place::NONE;
        // Held back, or its first attempt failed: the step goes on in a
        // boxed future; both are rare.
        let rest: Rest<'_, S> = 'rest: {
            // Never past the workflow's deadline: each attempt cuts it to
            // what is left when it first waits.
            let timeout = cx.config().timeout_of(&S::META);
            if needs_admission(cx, &S::META, limits_of::<S>(), || cx.bounded(timeout)) {
                // Bound first: a scrutinee's temporary, and so the
                // admission's whole result, would live across the wait.
                let next = admission(cx, index, &S::META, limits_of::<S>(), cx.bounded(timeout))?;
                match next {
                    Next::Go(place) => _place = place,
                    Next::Wait(wait) => _place = wait.await?,
                    Next::Held(blocked) if const { S::META.fallback.is_none() } => {
                        return Err(held_back_unserved(cx, index, blocked.clone(), S::NAME));
                    }
                    Next::Held(blocked) => {
                        let then = Then::Held(index, blocked.clone());
                        break 'rest Box::pin(rest::<S, P>(cx, input, then));
                    }
                }
            }
            if const { S::META.retry.max_retries > 0 } && cx.budgets().enabled() {
                cx.budgets().call(std::any::TypeId::of::<S>());
            }
            // A clock read only for a step with a `slow_call` threshold; a
            // copy of the input for its retries and fallback.
            let started = if const { S::META.slow_call.is_some() } {
                Some(tokio::time::Instant::now())
            } else {
                None
            };
            let spare = S::dup(&input);
            let failure = match hedged_first::<S, P, K>(cx, input, timeout, bound).await {
                Ok(out) => {
                    if const { S::META.slow_call.is_some() } {
                        mark_slow(cx, index, started, S::META.slow_call);
                    }
                    return Ok(succeeded::<S>(cx, index, out));
                }
                Err(failure) => failure,
            };
            match spare {
                // `None` for an input that cannot be copied: the step
                // cannot recover.
                Some(input)
                    if const { S::META.recovers() } && failure.class() != ErrorClass::Rejected =>
                {
                    let ended = Ended {
                        index,
                        of: step_of::<S>(),
                        timeout,
                        started,
                    };
                    break 'rest Box::pin(rest::<S, P>(cx, input, Then::Recover(ended, failure)));
                }
                _ => return Err(failed(cx, index, 0, failure, S::NAME)),
            }
        };
        rest.await
    }))
}

/// The rest of a hedged step's run, boxed: its fallback, or its retries
/// then its fallback.
type Rest<'a, S> = Pin<
    Box<dyn Future<Output = Result<(<S as Step>::Output, <S as Step>::Undo), Error>> + Send + 'a>,
>;

/// What [`rest`] does.
enum Then {
    /// Serve the step, held back, with its fallback.
    Held(usize, Blocked),
    /// Recover from a failed first attempt.
    Recover(Ended, Failure),
}

/// The rest of a hedged step held back or whose first attempt failed, on
/// `input` (in a cell: see `exec::erased`).
async fn rest<S: Step, P: Placement>(
    cx: Cx<'_>,
    input: S::Input,
    then: Then,
) -> Result<(S::Output, S::Undo), Error> {
    let mut cell = std::pin::pin!(Cell::<S, _, _, Made>::new(cx, input, P::call::<S>));
    match then {
        Then::Held(index, blocked) => held(cx, index, &S::META, blocked, cell.as_mut()).await?,
        Then::Recover(ended, failure) => recover(cx, ended, failure, cell.as_mut()).await?,
    }
    Ok(Stage::finish(cell, ()))
}

/// The run of a step with retries, a fallback or a `slow_call`: its
/// cell, and [`drive`], which is not generic over the step, on it. Its
/// first attempt is bounded by what `K` makes of `arg`.
#[allow(
    clippy::manual_async_fn,
    reason = "an `async fn` would store its arguments twice in its future"
)]
pub(super) fn run_erased<'a, S: Step, P: Placement, K: Bounds, E: StageError>(
    cx: Cx<'a>,
    index: usize,
    input: S::Input,
    arg: K::Arg<'a>,
) -> impl Future<Output = Result<(S::Output, S::Undo), E>> + 'a {
    async move {
        let mut cell = std::pin::pin!(Cell::<S, _, _, Made>::new(cx, input, P::call::<S>));
        match drive::<K>(cx, Which::step::<S>(index), cell.as_mut(), arg).await {
            Ok(()) => Ok(Stage::finish(cell, ())),
            Err(failed) => Err(E::from_failed(failed)),
        }
    }
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
pub(super) fn limits_of<S: Step>() -> Option<&'static LimitsCell> {
    if const { S::META.limited() } {
        S::limits()
    } else {
        None
    }
}
