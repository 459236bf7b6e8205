//! The run path: what generated code calls while a workflow runs. A run
//! sees the runtime through a narrow [`Env`] (configuration, admission,
//! statistics) and its own [`Run`] state, both reached through the methods
//! of [`Cx`]; it never reaches the runtime that started it.

mod admit;
mod alarm;
mod asked;
mod attempt;
mod compensate;
mod durable;
mod erased;
mod failure;
mod fan;
mod first;
mod flow;
mod join;
mod placement;
mod results;
mod stage;
mod step;
mod task;
mod traits;

use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU8, AtomicU16, Ordering};

pub use alarm::{Alarm, Deadlines};
pub use compensate::{Failed, NoUndo, StageError, UndoSlot, Undos};
pub(crate) use durable::Durable;
pub use durable::{AllCheckpointable, Checkpointed, CheckpointedStep, restored, stage_done};
#[cfg(feature = "fleet")]
pub(crate) use durable::{Checkpoints, Decoded, Encoded};
pub use erased::Resilient;
pub use erased::shared_instances;
pub use fan::{FanOut, Indexed, Keep, Strict, Tolerant, fan_out};
pub use first::{Hedged, Outlined, Plain, Policies};
pub use flow::{
    PhaseRule, admit_level, alternative_failed, check_phase, insufficient, record_level,
};
pub use join::{Gate, JoinTask, Task, TaskPoll, lost_result, tolerate};
pub use placement::Placement;
pub use results::TaskResults;
pub use stage::{Direct, Stage};
pub use step::{run_step, run_step_in_join, run_step_in_task, run_step_spawned, step_task};
pub use traits::{Finish, Made, Step, Workflow, Wrapped};

use crate::config::Config;
use crate::context::PatternContext;
use crate::gating::{Admission, InFlight, Lifecycle, RetryBudgets};
use crate::learning::{Blocked, StatsTable};
use crate::model::{StepMeta, StepRecord};

/// What the run path reads of the runtime.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) config: Config,
    pub(crate) admission: Admission,
    pub(crate) stats: StatsTable,
    pub(crate) budgets: RetryBudgets,
    /// Runs in flight, and whether the runtime drains or was shut down.
    pub(crate) life: Lifecycle,
}

/// The runtime's handle, passed down a running workflow. Opaque to users.
///
/// One pointer to the run's state, which lives in [`crate::Ndf::run`]'s
/// future: every layer of a workflow's state machine that keeps it stores a
/// word, not five.
#[derive(Clone, Copy)]
pub struct Cx<'a>(&'a Run<'a>);

/// The state of one run, shared by its steps. Kept small: it lives in
/// every run's future.
pub(crate) struct Run<'a> {
    env: &'a Env,
    ctx: &'a PatternContext,
    /// The workflow's name and deadline, constants of its type, and the
    /// run's checkpoints, if any: one word, to them, rather than a copy
    /// (32 bytes less in every run's future).
    workflow: &'a WorkflowConsts<'a>,
    /// The id of the run's statistics entry: 4 bytes, beside the run's
    /// other small fields in one word (see [`Run::new`]).
    entry: u32,
    log: &'a [StepRecord],
    /// Records held back by their gates in this run: usually none, and
    /// then no box. Dropped by the run's own drop, out of line when there
    /// is a box (see `Drop for Run`).
    blocked: ManuallyDrop<HeldBack>,
    /// When the run started.
    at: tokio::time::Instant,
    /// How far the run is in its polls ([`UNPOLLED`], 1, [`WAITED`]):
    /// while it is in its first, it has not waited since `at`, and `at` is
    /// as good a reading of the clock as a new one, short of the work of
    /// that poll (see [`Cx::first_poll_at`]).
    polls: AtomicU8,
    /// How deep this run is inside polls of cancelled `parallel!` tasks
    /// (0: not cancelled). Per run, never per thread: other runs polled
    /// meanwhile (a compensation calling `Ndf::run`) are not cancelled.
    cancelling: AtomicU16,
    /// What a step's start has to check of the run, beyond the step's
    /// own options: [`WATCHED`] (a step held back, or checkpoints to
    /// store), [`DEADLINE`] (the workflow's deadline, which may have
    /// passed). Most runs have neither: one load and a test at every
    /// step's start, and no timeout read or clock read there.
    checks: u8,
}

