//! What an attempt keeps of its timeout: the timeout itself, or nothing,
//! when the step's run asks for it at the attempt's first wait
//! ([`Asked`]) and cuts it to what is left of the workflow's deadline then.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use super::Cx;
use super::failure::Failure;

/// What an attempt keeps of its timeout: the timeout itself (a
/// `Duration`), or nothing ([`Asked`]).
pub(crate) trait KeptTimeout: Copy {
    /// The attempt's timeout: the one kept, or else what `ask` says.
    fn or_ask(self, ask: impl FnOnce() -> Duration) -> Duration;
}

impl KeptTimeout for Duration {
    #[inline]
    fn or_ask(self, _: impl FnOnce() -> Duration) -> Duration {
        self
    }
}

/// The timeout of a step's attempt, not kept: the step's run asks for it
/// when the attempt first waits, and again if it expires, as a task's
/// attempt does (16 bytes fewer in every plain step a workflow awaits,
/// and nothing more done by a step that never waits). Asked when the
/// attempt first waits, it is cut to what is left of the workflow's
/// deadline then, not when the attempt was made. A compensation's
/// attempt keeps its timeout: a failed run compensates past its deadline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked;

impl KeptTimeout for Asked {
    #[inline]
    fn or_ask(self, ask: impl FnOnce() -> Duration) -> Duration {
        ask()
    }
}

/// An attempt that keeps no timeout ([`Asked`]): polled with `ask`, which
/// gives it; where a `Plain` step's run is polled, for its one attempt,
/// and through [`Asking`] for the others.
pub(crate) trait AskingAttempt {
    /// What the attempt returns.
    type Out;
    /// Polls the attempt; `ask` gives its timeout when it first waits.
    fn poll_asking(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        ask: impl Fn() -> Duration + Copy,
    ) -> Poll<Result<Self::Out, Failure>>;
}

pin_project_lite::pin_project! {
    /// An attempt that keeps no timeout ([`Asked`]), as a future: with
    /// `ask`, which gives it.
    pub(crate) struct Asking<A, G> {
        #[pin]
        attempt: A,
        ask: G,
    }
}

impl<A: AskingAttempt, G: Fn() -> Duration + Copy> Future for Asking<A, G> {
    type Output = Result<A::Out, Failure>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        this.attempt.poll_asking(cx, *this.ask)
    }
}

/// `attempt`, of a step of run `cx` whose timeout is `timeout`, as a
/// future: the timeout is cut to what is left of the workflow's deadline
/// when the attempt first waits (and again if it expires), not when it
/// was made.
#[inline]
pub(crate) fn asking<A: AskingAttempt>(
    attempt: A,
    cx: Cx<'_>,
    timeout: Duration,
) -> Asking<A, impl Fn() -> Duration + Copy + '_> {
    Asking {
        attempt,
        ask: move || cx.bounded(timeout),
    }
}
