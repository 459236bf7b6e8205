//! The pieces `parallel!` expands to: a slot per task and a gate bounding how
//! many run at once. The generated code polls the slots in one `poll_fn`, so
//! a group of k tasks is one state machine: no spawn, no allocation per task,
//! and no switch to a different algorithm as k grows.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use super::Cx;
use super::alarm::Deadlines;
use super::compensate::StageError;
use crate::error::{Error, StepError};

/// What polling a task slot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskPoll {
    /// Not started: the gate holds it back.
    Waiting,
    /// Started and not finished.
    Running,
    /// Finished with `Ok` (now or earlier).
    Succeeded,
    /// Finished with `Err` (now or earlier).
    Failed,
}

pin_project_lite::pin_project! {
    /// A task's future, then its result, then nothing once taken or
    /// dropped. futures' `MaybeDone`, with its poll inlined where the
    /// tasks are polled: a call, and a copy of the result, per task.
    #[project = SlotProj]
    #[project_replace = SlotReplace]
    enum Slot<F: Future> {
        Running { #[pin] fut: F },
        Done { out: F::Output },
        Gone,
    }
}

impl<F: Future> Slot<F> {
    /// Polls the future, if it runs: ready once it has finished (now or
    /// before), its result kept.
    #[inline]
    fn poll_done(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if let SlotProj::Running { fut } = self.as_mut().project() {
            let out = std::task::ready!(fut.poll(cx));
            self.set(Slot::Done { out });
        }
        Poll::Ready(())
    }

    #[inline]
    fn output_mut(self: Pin<&mut Self>) -> Option<&mut F::Output> {
        match self.project() {
            SlotProj::Done { out } => Some(out),
            SlotProj::Running { .. } | SlotProj::Gone => None,
        }
    }

    #[inline]
    fn take_output(mut self: Pin<&mut Self>) -> Option<F::Output> {
        if !matches!(self.as_mut().project(), SlotProj::Done { .. }) {
            return None;
        }
        match self.project_replace(Slot::Gone) {
            SlotReplace::Done { out } => Some(out),
            SlotReplace::Running { .. } | SlotReplace::Gone => None,
        }
    }
}

pin_project_lite::pin_project! {
    /// One task of a `parallel!`: its future, whether it has started, and
    /// its result once finished.
    #[must_use = "futures do nothing unless polled"]
    pub struct Task<F: Future> {
        #[pin]
        fut: Slot<F>,
        started: bool,
        finished: bool,
        // Cancelled while running: polled to its end as cancelled.
        cancelling: bool,
        // A step's run: dropped when cancelled, not polled to its end.
        step: bool,
    }
}

impl<F: Future> std::fmt::Debug for Task<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("started", &self.started)
            .field("finished", &self.finished)
            .field("cancelling", &self.cancelling)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl<T, E: StageError, F: Future<Output = Result<T, E>>> Task<F> {
    /// A task that has not started: a nested workflow, which, cancelled
    /// while it runs, is driven to its end (it compensates what it did).
    pub fn new(fut: F) -> Self {
        Self {
            fut: Slot::Running { fut },
            started: false,
            finished: false,
            cancelling: false,
            step: false,
        }
    }

    /// A task that has not started: a step's run, which, cancelled while
    /// it runs, is dropped (it has nothing of its own to compensate until
    /// it succeeds).
    pub fn step(fut: F) -> Self {
        Self {
            step: true,
            ..Self::new(fut)
        }
    }
}

/// A task of a `parallel!`. What every task of one `parallel!` shares —
/// the run, the alarm's deadlines, its stage's index — comes with each
/// poll rather than being kept in each task.
#[doc(hidden)]
pub trait JoinTask<'a> {
    /// The task's result.
    type Output;

    /// Polls the task, starting it first if `gate` lets it; the task is
    /// stage `index` of run `run`, bounded by its `parallel!`'s alarm's
    /// `deadlines`.
    fn poll_task(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        gate: &mut Gate,
        run: Cx<'a>,
        deadlines: &Deadlines,
        index: usize,
    ) -> TaskPoll;

    /// Cancels the task if it has not finished: one that has not started,
    /// or a step's run, is dropped; a workflow that runs is then driven to
    /// its end by [`JoinTask::poll_cancelled`], its steps stopping at once,
    /// so that the workflows inside it compensate what they completed.
    fn cancel(self: Pin<&mut Self>);

    /// Polls a cancelled task towards its end; `true` while it has not
    /// ended. Its error, if it ends in one, is dropped (the workflows inside
    /// compensated themselves); a success is kept, to be compensated like
    /// any completed task's.
    fn poll_cancelled(self: Pin<&mut Self>, cx: &mut Context<'_>, run: Cx<'_>) -> bool;

    /// The task's result, once; `None` if it did not finish.
    fn take(self: Pin<&mut Self>) -> Option<Self::Output>;
}

impl<'a, T, E: StageError, F: Future<Output = Result<T, E>>> JoinTask<'a> for Task<F> {
    type Output = Result<T, E>;