/// What a run keeps of its workflow's constants, and its checkpoints if
/// it is durable, reached through one word: for a run of `Ndf::run`, made
/// once per workflow type (a constant, in read-only memory); for a durable
/// run, kept in its future beside the run.
pub(crate) struct WorkflowConsts<'a> {
    /// The workflow's pattern name.
    pub(crate) name: &'static str,
    /// The workflow's `deadline`, from the run's start.
    pub(crate) deadline: Option<std::time::Duration>,
    /// A run from the queue: where it resumes and stores its stages.
    pub(crate) durable: Option<&'a Durable<'a>>,
}

impl<'a> WorkflowConsts<'a> {
    /// The constants of a run of `W`, which resumes from and stores to
    /// `durable`, if any: a constant for a run of `Ndf::run`.
    pub(crate) const fn of<W: Workflow>(durable: Option<&'a Durable<'a>>) -> Self {
        Self {
            name: W::NAME,
            deadline: W::DEADLINE,
            durable,
        }
    }
}

impl std::fmt::Debug for WorkflowConsts<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkflowConsts")
            .field("name", &self.name)
            .field("deadline", &self.deadline)
            .field("durable", &self.durable.is_some())
            .finish()
    }
}

/// `Run::polls` of a run not polled yet. 1: in its first poll.
const UNPOLLED: u8 = 0;
/// `Run::polls` of a run polled again after it waited, or that waited for
/// its admission before its first poll.
const WAITED: u8 = 2;

/// `Run::checks` of a run whose steps' admissions have something of it to
/// check: a gate holds back a step of it, or it is a run from the queue.
const WATCHED: u8 = 1;
/// `Run::checks` of a run with a deadline: a step's timeout is cut to
/// what is left of it, and the step refused once it has passed.
pub(crate) const DEADLINE: u8 = 2;

/// The records a run's gates hold back, with why: boxed, as a run rarely
/// has any, so that a run's state keeps one word for them.
pub(crate) type HeldBack = Option<Box<Vec<(usize, Blocked)>>>;

/// The records `steps` a run's gates hold back, boxed if there are any:
/// the box is made out of line, so that a run's start, where no step is
/// held back, stays as small as before.
#[inline]
pub(crate) fn held_back(steps: Vec<(usize, Blocked)>) -> HeldBack {
    if steps.is_empty() {
        // Empty: nothing was allocated for it.
        None
    } else {
        Some(boxed_held_back(steps))
    }
}

#[cold]
#[inline(never)]
#[allow(
    clippy::box_collection,
    reason = "one word in every run's state, where a `Vec` takes three"
)]
fn boxed_held_back(steps: Vec<(usize, Blocked)>) -> Box<Vec<(usize, Blocked)>> {
    Box::new(steps)
}

/// A run's end, counted when it is dropped, however it ended (cancelled
/// included): the run counts itself, with no guard beside it in its
/// future (a word). Its drop is small, so that it is inlined where the
/// run ends: the records held back, rare, are dropped out of line.
impl Drop for Run<'_> {
    #[inline]
    fn drop(&mut self) {
        if self.blocked.is_some() {
            drop_held_back(self.blocked.take());
        }
        self.env.life.ended();
    }
}

/// Drops the records a run's gates held back.
#[cold]
#[inline(never)]
fn drop_held_back(blocked: HeldBack) {
    drop(blocked);
}

