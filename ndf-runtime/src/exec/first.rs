//! How a step runs, chosen per step at compile time (`Step::Policies`,
//! from the step's options), and the first attempt of a hedged step.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures::future::Either;

use super::alarm::{Bounds, Deadlines, Joined, Own};
use super::attempt::{attempt_of, step_attempt};
use super::compensate::{Failed, StageError};
use super::failure::Failure;
use super::join::{JoinTask, Task};
use super::placement::{Inline, Placement};
use super::stage::{Direct, Stage};
use super::step::{run_hedged, run_plain};
use super::task::step_task;
use super::{Cx, Step};
use crate::error::ErrorClass;

/// How a step runs, chosen by `#[pattern]` as [`Step::Policies`] from its
/// options: a `Plain` step's run is generic over the step and inlined
/// where its workflow awaits it; a `Resilient` step's (retries, a fallback,
/// a `slow_call`) is mostly shared by every step, its types erased
/// (`exec::erased`); a hedged step's first attempt gets company when slow.
#[doc(hidden)]
pub trait Policies: 'static {
    /// The run of step `S` (of which `P` places the code), stage
    /// `index`, on `input`; its first attempt bounded by the bound `K`
    /// makes of `arg`; failing with `E` (the error boxed, for a task of a
    /// `parallel!`, whose slot then keeps a word for it, not the error).
    fn run<'a, S: Step, P: Placement, K: Bounds, E: StageError>(
        cx: Cx<'a>,
        index: usize,
        input: S::Input,
        arg: K::Arg<'a>,
    ) -> impl Future<Output = Result<(S::Output, S::Undo), E>> + 'a;

    /// The cell of step `S` for a stage its workflow awaits where it
    /// stands: a local of the workflow's future (see `exec::stage`).
    fn cell<S: Step>(cx: Cx<'_>) -> impl Stage<'_, Step = S>;

    /// Step `S`, stage `index`, on `input`, as a task of a `parallel!`
    /// whose alarm keeps `deadlines`: its run, dropped if the task is
    /// cancelled; a `Plain` step's keeps only its state (see `exec::task`).
    #[allow(
        clippy::inline_always,
        reason = "the task is made where its `parallel!` stores it: not made, then copied"
    )]
    #[inline(always)]
    fn task<'a, S: Step>(
        cx: Cx<'a>,
        index: usize,
        input: S::Input,
        deadlines: &'a Deadlines,
    ) -> impl JoinTask<'a, Output = Result<(S::Output, S::Undo), Failed>> + 'a {
        Task::step(Self::run::<S, Inline, Joined, Failed>(
            cx, index, input, deadlines,
        ))
    }
}

/// No hedge, and nothing after the attempt: no retries, fallback or
/// `slow_call`.
#[doc(hidden)]
#[derive(Debug)]
pub struct Plain;

/// Hedged attempts, and any other policy.
#[doc(hidden)]
#[derive(Debug)]
pub struct Hedged;

pin_project_lite::pin_project! {
    /// A run polled in a function of its own rather than inlined into its
    /// workflow's poll. The cost is a call per poll.
    ///
    /// A hedged step's run is polled so: inlined, every such step's code
    /// made its workflows' polls so large that optimizing them took most
    /// of a release build (7.4 s against 4.9 s for the 50-step benchmark
    /// crate, when its steps with retries ran so).
    ///
    /// So is every step awaited in place in a workflow of more than 12
    /// steps (the generated code wraps them; `ndf-macros` says why 12).
    /// Inlined, the steps of a `sequential!` of 100 made its poll too
    /// large for the processor's instruction cache, and for the compiler
    /// to inline what each step calls: each step cost about 170
    /// instructions and 13 cache misses, against 92 and none in a
    /// sequence of 10. Polled in a call, each costs about 95 and 7,
    /// whatever the length of the sequence; a short sequence keeps its
    /// steps inlined, where they cost less. The run is dropped here when
    /// it ends, its drop inlined in this poll: the workflow's poll then
    /// drops the ended stage with a check rather than a call to the run's
    /// drop glue.
    ///
    /// The run is made where the workflow's poll stores it, so that poll
    /// still keeps about 390 bytes of code a stage (the step's start, its
    /// admission and span paths). Made here at the first poll instead,
    /// from the stage's arguments, a stage kept a third of that and the
    /// simulated instruction-cache misses of a 100-step run fell from 709
    /// to 82; but the run, made on the stack and copied into place, cost
    /// a third more instructions (about 134 a step, against 96), and the
    /// 100-step run took about 16 % longer: here, the instructions that
    /// making the run in place saves outweigh the misses its code costs.
    #[doc(hidden)]
    #[derive(Debug)]
    pub struct Outlined<F> {
        #[pin]
        run: Option<F>,
    }
}

