//! A `parallel!` task that is the run of a `Plain` step: one small state,
//! polled with what every task of its `parallel!` shares.
//!
//! A task that was a `Plain` step's run (`step::run_plain` in a
//! `join::Task`) kept the run's context, its stage's index, its timeout
//! and a reference to its `parallel!`'s alarm, and flags saying whether it
//! started and finished: 92 bytes for a step on a `u64`, and the join kept
//! a reference to each task. All of it is either the same for every task of a
//! `parallel!` (the context, the alarm), fixed for the task (the index,
//! the timeout, read from the step's options), or what the task's state
//! says anyway. A [`StepTask`] keeps none of it: it is running its one
//! attempt (the step's future, its deadline on the alarm, its span's word,
//! and in the deadline's spare byte whether its gate let it start),
//! waiting for room (before its start, or after), or done — 32 bytes for
//! the same step, the step's own future and 16 bytes.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::admit::{Wait, needs_admission};
use super::alarm::Deadlines;
use super::attempt::{TaskAttempt, failed, succeeded};
use super::compensate::Failed;
use super::join::{Gate, JoinTask, TaskPoll};
use super::step::{Admitted, admitting, limits_of};
use super::{Cx, Step};
use crate::context::PatternContext;
use crate::error::StepError;
use crate::gating::{Held, Place};

pin_project_lite::pin_project! {
    /// A task of a `parallel!` that is a run of `Plain` step `S`, whose
    /// attempt `make` makes (see the module's doc). Dropped when
    /// cancelled: a step has nothing of its own to compensate until it
    /// succeeds.
    #[must_use = "futures do nothing unless polled"]
    pub struct StepTask<'a, S, I, M, F, H, O> {
        #[pin]
        state: Lone<'a, I, M, F, H, O>,
        step: PhantomData<fn() -> S>,
    }
}

pin_project_lite::pin_project! {
    /// Where a [`StepTask`] is.
    #[project = LoneProj]
    #[project_replace = LoneReplace]
    enum Lone<'a, I, M, F, H, O> {
        /// Its one attempt, holding its place, if any, until it ends;
        /// whether its gate let it start is kept in the attempt.
        Running {
            #[pin]
            attempt: TaskAttempt<F>,
            place: H,
        },
        /// Not started, and waiting for room once it is (see
        /// `step::Admitted::Wait`).
        Waiting { wait: Wait<'a>, input: I, make: M },
        /// Started, and waiting for room.
        Admitting { wait: Wait<'a>, input: I, make: M },
        /// Finished: its output with what compensates it, or its error.
        Done { out: O },
        /// Cancelled, or its result taken.
        Gone,
    }
}

/// What a task of step `S` ends with.
type Outcome<S> = Result<(<S as Step>::Output, <S as Step>::Undo), Failed>;

/// The task of step `S` whose attempt `M` makes, a future `F`.
type TaskOf<'a, S, M, F> = StepTask<'a, S, <S as Step>::Input, M, F, <S as Step>::Held, Outcome<S>>;

/// Where the task of step `S` is.
type State<'a, S, M, F> = Lone<'a, <S as Step>::Input, M, F, <S as Step>::Held, Outcome<S>>;

impl<S, I, M, F, H, O> std::fmt::Debug for StepTask<'_, S, I, M, F, H, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            Lone::Running { .. } => "running",
            Lone::Waiting { .. } => "waiting",
            Lone::Admitting { .. } => "admitting",
            Lone::Done { .. } => "done",
            Lone::Gone => "gone",
        };
        f.debug_struct("StepTask").field("state", &state).finish()
    }
}

