//! A step attempt's deadline: [`Deadline`] wraps its future.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::time::Sleep;

pin_project_lite::pin_project! {
    /// `fut` with a deadline of `after`: yields `None` when it passes.
    ///
    /// The first poll happens before any timer exists: a step that completes
    /// without waiting never reads the clock or touches the timer wheel,
    /// which keeps the happy path of ready steps as cheap as a plain
    /// `.await`. The deadline counts from the step's first wait (synchronous
    /// work before it could not have been interrupted anyway). Its timer is
    /// kept in the future itself: a step that waits allocates nothing.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct Deadline<F> {
        #[pin]
        fut: F,
        after: Duration,
        #[pin]
        timer: Timer,
    }
}

pin_project_lite::pin_project! {
    /// The timer of a [`Deadline`], armed at the first wait.
    #[derive(Debug)]
    #[project = TimerProj]
    enum Timer {
        Idle,
        Armed { #[pin] sleep: Sleep },
    }
}

impl<F> Deadline<F> {
    pub(crate) fn new(fut: F, after: Duration) -> Self {
        Self {
            fut,
            after,
            timer: Timer::Idle,
        }
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Some(out));
        }
        if let TimerProj::Idle = this.timer.as_mut().project() {
            this.timer.set(Timer::Armed {
                sleep: tokio::time::sleep(*this.after),
            });
        }
        match this.timer.project() {
            TimerProj::Armed { sleep } => sleep.poll(cx).map(|()| None),
            TimerProj::Idle => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ready_futures_pass_through() {
        assert_eq!(
            Deadline::new(async { 7 }, Duration::from_millis(1)).await,
            Some(7)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_futures_time_out() {
        let started = tokio::time::Instant::now();
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(Deadline::new(slow, Duration::from_secs(1)).await, None);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_futures_that_finish_in_time_complete() {
        let quick = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            3
        };
        assert_eq!(Deadline::new(quick, Duration::from_secs(1)).await, Some(3));
    }
}
