//! [`Ndf`], the runtime handle: running workflows, and what it learned.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::inner::Inner;
use super::polled::{Traced, Untraced, workflow_span};
use crate::config::Config;
use crate::context::PatternContext;
use crate::error::Error;
use crate::exec::{Run, Workflow, WorkflowConsts};
use crate::learning::{GateQuery, RunRecord};
use crate::model::{
    BreakerState, Clock, Confidence, PatternStats, RunEnd, RunLog, StepMeta, StepRecord,
};
use crate::security::missing_permissions;
use crate::telemetry::{self, Report};

/// The ndf runtime: runs workflows under their policies and learns from
/// every run.
///
/// Cheap to clone (an `Arc`), `Send + Sync`; every method takes `&self`.
///
/// ```
/// use ndf::prelude::*;
///
/// #[pattern]
/// async fn double(x: u32) -> u32 { x * 2 }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), ndf::Error> {
/// let ndf = Ndf::builder().build()?;
/// let flow = sequential!(name = "math.double_twice"; double => double);
/// assert_eq!(ndf.run(&flow, 3, &PatternContext::new("math")).await?, 12);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Ndf {
    pub(super) inner: Arc<Inner>,
}

impl std::fmt::Debug for Ndf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ndf")
            .field("config", &self.inner.env.config)
            .finish_non_exhaustive()
    }
}

