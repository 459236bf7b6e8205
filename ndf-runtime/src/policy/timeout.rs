//! The timer of a step's attempt (see `exec::attempt`).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::{Instant, Sleep};

pin_project_lite::pin_project! {
    /// The timer of a step's attempt, armed at its first wait: a step that
    /// completes without waiting never reads the clock or touches the timer
    /// wheel, which keeps the happy path of ready steps as cheap as a plain
    /// `.await`. The timeout counts from the first wait (synchronous work
    /// before it could not have been interrupted anyway), and the timer is
    /// kept in the attempt's future: a step that waits allocates nothing.
    #[derive(Debug)]
    #[project = TimerProj]
    #[doc(hidden)]
    pub enum Timer {
        Idle,
        Armed { #[pin] sleep: Sleep },
    }
}

impl Timer {
    /// Called when the future it bounds is pending: arms the timer for
    /// `after` (asked for then) at the first call, and is ready once that
    /// has passed.
    pub(crate) fn poll_expired(
        mut self: Pin<&mut Self>,
        after: impl FnOnce() -> Duration,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        let at = match self.as_mut().project() {
            TimerProj::Armed { sleep } => sleep.deadline(),
            TimerProj::Idle => deadline_from(Instant::now(), after()),
        };
        self.poll_until(at, cx)
    }

    /// Arms the timer for `at` (made at the first call, moved after) and
    /// polls it: ready once `at` has passed.
    pub(crate) fn poll_until(
        mut self: Pin<&mut Self>,
        at: Instant,
        cx: &mut Context<'_>,
    ) -> Poll<()> {
        match self.as_mut().project() {
            TimerProj::Armed { sleep } => {
                if sleep.deadline() != at {
                    sleep.reset(at);
                }
            }
            TimerProj::Idle => self.set(Timer::Armed {
                sleep: tokio::time::sleep_until(at),
            }),
        }
        match self.project() {
            TimerProj::Armed { sleep } => sleep.poll(cx),
            TimerProj::Idle => Poll::Pending,
        }
    }
}

/// `after` past `from`; about 30 years past it when that is more than an
/// `Instant` holds (as `tokio::time::sleep` does).
pub(crate) fn deadline_from(from: Instant, after: Duration) -> Instant {
    from.checked_add(after)
        .unwrap_or_else(|| from + Duration::from_hours(24 * 365 * 30))
}
