//! `parallel!`: tuple order, bounded concurrency with real overlap,
//! fail-fast cancellation, `min_success`, resource gating, cancellation on
//! drop, and `Send` futures. Under `forbid(unsafe_code)`, as a crate that
//! allows no `unsafe` of its own has it: what the macros generate there
//! must compile.
#![forbid(unsafe_code)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::Trace;
use ndf::prelude::*;

#[pattern]
async fn slow_a(delay_ms: u64) -> &'static str {
    tokio::time::sleep(Duration::from_millis(delay_ms * 3)).await;
    "a"
}

#[pattern]
async fn slow_b(delay_ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(delay_ms * 2)).await;
    2
}

#[pattern]
async fn slow_c(delay_ms: u64) -> bool {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    true
}

#[tokio::test(start_paused = true)]
async fn the_output_tuple_follows_declared_order_not_completion_order() {
    let ndf = common::ndf();
    let flow = parallel!(name = "ops.ordered"; slow_a, slow_b, slow_c);
    let started = tokio::time::Instant::now();
    let out = ndf
        .run(&flow, 10, &PatternContext::new("ops"))
        .await
        .unwrap();
    assert_eq!(out, ("a", 2, true));
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(30),
        "tasks overlap: the slowest sets the pace"
    );
}

/// Counts tasks in flight and the most seen at once.
#[derive(Clone, Default)]
struct Load {
    now: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
    done: Arc<AtomicUsize>,
}

#[pattern]
async fn busy(load: Load) -> usize {
    let now = load.now.fetch_add(1, Ordering::SeqCst) + 1;
    load.peak.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(10)).await;
    load.now.fetch_sub(1, Ordering::SeqCst);
    load.done.fetch_add(1, Ordering::SeqCst) + 1
}

#[tokio::test(start_paused = true)]
async fn max_concurrent_bounds_tasks_in_flight_and_tasks_overlap() {
    let ndf = common::ndf();
    let flow = parallel!(name = "ops.bounded", max_concurrent = 3; busy, busy, busy, busy, busy, busy, busy, busy);
    let load = Load::default();
    let started = tokio::time::Instant::now();
    ndf.run(&flow, load.clone(), &PatternContext::new("ops"))
        .await
        .unwrap();
    assert_eq!(load.peak.load(Ordering::SeqCst), 3);
    assert_eq!(load.done.load(Ordering::SeqCst), 8);
    // ceil(8 / 3) = 3 waves of 10 ms.
    assert_eq!(started.elapsed(), Duration::from_millis(30));
}

#[tokio::test(start_paused = true)]
async fn without_a_bound_every_task_runs_at_once() {
    let ndf = common::ndf();
    let flow = parallel!(busy, busy, busy, busy, busy, busy);
    let load = Load::default();
    ndf.run(&flow, load.clone(), &PatternContext::new("ops"))
        .await
        .unwrap();
    assert_eq!(load.peak.load(Ordering::SeqCst), 6);
}

#[derive(Clone, Default, Debug)]
struct Job {
    trace: Trace,
    finished_late: Arc<AtomicBool>,
}

#[pattern(compensate = undo_quick)]
async fn quick(job: Job) -> Result<Job, StepError> {
    job.trace.push("quick");
    Ok(job)
}

#[pattern]
async fn undo_quick(job: Job) {
    job.trace.push("undo_quick");
}

#[pattern]
async fn failing(job: Job) -> Result<Job, StepError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    job.trace.push("failing");
    Err(StepError::msg("disk full"))
}

#[pattern]
async fn lingering(job: Job) -> Result<Job, StepError> {
    tokio::time::sleep(Duration::from_mins(1)).await;
    job.finished_late.store(true, Ordering::SeqCst);
    Ok(job)
}