impl Ndf {
    /// The configuration in force.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.inner.env.config
    }

    /// Runs `workflow` on `input` in `ctx`.
    ///
    /// Permissions of every step are checked before any step runs.
    ///
    /// # Errors
    ///
    /// [`Error::PermissionDenied`] when the context lacks a permission (nothing
    /// ran); otherwise the first stage error, after retries, fallback and
    /// compensation of the completed stages.
    pub fn run<W: Workflow>(
        &self,
        workflow: &W,
        input: W::Input,
        ctx: &PatternContext,
    ) -> impl Future<Output = Result<W::Output, Error>> + Send {
        self.run_from::<W, _, false>(workflow, input, ctx, NotDurable)
    }

    /// [`Ndf::run`], resuming from and storing to `checkpoints` when the
    /// run comes from the queue.
    ///
    /// Not an `async fn`: an `async fn` moves its arguments into locals of
    /// its own first, so its future stores them twice; an `async move`
    /// block uses what it captured in place.
    #[allow(
        clippy::manual_async_fn,
        reason = "an `async fn` would store its arguments twice in its future"
    )]
    pub(crate) fn run_from<'d, W: Workflow, C: Resumes<'d>, const DURABLE: bool>(
        &self,
        workflow: &W,
        input: W::Input,
        ctx: &PatternContext,
        checkpoints: C,
    ) -> impl Future<Output = Result<W::Output, Error>> {
        async move {
            // A constant: a workflow whose steps need no permission checks
            // nothing, and compiles nothing for it.
            if const { !needs_none(W::PERMISSIONS) } {
                check_permissions(W::NAME, W::PERMISSIONS, ctx)?;
            }
            // What is not generic over the workflow is in `start` and `end`,
            // compiled once for every workflow.
            let mut started = self.start(W::NAME, W::STEPS, W::METAS, ctx)?;
            // No local for the runtime's state across this wait: the run's
            // future would keep it (a word) to its end.
            if let Some(wait) = self
                .inner
                .env
                .admission
                .admit_run(W::SHAPE.degradation_chains > 0)
            {
                wait.await?;
                started.unwaited = false;
            }
            let log = <W::Log as RunLog>::empty();
            // `started` moved whole into the run: none of it is kept beside
            // the run across the workflow's awaits.
            // A constant for a run of `Ndf::run`; a durable run's, with its
            // checkpoints, kept in its future.
            let consts = checkpoints.consts::<W>();
            // Counted in flight until the run's future is done or dropped.
            let run = started.into_run(&self.inner.env, ctx, consts, log.records());
            let result = if tracing::level_enabled!(tracing::Level::INFO) {
                // A `ndf.workflow` span, attached to the run's future. The two
                // branches' futures share the run future's storage (one is live
                // at a time): the span costs its own few words, no allocation.
                let span = workflow_span(W::NAME, ctx.domain());
                let steps = workflow.execute_as::<DURABLE>(run.cx(), input);
                Traced::new(steps, span, &run).await
            } else {
                Untraced {
                    steps: workflow.execute_as::<DURABLE>(run.cx(), input),
                    run: &run,
                }
                .await
            };
            let error = result.as_ref().err();
            let end = RunEnd::of(error);
            // Read back from the run, not kept beside it across its awaits.
            let (entry, at) = run.started();
            self.end(entry, at, W::NAME, W::METAS, ctx, end, error, log.records());
            result
        }
    }

    /// What starts a run of workflow `workflow` (its `steps` and `metas`)
    /// in `ctx`, once its permissions are checked and before its
    /// admission: the run counted in flight, the gates read.
    ///
    /// # Errors
    ///
    /// [`Error::Draining`], or the workflow's gate refused the run
    /// (learned as refused).
    fn start(
        &self,
        workflow: &'static str,
        steps: &'static [&'static str],
        metas: &'static [Option<&'static StepMeta>],
        ctx: &PatternContext,
    ) -> Result<Started<'_>, Error> {
        let Some(in_flight) = self.inner.env.life.enter() else {
            return Err(Error::Draining {
                pattern: workflow.to_owned(),
            });
        };
        let at = tokio::time::Instant::now();
        let query = GateQuery {
            workflow,
            steps,
            metas,
            domain: ctx.domain(),
        };
        let gates = self
            .inner
            .env
            .stats
            .gates(&query, &self.inner.env.config, at);
        if let Some(blocked) = gates.workflow {
            let error = blocked.into_error(workflow);
            self.refused(gates.entry, workflow, metas, ctx.domain(), &error);
            return Err(error);
        }
        Ok(Started {
            entry: gates.entry,
            blocked: crate::exec::held_back(gates.steps),
            at,
            unwaited: true,
            in_flight,
        })
    }

    /// What ends a run of `workflow` (its `metas`), started `at`, which
    /// ended as `end` (with `error`, if any) and recorded `log`: the run
    /// learned.
    #[allow(clippy::too_many_arguments, reason = "the run's parts, not generic")]
    fn end(
        &self,
        entry: usize,
        at: tokio::time::Instant,
        workflow: &'static str,
        metas: &'static [Option<&'static StepMeta>],
        ctx: &PatternContext,
        end: RunEnd,
        error: Option<&Error>,
        log: &[StepRecord],
    ) {
        let now = tokio::time::Instant::now();
        if let (RunEnd::Refused, Some(error)) = (end, error) {
            tracing::info!(pattern = workflow, domain = ctx.domain(), %error, "run refused by a step's gate");
        }
        let record = RunRecord {
            entry,
            workflow,
            metas,
            end,
            latency: now - at,
            log,
        };
        self.learn_run(&record, now);
    }

    /// Queues or learns one ended run (see [`StatsTable::record_run`](crate::learning::StatsTable::record_run)).
    #[inline]
    fn learn_run(&self, record: &RunRecord<'_>, now: tokio::time::Instant) {
        if self.inner.background_allowed && !self.inner.background.load(Ordering::Relaxed) {
            // Built outside tokio, or the tokio runtime its background
            // tasks ran on shut down: started on this one, if any.
            super::tasks::start(&self.inner);
        }
        let inner = &*self.inner;
        let (queued, learned) = inner.env.stats.record_run(record, &inner.env.config, now);
        inner.learned(&learned);
        let batch = inner.env.config.learning_batch;
        // Queued with a batch of 1: another thread held the statistics. The
        // next run to find them free, on any thread, learns it before its
        // own; trying again here would only fight that thread for the lock.
        let batch_full = batch > 1 && queued.waiting >= batch;
        let applied = batch_full && inner.learn(false);
        if !applied && (queued.first || batch_full) {
            // Left queued: the learner applies it within `learning_interval`.
            inner.learning.wake();
        }
    }

    /// A run its workflow's gate refused: an event in a `ndf.workflow`
    /// span, and the refusal learned (held back, the `refused` outcome of
    /// `ndf_runs_total`, the success-rate alert).
    #[cold]
    fn refused(
        &self,
        entry: usize,
        workflow: &'static str,
        metas: &'static [Option<&'static StepMeta>],
        domain: &str,
        error: &Error,
    ) {
        let span = tracing::info_span!(
            "ndf.workflow",
            pattern = workflow,
            domain,
            outcome = RunEnd::Refused.as_str()
        );
        span.in_scope(|| tracing::info!(%error, "run refused by the workflow's gate"));
        let now = tokio::time::Instant::now();
        self.learn_run(
            &RunRecord {
                entry,
                workflow,
                metas,
                end: RunEnd::Refused,
                latency: Duration::ZERO,
                log: &[],
            },
            now,
        );
    }

    /// A report of what ran in the last `window`: per pattern and domain,
    /// executions, success rate and latency percentiles of the workflows'
    /// runs in the window, totals of retries, fallbacks, degradations and
    /// held-back runs, confidence with its recent trend, and recommendations.
    /// Serializable with serde. Context attributes never appear in it.
    ///
    /// Every run of the window counts: exactly when the workflow's last
    /// 1 024 runs hold the whole window, otherwise by minute (windows up to
    /// an hour) or by hour (up to a day), the oldest period counted whole,
    /// with percentiles from latency histograms (within 19 %).
    #[must_use]
    pub fn report(&self, window: Duration) -> Report {
        self.inner.learn(true);
        let rows = self
            .inner
            .env
            .stats
            .report_rows(window, self.inner.env.config.prior);
        telemetry::build(rows, window, &self.inner.env.config)
    }

    /// What the dashboard shows: the day's runs, success rate and response
    /// time, the first 100 rows (a row per pattern and domain, those that
    /// need attention first), CPU and memory use, the alerts raised,
    /// response-time series and usage of the busiest workflows, and a
    /// confidence histogram. Serializable with serde; with the `dashboard`
    /// feature, `Ndf::serve_dashboard` serves it with a page that draws it.
    /// Context attributes never appear in it.
    #[must_use]
    pub fn dashboard(&self) -> telemetry::Dashboard {
        self.dashboard_with(&telemetry::DashboardQuery::default())
    }

    /// [`Ndf::dashboard`] with the rows `query` asks for (a page, a
    /// domain). The statistics are read a chunk of entries at a time, so
    /// that runs go on ending while a dashboard of thousands of domains is
    /// built.
    #[must_use]
    pub fn dashboard_with(&self, query: &telemetry::DashboardQuery) -> telemetry::Dashboard {
        let inner = &self.inner;
        inner.learn(true);
        let clock = Clock::now();
        let prior = inner.env.config.prior;
        let since = clock.unix_ms_ago(telemetry::DAY);
        let sources = telemetry::Sources {
            report: self.report(telemetry::DAY),
            series: inner.timeline.read(&inner.env.stats, prior, since),
            confidences: inner.env.stats.confidences(prior),
            alerts: inner.board.active(),
            usage: inner.env.admission.sample(),
        };
        telemetry::build_dashboard(sources, &inner.env.config, &clock, query)
    }

    /// The alerts firing now: raised and not resolved since, by pattern
    /// and domain (the runs waiting to be learned are learned first).
    #[must_use]
    pub fn alerts(&self) -> Vec<telemetry::Alert> {
        self.inner.learn(true);
        self.inner.board.active()
    }

    /// The confidence ndf has in `pattern` (a workflow or step name) in
    /// `domain`; `None` before its first outcome there.
    #[must_use]
    pub fn confidence(&self, pattern: &str, domain: &str) -> Option<Confidence> {
        self.inner.learn(true);
        self.inner
            .env
            .stats
            .confidence(pattern, domain, self.inner.env.config.prior)
    }

    /// The state of the gate of `pattern` (a workflow or step name) in
    /// `domain`: `closed` (served), `open` (held back until its break is
    /// over) or `half_open` (probes decide); `None` before its first run.
    #[must_use]
    pub fn breaker(&self, pattern: &str, domain: &str) -> Option<BreakerState> {
        self.inner.learn(true);
        self.inner.env.stats.breaker(pattern, domain)
    }

    /// Forgets what the gate learned of `pattern` (a workflow or step name)
    /// in `domain`: its confidence evidence and its breaker start afresh
    /// (closed), as after a fix. Counters (executions, failures, …) are
    /// kept. Returns whether there was anything to reset.
    #[allow(clippy::must_use_candidate, reason = "called for its effect")]
    pub fn reset(&self, pattern: &str, domain: &str) -> bool {
        self.inner.learn(true);
        self.inner.env.stats.reset(pattern, domain)
    }

    /// What has been learned of `pattern` (a workflow or step name) in `domain`.
    #[must_use]
    pub fn stats(&self, pattern: &str, domain: &str) -> Option<PatternStats> {
        self.inner.learn(true);
        self.inner.env.stats.get(pattern, domain)
    }

    /// Writes what was learned to the store, blocking the calling thread on
    /// its I/O: from async code, prefer [`Ndf::shutdown`]. Learning data is
    /// also saved in the background every `flush_interval` and after
    /// `flush_every` runs.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store cannot be written.
    pub fn flush(&self) -> Result<(), Error> {
        self.inner.save_here()
    }

    /// Writes what was learned to the store on tokio's blocking pool (never
    /// on an async worker) and lets the store tidy up (`SQLite` folds its
    /// write-ahead log into the file); call it before the process exits.
    /// When it returns `Ok`, the data is in the store: that is what
    /// "acknowledged" means. The runtime stays usable, but saves only when
    /// asked ([`Ndf::flush`], `shutdown` again): no background save runs
    /// after it.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store cannot be written.
    pub async fn shutdown(&self) -> Result<(), Error> {
        // No background save after this one: the process is about to go.
        self.inner.env.life.closed.store(true, Ordering::Release);
        super::persist::save(&self.inner, true).await
    }

    /// Stops the runtime gracefully, as a service does on SIGTERM: from
    /// now on [`Ndf::run`] starts no new run (it returns
    /// [`Error::Draining`], so a caller can send the work elsewhere); the
    /// runs in flight may finish for up to `grace`; then what was learned
    /// is saved as [`Ndf::shutdown`] saves it. Returns how many runs were
    /// still in flight when the grace ran out (0: every one finished and
    /// was saved).
    ///
    /// `examples/axum_service.rs` drains on SIGTERM beside axum's graceful
    /// shutdown:
    ///
    /// ```no_run
    /// # use ndf::prelude::*;
    /// # async fn serve(ndf: Ndf, sigterm: impl std::future::Future<Output = ()>) -> Result<(), ndf::Error> {
    /// sigterm.await; // tokio::signal::unix::signal(SignalKind::terminate())?.recv()
    /// let unfinished = ndf.drain(std::time::Duration::from_secs(10)).await?;
    /// if unfinished > 0 {
    ///     eprintln!("{unfinished} runs did not finish in time");
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the store cannot be written.
    pub async fn drain(&self, grace: Duration) -> Result<usize, Error> {
        let deadline = tokio::time::Instant::now() + grace;
        let unfinished = self.inner.env.life.drain(deadline).await;
        self.shutdown().await?;
        Ok(unfinished)
    }
}