impl<F> Outlined<F> {
    #[doc(hidden)]
    #[inline]
    pub const fn new(run: F) -> Self {
        Self { run: Some(run) }
    }
}

impl<F: Future> Future for Outlined<F> {
    type Output = F::Output;

    #[inline(never)]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let mut run = self.project().run;
        let poll = run
            .as_mut()
            .as_pin_mut()
            .expect("an outlined run polled after it ended")
            .poll(cx);
        if poll.is_ready() {
            run.set(None);
        }
        poll
    }
}

/// `Plain` and hedged steps run in runs generic over them (`step`'s
/// `run_plain` and `run_hedged`), in a task and awaited in place alike
/// (with an empty cell).
macro_rules! generic_run {
    ($q:ty, $run:ident $(, $task:item)?) => {
        impl Policies for $q {
            $($task)?

            // The run is made where its task stores it: not made, then
            // copied (a call and a copy per task of a `parallel!`).
            #[allow(
                clippy::inline_always,
                reason = "the run is made where its task stores it: not made, then copied"
            )]
            #[inline(always)]
            fn run<'a, S: Step, P: Placement, K: Bounds, E: StageError>(
                cx: Cx<'a>,
                index: usize,
                input: S::Input,
                arg: K::Arg<'a>,
            ) -> impl Future<Output = Result<(S::Output, S::Undo), E>> + 'a {
                $run::<S, P, K, E>(cx, index, input, arg)
            }

            #[inline]
            fn cell<S: Step>(_cx: Cx<'_>) -> impl Stage<'_, Step = S> {
                Direct::<$q, S>::new()
            }
        }

        impl<'a, S: Step> Stage<'a> for Direct<$q, S> {
            type Step = S;
            type Done = (S::Output, S::Undo);

            #[allow(
                clippy::inline_always,
                reason = "the run is made where the workflow stores it: not made, then copied"
            )]
            #[inline(always)]
            fn go<'p>(
                self: Pin<&'p mut Self>,
                cx: Cx<'a>,
                index: usize,
                input: S::Input,
            ) -> impl Future<Output = Result<(S::Output, S::Undo), Failed>> + Send + 'p
            where
                'a: 'p,
            {
                $run::<S, Inline, Own, Failed>(cx, index, input, ())
            }

            #[inline]
            fn finish(self: Pin<&mut Self>, done: (S::Output, S::Undo)) -> (S::Output, S::Undo) {
                done
            }
        }
    };
}

generic_run!(
    Plain,
    run_plain,
    // Its task keeps only its state (see `exec::task`).
    #[allow(clippy::inline_always, reason = "see `Policies::task`")]
    #[inline(always)]
    fn task<'a, S: Step>(
        cx: Cx<'a>,
        index: usize,
        input: S::Input,
        _: &'a Deadlines,
    ) -> impl JoinTask<'a, Output = Result<(S::Output, S::Undo), Failed>> + 'a {
        step_task::<S, _, _>(cx, index, input, Inline::call::<S>)
    }
);
generic_run!(Hedged, run_hedged);

/// The first attempt of hedged step `S` (of which `P` places the code)
/// on `input`, bounded by `timeout` (kept by the bound `K` makes of
/// `arg`).
pub(super) fn hedged_first<'a, S: Step, P: Placement, K: Bounds>(
    cx: Cx<'a>,
    input: S::Input,
    timeout: Duration,
    arg: K::Arg<'a>,
) -> impl Future<Output = Result<S::Output, Failure>> + 'a {
    // Hedged: slow attempts get company; a boxed path, as retries are.
    // Its attempts have timers of their own, and its further attempts
    // copy their inputs from a copy of its own (the run keeps another
    // for retries and the fallback).
    let hedge = S::META.hedge.expect("`Hedged` is chosen for hedged steps");
    match S::dup(&input) {
        Some(spare) => Either::Left(Box::pin(hedged::<S, P>(cx, input, spare, timeout, hedge))),
        None => Either::Right(attempt_of::<_, _, K>(
            cx,
            S::NAME,
            1,
            P::call::<S>(input, cx.context()),
            timeout,
            arg,
        )),
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
    input: S::Input,
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
            && let Some(copy) = S::dup(&input)
        {
            started += 1;
            flights.push(step_attempt::<S, _>(
                cx,
                started,
                P::call::<S>(copy, cx.context()),
                timeout,
            ));
        } else if flights.is_empty() {
            return Err(last.unwrap_or(Failure::TimedOut(cx.bounded(timeout))));
        }
    }
}
