//! Rate limits and bulkheads, per step and shared by every run in the
//! process, under 1 000 concurrent runs on paused tokio time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ndf::prelude::*;
use tokio::time::Instant;

mod common;

/// When each call started, and how many ran at once at most.
#[derive(Clone, Default)]
struct Probe {
    starts: Arc<std::sync::Mutex<Vec<Instant>>>,
    running: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl Probe {
    async fn call(&self, work: Duration) {
        self.starts.lock().unwrap().push(Instant::now());
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(work).await;
        self.running.fetch_sub(1, Ordering::SeqCst);
    }

    /// When each call started, counted from `t0`.
    fn starts_since(&self, t0: Instant) -> Vec<Duration> {
        let starts = self.starts.lock().unwrap();
        starts.iter().map(|start| *start - t0).collect()
    }
}

#[pattern(rate = "10/s", timeout = "2s")]
async fn quoted(probe: Probe) -> u32 {
    probe.call(Duration::from_millis(1)).await;
    1
}

#[pattern(concurrency = 8, queue = 100)]
async fn pooled(probe: Probe) -> u32 {
    probe.call(Duration::from_millis(10)).await;
    1
}

/// Runs `W` 1 000 times at once; returns the outcomes.
async fn thousand<W>(flow: W, probe: &Probe) -> Vec<Result<u32, ndf::Error>>
where
    W: Workflow<Input = Probe, Output = u32> + Copy + 'static,
{
    let ndf = common::ndf();
    let mut runs = Vec::new();
    for _ in 0..1_000 {
        let (ndf, probe) = (ndf.clone(), probe.clone());
        runs.push(tokio::spawn(async move {
            ndf.run(&flow, probe, &PatternContext::new("api")).await
        }));
    }
    let mut out = Vec::new();
    for run in runs {
        out.push(run.await.unwrap());
    }
    out
}

#[tokio::test(start_paused = true)]
async fn a_rate_lets_its_starts_through_and_refuses_what_would_wait_past_the_timeout() {
    let probe = Probe::default();
    let started = Instant::now();
    let out = thousand(sequential!(name = "api.quote"; quoted), &probe).await;
    let served = out.iter().filter(|r| r.is_ok()).count();
    let limited: Vec<&ndf::Error> = out
        .iter()
        .filter_map(|r| r.as_ref().err())
        .filter(|e| matches!(e, ndf::Error::RateLimited { .. }))
        .collect();
    // A burst of 10, then one each 100 ms for the 2 s a run may wait.
    assert_eq!(served, 30, "{served} served");
    assert_eq!(limited.len(), 970);
    assert!(
        limited[0].to_string().contains("rate limited to 10/1s"),
        "{}",
        limited[0]
    );
    // A token bucket of 10 filled at 10/s: in any second, at most the 10
    // it holds and the 10 it gains.
    let starts = probe.starts.lock().unwrap().clone();
    for window in starts.windows(21) {
        assert!(
            window[20] - window[0] >= Duration::from_secs(1),
            "never more than 20 starts in a second"
        );
    }
    assert!(
        starts[10] - starts[0] >= Duration::from_millis(100),
        "then one each 100 ms"
    );
    assert!(started.elapsed() <= Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_bulkhead_runs_at_most_its_concurrency_and_queues_within_its_bound() {
    let probe = Probe::default();
    let out = thousand(sequential!(name = "api.pooled"; pooled), &probe).await;
    let served = out.iter().filter(|r| r.is_ok()).count();
    let saturated = out
        .iter()
        .filter(|r| matches!(r, Err(ndf::Error::Saturated { .. })))
        .count();
    assert_eq!(
        probe.peak.load(Ordering::SeqCst),
        8,
        "never more than 8 at once"
    );
    assert_eq!(served, 108, "8 running and 100 queued are served");
    assert_eq!(saturated, 892, "the rest fail at once");
}

#[tokio::test(start_paused = true)]
async fn a_refused_start_is_backpressure_not_a_failure_of_the_pattern() {
    let probe = Probe::default();
    let ndf = common::ndf();
    let flow = sequential!(name = "api.pooled_once"; pooled);
    let mut runs = Vec::new();
    for _ in 0..200 {
        let (ndf, probe) = (ndf.clone(), probe.clone());
        runs.push(tokio::spawn(async move {
            ndf.run(&flow, probe, &PatternContext::new("api")).await
        }));
    }
    for run in runs {
        let _ = run.await.unwrap();
    }
    let stats = ndf.stats("api.pooled_once", "api").unwrap();
    assert_eq!(stats.failures, 0, "{stats:?}");
    assert_eq!(stats.executions + stats.held_back, 200, "{stats:?}");
}

/// The input of one run of `flaky_pooled`: the shared probe, and whether
/// this run's first call has failed yet.
#[derive(Clone, Default)]
struct Flaky {
    probe: Probe,
    failed: Arc<std::sync::atomic::AtomicBool>,
}

/// Each run's first call fails after its work; its retry succeeds.
#[pattern(concurrency = 1, queue = 10, retries = 2, timeout = "5s")]
async fn flaky_pooled(run: Flaky) -> Result<u32, StepError> {
    run.probe.call(Duration::from_millis(300)).await;
    if run.failed.swap(true, Ordering::SeqCst) {
        Ok(1)
    } else {
        Err(StepError::msg("the run's first call fails"))
    }
}

#[tokio::test(start_paused = true)]
async fn a_step_that_waited_for_its_place_retries_while_it_holds_it() {
    let ndf = common::ndf();
    let flow = sequential!(name = "api.flaky_pooled"; flaky_pooled);
    let probe = Probe::default();
    let ctx = PatternContext::new("api");
    let run = || Flaky {
        probe: probe.clone(),
        failed: Arc::default(),
    };
    // Two runs at once: the second waits for the only place, then its
    // first attempt fails too.
    let (a, b) = tokio::join!(ndf.run(&flow, run(), &ctx), ndf.run(&flow, run(), &ctx));
    assert_eq!((a.unwrap(), b.unwrap()), (1, 1));
    // Each run: a failed call, then a retry; never two calls at once,
    // retries included: the place is held until the step is done.
    assert_eq!(probe.starts.lock().unwrap().len(), 4);
    assert_eq!(probe.peak.load(Ordering::SeqCst), 1);
    let stats = ndf.stats("flaky_pooled", "api").unwrap();
    assert_eq!((stats.executions, stats.retries), (2, 2));
}

/// A step with one place and no queue: a second run at once is refused.
#[pattern(concurrency = 1, queue = 0, timeout = "60s")]
async fn single(work: Duration) -> u32 {
    tokio::time::sleep(work).await;
    1
}

#[pattern]
async fn fails_soon(_work: Duration) -> Result<u32, StepError> {
    tokio::time::sleep(Duration::from_millis(1)).await;
    Err(StepError::msg("down"))
}

#[tokio::test(start_paused = true)]
async fn a_place_is_given_back_when_its_run_is_cancelled_or_dropped() {
    let ndf = common::ndf();
    let ctx = PatternContext::new("api");
    let once = sequential!(name = "api.single"; single);
    // The other task fails while `single` holds the only place: the
    // `parallel!` cancels it.
    let both = parallel!(name = "api.single_or_fail"; single, fails_soon);
    let failed = ndf.run(&both, Duration::from_secs(30), &ctx).await;
    assert!(
        matches!(failed, Err(ndf::Error::Execution { ref step, .. }) if step == "fails_soon"),
        "{failed:?}"
    );
    let free = ndf.run(&once, Duration::from_millis(1), &ctx).await;
    assert_eq!(free.unwrap(), 1, "the cancelled task gave its place back");
    // A run dropped while `single` holds the place.
    let dropped = tokio::time::timeout(
        Duration::from_millis(5),
        ndf.run(&once, Duration::from_secs(30), &ctx),
    )
    .await;
    assert!(dropped.is_err(), "the run was dropped: {dropped:?}");
    let free = ndf.run(&once, Duration::from_millis(1), &ctx).await;
    assert_eq!(free.unwrap(), 1, "the dropped run gave its place back");
    // And it is one place: two runs at once, one is refused.
    let (a, b) = tokio::join!(
        ndf.run(&once, Duration::from_millis(10), &ctx),
        ndf.run(&once, Duration::from_millis(10), &ctx)
    );
    let refused = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(ndf::Error::Saturated { .. })))
        .count();
    assert_eq!((a.is_ok() || b.is_ok(), refused), (true, 1), "{a:?} {b:?}");
}

/// One place, and a queue for the others.
#[pattern(concurrency = 1, queue = 8, timeout = "60s")]
async fn one_at_a_time(probe: Probe) -> u32 {
    probe.call(Duration::from_millis(10)).await;
    1
}

#[tokio::test(start_paused = true)]
async fn the_tasks_of_a_parallel_wait_for_their_step_s_place_in_turn() {
    let ndf = common::ndf();
    let ctx = PatternContext::new("api");
    let probe = Probe::default();
    // The first task takes the place; the others wait for it, one after
    // another, each its attempt's timeout counted from its own start.
    let all = parallel!(name = "api.turns"; one_at_a_time, one_at_a_time, one_at_a_time);
    let started = Instant::now();
    assert_eq!(ndf.run(&all, probe.clone(), &ctx).await.unwrap(), (1, 1, 1));
    assert_eq!(probe.peak.load(Ordering::SeqCst), 1);
    assert_eq!(started.elapsed(), Duration::from_millis(30));
    // With `max_concurrent = 1`, a task's gate holds it before it asks
    // for the place: the same turns.
    let gated = parallel!(name = "api.gated_turns", max_concurrent = 1;
        one_at_a_time, one_at_a_time, one_at_a_time);
    let started = Instant::now();
    assert_eq!(
        ndf.run(&gated, probe.clone(), &ctx).await.unwrap(),
        (1, 1, 1)
    );
    assert_eq!(probe.peak.load(Ordering::SeqCst), 1);
    assert_eq!(started.elapsed(), Duration::from_millis(30));
    assert_eq!(probe.starts.lock().unwrap().len(), 6);
}

/// One start a second, no burst: each start needs the bucket's one token.
#[pattern(rate = "1/s", timeout = "5s")]
async fn each_second(probe: Probe) -> u32 {
    probe.call(Duration::ZERO).await;
    1
}

/// The same, with a limiter of its own, for the traced run below.
#[pattern(rate = "1/s", timeout = "5s")]
async fn each_second_traced(probe: Probe) -> u32 {
    probe.call(Duration::ZERO).await;
    1
}

#[pattern(timeout = "30s")]
async fn naps(probe: Probe) -> Probe {
    tokio::time::sleep(Duration::from_secs(10)).await;
    probe
}

/// A run checks a step's rate at its own start while it has not waited
/// (no new reading of the clock), and at a new reading once it has: a
/// start after ten seconds' wait takes the token of that moment. Counted
/// at the run's start instead, the start would take a token of the past,
/// and the next run would start at once.
async fn a_start_after_a_wait_counts_when_it_is_made<S, W>(limited: S, waits_first: W)
where
    S: Workflow<Input = Probe, Output = u32>,
    W: Workflow<Input = Probe, Output = u32>,
{
    let ndf = common::ndf();
    let ctx = PatternContext::new("api");
    let probe = Probe::default();
    let t0 = Instant::now();
    ndf.run(&limited, probe.clone(), &ctx).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Started at 2 s, with the bucket full again; its limited step starts
    // at 12 s.
    ndf.run(&waits_first, probe.clone(), &ctx).await.unwrap();
    ndf.run(&limited, probe.clone(), &ctx).await.unwrap();
    let starts = probe.starts_since(t0);
    assert_eq!(
        starts,
        [0, 12, 13].map(Duration::from_secs),
        "the third start waits for the token the second took at 12 s"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_counts_a_start_when_it_is_made_after_its_run_waited() {
    a_start_after_a_wait_counts_when_it_is_made(
        sequential!(name = "api.each_second"; each_second),
        sequential!(name = "api.waits_first"; naps => each_second),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_traced_run_counts_a_start_when_it_is_made_after_its_run_waited() {
    let captured = common::Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    a_start_after_a_wait_counts_when_it_is_made(
        sequential!(name = "api.each_second_traced"; each_second_traced),
        sequential!(name = "api.waits_first_traced"; naps => each_second_traced),
    )
    .await;
    assert!(
        captured.text().contains("ndf.workflow"),
        "the runs were traced: {}",
        captured.text()
    );
}

#[pattern(rate = "1/s", timeout = "5s")]
async fn each_second_gated(probe: Probe) -> u32 {
    probe.call(Duration::ZERO).await;
    1
}

#[tokio::test(start_paused = true)]
async fn a_run_that_waited_to_be_admitted_counts_its_start_when_it_is_made() {
    let t0 = Instant::now();
    let idle = common::ndf();
    // Every run waits while the CPU is busy: until 12 s, for this one.
    let mut config = ndf::Config::default();
    config.resource_gating = true;
    config.resource_wait = Duration::from_secs(30);
    let busy = common::busy_until(config, t0 + Duration::from_secs(12));
    let (ctx, probe) = (PatternContext::new("api"), Probe::default());
    let limited = sequential!(name = "api.each_second_gated"; each_second_gated);
    idle.run(&limited, probe.clone(), &ctx).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Started at 2 s, with the bucket full again, and admitted at 12 s.
    busy.run(&limited, probe.clone(), &ctx).await.unwrap();
    idle.run(&limited, probe.clone(), &ctx).await.unwrap();
    let starts = probe.starts_since(t0);
    assert!(starts[1] >= Duration::from_secs(12), "{starts:?}");
    assert_eq!(
        starts[2],
        starts[1] + Duration::from_secs(1),
        "the third start waits for the token the second took: {starts:?}"
    );
}

#[pattern(rate = "1/s", timeout = "5s")]
async fn each_second_in_time(probe: Probe) -> u32 {
    probe.call(Duration::ZERO).await;
    1
}

/// A step that works for 1.5 s without waiting: its run does not return
/// `Pending` meanwhile.
#[pattern(timeout = "30s")]
async fn works_without_waiting(probe: Probe) -> Probe {
    std::thread::sleep(Duration::from_millis(1_500));
    probe
}

/// On real time, a start made before its run has waited for anything is
/// counted at the run's start: here 1.5 s behind the clock, after a step
/// that worked that long without waiting. Its token is then 1.5 s old, and
/// the next run starts at once rather than a second later.
#[tokio::test]
async fn a_start_before_its_run_waited_counts_at_the_run_s_start() {
    let ndf = common::ndf();
    let (ctx, probe) = (PatternContext::new("api"), Probe::default());
    let works_first =
        sequential!(name = "api.works_first"; works_without_waiting => each_second_in_time);
    let limited = sequential!(name = "api.each_second_in_time"; each_second_in_time);
    // The limiter's first token, then a bucket full again.
    ndf.run(&limited, probe.clone(), &ctx).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    ndf.run(&works_first, probe.clone(), &ctx).await.unwrap();
    ndf.run(&limited, probe.clone(), &ctx).await.unwrap();
    let starts = probe.starts.lock().unwrap().clone();
    let between = starts[2].saturating_duration_since(starts[1]);
    // Counted when it was made, the first start's token would keep the
    // second waiting for a second.
    assert!(
        between < Duration::from_millis(500),
        "the second start came {between:?} after the first"
    );
}