/// A run past its start: its statistics entry, the steps their gates hold
/// back, when it started, and its place among the runs in flight.
struct Started<'a> {
    entry: usize,
    blocked: crate::exec::HeldBack,
    at: tokio::time::Instant,
    /// Whether the run has not waited since `at` (for its admission).
    unwaited: bool,
    in_flight: crate::gating::InFlight<'a>,
}

impl<'a> Started<'a> {
    /// The run of `pattern` in `ctx` this start began, recording its steps
    /// in `log`, with the workflow's `deadline`; and its place among the
    /// runs in flight. Inline in optimized builds only: in a debug build
    /// the copy compiled here serves every workflow's crate.
    #[cfg_attr(not(debug_assertions), inline)]
    fn into_run(
        self,
        env: &'a crate::exec::Env,
        ctx: &'a PatternContext,
        workflow: &'a WorkflowConsts<'a>,
        log: &'a [StepRecord],
    ) -> Run<'a> {
        Run::new(
            env,
            ctx,
            workflow,
            self.entry,
            log,
            self.blocked,
            (self.at, self.unwaited),
            self.in_flight,
        )
    }
}

/// Where a run resumes from and stores its stages, if it is durable, and
/// its workflow's constants: a type, so that a run of [`Ndf::run`] keeps
/// no word for the checkpoints it does not have, and reaches its
/// workflow's constants through a constant.
pub(crate) trait Resumes<'d>: Send + Sync {
    /// The constants of a run of `W`, with its checkpoints if any.
    fn consts<'k, W: Workflow>(&'k self) -> &'k WorkflowConsts<'k>
    where
        'd: 'k;
}

