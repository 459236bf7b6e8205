//! A run's future as `Ndf::run_from` awaits it: in its `ndf.workflow`
//! span ([`Traced`]) or not ([`Untraced`]), telling the run of each poll
//! before polling it (see `Run::polled`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::error::Error;
use crate::exec::Run;
use crate::model::{RunEnd, StepRecord};

pin_project_lite::pin_project! {
    /// A run's future in its `ndf.workflow` span (one span, not a second
    /// handle of it beside the future), entered while the run is polled
    /// and while it is dropped, and closed with how the run ended: what
    /// `tracing`'s `Instrumented` does, in a handful of functions per
    /// workflow rather than some twenty (in a debug build, each is
    /// compiled, with its debuginfo, in the workflow's crate).
    pub(super) struct Traced<'l, F> {
        // Declared before the span: dropped first, inside it (see the
        // `PinnedDrop`).
        #[pin]
        run: F,
        span: LeftOnDrop,
        // The run, whose step records `close_span` reads: a word, where
        // the records themselves take two.
        run_state: &'l Run<'l>,
    }

    impl<F> PinnedDrop for Traced<'_, F> {
        fn drop(this: Pin<&mut Self>) {
            // A run dropped before its end (cancelled) drops its steps'
            // futures inside its span, as it polled them: entered here,
            // before the fields are dropped, and left by the span's
            // field, dropped after the run's future. No `Option` around
            // the future to drop it here: its tag was a word of every
            // traced run.
            this.project().span.enter_for_drop();
        }
    }
}

/// A run's span, entered by [`Traced`]'s drop and left when it is itself
/// dropped, after the run's future.
struct LeftOnDrop(tracing::Span);

impl LeftOnDrop {
    fn enter_for_drop(&self) {
        self.0.with_subscriber(|(id, dispatch)| dispatch.enter(id));
    }
}

impl Drop for LeftOnDrop {
    fn drop(&mut self) {
        self.0.with_subscriber(|(id, dispatch)| dispatch.exit(id));
    }
}

impl<'l, F> Traced<'l, F> {
    pub(super) fn new(run: F, span: tracing::Span, run_state: &'l Run<'l>) -> Self {
        Self {
            run,
            span: LeftOnDrop(span),
            run_state,
        }
    }
}

impl<T, F: Future<Output = Result<T, Error>>> Future for Traced<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        this.run_state.polled();
        let span = &this.span.0;
        let _entered = span.enter();
        let result = std::task::ready!(this.run.poll(cx));
        close_span(
            span,
            RunEnd::of(result.as_ref().err()),
            this.run_state.log(),
        );
        Poll::Ready(result)
    }
}

pin_project_lite::pin_project! {
    /// A run's future, untraced, that tells the run of each poll before
    /// polling it (see `Run::polled`), as [`Traced`] does: told before, so
    /// that the poll's result is returned as it comes, not copied out past
    /// a check of it.
    pub(super) struct Untraced<'l, F> {
        #[pin]
        pub(super) steps: F,
        pub(super) run: &'l Run<'l>,
    }
}

impl<F: Future> Future for Untraced<'_, F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        this.run.polled();
        this.steps.poll(cx)
    }
}

/// The `ndf.workflow` span of a run of `workflow` in `domain`.
pub(super) fn workflow_span(workflow: &'static str, domain: &str) -> tracing::Span {
    tracing::info_span!(
        "ndf.workflow",
        pattern = workflow,
        domain,
        outcome = tracing::field::Empty,
        degradation_level = tracing::field::Empty,
    )
}

/// Records how the run of `span` ended, and the deepest degradation
/// level its `log` served, if any.
fn close_span(span: &tracing::Span, end: RunEnd, log: &[StepRecord]) {
    span.record("outcome", end.as_str());
    if let Some(level) = log.iter().filter_map(StepRecord::level_served).max() {
        span.record("degradation_level", level);
    }
}