impl<'a> Run<'a> {
    /// The run of `pattern` in `ctx`, started `at`, learned into statistics
    /// entry `entry`, recording its steps in `log`, with the records its
    /// gates hold back and the workflow's deadline; counted in flight
    /// (`in_flight`) until it is dropped.
    ///
    /// This and the other helpers a workflow's run calls are `#[inline]`
    /// in optimized builds only: in a debug build, where inlining does
    /// nothing, the copy compiled here serves every workflow's crate,
    /// rather than being compiled there again, in a unit of its own.
    #[cfg_attr(not(debug_assertions), inline)]
    #[allow(clippy::too_many_arguments, reason = "a run's parts")]
    pub(crate) fn new(
        env: &'a Env,
        ctx: &'a PatternContext,
        workflow: &'a WorkflowConsts<'a>,
        entry: usize,
        log: &'a [StepRecord],
        blocked: HeldBack,
        (at, unwaited): (tokio::time::Instant, bool),
        in_flight: InFlight<'a>,
    ) -> Self {
        in_flight.counted_by_run();
        Self {
            env,
            ctx,
            workflow,
            // Entries are a kilobyte or more each: no process holds 2^32.
            entry: u32::try_from(entry).expect("fewer than 2^32 statistics entries"),
            log,
            checks: if blocked.is_some() || workflow.durable.is_some() {
                WATCHED
            } else {
                0
            } | if workflow.deadline.is_some() {
                DEADLINE
            } else {
                0
            },
            blocked: ManuallyDrop::new(blocked),
            at,
            polls: AtomicU8::new(if unwaited { UNPOLLED } else { WAITED }),
            cancelling: AtomicU16::new(0),
        }
    }

    /// When the workflow's deadline passes, if it has one.
    #[allow(
        clippy::inline_always,
        reason = "a step's start: inlined in the poll of a long workflow too"
    )]
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn deadline_at(&self) -> Option<tokio::time::Instant> {
        self.workflow.deadline.map(|d| self.at + d)
    }

    /// The id of the run's statistics entry, and when the run started.
    #[cfg_attr(not(debug_assertions), inline)]
    pub(crate) fn started(&self) -> (usize, tokio::time::Instant) {
        (self.entry as usize, self.at)
    }

    /// The run's future is polled: its first poll, or a later one, which
    /// comes only after it returned `Pending`, so that `at` is no longer a
    /// reading of the clock for what it does next. Called at the start of
    /// every poll by what wraps the workflow's future.
    #[cfg_attr(not(debug_assertions), inline)]
    pub(crate) fn polled(&self) {
        let polls = self.polls.load(Ordering::Relaxed);
        if polls < WAITED {
            self.polls.store(polls + 1, Ordering::Relaxed);
        }
    }

    /// The run's step records, by step index.
    pub(crate) fn log(&self) -> &'a [StepRecord] {
        self.log
    }

    /// The handle generated code passes down.
    #[cfg_attr(not(debug_assertions), inline)]
    pub(crate) fn cx(&'a self) -> Cx<'a> {
        Cx(self)
    }
}

impl std::fmt::Debug for Cx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cx")
            .field("pattern", &self.0.workflow.name)
            .field("ctx", self.0.ctx)
            .finish_non_exhaustive()
    }
}