/// No checkpoints: a run of [`Ndf::run`].
#[derive(Clone, Copy)]
pub(crate) struct NotDurable;

impl<'d> Resumes<'d> for NotDurable {
    #[inline]
    fn consts<'k, W: Workflow>(&'k self) -> &'k WorkflowConsts<'k>
    where
        'd: 'k,
    {
        const { &WorkflowConsts::of::<W>(None) }
    }
}

/// A durable run's constants, with its checkpoints, made by the queue's
/// worker (see [`WorkflowConsts::of`]): kept in the run's future.
impl<'d> Resumes<'d> for WorkflowConsts<'d> {
    #[inline]
    fn consts<'k, W: Workflow>(&'k self) -> &'k WorkflowConsts<'k>
    where
        'd: 'k,
    {
        self
    }
}

/// Whether no step of a workflow needs a permission (`permissions`, by
/// step).
const fn needs_none(permissions: &[&[&str]]) -> bool {
    let mut i = 0;
    while i < permissions.len() {
        if !permissions[i].is_empty() {
            return false;
        }
        i += 1;
    }
    true
}

/// The rule: a run starts only when the context grants every permission of
/// every step of `workflow` (`permissions`, by step).
fn check_permissions(
    workflow: &'static str,
    permissions: &'static [&'static [&'static str]],
    ctx: &PatternContext,
) -> Result<(), Error> {
    let required = permissions.iter().flat_map(|p| p.iter().copied());
    let missing = missing_permissions(required, ctx.granted_permissions());
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::PermissionDenied {
            pattern: workflow.to_owned(),
            missing,
        })
    }
}
