//! Runs across processes: workflows enqueued by name on Postgres and run
//! by workers (here, two runtimes in one process), each run once, with
//! bad input and unknown names reported, and secrets kept off the queue.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::database_url;
use ndf::prelude::*;
use ndf::{Error, ExposeSecret as _, RunQueue, RunStatus};

/// Runs of `counted_double`, the step of the first test only.
static DOUBLED: AtomicUsize = AtomicUsize::new(0);

#[pattern]
async fn double(x: u64) -> u64 {
    x * 2
}

#[pattern]
async fn counted_double(x: u64) -> u64 {
    DOUBLED.fetch_add(1, Ordering::SeqCst);
    x * 2
}

#[pattern]
async fn with_token(x: u64, ctx: &PatternContext) -> Result<String, StepError> {
    let token = ctx
        .secret_value("api_token")
        .ok_or_else(|| StepError::msg("no api_token"))?;
    Ok(format!("{x}:{}", token.expose_secret().len()))
}

#[pattern]
async fn explode(_x: u64) -> u64 {
    panic!("poisoned input")
}

#[pattern]
async fn slow_double(x: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(500)).await;
    x * 2
}

fn runtime() -> Ndf {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    ndf.register_durable(sequential!(name = "math.double"; double))
        .unwrap();
    ndf.register_durable(sequential!(name = "math.counted_double"; counted_double))
        .unwrap();
    ndf.register_durable(sequential!(name = "vault.token_length"; with_token))
        .unwrap();
    ndf.register_durable(sequential!(name = "math.explode"; explode))
        .unwrap();
    ndf.register_durable(sequential!(name = "math.slow_double"; slow_double))
        .unwrap();
    ndf
}

