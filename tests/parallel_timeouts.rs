//! The tasks of a `parallel!` share one alarm for their steps' timeouts (a
//! timer per task made every task 80 bytes larger: `tests/future_sizes.rs`):
//! each attempt still times out after its own timeout, counted from its own
//! first wait, and an early deadline cuts no other task short.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ndf::prelude::*;
use tokio::time::Instant;

/// When each attempt ended, by name, in seconds since the test began (a
/// timed-out attempt's future is dropped when it times out).
#[derive(Clone)]
struct Clock {
    start: Instant,
    ended: Arc<Mutex<Vec<(String, u64)>>>,
}

impl Clock {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            ended: Arc::default(),
        }
    }

    /// Sleeps `secs`, noting when the attempt named `name` ended, however
    /// it ends.
    async fn work(&self, name: &str, secs: u64) {
        struct Ends<'a>(&'a Clock, &'a str);
        impl Drop for Ends<'_> {
            fn drop(&mut self) {
                let at = self.0.start.elapsed();
                self.0
                    .ended
                    .lock()
                    .unwrap()
                    .push((self.1.to_owned(), at.as_secs()));
            }
        }
        let _ends = Ends(self, name);
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }

    fn ended(&self) -> Vec<(String, u64)> {
        let mut ended = self.ended.lock().unwrap().clone();
        ended.sort();
        ended
    }
}

#[pattern(timeout = "1s")]
async fn hangs_1s(clock: Clock) -> u64 {
    clock.work("hangs_1s", 3600).await;
    1
}

#[pattern(timeout = "4s")]
async fn hangs_4s(clock: Clock) -> u64 {
    clock.work("hangs_4s", 3600).await;
    4
}

#[pattern(timeout = "2s")]
async fn hangs_2s(clock: Clock) -> u64 {
    clock.work("hangs_2s", 3600).await;
    2
}

#[pattern(timeout = "5s")]
async fn takes_3s(clock: Clock) -> u64 {
    clock.work("takes_3s", 3).await;
    3
}

/// `run`, failing the test if it has not ended after a minute (of the
/// paused clock): a step that never times out must not hang the suite.
async fn bounded<T>(run: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_mins(1), run)
        .await
        .expect("the run ended: every step has a timeout")
}

fn timed_out_after(result: &Result<u64, StepError>) -> Option<Duration> {
    match result.as_ref().err()?.downcast_ref::<ndf::Error>()? {
        ndf::Error::Timeout { after, .. } => Some(*after),
        _ => None,
    }
}

#[tokio::test(start_paused = true)]
async fn each_task_times_out_after_its_own_timeout() {
    let ndf = common::ndf();
    let clock = Clock::new();
    let flow = parallel!(min_success = 1; hangs_2s, takes_3s, hangs_1s, hangs_4s);
    let (two, three, one, four) =
        bounded(ndf.run(&flow, clock.clone(), &PatternContext::new("ops")))
            .await
            .unwrap();
    assert_eq!(
        [&two, &one, &four].map(timed_out_after),
        [2, 1, 4].map(|s| Some(Duration::from_secs(s))),
        "{two:?} {one:?} {four:?}"
    );
    assert_eq!(three.unwrap(), 3);
    // Each at its own deadline: the alarm rang at 1 s, then again at 2 s
    // and 4 s, and the task that finished at 3 s was not cut short.
    assert_eq!(
        clock.ended(),
        [
            ("hangs_1s", 1),
            ("hangs_2s", 2),
            ("hangs_4s", 4),
            ("takes_3s", 3)
        ]
        .map(|(name, at)| (name.to_owned(), at))
    );
    assert_eq!(clock.start.elapsed(), Duration::from_secs(4));
}

#[pattern(timeout = "10s")]
async fn passes_after_1s(clock: Clock) -> Clock {
    clock.work("passes_after_1s", 1).await;
    clock
}

#[tokio::test(start_paused = true)]
async fn a_deadline_counts_from_the_steps_own_first_wait_inside_a_task() {
    let ndf = common::ndf();
    let clock = Clock::new();
    // `hangs_2s` starts waiting when `passes_after_1s` has finished, at
    // 1 s: it times out at 3 s, not at 2 s.
    let flow = parallel!(min_success = 1; sequential!(passes_after_1s => hangs_2s), takes_3s);
    let (first, second) = bounded(ndf.run(&flow, clock.clone(), &PatternContext::new("ops")))
        .await
        .unwrap();
    assert_eq!(
        timed_out_after(&first),
        Some(Duration::from_secs(2)),
        "{first:?}"
    );
    assert_eq!(second.unwrap(), 3);
    assert_eq!(
        clock.ended(),
        [("hangs_2s", 3), ("passes_after_1s", 1), ("takes_3s", 3)]
            .map(|(name, at)| (name.to_owned(), at))
    );
}

/// A runtime whose steps' timeout, unless they set one, is `timeout`.
fn ndf_timing_out_after(timeout: Duration) -> Ndf {
    let mut config = Config::default();
    config.step_timeout = timeout;
    Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap()
}

#[pattern]
async fn hangs(clock: Clock) -> u64 {
    clock.work("hangs", 3600).await;
    0
}

#[pattern]
async fn sleeps_3s(clock: Clock) -> u64 {
    clock.work("sleeps_3s", 3).await;
    3
}

#[tokio::test(start_paused = true)]
async fn a_task_times_out_at_the_whole_millisecond_as_a_timer_of_its_own_does() {
    // 1.5 ms: tokio's timers fire at whole milliseconds, and a task's
    // deadline on its `parallel!`'s alarm is kept in them, rounded up.
    let timeout = Duration::from_micros(1500);
    let ndf = ndf_timing_out_after(timeout);
    let ctx = PatternContext::new("ops");
    let started = Instant::now();
    let alone = bounded(ndf.run(&sequential!(hangs), Clock::new(), &ctx)).await;
    assert!(
        matches!(alone, Err(ndf::Error::Timeout { after, .. }) if after == timeout),
        "a step's own timer: {alone:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_millis(2));
    let started = Instant::now();
    let tasks = bounded(ndf.run(&parallel!(hangs, hangs), Clock::new(), &ctx)).await;
    assert!(
        matches!(tasks, Err(ndf::Error::Timeout { after, .. }) if after == timeout),
        "a task's alarm: {tasks:?}"
    );
    assert_eq!(started.elapsed(), Duration::from_millis(2));
}

#[tokio::test(start_paused = true)]
async fn a_task_whose_timeout_is_longer_than_any_timer_does_not_time_out() {
    // Past what an `Instant` or a task's deadline holds: as good as none.
    let ndf = ndf_timing_out_after(Duration::MAX);
    let clock = Clock::new();
    let flow = parallel!(sleeps_3s, sleeps_3s);
    let out = bounded(ndf.run(&flow, clock.clone(), &PatternContext::new("ops"))).await;
    assert_eq!(out.unwrap(), (3, 3));
    assert_eq!(clock.start.elapsed(), Duration::from_secs(3));
}