/// The task of `Plain` step `S`, stage `index` of run `cx`, on `input`, its
/// code called by `make`. Its admission is decided here, as a step's run
/// decides it where it is made, and its attempt, if admitted, made here,
/// where the task is stored.
#[allow(clippy::inline_always, reason = "see `Policies::task`")]
#[inline(always)]
pub(super) fn step_task<'a, S, M, F>(
    cx: Cx<'a>,
    index: usize,
    input: S::Input,
    make: M,
) -> TaskOf<'a, S, M, F>
where
    S: Step,
    M: FnOnce(S::Input, &'a PatternContext) -> F + Copy,
    F: Future<Output = Result<S::Output, StepError>>,
{
    // Never past the workflow's deadline. The same admission as
    // `run_plain`'s, written twice on purpose: shared through a helper
    // (returning what it decided, or taking a closure for each outcome),
    // every plain step cost 10 to 80 instructions more (callgrind, a
    // `sequential!` of 10), as LLVM no longer made each outcome in place.
    let timeout = || cx.step_timeout(&S::META);
    let limits = limits_of::<S>();
    let state = if needs_admission(cx, &S::META, limits, timeout) {
        match admitting(cx, index, &S::META, limits) {
            Admitted::Go(place) => running::<S, _, _>(cx, input, make, place),
            Admitted::Wait(wait) => Lone::Waiting { wait, input, make },
        }
    } else {
        running::<S, _, _>(cx, input, make, Place::NONE)
    };
    StepTask {
        state,
        step: PhantomData,
    }
}

/// The attempt of step `S` on `input`, holding `place`.
#[allow(clippy::inline_always, reason = "see `Policies::task`")]
#[inline(always)]
fn running<'a, S, M, F>(cx: Cx<'a>, input: S::Input, make: M, place: Place) -> State<'a, S, M, F>
where
    S: Step,
    M: FnOnce(S::Input, &'a PatternContext) -> F + Copy,
    F: Future<Output = Result<S::Output, StepError>>,
{
    Lone::Running {
        attempt: TaskAttempt::new(cx, S::NAME, make(input, cx.context())),
        place: S::Held::keep(place),
    }
}

impl<'a, S, M, F> JoinTask<'a> for TaskOf<'a, S, M, F>
where
    S: Step,
    M: FnOnce(S::Input, &'a PatternContext) -> F + Copy,
    F: Future<Output = Result<S::Output, StepError>>,
{
    type Output = Outcome<S>;

    #[inline]
    fn poll_task(
        self: Pin<&mut Self>,
        w: &mut Context<'_>,
        gate: &mut Gate,
        cx: Cx<'a>,
        deadlines: &Deadlines,
        index: usize,
    ) -> TaskPoll {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                LoneProj::Running { mut attempt, .. } => {
                    if !attempt.started() {
                        if !gate.try_start(cx) {
                            return TaskPoll::Waiting;
                        }
                        attempt.as_mut().start();
                    }
                    let after = || cx.step_timeout(&S::META);
                    // A timeout bounded by the workflow's deadline ends in
                    // `Error::DeadlineExceeded`, which does not say it.
                    let timeout = || cx.config().timeout_of(&S::META);
                    let out = match attempt.poll_in(w, deadlines, after, timeout) {
                        Poll::Pending => return TaskPoll::Running,
                        Poll::Ready(Ok(out)) => Ok(succeeded::<S>(cx, index, out)),
                        Poll::Ready(Err(failure)) => {
                            Err(Failed::new(failed(cx, index, 0, failure, S::NAME)))
                        }
                    };
                    let poll = if out.is_ok() {
                        TaskPoll::Succeeded
                    } else {
                        TaskPoll::Failed
                    };
                    // The attempt, its span and its place end here.
                    state.set(Lone::Done { out });
                    gate.finish();
                    return poll;
                }
                LoneProj::Done { out: Ok(_) } => return TaskPoll::Succeeded,
                LoneProj::Done { out: Err(_) } | LoneProj::Gone => return TaskPoll::Failed,
                LoneProj::Waiting { .. } | LoneProj::Admitting { .. } => {
                    if let Some(poll) = room::<S, _, _>(state.as_mut(), w, gate, cx) {
                        return poll;
                    }
                }
            }
        }
    }

    fn cancel(self: Pin<&mut Self>) {
        let mut state = self.project().state;
        if !matches!(state.as_mut().project(), LoneProj::Done { .. }) {
            state.set(Lone::Gone);
        }
    }

    fn poll_cancelled(self: Pin<&mut Self>, _: &mut Context<'_>, _: Cx<'_>) -> bool {
        // Dropped when cancelled: nothing to drive to its end.
        false
    }

    fn take(self: Pin<&mut Self>) -> Option<Self::Output> {
        let mut state = self.project().state;
        if !matches!(state.as_mut().project(), LoneProj::Done { .. }) {
            return None;
        }
        match state.project_replace(Lone::Gone) {
            LoneReplace::Done { out } => Some(out),
            _ => None,
        }
    }
}

/// A task waiting for room: started if its gate lets it, then its wait
/// polled. `None` once its attempt runs (started); else what its poll
/// found: held back by its gate, still waiting, or refused (the task is
/// done, with its error). Out of line: rare, and not in every
/// `parallel!`'s poll.
#[inline(never)]
fn room<'a, S, M, F>(
    mut state: Pin<&mut State<'a, S, M, F>>,
    w: &mut Context<'_>,
    gate: &mut Gate,
    cx: Cx<'a>,
) -> Option<TaskPoll>
where
    S: Step,
    M: FnOnce(S::Input, &'a PatternContext) -> F + Copy,
    F: Future<Output = Result<S::Output, StepError>>,
{
    if let LoneProj::Waiting { .. } = state.as_mut().project() {
        if !gate.try_start(cx) {
            return Some(TaskPoll::Waiting);
        }
        if let LoneReplace::Waiting { wait, input, make } =
            state.as_mut().project_replace(Lone::Gone)
        {
            state.set(Lone::Admitting { wait, input, make });
        }
    }
    let LoneProj::Admitting { wait, .. } = state.as_mut().project() else {
        return None;
    };
    match wait.as_mut().poll(w) {
        Poll::Pending => Some(TaskPoll::Running),
        Poll::Ready(Ok(place)) => {
            if let LoneReplace::Admitting { input, make, .. } =
                state.as_mut().project_replace(Lone::Gone)
            {
                state.set(running::<S, _, _>(cx, input, make, place));
                if let LoneProj::Running { attempt, .. } = state.project() {
                    attempt.start();
                }
            }
            None
        }
        Poll::Ready(Err(error)) => {
            state.set(Lone::Done {
                out: Err(Failed::new(error)),
            });
            gate.finish();
            Some(TaskPoll::Failed)
        }
    }
}
