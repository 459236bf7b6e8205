use std::future::{Future, poll_fn};
use std::pin::pin;
use std::task::Poll;
use std::time::Duration;

/// Runs `fut` with a deadline of `after`, or returns `None` when it passes.
///
/// The first poll happens before any timer exists: a step that completes
/// without waiting never reads the clock or touches the timer wheel, which
/// keeps the happy path of ready steps as cheap as a plain `.await`. The
/// deadline therefore counts from the step's first wait; synchronous work
/// before it could not have been interrupted anyway.
pub(crate) async fn lazy_timeout<F: Future>(fut: F, after: Duration) -> Option<F::Output> {
    let mut fut = pin!(fut);
    if let Poll::Ready(out) = poll_fn(|cx| Poll::Ready(fut.as_mut().poll(cx))).await {
        return Some(out);
    }
    tokio::time::timeout(after, fut).await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn ready_futures_pass_through() {
        assert_eq!(
            lazy_timeout(async { 7 }, Duration::from_millis(1)).await,
            Some(7)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn slow_futures_time_out() {
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(lazy_timeout(slow, Duration::from_secs(1)).await, None);
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_futures_that_finish_in_time_complete() {
        let quick = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            3
        };
        assert_eq!(lazy_timeout(quick, Duration::from_secs(1)).await, Some(3));
    }
}
