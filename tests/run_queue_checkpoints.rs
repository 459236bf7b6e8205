//! When a run from the queue stores its checkpoints: each completed stage
//! before anything of the next stage runs (every task of a `parallel!`
//! stage included), and the last stage before the run is reported done.
//! A store that fails stops the run there: the next stage's steps neither
//! run nor learn a failure, the run fails naming the stage, and the stage
//! before it is compensated. A step held back stores the stages before it
//! before its fallback runs.

mod common;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use common::database_url;
use ndf::prelude::*;
use ndf::{RunQueue, RunStatus};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

/// Each step as it started, with how many checkpoints of its run were
/// stored by then; the compensation as it ran.
static SEEN: Mutex<Vec<(String, &'static str, i64)>> = Mutex::new(Vec::new());

/// A job, tagged so that its run's checkpoints can be told apart.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    tag: String,
}

/// Notes that `step` of `job`'s run starts, with its checkpoints so far.
/// A connection of its own, not a pool shared by the tests: each test has
/// its runtime, and a pool made on one that has ended cannot be used on
/// another.
async fn note(job: &Job, step: &'static str) {
    use sqlx::Connection as _;
    let mut db = sqlx::PgConnection::connect(&database_url()).await.unwrap();
    let (stored,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM ndf_checkpoints WHERE output::text LIKE $1")
            .bind(format!("%{}%", job.tag))
            .fetch_one(&mut db)
            .await
            .unwrap();
    SEEN.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((job.tag.clone(), step, stored));
}

#[pattern(compensate = unreserve)]
async fn reserve(job: Job) -> Job {
    note(&job, "reserve").await;
    job
}

#[pattern]
async fn unreserve(job: Job) {
    note(&job, "unreserve").await;
}

#[pattern]
async fn pack(job: Job) -> Job {
    note(&job, "pack").await;
    job
}

#[pattern]
async fn label(job: Job) -> Job {
    // Slower than `pack`: both wait for the one store of stage 0.
    tokio::time::sleep(Duration::from_millis(20)).await;
    note(&job, "label").await;
    job
}

/// Fails for a job tagged `flaky`; served by `relabel` when it fails or
/// is held back.
#[pattern(fallback = relabel)]
async fn print_label(job: Job) -> Result<Job, StepError> {
    note(&job, "print_label").await;
    if job.tag.starts_with("flaky") {
        return Err(StepError::msg("printer jammed"));
    }
    Ok(job)
}

#[pattern]
async fn relabel(job: Job) -> Job {
    note(&job, "relabel").await;
    job
}

#[pattern]
async fn ship((packed, _labelled): (Job, Job)) -> String {
    note(&packed, "ship").await;
    packed.tag
}

/// What each step of the run of `tag` saw, in order of start.
fn seen(tag: &str) -> Vec<(&'static str, i64)> {
    SEEN.lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .filter(|(t, _, _)| t == tag)
        .map(|(_, step, stored)| (*step, *stored))
        .collect()
}

/// `ndf` with `depot.ship`, and a queue `name` of this process's own.
async fn fixture(ndf: Ndf, name: &str) -> (Ndf, RunQueue, PgPool) {
    ndf.register_durable(sequential!(name = "depot.ship";
        reserve => parallel!(pack, label) => ship))
        .unwrap();
    let queue = RunQueue::connect(&ndf, &database_url())
        .await
        .unwrap()
        .named(&format!("{name}.{}", std::process::id()));
    let pool = PgPool::connect(&database_url()).await.unwrap();
    (ndf, queue, pool)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_stage_is_stored_before_the_next_runs_and_a_failed_store_stops_the_run() {
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .build()
        .unwrap();
    let (ndf, queue, pool) = fixture(ndf, "depot").await;
    let pid = std::process::id();
    let (good, refused) = (format!("good-{pid}"), format!("refused-{pid}"));
    // The database refuses every checkpoint of the `refused` run.
    let refuse = format!("ndf_test_refuse_{pid}");
    for sql in [
        format!(
            "CREATE FUNCTION {refuse}() RETURNS trigger AS $$ BEGIN
               IF NEW.output::text LIKE '%{refused}%' THEN RAISE EXCEPTION 'refused by the test'; END IF;
               RETURN NEW; END $$ LANGUAGE plpgsql"
        ),
        format!(
            "CREATE TRIGGER {refuse} BEFORE INSERT OR UPDATE ON ndf_checkpoints
             FOR EACH ROW EXECUTE FUNCTION {refuse}()"
        ),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }
    let ctx = PatternContext::new("depot");
    let ids = [
        queue
            .enqueue("depot.ship", &Job { tag: good.clone() }, &ctx)
            .await
            .unwrap(),
        queue
            .enqueue(
                "depot.ship",
                &Job {
                    tag: refused.clone(),
                },
                &ctx,
            )
            .await
            .unwrap(),
    ];
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(queue.worker().concurrency(1).run_until(async move {
        let _ = stop_rx.await;
    }));
    let shipped: String = queue.wait(&ids[0], Duration::from_mins(1)).await.unwrap();
    let error = queue
        .wait::<String>(&ids[1], Duration::from_mins(1))
        .await
        .unwrap_err();
    let _ = stop_tx.send(());
    worker.await.unwrap().unwrap();
    for sql in [
        format!("DROP TRIGGER {refuse} ON ndf_checkpoints"),
        format!("DROP FUNCTION {refuse}()"),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&pool)
            .await
            .unwrap();
    }

    assert_eq!(shipped, good);
    let mut steps = seen(&good);
    steps.sort_unstable();
    assert_eq!(
        steps,
        [("label", 1), ("pack", 1), ("reserve", 0), ("ship", 2)],
        "what each step found stored as it started"
    );
    let done = queue.outcome(&ids[0]).await.unwrap().unwrap();
    assert_eq!(
        done.stages_done, 3,
        "the last stage is stored too: {done:?}"
    );

    let text = error.to_string();
    assert!(
        text.contains("storing the checkpoint of stage 0") && text.contains("refused by the test"),
        "{text}"
    );
    assert_eq!(
        seen(&refused),
        [("reserve", 0), ("unreserve", 0)],
        "nothing of stage 1 ran, and stage 0 was compensated"
    );
    let failed = queue.outcome(&ids[1]).await.unwrap().unwrap();
    assert_eq!(failed.status, RunStatus::Failed, "{failed:?}");
    assert_eq!(failed.stages_done, 0, "{failed:?}");
    for step in ["pack", "label"] {
        let stats = ndf.stats(step, "depot").unwrap();
        assert_eq!(
            (stats.executions, stats.failures),
            (1, 0),
            "`{step}` learned only the run it made"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_held_back_stores_the_stages_before_its_fallback_runs() {
    // Four failures in a row hold `print_label` back (as in tests/gating.rs).
    let config = Config::default()
        .min_samples(4)
        .learning_rate(0.0)
        .confidence_threshold(0.6)
        .gate_alpha(0.2)
        .learning_batch(1);
    let ndf = Ndf::builder()
        .resource_probe(ndf::IdleProbe)
        .config(config)
        .build()
        .unwrap();
    let (ndf, queue, _pool) = fixture(ndf, "labels").await;
    let flow = sequential!(name = "depot.label"; reserve => print_label);
    ndf.register_durable(flow).unwrap();
    let ctx = PatternContext::new("depot");
    let pid = std::process::id();
    for i in 0..4 {
        let job = Job {
            tag: format!("flaky-{pid}-{i}"),
        };
        ndf.run(&flow, job, &ctx).await.unwrap();
    }
    let c = ndf.confidence("print_label", "depot").unwrap();
    assert!(c.mean < 0.6 && c.samples == 4, "{c:?}");

    let tag = format!("held-{pid}");
    let id = queue
        .enqueue("depot.label", &Job { tag: tag.clone() }, &ctx)
        .await
        .unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(queue.worker().run_until(async move {
        let _ = stop_rx.await;
    }));
    let out: Job = queue.wait(&id, Duration::from_mins(1)).await.unwrap();
    let _ = stop_tx.send(());
    worker.await.unwrap().unwrap();
    assert_eq!(out.tag, tag);
    assert_eq!(
        seen(&tag),
        [("reserve", 0), ("relabel", 1)],
        "held back: not run, and its fallback found stage 0 stored"
    );
    let stats = ndf.stats("print_label", "depot").unwrap();
    assert_eq!(stats.held_back, 1, "{stats:?}");
}