/// A queue of this test's own name, so that test binaries running side by
/// side never take each other's runs. Every test here runs under a `fmt`
/// subscriber at INFO, as a service would: runs take their traced path.
async fn queue(ndf: &Ndf, name: &str) -> RunQueue {
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_test_writer()
        .try_init();
    RunQueue::connect(ndf, &database_url())
        .await
        .unwrap()
        .named(&format!("{name}.{}", std::process::id()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_run_each_enqueued_run_once() {
    let producer = runtime();
    let queue_a = queue(&producer, "once").await;
    let ctx = PatternContext::new("math");
    let mut ids = Vec::new();
    for i in 0..200u64 {
        ids.push(
            queue_a
                .enqueue("math.counted_double", &i, &ctx)
                .await
                .unwrap(),
        );
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for name in ["worker-a", "worker-b"] {
        let ndf = runtime();
        let queue = queue(&ndf, "once").await;
        let mut stop = stop_rx.clone();
        workers.push(tokio::spawn(
            queue
                .worker()
                .name(format!("{name}-{}", std::process::id()))
                .concurrency(4)
                .run_until(async move {
                    let _ = stop.wait_for(|s| *s).await;
                }),
        ));
    }
    for (i, id) in ids.iter().enumerate() {
        let out: u64 = queue_a.wait(id, Duration::from_mins(1)).await.unwrap();
        assert_eq!(out, 2 * i as u64);
    }
    stop_tx.send(true).unwrap();
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(30), worker)
            .await
            .expect("a stopping worker ends")
            .unwrap()
            .unwrap();
    }
    assert_eq!(DOUBLED.load(Ordering::SeqCst), 200, "each run ran once");
    let outcome = queue_a.outcome(&ids[0]).await.unwrap().unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded);
    assert_eq!(outcome.attempts, 1);
    assert!(outcome.worker.is_some_and(|w| w.starts_with("worker-")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_names_and_bad_input_are_clear_errors_and_the_worker_goes_on() {
    let ndf = runtime();
    let queue = queue(&ndf, "bad").await;
    let ctx = PatternContext::new("math");
    let unknown = queue.enqueue("math.doubel", &1u64, &ctx).await.unwrap_err();
    match &unknown {
        Error::PatternNotFound { name, suggestions } => {
            assert_eq!(name, "math.doubel");
            assert_eq!(
                suggestions.first().map(String::as_str),
                Some("math.double"),
                "nearest first: {suggestions:?}"
            );
        }
        other => panic!("expected PatternNotFound, got {other:?}"),
    }
    let bad = queue
        .enqueue("math.double", &"not a number", &ctx)
        .await
        .unwrap();
    let good = queue.enqueue("math.double", &21u64, &ctx).await.unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(queue.worker().run_until(async move {
        let _ = stop_rx.await;
    }));
    let error = queue
        .wait::<u64>(&bad, Duration::from_mins(1))
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(matches!(error, Error::RunFailed { .. }), "{text}");
    assert!(
        text.contains("input does not fit") && text.contains("u64"),
        "{text}"
    );
    assert_eq!(
        queue
            .wait::<u64>(&good, Duration::from_mins(1))
            .await
            .unwrap(),
        42,
        "the worker went on after the bad run"
    );
    let _ = stop_tx.send(());
    worker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_queue_and_the_worker_supplies_them() {
    let ndf = runtime();
    let queue = queue(&ndf, "secrets").await;
    let ctx = PatternContext::new("vault")
        .attribute("region", "eu-west-1")
        .secret("api_token", "hunter2-caller-secret");
    let id = queue
        .enqueue("vault.token_length", &7u64, &ctx)
        .await
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(
        queue
            .worker()
            .secrets(|_, ctx| ctx.secret("api_token", "from-the-worker"))
            .run_until(async move {
                let _ = stop_rx.await;
            }),
    );
    let out: String = queue.wait(&id, Duration::from_mins(1)).await.unwrap();
    assert_eq!(out, "7:15", "the worker's own secret was used");
    let _ = stop_tx.send(());
    worker.await.unwrap().unwrap();
    // Nothing anywhere in the database holds the caller's secret.
    let found = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let url = database_url();
    let seen = Arc::clone(&found);
    std::thread::spawn(move || {
        let out = std::process::Command::new("psql")
            .args([
                url.as_str(),
                "-At",
                "-c",
                "SELECT count(*) FROM apalis.jobs WHERE encode(job, 'escape') LIKE '%hunter2%' OR metadata::text LIKE '%hunter2%';
                 SELECT count(*) FROM ndf_queued_runs r WHERE r::text LIKE '%hunter2%';
                 SELECT count(*) FROM ndf_checkpoints c WHERE c::text LIKE '%hunter2%';
                 SELECT count(*) FROM ndf_checkpoints c WHERE c.output::text LIKE '%7:15%';
                 SELECT count(*) FROM apalis.jobs WHERE encode(job, 'escape') LIKE '%eu-west-1%';",
            ])
            .output()
            .expect("psql runs");
        *seen.lock().unwrap() = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    })
    .join()
    .unwrap();
    let found = found.lock().unwrap().clone();
    let counts: Vec<&str> = found.lines().collect();
    assert_eq!(counts.len(), 5, "{found}");
    assert_eq!(counts[0], "0", "a queued job holds the secret: {found}");
    assert_eq!(counts[1], "0", "a run's record holds the secret: {found}");
    assert_eq!(counts[2], "0", "a checkpoint holds the secret: {found}");
    assert_ne!(counts[3], "0", "the run's stage was checkpointed: {found}");
    assert_ne!(counts[4], "0", "plain attributes cross the queue: {found}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_run_fails_with_its_error_and_is_not_started_forever() {
    let ndf = runtime();
    let queue = queue(&ndf, "poison").await;
    let ctx = PatternContext::new("math");
    let panics = queue.enqueue("math.explode", &1u64, &ctx).await.unwrap();
    // A run whose workers died three times already (as if it aborted its
    // process each time): not started a fourth time.
    let doomed = queue.enqueue("math.double", &1u64, &ctx).await.unwrap();
    let pool = sqlx::PgPool::connect(&database_url()).await.unwrap();
    sqlx::query("UPDATE ndf_queued_runs SET attempts = 3 WHERE id = $1")
        .bind(&doomed)
        .execute(&pool)
        .await
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(queue.worker().run_until(async move {
        let _ = stop_rx.await;
    }));
    let error = queue
        .wait::<u64>(&panics, Duration::from_mins(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("panicked") && error.contains("poisoned input"),
        "{error}"
    );
    let error = queue
        .wait::<u64>(&doomed, Duration::from_mins(1))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("started 3 times without ending"), "{error}");
    let outcome = queue.outcome(&panics).await.unwrap().unwrap();
    assert_eq!(outcome.attempts, 1, "a panic is an outcome, not a retry");
    let _ = stop_tx.send(());
    worker.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_worker_finishes_the_run_it_holds() {
    let ndf = runtime();
    let queue = queue(&ndf, "stopping").await;
    let ctx = PatternContext::new("math");
    let id = queue
        .enqueue("math.slow_double", &4u64, &ctx)
        .await
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(queue.worker().run_until(async move {
        let _ = stop_rx.await;
    }));
    // Stop as soon as the run is running.
    loop {
        let outcome = queue.outcome(&id).await.unwrap().unwrap();
        if outcome.status == RunStatus::Running {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(());
    worker.await.unwrap().unwrap();
    let outcome = queue.outcome(&id).await.unwrap().unwrap();
    assert_eq!(outcome.status, RunStatus::Succeeded, "{outcome:?}");
    assert_eq!(outcome.output, Some(serde_json::json!(8)));
    // The worker ran it through `Ndf::run`: its runtime learned the run,
    // in the domain of the context that crossed the queue.
    let learned = ndf.stats("math.slow_double", "math").expect("learned");
    assert_eq!((learned.executions, learned.successes), (1, 1));
}