/// Runs `flow` on `job`: it must fail with the error of `failing` (not with
/// a cancelled task's).
async fn fails_at_failing<W: Workflow<Input = Job>>(ndf: &Ndf, flow: &W, job: &Job) {
    match ndf
        .run(flow, job.clone(), &PatternContext::new("ops"))
        .await
    {
        Err(ndf::Error::Execution { step, .. }) if step == "failing" => {}
        Err(other) => panic!("expected the failure of `failing`, got {other}"),
        Ok(_) => panic!("expected the failure of `failing`, got a success"),
    }
}

#[tokio::test(start_paused = true)]
async fn the_first_failure_cancels_running_tasks_and_compensates_completed_ones() {
    let ndf = common::ndf();
    let flow = parallel!(name = "ops.fail_fast"; quick, failing, lingering);
    let job = Job::default();
    fails_at_failing(&ndf, &flow, &job).await;
    assert_eq!(job.trace.events(), ["quick", "failing", "undo_quick"]);
    tokio::time::sleep(Duration::from_mins(2)).await;
    assert!(
        !job.finished_late.load(Ordering::SeqCst),
        "the lingering task was cancelled"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_task_compensates_what_its_nested_workflow_completed() {
    // The second task is a sequence: `quick` completes, `lingering` is in
    // flight when `failing` fails. Cancelling that task stops `lingering`
    // and lets the sequence undo `quick`.
    let ndf = common::ndf();
    let flow = parallel!(name = "ops.nested_cancel"; failing, sequential!(quick => lingering));
    let job = Job::default();
    let started = tokio::time::Instant::now();
    fails_at_failing(&ndf, &flow, &job).await;
    assert_eq!(
        started.elapsed(),
        Duration::from_millis(5),
        "nothing waited for `lingering`"
    );
    assert_eq!(job.trace.events(), ["quick", "failing", "undo_quick"]);
    tokio::time::sleep(Duration::from_mins(2)).await;
    assert!(!job.finished_late.load(Ordering::SeqCst));
    // The stopped step is neither a success nor a failure of its own.
    let lingering = ndf.stats("lingering", "ops");
    assert_eq!(lingering.map_or(0, |s| s.executions), 0, "{lingering:?}");
    assert_eq!(ndf.stats("quick", "ops").unwrap().compensations, 1);
}

#[tokio::test(start_paused = true)]
async fn min_success_returns_partial_results() {
    let ndf = common::ndf();
    let flow = parallel!(name = "ops.tolerant", min_success = 2; quick, failing, quick);
    let (a, b, c) = ndf
        .run(&flow, Job::default(), &PatternContext::new("ops"))
        .await
        .unwrap();
    assert!(a.is_ok() && c.is_ok());
    let b = b.unwrap_err();
    assert!(b.to_string().contains("disk full"), "{b}");
}

#[tokio::test(start_paused = true)]
async fn min_success_fails_when_too_few_succeed_and_compensates() {
    let ndf = common::ndf();
    let flow = parallel!(name = "ops.tolerant", min_success = 2; quick, failing, failing);
    let job = Job::default();
    let err = ndf
        .run(&flow, job.clone(), &PatternContext::new("ops"))
        .await
        .unwrap_err();
    common::assert_insufficient(&err, (1, 3, 2), "disk full");
    assert_eq!(job.trace.count("undo_quick"), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_run_cancels_every_task() {
    let ndf = common::ndf();
    let flow = parallel!(lingering, lingering);
    let job = Job::default();
    let ctx = PatternContext::new("ops");
    let run = ndf.run(&flow, job.clone(), &ctx);
    assert!(
        tokio::time::timeout(Duration::from_millis(10), run)
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_mins(2)).await;
    assert!(
        !job.finished_late.load(Ordering::SeqCst),
        "nothing keeps running after the drop"
    );
}

#[tokio::test(start_paused = true)]
async fn tasks_wait_while_resources_are_above_the_threshold() {
    let idle_at = tokio::time::Instant::now() + Duration::from_millis(500);
    let ndf = common::busy_until(Config::default(), idle_at);
    let flow = parallel!(name = "ops.gated", resource_threshold = 0.7; busy, busy);
    let load = Load::default();
    ndf.run(&flow, load.clone(), &PatternContext::new("ops"))
        .await
        .unwrap();
    let elapsed = tokio::time::Instant::now() - (idle_at - Duration::from_millis(500));
    assert!(
        elapsed >= Duration::from_millis(510),
        "no task started before the machine was idle: {elapsed:?}"
    );
    assert_eq!(load.done.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn resources_that_stay_high_end_in_resource_exhausted() {
    let idle_at = tokio::time::Instant::now() + Duration::from_hours(1);
    let mut config = Config::default();
    config.resource_wait = Duration::from_secs(2);
    // Runs are admitted up to 100% CPU: only the group's own threshold gates.
    config.cpu_limit = 1.0;
    let ndf = common::busy_until(config, idle_at);
    let flow = parallel!(resource_threshold = 0.7; busy, busy);
    let load = Load::default();
    let err = ndf
        .run(&flow, load.clone(), &PatternContext::new("ops"))
        .await
        .unwrap_err();
    common::assert_exhausted(err, ("cpu", 0.95, 0.7));
    assert_eq!(load.done.load(Ordering::SeqCst), 0, "nothing ran");
}

#[pattern]
async fn double(x: u64) -> u64 {
    x * 2
}

#[pattern]
async fn sum_pair(pair: (u64, u64)) -> u64 {
    pair.0 + pair.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_workflows_are_send_and_spawnable() {
    let ndf = common::ndf();
    let handle = tokio::spawn(async move {
        let flow = sequential!(name = "math.fan";
            parallel!(sequential!(double => double), double) => sum_pair);
        ndf.run(&flow, 5, &PatternContext::new("math")).await
    });
    assert_eq!(handle.await.unwrap().unwrap(), 30);
}

/// Two tasks that can only finish if they run at the same time: each
/// signals the other and blocks its thread until it hears back.
#[derive(Clone)]
struct Rendezvous {
    pairs: Arc<std::sync::Mutex<Vec<std::sync::mpsc::Sender<()>>>>,
    inbox: Arc<std::sync::Mutex<Vec<std::sync::mpsc::Receiver<()>>>>,
}

impl Rendezvous {
    fn new() -> Self {
        let (a_tx, a_rx) = std::sync::mpsc::channel();
        let (b_tx, b_rx) = std::sync::mpsc::channel();
        Self {
            // The first task to arrive takes `a_tx` and `b_rx`, the second
            // `b_tx` and `a_rx`: each hears only from the other.
            pairs: Arc::new(std::sync::Mutex::new(vec![b_tx, a_tx])),
            inbox: Arc::new(std::sync::Mutex::new(vec![a_rx, b_rx])),
        }
    }

    /// Blocks the thread (as CPU-heavy code does) until the other task has
    /// arrived too; false if it never does.
    fn meet(&self) -> bool {
        let tx = self.pairs.lock().unwrap().pop().unwrap();
        let rx = self.inbox.lock().unwrap().pop().unwrap();
        // The other may have given up already: then nobody hears this.
        let _ = tx.send(());
        rx.recv_timeout(Duration::from_secs(1)).is_ok()
    }
}

#[pattern]
async fn cpu_heavy(r: Rendezvous) -> bool {
    r.meet()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_runs_the_tasks_steps_on_worker_threads_in_parallel() {
    let ndf = common::ndf();
    let flow = parallel!(name = "ops.crunch", spawn = true; cpu_heavy, cpu_heavy);
    let (a, b) = ndf
        .run(&flow, Rendezvous::new(), &PatternContext::new("ops"))
        .await
        .unwrap();
    assert!(
        a && b,
        "both blocking tasks ran at the same time on different threads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_spawn_the_tasks_share_the_polling_thread() {
    let ndf = common::ndf();
    let flow = parallel!(name = "ops.crunch"; cpu_heavy, cpu_heavy);
    let (a, b) = ndf
        .run(&flow, Rendezvous::new(), &PatternContext::new("ops"))
        .await
        .unwrap();
    // One thread polls both tasks: the first blocks it until its wait gives
    // up; only then does the second run, and find the first's message.
    assert_eq!((a, b), (false, true));
}

#[pattern]
async fn panics_on_a_worker(x: u64) -> u64 {
    assert!(x == 0, "worker panic at {x}");
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_a_spawned_step_is_an_execution_error() {
    let ndf = common::ndf();
    let flow = parallel!(spawn = true; panics_on_a_worker, panics_on_a_worker);
    let err = ndf
        .run(&flow, 3, &PatternContext::new("ops"))
        .await
        .unwrap_err();
    match err {
        ndf::Error::Execution { step, source, .. } => {
            assert_eq!(step, "panics_on_a_worker");
            assert!(source.is_panic(), "{source}");
        }
        other => panic!("expected Execution, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_a_run_aborts_its_spawned_steps() {
    let ndf = common::ndf();
    let flow = parallel!(spawn = true; lingering, lingering);
    let job = Job::default();
    let ctx = PatternContext::new("ops");
    let run = ndf.run(&flow, job.clone(), &ctx);
    assert!(
        tokio::time::timeout(Duration::from_millis(10), run)
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_mins(2)).await;
    assert!(
        !job.finished_late.load(Ordering::SeqCst),
        "the spawned steps were aborted"
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_degradation_chain_records_no_failure() {
    // The chain's alternatives are stopped, one after the other, by the
    // cancellation: no alternative runs, and nothing counts as a failure
    // but the step that failed.
    let ndf = common::ndf();
    let flow = parallel!(name = "ops.cancel_chain"; failing, degrade!(lingering | quick));
    let job = Job::default();
    fails_at_failing(&ndf, &flow, &job).await;
    assert_eq!(job.trace.events(), ["failing"], "`quick` was not tried");
    let failed: Vec<String> = ndf
        .report(Duration::from_hours(1))
        .patterns
        .into_iter()
        .filter(|p| p.kind == "step" && p.failures > 0)
        .map(|p| p.pattern)
        .collect();
    assert_eq!(failed, ["failing"]);
}

/// The runtime a compensation below calls back into.
static NDF: std::sync::OnceLock<Ndf> = std::sync::OnceLock::new();

#[pattern(compensate = undo_by_running)]
async fn reserve(job: Job) -> Result<Job, StepError> {
    job.trace.push("reserve");
    Ok(job)
}

#[pattern]
async fn release_a(job: Job) -> Job {
    job.trace.push("release_a");
    job
}

#[pattern]
async fn release_b(job: Job) -> Job {
    job.trace.push("release_b");
    job
}

/// Undoes `reserve` by running a workflow of its own, with a `parallel!`.
#[pattern]
async fn undo_by_running(job: Job) -> Result<(), StepError> {
    let ndf = NDF.get().expect("set by the test");
    let release = parallel!(name = "ops.release"; release_a, release_b);
    match ndf
        .run(&release, job.clone(), &PatternContext::new("ops"))
        .await
    {
        Ok(_) => {
            job.trace.push("released");
            Ok(())
        }
        Err(error) => {
            job.trace.push(format!("release failed: {error}"));
            Err(StepError::new(error))
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_compensation_of_a_cancelled_task_can_run_workflows_of_its_own() {
    // The cancellation belongs to the run whose task was cancelled: the
    // compensation's own run, polled meanwhile on the same thread, is not
    // cancelled.
    let ndf = NDF.get_or_init(common::ndf);
    let flow =
        parallel!(name = "ops.cancel_then_release"; failing, sequential!(reserve => lingering));
    let job = Job::default();
    fails_at_failing(ndf, &flow, &job).await;
    assert_eq!(
        job.trace.events(),
        ["reserve", "failing", "release_a", "release_b", "released"]
    );
    let release = ndf.stats("ops.release", "ops").unwrap();
    assert_eq!((release.successes, release.failures), (1, 0));
}