impl<'a> Cx<'a> {
    /// The context of the run.
    #[must_use]
    #[allow(
        clippy::inline_always,
        reason = "a step's start: inlined in the poll of a long workflow too"
    )]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub fn context(&self) -> &'a PatternContext {
        self.0.ctx
    }

    /// The workflow's pattern name.
    #[inline]
    pub(crate) fn pattern(self) -> &'static str {
        self.0.workflow.name
    }

    #[allow(
        clippy::inline_always,
        reason = "a step's start: inlined in the poll of a long workflow too"
    )]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn config(self) -> &'a Config {
        &self.0.env.config
    }

    #[inline]
    pub(crate) fn admission(self) -> &'a Admission {
        &self.0.env.admission
    }

    #[inline]
    pub(crate) fn stats(self) -> &'a StatsTable {
        &self.0.env.stats
    }

    #[inline]
    pub(crate) fn budgets(self) -> &'a RetryBudgets {
        &self.0.env.budgets
    }

    /// The id of the run's statistics entry.
    #[inline]
    pub(crate) fn entry(self) -> usize {
        self.0.entry as usize
    }

    /// What step record `index` holds.
    #[inline]
    pub(crate) fn record(self, index: usize) -> Option<&'a StepRecord> {
        self.0.log.get(index)
    }

    /// The records of `range`.
    #[inline]
    pub(crate) fn records(self, range: std::ops::Range<usize>) -> &'a [StepRecord] {
        self.0.log.get(range).unwrap_or_default()
    }

    /// What a step's start has to check of the run ([`WATCHED`],
    /// [`DEADLINE`]; 0 for most runs).
    #[allow(
        clippy::inline_always,
        reason = "a step's start: inlined in the poll of a long workflow too"
    )]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn checks(self) -> u8 {
        self.0.checks
    }

    /// Why record `index` is held back in this run, if it is.
    #[inline]
    pub(crate) fn blocked(self, index: usize) -> Option<&'a Blocked> {
        self.0
            .blocked
            .as_deref()?
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| b)
    }

    /// `timeout`, cut to what is left before the workflow's deadline.
    #[allow(
        clippy::inline_always,
        reason = "a step's start: inlined in the poll of a long workflow too"
    )]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn bounded(self, timeout: std::time::Duration) -> std::time::Duration {
        match self.0.deadline_at() {
            Some(at) => timeout.min(at.saturating_duration_since(tokio::time::Instant::now())),
            None => timeout,
        }
    }

    /// The timeout of an attempt of step `meta`, cut to what is left of
    /// the workflow's deadline, if it has one.
    #[allow(
        clippy::inline_always,
        reason = "a step's start: inlined in the poll of a long workflow too"
    )]
    #[cfg_attr(not(debug_assertions), inline(always))]
    pub(crate) fn step_timeout(self, meta: &StepMeta) -> std::time::Duration {
        self.bounded(self.config().timeout_of(meta))
    }

    /// Whether the workflow's deadline passes within `wait` from now.
    #[inline]
    pub(crate) fn past_deadline_after(self, wait: std::time::Duration) -> bool {
        self.0
            .deadline_at()
            .is_some_and(|at| tokio::time::Instant::now() + wait >= at)
    }

    /// The workflow's deadline, if it has passed.
    #[inline]
    pub(crate) fn deadline_passed(self) -> Option<std::time::Duration> {
        self.0
            .workflow
            .deadline
            .filter(|&d| tokio::time::Instant::now() >= self.0.at + d)
    }

    /// When the run started, while it has not yet waited for anything: a
    /// reading of tokio's clock that a step admitted in the run's first
    /// poll uses rather than reading the clock again (about 22 ns, the
    /// most of what a `rate` costs). It is behind the clock by the work
    /// the run did since, in that one poll: on paused time, where the
    /// clock moves only while the runtime waits, not at all.
    #[inline]
    pub(crate) fn first_poll_at(self) -> Option<tokio::time::Instant> {
        (self.0.polls.load(Ordering::Relaxed) < WAITED).then_some(self.0.at)
    }

    /// Whether a cancelled `parallel!` task of this run is being polled to
    /// its end.
    #[inline]
    pub(crate) fn cancelling(self) -> bool {
        self.0.cancelling.load(Ordering::Relaxed) > 0
    }

    /// Polls `poll` as the cancelled task it is: every step of this run it
    /// reaches stops at once with an error (nothing recorded for it), so
    /// that the workflows around those steps fail and compensate what they
    /// completed; compensation itself runs normally.
    pub(crate) fn as_cancelled<R>(self, poll: impl FnOnce() -> R) -> R {
        struct Leave<'a>(&'a AtomicU16);
        impl Drop for Leave<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::Relaxed);
            }
        }
        self.0.cancelling.fetch_add(1, Ordering::Relaxed);
        let _leave = Leave(&self.0.cancelling);
        poll()
    }
}
