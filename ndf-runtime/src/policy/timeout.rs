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
    /// work before it could not have been interrupted anyway), and its timer
    /// is boxed: a step that waits pays one allocation, and every step's
    /// future stays a few words larger than the user's own.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct Deadline<F> {
        #[pin]
        fut: F,
        after: Duration,
        timer: Option<Pin<Box<Sleep>>>,
    }
}

impl<F> Deadline<F> {
    pub(crate) fn new(fut: F, after: Duration) -> Self {
        Self {
            fut,
            after,
            timer: None,
        }
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Option<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(out) = this.fut.poll(cx) {
            return Poll::Ready(Some(out));
        }
        let after = *this.after;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(after)));
        timer.as_mut().poll(cx).map(|()| None)
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