    #[inline]
    fn poll_task(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        gate: &mut Gate,
        run: Cx<'a>,
        _: &Deadlines,
        _: usize,
    ) -> TaskPoll {
        let mut this = self.project();
        if !*this.started {
            if !gate.try_start(run) {
                return TaskPoll::Waiting;
            }
            *this.started = true;
        }
        if !*this.finished {
            if this.fut.as_mut().poll_done(cx).is_pending() {
                return TaskPoll::Running;
            }
            *this.finished = true;
            gate.finish();
        }
        match this.fut.as_mut().output_mut() {
            Some(Ok(_)) => TaskPoll::Succeeded,
            // A cancelled task (`Gone`) counts as failed.
            Some(Err(_)) | None => TaskPoll::Failed,
        }
    }

    fn take(self: Pin<&mut Self>) -> Option<Result<T, E>> {
        self.project().fut.take_output()
    }

    fn cancel(self: Pin<&mut Self>) {
        let mut this = self.project();
        if *this.finished {
            return;
        }
        if *this.started && !*this.step {
            *this.cancelling = true;
        } else {
            this.fut.set(Slot::Gone);
            *this.finished = true;
        }
    }

    fn poll_cancelled(self: Pin<&mut Self>, cx: &mut Context<'_>, run: Cx<'_>) -> bool {
        let mut this = self.project();
        if !*this.cancelling || *this.finished {
            return false;
        }
        if run
            .as_cancelled(|| this.fut.as_mut().poll_done(cx))
            .is_pending()
        {
            return true;
        }
        *this.finished = true;
        if matches!(this.fut.as_mut().output_mut(), Some(Err(_))) {
            this.fut.set(Slot::Gone);
        }
        false
    }
}

/// Bounds how many tasks of one `parallel!` run at once, and holds new ones
/// back while the resource probe reads above the threshold.
#[derive(Debug)]
pub struct Gate {
    max: usize,
    threshold: Option<f64>,
    in_flight: usize,
    /// Set when a task was held back for resources in this pass.
    constrained: Option<(&'static str, f64)>,
    since: Option<Instant>,
    recheck: Option<Pin<Box<Sleep>>>,
}

/// How often held-back tasks look at the probe again.
const RECHECK: Duration = Duration::from_millis(50);

impl Gate {
    /// At most `max` tasks in flight; none started while CPU or memory use
    /// is above `threshold`.
    #[must_use]
    pub fn new(max: usize, threshold: Option<f64>) -> Self {
        Self {
            max: max.max(1),
            threshold,
            in_flight: 0,
            constrained: None,
            since: None,
            recheck: None,
        }
    }

    /// Whether a task may start now. Inlined where each task is polled:
    /// a call per task otherwise (this crate's code, the tasks' in the
    /// user's).
    #[inline]
    pub(super) fn try_start(&mut self, run: Cx<'_>) -> bool {
        if self.in_flight >= self.max {
            return false;
        }
        if let Some(limit) = self.threshold
            && let Some(over) = run.admission().sample().over(limit)
        {
            self.constrained = Some(over);
            return false;
        }
        self.in_flight += 1;
        true
    }

    #[inline]
    pub(super) fn finish(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Called after each pass over the tasks, `waiting` when some task was
    /// held back. Returns whether to pass again at once: a task finished in
    /// this pass and made room for one held back before it. While tasks are
    /// held back for resources, re-polls after a short delay; past the
    /// configured `resource_wait`, fails.
    ///
    /// # Errors
    ///
    /// [`Error::ResourceExhausted`] naming the resource, its reading and the
    /// threshold.
    pub fn end_pass(
        &mut self,
        cx: &mut Context<'_>,
        run: Cx<'_>,
        waiting: bool,
    ) -> Result<bool, Error> {
        let Some((resource, usage)) = self.constrained.take() else {
            self.since = None;
            return Ok(waiting && self.in_flight < self.max);
        };
        let now = Instant::now();
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) >= run.admission().limits().resource_wait {
            return Err(Error::ResourceExhausted {
                resource: resource.to_owned(),
                usage,
                limit: self.threshold.unwrap_or(1.0),
                setting: "resource_threshold (of the `parallel!`)",
            });
        }
        let timer = self
            .recheck
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(RECHECK)));
        if timer.as_mut().poll(cx).is_ready() {
            timer.as_mut().reset(Instant::now() + RECHECK);
            cx.waker().wake_by_ref();
        }
        Ok(false)
    }
}

/// A task of a tolerant `parallel!` (`min_success`): its result as the tuple
/// element, and what to keep to compensate it.
pub fn tolerate<O, U, E: StageError>(
    result: Option<Result<(O, U), E>>,
) -> (Result<O, StepError>, Option<U>) {
    match result {
        Some(Ok((out, undo))) => (Ok(out), Some(undo)),
        Some(Err(error)) => (Err(StepError::new(error.into_error())), None),
        None => (Err(StepError::msg("the task was cancelled")), None),
    }
}

/// The error of a `parallel!` whose tasks' results went missing; the
/// generated code cannot reach it, but it returns an error, not a panic.
#[must_use]
pub fn lost_result(run: Cx<'_>) -> Error {
    Error::Execution {
        pattern: run.pattern().to_owned(),
        step: "parallel!".to_owned(),
        source: StepError::msg("a task's result was lost"),
    }
}
